package ymath

import (
	"slices"

	"taobox/chain/fixed"
)

// VecMaxUpscaleToU16 scales a (non-negative) vector so its maximum maps to
// 65535 and converts to u16: floor(e⊗65535) when the max is 0, round(e ⊗
// (65535 sdiv max)) when max > 32768, else round((e⊗65535) sdiv max).
func VecMaxUpscaleToU16(vec []fixed.I32F32) []uint16 {
	threshold := fixed.I32F32FromInt(32768)
	out := make([]uint16, 0, len(vec))
	if len(vec) == 0 {
		// The Rust None arm: divide by the (plain) sum of an empty vector,
		// which maps nothing. Kept for faithfulness.
		sum := Sum(vec)
		for _, e := range vec {
			out = append(out, e.SatMul(u16Max).SafeDiv(sum).FloorU16())
		}
		return out
	}
	maxVal := slices.Max(vec)
	if maxVal == 0 {
		for _, e := range vec {
			out = append(out, e.SatMul(u16Max).FloorU16())
		}
		return out
	}
	if maxVal > threshold {
		for _, e := range vec {
			out = append(out, e.SatMul(u16Max.SafeDiv(maxVal)).Round().FloorU16())
		}
		return out
	}
	for _, e := range vec {
		out = append(out, e.SatMul(u16Max).SafeDiv(maxVal).Round().FloorU16())
	}
	return out
}

// VecU16MaxUpscaleToU16 converts u16 values to I32F32 integers and applies
// VecMaxUpscaleToU16.
func VecU16MaxUpscaleToU16(vec []uint16) []uint16 {
	vecFixed := make([]fixed.I32F32, 0, len(vec))
	for _, e := range vec {
		vecFixed = append(vecFixed, fixed.I32F32FromInt(int64(e)))
	}
	return VecMaxUpscaleToU16(vecFixed)
}

// CheckVecMaxLimited reports whether the u16 vector, normalized as I32F32,
// has a maximum <= maxLimit/65535 (safe_div). An empty vector passes.
func CheckVecMaxLimited(vec []uint16, maxLimit uint16) bool {
	maxLimitFixed := fixed.I32F32FromInt(int64(maxLimit)).SafeDiv(u16Max)
	vecFixed := make([]fixed.I32F32, 0, len(vec))
	for _, e := range vec {
		vecFixed = append(vecFixed, fixed.I32F32FromInt(int64(e)))
	}
	InplaceNormalize(vecFixed)
	if len(vecFixed) == 0 {
		return true
	}
	return slices.Max(vecFixed) <= maxLimitFixed
}

// Sum is Rust's Iterator::sum over I32F32: the plain, wrapping sum of the raw
// values (it never saturates).
func Sum(x []fixed.I32F32) fixed.I32F32 {
	var s fixed.I32F32
	for _, v := range x {
		s += v
	}
	return s
}

// IsZero reports whether the plain Sum of the vector is zero.
func IsZero(vector []fixed.I32F32) bool {
	return Sum(vector) == 0
}

// ExpSafe is math.rs exp_safe: substrate-fixed exp of the input clamped to
// [-20, 20]; on an exp error it returns 0 for inputs <= 0, else I32F32::MAX.
func ExpSafe(input fixed.I32F32) fixed.I32F32 {
	minInput := fixed.I32F32FromInt(-20)
	maxInput := fixed.I32F32FromInt(20)
	safeInput := input
	if input < minInput {
		safeInput = minInput
	} else if maxInput < input {
		safeInput = maxInput
	}
	if v, ok := fixed.Exp(safeInput); ok {
		return v
	}
	if safeInput <= 0 {
		return 0
	}
	return fixed.I32F32Max
}

// SigmoidSafe is 1 sdiv (1 ⊕ ExpSafe((rho⊗-1)⊗(input⊖kappa))), all steps
// saturating.
func SigmoidSafe(input, rho, kappa fixed.I32F32) fixed.I32F32 {
	one := fixed.I32F32One
	offset := input.SatSub(kappa)
	negRho := rho.SatMul(one.SatNeg())
	expInput := negRho.SatMul(offset)
	expOutput := ExpSafe(expInput)
	denominator := expOutput.SatAdd(one)
	return one.SafeDiv(denominator)
}

