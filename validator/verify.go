package validator

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

// Verification (inference.md §6, incumbent-protocol.md §4): the validator
// runs its own copy of the model once over prompt + answer, teacher-forced
// (model.Score, the batched prompt path), and compares the miner's log-prob
// of every answered token with its own. That one pass also gives the
// validator's log-prob of every token, which a plausibility floor checks.
// With All (the default) the same pass also ranks every answered token:
// a greedy token must be within GreedyMargin of the argmax, and a sampled
// one inside the request's top-k, at every position.
// At a few spot positions (always the first and the last answered token,
// plus Spot−2 drawn from the request hash mixed with a key the validator
// keeps to itself, so the miner cannot predict them) the validator also takes the full next-token
// distribution, by one extra one-token forward pass that reuses the KV cache
// the teacher-forced pass left behind (Model.Forward at a position below the
// end of the cache recomputes exactly the logits Score saw). There it checks
// the decoding rule: a greedy token must be the argmax (up to a near-tie
// margin), a sampled token must lie inside the request's top-k / top-p cut,
// and reported alternatives must carry the validator's log-probs.
//
// What each check catches:
//   - another model (a random model of the same vocabulary, perturbed
//     weights, a coarser quantization): log-prob mismatch;
//   - random tokens: mismatch, or — if the miner computed honest log-probs
//     for them — the plausibility floor and the spot decoding-rule checks;
//   - truncated answers: fewer tokens than max_tokens without EOS (and
//     without reaching the end of the context window);
//   - replayed answers: the final frame's signature binds the request hash
//     (VerifySigned), and an answer for another prompt mismatches anyway.
//
// What it does not check: that a sampled answer used the request's seed.
// A miner that decodes greedily, or with another seed, passes (the token
// is inside the cut either way); it gains nothing by it, since no other
// miner gets the same prompt (prompts.go). Re-deriving the draws was
// tried: the seed gives each position's random number, the validator's
// distribution each token's share, but an int8 engine reorders near-ties
// in the sampler's walk, which moves a token's share by its neighbour's:
// an honest Q8_0 miner failed 14 to 46 of 480 sampled tasks with a slack
// of 0.1 to 0.01 of the mass, while a greedy one still passed 30 %.
// Letting the ids within 0.6 nats of the token stand on either side of it
// kept honest Q8_0 at 478-480 of 480, but then a greedy miner passed
// 397-417: in a peaked distribution the argmax covers most draws.
//
// Tolerance. taobox's engine computes bit-identical logits for any thread
// count and for the batched and one-token paths, so an honest CPU miner on
// the same file matches to float32 rounding of the reported value (≤ 1e-6;
// measured 0 for 1 vs 2 threads). Legitimate differences come from other
// engines (a GPU, another kernel) and from re-quantizing the same weights.
// The defaults come from 960 generated tasks (two seeds of 480, every
// position compared, 2 alternatives asked per token), also grouped as a
// validator's rounds of DefaultTasks (4) tasks, which a miner passes only
// if every answer passes:
//
//	miner's model          tasks    rounds of 4  max|Δlp|  2nd largest  mean|Δlp| w/o largest
//	Q8_0, same weights     960/960  240/240      0.43      0.21         0.015
//	weights ±2%            955/960  235/240      0.76      0.38         0.039  (noise ≈ Q8_0's)
//	weights ±5%            882/960  174/240      2.4       1.1          0.18
//	weights ±10%           436/960   11/240      5.3       1.2          0.12
//	weights ±20%           147/960    0/240      9.8       6.0          0.31
//	Q4_0                   473/960   13/240      8.9       2.1          0.21
//
// (Checking 8 sampled positions instead of every one: Q4_0 545/960 tasks
// and 23/240 rounds, weights ±10% 611 and 39, ±20% 217 and 1.)
//
// An int8 engine's rounding now and then moves one near-tie a long way:
// with the rule this replaced (every position within 0.3, the plain mean
// within 0.025) 2 to 5 of 480 honest Q8_0 answers failed, one of them by
// 0.80 nats at a single token, so an honest Q8_0 miner lost 3-8 % of its
// rounds. One position may now differ by up to OutlierDiff (1.0), every
// other by MaxDiff (0.3), and the mean leaves out the largest: Q8_0 keeps
// 1.4-2.3× headroom on each bound. Q4_0 of the same weights passes about
// half of single tasks (about as many as under the old rule) and 1 round
// of 4 in 18: what separates it from Q8_0 is how often it is caught, so
// more tasks a round (Config.Tasks) catch it more. A model within a few percent of the weights is
// indistinguishable from a re-quantization, which no tolerance that
// accepts Q8_0 could tell apart. TestToleranceEvidence (-v prints the
// table) checks 48 tasks in both modes on every run.
// GPU vs CPU: taobox-cuda's selftest on an H100 (an earlier session's
// device run; gpu.checkLlamaModel, 32 greedy tokens of 6 random models)
// measured |Δ log-prob| ≤ 1.4e-5 for F32/F16 weights, 7.4e-7 for Q4_0, and
// for Q8_0 (int8 activations, whose rounding is discontinuous) max 0.14,
// median 0.007, with every greedy token equal: inside MaxDiff, and about
// Q8_0-on-the-CPU's own spread above. The devnet with the honest miners on
// the GPU runner (scripts/gpu-check.sh) checks it end to end on a device.

