package model

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Accelerator runs a Model's forward pass on another device (the GPU
// runner, through cmd/taobox's adapter of runner.Engine): the miner
// generates and the validator re-scores on it, keeping the sampler and
// every check on this side.
type Accelerator interface {
	// Ready reports, cheaply, whether the accelerator can serve now.
	Ready() bool
	// Begin returns exclusive use of the accelerator's copy of the model
	// for one sequence, waiting while another holds it, or nil at once
	// when the accelerator cannot serve now (the CPU model is used), or
	// when ctx ends while it waits.
	Begin(ctx context.Context) AccelSeq
}

// AccelSeq is one sequence on an Accelerator: a KV cache of its own from
// position 0 until End.
type AccelSeq interface {
	// Forward runs token at pos (pos counts the earlier calls) and
	// returns the logits, which the caller only reads until the next
	// call. After an error the sequence is unusable.
	Forward(token, pos int) ([]float32, error)
	// Fail ends the sequence because its output was unusable (NaN
	// logits, the wrong count), so that a device that keeps failing is
	// retired.
	Fail(err error)
	// End frees the accelerator for the next sequence; more than once,
	// or after Fail or a failed Forward, is fine.
	End()
}

// AccelGreedy is an AccelSeq that can also generate greedily in one call,
// the tokens staying on the device between steps (the runner's
// llama.generate): prompt from position 0, then n tokens, each the argmax
// (lowest id on ties) with its log-prob, as Generate on the CPU. It
// replaces the sequence's KV cache.
type AccelGreedy interface {
	AccelSeq
	Generate(prompt []int, n int) ([]int, []float64, error)
}

// AccelScorer is an AccelSeq that can also run a validator's
// teacher-forced pass in one call (the runner's llama.score: on the GPU a
// batched pass, with the reductions done there, so only the results
// cross the boundary). It replaces the sequence's KV cache. Its results
// are ScoreForward's over the device's logits: the log-probs of ids[from:]
// (each given its prefix), with ranks the count of tokens ahead of each
// by more than margin (LogProbAhead), and the log-softmax at each position
// in qs (each in [0, len(ids)-1)).
type AccelScorer interface {
	AccelSeq
	Score(ids []int, from int, qs []int, ranks bool, margin float64) (lps []float64, ahead []int, dists [][]float64, err error)
}

// AccelSampler is an AccelSeq that can also draw tokens on the device's
// side (the runner's llama.sample), so that the logits never cross the
// boundary: Sample feeds tokens at positions pos, pos+1, … (pos counts the
// tokens fed before) and draws the next token from the last position's
// logits exactly as SampleFrom does with s, advancing s as s.Step would;
// on an error s is unchanged and the sequence is unusable, except that
// ErrSampleUnsupported (an older runner) leaves it usable with Forward.
type AccelSampler interface {
	AccelSeq
	Sample(tokens []int, pos int, s *Sampler, alts int, top []Alt) (id int, logprob float64, alt []Alt, err error)
}

// ErrSampleUnsupported is AccelSampler.Sample's error when the device
// cannot draw tokens after all (an older runner): the sequence is still
// usable through Forward.
var ErrSampleUnsupported = errors.New("the accelerator cannot draw tokens")

// SampleFrom is one generation step on logits: s.Step (the drawn id and
// its log-prob) and, when alts > 0, the top alts alternatives appended to
// top[:0] (AppendTopAlternatives).
func SampleFrom(logits []float32, s *Sampler, alts int, top []Alt) (id int, logprob float64, alt []Alt) {
	id, logprob = s.Step(logits)
	alt = top[:0]
	if alts > 0 {
		alt = AppendTopAlternatives(alt, logits, alts)
	}
	return id, logprob, alt
}

