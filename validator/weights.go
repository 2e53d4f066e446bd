package validator

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"taobox/chain/yuma/ymath"
)

// Weights: the incumbent's client-side pipeline (incumbent-protocol.md §3.1),
// so that a taobox validator sets the same u16 vector a template validator
// would from the same scores.
//
//	raw = scores / ‖scores‖₁                 (Normalize)
//	ProcessWeights(raw, minAllowed, limit)  (process_weights, exclude_quantile 0)
//	ConvertWeights(uids, w)                 (convert_weights_and_uids_for_emit)
//
// The arithmetic is numpy 2's, step by step: float32 where the SDK's arrays
// are float32 (the scores, the non-zero weights) and float64 where they are
// float64 (process_weights' 1e-5 branch builds its array with np.ones of
// int64 times a Python float); a Python float or int meeting a numpy value
// takes that value's type (NEP 50), except that limit·(n − m) in
// normalize_max_weight is a Python float times an int64, so float64, which
// makes the cutoff float64 too. Every .sum() is numpy's pairwise summation
// (sumPairwise); np.cumsum is left to right. ConvertWeights widens to
// float64 as tolist() does, divides by the maximum and rounds w·65535 half
// to even (Python's round).

// maxWeightEpsilon is normalize_max_weight's epsilon.
const maxWeightEpsilon = 1e-7

// sumPairwise is numpy's add.reduce of a contiguous float array: the
// pairwise summation of its umath loops (blocks of up to 128 with eight
// accumulators, halves above that, cut at a multiple of 8), in T.
func sumPairwise[T float32 | float64](a []T) T {
	n := len(a)
	switch {
	case n < 8:
		var res T
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]T
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	}
	n2 := n / 2
	n2 -= n2 % 8
	return sumPairwise(a[:n2]) + sumPairwise(a[n2:])
}