// DefaultEOS is the end-of-sequence id of LLaMA SentencePiece vocabularies,
// the tiny model's included.
const DefaultEOS = 2

// Tolerance bounds what an honest answer may differ by.
type Tolerance struct {
	// MaxDiff is the largest |miner − validator| log-prob (nats) accepted
	// at every compared position but the one with the largest difference.
	MaxDiff float64
	// OutlierDiff bounds that one position, and every reported
	// alternative: an int8 engine's rounding now and then moves a near-tie
	// by more than MaxDiff at one position, and less probable tokens (the
	// alternatives) by more than the answered ones (Q8_0: up to 0.64 nats
	// over 5,900 alternatives of 144 tasks, 10 of them past 0.3).
	OutlierDiff float64
	// MeanDiff bounds the mean |difference| over the compared positions
	// but the one with the largest difference (so that one outlier does
	// not fail a short answer).
	MeanDiff float64
	// GreedyMargin: a greedy token may trail the validator's argmax by up
	// to this many nats (a near-tie another engine may break the other
	// way). Also the slack of the top-k and top-p checks.
	GreedyMargin float64
	// MinLogProb is the floor on the validator's log-prob of every answered
	// token: sampled requests carry a temperature ≤ 0.9 and a top-k or
	// top-p cut, so honest sampling essentially never draws a token this
	// unlikely, while random tokens almost always include one.
	MinLogProb float64
	// Spot is the number of positions whose full distribution is checked
	// (at least 2: the first and the last).
	Spot int
	// All compares the log-prob of every answered token (the classifier
	// and log-softmax then run at every position of the teacher-forced
	// pass); otherwise only the Spot positions are compared, which saves
	// the classifier at the others (most of the cost for a large
	// vocabulary) but checks a sample.
	All bool
}

// DefaultTolerance is the tolerance the validator uses; see the evidence in
// verify_test.go (TestToleranceEvidence).
var DefaultTolerance = Tolerance{MaxDiff: 0.3, OutlierDiff: 1, MeanDiff: 0.025, GreedyMargin: 0.3, MinLogProb: -12, Spot: 4, All: true}

// Verdict is the outcome of verifying one answer.
type Verdict struct {
	Pass         bool
	Reason       string  // why it failed; "" when it passed
	Tokens       int     // tokens answered
	Checked      int     // positions whose log-probs were compared
	Spots        int     // positions whose full distribution was checked
	MaxDiff      float64 // largest |log-prob difference| seen (nats)
	NextDiff     float64 // the second largest (0 with one position compared)
	MeanDiff     float64 // mean |difference| without the largest (0 with one position)
	TokensPerSec float64 // tokens / total response time
}

func fail(v Verdict, format string, args ...any) Verdict {
	v.Pass, v.Reason = false, fmt.Sprintf(format, args...)
	return v
}

// Verifier checks answers against its own copy of the model. It is safe
// for concurrent use: answers are verified one at a time (a Model is not
// safe for concurrent use).
type Verifier struct {
	Model *model.Model
	// EOG reports whether id ends generation; nil: id == DefaultEOS.
	EOG func(id int) bool
	Tol Tolerance
	// Accel, when set and ready, runs the teacher-forced pass on another
	// device (the GPU runner) one position at a time; a pass that fails
	// there is rerun on Model.
	Accel model.Accelerator

	mu    sync.Mutex
	dists [][]float64 // the spot positions' log-softmax, reused
	// spotKey mixes into the draw of the spot positions (NewVerifier sets
	// it at random; zero in a Verifier built by hand, which tests use to
	// repeat a draw).
	spotKey [2]uint64

	accelPasses, accelFallbacks atomic.Int64
}

