package yuma

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Engine runs the epochs of many subnets at once. Implementations (the CPU
// engine here, the GPU engine in package gpu) must return outputs identical,
// bit for bit, to running Epoch on each input in turn.
type Engine interface {
	Epochs(ctx context.Context, ins []Input) ([]Output, error)
}

// CPUEngine spreads a batch over a fixed number of goroutines, each with its
// own Workspace that is kept between calls. Each epoch is computed by exactly
// one goroutine from its own input, so results do not depend on the number of
// workers or on scheduling. It is safe for concurrent use; concurrent calls
// take turns.
type CPUEngine struct {
	mu      sync.Mutex
	workers int
	spaces  []Workspace
}

// NewCPUEngine returns an engine with the given number of workers; workers
// <= 0 means GOMAXPROCS.
func NewCPUEngine(workers int) *CPUEngine {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &CPUEngine{workers: workers, spaces: make([]Workspace, workers)}
}

// Workers returns the number of goroutines the engine uses.
func (e *CPUEngine) Workers() int { return e.workers }

// Epochs runs every input and returns the outputs in the same order. All
// inputs are validated before any epoch runs: a malformed input fails the
// whole batch with an error naming its index, and no outputs are returned.
func (e *CPUEngine) Epochs(ctx context.Context, ins []Input) ([]Output, error) {
	outs := make([]Output, len(ins))
	if err := e.EpochsInto(ctx, ins, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// EpochsInto is Epochs writing into outs (len(outs) == len(ins)), reusing
// the outputs' memory: with warm workspaces and outputs it allocates nothing
// per epoch.
func (e *CPUEngine) EpochsInto(ctx context.Context, ins []Input, outs []Output) error {
	if len(outs) != len(ins) {
		return fmt.Errorf("yuma: %d outputs for %d inputs", len(outs), len(ins))
	}
	for i := range ins {
		if err := ins[i].Validate(); err != nil {
			if fe, ok := err.(*FieldError); ok {
				return &FieldError{Field: fmt.Sprintf("[%d].%s", i, fe.Field), Problem: fe.Problem}
			}
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	workers := min(e.workers, len(ins))
	if workers <= 1 {
		for i := range ins {
			if err := ctx.Err(); err != nil {
				return err
			}
			e.spaces[0].run(&ins[i], &outs[i])
		}
		return nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(ws *Workspace) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ins) || ctx.Err() != nil {
					return
				}
				ws.run(&ins[i], &outs[i])
			}
		}(&e.spaces[w])
	}
	wg.Wait()
	return ctx.Err()
}

// run computes one validated input.
func (ws *Workspace) run(in *Input, out *Output) {
	if in.Variant == Dense {
		ws.dense(in, out)
		return
	}
	ws.sparse(in, out)
}
