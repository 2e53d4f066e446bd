package validator

import (
	"context"
	"errors"
	"math"
	"testing"

	"taobox/model"
	"taobox/task"
)

// cpuAccel is an accelerator on its own copy of the CPU model; failAt > 0
// makes that forward call (1-based, counted over all sequences) return NaN
// logits, or an error with errAt.
type cpuAccel struct {
	m              *model.Model
	calls          int
	failAt, errAt  int
	begins, failed int
	// scorer: sequences are model.AccelScorer (the runner's llama.score),
	// scoring over the same forwards; badAt > 0 makes that Score call
	// (1-based) return a NaN log-prob.
	scorer        bool
	badAt, scores int
	unsupported   bool // Score returns model.ErrScoreUnsupported (an older runner)
}

func (a *cpuAccel) Ready() bool { return true }

func (a *cpuAccel) Begin(context.Context) model.AccelSeq {
	a.begins++
	if a.scorer {
		return &scorerSeq{cpuSeq{a: a}}
	}
	return &cpuSeq{a: a}
}

type scorerSeq struct{ cpuSeq }

func (s *scorerSeq) Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	s.a.scores++
	if s.a.unsupported {
		return nil, nil, nil, model.ErrScoreUnsupported
	}
	dists := make([][]float64, len(qs))
	for i := range dists {
		dists[i] = make([]float64, s.a.m.Config.VocabSize)
	}
	lps, ahead, err := model.ScoreForward(s.Forward, ids, from, qs, dists, ranks, margin)
	if err == nil && s.a.scores == s.a.badAt {
		lps[0] = math.NaN()
	}
	return lps, ahead, dists, err
}

type cpuSeq struct{ a *cpuAccel }

func (s *cpuSeq) Forward(token, pos int) ([]float32, error) {
	s.a.calls++
	switch s.a.calls {
	case s.a.errAt:
		return nil, errors.New("CUDA_ERROR_LAUNCH_FAILED (test)")
	case s.a.failAt:
		l := make([]float32, s.a.m.Config.VocabSize)
		l[1] = float32(math.NaN())
		return l, nil
	}
	return s.a.m.Forward(token, pos)
}

func (s *cpuSeq) Fail(error) { s.a.failed++ }
func (s *cpuSeq) End()       {}

// The teacher-forced pass on an accelerator (here the same CPU model,
// position by position) gives the verdicts of the CPU path — honest,
// sampled and cheating answers alike — and a pass that fails there (NaN
// logits, a device error) is rerun on the CPU with the same verdict.
func TestVerifyOnAccelerator(t *testing.T) {
	fixtures(t)
	accModel, _, err := loadTiny()
	if err != nil {
		t.Fatal(err)
	}
	bodies := testBodies(t, 12, 5)
	req := reqHash("accel")
	var results []*task.Result
	for i, b := range bodies {
		m := fix.f32
		if i%3 == 2 {
			m = fix.synth // a cheater: fails on both paths
		}
		results = append(results, answer(t, m, b, req))
	}
	for _, mode := range []struct {
		name          string
		all           bool
		failAt, errAt int
		scorer        bool
		badAt         int
		unsupported   bool
	}{
		{"every position", true, 0, 0, false, 0, false},
		{"sampled positions", false, 0, 0, false, 0, false},
		{"NaN logits mid-pass", true, 30, 0, false, 0, false},
		{"device error mid-pass", true, 0, 45, false, 0, false},
		{"one call, every position", true, 0, 0, true, 0, false},
		{"one call, sampled positions", false, 0, 0, true, 0, false},
		{"one call, device error mid-pass", true, 0, 45, true, 0, false},
		// In one call the logits stay on the device: a NaN there reaches the
		// returned log-probs (through the KV cache when it was a prompt
		// position's), which the checks refuse.
		{"one call, a NaN log-prob returned", true, 0, 0, true, 2, false},
		// An older runner: every pass a forward per position on the same
		// sequence, neither a fallback nor a fault.
		{"one call unsupported", true, 0, 0, true, 0, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			cpu := NewVerifier(fix.val, fix.tok)
			acc := &cpuAccel{m: accModel, failAt: mode.failAt, errAt: mode.errAt, scorer: mode.scorer, badAt: mode.badAt, unsupported: mode.unsupported}
			gpu := NewVerifier(fix.f32t2, fix.tok)
			gpu.Accel = acc
			// The same spot positions on both paths, and every run: random
			// spots let a cheater pass the sampled mode now and then (9 of
			// 12 instead of 8 once in CI), which the counts below would
			// call a failure.
			cpu.spotKey = [2]uint64{}
			gpu.spotKey = cpu.spotKey
			cpu.Tol.All, gpu.Tol.All = mode.all, mode.all
			pass := 0
			for i, b := range bodies {
				want := cpu.VerifySigned(minerID(), req, b, results[i])
				got := gpu.VerifySigned(minerID(), req, b, results[i])
				if got.Pass != want.Pass || got.Reason != want.Reason || got.Checked != want.Checked || got.Spots != want.Spots ||
					math.Abs(got.MaxDiff-want.MaxDiff) > 1e-9 || math.Abs(got.MeanDiff-want.MeanDiff) > 1e-9 {
					t.Fatalf("task %d: accelerator %+v, CPU %+v", i, got, want)
				}
				if got.Pass {
					pass++
				}
			}
			passes, fallbacks := gpu.AccelStats()
			wantFallbacks := int64(0)
			if mode.failAt > 0 || mode.errAt > 0 || mode.badAt > 0 {
				wantFallbacks = 1
			}
			if pass != 8 || passes != int64(len(bodies))-wantFallbacks || fallbacks != wantFallbacks || acc.failed != int(btoi(mode.failAt > 0 || mode.badAt > 0)) {
				t.Fatalf("%d passed (want 8), %d passes on the accelerator, %d fallbacks, %d Fail calls", pass, passes, fallbacks, acc.failed)
			}
			if mode.scorer && acc.scores != len(bodies) {
				t.Fatalf("%d Score calls for %d answers", acc.scores, len(bodies))
			}
		})
	}
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
