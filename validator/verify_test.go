package validator

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"taobox/assets"
	"taobox/chain/types"
	"taobox/model"
	"taobox/model/gguf"
	"taobox/task"
)

// Fixtures: the tiny model (the validator's copy) and the "miners'" models.

var (
	fixOnce sync.Once
	fixErr  error
	fix     struct {
		val, f32, f32t2, q8, q4, synth     *model.Model
		perturbed1, perturbed2, perturbed5 *model.Model
		perturbed10, perturbed20           *model.Model
		tok                                *model.Tokenizer
		hash                               [32]byte
	}
)

func loadTiny() (*model.Model, *model.Tokenizer, error) {
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		return nil, nil, err
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		return nil, nil, err
	}
	tok, err := model.TokenizerFromGGUF(f)
	return m, tok, err
}

func requantize(m *model.Model, typ gguf.GGMLType) (*model.Model, error) {
	data, err := model.ExportGGUF(m, model.GGUFExport{Type: typ})
	if err != nil {
		return nil, err
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, err
	}
	return model.ModelFromGGUF(f)
}

// perturb returns m with every weight matrix multiplied by (1 + rel·u),
// u uniform in [−1, 1]: "the same model, fine-tuned a little", a cheaper
// substitute a verifier must still reject.
func perturb(m *model.Model, rel float64, seed uint64) (*model.Model, error) {
	w := m.F32Weights()
	r := rand.New(rand.NewPCG(seed, 1))
	for _, s := range [][]float32{w.TokenEmbedding, w.WQ, w.WK, w.WV, w.WO, w.W1, w.W2, w.W3} {
		for i := range s {
			s[i] *= float32(1 + rel*(2*r.Float64()-1))
		}
	}
	if m.Config.SharedClassifier {
		w.WCls = w.TokenEmbedding
	}
	return model.NewModel(m.Config, w)
}

func fixtures(t testing.TB) {
	t.Helper()
	fixOnce.Do(func() {
		var err error
		defer func() { fixErr = err }()
		if fix.val, fix.tok, err = loadTiny(); err != nil {
			return
		}
		fix.hash = sha256.Sum256(assets.TinyModel())
		if fix.f32, _, err = loadTiny(); err != nil {
			return
		}
		if fix.f32t2, _, err = loadTiny(); err != nil {
			return
		}
		fix.f32t2.SetThreads(2)
		if fix.q8, err = requantize(fix.val, gguf.TypeQ8_0); err != nil {
			return
		}
		if fix.q4, err = requantize(fix.val, gguf.TypeQ4_0); err != nil {
			return
		}
		c := fix.val.Config
		c.SharedClassifier = false
		if fix.synth, err = model.Synthesize(c, 7); err != nil {
			return
		}
		if fix.perturbed1, err = perturb(fix.val, 0.01, 3); err != nil {
			return
		}
		if fix.perturbed2, err = perturb(fix.val, 0.02, 3); err != nil {
			return
		}
		if fix.perturbed5, err = perturb(fix.val, 0.05, 3); err != nil {
			return
		}
		if fix.perturbed10, err = perturb(fix.val, 0.10, 3); err != nil {
			return
		}
		fix.perturbed20, err = perturb(fix.val, 0.20, 3)
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
}

var minerKey = ed25519.NewKeyFromSeed(make([]byte, 32))

func minerID() types.AccountID { return types.AccountIDFromPrivateKey(minerKey) }

func reqHash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// answer plays an honest miner running m: it generates what body asks for
// and signs the result for request req.
func answer(t testing.TB, m *model.Model, body task.Body, req [32]byte) *task.Result {
	t.Helper()
	prompt := make([]int, len(body.PromptIDs))
	for i, id := range body.PromptIDs {
		prompt[i] = int(id)
	}
	g, err := m.GenerateSampled(prompt, model.GenerateOptions{
		Sampler:      model.Sampler{Temperature: float64(body.Temperature), TopK: int(body.TopK), TopP: float64(body.TopP), Seed: body.Seed},
		MaxTokens:    int(body.MaxTokens),
		EOS:          DefaultEOS,
		Alternatives: int(body.TopAlts),
	})
	if err != nil {
		t.Fatal(err)
	}
	toks := make([]task.Token, len(g.IDs))
	for i, id := range g.IDs {
		toks[i] = task.Token{ID: uint32(id), LogProb: float32(g.LogProbs[i])}
		if body.TopAlts > 0 {
			for _, a := range g.Top[i] {
				toks[i].Top = append(toks[i].Top, task.Alt{ID: uint32(a.ID), LogProb: float32(a.LogProb)})
			}
		}
	}
	return signed(req, toks)
}

// signed wraps tokens in a result with the miner's final frame over req.
func signed(req [32]byte, toks []task.Token) *task.Result {
	f := task.NewFinal(minerKey, req, toks)
	return &task.Result{Request: req, Tokens: toks, Final: &f, FirstToken: time.Millisecond, Total: 10 * time.Millisecond}
}

// honestLogProbs sets every token's log-prob to what m computes for it (a
// cheater that bothers to score its substitute tokens).
func honestLogProbs(t testing.TB, m *model.Model, body task.Body, toks []task.Token) []task.Token {
	ids := make([]int, 0, len(body.PromptIDs)+len(toks))
	for _, id := range body.PromptIDs {
		ids = append(ids, int(id))
	}
	for _, tk := range toks {
		ids = append(ids, int(tk.ID))
	}
	lps, err := m.Score(ids, len(body.PromptIDs))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]task.Token, len(toks))
	for i := range toks {
		out[i] = task.Token{ID: toks[i].ID, LogProb: float32(lps[i])}
	}
	return out
}

