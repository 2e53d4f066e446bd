package miner

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"taobox/model"
	"taobox/task"
)

// testAccel is an Accelerator on its own copy of the CPU model, so that
// its logits equal the miner's bit for bit; it can be down, fail on a
// given forward call, or return NaN logits there.
type testAccel struct {
	mdl *model.Model

	mu        sync.Mutex
	down      bool
	failAt    int  // the 1-based forward call that fails (0: none)
	nan       bool // failAt returns NaN logits instead of an error
	forwards  int
	begins    int
	ends      int
	fails     int
	generates int
	held      bool

	// sampler: sequences draw tokens themselves (model.AccelSampler, as
	// the runner's llama.sample), unless noSample (an older runner);
	// badID makes the failAt forward's draw an id outside the vocabulary.
	sampler, noSample, badID bool
	samples                  int
}

func (a *testAccel) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.down
}

func (a *testAccel) Begin(context.Context) AccelSeq {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return nil
	}
	if a.held {
		panic("two sequences at once")
	}
	a.held = true
	a.begins++
	if a.sampler {
		return testSampleSeq{&testSeq{a: a}}
	}
	return &testSeq{a: a}
}

type testSampleSeq struct{ *testSeq }

// Sample does what the runner's llama.sample does: feed, check the
// logits (a failure is a fault: Fail, as an error response is), draw with
// a sampler resumed at smp's draws; then smp advances as Seq.Sample's does.
func (s testSampleSeq) Sample(tokens []int, pos int, smp *model.Sampler, alts int, top []model.Alt) (int, float64, []model.Alt, error) {
	a := s.a
	a.mu.Lock()
	a.samples++
	no, vocab := a.noSample, a.mdl.Config.VocabSize
	a.mu.Unlock()
	if no {
		return 0, 0, nil, model.ErrSampleUnsupported
	}
	var logits []float32
	for i, t := range tokens {
		var err error
		if logits, err = s.Forward(t, pos+i); err != nil {
			s.Fail(err)
			return 0, 0, nil, err
		}
	}
	if err := model.CheckLogits(logits, vocab); err != nil {
		s.Fail(err)
		return 0, 0, nil, err
	}
	r := model.Sampler{Temperature: smp.Temperature, TopK: smp.TopK, TopP: smp.TopP, Seed: smp.Seed}
	r.Resume(smp.Draws())
	id, lp, alt := model.SampleFrom(logits, &r, alts, top)
	a.mu.Lock()
	if a.badID && a.forwards >= a.failAt && a.failAt > 0 {
		id = vocab
	}
	a.mu.Unlock()
	smp.Skip(smp.StepDraws())
	return id, lp, alt, nil
}

type testSeq struct {
	a     *testAccel
	ended bool
}

func (s *testSeq) Forward(token, pos int) ([]float32, error) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.ended {
		return nil, errors.New("forward after End")
	}
	a.forwards++
	if a.forwards == a.failAt {
		if a.nan {
			l := make([]float32, a.mdl.Config.VocabSize)
			l[3] = float32(math.NaN())
			return l, nil
		}
		return nil, errors.New("CUDA_ERROR_LAUNCH_FAILED (test)")
	}
	return a.mdl.Forward(token, pos)
}

// Generate is the greedy one-call path, with the same fault injection
// (counted over its forwards; nan makes the log-prob NaN).
func (s *testSeq) Generate(prompt []int, n int) ([]int, []float64, error) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.ended {
		return nil, nil, errors.New("generate after End")
	}
	a.generates++
	nan := false
	forward := func(t, pos int) ([]float32, error) {
		if a.forwards++; a.forwards == a.failAt {
			if !a.nan {
				return nil, errors.New("CUDA_ERROR_LAUNCH_FAILED (test)")
			}
			nan = true
		}
		return a.mdl.Forward(t, pos)
	}
	var logits []float32
	var err error
	for i, t := range prompt {
		if logits, err = forward(t, i); err != nil {
			return nil, nil, err
		}
	}
	var toks []int
	var lps []float64
	for pos := len(prompt); len(toks) < n; pos++ {
		next := model.Argmax(logits)
		lp := model.LogProb(logits, next)
		if nan {
			lp = math.NaN()
		}
		toks, lps = append(toks, next), append(lps, lp)
		if len(toks) < n {
			if logits, err = forward(next, pos); err != nil {
				return nil, nil, err
			}
		}
	}
	return toks, lps, nil
}

func (s *testSeq) Fail(error) {
	s.a.mu.Lock()
	s.a.fails++
	s.a.mu.Unlock()
	s.End()
}

func (s *testSeq) End() {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	if !s.ended {
		s.ended, s.a.held = true, false
		s.a.ends++
	}
}

