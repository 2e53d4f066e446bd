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
	"errors"
	"fmt"
	"math"
	"slices"

	"taobox/model"
	"taobox/task"
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

// serveAccel answers r on seq, which it ends: a short greedy request
// without alternatives in one call when seq can (greedyOnAccel), else
// token by token. If the accelerator fails mid-answer, the answer goes on on the CPU
// model: the tokens fed so far are replayed into its KV cache, the sampler
// continues where it was, and the client sees one answer.
func (m *Miner) serveAccel(ctx context.Context, r *request, seq AccelSeq) {
	a := m.startAnswer(ctx, r)
	if a == nil {
		seq.End()
		return
	}
	m.m.accelAnswers.Add(1)
	if g, ok := seq.(model.AccelGreedy); ok && oneCall(r.body) {
		a.end(m.greedyOnAccel(a, g))
		return
	}
	f := newFailover(m, seq)
	err := generate(a.ctx, m.cfg.Model.Config, r.body, m.cfg.StopIDs, f.step, a.emit)
	f.end()
	a.end(err)
}

// oneCallMax bounds the prompt and answer of a greedy request that runs
// in one call on the accelerator: that call cannot be cut short (by a stop
// token, a client that left, a timeout) and streams nothing until it ends,
// so only short answers — a validator's tasks ask for 8 to 48 tokens — go
// that way; longer ones run token by token.
const (
	oneCallMaxTokens = 64
	oneCallMaxTotal  = 512
)

// oneCall reports whether body runs in one greedy call on the accelerator.
func oneCall(b task.Body) bool {
	return b.Temperature == 0 && b.TopAlts == 0 && b.MaxTokens <= oneCallMaxTokens &&
		len(b.PromptIDs)+int(b.MaxTokens) <= oneCallMaxTotal
}

// greedyOnAccel answers a short greedy request without alternatives in one
// call on the accelerator (the tokens never cross to the host between
// steps), then streams the tokens up to the first stop token. Whatever
// fails there runs the whole answer on the CPU model: nothing was
// streamed yet.
func (m *Miner) greedyOnAccel(a *answerRun, g model.AccelGreedy) error {
	mdl, body := m.cfg.Model, a.r.body
	c := mdl.Config
	s := model.Sampler{Temperature: float64(body.Temperature), TopK: int(body.TopK), TopP: float64(body.TopP), Seed: body.Seed}
	if err := checkBody(c, &s, body.PromptIDs); err != nil {
		g.End()
		return err
	}
	prompt := make([]int, len(body.PromptIDs))
	for i, id := range body.PromptIDs {
		prompt[i] = int(id)
	}
	n := min(int(body.MaxTokens), c.SeqLen-len(prompt)+1)
	toks, lps, err := g.Generate(prompt, n)
	if err == nil {
		if toks, lps, err = checkGenerated(toks, lps, n, c.VocabSize, m.cfg.StopIDs); err != nil {
			g.Fail(err)
		}
	}
	g.End()
	if err != nil {
		if cerr := a.ctx.Err(); cerr != nil {
			return cerr // the client left, or the answer timed out
		}
		m.log.Warn("the accelerator failed an answer; it runs on the CPU model", "err", err)
		m.m.accelFailovers.Add(1)
		unlock := lockModel(mdl)
		defer unlock()
		return generate(a.ctx, c, body, m.cfg.StopIDs, forwardStep(mdl.Forward), a.emit)
	}
	for k, id := range toks {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.emit(task.Token{ID: uint32(id), LogProb: logProb32(lps[k])}); err != nil {
			return err
		}
	}
	return nil
}

