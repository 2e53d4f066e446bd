package miner

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taobox/model"
	"taobox/model/gguf"
	"taobox/task"
)

// setStepHook installs batchStepHook for the test; it is removed after the
// test's miners have stopped (register it before startMiner: cleanups run
// last-in first-out).
func setStepHook(t testing.TB, h func(m *Miner, active int)) {
	batchStepHook = h
	t.Cleanup(func() { batchStepHook = nil })
}

// batchBodies are n requests of mixed shapes: prompts of 1 to 40 tokens
// (some longer than a batch step, so they enter in chunks), greedy and
// sampled, with and without alternatives.
func batchBodies(n, vocab int) []task.Body {
	lens := []int{3, 1, 17, 7, 40, 16, 5, 33}
	out := make([]task.Body, n)
	for i := range out {
		p := make([]uint32, lens[i%len(lens)])
		for k := range p {
			p[k] = uint32((i*13 + k*7 + 1) % vocab)
		}
		b := task.Body{PromptIDs: p, MaxTokens: uint32(6 + 3*i), ModelHash: testModelHash}
		if i%2 == 1 {
			b.Temperature, b.TopK, b.TopP, b.Seed = 0.8, uint32(10+i), 0.9, uint64(100+i)
		}
		if i%3 == 0 {
			b.TopAlts = 3
		}
		out[i] = b
	}
	return out
}

