//go:build cuda

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/gpu"
	"taobox/gpu/runner"
	"taobox/model/gguf"
)

// runRunner is `taobox-cuda runner`: the GPU, its self-test, then the
// server. Self-test lines go to stderr, which the launcher keeps for its
// error message; stdout carries only the ready line. shm is the parent's
// shared region (--shm-fd), nil without one.
func runRunner(e *env, socket string, device int, only string, shm *runner.Shm) error {
	d, err := gpu.Open(device)
	if err != nil {
		return err
	}
	defer d.Close()
	start := time.Now()
	var firstErr error
	ran, failed := gpu.RunSelftests(d, func(name string) bool { return strings.Contains(name, only) }, func(r gpu.SelftestResult) {
		if r.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", r.Name, r.Err)
			}
			fmt.Fprintf(e.stderr, "FAIL %s (%v): %v\n", r.Name, r.Duration.Round(time.Millisecond), r.Err)
			return
		}
		fmt.Fprintf(e.stderr, "ok   %s (%v)\n", r.Name, r.Duration.Round(time.Millisecond))
	})
	if ran == 0 {
		return &usageError{"--selftest", fmt.Sprintf("no selftest name contains %q", only)}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d selftests failed on %s; first: %w", failed, ran, d.Info(), firstErr)
	}
	srv := &runner.Server{
		Info: fmt.Sprintf("taobox-cuda %s pid %d, device %s, %d selftests passed in %v",
			version, os.Getpid(), d.Info(), ran, time.Since(start).Round(time.Millisecond)),
		Shm: shm,
	}
	ye := gpu.NewYumaEngine(d)
	srv.Yuma, srv.YumaPacked = &serialEngine{e: ye}, packedEngine{ye}
	var _ runner.Feeder = (*gpu.Llama)(nil) // llama.sample feeds prompts batched
	lm := &runner.LlamaOps{Open: func(path string) (runner.LlamaModel, string, error) {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		l, err := gpu.NewLlama(d, f)
		if err != nil {
			return nil, "", err
		}
		c := l.Config()
		return l, fmt.Sprintf("%s: dim %d, %d layers, vocab %d, context %d, %.0f MB on the GPU",
			path, c.Dim, c.NLayers, c.VocabSize, c.SeqLen, float64(l.MemBytes())/1e6), nil
	}}
	defer lm.Close()
	srv.Ops = lm.Handlers()
	return runner.ServeProcess(e.ctx, socket, srv, e.stdin, e.stdout)
}

// packedEngine serves yuma.packed: the parent packed the batch; the
// engine stages it, runs the kernels and the response carries what they
// downloaded. YumaEngine runs one call at a time.
type packedEngine struct{ e *gpu.YumaEngine }

func (p packedEngine) RunPacked(ctx context.Context, l *gpuplan.Layout, arena, out []byte) ([]byte, error) {
	err := p.e.RunArena(ctx, l, arena, func(prefix []int64, bonds []uint32) {
		out = runner.AppendPackedResponse(out, prefix, bonds)
	})
	return out, err
}

// serialEngine runs one batch at a time: the runner serves each connection
// in its own goroutine and the GPU engine keeps per-call state.
type serialEngine struct {
	mu sync.Mutex
	e  yuma.Engine
}

func (s *serialEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e.Epochs(ctx, ins)
}