// checkGenerated cuts an accelerator's greedy generation after its first
// stop token and refuses what the answer cannot use: the wrong count, an
// id outside the vocabulary, a log-prob that is NaN, infinite or positive
// beyond rounding (only up to the cut: what follows is never sent).
func checkGenerated(toks []int, lps []float64, n, vocab int, stop []int) ([]int, []float64, error) {
	if len(toks) != n || len(lps) != n {
		return nil, nil, fmt.Errorf("%d tokens and %d log-probs, want %d", len(toks), len(lps), n)
	}
	for k, id := range toks {
		if slices.Contains(stop, id) {
			toks, lps = toks[:k+1], lps[:k+1]
			break
		}
	}
	for k, id := range toks {
		if id < 0 || id >= vocab {
			return nil, nil, fmt.Errorf("token %d: id %d outside the vocabulary [0,%d)", k, id, vocab)
		}
		if lp := lps[k]; math.IsNaN(lp) || math.IsInf(lp, 0) || lp > 1e-6 {
			return nil, nil, fmt.Errorf("token %d: log-prob %v", k, lp)
		}
	}
	return toks, lps, nil
}

// failover runs serveAccel's steps: on the accelerator until it fails,
// then on the CPU model. On an accelerator that draws tokens itself
// (model.AccelSampler: the runner's llama.sample) a step is one call and
// the logits stay there; otherwise each token's logits come back.
type failover struct {
	m      *Miner
	seq    AccelSeq           // nil once on the CPU
	sample model.AccelSampler // seq, while it draws tokens itself
	fed    []int              // tokens the accelerator ran, by position
	unlock func()             // holds the CPU model once on it
}

func newFailover(m *Miner, seq AccelSeq) *failover {
	f := &failover{m: m, seq: seq}
	f.sample, _ = seq.(model.AccelSampler)
	return f
}

// step is generate's stepFunc.
func (f *failover) step(tokens []int, pos int, s *model.Sampler, alts int, top []model.Alt) (int, float64, []model.Alt, error) {
	if f.seq == nil || f.sample == nil {
		return forwardStep(f.forward)(tokens, pos, s, alts, top)
	}
	if pos != len(f.fed) {
		if err := f.toCPU(fmt.Errorf("position %d after %d tokens", pos, len(f.fed))); err != nil {
			return 0, 0, nil, err
		}
		return forwardStep(f.forward)(tokens, pos, s, alts, top)
	}
	before := s.Draws()
	id, lp, alt, err := f.sample.Sample(tokens, pos, s, alts, top)
	if errors.Is(err, model.ErrSampleUnsupported) {
		f.sample = nil // an older runner: its logits come back
		return forwardStep(f.forward)(tokens, pos, s, alts, top)
	}
	if err == nil {
		if err = model.CheckSampled(id, lp, alt, alts, f.m.cfg.Model.Config.VocabSize); err != nil {
			f.seq.Fail(err)
			s.Resume(before) // the CPU draws this step again
		}
	}
	if err != nil {
		if err := f.toCPU(err); err != nil {
			return 0, 0, nil, err
		}
		return forwardStep(f.forward)(tokens, pos, s, alts, top)
	}
	f.fed = append(f.fed, tokens...)
	return id, lp, alt, nil
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
		if err := f.toCPU(err); err != nil {
			return nil, err
		}
	}
	return mdl.Forward(token, pos)
}

// toCPU moves the answer to the CPU model after the accelerator failed
// with cause: it ends the sequence, takes the CPU model and replays the
// tokens the accelerator ran into its KV cache.
func (f *failover) toCPU(cause error) error {
	mdl := f.m.cfg.Model
	f.m.log.Warn("the accelerator failed mid-answer; the answer goes on on the CPU model", "err", cause, "replayed_tokens", len(f.fed))
	f.m.m.accelFailovers.Add(1)
	f.seq.End()
	f.seq, f.sample = nil, nil
	f.unlock = lockModel(mdl)
	for i, t := range f.fed {
		if _, err := mdl.Forward(t, i); err != nil {
			return fmt.Errorf("miner: replaying the answer on the CPU: %w", err)
		}
	}
	return nil
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
