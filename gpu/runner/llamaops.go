package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"taobox/model"
)

// LlamaModel is what the llama ops need from a loaded model: gpu.Llama in
// taobox-cuda (weights resident on the GPU), a CPU model in tests.
// Forward runs one token at position pos and returns the logits, reusing
// the KV cache below pos (model.Model.Forward's contract); Generate is
// greedy from position 0; Score is model.AccelScorer's teacher-forced
// pass (from position 0; ScoreForward over Forward where there is no
// faster way); Config gives the vocabulary's size. The ops call one method
// at a time.
type LlamaModel interface {
	Forward(token, pos int) ([]float32, error)
	Generate(prompt []int, n int) ([]int, []float64, error)
	Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error)
	Config() model.Config
	Close() error
}

// Feeder is a LlamaModel that can run several tokens in one call (on the
// GPU, a prompt as batched matrix products): tokens at positions pos,
// pos+1, …, returning the last position's logits as Forward would.
// llama.sample uses it when the model has it.
type Feeder interface {
	Feed(tokens []int, pos int) ([]float32, error)
}

// ScoreByForward is LlamaModel.Score for a model with only Forward: the
// arguments checked (model.CheckScore), then model.ScoreForward.
func ScoreByForward(m interface {
	Forward(token, pos int) ([]float32, error)
	Config() model.Config
}, ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	vocab := m.Config().VocabSize
	if err := model.CheckScore(vocab, ids, from, qs, margin); err != nil {
		return nil, nil, nil, err
	}
	dists := make([][]float64, len(qs))
	for i := range dists {
		dists[i] = make([]float64, vocab)
	}
	lps, ahead, err := model.ScoreForward(m.Forward, ids, from, qs, dists, ranks, margin)
	return lps, ahead, dists, err
}

// LlamaOps serves llama.load, llama.forward and llama.generate with one
// model at a time: a load replaces the model (closing the old one first,
// so that two never hold GPU memory together). The zero value with Open
// set is ready; Close the model when the server is done.
type LlamaOps struct {
	// Open loads the GGUF file at path and describes the loaded model in
	// a line (its shape and memory).
	Open func(path string) (LlamaModel, string, error)

	mu   sync.Mutex
	m    LlamaModel
	smp  model.Sampler // sample's, reused with its buffers
	alts []model.Alt   // sample's, reused
}

// Handlers returns the five llama ops for Server.Ops.
func (o *LlamaOps) Handlers() map[Op]Handler {
	return map[Op]Handler{
		OpLlamaLoad:     o.load,
		OpLlamaForward:  o.forward,
		OpLlamaGenerate: o.generate,
		OpLlamaScore:    o.score,
		OpLlamaSample:   o.sample,
	}
}

// Close closes the loaded model, if any.
func (o *LlamaOps) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		return nil
	}
	err := o.m.Close()
	o.m = nil
	return err
}

func (o *LlamaOps) load(_ context.Context, p, out []byte) ([]byte, error) {
	if len(p) == 0 {
		return nil, errors.New("llama.load: empty path")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m != nil {
		o.m.Close()
		o.m = nil
	}
	m, desc, err := o.Open(string(p))
	if err != nil {
		return nil, err
	}
	o.m = m
	return append(out, desc...), nil
}

// held locks the ops and returns the loaded model; call unlock when done
// with it.
func (o *LlamaOps) held() (m LlamaModel, unlock func(), err error) {
	o.mu.Lock()
	if o.m == nil {
		o.mu.Unlock()
		return nil, nil, errors.New("no model loaded (send llama.load first)")
	}
	return o.m, o.mu.Unlock, nil
}

func (o *LlamaOps) forward(_ context.Context, p, out []byte) ([]byte, error) {
	tok, pos, err := DecodeForward(p)
	if err != nil {
		return nil, err
	}
	m, unlock, err := o.held()
	if err != nil {
		return nil, err
	}
	defer unlock()
	logits, err := m.Forward(tok, pos)
	if err != nil {
		return nil, err
	}
	return EncodeLogits(out, logits), nil
}

func (o *LlamaOps) score(_ context.Context, p, out []byte) ([]byte, error) {
	r, err := DecodeScore(p)
	if err != nil {
		return nil, err
	}
	m, unlock, err := o.held()
	if err != nil {
		return nil, err
	}
	defer unlock()
	vocab := m.Config().VocabSize
	if err := model.CheckScore(vocab, r.IDs, r.From, r.Spots, r.Margin); err != nil {
		return nil, err
	}
	lps, ahead, dists, err := m.Score(r.IDs, r.From, r.Spots, r.Ranks, r.Margin)
	if err != nil {
		return nil, err
	}
	for _, d := range dists {
		if len(d) != vocab {
			return nil, fmt.Errorf("llama.score: a distribution of %d values, want %d", len(d), vocab)
		}
	}
	return EncodeScored(out, Scored{LogProbs: lps, Ahead: ahead, Dists: dists, Vocab: vocab}), nil
}

// sample feeds the request's tokens and draws the next one with the
// miner's sampler code (model.SampleFrom), so that only the drawn token,
// its log-prob and the alternatives cross back.
func (o *LlamaOps) sample(_ context.Context, p, out []byte) ([]byte, error) {
	r, err := DecodeSample(p)
	if err != nil {
		return nil, err
	}
	m, unlock, err := o.held()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// One sampler for every request (under o.mu): its vocabulary-sized
	// buffers are allocated once, not per token.
	s := &o.smp
	s.Temperature, s.TopK, s.TopP, s.Seed = r.Temperature, r.TopK, r.TopP, r.Seed
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("llama.sample: %w", err)
	}
	vocab := m.Config().VocabSize
	for i, t := range r.Tokens {
		if t < 0 || t >= vocab {
			return nil, fmt.Errorf("llama.sample: token %d (index %d) outside the vocabulary [0,%d)", t, i, vocab)
		}
	}
	var logits []float32
	if f, ok := m.(Feeder); ok {
		logits, err = f.Feed(r.Tokens, r.Pos)
	} else {
		for i, t := range r.Tokens {
			if logits, err = m.Forward(t, r.Pos+i); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := model.CheckLogits(logits, vocab); err != nil {
		return nil, fmt.Errorf("llama.sample: the model's %w", err)
	}
	s.Resume(r.Draws)
	id, lp, alts := model.SampleFrom(logits, s, r.Alts, o.alts)
	o.alts = alts
	return EncodeSampled(out, Sampled{ID: id, LogProb: lp, Draws: s.Draws(), Alts: alts}), nil
}

func (o *LlamaOps) generate(_ context.Context, p, out []byte) ([]byte, error) {
	prompt, n, err := DecodeGenerate(p)
	if err != nil {
		return nil, err
	}
	m, unlock, err := o.held()
	if err != nil {
		return nil, err
	}
	defer unlock()
	toks, lps, err := m.Generate(prompt, n)
	if err != nil {
		return nil, err
	}
	return EncodeGenerated(out, toks, lps), nil
}