func testBodies(t testing.TB, n int, seed uint64) []task.Body {
	g, err := NewGenerator(fix.tok, fix.val.Config.SeqLen, fix.hash)
	if err != nil {
		t.Fatal(err)
	}
	g.TopAlts = 2
	return g.Tasks(seed, 0, n)
}

func greedyBody(bodies []task.Body) task.Body {
	for _, b := range bodies {
		if b.Temperature == 0 && b.MaxTokens >= 16 {
			return b
		}
	}
	panic("no greedy body")
}

func sampledBody(bodies []task.Body) task.Body {
	for _, b := range bodies {
		if b.Temperature > 0 && b.MaxTokens >= 16 {
			return b
		}
	}
	panic("no sampled body")
}

// TestVerify runs every honest and cheating case through VerifySigned with
// real models.
func TestVerify(t *testing.T) {
	fixtures(t)
	bodies := testBodies(t, 16, 1)
	greedy, sampled := greedyBody(bodies), sampledBody(bodies)
	other := bodies[0]
	for _, b := range bodies {
		if b.Temperature == 0 && fmt.Sprint(b.PromptIDs) != fmt.Sprint(greedy.PromptIDs) {
			other = b
		}
	}
	req := reqHash("request")
	v := NewVerifier(fix.val, fix.tok)
	r := rand.New(rand.NewPCG(9, 9))

	type tc struct {
		name string
		body task.Body
		res  func(b task.Body) *task.Result
		req  [32]byte // zero: req
		pass bool
		why  string // substring of the reason
	}
	honest := func(m *model.Model) func(task.Body) *task.Result {
		return func(b task.Body) *task.Result { return answer(t, m, b, req) }
	}
	randomTokens := func(b task.Body, lp float32) []task.Token {
		toks := make([]task.Token, b.MaxTokens)
		for i := range toks {
			toks[i] = task.Token{ID: uint32(3 + r.IntN(fix.val.Config.VocabSize-3)), LogProb: lp}
		}
		return toks
	}
	var cases []tc
	for _, kind := range []struct {
		name string
		body task.Body
	}{{"greedy", greedy}, {"sampled", sampled}} {
		b := kind.body
		cases = append(cases,
			tc{name: kind.name + "/honest", body: b, res: honest(fix.f32), pass: true},
			tc{name: kind.name + "/honest 2 threads", body: b, res: honest(fix.f32t2), pass: true},
			tc{name: kind.name + "/honest Q8_0", body: b, res: honest(fix.q8), pass: true},
			tc{name: kind.name + "/other model", body: b, res: honest(fix.synth), why: "mismatch"},
			// Weights ±20% and Q4_0 pass some single tasks; a round of 8
			// they fail (TestToleranceEvidence).
			tc{name: kind.name + "/random tokens", body: b, res: func(b task.Body) *task.Result {
				return signed(req, randomTokens(b, -0.5))
			}, why: "mismatch"},
			tc{name: kind.name + "/random tokens, scored", body: b, res: func(b task.Body) *task.Result {
				return signed(req, honestLogProbs(t, fix.val, b, randomTokens(b, 0)))
			}, why: "implausible"},
			tc{name: kind.name + "/truncated", body: b, res: func(b task.Body) *task.Result {
				a := answer(t, fix.f32, b, req)
				return signed(req, a.Tokens[:len(a.Tokens)/2])
			}, why: "truncated"},
			tc{name: kind.name + "/replayed signature", body: b, res: func(b task.Body) *task.Result {
				return answer(t, fix.f32, b, reqHash("an earlier request"))
			}, why: "signature"},
			tc{name: kind.name + "/replayed answer to another prompt", body: b, res: func(task.Body) *task.Result {
				a := answer(t, fix.f32, other, req)
				return signed(req, a.Tokens[:min(len(a.Tokens), int(b.MaxTokens))])
			}},
			// One position may be off by up to OutlierDiff (an int8
			// engine's near-tie), two not by more than MaxDiff.
			tc{name: kind.name + "/one log-prob off by 0.5", body: b, res: func(b task.Body) *task.Result {
				a := answer(t, fix.f32, b, req)
				a.Tokens[len(a.Tokens)/2].LogProb -= 0.5
				return signed(req, a.Tokens)
			}, pass: true},
			tc{name: kind.name + "/one log-prob off by 1.5", body: b, res: func(b task.Body) *task.Result {
				a := answer(t, fix.f32, b, req)
				a.Tokens[len(a.Tokens)/2].LogProb -= 1.5
				return signed(req, a.Tokens)
			}, why: "mismatch at token"},
			tc{name: kind.name + "/two log-probs off by 0.5", body: b, res: func(b task.Body) *task.Result {
				a := answer(t, fix.f32, b, req)
				a.Tokens[0].LogProb -= 0.5
				a.Tokens[len(a.Tokens)-1].LogProb -= 0.5
				return signed(req, a.Tokens)
			}, why: "mismatches at tokens"},
		)
	}
	// a greedy task whose first token is no near-tie (its runner-up trails
	// by more than GreedyMargin), so that taking the runner-up is a lie
	clear := greedy
	for _, b := range bodies {
		if alts := model.TopAlternatives(mustLogits(t, b), 2); b.Temperature == 0 && b.MaxTokens >= 16 &&
			alts[0].LogProb-alts[1].LogProb > 2*DefaultTolerance.GreedyMargin {
			clear = b
			break
		}
	}
	cases = append(cases,
		tc{name: "greedy/second-best first token", body: clear, res: func(b task.Body) *task.Result {
			// the runner-up at position 0, then the honest greedy
			// continuation from there, with honest log-probs throughout:
			// only the spot check at the first token can tell
			alts := model.TopAlternatives(mustLogits(t, b), 2)
			b2 := b
			b2.PromptIDs = append(append([]uint32(nil), b.PromptIDs...), uint32(alts[1].ID))
			b2.MaxTokens--
			rest := answer(t, fix.f32, b2, req).Tokens
			toks := append([]task.Token{{ID: uint32(alts[1].ID)}}, rest...)
			return signed(req, honestLogProbs(t, fix.val, b, toks))
		}, why: "not the argmax"},
		tc{name: "sampled/outside top-k", body: withTopK(sampled, 1), res: func(b task.Body) *task.Result {
			// sampled at top-k 40 but claims top-k 1: every token must be
			// the argmax then
			b2 := b
			b2.TopK, b2.Temperature, b2.Seed = 40, 2, 5
			return signed(req, honestLogProbs(t, fix.val, b, answer(t, fix.f32, b2, req).Tokens))
		}},
		tc{name: "rejected", body: greedy, res: func(task.Body) *task.Result {
			return &task.Result{Request: req, Reject: &task.Reject{Code: task.CodeBusy}}
		}, why: "rejected: busy"},
		tc{name: "rejected with a message", body: greedy, res: func(task.Body) *task.Result {
			return &task.Result{Request: req, Reject: &task.Reject{Code: task.CodeInternal, Message: "chain state\nunavailable"}}
		}, why: `rejected: internal: "chain state\nunavailable"`},
		tc{name: "no final", body: greedy, res: func(b task.Body) *task.Result {
			a := answer(t, fix.f32, b, req)
			a.Final = nil
			return a
		}, why: "no final frame"},
		tc{name: "nil", body: greedy, res: func(task.Body) *task.Result { return nil }, why: "no answer"},
		tc{name: "empty", body: greedy, res: func(task.Body) *task.Result { return signed(req, nil) }, why: "empty"},
		tc{name: "too many tokens", body: greedy, res: func(b task.Body) *task.Result {
			toks := answer(t, fix.f32, b, req).Tokens
			for len(toks) <= int(b.MaxTokens) {
				toks = append(toks, toks[0])
			}
			return signed(req, toks)
		}, why: "asked for"},
		tc{name: "goes on after EOS", body: greedy, res: func(b task.Body) *task.Result {
			a := answer(t, fix.f32, b, req)
			a.Tokens[1].ID = DefaultEOS
			return signed(req, a.Tokens)
		}, why: "end-of-sequence"},
		tc{name: "early EOS with honest log-probs", body: greedy, res: func(b task.Body) *task.Result {
			a := answer(t, fix.f32, b, req)
			toks := append([]task.Token(nil), a.Tokens[:3]...)
			toks[2].ID = DefaultEOS
			return signed(req, honestLogProbs(t, fix.val, b, toks))
		}},
		tc{name: "wrong alternatives", body: greedy, res: func(b task.Body) *task.Result {
			a := answer(t, fix.f32, b, req)
			for i := range a.Tokens {
				for j := range a.Tokens[i].Top {
					a.Tokens[i].Top[j].LogProb -= 2
				}
			}
			return signed(req, a.Tokens)
		}, why: "alternative"},
		tc{name: "NaN log-prob", body: greedy, res: func(b task.Body) *task.Result {
			a := answer(t, fix.f32, b, req)
			a.Tokens[0].LogProb = float32(math.NaN())
			return signed(req, a.Tokens)
		}, why: "not a log-probability"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := c.res(c.body)
			vd := v.VerifySigned(minerID(), req, c.body, res)
			t.Logf("pass=%v tokens=%d checked=%d spots=%d maxdiff=%.4g mean=%.4g reason=%q", vd.Pass, vd.Tokens, vd.Checked, vd.Spots, vd.MaxDiff, vd.MeanDiff, vd.Reason)
			if vd.Pass != c.pass {
				t.Fatalf("pass = %v, want %v (%s)", vd.Pass, c.pass, vd.Reason)
			}
			if !c.pass && !strings.Contains(vd.Reason, c.why) {
				t.Fatalf("reason %q does not mention %q", vd.Reason, c.why)
			}
			if c.pass && (vd.Checked != vd.Tokens || vd.Spots < min(2, vd.Tokens) || vd.TokensPerSec <= 0) {
				t.Fatalf("passed without checking: %+v", vd)
			}
		})
	}
}