// AccelStats returns how many teacher-forced passes ran on the
// accelerator, and how many failed there and were rerun on the CPU.
func (v *Verifier) AccelStats() (passes, fallbacks int64) {
	return v.accelPasses.Load(), v.accelFallbacks.Load()
}

// NewVerifier returns a verifier for m with DefaultTolerance; tok (may be
// nil) supplies the end-of-generation ids.
func NewVerifier(m *model.Model, tok *model.Tokenizer) *Verifier {
	v := &Verifier{Model: m, Tol: DefaultTolerance}
	var k [16]byte
	crand.Read(k[:]) // never fails (crypto/rand)
	v.spotKey = [2]uint64{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])}
	if tok != nil {
		v.EOG = tok.IsEOG
	}
	return v
}

// Verify checks res as an answer to body with DefaultTolerance and
// DefaultEOS. It does not check the final frame's signature (see
// VerifySigned).
func Verify(m *model.Model, body task.Body, res *task.Result) Verdict {
	return NewVerifier(m, nil).Verify(body, res)
}

// VerifySigned checks that res carries miner's signature over request req
// and exactly its tokens (so an answer to another request, replayed, fails),
// then verifies its content.
func (v *Verifier) VerifySigned(miner types.AccountID, req [32]byte, body task.Body, res *task.Result) Verdict {
	if res != nil && res.Reject == nil && res.Final != nil {
		if err := res.Verified(miner, req); err != nil {
			return fail(Verdict{Tokens: len(res.Tokens)}, "signature: %v", err)
		}
	}
	return v.Verify(body, res)
}

func (v *Verifier) eog(id int) bool {
	if v.EOG != nil {
		return v.EOG(id)
	}
	return id == DefaultEOS
}

