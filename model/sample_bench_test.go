package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refStep is the sampler's definition by full sort: sort every id by
// (probability desc, id asc), keep the top k, cut at top-p (of the top k's
// sum in that order, or without top-k of every id's sum in id order),
// draw; without filtering, draw over the ids in id order. Step must pick
// exactly what it picks.
func refStep(s *Sampler, logits []float32) int {
	n := len(logits)
	probs := make([]float64, n)
	maxv := float64(slices.Max(logits))
	for i, v := range logits {
		probs[i] = math.Exp((float64(v) - maxv) / s.Temperature)
	}
	k := n
	if s.TopK > 0 && s.TopK < n {
		k = s.TopK
	}
	if k == n && !(s.TopP > 0 && s.TopP < 1) { // no filtering: ids in id order
		var total float64
		for _, p := range probs {
			total += p
		}
		r := s.rng.Float64() * total
		for i, p := range probs {
			if r -= p; r < 0 {
				return i
			}
		}
		return n - 1
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch pa, pb := probs[a], probs[b]; {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return a - b
	})
	kept := order[:k]
	var mass float64
	for _, i := range kept {
		mass += probs[i]
	}
	if s.TopP > 0 && s.TopP < 1 {
		denom := mass // the top k's sum, in order
		if k == n {   // without top-k: every id's sum, in id order
			denom = 0
			for _, p := range probs {
				denom += p
			}
		}
		var cum float64
		for j, i := range kept {
			cum += probs[i]
			if cum/denom >= s.TopP {
				kept, mass = kept[:j+1], cum
				break
			}
		}
	}
	r := s.rng.Float64() * mass
	for _, i := range kept {
		r -= probs[i]
		if r < 0 {
			return i
		}
	}
	return kept[len(kept)-1]
}

// peakedLogits are a vocabulary's logits shaped like a language model's: a
// few dozen likely ids over a long tail, with ties.
func peakedLogits(r *rand.Rand, n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 2)
	}
	for range 30 {
		l[r.IntN(n)] = float32(8 + r.NormFloat64()*2)
	}
	l[r.IntN(n)] = l[r.IntN(n)] // a tie
	return l
}

// Step draws what the full-sort definition draws, on peaked and flat
// logits, for top-k, top-p and both, over thousands of draws.
func TestSamplerMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{7, 300, 32000} {
		for _, shape := range []string{"peaked", "flat"} {
			for _, set := range []struct {
				k int
				p float64
			}{{10, 0}, {40, 0}, {0, 0.8}, {0, 0.95}, {40, 0.9}, {n + 5, 0.5}, {1, 0}, {0, 0.999999}} {
				s := Sampler{Temperature: 0.8, TopK: set.k, TopP: set.p, Seed: uint64(n)}
				ref := s
				s.Reset()
				ref.Reset()
				for draw := range 60 {
					var logits []float32
					if shape == "peaked" {
						logits = peakedLogits(r, n)
					} else {
						logits = make([]float32, n)
						for i := range logits {
							logits[i] = float32(r.IntN(4)) * 0.01 // flat, many ties
						}
					}
					want := refStep(&ref, logits)
					got, _ := s.Step(logits)
					if got != want {
						t.Fatalf("n=%d %s k=%d p=%v draw %d: Step %d, full sort %d", n, shape, set.k, set.p, draw, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkSamplerStep is one sampled token's draw for the validator's
// task settings, beside the full-sort definition.
func BenchmarkSamplerStep(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{32000, 128256} {
		logits := peakedLogits(r, n)
		for _, set := range []struct {
			name string
			k    int
			p    float64
		}{{"topk=40", 40, 0}, {"topp=0.9", 0, 0.9}, {"none", 0, 0}} {
			b.Run(fmt.Sprintf("vocab=%d/%s/step", n, set.name), func(b *testing.B) {
				s := Sampler{Temperature: 0.8, TopK: set.k, TopP: set.p, Seed: 1}
				for b.Loop() {
					s.Step(logits)
				}
			})
			b.Run(fmt.Sprintf("vocab=%d/%s/fullsort", n, set.name), func(b *testing.B) {
				s := Sampler{Temperature: 0.8, TopK: set.k, TopP: set.p, Seed: 1}
				s.Reset()
				for b.Loop() {
					refStep(&s, logits)
				}
			})
		}
	}
}

// A top-p exactly at a prefix's share of the mass (where summation order
// decides the cut) picks what the definition picks.
func TestSamplerTopPBoundary(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		n := 50 + r.IntN(300)
		logits := make([]float32, n)
		for i := range logits {
			logits[i] = float32(r.NormFloat64())
		}
		s := Sampler{Temperature: 0.9, Seed: uint64(trial)}
		s.Reset()
		probs := make([]float64, n)
		maxv := float64(slices.Max(logits))
		var total float64
		for i, v := range logits {
			probs[i] = math.Exp((float64(v) - maxv) / s.Temperature)
			total += probs[i]
		}
		sorted := slices.Clone(probs)
		slices.Sort(sorted)
		slices.Reverse(sorted)
		var cum float64
		for _, p := range sorted[:1+r.IntN(n/2)] {
			cum += p
		}
		s.TopP = cum / total // exactly a prefix's share
		ref := s
		ref.Reset()
		for range 20 {
			if got, want := func() int { id, _ := s.Step(logits); return id }(), refStep(&ref, logits); got != want {
				t.Fatalf("trial %d: Step %d, definition %d", trial, got, want)
			}
		}
	}
}
