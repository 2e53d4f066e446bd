package model

// Several sequences on one model (continuous batching).
//
// A Model has one KV cache, the one Forward, Generate, GenerateSampled and
// Score use. A Seq is another sequence's KV cache on the same model, and
// ForwardBatch runs one step for up to MaxBatch tokens that may each belong
// to a different Seq, at its own position: the tokens share the weight
// reads of every product (the prompt path's blocked products: each weight
// row is read once per step and used for every token), while each token
// has its own RoPE angles, writes its key and value into its own Seq, and
// attends over its own Seq only. Decoding B sequences one token each then
// costs about one weight sweep instead of B, which is what a memory-bound
// decoder gains from batching.
//
// Contract: the logits ForwardBatch returns for a token are bit-identical to
// what Forward returns for that token at that position of a model whose KV
// cache holds the same sequence, whatever the other tokens of the step, the
// batch size or the thread count, because each token's arithmetic is
// exactly that of a one-token block (see forwardTokens). A validator that
// re-scores an answer from a batched miner with Score gets the same
// log-probs, and greedy tokens are its argmax.
//
// Design note: llama.cpp's server and vLLM batch the same way (one step
// over the next token of every running sequence, new prompts mixed in as
// chunks). Here the KV caches are contiguous per sequence (SeqLen
// positions each, no paging): a Seq costs exactly one Forward cache, and
// attention reads its rows with the same kernels as the one-sequence path.

import (
	"errors"
	"fmt"
)

// Seq is the KV cache of one sequence of a Model, for ForwardBatch and
// Prefill: NLayers × SeqLen × KVDim keys and as many values, float32
// (KVCacheBytes). It holds no position: the caller says at which position
// each token goes, as with Forward. A Seq belongs to the model that made it
// and is used under the same rule (not concurrently with any other use of
// that model).
type Seq struct {
	m          *Model
	key, value []float32
}

// NewSeq allocates a sequence's KV cache on m (KVCacheBytes bytes).
func (m *Model) NewSeq() *Seq {
	c := &m.Config
	n := c.NLayers * c.SeqLen * c.KVDim()
	return &Seq{m: m, key: make([]float32, n), value: make([]float32, n)}
}

// KVCacheBytes is the memory of one sequence's KV cache: what NewSeq
// allocates, and what Forward's own sequence holds.
func (m *Model) KVCacheBytes() int64 {
	c := &m.Config
	return 2 * 4 * int64(c.NLayers) * int64(c.SeqLen) * int64(c.KVDim())
}

// BatchToken is one token of a ForwardBatch step: Token at position Pos of
// sequence Seq.
type BatchToken struct {
	Seq        *Seq
	Token, Pos int
	// NoLogits skips the token's logits (a prompt token whose successor is
	// also in the prompt); ForwardBatch returns none for it.
	NoLogits bool
}

// ErrBatch reports a ForwardBatch step that breaks its contract.
var ErrBatch = errors.New("invalid batch")

// ForwardBatch runs one step: each token of batch (1..MaxBatch of them) at
// its position of its sequence, using and extending that sequence's KV
// cache as Forward does its own: positions < Pos of the token's Seq must
// have been written before, by earlier steps, by Prefill, or by tokens of
// the same Seq earlier in this batch (a prompt chunk: consecutive
// positions of one Seq, every token but the last with NoLogits). No two
// tokens may name the same position of the same Seq.
//
// It returns the logits of the tokens without NoLogits, in batch order, the
// j-th of them at [j*VocabSize:(j+1)*VocabSize]; each is bit-identical to
// Forward's for the same sequence (see the file comment). The slice is
// owned by the model and overwritten by its next step, Forward or other
// use. It does not allocate. An invalid batch returns an error wrapping
// ErrBatch (or ErrPosition for a position outside the context) and
// changes nothing.
func (m *Model) ForwardBatch(batch []BatchToken) ([]float32, error) {
	c := &m.Config
	if len(batch) == 0 || len(batch) > maxBatch {
		return nil, fmt.Errorf("%w: %d tokens, want 1..%d", ErrBatch, len(batch), maxBatch)
	}
	nw := 0
	for i := range batch {
		b := &batch[i]
		switch {
		case b.Seq == nil || b.Seq.m != m:
			return nil, fmt.Errorf("%w: token %d: its Seq is nil or was made by another model", ErrBatch, i)
		case b.Token < 0 || b.Token >= c.VocabSize:
			return nil, fmt.Errorf("%w: token %d: id %d outside the vocabulary [0,%d)", ErrBatch, i, b.Token, c.VocabSize)
		case b.Pos < 0 || b.Pos >= c.SeqLen:
			return nil, fmt.Errorf("%w: token %d: %d not in [0,%d)", ErrPosition, i, b.Pos, c.SeqLen)
		}
		for j := range i {
			if batch[j].Seq == b.Seq && batch[j].Pos == b.Pos {
				return nil, fmt.Errorf("%w: tokens %d and %d both write position %d of one sequence", ErrBatch, j, i, b.Pos)
			}
		}
		if !b.NoLogits {
			nw++
		}
	}
	toks := m.btok[:len(batch)]
	for i := range batch {
		b := &batch[i]
		toks[i] = b.Token
		m.bpos[i], m.bkey[i], m.bval[i], m.bwant[i] = b.Pos, b.Seq.key, b.Seq.value, !b.NoLogits
	}
	m.forwardTokens(toks)
	return m.blogits[:nw*c.VocabSize], nil
}

// Prefill feeds prompt (token ids, no BOS added, 1..SeqLen of them) into s
// from position 0 through the batched prompt path, exactly as Generate
// does into the model's own cache, and returns the last prompt token's
// logits (owned by the model, overwritten by its next use). The next token
// of the sequence goes at position len(prompt).
func (m *Model) Prefill(s *Seq, prompt []int) ([]float32, error) {
	c := &m.Config
	switch {
	case s == nil || s.m != m:
		return nil, fmt.Errorf("prefill: %w: the Seq is nil or was made by another model", ErrBatch)
	case len(prompt) == 0:
		return nil, errors.New("prefill: empty prompt")
	case len(prompt) > c.SeqLen:
		return nil, fmt.Errorf("prefill: %w: prompt of %d tokens exceeds context %d", ErrPosition, len(prompt), c.SeqLen)
	}
	for i, t := range prompt {
		if t < 0 || t >= c.VocabSize {
			return nil, fmt.Errorf("prefill: prompt token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
	}
	b := min(maxBatch, c.SeqLen)
	for p := 0; p < len(prompt); p += b {
		blk := prompt[p:min(p+b, len(prompt))]
		from := len(blk) // no logits
		if p+len(blk) == len(prompt) {
			from = len(blk) - 1
		}
		m.forwardSeqBlock(s.key, s.value, blk, p, from)
	}
	return m.logits, nil
}
