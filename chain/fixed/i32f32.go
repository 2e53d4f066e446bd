// Package fixed implements the fixed-point numbers of substrate-fixed v0.6.0
// (the fork of the `fixed` crate that subtensor uses) with its exact rounding,
// saturation and overflow rules. Consensus code uses these types instead of
// floats so that every node, the GPU engine and subtensor agree to the bit.
//
// The rules, for every type here (see specs/yuma-epoch.md §2):
//   - add and sub are exact; the Sat* forms clamp to [Min, Max] and the
//     Checked* forms report overflow;
//   - multiply keeps the double-width product and shifts it right
//     arithmetically, so it rounds toward minus infinity (floor);
//   - divide computes (a << frac) / b truncated toward zero;
//   - SafeDiv returns zero when b is zero AND when the quotient overflows;
//   - a fixed-to-fixed or fixed-to-integer conversion floors, then saturates.
//
// A value is held as its raw two's-complement integer: an I32F32 r means
// r / 2^32. Plain Go `+` on raw I32F32 values is the wrapping sum that Rust's
// Iterator::sum performs in release builds; use it only where subtensor sums.
package fixed

import (
	"math"
	"math/bits"
	"strconv"
)

// I32F32 is a signed fixed-point number with 32 integer and 32 fraction bits,
// stored as its raw value (value = raw / 2^32).
type I32F32 int64

// Frequently used I32F32 constants.
const (
	I32F32Zero I32F32 = 0
	I32F32One  I32F32 = 1 << 32
	I32F32Half I32F32 = 1 << 31
	I32F32Max  I32F32 = math.MaxInt64
	I32F32Min  I32F32 = math.MinInt64
)

// I32F32FromInt converts an integer, saturating: substrate-fixed's
// saturating_from_num for integers.
func I32F32FromInt(v int64) I32F32 {
	if v > math.MaxInt32 {
		return I32F32Max
	}
	if v < math.MinInt32 {
		return I32F32Min
	}
	return I32F32(v << 32)
}

// I32F32FromU64 converts an unsigned integer, saturating.
func I32F32FromU64(v uint64) I32F32 {
	if v > math.MaxInt32 {
		return I32F32Max
	}
	return I32F32(v << 32)
}

// Raw returns the raw two's-complement representation.
func (a I32F32) Raw() int64 { return int64(a) }

// SatAdd is saturating_add.
func (a I32F32) SatAdd(b I32F32) I32F32 {
	s := a + b
	// Overflow iff both operands have the same sign and the sum's sign differs.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return I32F32Max
		}
		return I32F32Min
	}
	return s
}

// SatSub is saturating_sub.
func (a I32F32) SatSub(b I32F32) I32F32 {
	s := a - b
	if (a >= 0) != (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return I32F32Max
		}
		return I32F32Min
	}
	return s
}

// CheckedAdd is checked_add.
func (a I32F32) CheckedAdd(b I32F32) (I32F32, bool) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// SatNeg is saturating_neg.
func (a I32F32) SatNeg() I32F32 {
	if a == I32F32Min {
		return I32F32Max
	}
	return -a
}

// CheckedMul is checked_mul: floor(a*b / 2^32), or false if it does not fit.
func (a I32F32) CheckedMul(b I32F32) (I32F32, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	// Correct the unsigned high word to the signed product's high word:
	// subtract b when a < 0 and a when b < 0 (masks instead of branches).
	hi -= uint64(b) & uint64(int64(a)>>63)
	hi -= uint64(a) & uint64(int64(b)>>63)
	// The result is bits 32..95 of the 128-bit product. It fits iff bits
	// 95..127 are all equal, i.e. hi >> 31 (arithmetic) is 0 or -1.
	if uint64(int64(hi)>>31)+1 > 1 {
		return 0, false
	}
	return I32F32(hi<<32 | lo>>32), true
}

// SatMul is saturating_mul: on overflow, Min if the signs differ, else Max.
func (a I32F32) SatMul(b I32F32) I32F32 {
	if r, ok := a.CheckedMul(b); ok {
		return r
	}
	if (a < 0) != (b < 0) {
		return I32F32Min
	}
	return I32F32Max
}

// CheckedDiv is checked_div: trunc((a << 32) / b), or false if b is zero or
// the quotient does not fit.
func (a I32F32) CheckedDiv(b I32F32) (I32F32, bool) {
	if b == 0 {
		return 0, false
	}
	ua, na := absU64(int64(a))
	ub, nb := absU64(int64(b))
	hi, lo := ua>>32, ua<<32
	if hi >= ub {
		return 0, false // the quotient needs more than 64 bits
	}
	q, _ := bits.Div64(hi, lo, ub)
	if na != nb {
		if q > 1<<63 {
			return 0, false
		}
		return I32F32(-q), true
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return I32F32(q), true
}

// SafeDiv is subtensor's safe_div (checked_div().unwrap_or_default()): zero on
// division by zero and on overflow.
func (a I32F32) SafeDiv(b I32F32) I32F32 {
	q, _ := a.CheckedDiv(b)
	return q
}

// SatDiv is saturating_div: on overflow it saturates by the signs. Division
// by zero panics, as in Rust; callers pass nonzero constants only.
func (a I32F32) SatDiv(b I32F32) I32F32 {
	if b == 0 {
		panic("fixed: I32F32 saturating division by zero")
	}
	if q, ok := a.CheckedDiv(b); ok {
		return q
	}
	if (a < 0) != (b < 0) {
		return I32F32Min
	}
	return I32F32Max
}

// Min returns the smaller of a and b.
func (a I32F32) Min(b I32F32) I32F32 { return min(a, b) }

// Max returns the larger of a and b.
func (a I32F32) Max(b I32F32) I32F32 { return max(a, b) }

// Round rounds to the nearest integer, ties away from zero (substrate-fixed
// round()). Rust's round() overflows only within half a unit of the range
// ends; here it saturates instead (subtensor rounds values below 65536 only).
func (a I32F32) Round() I32F32 {
	const half, frac = 1 << 31, 1<<32 - 1
	m, neg := absU64(int64(a))
	r := (m + half) &^ frac
	if neg {
		if r > 1<<63 {
			return I32F32Min
		}
		return I32F32(-r)
	}
	if r > math.MaxInt64 {
		return I32F32Max
	}
	return I32F32(r)
}

// FloorU16 is saturating_to_num::<u16>(): floor, then clamp to [0, 65535].
func (a I32F32) FloorU16() uint16 {
	v := int64(a) >> 32
	if v < 0 {
		return 0
	}
	if v > math.MaxUint16 {
		return math.MaxUint16
	}
	return uint16(v)
}

// FloorU64 is saturating_to_num::<u64>(): floor, then clamp at zero.
func (a I32F32) FloorU64() uint64 {
	v := int64(a) >> 32
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// Float64 returns the nearest float64; for display and tests only.
func (a I32F32) Float64() float64 { return float64(a) / (1 << 32) }

// String formats the value as the shortest decimal that reads back to the same
// float64 (display only; not exact for values needing more than 53 bits).
func (a I32F32) String() string { return strconv.FormatFloat(a.Float64(), 'f', -1, 64) }

func absU64(v int64) (uint64, bool) {
	if v < 0 {
		return uint64(-v), true // -MinInt64 wraps to 2^63, the right magnitude
	}
	return uint64(v), false
}
