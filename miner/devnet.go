package miner

// DEVNET ONLY. Cheating behaviours for the devnet's scripted miners: pass one
// as Config.Answer. A real miner never sets Config.Answer.

import (
	"context"
	"math"
	"math/rand/v2"

	"taobox/model"
	"taobox/task"
)

// RandomAnswer emits MaxTokens uniformly random token ids below vocab with
// made-up log-probs (what a miner that skips the model would send).
func RandomAnswer(vocab int, seed uint64) AnswerFunc {
	rng := rand.New(rand.NewPCG(seed, seed^0xa5a5))
	return func(ctx context.Context, b task.Body, emit func(task.Token) error) error {
		for range b.MaxTokens {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := uint32(rng.IntN(vocab))
			t := task.Token{ID: id, LogProb: -float32(math.Log(float64(vocab)))}
			for i := range min(int(b.TopAlts), vocab) {
				t.Top = append(t.Top, task.Alt{ID: uint32((int(id) + i) % vocab), LogProb: t.LogProb})
			}
			if err := emit(t); err != nil {
				return err
			}
		}
		return nil
	}
}

// OtherModelAnswer answers honestly but with another model than the one the
// validator asked for (the request's model hash is ignored by the answer;
// the miner still advertises Config.ModelHash).
func OtherModelAnswer(other *model.Model, stop []int) AnswerFunc { return ModelAnswer(other, stop) }
