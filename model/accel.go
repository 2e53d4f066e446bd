package model

import (
	"context"
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

// CheckLogits refuses an accelerator's logits that the sampler and the
// scoring cannot take: the wrong count, or a NaN or infinity (a faulty
// device).
func CheckLogits(logits []float32, vocab int) error {
	if len(logits) != vocab {
		return fmt.Errorf("%d logits, want %d", len(logits), vocab)
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("logit %d is %v", i, v)
		}
	}
	return nil
}