// Verify checks the content of res as an answer to body (see the file
// comment). It does not check signatures.
func (v *Verifier) Verify(body task.Body, res *task.Result) Verdict {
	var vd Verdict
	switch {
	case res == nil:
		return fail(vd, "no answer")
	case res.Reject != nil:
		if msg := res.Reject.Message; msg != "" {
			return fail(vd, "rejected: %s: %q", res.Reject.Code, msg) // quoted: the miner wrote it
		}
		return fail(vd, "rejected: %s", res.Reject.Code)
	case res.Final == nil:
		return fail(vd, "no final frame (the answer was cut off)")
	}
	n := len(res.Tokens)
	vd.Tokens = n
	if res.Total > 0 {
		vd.TokensPerSec = float64(n) / res.Total.Seconds()
	}
	m, tol := v.Model, v.Tol
	c := &m.Config
	if int(res.Final.Count) != n {
		return fail(vd, "final frame counts %d tokens, %d arrived", res.Final.Count, n)
	}
	if err := body.Validate(); err != nil {
		return fail(vd, "bad request: %v", err)
	}
	np := len(body.PromptIDs)
	switch {
	case n == 0:
		return fail(vd, "empty answer")
	case n > int(body.MaxTokens):
		return fail(vd, "%d tokens, %d asked for", n, body.MaxTokens)
	case np+n > c.SeqLen+1:
		return fail(vd, "%d prompt + %d answer tokens exceed the context of %d", np, n, c.SeqLen)
	}
	ids := make([]int, 0, np+n)
	for _, id := range body.PromptIDs {
		if int(id) >= c.VocabSize {
			return fail(vd, "bad request: prompt token %d outside the vocabulary", id)
		}
		ids = append(ids, int(id))
	}
	for i, t := range res.Tokens {
		if int(t.ID) >= c.VocabSize {
			return fail(vd, "token %d: id %d outside the vocabulary of %d", i, t.ID, c.VocabSize)
		}
		if lp := float64(t.LogProb); math.IsNaN(lp) || lp > 0 {
			return fail(vd, "token %d: log-prob %v is not a log-probability", i, t.LogProb)
		}
		if i < n-1 && v.eog(int(t.ID)) {
			return fail(vd, "token %d is end-of-sequence but the answer goes on", i)
		}
		ids = append(ids, int(t.ID))
	}
	if n < int(body.MaxTokens) && !v.eog(ids[len(ids)-1]) && np+n < c.SeqLen+1 {
		return fail(vd, "truncated: %d of %d tokens and no end-of-sequence", n, body.MaxTokens)
	}

	// Spot positions: the first, the last, and Spot−2 others drawn from the
	// request hash, the sampling seed and the validator's own spot key.
	spots := []int{0}
	if n > 1 {
		spots = append(spots, n-1)
	}
	if extra := min(max(tol.Spot, 2), n) - len(spots); extra > 0 {
		r := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(res.Request[:8])^body.Seed^v.spotKey[0], binary.LittleEndian.Uint64(res.Request[8:16])^v.spotKey[1]))
		for _, p := range r.Perm(n - 2)[:extra] {
			spots = append(spots, p+1)
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	// The teacher-forced pass. With All, the classifier and log-softmax run
	// at every answered position; without, only at the last, and the spot
	// positions get theirs from the one-token passes below.
	from := np
	if !tol.All {
		from = len(ids) - 1
	}
	qs := make([]int, len(spots))
	for i, p := range spots {
		qs[i] = np + p - 1 // position whose logits predict answer token p
	}
	lps, ahead, dists, err := v.score(ids, from, qs, tol.All, tol.GreedyMargin)
	if err != nil {
		return fail(vd, "scoring: %v", err)
	}
	var sum, worstLP, nextLP float64
	worst, next := -1, -1
	compare := func(i int, lp float64) {
		d := math.Abs(float64(res.Tokens[i].LogProb) - lp)
		if math.IsInf(d, 0) || math.IsNaN(d) {
			d = math.MaxFloat64
		}
		sum = min(sum+d, math.MaxFloat64)
		vd.Checked++
		switch {
		case worst < 0 || d > vd.MaxDiff:
			vd.NextDiff, next, nextLP = vd.MaxDiff, worst, worstLP
			vd.MaxDiff, worst, worstLP = d, i, lp
		case next < 0 || d > vd.NextDiff:
			vd.NextDiff, next, nextLP = d, i, lp
		}
	}
	floor := func(i int, lp float64) string {
		if lp < tol.MinLogProb {
			return fmt.Sprintf("token %d (id %d) is implausible under the model: log-prob %.1f < %.0f", i, ids[np+i], lp, tol.MinLogProb)
		}
		return ""
	}
	if tol.All {
		for i, lp := range lps {
			compare(i, lp)
		}
	}
	spotFail := ""
	for i, p := range spots {
		dist := dists[i]
		vd.Spots++
		if !tol.All {
			compare(p, dist[ids[np+p]])
		}
		if spotFail == "" {
			if reason := checkSpot(dist, res.Tokens[p], body, tol); reason != "" {
				spotFail = fmt.Sprintf("token %d (id %d): %s", p, res.Tokens[p].ID, reason)
			} else if !tol.All {
				spotFail = floor(p, dist[ids[np+p]])
			}
		}
	}
	if vd.Checked > 1 {
		vd.MeanDiff = (sum - vd.MaxDiff) / float64(vd.Checked-1)
	}
	if vd.MaxDiff > tol.OutlierDiff {
		return fail(vd, "log-prob mismatch at token %d: miner %.3f, validator %.3f (tolerance %.2f)", worst, res.Tokens[worst].LogProb, worstLP, tol.OutlierDiff)
	}
	if next >= 0 && vd.NextDiff > tol.MaxDiff {
		return fail(vd, "log-prob mismatches at tokens %d and %d: miner %.3f and %.3f, validator %.3f and %.3f (tolerance %.2f at all but one)",
			worst, next, res.Tokens[worst].LogProb, res.Tokens[next].LogProb, worstLP, nextLP, tol.MaxDiff)
	}
	if vd.MeanDiff > tol.MeanDiff {
		return fail(vd, "mean log-prob difference %.3f over tolerance %.3f (without the largest)", vd.MeanDiff, tol.MeanDiff)
	}
	if tol.All {
		for i, lp := range lps {
			if r := floor(i, lp); r != "" {
				return fail(vd, "%s", r)
			}
		}
		for i, a := range ahead {
			switch {
			case body.Temperature == 0 && a > 0:
				return fail(vd, "token %d (id %d): greedy answer is not the argmax: %d tokens are more probable by over %.2f nats", i, ids[np+i], a, tol.GreedyMargin)
			case body.Temperature != 0 && body.TopK > 0 && a >= int(body.TopK):
				return fail(vd, "token %d (id %d): outside the top-%d: %d tokens are more probable", i, ids[np+i], body.TopK, a)
			}
		}
	}
	if spotFail != "" {
		return fail(vd, "%s", spotFail)
	}
	vd.Pass = true
	return vd
}

