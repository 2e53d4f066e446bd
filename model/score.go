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
	out, _, err := m.score(ids, from, false, 0)
	return out, err
}

// ScoreRanks is Score that also returns, for each scored ids[i], how many
// tokens the model ranks above it by more than margin nats (LogProbAhead):
// what a validator needs to check a greedy answer (0 everywhere) or a
// top-k one (under k everywhere) at every position, not only at a few.
// margin must be ≥ 0.
func (m *Model) ScoreRanks(ids []int, from int, margin float64) ([]float64, []int, error) {
	if !(margin >= 0) {
		return nil, nil, fmt.Errorf("score: margin %v must be ≥ 0", margin)
	}
	return m.score(ids, from, true, margin)
}

func (m *Model) score(ids []int, from int, ranks bool, margin float64) ([]float64, []int, error) {
	c := &m.Config
	switch {
	case from < 1:
		return nil, nil, fmt.Errorf("score: from %d must be ≥ 1 (the first token has no prefix)", from)
	case from > len(ids):
		return nil, nil, fmt.Errorf("score: from %d is beyond the %d ids", from, len(ids))
	case len(ids) > c.SeqLen+1:
		return nil, nil, fmt.Errorf("score: %w: %d ids need %d positions, context is %d", ErrPosition, len(ids), len(ids)-1, c.SeqLen)
	}
	for i, t := range ids {
		if t < 0 || t >= c.VocabSize {
			return nil, nil, fmt.Errorf("score: token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
	}
	out := make([]float64, len(ids)-from)
	var ahead []int
	if ranks {
		ahead = make([]int, len(out))
	}
	m.lpGap = margin
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
		if ranks {
			m.lpAhead = ahead[k : k+cnt]
		}
		if m.pool != nil && cnt > 1 {
			m.pool.run(cnt, m.lpFn)
		} else {
			m.logProbs(0, cnt)
		}
		m.lpIDs, m.lpOut, m.lpAhead = nil, nil, nil
		k += cnt
	}
	return out, ahead, nil
}

// logProbs sets lpOut[i] = LogProb(logits of block row i, lpIDs[i]) for
// i in [lo, hi), and lpAhead[i] when it is set (LogProbAhead).
func (m *Model) logProbs(lo, hi int) {
	v := m.Config.VocabSize
	for i := lo; i < hi; i++ {
		row := m.blogits[i*v : (i+1)*v]
		if m.lpAhead != nil {
			m.lpOut[i], m.lpAhead[i] = LogProbAhead(row, m.lpIDs[i], m.lpGap)
		} else {
			m.lpOut[i] = LogProb(row, m.lpIDs[i])
		}
	}
}
