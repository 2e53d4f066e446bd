package miner

// Answers on an accelerator: Config.Accel runs the model's forward passes
// on another device (the GPU runner behind cmd/taobox's adapter of
// runner.Engine), one answer at a time, with the sampler, the token checks
// and the signed final frame staying here. Its logits may differ from the
// CPU model's in the last bits (another summation order): validators'
// re-scoring tolerates that (validator.Tolerance), as it tolerates thread
// counts on the CPU.

import (
	"context"
	"fmt"
	"math"

	"taobox/model"
)

// Accelerator runs Config.Model's forward pass on another device.
type Accelerator interface {
	// Ready reports, cheaply, whether the accelerator can serve now.
	Ready() bool
	// Begin returns exclusive use of the accelerator's copy of the model
	// for one answer, waiting while another answer holds it, or nil at
	// once when the accelerator cannot serve now (the CPU answers), or
	// when ctx ends while it waits.
	Begin(ctx context.Context) AccelSeq
}

// AccelSeq is one answer on the accelerator: a KV cache of its own from
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
	// End frees the accelerator for the next answer; more than once, or
	// after Fail or a failed Forward, is fine.
	End()
}

// usesAccel reports whether honest answers from Config.Model may go to
// Config.Accel.
func (m *Miner) usesAccel() bool {
	return m.cfg.Accel != nil && m.cfg.Answer == nil && m.cfg.Model != nil
}

// accelReady reports whether the accelerator can take answers now.
func (m *Miner) accelReady() bool { return m.usesAccel() && m.cfg.Accel.Ready() }

// beginAccel returns a sequence on the accelerator for an honest answer
// from Config.Model, or nil when there is no accelerator or it cannot
// serve now.
func (m *Miner) beginAccel(ctx context.Context) AccelSeq {
	if !m.usesAccel() {
		return nil
	}
	return m.cfg.Accel.Begin(ctx)
}

// serveAccel answers r on seq, which it ends. If the accelerator fails
// mid-answer, the answer goes on on the CPU model: the tokens fed so far
// are replayed into its KV cache, the sampler continues where it was, and
// the client sees one answer.
func (m *Miner) serveAccel(ctx context.Context, r *request, seq AccelSeq) {
	a := m.startAnswer(ctx, r)
	if a == nil {
		seq.End()
		return
	}
	m.m.accelAnswers.Add(1)
	f := &failover{m: m, seq: seq}
	err := generate(a.ctx, m.cfg.Model.Config, r.body, m.cfg.StopIDs, f.forward, a.emit)
	f.end()
	a.end(err)
}

// failover is serveAccel's forward function: the accelerator's until it
// fails, then the CPU model's.
type failover struct {
	m      *Miner
	seq    AccelSeq // nil once on the CPU
	fed    []int    // tokens the accelerator ran, by position
	unlock func()   // holds the CPU model once on it
}

func (f *failover) forward(token, pos int) ([]float32, error) {
	mdl := f.m.cfg.Model
	if f.seq != nil {
		logits, err := f.seq.Forward(token, pos)
		if err == nil {
			if err = checkLogits(logits, mdl.Config.VocabSize); err != nil {
				f.seq.Fail(err)
			}
		}
		if err == nil && pos == len(f.fed) {
			f.fed = append(f.fed, token)
			return logits, nil
		}
		if err == nil {
			err = fmt.Errorf("position %d after %d tokens", pos, len(f.fed))
		}
		f.m.log.Warn("the accelerator failed mid-answer; the answer goes on on the CPU model", "err", err, "replayed_tokens", len(f.fed))
		f.m.m.accelFailovers.Add(1)
		f.seq.End()
		f.seq = nil
		f.unlock = lockModel(mdl)
		for i, t := range f.fed {
			if _, err := mdl.Forward(t, i); err != nil {
				return nil, fmt.Errorf("miner: replaying the answer on the CPU: %w", err)
			}
		}
	}
	return mdl.Forward(token, pos)
}

func (f *failover) end() {
	if f.seq != nil {
		f.seq.End()
	}
	if f.unlock != nil {
		f.unlock()
	}
}

// checkLogits refuses an accelerator's logits that the sampler cannot
// take: the wrong count, or a NaN or infinity (a faulty device).
func checkLogits(logits []float32, vocab int) error {
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

// checkBody refuses a request the model cannot answer: an empty prompt,
// one longer than the context, a token outside the vocabulary, sampler
// settings out of range.
func checkBody(c model.Config, s *model.Sampler, prompt []uint32) error {
	switch {
	case len(prompt) == 0:
		return fmt.Errorf("miner: empty prompt")
	case len(prompt) > c.SeqLen:
		return fmt.Errorf("miner: prompt of %d tokens exceeds context %d", len(prompt), c.SeqLen)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("miner: %w", err)
	}
	for i, id := range prompt {
		if int(id) >= c.VocabSize {
			return fmt.Errorf("miner: prompt: token %d (index %d) outside the vocabulary [0,%d)", id, i, c.VocabSize)
		}
	}
	return nil
}
