//go:build fakerunner && !cuda

package main

// The fakerunner build (tests only: `go build -tags fakerunner`) finds a
// "GPU" everywhere and is its own runner: Yuma on the CPU engine, and the
// llama ops on the CPU model with every logit nudged by a relative 1e-5,
// a stand-in for a GPU kernel's other rounding, so that the devnet's whole
// GPU path (launcher, runner process, shared memory, miners answering
// through it, validators re-scoring on the CPU) runs on machines without
// one. It is never a release build.

import (
	"fmt"
	"os"
	"strconv"

	"taobox/chain/yuma"
	"taobox/gpu/runner"
	"taobox/model"
)

func init() {
	detectGPU = func() (runner.GPU, error) {
		exe, err := os.Executable()
		if err != nil {
			return runner.GPU{}, err
		}
		return runner.GPU{Devices: []string{"(fakerunner build)"}, Library: "(none)", Binary: exe}, nil
	}
}

func runRunner(e *env, socket string, _ int, _ string, shm *runner.Shm) error {
	srv := &runner.Server{
		Info:       fmt.Sprintf("taobox fakerunner %s pid %d (CPU engines, logits nudged by 1e-5)", version, os.Getpid()),
		Yuma:       yuma.NewCPUEngine(0),
		YumaPacked: runner.GoKernels{},
		Shm:        shm,
	}
	crashAt := fakeCrashAt()
	lm := &runner.LlamaOps{Open: func(path string) (runner.LlamaModel, string, error) {
		m, err := model.LoadGGUF(path)
		if err != nil {
			return nil, "", err
		}
		return &nudged{m: m, crashAt: crashAt}, path + " on the CPU (fakerunner)", nil
	}}
	defer lm.Close()
	srv.Ops = lm.Handlers()
	return runner.ServeProcess(e.ctx, socket, srv, e.stdin, e.stdout)
}

// fakeCrashAt is the forward at which this runner process exits, as a
// driver fault would kill it: TAOBOX_FAKERUNNER_CRASH_AT=N, for the first
// runner only (TAOBOX_FAKERUNNER_CRASHED names a file the first one
// creates); 0: never.
func fakeCrashAt() int {
	n, _ := strconv.Atoi(os.Getenv("TAOBOX_FAKERUNNER_CRASH_AT"))
	mark := os.Getenv("TAOBOX_FAKERUNNER_CRASHED")
	if n <= 0 || mark == "" {
		return 0
	}
	f, err := os.OpenFile(mark, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0 // an earlier runner crashed already
	}
	f.Close()
	return n
}

// nudged is the CPU model with each logit scaled by 1 ± 1e-5 (the sign
// from the logit's index and position).
type nudged struct {
	m        *model.Model
	out      []float32
	forwards int
	crashAt  int
}

func (n *nudged) Forward(token, pos int) ([]float32, error) {
	if n.forwards++; n.forwards == n.crashAt {
		fmt.Fprintln(os.Stderr, "fakerunner: CUDA_ERROR_LAUNCH_FAILED (simulated crash)")
		os.Exit(3)
	}
	l, err := n.m.Forward(token, pos)
	if err != nil {
		return nil, err
	}
	n.out = append(n.out[:0], l...)
	for i := range n.out {
		f := 1 + 1e-5*float32(1-2*((i*31+pos*17)&1))
		n.out[i] *= f
	}
	return n.out, nil
}

func (n *nudged) Generate(prompt []int, count int) ([]int, []float64, error) {
	var logits []float32
	var err error
	for i, t := range prompt {
		if logits, err = n.Forward(t, i); err != nil {
			return nil, nil, err
		}
	}
	toks, lps := []int{}, []float64{}
	for pos := len(prompt); len(toks) < count; pos++ {
		next := model.Argmax(logits)
		toks, lps = append(toks, next), append(lps, model.LogProb(logits, next))
		if len(toks) < count {
			if logits, err = n.Forward(next, pos); err != nil {
				return nil, nil, err
			}
		}
	}
	return toks, lps, nil
}

func (n *nudged) Close() error         { return n.m.Close() }
func (n *nudged) Config() model.Config { return n.m.Config }

// Score is the teacher-forced pass over the nudged logits (a forward per
// position, so it counts toward crashAt as the GPU's forwards would).
func (n *nudged) Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	return runner.ScoreByForward(n, ids, from, qs, ranks, margin)
}