// sameAsRef checks a verified answer token for token against
// GenerateSampled on the CPU model.
func sameAsRef(t *testing.T, c *task.Client, addr string, ref *model.Model, b task.Body, stop int) {
	t.Helper()
	res, err := c.Query(context.Background(), addr, minerID, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Verified(minerID, res.Request); err != nil {
		t.Fatal(err)
	}
	unlock := lockModel(ref) // callers run in parallel
	g := refAnswer(t, ref, b, stop)
	unlock()
	if len(res.Tokens) != len(g.IDs) {
		t.Fatalf("%d tokens, GenerateSampled %d", len(res.Tokens), len(g.IDs))
	}
	for k, tok := range res.Tokens {
		if int(tok.ID) != g.IDs[k] || tok.LogProb != logProb32(g.LogProbs[k]) || len(tok.Top) != int(b.TopAlts) {
			t.Fatalf("token %d: %d/%v, GenerateSampled %d/%v", k, tok.ID, tok.LogProb, g.IDs[k], g.LogProbs[k])
		}
		for i, alt := range tok.Top {
			if int(alt.ID) != g.Top[k][i].ID || alt.LogProb != logProb32(g.Top[k][i].LogProb) {
				t.Fatalf("token %d alternative %d: %+v, GenerateSampled %+v", k, i, alt, g.Top[k][i])
			}
		}
	}
}

// With an accelerator up, answers run on it, one at a time, whatever the
// slots, and carry exactly the tokens, log-probs and alternatives of the
// CPU model (the test accelerator computes what the CPU does); when it is
// down, the CPU batch scheduler serves.
func TestAccelServes(t *testing.T) {
	ref := tinyModel(t)
	acc := &testAccel{mdl: tinyModel(t)}
	for _, slots := range []int{1, 8} {
		tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, Limits: Limits{Slots: slots}})
		c := newClient(valKey, task.ClientOptions{})
		defer c.Close()
		bodies := batchBodies(6, ref.Config.VocabSize)
		var wg sync.WaitGroup
		for _, b := range bodies {
			wg.Go(func() { sameAsRef(t, c, tm.addr, ref, b, -1) })
		}
		wg.Wait()
		m := tm.Metrics()
		if m["taobox_miner_accel_answers_total"] != 6 || m["taobox_miner_tasks_served_total"] != 6 {
			t.Fatalf("slots %d: accel answers %v, served %v", slots, m["taobox_miner_accel_answers_total"], m["taobox_miner_tasks_served_total"])
		}
	}
	acc.mu.Lock()
	acc.down = true
	before := acc.forwards
	if acc.begins != 12 || acc.ends != 12 || acc.generates != 4 {
		t.Fatalf("%d sequences begun, %d ended, %d greedy in one call; want 12, 12, 4", acc.begins, acc.ends, acc.generates)
	}
	acc.mu.Unlock()
	tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, Limits: Limits{Slots: 8}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	sameAsRef(t, c, tm.addr, ref, batchBodies(1, ref.Config.VocabSize)[0], -1)
	if acc.forwards != before || tm.Metrics()["taobox_miner_accel_answers_total"] != 0 {
		t.Fatal("the accelerator was used while down")
	}
}

// An accelerator that fails mid-answer (an error or NaN logits, in the
// prompt or while generating) hands the answer to the CPU model, which
// replays the tokens so far: the client gets one answer, the one the CPU
// alone gives, and the sequence is ended.
func TestAccelFailoverMidAnswer(t *testing.T) {
	ref := tinyModel(t)
	b := batchBodies(2, ref.Config.VocabSize)[1] // 1 prompt token, sampled
	b.PromptIDs = []uint32{1, 20, 30, 40, 50}
	b.MaxTokens, b.TopAlts = 12, 2
	greedy := b
	greedy.Temperature, greedy.TopK, greedy.TopP, greedy.TopAlts = 0, 0, 0, 0
	for _, tc := range []struct {
		name   string
		body   task.Body
		failAt int
		nan    bool
	}{
		{"prompt", b, 3, false},
		{"generating", b, 9, false},
		{"nan", b, 7, true},
		{"greedy in one call", greedy, 9, false},
		{"greedy in one call, nan", greedy, 9, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &testAccel{mdl: tinyModel(t), failAt: tc.failAt, nan: tc.nan}
			tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, Limits: Limits{Slots: 4}})
			c := newClient(valKey, task.ClientOptions{})
			defer c.Close()
			sameAsRef(t, c, tm.addr, ref, tc.body, -1)
			m := tm.Metrics()
			if m["taobox_miner_accel_failovers_total"] != 1 || m["taobox_miner_tasks_served_total"] != 1 {
				t.Fatalf("failovers %v, served %v", m["taobox_miner_accel_failovers_total"], m["taobox_miner_tasks_served_total"])
			}
			acc.mu.Lock()
			defer acc.mu.Unlock()
			oneCall := tc.body.Temperature == 0
			wantForwards := tc.failAt
			if oneCall && tc.nan { // the generation runs to its end
				wantForwards = len(tc.body.PromptIDs) + int(tc.body.MaxTokens) - 1
			}
			if acc.forwards != wantForwards || acc.ends != 1 || acc.held || acc.fails != btoi(tc.nan) || acc.generates != btoi(oneCall) {
				t.Fatalf("forwards %d (want %d), ends %d, held %v, fails %d, generates %d", acc.forwards, wantForwards, acc.ends, acc.held, acc.fails, acc.generates)
			}
		})
	}
}

