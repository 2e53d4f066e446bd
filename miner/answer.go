package miner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"taobox/model"
	"taobox/task"
)

// modelLocks serializes every use of one *model.Model across all miners in
// the process (a model keeps its KV cache inside and is not safe for
// concurrent use; the devnet may share one between miners).
var modelLocks sync.Map // *model.Model → *sync.Mutex

func lockModel(m *model.Model) func() {
	mu, _ := modelLocks.LoadOrStore(m, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// ModelAnswer generates honestly with mdl: exactly the tokens and log-probs
// of mdl.GenerateSampled with the body's sampler settings and seed (each
// token's arithmetic in Forward equals the batched prefill's), emitted as
// each is generated. Generation stops after any of stop, after MaxTokens,
// or at the end of the context window.
func ModelAnswer(mdl *model.Model, stop []int) AnswerFunc {
	return func(ctx context.Context, b task.Body, emit func(task.Token) error) error {
		unlock := lockModel(mdl)
		defer unlock()
		return generate(ctx, mdl.Config, b, stop, forwardStep(mdl.Forward), emit)
	}
}

// stepFunc is one generation step, whatever runs the model: feed tokens
// at positions pos, pos+1, … and draw the next token from the last
// position's logits with s (model.SampleFrom: the id, its log-prob and
// alts alternatives appended to top[:0]).
type stepFunc func(tokens []int, pos int, s *model.Sampler, alts int, top []model.Alt) (int, float64, []model.Alt, error)

// forwardStep is stepFunc over a forward function: the logits come back
// to this side and are drawn from here.
func forwardStep(forward func(token, pos int) ([]float32, error)) stepFunc {
	return func(tokens []int, pos int, s *model.Sampler, alts int, top []model.Alt) (int, float64, []model.Alt, error) {
		var logits []float32
		for i, t := range tokens {
			var err error
			if logits, err = forward(t, pos+i); err != nil {
				return 0, 0, nil, err
			}
		}
		id, lp, alt := model.SampleFrom(logits, s, alts, top)
		return id, lp, alt, nil
	}
}

// generate is one answer's loop, whatever runs the model: feed the prompt
// from position 0, then draw up to MaxTokens tokens with the body's
// sampler and seed (stopping after any of stop or at the end of the
// context window), emitting each as it is drawn and feeding it back.
func generate(ctx context.Context, c model.Config, b task.Body, stop []int, step stepFunc, emit func(task.Token) error) error {
	s := model.Sampler{Temperature: float64(b.Temperature), TopK: int(b.TopK), TopP: float64(b.TopP), Seed: b.Seed}
	if err := checkBody(c, &s, b.PromptIDs); err != nil {
		return err
	}
	s.Reset()
	feed := make([]int, len(b.PromptIDs))
	for i, id := range b.PromptIDs {
		feed[i] = int(id)
	}
	pos := 0
	n := min(int(b.MaxTokens), c.SeqLen-len(feed)+1)
	var alts []model.Alt
	for k := 0; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, lp, alt, err := step(feed, pos, &s, int(b.TopAlts), alts)
		if err != nil {
			if k == 0 {
				return fmt.Errorf("miner: prompt: %w", err)
			}
			return fmt.Errorf("miner: generate: %w", err)
		}
		alts = alt
		pos += len(feed)
		t := task.Token{ID: uint32(next), LogProb: logProb32(lp)}
		if b.TopAlts > 0 {
			t.Top = make([]task.Alt, len(alts))
			for i, a := range alts {
				t.Top[i] = task.Alt{ID: uint32(a.ID), LogProb: logProb32(a.LogProb)}
			}
		}
		if err := emit(t); err != nil {
			return err
		}
		if k == n-1 || slices.Contains(stop, next) {
			break
		}
		feed = append(feed[:0], next)
	}
	return nil
}

// logProb32 narrows a log-prob to the wire's canonical float32 (≤ 0, no -0,
// no NaN; NaN becomes -Inf).
func logProb32(lp float64) float32 {
	f := float32(lp)
	switch {
	case f != f:
		return float32(math.Inf(-1))
	case f >= 0:
		return 0
	}
	return f
}