// checkSpot checks one answered token against the validator's full
// log-softmax distribution lp at its position: the decoding rule of the
// request and the reported alternatives. It returns "" when it passes.
func checkSpot(lp []float64, tok task.Token, body task.Body, tol Tolerance) string {
	id := int(tok.ID)
	best := 0
	for i, x := range lp {
		if x > lp[best] {
			best = i
		}
	}
	mine := lp[id]
	if body.Temperature == 0 {
		if mine < lp[best]-tol.GreedyMargin {
			return fmt.Sprintf("greedy answer is not the argmax: log-prob %.3f, argmax id %d has %.3f", mine, best, lp[best])
		}
	} else {
		// tokens certainly ahead of this one (beyond the margin)
		ahead := 0
		var aheadMass, mass float64
		t := float64(body.Temperature)
		for _, x := range lp {
			if x > mine+tol.GreedyMargin {
				ahead++
				aheadMass += math.Exp((x - lp[best]) / t)
			}
		}
		k := len(lp)
		if body.TopK > 0 && int(body.TopK) < k {
			k = int(body.TopK)
		}
		if ahead >= k {
			return fmt.Sprintf("outside the top-%d: %d tokens are more probable", k, ahead)
		}
		if p := float64(body.TopP); p > 0 && p < 1 {
			// The mass of the top k (a tolerance check: the order of the
			// sum does not matter).
			for _, x := range topValues(lp, k) {
				mass += math.Exp((x - lp[best]) / t)
			}
			if aheadMass/mass >= p {
				return fmt.Sprintf("outside the top-p %.2f nucleus: %.3f of the mass is ahead of it", p, aheadMass/mass)
			}
		}
	}
	for _, a := range tok.Top {
		if int(a.ID) >= len(lp) {
			return fmt.Sprintf("alternative id %d outside the vocabulary", a.ID)
		}
		if d := math.Abs(float64(a.LogProb) - lp[a.ID]); !(d <= tol.OutlierDiff) {
			return fmt.Sprintf("alternative %d: miner %.3f, validator %.3f", a.ID, a.LogProb, lp[a.ID])
		}
	}
	return ""
}

// score is the teacher-forced pass over ids: the log-probs of ids[from:]
// given their prefixes, and the log-softmax at each position in qs (whose
// logits predict the id after it). On the accelerator when it serves: in
// one call when its sequence is a model.AccelScorer (the GPU runner's
// batched pass), else a forward per position; a pass that fails there
// runs again on the CPU model (Model.Score, then a one-token pass per spot
// over the KV cache it left). v.mu must be held; the distributions are
// reused by the next call.
//
// With ranks it also returns, for each scored token, how many tokens are
// more probable than it by over margin (model.LogProbAhead).
func (v *Verifier) score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	vocab := v.Model.Config.VocabSize
	for len(v.dists) < len(qs) {
		v.dists = append(v.dists, nil)
	}
	dists := v.dists[:len(qs)]
	for i := range dists {
		if cap(dists[i]) < vocab {
			dists[i] = make([]float64, vocab)
		}
		dists[i] = dists[i][:vocab]
	}
	if v.Accel != nil && v.Accel.Ready() {
		if seq := v.Accel.Begin(context.Background()); seq != nil {
			lps, ahead, err := scoreOn(seq, vocab, ids, from, qs, dists, ranks, margin)
			seq.End()
			if err == nil {
				v.accelPasses.Add(1)
				return lps, ahead, dists, nil
			}
			v.accelFallbacks.Add(1)
		}
	}
	var lps []float64
	var ahead []int
	var err error
	if ranks {
		lps, ahead, err = v.Model.ScoreRanks(ids, from, margin)
	} else {
		lps, err = v.Model.Score(ids, from)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	for i, q := range qs {
		logits, err := v.Model.Forward(ids[q], q)
		if err != nil {
			return nil, nil, nil, err
		}
		model.LogSoftmax(dists[i], logits)
	}
	return lps, ahead, dists, nil
}