func withTopK(b task.Body, k uint32) task.Body {
	b.TopK, b.TopP = k, 0
	return b
}

// mustLogits returns the validator model's logits after b's prompt.
func mustLogits(t testing.TB, b task.Body) []float32 {
	ids := make([]int, len(b.PromptIDs))
	for i, id := range b.PromptIDs {
		ids[i] = int(id)
	}
	if _, err := fix.val.Score(append(ids, 0), len(ids)); err != nil {
		t.Fatal(err)
	}
	l, err := fix.val.Forward(ids[len(ids)-1], len(ids)-1)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), l...)
}

// TestToleranceEvidence measures, over many generated tasks, the log-prob
// differences the tolerance must accept (thread counts, Q8_0 of the same
// weights) and those it must reject (1% and 5% weight perturbations, Q4_0,
// another model), and checks that DefaultTolerance separates them. Run
// with -v for the table.
func TestToleranceEvidence(t *testing.T) {
	fixtures(t)
	for _, mode := range []struct {
		name string
		all  bool
		spot int
	}{{"every position", true, 4}, {"8 sampled positions", false, 8}} {
		t.Run(mode.name, func(t *testing.T) {
			v := NewVerifier(fix.val, fix.tok)
			v.spotKey = [2]uint64{} // the same spots every run: the table is evidence, not a sample
			v.Tol.All, v.Tol.Spot = mode.all, mode.spot
			toleranceEvidence(t, v)
		})
	}
}