// IsTopk marks the k largest entries true. All entries are true when
// len < k; otherwise the first len-k indices of a stable ascending sort
// (lowest values, lower index first among ties) are false. k must be >= 0.
func IsTopk(vector []fixed.I32F32, k int) []bool {
	n := len(vector)
	result := make([]bool, n)
	for i := range result {
		result[i] = true
	}
	if n < k {
		return result
	}
	for _, idx := range ascendingOrder(vector)[:n-k] {
		result[idx] = false
	}
	return result
}

// IsTopkNonzero is IsTopk that additionally marks zero entries false (even
// when len < k).
func IsTopkNonzero(vector []fixed.I32F32, k int) []bool {
	n := len(vector)
	result := make([]bool, n)
	for i, e := range vector {
		result[i] = e != 0
	}
	if n < k {
		return result
	}
	for _, idx := range ascendingOrder(vector)[:n-k] {
		result[idx] = false
	}
	return result
}

// ascendingOrder returns the indices of vector stably sorted by value.
func ascendingOrder(vector []fixed.I32F32) []int {
	idxs := make([]int, len(vector))
	for i := range idxs {
		idxs[i] = i
	}
	slices.SortStableFunc(idxs, func(a, b int) int {
		va, vb := GetSafe(vector, a), GetSafe(vector, b)
		switch {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return 0
	})
	return idxs
}

// Normalize returns a copy of x divided by its plain Sum (safe_div), or an
// unchanged copy when the sum is zero.
func Normalize(x []fixed.I32F32) []fixed.I32F32 {
	xSum := Sum(x)
	out := make([]fixed.I32F32, 0, len(x))
	if xSum != 0 {
		for _, xi := range x {
			out = append(out, xi.SafeDiv(xSum))
		}
		return out
	}
	return append(out, x...)
}

// InplaceNormalize divides x in place by its plain Sum (safe_div); a zero
// sum leaves x unchanged. Negative entries are allowed.
func InplaceNormalize(x []fixed.I32F32) {
	xSum := Sum(x)
	if xSum == 0 {
		return
	}
	for i := range x {
		x[i] = x[i].SafeDiv(xSum)
	}
}

// InplaceNormalizeUsingSum divides x in place by the given sum (safe_div);
// a zero sum leaves x unchanged.
func InplaceNormalizeUsingSum(x []fixed.I32F32, xSum fixed.I32F32) {
	if xSum == 0 {
		return
	}
	for i := range x {
		x[i] = x[i].SafeDiv(xSum)
	}
}

// sum64 is Iterator::sum over I64F64: the plain, wrapping 128-bit sum.
func sum64(x []fixed.I64F64) fixed.I64F64 {
	var s fixed.I64F64
	for _, v := range x {
		s = s.Add(v)
	}
	return s
}

// InplaceNormalize64 divides the I64F64 vector in place by its plain sum
// (safe_div); a zero sum leaves it unchanged.
func InplaceNormalize64(x []fixed.I64F64) {
	xSum := sum64(x)
	if xSum.IsZero() {
		return
	}
	for i := range x {
		x[i] = x[i].SafeDiv(xSum)
	}
}

// InplaceRowNormalize64 normalizes, in place, each I64F64 row whose plain
// sum is > 0.
func InplaceRowNormalize64(x [][]fixed.I64F64) {
	var zero fixed.I64F64
	for _, row := range x {
		rowSum := sum64(row)
		if rowSum.Cmp(zero) > 0 {
			for j := range row {
				row[j] = row[j].SafeDiv(rowSum)
			}
		}
	}
}

// Vecdiv returns x[i] sdiv y[i] for every i < len(x); a missing y[i] counts
// as 0, and division by 0 (or overflow) gives 0.
func Vecdiv(x, y []fixed.I32F32) []fixed.I32F32 {
	out := make([]fixed.I32F32, 0, len(x))
	for i, xi := range x {
		out = append(out, xi.SafeDiv(GetSafe(y, i)))
	}
	return out
}

// VecMul is the element-wise checked product over the common prefix of a
// and b; an overflowing product becomes 0.
func VecMul(a, b []fixed.I32F32) []fixed.I32F32 {
	n := min(len(a), len(b))
	out := make([]fixed.I32F32, 0, n)
	for i := range n {
		p, ok := a[i].CheckedMul(b[i])
		if !ok {
			p = 0
		}
		out = append(out, p)
	}
	return out
}

// ClampValue returns max(min(value, high), low); with low > high it yields low.
func ClampValue(value, low, high fixed.I32F32) fixed.I32F32 {
	return value.Min(high).Max(low)
}
