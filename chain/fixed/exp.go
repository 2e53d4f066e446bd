package fixed

import "math/bits"

// eI9F23 is substrate-fixed's constant E, an I9F23 (23 fraction bits); exp(1)
// returns it widened to I32F32, i.e. with its last 9 fraction bits zero.
const eI9F23 = 22802600

// Exp is substrate_fixed::transcendental::exp::<I32F32, I32F32>: the Taylor
// series cut after the x^31/31! term, with every step floored (multiply) or
// truncated (divide) exactly as the Rust code does. It is not e^x: exp(20)
// comes out as 481239357.67…, not 485165195.4. It returns false where the Rust
// function returns Err (an intermediate overflow).
func Exp(x I32F32) (I32F32, bool) {
	if x == 0 {
		return I32F32One, true
	}
	if x == I32F32One {
		return I32F32(eI9F23 << 9), true
	}
	neg := x < 0
	if neg {
		if x == I32F32Min {
			return 0, false // checked_neg fails
		}
		x = -x
	}
	if x <= expLimit {
		result := I32F32(expSeries(uint64(x)))
		if neg {
			return I32F32One.CheckedDiv(result)
		}
		return result, true
	}
	result, ok := x.CheckedAdd(I32F32One)
	if !ok {
		return 0, false
	}
	term := x
	for i := int64(2); i < 32; i++ {
		if term, ok = term.CheckedMul(x); !ok {
			return 0, false
		}
		// checked_div by I32F32(i) is trunc((term<<32)/(i<<32)) = trunc(term/i);
		// it cannot overflow for i >= 2.
		term /= I32F32(i)
		if result, ok = result.CheckedAdd(term); !ok {
			return 0, false
		}
	}
	if neg {
		return I32F32One.CheckedDiv(result)
	}
	return result, true
}

// expLimit is the clamp of math.rs::exp_safe: inputs are limited to [-20, 20].
const expLimit = 20 << 32

// ExpSafe is subtensor's math::exp_safe: the input is clamped to [-20, 20];
// on an Err from Exp it returns 0 for inputs <= 0 and Max otherwise.
func ExpSafe(x I32F32) I32F32 {
	x = min(max(x, -expLimit), expLimit)
	if r, ok := Exp(x); ok {
		return r
	}
	if x <= 0 {
		return 0
	}
	return I32F32Max
}

// SigmoidSafe is subtensor's math::sigmoid_safe:
// 1 / (1 + exp_safe(-rho * (x - kappa))), with saturating steps and safe_div.
func SigmoidSafe(x, rho, kappa I32F32) I32F32 {
	offset := x.SatSub(kappa)
	negRho := rho.SatMul(I32F32One.SatNeg())
	e := ExpSafe(negRho.SatMul(offset))
	return I32F32One.SafeDiv(e.SatAdd(I32F32One))
}

// expSeries is the loop of Exp for 0 <= x <= 20 (raw x <= 20·2^32), where no
// step can overflow: the largest term times x stays below 9·10^8 and the sum
// below exp(20) < 2^31. Terms are non-negative, so floor and truncation are
// plain shifts and unsigned divisions; the divisors are constants, which the
// compiler turns into multiplications. Once a term reaches zero every later
// term is zero too, so stopping there changes nothing.
func expSeries(x uint64) uint64 {
	r := x + 1<<32
	t := x
	mul := func(t uint64) uint64 {
		hi, lo := bits.Mul64(t, x)
		return hi<<32 | lo>>32
	}
	if t = mul(t) / 2; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 3; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 4; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 5; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 6; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 7; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 8; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 9; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 10; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 11; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 12; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 13; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 14; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 15; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 16; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 17; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 18; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 19; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 20; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 21; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 22; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 23; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 24; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 25; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 26; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 27; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 28; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 29; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 30; t == 0 {
		return r
	}
	r += t
	if t = mul(t) / 31; t == 0 {
		return r
	}
	r += t
	return r
}