func toleranceEvidence(t *testing.T, v *Verifier) {
	bodies := testBodies(t, 48, 42)
	req := reqHash("evidence")
	// A validator's round is DefaultTasks (4) tasks, and a miner passes
	// it only if every answer passes: honest engines must pass every
	// task, a substituted model all but maxRounds (a quarter) of the 12
	// rounds, and a random model every task. (Over 960 tasks: Q4_0 passed
	// 13 rounds of 240, weights ±10% 11, ±20% none; at 8 sampled positions
	// 23, 39, 1.)
	const round = DefaultTasks
	type row struct {
		name        string
		m           *model.Model
		wantPass    bool
		mustAll     bool // substituted: every task must fail (else every round but maxRounds)
		maxRounds   int
		info        bool // measured, not asserted
		pass, total int
		rounds      int // rounds of 8 in which every task passed
		max, mean   float64
		worstNext   float64 // largest per-answer second-largest difference
		worstMean   float64 // largest per-answer mean
		bestMax     float64 // smallest per-answer max
		argmaxFlips int
	}
	rows := []*row{
		{name: "F32, 1 thread", m: fix.f32, wantPass: true},
		{name: "F32, 2 threads", m: fix.f32t2, wantPass: true},
		{name: "Q8_0 of the same weights", m: fix.q8, wantPass: true},
		{name: "weights ±1%", m: fix.perturbed1, info: true},
		{name: "weights ±2%", m: fix.perturbed2, info: true},
		{name: "weights ±5%", m: fix.perturbed5, info: true},
		{name: "weights ±10%", m: fix.perturbed10, wantPass: false, maxRounds: 3},
		{name: "weights ±20%", m: fix.perturbed20, wantPass: false},
		{name: "Q4_0", m: fix.q4, wantPass: false, maxRounds: 3},
		{name: "other model (random, same vocab)", m: fix.synth, wantPass: false, mustAll: true},
	}
	for _, rw := range rows {
		roundPass := true
		for i, b := range bodies {
			res := answer(t, rw.m, b, req)
			vd := v.VerifySigned(minerID(), req, b, res)
			rw.total++
			if vd.Pass {
				rw.pass++
			} else {
				roundPass = false
			}
			if i%round == round-1 {
				if roundPass {
					rw.rounds++
				}
				roundPass = true
			}
			rw.worstNext = max(rw.worstNext, vd.NextDiff)
			rw.max = max(rw.max, vd.MaxDiff)
			rw.worstMean = max(rw.worstMean, vd.MeanDiff)
			if rw.total == 1 || vd.MaxDiff < rw.bestMax {
				rw.bestMax = vd.MaxDiff
			}
			rw.mean += vd.MeanDiff / float64(len(bodies))
			if b.Temperature == 0 {
				ref := answer(t, fix.val, b, req)
				if ref.Tokens[0].ID != res.Tokens[0].ID {
					rw.argmaxFlips++
				}
			}
		}
		t.Logf("%-34s pass %2d/%d, rounds %d/%d  max|Δlp| %.4f (smallest per answer %.4f, largest second %.4f)  mean|Δlp| %.5f (largest per answer %.5f)  first-token argmax flips %d",
			rw.name, rw.pass, rw.total, rw.rounds, rw.total/round, rw.max, rw.bestMax, rw.worstNext, rw.mean, rw.worstMean, rw.argmaxFlips)
	}
	for _, rw := range rows {
		switch {
		case rw.info:
		case rw.wantPass && rw.pass != rw.total:
			t.Errorf("%s: %d of %d honest answers rejected", rw.name, rw.total-rw.pass, rw.total)
		case !rw.wantPass && rw.mustAll && rw.pass != 0:
			t.Errorf("%s: %d of %d substituted answers accepted", rw.name, rw.pass, rw.total)
		case !rw.wantPass && rw.rounds > rw.maxRounds:
			t.Errorf("%s: %d of %d rounds of substituted answers accepted", rw.name, rw.rounds, rw.total/round)
		}
	}
}

