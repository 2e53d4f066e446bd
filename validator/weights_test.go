package validator

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"taobox/chain/yuma/ymath"
)

func rep[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestConvertWeights pins convert_weights_and_uids_for_emit
// (incumbent-protocol.md §3.1) on vectors computed by hand.
func TestConvertWeights(t *testing.T) {
	cases := []struct {
		name   string
		uids   []uint16
		w      []float64
		wantU  []uint16
		wantW  []uint16
		hasErr bool
	}{
		{"max upscale", []uint16{0, 1, 2}, []float64{0.1, 0.2, 0.3}, []uint16{0, 1, 2}, []uint16{21845, 43690, 65535}, false},
		// 0.5·65535 = 32767.5 → 32768 (the even neighbour)
		{"half to even up", []uint16{4, 9}, []float64{1, 2}, []uint16{4, 9}, []uint16{32768, 65535}, false},
		// x/65535·65535 = x exactly: 0.5 → 0 (dropped), 1.5 → 2, 2.5 → 2, 3.5 → 4
		{"half to even", []uint16{0, 1, 2, 3, 4}, []float64{0.5, 1.5, 2.5, 3.5, 65535}, []uint16{1, 2, 3, 4}, []uint16{2, 2, 4, 65535}, false},
		{"drop zeros", []uint16{0, 1, 2, 3}, []float64{0, 1, 0.4, 0}, []uint16{1, 2}, []uint16{65535, 26214}, false},
		{"all zero", []uint16{0, 1}, []float64{0, 0}, nil, nil, false},
		{"empty", nil, nil, nil, nil, false},
		{"negative", []uint16{0, 1}, []float64{-1, 1}, nil, nil, true},
		{"nan", []uint16{0}, []float64{math.NaN()}, nil, nil, true},
		{"lengths", []uint16{0, 1}, []float64{1}, nil, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, w, err := ConvertWeights(c.uids, c.w)
			if c.hasErr {
				if !errors.Is(err, ErrBadWeights) {
					t.Fatalf("err = %v, want ErrBadWeights", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(u, c.wantU) || !slices.Equal(w, c.wantW) {
				t.Fatalf("got %v %v, want %v %v", u, w, c.wantU, c.wantW)
			}
		})
	}
}

// TestNormalizeMaxWeight checks the water-filling cap on the spec's example
// ([10, 1×11], limit 0.2 → [0.2, 0.0727×11], slightly below the limit).
func TestNormalizeMaxWeight(t *testing.T) {
	x := append([]float32{10}, rep[float32](1, 11)...)
	y := NormalizeMaxWeight(x, 0.2)
	if y[0] > 0.2 || y[0] < 0.2-1e-5 {
		t.Fatalf("capped weight %v, want just below 0.2", y[0])
	}
	for _, v := range y[1:] {
		if math.Abs(float64(v)-0.8/11) > 1e-5 {
			t.Fatalf("others %v, want 0.0727", v)
		}
	}
	// under the limit: plain normalisation
	if got := NormalizeMaxWeight([]float32{1, 1, 2}, 0.6); !slices.Equal(got, []float32{0.25, 0.25, 0.5}) {
		t.Fatalf("uncapped: %v", got)
	}
	// n·limit ≤ 1: uniform
	if got := NormalizeMaxWeight([]float32{1, 9}, 0.5); !slices.Equal(got, []float32{0.5, 0.5}) {
		t.Fatalf("uniform: %v", got)
	}
	if got := NormalizeMaxWeight([]float32{0, 0, 0}, 0.5); got[0] != float32(1)/3 {
		t.Fatalf("zero sum: %v", got)
	}
}

// TestWeightsFor runs the whole pipeline on hand-computed vectors.
func TestWeightsFor(t *testing.T) {
	cases := []struct {
		name       string
		scores     []float64
		minAllowed uint64
		limit      uint64
		wantU      []uint16
		wantW      []uint16
	}{
		// two honest miners at speeds 1 and 0.5, one cheater at 0, and the
		// validator's own uid 0 at 0; no cap
		{"plain", []float64{0, 1, 0.5, 0}, 1, 65535, []uint16{1, 2}, []uint16{65535, 32768}},
		// [10, 1×11] at a 0.2 cap: 1/2.7499974·65535 = 23830.93 → 23831
		{"capped", append([]float64{10}, rep(1.0, 11)...), 1, 13107, []uint16{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, append([]uint16{65535}, rep[uint16](23831, 11)...)},
		// one non-zero of four, min_allowed 2: 1e-5 for everyone, then the
		// cap 32767/65535: [1e-5, 1e-5, 1+1e-5, 1e-5], m = 3, cutoff =
		// (lim·3e-5/1.00004 − 1e-7)/(1 − lim)·1.00004 = 2.9799e-5 (the epsilon
		// matters at this scale), so the others get 1e-5/2.9799e-5·65535 =
		// 21992.29 → 21992 (a float64 reference in Python agrees)
		{"min allowed", []float64{0, 0, 7, 0}, 2, 32767, []uint16{0, 1, 2, 3}, []uint16{21992, 21992, 65535, 21992}},
		// no score at all: uniform over every uid
		{"all zero", []float64{0, 0, 0}, 1, 65535, []uint16{0, 1, 2}, []uint16{65535, 65535, 65535}},
		// fewer uids than min_allowed: uniform
		{"small subnet", []float64{0, 3}, 8, 65535, []uint16{0, 1}, []uint16{65535, 65535}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, w, err := WeightsFor(c.scores, c.minAllowed, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(u, c.wantU) || !slices.Equal(w, c.wantW) {
				t.Fatalf("got %v %v, want %v %v", u, w, c.wantU, c.wantW)
			}
			if !ymath.CheckVecMaxLimited(w, uint16(c.limit)) {
				t.Fatalf("%v exceeds the chain's max weight limit %d", w, c.limit)
			}
		})
	}
}

// TestWeightsForChainLimit: whatever the scores, the vector passes the
// chain's own max-weight check (the retry below the cap).
func TestWeightsForChainLimit(t *testing.T) {
	for n := 2; n <= 40; n++ {
		for _, lim := range []uint64{6554, 13107, 20000, 32767, 40000} {
			s := make([]float64, n)
			for i := range s {
				s[i] = float64((i*7919)%13 + 1)
			}
			s[0] = 1000
			_, w, err := WeightsFor(s, 1, lim)
			if uint64(n)*lim < 65535 { // no vector of n weights meets the cap
				if err == nil {
					t.Fatalf("n=%d limit=%d: %v, want an error", n, lim, w)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ymath.CheckVecMaxLimited(w, uint16(lim)) {
				t.Fatalf("n=%d limit=%d: %v exceeds the limit", n, lim, w)
			}
		}
	}
}

// A score decaying towards zero (a miner that passed once, then stopped)
// rounds to a u16 0 and is dropped; when that leaves fewer weights than
// the subnet's MinAllowedWeights, WeightsFor rebuilds the vector with
// those scores as zero, so the chain does not refuse the call.
func TestWeightsForMinAllowedAfterRounding(t *testing.T) {
	scores := []float64{0, .9, .8, .7, 1e-7, 1e-7}
	for _, minAllowed := range []uint64{1, 3, 5, 6, 10} {
		uids, ws, err := WeightsFor(scores, minAllowed, 65535)
		if err != nil {
			t.Fatalf("min %d: %v", minAllowed, err)
		}
		if need := int(min(minAllowed, uint64(len(scores)))); len(uids) < need || len(ws) != len(uids) {
			t.Fatalf("min %d: %d weights %v %v, the chain needs %d", minAllowed, len(uids), uids, ws, need)
		}
		if minAllowed <= 3 && len(uids) != 3 { // enough without the tiny ones: the SDK's vector
			t.Fatalf("min %d: uids %v, want the three scored", minAllowed, uids)
		}
	}
}

// sumPairwise adds in numpy's order, which float32 rounding makes visible:
// 2^24 followed by ones loses every one added to it alone (2^24+1 rounds
// back to 2^24), so a left-to-right sum stays at 2^24, while numpy's eight
// accumulators add the other ones among themselves first. Values worked
// out by hand from the algorithm (blocks of 8 accumulators up to 128
// elements, halves cut at a multiple of 8 above).
func TestSumPairwise(t *testing.T) {
	const big = 1 << 24
	withOnes := func(n int) []float32 {
		a := rep[float32](1, n)
		a[0] = big
		return a
	}
	cases := []struct {
		n    int
		want float32
	}{
		{5, big},         // under 8: left to right, every one lost
		{16, big + 14},   // r0 = 2^24 (+1 lost), r1..r7 = 2: ((2^24+2)+4)+8
		{17, big + 16},   // the 17th one makes the 2^24+14 total 2^24+15, a tie, rounded to even
		{200, big + 188}, // halves of 96 and 104: 2^24+84 (11 ones lost) and 104
	}
	for _, c := range cases {
		a := withOnes(c.n)
		if got := sumPairwise(a); got != c.want {
			t.Errorf("n=%d: %v, want %v", c.n, got, c.want)
		}
		var seq float32
		for _, v := range a {
			seq += v
		}
		if c.n >= 16 && seq == c.want {
			t.Errorf("n=%d: left to right gives the same %v (the case tells nothing)", c.n, seq)
		}
	}
	f := []float64{0.1, 0.2, 0.3}
	if got, want := sumPairwise(f), (0+f[0]+f[1])+f[2]; got != want {
		t.Errorf("float64: %v, want %v", got, want)
	}
}

// Fewer scored uids than ⌈1/limit⌉ cannot meet the cap (each share at most
// the limit, summing to 1): the SDK's vector is refused by the chain every
// time, so WeightsFor spreads the 1e-5 floor over every uid instead, and a
// subnet too small for the limit is an error, not a call the chain refuses.
func TestWeightsForCapNeedsMoreUIDs(t *testing.T) {
	for _, c := range []struct {
		scored []int // uids with a score (1, 0.5, 0.2, ...)
		n      int
		min    uint64
		lim    uint64
		err    bool
	}{
		{scored: []int{1}, n: 16, min: 1, lim: 6553},
		{scored: []int{1, 2}, n: 16, min: 1, lim: 6553},
		{scored: []int{1, 2, 3}, n: 12, min: 2, lim: 26214},
		{scored: []int{3}, n: 5, min: 1, lim: 16384},
		{scored: []int{1}, n: 8, min: 1, lim: 6553, err: true}, // 8 × 0.1 < 1
		// ⌈1/limit⌉ = 4 scored uids already, still over the cap after
		// rounding: spreading the floor over all 7 meets it (review)
		{scored: []int{6, 2, 4, 5}, n: 7, min: 4, lim: 20490},
	} {
		s := make([]float64, c.n)
		for k, uid := range c.scored {
			s[uid] = 1 / float64(1+3*k)
		}
		uids, ws, err := WeightsFor(s, c.min, c.lim)
		if c.err {
			if err == nil || !strings.Contains(err.Error(), "needs weights on at least") {
				t.Fatalf("%+v: %v %v, err %v; want the limit's error", c, uids, ws, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !ymath.CheckVecMaxLimited(ws, uint16(c.lim)) {
			t.Fatalf("%+v: %v %v exceeds the limit: the chain refuses it", c, uids, ws)
		}
		if i := slices.Index(uids, uint16(c.scored[0])); i < 0 || ws[i] != slices.Max(ws) {
			t.Fatalf("%+v: the best scored uid %d does not have the largest weight (%v %v)", c, c.scored[0], uids, ws)
		}
	}
}
