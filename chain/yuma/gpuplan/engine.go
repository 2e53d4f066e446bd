package gpuplan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"taobox/chain/yuma"
)

// Validate checks every input as yuma.CPUEngine does, with the same error
// (the first input's in index order), checking inputs in parallel.
func Validate(ins []yuma.Input) error {
	errs := make([]error, len(ins))
	parallel(len(ins), func(i int) { errs[i] = ins[i].Validate() })
	for i, err := range errs {
		if err != nil {
			if fe, ok := err.(*yuma.FieldError); ok {
				return &yuma.FieldError{Field: fmt.Sprintf("[%d].%s", i, fe.Field), Problem: fe.Problem}
			}
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// Split returns the indices of the inputs the kernels run and of those the
// CPU engine runs (see Eligible).
func Split(ins []yuma.Input) (dev, cpu []int) {
	for i := range ins {
		if Eligible(&ins[i]) {
			dev = append(dev, i)
		} else {
			cpu = append(cpu, i)
		}
	}
	return dev, cpu
}

// RunCPU computes ins[idx[k]] on the CPU engine into outs[idx[k]].
func RunCPU(ctx context.Context, e *yuma.CPUEngine, ins []yuma.Input, idx []int, outs []yuma.Output) error {
	if len(idx) == 0 {
		return nil
	}
	sub := make([]yuma.Input, len(idx))
	for k, i := range idx {
		sub[k] = ins[i]
	}
	res, err := e.Epochs(ctx, sub)
	if err != nil {
		return err
	}
	for k, i := range idx {
		outs[i] = res[k]
	}
	return nil
}

// Engine is the batched GPU engine's reference path: the same packing, the
// same kernels (in Go) and the same decoding, with the same CPU fallback.
// It runs each chunk the way the GPU runner's yuma.packed op does: the
// kernels get a copy of the input arena and a layout rebuilt from its Shape,
// and what they leave in the output prefix and bond entries comes back as
// copies that SetOutputs checks before Unpack. It implements yuma.Engine.
type Engine struct {
	cpu *yuma.CPUEngine
	// poison fills the work arena with garbage before the kernels run, as
	// device memory reused between batches is: a kernel that reads a work
	// array its launch did not write then fails the tests. It also flips
	// every downloaded word after Unpack, as the GPU engine's next download
	// would: an output that aliases them then fails the tests.
	poison bool
}

// NewEngine returns the Go reference engine.
func NewEngine() *Engine { return &Engine{cpu: yuma.NewCPUEngine(1)} }

// RunChunks runs ins the batched way, with run in the device's place:
// Validate (the CPU engine's error), then each chunk of the inputs the
// kernels take packed (into *scratch, grown when short, and reused: the
// way a node reuses its shared region) and handed to run with its chunk
// (run must leave the chunk's outputs checked by SetOutputs and unpacked
// into outs), then the rest on cpu. scratch nil: a fresh arena a chunk.
func RunChunks(ctx context.Context, ins []yuma.Input, cpu *yuma.CPUEngine, scratch *[]int64,
	run func(b *Batch, k int, chunk []int, outs []yuma.Output) error) ([]yuma.Output, error) {
	if err := Validate(ins); err != nil {
		return nil, err
	}
	outs := make([]yuma.Output, len(ins))
	dev, cpuIdx := Split(ins)
	for k, chunk := range Chunks(ins, dev) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var arena []int64
		if scratch != nil {
			if w := InWords(ins, chunk); int64(len(*scratch)) < w {
				*scratch = make([]int64, w)
			}
			arena = *scratch
		}
		if err := run(Pack(ins, chunk, false, arena), k, chunk, outs); err != nil {
			return nil, err
		}
	}
	if err := RunCPU(ctx, cpu, ins, cpuIdx, outs); err != nil {
		return nil, err
	}
	return outs, ctx.Err()
}

// Epochs implements yuma.Engine.
func (e *Engine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	var scratch []int64
	poisonArena := func() {
		for i := range scratch {
			scratch[i] = int64(0x5a5a5a5a5a5a5a5a) ^ int64(i)
		}
	}
	if e.poison { // a reused input arena holds the previous chunk's words: Pack must write every word the kernels read
		dev, _ := Split(ins)
		scratch = make([]int64, InWords(ins, dev)) // room for any chunk
		poisonArena()
	}
	return RunChunks(ctx, ins, e.cpu, &scratch, func(b *Batch, _ int, chunk []int, outs []yuma.Output) error {
		prefix, bonds, err := e.runArena(b)
		if err != nil {
			return err
		}
		if err := b.SetOutputs(prefix, bonds); err != nil {
			return err
		}
		b.Unpack(chunk, outs)
		if e.poison { // the GPU engine reuses its download buffers: no output may alias them
			for i := range prefix {
				prefix[i] = ^prefix[i]
			}
			for i := range bonds {
				bonds[i] = ^bonds[i]
			}
			poisonArena()
		}
		return nil
	})
}

// runArena is the runner's side of a chunk: the kernels over a copy of b's
// input arena, under the layout its Shape gives; it returns copies of the
// output prefix and the bond entries.
func (e *Engine) runArena(b *Batch) ([]int64, []uint32, error) {
	l, err := b.L.Shape().Layout()
	if err != nil {
		return nil, nil, err
	}
	rb, err := FromArena(l, slices.Clone(b.In))
	if err != nil {
		return nil, nil, err
	}
	if e.poison {
		r := rand.New(rand.NewPCG(uint64(len(rb.Work)), 7))
		for i := range rb.Work {
			rb.Work[i] = int64(r.Uint64())
		}
	}
	rb.Run()
	prefix, bonds := rb.Outputs()
	return slices.Clone(prefix), slices.Clone(bonds), nil
}
