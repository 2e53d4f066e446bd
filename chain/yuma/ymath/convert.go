// Package ymath is a literal, bit-exact port of subtensor's Yuma math helpers
// (pallets/subtensor/src/epoch/math.rs at commit 14bc6f9f) plus the liquid
// alpha helpers of run_epoch.rs.
//
// It is the reference implementation that faster engines are
// differential-tested against, so every function follows its Rust original
// step by step, including the odd edge cases: short or empty masks, iterators
// that stop at the shortest input, `vec![vec![]]` results for empty inputs,
// wrapping Iterator::sum versus saturating adds, and shape-mismatch fallbacks.
// Clarity and faithfulness come before speed.
//
// Conventions: a sparse matrix is [][]Pair (Rust Vec<Vec<(u16, I32F32)>>), a
// dense matrix is [][]fixed.I32F32 and a vector is []fixed.I32F32. Functions
// named Inplace* modify their argument; all others leave their inputs alone
// and return freshly allocated rows, so a caller may edit a result in place
// without corrupting the inputs (and vice versa). Rust's usize indices are
// Go ints; an index outside a slice reads as the zero value, as get_safe does.
//
// Floating-point helpers (fixed(), safe_ln, quantile) are not ported.
package ymath

import (
	"math"

	"taobox/chain/fixed"
)

// Pair is one entry (column, value) of a sparse matrix row.
type Pair struct {
	J uint16
	V fixed.I32F32
}

// u16Max is I32F32::saturating_from_num(u16::MAX).
var u16Max = fixed.I32F32FromInt(math.MaxUint16)

// GetSafe returns slice[idx], or the zero value when idx is out of range.
func GetSafe[T any](slice []T, idx int) T {
	var zero T
	if idx < 0 || idx >= len(slice) {
		return zero
	}
	return slice[idx]
}

// CheckedSum adds the elements with CheckedAdd; ok is false on overflow.
// An empty slice sums to the zero value.
func CheckedSum[T interface{ CheckedAdd(T) (T, bool) }](x []T) (sum T, ok bool) {
	if len(x) == 0 {
		return sum, true
	}
	sum = x[0]
	for _, v := range x[1:] {
		if sum, ok = sum.CheckedAdd(v); !ok {
			var zero T
			return zero, false
		}
	}
	return sum, true
}

// FixedToU16 is saturating_to_num::<u16>: floor, clamped to [0, 65535].
func FixedToU16(x fixed.I32F32) uint16 { return x.FloorU16() }

// FixedToU64 is saturating_to_num::<u64>: floor, negative values give 0.
func FixedToU64(x fixed.I32F32) uint64 { return x.FloorU64() }

// Fixed64ToU64 is saturating_to_num::<u64> of an I64F64.
func Fixed64ToU64(x fixed.I64F64) uint64 { return x.FloorU64() }

// Fixed64ToFixed32 converts I64F64 to I32F32: floor to 32 fraction bits, then
// saturate to the I32F32 range.
func Fixed64ToFixed32(x fixed.I64F64) fixed.I32F32 { return x.I32F32() }

// Fixed32ToFixed64 widens an I32F32 to I64F64 exactly.
func Fixed32ToFixed64(x fixed.I32F32) fixed.I64F64 { return fixed.I64F64FromI32F32(x) }

// U16ToFixed converts an integer u16 to I32F32 (x << 32).
func U16ToFixed(x uint16) fixed.I32F32 { return fixed.I32F32FromInt(int64(x)) }

// U16ProportionToFixed maps a u16 proportion to I32F32 as safe_div(x, 65535).
func U16ProportionToFixed(x uint16) fixed.I32F32 {
	return fixed.I32F32FromInt(int64(x)).SafeDiv(u16Max)
}

// FixedToFixedU16Proportion returns safe_div(x, 65535).
func FixedToFixedU16Proportion(x fixed.I32F32) fixed.I32F32 {
	return x.SafeDiv(u16Max)
}

// FixedProportionToU16 returns floor(x ⊗ 65535) clamped to u16 (saturating mul).
func FixedProportionToU16(x fixed.I32F32) uint16 {
	return FixedToU16(x.SatMul(u16Max))
}

// VecFixed32ToU64 applies FixedToU64 to every element.
func VecFixed32ToU64(vec []fixed.I32F32) []uint64 {
	out := make([]uint64, 0, len(vec))
	for _, v := range vec {
		out = append(out, FixedToU64(v))
	}
	return out
}

// VecFixed64ToFixed32 applies Fixed64ToFixed32 to every element.
func VecFixed64ToFixed32(vec []fixed.I64F64) []fixed.I32F32 {
	out := make([]fixed.I32F32, 0, len(vec))
	for _, v := range vec {
		out = append(out, Fixed64ToFixed32(v))
	}
	return out
}

// VecFixed32ToFixed64 applies Fixed32ToFixed64 to every element.
func VecFixed32ToFixed64(vec []fixed.I32F32) []fixed.I64F64 {
	out := make([]fixed.I64F64, 0, len(vec))
	for _, v := range vec {
		out = append(out, Fixed32ToFixed64(v))
	}
	return out
}

// VecFixed64ToU64 applies Fixed64ToU64 to every element.
func VecFixed64ToU64(vec []fixed.I64F64) []uint64 {
	out := make([]uint64, 0, len(vec))
	for _, v := range vec {
		out = append(out, Fixed64ToU64(v))
	}
	return out
}

// VecFixedProportionsToU16 applies FixedProportionToU16 to every element.
func VecFixedProportionsToU16(vec []fixed.I32F32) []uint16 {
	out := make([]uint16, 0, len(vec))
	for _, v := range vec {
		out = append(out, FixedProportionToU16(v))
	}
	return out
}

// cloneDense deep-copies a dense matrix (Rust's to_owned on &[Vec<_>]).
func cloneDense(m [][]fixed.I32F32) [][]fixed.I32F32 {
	out := make([][]fixed.I32F32, len(m))
	for i, row := range m {
		out[i] = append([]fixed.I32F32{}, row...)
	}
	return out
}

// cloneSparse deep-copies a sparse matrix.
func cloneSparse(m [][]Pair) [][]Pair {
	out := make([][]Pair, len(m))
	for i, row := range m {
		out[i] = append([]Pair{}, row...)
	}
	return out
}

// emptyMatrix is Rust's vec![vec![]]: one empty row.
func emptyMatrix() [][]fixed.I32F32 { return [][]fixed.I32F32{{}} }