// An accelerator that draws tokens itself (the runner's llama.sample)
// gives exactly the CPU's answers, sampled or with alternatives, in one
// call a token; when it fails (an error in the prompt or later, NaN
// logits, a drawn id it cannot have drawn) the CPU model goes on from the
// same sampler state; an older runner without the op serves through
// Forward.
func TestAccelSampler(t *testing.T) {
	ref := tinyModel(t)
	b := batchBodies(2, ref.Config.VocabSize)[1]
	b.PromptIDs = []uint32{1, 20, 30, 40, 50}
	b.MaxTokens, b.TopAlts = 12, 2
	topK := b
	topK.TopK, topK.TopP, topK.TopAlts = 5, 0.9, 0
	for _, tc := range []struct {
		name      string
		body      task.Body
		failAt    int
		nan, bad  bool
		noSample  bool
		failovers float64
	}{
		{name: "sampled", body: b},
		{name: "top-k and top-p", body: topK},
		{name: "prompt fails", body: b, failAt: 3, failovers: 1},
		{name: "generating fails", body: b, failAt: 9, failovers: 1},
		{name: "nan logits", body: b, failAt: 7, nan: true, failovers: 1},
		{name: "impossible draw", body: b, failAt: 8, bad: true, failovers: 1},
		{name: "older runner", body: b, noSample: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &testAccel{mdl: tinyModel(t), sampler: true, failAt: tc.failAt, nan: tc.nan, badID: tc.bad, noSample: tc.noSample}
			tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, Limits: Limits{Slots: 4}})
			c := newClient(valKey, task.ClientOptions{})
			defer c.Close()
			sameAsRef(t, c, tm.addr, ref, tc.body, -1)
			if got := tm.Metrics()["taobox_miner_accel_failovers_total"]; got != tc.failovers {
				t.Fatalf("failovers %v, want %v", got, tc.failovers)
			}
			acc.mu.Lock()
			defer acc.mu.Unlock()
			wantSamples := int(tc.body.MaxTokens) // one call a token (the prompt with the first)
			switch {
			case tc.noSample:
				wantSamples = 1 // asked once, then Forward
			case tc.failAt > 0 && tc.failAt <= len(tc.body.PromptIDs):
				wantSamples = 1
			case tc.failAt > 0:
				wantSamples = tc.failAt - len(tc.body.PromptIDs) + 1
			}
			if acc.samples != wantSamples || acc.ends != 1 || acc.held || acc.fails != btoi(tc.failAt > 0) {
				t.Fatalf("samples %d (want %d), ends %d, held %v, fails %d", acc.samples, wantSamples, acc.ends, acc.held, acc.fails)
			}
		})
	}
}

// When the accelerator comes back while the CPU batch is busy, the batch
// admits no more: it drains, and the accelerator takes the queue.
func TestAccelTakesOverFromBusyBatch(t *testing.T) {
	const n, slots = 12, 4
	ref := tinyModel(t)
	acc := &testAccel{mdl: tinyModel(t), down: true}
	steps := 0
	setStepHook(t, func(m *Miner, active int) {
		switch steps++; steps {
		case 1: // hold the first step until every request is queued
			for deadline := time.Now().Add(10 * time.Second); active+m.q.len() < n && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		case 2: // the batch is full now: bring the accelerator up
			if active != slots {
				t.Errorf("%d answers in the batch at its second step, want %d", active, slots)
			}
			acc.mu.Lock()
			acc.down = false
			acc.mu.Unlock()
		}
	})
	tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, Limits: Limits{Slots: slots}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	bodies := batchBodies(n, ref.Config.VocabSize)
	var wg sync.WaitGroup
	for _, b := range bodies {
		wg.Go(func() { sameAsRef(t, c, tm.addr, ref, b, -1) })
	}
	wg.Wait()
	if got := tm.Metrics()["taobox_miner_accel_answers_total"]; got != n-slots {
		t.Fatalf("%v answers on the accelerator, want the %d queued behind the batch", got, n-slots)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The one-call greedy path ends an answer at its first stop token (sent,
// then nothing after it) and at the end of the context window, as the CPU
// does.
func TestAccelOneCallStopAndRoom(t *testing.T) {
	ref := tinyModel(t)
	b := body(20)
	stop := refAnswer(t, ref, b, -1).IDs[3]
	acc := &testAccel{mdl: tinyModel(t)}
	tm := startMiner(t, Config{Model: tinyModel(t), Accel: acc, StopIDs: []int{stop}, Limits: Limits{Slots: 1}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	sameAsRef(t, c, tm.addr, ref, b, stop)

	long := body(10)
	long.PromptIDs = make([]uint32, ref.Config.SeqLen-2)
	for i := range long.PromptIDs {
		long.PromptIDs[i] = uint32(1 + i%50)
	}
	if !oneCall(long) {
		t.Skipf("a %d-token prompt does not take the one-call path", len(long.PromptIDs))
	}
	sameAsRef(t, c, tm.addr, ref, long, stop)
	if acc.generates != 2 {
		t.Fatalf("%d one-call generations, want 2", acc.generates)
	}
}
