package yuma

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// topkReference is is_topk_nonzero as the Rust code reads: a stable sort
// of the indices by value, the first n-k dropped.
func topkReference(v []int64, k int) []bool {
	res := make([]bool, len(v))
	for i, x := range v {
		res[i] = x != 0
	}
	if len(v) < k {
		return res
	}
	order := make([]int, len(v))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	for _, i := range order[:len(v)-k] {
		res[i] = false
	}
	return res
}

// TopkNonzero equals the stable-sort reference on random vectors with many
// ties, on both of its paths (values that pack and values that do not:
// negative, ≥ 2^47).
func TestTopkNonzero(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var keys []uint64
	for trial := range 3000 {
		n := r.IntN(300)
		v := make([]int64, n)
		span := []int64{3, 1000, 1 << 32, 1 << 62}[trial%4]
		for i := range v {
			v[i] = r.Int64N(span)
			if trial%7 == 0 && r.IntN(5) == 0 {
				v[i] = -v[i]
			}
		}
		k := r.IntN(n + 2)
		got := make([]bool, n)
		keys = TopkNonzero(v, k, got, keys)
		if want := topkReference(v, k); !slices.Equal(got, want) {
			t.Fatalf("trial %d (n=%d k=%d span %d): %v, want %v for %v", trial, n, k, span, got, want, v)
		}
	}
}

func BenchmarkTopkNonzero(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	v := make([]int64, 256)
	for i := range v {
		v[i] = r.Int64N(1 << 32)
	}
	res := make([]bool, 256)
	b.Run("packed", func(b *testing.B) {
		var keys []uint64
		for b.Loop() {
			keys = TopkNonzero(v, 64, res, keys)
		}
	})
	b.Run("comparator", func(b *testing.B) {
		order := make([]int32, 256)
		for b.Loop() {
			for i := range order {
				order[i] = int32(i)
			}
			slices.SortFunc(order, func(a, c int32) int {
				if v[a] != v[c] {
					if v[a] < v[c] {
						return -1
					}
					return 1
				}
				return int(a - c)
			})
		}
	})
}
