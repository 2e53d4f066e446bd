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

	"taobox/model"
)

// Accelerator and AccelSeq are model's: the miner's answers use them.
type (
	Accelerator = model.Accelerator
	AccelSeq    = model.AccelSeq
)

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
			if err = model.CheckLogits(logits, mdl.Config.VocabSize); err != nil {
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
