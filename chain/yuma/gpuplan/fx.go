package gpuplan

import "math/bits"

// This file is the Go transcription of the fixed-point section of
// kernels/yuma.cu ("device fixed point"). Each function has the name of its
// CUDA twin and is written with the same algorithm (the same loops, shifts
// and unsigned wrapping), not with math/bits shortcuts that the device lacks:
// the 128/64 division is the same two-digit long division, the exp series the
// same unrolled constant divisions. fx_test.go checks every one against
// taobox/chain/fixed, so a transcription error in the algorithm shows on CI;
// the GPU self-test then checks the CUDA text itself.
//
// Values are raw I32F32 (int64). Wrapping sums use uint64 because signed
// overflow is undefined in CUDA C++.

const (
	fxOne  int64 = 1 << 32
	fxHalf int64 = 1 << 31
	fxMax  int64 = 1<<63 - 1
	fxMin  int64 = -1 << 63
)

// fxSatAdd is fx_sat_add (I32F32::saturating_add).
func fxSatAdd(a, b int64) int64 {
	s := int64(uint64(a) + uint64(b))
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return fxMax
		}
		return fxMin
	}
	return s
}

// fxSatSub is fx_sat_sub (saturating_sub).
func fxSatSub(a, b int64) int64 {
	s := int64(uint64(a) - uint64(b))
	if (a >= 0) != (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return fxMax
		}
		return fxMin
	}
	return s
}

// fxCheckedMul is fx_checked_mul: floor(a·b / 2^32) from the signed 128-bit
// product (mul.lo/mul.hi.u64 with the sign correction), ok = fits 64 bits.
func fxCheckedMul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b)) // device: __umul64hi, a*b
	hi -= uint64(b) & uint64(a>>63)
	hi -= uint64(a) & uint64(b>>63)
	if uint64(int64(hi)>>31)+1 > 1 {
		return 0, false
	}
	return int64(hi<<32 | lo>>32), true
}

// fxSatMul is fx_sat_mul (saturating_mul).
func fxSatMul(a, b int64) int64 {
	if r, ok := fxCheckedMul(a, b); ok {
		return r
	}
	if (a < 0) != (b < 0) {
		return fxMin
	}
	return fxMax
}

// fxDiv128 is fx_div128: floor((u1·2^64 + u0) / v) for u1 < v, by the
// two-digit long division of Hacker's Delight (divlu, 32-bit digits): the
// divisor is normalised (__clzll), each quotient digit is estimated with one
// 64/32 division and corrected at most twice.
func fxDiv128(u1, u0, v uint64) uint64 {
	const b = 1 << 32
	s := uint(bits.LeadingZeros64(v)) // device: __clzll
	v <<= s
	vn1, vn0 := v>>32, v&(b-1)
	un32 := u1 << s
	if s > 0 {
		un32 |= u0 >> (64 - s)
	}
	un10 := u0 << s
	un1, un0 := un10>>32, un10&(b-1)
	q1 := un32 / vn1
	rhat := un32 - q1*vn1
	for q1 >= b || q1*vn0 > b*rhat+un1 {
		q1--
		rhat += vn1
		if rhat >= b {
			break
		}
	}
	un21 := un32*b + un1 - q1*v
	q0 := un21 / vn1
	rhat = un21 - q0*vn1
	for q0 >= b || q0*vn0 > b*rhat+un0 {
		q0--
		rhat += vn1
		if rhat >= b {
			break
		}
	}
	return q1*b + q0
}

// fxCheckedDiv is fx_checked_div: trunc((a << 32) / b); ok is false on b == 0
// and on overflow.
func fxCheckedDiv(a, b int64) (int64, bool) {
	if b == 0 {
		return 0, false
	}
	ua, ub := uint64(a), uint64(b)
	na, nb := a < 0, b < 0
	if na {
		ua = -ua
	}
	if nb {
		ub = -ub
	}
	hi, lo := ua>>32, ua<<32
	if hi >= ub {
		return 0, false
	}
	q := fxDiv128(hi, lo, ub)
	if na != nb {
		if q > 1<<63 {
			return 0, false
		}
		return int64(-q), true
	}
	if q > 1<<63-1 {
		return 0, false
	}
	return int64(q), true
}

// fxSafeDiv is fx_safe_div (subtensor safe_div).
func fxSafeDiv(a, b int64) int64 {
	q, _ := fxCheckedDiv(a, b)
	return q
}

// fxSatDiv is fx_sat_div (saturating_div; b is never 0 where it is used).
func fxSatDiv(a, b int64) int64 {
	if q, ok := fxCheckedDiv(a, b); ok {
		return q
	}
	if (a < 0) != (b < 0) {
		return fxMin
	}
	return fxMax
}

// fxExpSeries is fx_exp_series: the 31-term Taylor loop of
// substrate_fixed exp for 0 < x <= 20 (fixed.expSeries), unrolled on the
// device so that every divisor is a constant.
func fxExpSeries(x uint64) uint64 {
	r := x + 1<<32
	t := x
	for i := uint64(2); i < 32; i++ {
		hi, lo := bits.Mul64(t, x)
		t = (hi<<32 | lo>>32) / i
		if t == 0 {
			return r
		}
		r += t
	}
	return r
}

// fxExpSafe is fx_exp_safe (math.rs exp_safe): clamp to [-20, 20], then the
// series; exp(1) is substrate-fixed's I9F23 constant E, and a negative input
// takes 1 / exp(|x|). Inside the clamp the Rust Err branches cannot happen.
func fxExpSafe(x int64) int64 {
	const lim = 20 << 32
	x = min(max(x, -lim), lim)
	if x == 0 {
		return fxOne
	}
	if x == fxOne {
		return 22802600 << 9
	}
	if x < 0 {
		q, _ := fxCheckedDiv(fxOne, int64(fxExpSeries(uint64(-x))))
		return q
	}
	return int64(fxExpSeries(uint64(x)))
}

// fxAlphaSigmoid is fx_alpha_sigmoid (run_epoch.rs alpha_sigmoid with the
// precomputed scale = steepness sdiv -100).
func fxAlphaSigmoid(cons, w, b, scale, low, high int64) int64 {
	var d int64
	if w >= b {
		d = max(min(fxSatSub(w, cons), fxOne), 0)
	} else {
		d = max(min(fxSatSub(b, w), fxOne), 0)
	}
	x := fxSatMul(scale, fxSatSub(d, fxHalf))
	sig := fxSatDiv(fxOne, fxSatAdd(fxOne, fxExpSafe(x)))
	a := fxSatAdd(low, fxSatMul(sig, fxSatSub(high, low)))
	return max(min(a, high), low)
}

// fxPropU16 is fx_prop_u16 (fixed_proportion_to_u16: floor_u16_sat(x ⊗ 65535)).
func fxPropU16(x int64) uint16 {
	if uint64(x) <= 1<<32 {
		return uint16(uint64(x) * 65535 >> 32)
	}
	v := fxSatMul(x, 65535<<32) >> 32
	if v < 0 {
		return 0
	}
	if v > 65535 {
		return 65535
	}
	return uint16(v)
}

// fxU16Prop is fx_u16_prop (u16_proportion_to_fixed = trunc(x·2^32/65535)).
func fxU16Prop(x uint64) int64 { return int64(x << 32 / 65535) }

// fxRao is fx_rao (I96F32(x) ⊗ I96F32(rao), floored to u64, saturating).
func fxRao(x int64, rao uint64) uint64 {
	if x <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(x), rao)
	if hi>>32 != 0 {
		return 1<<64 - 1
	}
	return hi<<32 | lo>>32
}