// scoreOn is score's pass on an accelerator's sequence: in one call when
// it can (model.AccelScorer: the GPU's batched pass), else a forward per
// position. Results that cannot be right (the wrong counts, NaN) fail the
// sequence, and the pass runs again on the CPU.
func scoreOn(seq model.AccelSeq, vocab int, ids []int, from int, qs []int, dists [][]float64, ranks bool, margin float64) ([]float64, []int, error) {
	if err := model.CheckScore(vocab, ids, from, qs, margin); err != nil {
		return nil, nil, err // not the device's fault: the CPU pass reports it
	}
	if sc, ok := seq.(model.AccelScorer); ok && len(qs)*vocab*8 <= maxScoreBytes {
		lps, ahead, got, err := sc.Score(ids, from, qs, ranks, margin)
		if errors.Is(err, model.ErrScoreUnsupported) {
			return scoreForward(seq, vocab, ids, from, qs, dists, ranks, margin)
		}
		if err != nil {
			return nil, nil, err
		}
		if err := checkScored(vocab, len(ids)-from, len(qs), ranks, lps, ahead, got); err != nil {
			seq.Fail(err)
			return nil, nil, err
		}
		for i := range got {
			copy(dists[i], got[i])
		}
		return lps, ahead, nil
	}
	return scoreForward(seq, vocab, ids, from, qs, dists, ranks, margin)
}

// maxScoreBytes bounds the spot distributions one llama.score response
// carries (8 bytes a value); more spots go a forward per position.
const maxScoreBytes = 64 << 20

// scoreForward is scoreOn a forward per position, each position's logits
// checked.
func scoreForward(seq model.AccelSeq, vocab int, ids []int, from int, qs []int, dists [][]float64, ranks bool, margin float64) ([]float64, []int, error) {
	forward := func(token, pos int) ([]float32, error) {
		logits, err := seq.Forward(token, pos)
		if err != nil {
			return nil, err
		}
		if err := model.CheckLogits(logits, vocab); err != nil {
			seq.Fail(err)
			return nil, err
		}
		return logits, nil
	}
	return model.ScoreForward(forward, ids, from, qs, dists, ranks, margin)
}

// checkScored refuses an accelerator's teacher-forced results that cannot
// be right: n log-probs (and n counts with ranks, each in [0, vocab)),
// spots distributions of vocab values, no NaN, no +Inf, no log-prob above
// 0 by more than rounding.
func checkScored(vocab, n, spots int, ranks bool, lps []float64, ahead []int, dists [][]float64) error {
	if len(lps) != n || ranks && len(ahead) != n || len(dists) != spots {
		return fmt.Errorf("accelerator's score: %d log-probs, %d ranks, %d distributions; want %d, %d, %d", len(lps), len(ahead), len(dists), n, n, spots)
	}
	bad := func(v float64) bool { return math.IsNaN(v) || v > 1e-6 }
	for i, v := range lps {
		if bad(v) {
			return fmt.Errorf("accelerator's score: log-prob %d is %v", i, v)
		}
		if ranks && (ahead[i] < 0 || ahead[i] >= vocab) {
			return fmt.Errorf("accelerator's score: %d tokens ahead at %d", ahead[i], i)
		}
	}
	for i, d := range dists {
		if len(d) != vocab {
			return fmt.Errorf("accelerator's score: distribution %d has %d values, want %d", i, len(d), vocab)
		}
		for j, v := range d {
			if bad(v) {
				return fmt.Errorf("accelerator's score: distribution %d value %d is %v", i, j, v)
			}
		}
	}
	return nil
}

// topValues returns the k largest values of xs (all of xs when k covers
// them), in no particular order: a bounded min-heap, O(n log k).
func topValues(xs []float64, k int) []float64 {
	if k >= len(xs) {
		return xs
	}
	h := make([]float64, 0, k)
	down := func(i int) {
		for {
			m := i
			if l := 2*i + 1; l < len(h) && h[l] < h[m] {
				m = l
			}
			if r := 2*i + 2; r < len(h) && h[r] < h[m] {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for _, x := range xs {
		switch {
		case len(h) < k:
			h = append(h, x)
			for j := len(h) - 1; j > 0 && h[(j-1)/2] > h[j]; j = (j - 1) / 2 {
				h[(j-1)/2], h[j] = h[j], h[(j-1)/2]
			}
		case x > h[0]:
			h[0] = x
			down(0)
		}
	}
	return h
}
