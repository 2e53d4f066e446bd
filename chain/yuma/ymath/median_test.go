package ymath

import (
	"encoding/binary"
	"slices"
	"testing"

	"taobox/chain/fixed"
)

// closedFormMedian is the rule of yuma-epoch.md §5.3 for partition_lo = 0,
// partition_hi = Σstake and the full index list: the smallest score s with
// F(s) > minority, where F(s) is the stake of rows scoring <= s; the maximum
// score if there is none; 0 for no rows. Sums are plain: callers must keep
// them from overflowing (then saturating and plain sums agree).
func closedFormMedian(stake, score []fixed.I32F32, minority fixed.I32F32) fixed.I32F32 {
	if len(score) == 0 {
		return 0
	}
	distinct := slices.Clone(score)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	for _, s := range distinct {
		var f fixed.I32F32
		for i := range score {
			if score[i] <= s {
				f += stake[i]
			}
		}
		if f > minority {
			return s
		}
	}
	return distinct[len(distinct)-1]
}

// FuzzWeightedMedian checks WeightedMedian against the closed form on
// non-negative inputs whose sums cannot saturate (at most 64 stakes <= 1.0).
// Each 3 bytes of data make one row: a 16-bit stake (raw << 16, so up to
// ~1.0; a third byte >= 0xE0 forces stake 0) and a score from the third byte
// (16 levels, or 256 when mode&4, to vary the number of ties). mode&3 picks
// minority: arbitrary in [0, Σ], on a step of F (±1 raw), an arbitrary value
// up to 2, or one of the extremes 0 and Σ. rot rotates the index list and
// mode&8 reverses it (the result must not depend on the order).
func FuzzWeightedMedian(f *testing.F) {
	f.Add([]byte{0x80, 0, 0x10, 0x40, 0, 0x20, 0x40, 0, 0x30}, uint64(12345), uint8(0), uint8(0))
	f.Add([]byte{0, 0, 0xE1, 0xFF, 0xFF, 0x05, 0x12, 0x34, 0x05, 0, 1, 0}, uint64(7), uint8(1), uint8(1))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, uint64(1<<40), uint8(5), uint8(3))
	f.Add([]byte{}, uint64(0), uint8(3), uint8(0))
	f.Add([]byte{0x33, 0x33, 0xF0, 0x33, 0x33, 0x0F}, uint64(1), uint8(3), uint8(0))
	f.Add([]byte{0x80, 0, 0x11, 0x80, 0, 0x11, 0x80, 0, 0x22, 0x80, 0, 0x22}, uint64(0x200000000), uint8(9), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, mode, rot uint8) {
		n := min(len(data)/3, 64)
		stake := make([]fixed.I32F32, n)
		score := make([]fixed.I32F32, n)
		for i := range n {
			d := data[3*i : 3*i+3]
			if d[2] < 0xE0 {
				stake[i] = fixed.I32F32(binary.BigEndian.Uint16(d)) << 16
			}
			if mode&4 != 0 {
				score[i] = fixed.I32F32(d[2]) << 24
			} else {
				score[i] = fixed.I32F32(d[2]&0x0f) << 28
			}
		}
		total := Sum(stake)

		var minority fixed.I32F32
		switch mode & 3 {
		case 0:
			minority = fixed.I32F32(seed % uint64(total+1))
		case 1:
			if n > 0 {
				s := score[int(seed%uint64(n))]
				for i := range score {
					if score[i] <= s {
						minority += stake[i]
					}
				}
				minority += fixed.I32F32(int64(seed>>32%3) - 1)
				minority = max(minority, 0)
			}
		case 2:
			minority = fixed.I32F32(seed % (2 << 32))
		case 3:
			if seed&1 != 0 {
				minority = total
			}
		}

		idx := indices(n)
		if n > 0 {
			r := int(rot) % n
			idx = append(idx[r:], idx[:r]...)
		}
		if mode&8 != 0 {
			slices.Reverse(idx)
		}

		got := WeightedMedian(stake, score, idx, minority, 0, total)
		want := closedFormMedian(stake, score, minority)
		if got != want {
			t.Fatalf("WeightedMedian = %d, closed form = %d\nstake=%v\nscore=%v\nidx=%v minority=%d total=%d",
				got, want, stake, score, idx, minority, total)
		}
	})
}

// TestWeightedMedianLongestChain feeds an order in which every pivot is the
// minimum of its partition, so each iteration drops one index and the search
// takes n-1 iterations: the iteration limit (n) must not cut it short.
func TestWeightedMedianLongestChain(t *testing.T) {
	const n = 40
	// Build backwards: inserting a new minimum at the mid position of the
	// longer list makes it the pivot that is removed first.
	order := []int{n - 1}
	for m := 2; m <= n; m++ {
		order = slices.Insert(order, m/2, n-m)
	}
	stake := make([]fixed.I32F32, n)
	score := make([]fixed.I32F32, n)
	for i, v := range order {
		stake[i] = fixed.I32F32One / n
		score[i] = fixed.I32F32FromInt(int64(v))
	}
	total := Sum(stake)
	// Everything below the top score holds at most the minority, so the
	// search climbs through every value to the maximum.
	minority := total - stake[0]
	got := WeightedMedian(stake, score, indices(n), minority, 0, total)
	if want := fixed.I32F32FromInt(n - 1); got != want || closedFormMedian(stake, score, minority) != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestWeightedMedianEdges(t *testing.T) {
	one := fixed.I32F32One
	half := fixed.I32F32Half
	// Mismatched lengths return 0 even with a valid partition.
	if got := WeightedMedian([]fixed.I32F32{one}, []fixed.I32F32{one, one}, []int{0}, 0, 0, one); got != 0 {
		t.Errorf("length mismatch: got %v", got)
	}
	// An empty partition returns 0; a single index returns its score as is.
	if got := WeightedMedian([]fixed.I32F32{one}, []fixed.I32F32{half}, nil, 0, 0, one); got != 0 {
		t.Errorf("empty partition: got %v", got)
	}
	if got := WeightedMedian([]fixed.I32F32{0}, []fixed.I32F32{half}, []int{0}, one, 0, 0); got != half {
		t.Errorf("single index: got %v", got)
	}
	// Out-of-range indices read score and stake 0 (get_safe).
	if got := WeightedMedian([]fixed.I32F32{one}, []fixed.I32F32{half}, []int{5}, 0, 0, one); got != 0 {
		t.Errorf("out-of-range single index: got %v", got)
	}
	// Only indices in the partition take part: row 1 (score 1, all the stake
	// that matters) is left out.
	stake := []fixed.I32F32{half / 2, half, half / 2}
	score := []fixed.I32F32{half / 2, one, half}
	if got := WeightedMedian(stake, score, []int{0, 2}, half/2, 0, half); got != half {
		t.Errorf("sub-partition: got %v", got)
	}
	// The input index slice is not modified.
	idx := []int{2, 1, 0}
	WeightedMedian(stake, score, idx, half, 0, one)
	if !slices.Equal(idx, []int{2, 1, 0}) {
		t.Errorf("partition index modified: %v", idx)
	}
}
