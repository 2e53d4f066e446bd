package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampler picks the next token from a vector of logits: greedily when
// Temperature is 0, otherwise from softmax(logits/Temperature) restricted
// first to the TopK most probable ids (0: no limit) and then to the
// smallest prefix of those, renormalized, whose cumulative probability
// reaches TopP (0 or 1: no limit). (Exactly: the prefix's sum, in that
// order, reaches TopP of the TopK's sum in that order, or, without TopK,
// of every id's sum in id order.) Only the top ids are ordered (a partial
// selection, TestSamplerMatchesFullSort), not the whole vocabulary. Ties in the order of probabilities go to
// the lower id. The random source is a PCG seeded from Seed, so the same
// seed, settings and logits give the same tokens on every machine.
//
// A Sampler reuses its buffers: after the first Step for a vocabulary size
// it does not allocate. It is not safe for concurrent use.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64
	Seed        uint64

	rng   *rand.Rand
	draws uint64    // random numbers drawn since Reset
	probs []float64 // [vocab] unnormalized exp((l-max)/T)
	order []int     // [vocab] the top ids by probs desc, id asc (when filtering)
}

// nextTop is the top-p search's next candidate count after m: 8 times
// more, or all n once that would be an eighth of them (a flat
// distribution: one full sort beats more passes).
func nextTop(m, n int) int {
	if m *= 8; m >= n/8 {
		return n
	}
	return m
}

