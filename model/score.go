package model

import "fmt"

// Score returns the teacher-forced log-prob (natural log, LogProb of the
// float32 logits) of each ids[i] for i ≥ from, given ids[:i]: what a
// validator computes to check the log-probs a miner reported. from must be
// at least 1 (the first token has no prefix); from == len(ids) gives an
// empty result. The last id is never fed, so up to SeqLen+1 ids fit, as
// many as a prompt plus what Generate can produce. The KV cache is
// overwritten from position 0.
//
// Positions 0..len(ids)-2 go through Forward one at a time (the decode
// path), so the result is bit-identical to the log-probs Generate and
// GenerateSampled report. A batched matrix-matrix prompt path that keeps
// those bits is a later step.
func (m *Model) Score(ids []int, from int) ([]float64, error) {
	c := &m.Config
	switch {
	case from < 1:
		return nil, fmt.Errorf("score: from %d must be ≥ 1 (the first token has no prefix)", from)
	case from > len(ids):
		return nil, fmt.Errorf("score: from %d is beyond the %d ids", from, len(ids))
	case len(ids) > c.SeqLen+1:
		return nil, fmt.Errorf("score: %w: %d ids need %d positions, context is %d", ErrPosition, len(ids), len(ids)-1, c.SeqLen)
	}
	for i, t := range ids {
		if t < 0 || t >= c.VocabSize {
			return nil, fmt.Errorf("score: token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
	}
	out := make([]float64, 0, len(ids)-from)
	for pos := 0; pos+1 < len(ids); pos++ {
		m.forward(ids[pos], pos)
		if pos+1 >= from {
			out = append(out, LogProb(m.logits, ids[pos+1]))
		}
	}
	return out, nil
}