// refAnswer is what model.GenerateSampled makes for b (the one-at-a-time
// miner's answer, TestHonestAnswerMatchesModel).
func refAnswer(t *testing.T, ref *model.Model, b task.Body, stop int) *model.Generation {
	t.Helper()
	prompt := make([]int, len(b.PromptIDs))
	for i, id := range b.PromptIDs {
		prompt[i] = int(id)
	}
	g, err := ref.GenerateSampled(prompt, model.GenerateOptions{
		Sampler:   model.Sampler{Temperature: float64(b.Temperature), TopK: int(b.TopK), TopP: float64(b.TopP), Seed: b.Seed},
		MaxTokens: int(b.MaxTokens), EOS: stop, Alternatives: int(b.TopAlts),
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Eight concurrent requests through a miner with 8 slots are all decoded
// together (the scheduler holds its first step until all are queued) and
// each answer verifies and carries exactly the tokens, log-probs and
// alternatives of the one-at-a-time miner (Slots 1) and of GenerateSampled,
// including an answer cut short by a stop token.
func TestBatchedAnswersMatchSequential(t *testing.T) {
	const n = 8
	ref := tinyModel(t)
	bodies := batchBodies(n, ref.Config.VocabSize)
	// A stop id that answer 0 meets after 4 tokens.
	stop := refAnswer(t, ref, bodies[0], -1).IDs[4]

	maxActive, first := 0, true
	setStepHook(t, func(m *Miner, active int) {
		if first { // hold the first step until every request is queued
			first = false
			for deadline := time.Now().Add(10 * time.Second); active+m.q.len() < n && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		maxActive = max(maxActive, active)
	})
	batched := startMiner(t, Config{Model: tinyModel(t), StopIDs: []int{stop}, Limits: Limits{Slots: n}})
	single := startMiner(t, Config{Model: tinyModel(t), StopIDs: []int{stop}, Limits: Limits{Slots: 1}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()

	got := make([]*task.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() { got[i], errs[i] = c.Query(context.Background(), batched.addr, minerID, b) })
	}
	wg.Wait()
	stopped := false
	for i, b := range bodies {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		res := got[i]
		if err := res.Verified(minerID, res.Request); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		seq, err := c.Query(context.Background(), single.addr, minerID, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := seq.Verified(minerID, seq.Request); err != nil {
			t.Fatal(err)
		}
		g := refAnswer(t, ref, b, stop)
		if len(res.Tokens) != len(g.IDs) || len(seq.Tokens) != len(g.IDs) {
			t.Fatalf("request %d: batched %d tokens, one at a time %d, GenerateSampled %d", i, len(res.Tokens), len(seq.Tokens), len(g.IDs))
		}
		stopped = stopped || len(g.IDs) < int(b.MaxTokens)
		for k, tok := range res.Tokens {
			if int(tok.ID) != g.IDs[k] || tok.LogProb != logProb32(g.LogProbs[k]) {
				t.Fatalf("request %d token %d: batched %d/%v, GenerateSampled %d/%v", i, k, tok.ID, tok.LogProb, g.IDs[k], g.LogProbs[k])
			}
			s := seq.Tokens[k]
			if tok.ID != s.ID || tok.LogProb != s.LogProb || !slices.Equal(tok.Top, s.Top) || len(tok.Top) != int(b.TopAlts) {
				t.Fatalf("request %d token %d: batched %+v, one at a time %+v", i, k, tok, s)
			}
		}
	}
	if !stopped {
		t.Fatal("no answer ended at the stop token: the test checks less than it should")
	}
	if maxActive != n {
		t.Fatalf("at most %d answers ran together, want %d", maxActive, n)
	}
	if got := batched.Metrics()["taobox_miner_tasks_served_total"]; got != n {
		t.Fatalf("served %v, want %d", got, n)
	}
}

// A client that disappears mid-answer (after its first token) has its
// answer retired at the next step, not generated to the end: its slot and
// its hotkey's concurrency go to the next requests, which are served and
// verify.
func TestBatchClientGoneFreesSlot(t *testing.T) {
	steps := make(chan struct{})
	setStepHook(t, func(*Miner, int) { <-steps })
	tm := startMiner(t, Config{Model: tinyModel(t), Limits: Limits{Slots: 2}})

	cA := rawConn(t, tm.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cA.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	long := body(200)
	s.Write(signedRequest(t, reqOpt{body: bodyBytes(long)}))
	s.Close()
	steps <- struct{}{} // one step: the prompt and the first token
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, _, err := task.NewFrameReader(s).Next()
	if err != nil || typ != task.FrameToken {
		t.Fatalf("first frame: type %d, %v", typ, err)
	}
	// The client goes away while the scheduler waits before its next step.
	cA.CloseWithError(0, "gone")
	waitMetric(t, tm, "taobox_miner_connections_open", 0)
	close(steps) // from now on the scheduler runs freely

	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	var wg sync.WaitGroup
	tokens := make([]int, 2)
	for i := range tokens {
		wg.Go(func() {
			res, err := c.Query(context.Background(), tm.addr, minerID, body(uint32(5+i)))
			if err == nil {
				err = res.Verified(minerID, res.Request)
			}
			if err != nil {
				t.Errorf("request %d after the client left: %v", i, err)
				return
			}
			tokens[i] = len(res.Tokens)
		})
	}
	wg.Wait()
	waitMetric(t, tm, `taobox_miner_rejects_total{code="internal"}`, 1)
	waitMetric(t, tm, "taobox_miner_in_flight", 0)
	m := tm.Metrics()
	if m["taobox_miner_tasks_served_total"] != 2 || m["taobox_miner_tokens_total"] != float64(tokens[0]+tokens[1]) {
		t.Fatalf("served %v tasks, %v tokens: the abandoned answer ran to its end", m["taobox_miner_tasks_served_total"], m["taobox_miner_tokens_total"])
	}
}

// Stopping the miner while answers are being batched ends each with
// CodeShuttingDown.
func TestBatchShutdownMidAnswer(t *testing.T) {
	steps := make(chan struct{}, 1)
	var once sync.Once
	stopping := make(chan struct{})
	first := true
	setStepHook(t, func(m *Miner, active int) {
		if first { // hold the first step until the second request is queued
			first = false
			for deadline := time.Now().Add(10 * time.Second); active+m.q.len() < 2 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		if active == 2 {
			once.Do(func() { steps <- struct{}{}; <-stopping })
		}
	})
	tm := startMiner(t, Config{Model: tinyModel(t), Limits: Limits{Slots: 4}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	results := make(chan *task.Result, 2)
	for range 2 {
		go func() {
			res, err := c.Query(context.Background(), tm.addr, minerID, body(200))
			if err != nil {
				res = &task.Result{Reject: &task.Reject{Code: task.CodeInternal, Message: err.Error()}}
			}
			results <- res
		}()
	}
	select {
	case <-steps:
	case <-time.After(10 * time.Second):
		close(stopping)
		t.Fatal("the two answers never ran together")
	}
	tm.cancel()
	close(stopping)
	for range 2 {
		res := <-results
		if res.Reject == nil || res.Reject.Code != task.CodeShuttingDown {
			t.Fatalf("answer at shutdown: %+v, want a shutting-down reject", res.Reject)
		}
	}
}

// batchBenchModel is the s15M shape with an untied classifier and a short
// context, in Q8_0 (about 26 MB): big enough that a decode step reads its
// weights from memory, as a served model's does.
func batchBenchModel(b *testing.B) *model.Model {
	c := model.Config{Dim: 288, HiddenDim: 768, NLayers: 6, NHeads: 6, NKVHeads: 6, VocabSize: 32000, SeqLen: 256}
	src, err := model.Synthesize(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := model.ExportGGUF(src, model.GGUFExport{Type: gguf.TypeQ8_0})
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkBatchedTasks reports the aggregate tokens/s of 8 concurrent
// 32-token tasks (8-token prompts) through a miner on loopback, with one
// slot (one answer at a time) and with 8 (continuous batching), for the
// embedded tiny model and a synthesized s15M-shaped Q8_0 model. One model
// thread.
//
//	go test -run '^$' -bench BatchedTasks -benchtime 20x ./miner/
func BenchmarkBatchedTasks(b *testing.B) {
	models := []struct {
		name string
		mdl  func(b *testing.B) *model.Model
	}{
		{"tiny", func(b *testing.B) *model.Model { return tinyModel(b) }},
		{"s15M-Q8_0", batchBenchModel},
	}
	if os.Getenv("TAOBOX_BENCH_TINY_ONLY") != "" {
		models = models[:1]
	}
	const tasks, gen = 8, 32
	for _, mm := range models {
		mdl := mm.mdl(b)
		for _, slots := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/slots=%d", mm.name, slots), func(b *testing.B) {
				tm := startMiner(b, Config{Model: mdl, Limits: Limits{Slots: slots, Rate: 1e6, Burst: 1 << 20}})
				c := newClient(valKey, task.ClientOptions{})
				defer c.Close()
				bodies := make([]task.Body, tasks)
				for i := range bodies {
					p := make([]uint32, 8)
					for k := range p {
						p[k] = uint32((i*31 + k*7 + 1) % mdl.Config.VocabSize)
					}
					bodies[i] = task.Body{PromptIDs: p, MaxTokens: gen, ModelHash: testModelHash}
				}
				n := 0
				for b.Loop() {
					var wg sync.WaitGroup
					for _, bd := range bodies {
						wg.Go(func() {
							res, err := c.Query(context.Background(), tm.addr, minerID, bd)
							if err != nil || res.Reject != nil || len(res.Tokens) != gen {
								b.Errorf("task: %v %v", err, res)
							}
						})
					}
					wg.Wait()
					n += tasks * gen
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// Slots are cut to what Limits.SlotMemory holds, never below one.
func TestSlotsFitSlotMemory(t *testing.T) {
	mdl := tinyModel(t)
	per := mdl.KVCacheBytes()
	for _, tc := range []struct {
		slots  int
		memory int64
		want   int
	}{
		{0, 0, defaultSlots},
		{32, 0, 16},
		{8, 3 * per, 3},
		{8, per / 2, 1},
		{1, 100 * per, 1},
		{16, 16 * per, 16},
	} {
		m := &Miner{cfg: Config{Model: mdl, Limits: Limits{Slots: tc.slots, SlotMemory: tc.memory}}}
		if got := m.slots(); got != tc.want {
			t.Errorf("Slots %d, SlotMemory %d (%d per slot): %d slots, want %d", tc.slots, tc.memory, per, got, tc.want)
		}
	}
}

// While a prompt is waiting, a step keeps minPrefill places for it, and the
// generating answers that sit a step out rotate, each delayed by the same
// share; with no prompt waiting every generating answer is in every step.
func TestComposeKeepsRoomForPrompts(t *testing.T) {
	b := &batcher{}
	var gen []*seqSlot
	for i := range model.MaxBatch - 1 {
		sl := &seqSlot{prompt: []int{1, 2}, fed: 2 + i}
		gen = append(gen, sl)
		b.active = append(b.active, sl)
	}
	waiting := &seqSlot{prompt: make([]int, 1000)}
	b.active = append(b.active, waiting)
	in := map[*seqSlot]int{}
	const steps = 32
	for step := range steps {
		b.compose()
		if len(b.batch) != model.MaxBatch {
			t.Fatalf("step %d: %d tokens, want a full step of %d", step, len(b.batch), model.MaxBatch)
		}
		prompt := 0
		for _, sl := range b.owner {
			if sl == waiting {
				prompt++
			} else {
				in[sl]++
			}
		}
		if prompt != minPrefill {
			t.Fatalf("step %d: %d prompt tokens, want %d", step, prompt, minPrefill)
		}
	}
	lo, hi := steps, 0
	for _, sl := range gen {
		lo, hi = min(lo, in[sl]), max(hi, in[sl])
	}
	if hi-lo > 2 || lo == 0 {
		t.Fatalf("generating answers got between %d and %d of %d steps: not a fair share", lo, hi, steps)
	}
	b.active = gen // no prompt waiting: all of them, every step
	b.compose()
	if len(b.batch) != len(gen) {
		t.Fatalf("without a prompt waiting: %d tokens, want %d", len(b.batch), len(gen))
	}
}

// Answers that a batched step completes together get their final frames
// in one batch signature made by the worker (batcher.finish), each frame
// verifying against its own request and the CPU model's tokens; one
// answer completing alone is signed alone.
func TestStepFinalsSignedTogether(t *testing.T) {
	const n = 8
	ref := tinyModel(t)
	var steps atomic.Int64
	var tm *testMiner
	setStepHook(t, func(m *Miner, active int) {
		if steps.Add(1) == 1 { // hold the first step until all are queued
			for deadline := time.Now().Add(10 * time.Second); active+m.q.len() < n && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
	})
	tm = startMiner(t, Config{Model: tinyModel(t), Limits: Limits{Slots: n}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	var wg sync.WaitGroup
	for i := range n {
		b := body(1)
		b.PromptIDs = []uint32{1, uint32(10 + i)}
		wg.Go(func() { sameAsRef(t, c, tm.addr, ref, b, -1) })
	}
	wg.Wait()
	sigs, finals := tm.signer.Stats()
	if st := steps.Load(); finals != n || sigs > uint64(st) {
		t.Fatalf("%d final frames in %d signatures over %d steps, want %d in at most one a step", finals, sigs, st, n)
	}
	t.Logf("%d final frames in %d signatures over %d steps", finals, sigs, steps.Load())
	sameAsRef(t, c, tm.addr, ref, body(1), -1) // alone
	if s2, f2 := tm.signer.Stats(); f2 != n+1 || s2 != sigs+1 {
		t.Fatalf("a lone answer: %d frames in %d signatures after %d in %d", f2, s2, finals, sigs)
	}
}