// CheckSampled refuses a device's step that cannot come from SampleFrom
// over valid logits: an id outside the vocabulary, a log-prob that is NaN,
// infinite or above 0 beyond rounding, or alternatives of the wrong
// count, out of the vocabulary, repeated or with a log-prob above the one
// before (equal log-probs may come in either id order: the ranking breaks
// ties on the float32 logits, which can differ where the log-probs round
// equal).
func CheckSampled(id int, logprob float64, alt []Alt, alts, vocab int) error {
	bad := func(lp float64) bool { return math.IsNaN(lp) || math.IsInf(lp, 0) || lp > 1e-6 }
	if id < 0 || id >= vocab {
		return fmt.Errorf("drawn id %d outside the vocabulary [0,%d)", id, vocab)
	}
	if bad(logprob) {
		return fmt.Errorf("drawn token's log-prob %v", logprob)
	}
	if want := min(max(alts, 0), vocab); len(alt) != want {
		return fmt.Errorf("%d alternatives, want %d", len(alt), want)
	}
	for i, a := range alt {
		if a.ID < 0 || a.ID >= vocab || bad(a.LogProb) {
			return fmt.Errorf("alternative %d: id %d, log-prob %v", i, a.ID, a.LogProb)
		}
		if i > 0 && a.LogProb > alt[i-1].LogProb {
			return fmt.Errorf("alternative %d out of order", i)
		}
		for _, b := range alt[:i] {
			if b.ID == a.ID {
				return fmt.Errorf("alternative %d repeats id %d", i, a.ID)
			}
		}
	}
	return nil
}

// ErrScoreUnsupported is AccelScorer.Score's error when the device cannot
// run the pass in one call after all (an older runner): the sequence is
// still usable, a forward per position.
var ErrScoreUnsupported = errors.New("the accelerator cannot score in one call")

// CheckScore validates a teacher-forced pass's arguments as every
// implementation of AccelScorer.Score takes them: at least two ids, each
// in [0, vocab); 1 ≤ from < len(ids); each spot in [0, len(ids)-1); a
// margin ≥ 0 (only used with ranks, but always checked: callers pass
// their configured margin).
func CheckScore(vocab int, ids []int, from int, qs []int, margin float64) error {
	if len(ids) < 2 || from < 1 || from >= len(ids) {
		return fmt.Errorf("score: %d ids from %d: need at least two ids and 1 ≤ from < %d", len(ids), from, len(ids))
	}
	for i, t := range ids {
		if t < 0 || t >= vocab {
			return fmt.Errorf("score: id %d (index %d) outside the vocabulary [0,%d)", t, i, vocab)
		}
	}
	for _, q := range qs {
		if q < 0 || q >= len(ids)-1 {
			return fmt.Errorf("score: spot position %d outside [0,%d)", q, len(ids)-1)
		}
	}
	if !(margin >= 0) {
		return fmt.Errorf("score: margin %v must be ≥ 0", margin)
	}
	return nil
}

// ScoreForward is the teacher-forced pass one forward per position:
// forward(ids[p], p) for p from 0 to len(ids)-2, each position's logits
// giving the log-prob of ids[p+1] for p ≥ from-1 (with ranks also the
// count ahead by over margin, LogProbAhead) and, at each position in qs,
// the log-softmax into dists (one slice of vocab values per spot).
// Arguments as CheckScore takes them.
func ScoreForward(forward func(token, pos int) ([]float32, error), ids []int, from int, qs []int, dists [][]float64, ranks bool, margin float64) ([]float64, []int, error) {
	lps := make([]float64, 0, len(ids)-from)
	var ahead []int
	for p := 0; p+1 < len(ids); p++ {
		logits, err := forward(ids[p], p)
		if err != nil {
			return nil, nil, err
		}
		if p >= from-1 {
			if ranks {
				lp, a := LogProbAhead(logits, ids[p+1], margin)
				lps, ahead = append(lps, lp), append(ahead, a)
			} else {
				lps = append(lps, LogProb(logits, ids[p+1]))
			}
		}
		for i, q := range qs {
			if q == p {
				LogSoftmax(dists[i], logits)
			}
		}
	}
	return lps, ahead, nil
}

// CheckLogits refuses an accelerator's logits that the sampler and the
// scoring cannot take: the wrong count, or a NaN or infinity (a faulty
// device).
func CheckLogits(logits []float32, vocab int) error {
	if len(logits) != vocab {
		return fmt.Errorf("%d logits, want %d", len(logits), vocab)
	}
	// NaN and ±Inf are the values whose exponent bits are all ones.
	const exp = 0x7f800000
	for i, v := range logits {
		if math.Float32bits(v)&exp == exp {
			return fmt.Errorf("logit %d is %v", i, v)
		}
	}
	return nil
}
