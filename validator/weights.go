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
// Like numpy in the SDK, Normalize, ProcessWeights and NormalizeMaxWeight
// compute in float32 (sums are left-to-right; numpy's pairwise summation can
// differ in the last bit on vectors longer than 8, which moves a u16 by at
// most 1 in rare half-way cases). ConvertWeights is exact: it widens the
// float32 values to float64 as the SDK's tolist() does, divides by the
// maximum and rounds w·65535 half to even (Python's round).

// maxWeightEpsilon is normalize_max_weight's epsilon.
const maxWeightEpsilon = 1e-7

// Normalize returns x / ‖x‖₁ in float32; a zero (or NaN) norm divides by 1,
// as the template validator does. Negative or NaN scores count as 0.
func Normalize(x []float64) []float32 {
	out := make([]float32, len(x))
	var sum float32
	for i, v := range x {
		if !(v > 0) || math.IsInf(v, 0) {
			continue
		}
		out[i] = float32(v)
		sum += out[i]
	}
	if sum == 0 || math.IsNaN(float64(sum)) {
		return out
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// NormalizeMaxWeight is normalize_max_weight: it renormalises x to sum 1
// with no entry above limit, by clipping the largest entries to a common
// cutoff ("water filling"). With a zero sum, or n·limit ≤ 1, it returns the
// uniform 1/n. The result comes out slightly below limit (epsilon 1e-7).
func NormalizeMaxWeight(x []float32, limit float32) []float32 {
	n := len(x)
	out := slices.Clone(x)
	if n == 0 {
		return out
	}
	var sum float32
	for _, v := range x {
		sum += v
	}
	if sum == 0 || float32(n)*limit <= 1 {
		for i := range out {
			out[i] = 1 / float32(n)
		}
		return out
	}
	values := slices.Clone(x)
	slices.Sort(values)
	est := make([]float32, n)
	var emax float32
	for i, v := range values {
		est[i] = v / sum
		emax = max(emax, est[i])
	}
	if emax <= limit {
		for i := range out {
			out[i] /= sum
		}
		return out
	}
	cumsum := make([]float32, n)
	var c float32
	for i, e := range est {
		c += e
		cumsum[i] = c
	}
	m := 0
	for i, e := range est {
		estSum := float32(n-i-1) * e
		if e/(estSum+cumsum[i]+maxWeightEpsilon) < limit {
			m++
		}
	}
	var cutoffScale float32
	if m > 0 {
		cutoffScale = (limit*cumsum[m-1] - maxWeightEpsilon) / (1 - limit*float32(n-m))
	} else {
		// numpy reads cumsum[-1] (the total, 1) when no entry passes
		cutoffScale = (limit*cumsum[n-1] - maxWeightEpsilon) / (1 - limit*float32(n))
	}
	cutoff := cutoffScale * sum
	var s2 float32
	for i, v := range out {
		if v > cutoff {
			out[i] = cutoff
		}
		s2 += out[i]
	}
	for i := range out {
		out[i] /= s2
	}
	return out
}

// ProcessWeights is process_weights_for_netuid with exclude_quantile 0: it
// keeps the non-zero weights and caps them at maxLimit (a fraction of 1,
// the subnet's MaxWeightLimit/65535). When every weight is zero, or the
// subnet has fewer uids than minAllowed, every uid gets 1/n; when fewer
// than minAllowed weights are non-zero, every uid gets 1e-5 plus its
// weight, capped. uids and w run in parallel; the result is new slices.
func ProcessWeights(uids []uint16, w []float32, minAllowed int, maxLimit float32) ([]uint16, []float32) {
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
		out := make([]float32, n)
		for i := range out {
			out[i] = 1 / float32(n)
		}
		return slices.Clone(uids), out
	}
	if len(nzW) < minAllowed {
		out := make([]float32, n)
		for i := range out {
			out[i] = 1e-5 + max(w[i], 0)
		}
		return slices.Clone(uids), NormalizeMaxWeight(out, maxLimit)
	}
	// exclude_quantile 0: np.quantile(nz, 0) is the minimum, nothing dropped
	return nzU, NormalizeMaxWeight(nzW, maxLimit)
}

// ErrBadWeights is returned by ConvertWeights for input the SDK refuses.
var ErrBadWeights = errors.New("validator: bad weights")

// ConvertWeights is convert_weights_and_uids_for_emit: every weight is
// divided by the largest (max-upscale), multiplied by 65535 and rounded
// half to even; zeros are dropped, so the largest weight is always 65535.
// A zero sum gives empty vectors (nothing to set). Negative or NaN weights
// and unequal lengths are errors.
func ConvertWeights(uids []uint16, w []float32) ([]uint16, []uint16, error) {
	if len(uids) != len(w) {
		return nil, nil, fmt.Errorf("%w: %d uids but %d weights", ErrBadWeights, len(uids), len(w))
	}
	var sum, mx float64
	for _, v := range w {
		f := float64(v)
		if !(f >= 0) || math.IsInf(f, 0) {
			return nil, nil, fmt.Errorf("%w: weight %v is negative, infinite or NaN", ErrBadWeights, v)
		}
		sum += f
		mx = max(mx, f)
	}
	if sum == 0 {
		return nil, nil, nil
	}
	var outU, outW []uint16
	for i, v := range w {
		u := math.RoundToEven(float64(v) / mx * 65535)
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
// the SDK would send it anyway, this deviates. Empty result: nothing to
// set.
func WeightsFor(scores []float64, minAllowed, maxWeightLimit uint64) ([]uint16, []uint16, error) {
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
	for try := 0; ; try++ {
		limit := float32(float64(lim)/65535) - float32(try)*(1.0/65535)
		pu, pw := ProcessWeights(uids, raw, int(min(minAllowed, 65535)), limit)
		u, w, err := ConvertWeights(pu, pw)
		if err != nil || lim == 65535 || ymath.CheckVecMaxLimited(w, uint16(lim)) || try == 16 {
			return u, w, err
		}
	}
}