// top returns the m ids of highest probability (ties: the lower id first)
// in that order, in s.order's memory: a heap of the best m so far whose
// root is the worst of them, O(n log m), then a sort of the m; for all of
// them, one sort.
func (s *Sampler) top(probs []float64, m int) []int {
	better := func(a, b int) bool {
		pa, pb := probs[a], probs[b]
		return pa > pb || pa == pb && a < b
	}
	if m >= len(probs) {
		all := s.order[:len(probs)]
		for i := range all {
			all[i] = i
		}
		slices.SortFunc(all, func(a, b int) int {
			if better(a, b) {
				return -1
			}
			return 1
		})
		return all
	}
	h := s.order[:0]
	down := func(i int) {
		for {
			w := i
			if l := 2*i + 1; l < len(h) && better(h[w], h[l]) {
				w = l
			}
			if r := 2*i + 2; r < len(h) && better(h[w], h[r]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := range probs {
		if len(h) < m {
			h = append(h, i)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !better(h[parent], h[j]) {
					break
				}
				h[parent], h[j] = h[j], h[parent]
				j = parent
			}
			continue
		}
		if better(i, h[0]) {
			h[0] = i
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	return h
}

// Alt is one candidate token and its log-prob (natural log).
type Alt struct {
	ID      int     `json:"id"`
	LogProb float64 `json:"logprob"`
}

// Validate reports settings that cannot be used.
func (s *Sampler) Validate() error {
	switch {
	case math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0) || s.Temperature < 0:
		return fmt.Errorf("temperature %v must be a finite number ≥ 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be ≥ 0 (0: no limit)", s.TopK)
	case math.IsNaN(s.TopP) || s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("top-p %v must be in [0, 1] (0 or 1: no limit)", s.TopP)
	}
	return nil
}

// Reset restarts the random sequence from Seed.
func (s *Sampler) Reset() {
	s.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	s.draws = 0
}

// Draws is how many random numbers s has drawn since Reset: one per Step
// with Temperature > 0, none when greedy. With Seed and the settings it is
// the whole state, so another process can go on where s is (Resume).
func (s *Sampler) Draws() uint64 { return s.draws }

// StepDraws is how many random numbers one Step draws: 1, or 0 when
// greedy.
func (s *Sampler) StepDraws() uint64 {
	if s.Temperature == 0 {
		return 0
	}
	return 1
}

// Skip advances the random sequence by n draws, as n Steps would (it
// takes O(n)).
func (s *Sampler) Skip(n uint64) {
	if s.rng == nil {
		s.Reset()
	}
	for range n {
		s.rng.Uint64() // Float64 draws one Uint64
	}
	s.draws += n
}

// Resume restarts from Seed and skips n draws: s then steps as a sampler
// with the same settings whose Draws is n.
func (s *Sampler) Resume(n uint64) {
	s.Reset()
	s.Skip(n)
}

// Step picks a token from logits and returns it with its log-prob under the
// unmodified logits (LogProb(logits, id): temperature and filtering change
// which token is drawn, never the log-prob reported for it, which is what a
// validator re-scores). logits must not be empty.
func (s *Sampler) Step(logits []float32) (id int, logprob float64) {
	if s.Temperature == 0 {
		id = Argmax(logits)
		return id, LogProb(logits, id)
	}
	if s.rng == nil {
		s.Reset()
	}
	n := len(logits)
	if cap(s.probs) < n {
		s.probs = make([]float64, n)
		s.order = make([]int, n)
	}
	probs := s.probs[:n]
	maxv := float64(logits[0])
	for _, v := range logits[1:] {
		maxv = max(maxv, float64(v))
	}
	var total float64
	for i, v := range logits {
		p := math.Exp((float64(v) - maxv) / s.Temperature)
		probs[i] = p
		total += p
	}
	k := n
	if s.TopK > 0 && s.TopK < n {
		k = s.TopK
	}
	filterP := s.TopP > 0 && s.TopP < 1
	if k == n && !filterP {
		// No filtering: draw over the ids in id order.
		r := s.rng.Float64() * total
		s.draws++
		id = n - 1
		for i, p := range probs {
			r -= p
			if r < 0 {
				id = i
				break
			}
		}
		return id, LogProb(logits, id)
	}
	var kept []int
	var mass float64
	if k < n {
		// The top k, sorted; the mass is theirs, top-p cuts within it.
		kept = s.top(probs, k)
		for _, i := range kept {
			mass += probs[i]
		}
		if filterP {
			var cum float64
			for j, i := range kept {
				cum += probs[i]
				if cum/mass >= s.TopP {
					kept, mass = kept[:j+1], cum
					break
				}
			}
		}
	} else {
		// Top-p alone: the smallest prefix, in order, whose mass reaches
		// TopP of the total, found among the top m for m = 64, 512, ...
		// (a language model's mass sits in a few dozen ids; a flat
		// distribution ends in a full sort).
		for m := min(64, n); ; m = nextTop(m, n) {
			kept = s.top(probs, m)
			var cum float64
			cut := -1
			for j, i := range kept {
				cum += probs[i]
				if cum/total >= s.TopP {
					cut = j
					break
				}
			}
			if cut >= 0 || m == n {
				if cut >= 0 {
					kept = kept[:cut+1]
				}
				mass = cum
				break
			}
		}
	}
	r := s.rng.Float64() * mass
	s.draws++
	id = kept[len(kept)-1]
	for _, i := range kept {
		r -= probs[i]
		if r < 0 {
			id = i
			break
		}
	}
	return id, LogProb(logits, id)
}

// TopAlternatives returns the k most probable ids of logits with their
// log-probs (as LogProb computes them), by log-prob descending, then id
// ascending. k is capped at len(logits).
func TopAlternatives(logits []float32, k int) []Alt {
	return AppendTopAlternatives(nil, logits, k)
}

// AppendTopAlternatives is TopAlternatives appending to dst; it does not
// allocate when dst has room for k more entries.
func AppendTopAlternatives(dst []Alt, logits []float32, k int) []Alt {
	k = min(k, len(logits))
	if k <= 0 {
		return dst
	}
	base := len(dst)
	// Keep the best k ids seen so far, sorted (logit desc, id asc), by
	// insertion: ids arrive in ascending order, so a later id enters only
	// with a strictly larger logit than the one it displaces.
	for i, v := range logits {
		top := dst[base:]
		if len(top) == k && v <= logits[top[k-1].ID] {
			continue
		}
		if len(top) < k {
			dst = append(dst, Alt{})
			top = dst[base:]
		}
		j := len(top) - 1
		for j > 0 && v > logits[top[j-1].ID] {
			top[j] = top[j-1]
			j--
		}
		top[j] = Alt{ID: i}
	}
	maxv := float64(logits[0])
	for _, v := range logits[1:] {
		maxv = max(maxv, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	ls := math.Log(sum)
	for j := base; j < len(dst); j++ {
		dst[j].LogProb = float64(logits[dst[j].ID]) - maxv - ls
	}
	return dst
}

// GenerateOptions configures GenerateSampled.
type GenerateOptions struct {
	Sampler   Sampler
	MaxTokens int
	// EOS is the id that ends generation (it is included in the output);
	// negative: none.
	EOS int
	// Alternatives is the number of top alternatives recorded per
	// generated token (0: none).
	Alternatives int
}

// Generation is the result of GenerateSampled.
type Generation struct {
	IDs      []int     // generated ids
	LogProbs []float64 // LogProb of each generated id under the raw logits
	Top      [][]Alt   // per generated id, the top alternatives (if asked)
}

// GenerateSampled feeds prompt (token ids, no BOS added) from position 0 and
// then generates up to opt.MaxTokens tokens with opt.Sampler (reset to its
// seed first), stopping after opt.EOS or at the end of the context window.
// With a zero Temperature it generates exactly what Generate does.
func (m *Model) GenerateSampled(prompt []int, opt GenerateOptions) (*Generation, error) {
	if len(prompt) == 0 {
		return nil, errors.New("generate: empty prompt")
	}
	if opt.MaxTokens < 0 {
		return nil, fmt.Errorf("generate: negative token count %d", opt.MaxTokens)
	}
	if err := opt.Sampler.Validate(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(prompt) > m.Config.SeqLen {
		return nil, fmt.Errorf("generate: %w: prompt of %d tokens exceeds context %d", ErrPosition, len(prompt), m.Config.SeqLen)
	}
	for i, t := range prompt {
		if t < 0 || t >= m.Config.VocabSize {
			return nil, fmt.Errorf("generate: prompt token %d (index %d) outside the vocabulary [0,%d)", t, i, m.Config.VocabSize)
		}
	}
	s := opt.Sampler
	s.Reset()
	m.prefill(prompt)
	pos := len(prompt)
	n := min(opt.MaxTokens, m.Config.SeqLen-pos+1)
	g := &Generation{IDs: make([]int, 0, n), LogProbs: make([]float64, 0, n)}
	if opt.Alternatives > 0 {
		g.Top = make([][]Alt, 0, n)
	}
	for len(g.IDs) < n {
		next, lp := s.Step(m.logits)
		g.IDs = append(g.IDs, next)
		g.LogProbs = append(g.LogProbs, lp)
		if opt.Alternatives > 0 {
			g.Top = append(g.Top, TopAlternatives(m.logits, opt.Alternatives))
		}
		if len(g.IDs) == n || next == opt.EOS {
			break
		}
		m.forward(next, pos)
		pos++
	}
	return g, nil
}