// Normalize returns x / ‖x‖₁ in float32 (np.linalg.norm ord 1 of the
// float32 scores: a pairwise sum); a zero (or NaN) norm divides by 1, as
// the template validator does. Negative or NaN scores count as 0.
func Normalize(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		if v > 0 && !math.IsInf(v, 0) {
			out[i] = float32(v)
		}
	}
	sum := sumPairwise(out)
	if sum == 0 || math.IsNaN(float64(sum)) {
		return out
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// NormalizeMaxWeight is normalize_max_weight on a T array with the Python
// float limit: it renormalises x to sum 1 with no entry above limit, by
// clipping the largest entries to a common cutoff ("water filling"). With
// a zero sum, or n·limit ≤ 1, it returns the uniform 1/n. The result comes
// out slightly below limit (epsilon 1e-7).
func NormalizeMaxWeight[T float32 | float64](x []T, limit float64) []T {
	n := len(x)
	weights := slices.Clone(x)
	if n == 0 {
		return weights
	}
	if sumPairwise(x) == 0 || float64(n)*limit <= 1 {
		for i := range weights {
			weights[i] = T(1) / T(n)
		}
		return weights
	}
	values := slices.Clone(x)
	slices.Sort(values)
	vsum := sumPairwise(values)
	lim, eps := T(limit), T(maxWeightEpsilon)
	est := make([]T, n)
	emax := T(0)
	for i, v := range values {
		est[i] = v / vsum
		emax = max(emax, est[i])
	}
	if emax <= lim {
		wsum := sumPairwise(weights)
		for i := range weights {
			weights[i] /= wsum
		}
		return weights
	}
	cumsum := make([]T, n)
	var c T
	for i, e := range est {
		c += e
		cumsum[i] = c
	}
	m := 0
	for i, e := range est {
		estSum := T(T(n-i-1) * e) // the conversions keep each step rounded (no fused multiply-add)
		if e/T(T(estSum+cumsum[i])+eps) < lim {
			m++
		}
	}
	at := m - 1
	if m == 0 {
		at = n - 1 // numpy reads cumsum[-1] when no entry passes
	}
	num := T(T(lim*cumsum[at]) - eps)
	cutoff := float64(float64(num)/(1-float64(limit*float64(n-m)))) * float64(vsum) // conversions: no fused multiply-add
	for i, v := range weights {
		if float64(v) > cutoff {
			weights[i] = T(cutoff)
		}
	}
	wsum := sumPairwise(weights)
	for i := range weights {
		weights[i] /= wsum
	}
	return weights
}

// ProcessWeights is process_weights_for_netuid with exclude_quantile 0: it
// keeps the non-zero weights and caps them at limit (a Python float: the
// subnet's MaxWeightLimit/65535). When every weight is zero, or the subnet
// has fewer uids than minAllowed, every uid gets 1/n; when fewer than
// minAllowed weights are non-zero, every uid gets 1e-5 plus its weight
// (in float64, as there), capped. uids and w run in parallel; the result is
// new slices, the weights widened to float64 (exactly, from float32).
func ProcessWeights(uids []uint16, w []float32, minAllowed int, limit float64) ([]uint16, []float64) {
	n := len(uids)
	var nzU []uint16
	var nzW []float32
	for i, v := range w {
		if v > 0 {
			nzU = append(nzU, uids[i])
			nzW = append(nzW, v)
		}
	}
	if len(nzW) == 0 || n < minAllowed {
		out := make([]float64, n)
		for i := range out {
			out[i] = 1 / float64(n)
		}
		return slices.Clone(uids), out
	}
	if len(nzW) < minAllowed {
		out := make([]float64, n)
		for i := range out {
			out[i] = 1e-5 + float64(max(w[i], 0))
		}
		return slices.Clone(uids), NormalizeMaxWeight(out, limit)
	}
	// exclude_quantile 0: np.quantile(nz, 0) is the minimum, nothing dropped
	capped := NormalizeMaxWeight(nzW, limit)
	out := make([]float64, len(capped))
	for i, v := range capped {
		out[i] = float64(v)
	}
	return nzU, out
}

// ErrBadWeights is returned by ConvertWeights for input the SDK refuses.
var ErrBadWeights = errors.New("validator: bad weights")

// ConvertWeights is convert_weights_and_uids_for_emit: every weight is
// divided by the largest (max-upscale), multiplied by 65535 and rounded
// half to even; zeros are dropped, so the largest weight is always 65535.
// A zero sum gives empty vectors (nothing to set). Negative or NaN weights
// and unequal lengths are errors.
func ConvertWeights(uids []uint16, w []float64) ([]uint16, []uint16, error) {
	if len(uids) != len(w) {
		return nil, nil, fmt.Errorf("%w: %d uids but %d weights", ErrBadWeights, len(uids), len(w))
	}
	var sum, mx float64
	for _, f := range w {
		if !(f >= 0) || math.IsInf(f, 0) {
			return nil, nil, fmt.Errorf("%w: weight %v is negative, infinite or NaN", ErrBadWeights, f)
		}
		sum += f
		mx = max(mx, f)
	}
	if sum == 0 {
		return nil, nil, nil
	}
	var outU, outW []uint16
	for i, v := range w {
		u := math.RoundToEven(v / mx * 65535)
		if u != 0 {
			outU = append(outU, uids[i])
			outW = append(outW, uint16(u))
		}
	}
	return outU, outW, nil
}

// WeightsFor turns scores (one per uid 0..n-1) into the u16 vector to set on
// a subnet with the given MinAllowedWeights and MaxWeightLimit (of 65535):
// Normalize, ProcessWeights, ConvertWeights. If rounding to u16 pushes the
// largest share above the limit the chain enforces (it renormalises the
// u16 values in I32F32), the cap is retried a few u16 steps lower, so the
// call is never refused with "exceeds the max weight limit". If rounding
// drops tiny scores (a miner's moving average decaying towards zero) so
// that fewer than MinAllowedWeights remain, those scores are taken as zero
// and the vector is made again (ProcessWeights then gives every uid its
// 1e-5), so the call is not refused for too few weights either; where
// the SDK would send it anyway, this deviates. And fewer than ⌈1/limit⌉
// scored uids cannot meet the cap at all (each share at most the limit,
// summing to 1: a young subnet whose owner lowered the limit): the SDK
// sends them anyway and the chain refuses every call, so here every uid
// gets the 1e-5 floor as if MinAllowedWeights were ⌈1/limit⌉; a subnet
// with fewer uids than that is an error. Empty result: nothing to set.
func WeightsFor(scores []float64, minAllowed, maxWeightLimit uint64) ([]uint16, []uint16, error) {
	u, w, err := weightsForMin(scores, minAllowed, maxWeightLimit)
	lim := min(maxWeightLimit, 65535)
	if err != nil || len(u) == 0 || lim == 65535 || ymath.CheckVecMaxLimited(w, uint16(lim)) {
		return u, w, err
	}
	spread := (65535 + lim - 1) / max(lim, 1) // ⌈1/limit⌉
	if uint64(len(scores)) < spread {
		return nil, nil, fmt.Errorf("%w: the subnet's max weight limit %d/65535 needs weights on at least %d uids, and it has %d", ErrBadWeights, lim, spread, len(scores))
	}
	// ⌈1/limit⌉ weights, then every uid's (spreading the floor widest)
	for _, m := range []uint64{max(minAllowed, spread), uint64(len(scores))} {
		if u, w, err = weightsForMin(scores, m, maxWeightLimit); err != nil || ymath.CheckVecMaxLimited(w, uint16(lim)) {
			return u, w, err
		}
	}
	return nil, nil, fmt.Errorf("%w: no u16 vector of %d uids meets the max weight limit %d/65535", ErrBadWeights, len(scores), lim)
}

// weightsForMin is WeightsFor without the cap's fallback.
func weightsForMin(scores []float64, minAllowed, maxWeightLimit uint64) ([]uint16, []uint16, error) {
	n := len(scores)
	if n == 0 {
		return nil, nil, nil
	}
	uids := make([]uint16, n)
	for i := range uids {
		uids[i] = uint16(i)
	}
	raw := Normalize(scores)
	u, w, err := weightsFor(uids, raw, minAllowed, maxWeightLimit)
	need := int(min(minAllowed, uint64(n)))
	if err != nil || len(u) == 0 || len(u) >= need {
		return u, w, err
	}
	kept := make([]float32, n)
	for _, id := range u {
		kept[id] = raw[id]
	}
	if u, w, err = weightsFor(uids, kept, minAllowed, maxWeightLimit); err != nil || len(u) >= need {
		return u, w, err
	}
	return nil, nil, fmt.Errorf("%w: %d of %d weights survive rounding to u16, the subnet requires %d", ErrBadWeights, len(u), n, need)
}

// weightsFor is WeightsFor's ProcessWeights and ConvertWeights, with the
// cap retried lower while the u16 result breaks the limit.
func weightsFor(uids []uint16, raw []float32, minAllowed, maxWeightLimit uint64) ([]uint16, []uint16, error) {
	lim := min(maxWeightLimit, 65535)
	for try := uint64(0); ; try++ {
		limit := float64(lim-min(try, lim)) / 65535 // the SDK's u16_normalized_float, then lower
		pu, pw := ProcessWeights(uids, raw, int(min(minAllowed, 65535)), limit)
		u, w, err := ConvertWeights(pu, pw)
		if err != nil || lim == 65535 || ymath.CheckVecMaxLimited(w, uint16(lim)) || try == 16 {
			return u, w, err
		}
	}
}
