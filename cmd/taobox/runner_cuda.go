//go:build cuda

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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
	ye := gpu.NewYumaEngine(d)
	defer ye.Close() // before d's (deferred calls run last first): it unregisters the shared region
	var regions string
	if shm != nil {
		// yuma.packed uploads the arena from the request half and
		// downloads into the response half in place, once the driver has
		// page-locked them (their first 4 MiB now, the rest as far as the
		// batches reach). A refusal is said in the ready line.
		regions = "; shared region page-locked in place"
		if err := ye.HostRegions(shm.Halves()); err != nil {
			regions = fmt.Sprintf("; shared region staged (%v)", err)
		}
	}
	pe := &packedEngine{e: ye, stderr: e.stderr}
	pe.warned.Store(regions != "; shared region page-locked in place") // the ready line said it
	srv := &runner.Server{
		Info: fmt.Sprintf("taobox-cuda %s pid %d, device %s, %d selftests passed in %v%s",
			version, os.Getpid(), d.Info(), ran, time.Since(start).Round(time.Millisecond), regions),
		Shm: shm,
	}
	srv.Yuma, srv.YumaPacked = &serialEngine{e: ye}, pe
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
// engine runs the kernels over it and the response carries what they
// downloaded. With a shared region the arena uploads from the request
// half and the outputs download into the response half, both in place
// (page-locked by the driver); without one, or where the driver refuses
// to page-lock it, they are staged through the engine's own page-locked
// buffers. A refusal at start is in the ready line; one later (a batch
// bigger than the driver lets the runner lock) is written once to stderr
// as a runner.WarnPrefix line, which the node logs. YumaEngine runs one
// call at a time.
type packedEngine struct {
	e      *gpu.YumaEngine
	stderr io.Writer
	warned atomic.Bool
}

func (p *packedEngine) RunPacked(ctx context.Context, l *gpuplan.Layout, arena, out []byte) ([]byte, error) {
	defer func() {
		if p.e.RegionRefused() && !p.warned.Swap(true) {
			fmt.Fprintf(p.stderr, "%s%v\n", runner.WarnPrefix, p.e.HostRegionErr())
		}
	}()
	// The response is written in place where out has room (the response
	// half has), else appended from the engine's buffers.
	if prefix, bonds, finish, ok := runner.PackedResponseRoom(out, l); ok {
		t, err := p.e.RunArenaTo(ctx, l, arena, prefix, bonds)
		if err != nil {
			return out, err
		}
		return finish(t), nil
	}
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
