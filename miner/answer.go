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
		return generate(ctx, mdl.Config, b, stop, mdl.Forward, emit)
	}
}

// generate is one answer's loop, whatever runs the model: forward the
// prompt from position 0, then draw up to MaxTokens tokens with the body's
// sampler and seed (stopping after any of stop or at the end of the
// context window), emitting each as it is drawn. forward's logits are read
// only until its next call.
func generate(ctx context.Context, c model.Config, b task.Body, stop []int, forward func(token, pos int) ([]float32, error), emit func(task.Token) error) error {
	s := model.Sampler{Temperature: float64(b.Temperature), TopK: int(b.TopK), TopP: float64(b.TopP), Seed: b.Seed}
	if err := checkBody(c, &s, b.PromptIDs); err != nil {
		return err
	}
	s.Reset()
	var logits []float32
	var err error
	for i, id := range b.PromptIDs {
		if logits, err = forward(int(id), i); err != nil {
			return fmt.Errorf("miner: prompt: %w", err)
		}
	}
	pos := len(b.PromptIDs)
	n := min(int(b.MaxTokens), c.SeqLen-pos+1)
	var alts []model.Alt
	for k := 0; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, lp := s.Step(logits)
		t := task.Token{ID: uint32(next), LogProb: logProb32(lp)}
		if b.TopAlts > 0 {
			alts = model.AppendTopAlternatives(alts[:0], logits, int(b.TopAlts))
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
		if logits, err = forward(next, pos); err != nil {
			return fmt.Errorf("miner: generate: %w", err)
		}
		pos++
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
