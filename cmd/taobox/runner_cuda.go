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
		Yuma: &serialEngine{e: gpu.NewYumaEngine(d)},
		Shm:  shm,
	}
	lm := &runnerLlama{d: d}
	defer lm.close()
	srv.Ops = map[runner.Op]runner.Handler{
		runner.OpLlamaLoad:     lm.load,
		runner.OpLlamaForward:  lm.forward,
		runner.OpLlamaGenerate: lm.generate,
	}
	return runner.ServeProcess(e.ctx, socket, srv, e.stdin, e.stdout)
}

// runnerLlama is the runner's one model (llama.load replaces it).
type runnerLlama struct {
	d  *gpu.Device
	mu sync.Mutex
	l  *gpu.Llama
}

func (r *runnerLlama) load(_ context.Context, p, out []byte) ([]byte, error) {
	f, err := gguf.Open(string(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l != nil {
		r.l.Close()
		r.l = nil
	}
	l, err := gpu.NewLlama(r.d, f)
	if err != nil {
		return nil, err
	}
	r.l = l
	c := l.Config()
	return fmt.Appendf(out, "%s: dim %d, %d layers, vocab %d, context %d, %.0f MB on the GPU",
		p, c.Dim, c.NLayers, c.VocabSize, c.SeqLen, float64(l.MemBytes())/1e6), nil
}

func (r *runnerLlama) model() (*gpu.Llama, error) {
	if r.l == nil {
		return nil, fmt.Errorf("no model loaded (send llama.load first)")
	}
	return r.l, nil
}

func (r *runnerLlama) forward(_ context.Context, p, out []byte) ([]byte, error) {
	tok, pos, err := runner.DecodeForward(p)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, err := r.model()
	if err != nil {
		return nil, err
	}
	logits, err := l.Forward(tok, pos)
	if err != nil {
		return nil, err
	}
	return runner.EncodeLogits(out, logits), nil
}

func (r *runnerLlama) generate(_ context.Context, p, out []byte) ([]byte, error) {
	prompt, n, err := runner.DecodeGenerate(p)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, err := r.model()
	if err != nil {
		return nil, err
	}
	toks, lps, err := l.Generate(prompt, n)
	if err != nil {
		return nil, err
	}
	return runner.EncodeGenerated(out, toks, lps), nil
}

func (r *runnerLlama) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l != nil {
		r.l.Close()
		r.l = nil
	}
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
