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
// Positions 0..len(ids)-2 go through the batched prompt path (blocks of up
// to 16 tokens; classifier rows only for the positions scored), whose
// per-token arithmetic is the one-token path's, so the result is
// bit-identical to the log-probs Generate and GenerateSampled report.
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
	out := make([]float64, len(ids)-from)
	feed := ids[:len(ids)-1]
	b := min(maxBatch, c.SeqLen)
	k := 0
	for s := 0; s < len(feed); s += b {
		blk := feed[s:min(s+b, len(feed))]
		// position p's logits score ids[p+1]; only p ≥ from-1 are needed
		first := min(max(from-1-s, 0), len(blk))
		m.forwardBlock(blk, s, first)
		cnt := len(blk) - first
		if cnt == 0 {
			continue
		}
		// The log-softmax of a 32000-word vocabulary costs about as much as
		// the token's forward pass: one position per thread.
		m.lpIDs, m.lpOut = ids[s+first+1:s+len(blk)+1], out[k:k+cnt]
		if m.pool != nil && cnt > 1 {
			m.pool.run(cnt, m.lpFn)
		} else {
			m.logProbs(0, cnt)
		}
		m.lpIDs, m.lpOut = nil, nil
		k += cnt
	}
	return out, nil
}

// logProbs sets lpOut[i] = LogProb(logits of block row i, lpIDs[i]) for
// i in [lo, hi).
func (m *Model) logProbs(lo, hi int) {
	v := m.Config.VocabSize
	for i := lo; i < hi; i++ {
		m.lpOut[i] = LogProb(m.blogits[i*v:(i+1)*v], m.lpIDs[i])
	}
}