func TestTopValues(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 5, 100, 3000} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(50)) // ties
		}
		sorted := slices.Clone(xs)
		slices.Sort(sorted)
		slices.Reverse(sorted)
		for _, k := range []int{1, 3, 40, n, n + 2} {
			got := slices.Clone(topValues(xs, k))
			slices.Sort(got)
			slices.Reverse(got)
			if want := sorted[:min(k, n)]; !slices.Equal(got, want) {
				t.Fatalf("n=%d k=%d: %v, want %v", n, k, got, want)
			}
		}
	}
}

// A greedy answer with one token swapped for a clearly non-argmax one
// (followed by an honest greedy continuation, every log-prob honest) is
// rejected whichever position holds it: with All every position is
// ranked, not only the spots. Without All only a spot would catch it, and
// a validator-private key decides those.
func TestGreedyNonArgmaxAnywhere(t *testing.T) {
	fixtures(t)
	b := greedyBody(testBodies(t, 8, 1))
	req := reqHash("non-argmax")
	honest := answer(t, fix.val, b, req)
	n0 := len(honest.Tokens)
	tried := 0
	for p := 1; p < n0-1; p++ {
		nb := b
		nb.PromptIDs = slices.Clone(b.PromptIDs)
		for _, tk := range honest.Tokens[:p] {
			nb.PromptIDs = append(nb.PromptIDs, tk.ID)
		}
		l := mustLogits(t, nb)
		best, second := 0, -1
		for i := range l {
			if l[i] > l[best] {
				best = i
			}
		}
		for i := range l {
			if i != best && i != DefaultEOS && (second < 0 || l[i] > l[second]) {
				second = i
			}
		}
		if float64(l[best]-l[second]) <= 2*DefaultTolerance.GreedyMargin {
			continue
		}
		toks := append([]task.Token(nil), honest.Tokens[:p]...)
		toks = append(toks, task.Token{ID: uint32(second)})
		if rest := int(b.MaxTokens) - p - 1; rest > 0 {
			cb := nb
			cb.PromptIDs = append(slices.Clone(nb.PromptIDs), uint32(second))
			cb.MaxTokens = uint32(rest)
			toks = append(toks, answer(t, fix.val, cb, req).Tokens...)
		}
		toks = honestLogProbs(t, fix.val, b, toks)
		if float64(toks[p].LogProb) < DefaultTolerance.MinLogProb {
			continue // the plausibility floor catches it anyway
		}
		vd := NewVerifier(fix.val, fix.tok).VerifySigned(minerID(), req, b, signed(req, toks))
		if vd.Pass || !strings.Contains(vd.Reason, "not the argmax") {
			t.Fatalf("token %d swapped for id %d (%.2f nats below the argmax): pass %v, reason %q", p, second, l[best]-l[second], vd.Pass, vd.Reason)
		}
		tried++
	}
	if tried < 3 {
		t.Fatalf("only %d positions had a clearly non-argmax runner-up", tried)
	}
}
