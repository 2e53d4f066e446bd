package runner

import (
	"context"
	"errors"
	"sync"
)

// LlamaModel is what the llama ops need from a loaded model: gpu.Llama in
// taobox-cuda (weights resident on the GPU), a CPU model in tests.
// Forward runs one token at position pos and returns the logits, reusing
// the KV cache below pos (model.Model.Forward's contract); Generate is
// greedy from position 0. The ops call one method at a time.
type LlamaModel interface {
	Forward(token, pos int) ([]float32, error)
	Generate(prompt []int, n int) ([]int, []float64, error)
	Close() error
}

// LlamaOps serves llama.load, llama.forward and llama.generate with one
// model at a time: a load replaces the model (closing the old one first,
// so that two never hold GPU memory together). The zero value with Open
// set is ready; Close the model when the server is done.
type LlamaOps struct {
	// Open loads the GGUF file at path and describes the loaded model in
	// a line (its shape and memory).
	Open func(path string) (LlamaModel, string, error)

	mu sync.Mutex
	m  LlamaModel
}

// Handlers returns the three ops for Server.Ops.
func (o *LlamaOps) Handlers() map[Op]Handler {
	return map[Op]Handler{
		OpLlamaLoad:     o.load,
		OpLlamaForward:  o.forward,
		OpLlamaGenerate: o.generate,
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
