package fixed

import (
	"fmt"
	"math"
	"math/bits"
)

// The 128-bit fixed-point types. I64F64 carries stake inside the epoch,
// I96F32 the emission in rao, U96F32 and U64F64 the coinbase and tao weight.
// All share the arithmetic of wide.go; they differ in fraction bits and sign.

// I64F64 is a signed fixed-point number with 64 integer and 64 fraction bits.
type I64F64 struct{ r u128 }

// I96F32 is a signed fixed-point number with 96 integer and 32 fraction bits.
type I96F32 struct{ r u128 }

// U64F64 is an unsigned fixed-point number with 64 integer and 64 fraction bits.
type U64F64 struct{ r u128 }

// U96F32 is an unsigned fixed-point number with 96 integer and 32 fraction bits.
type U96F32 struct{ r u128 }

// ---- signed helpers (frac = fraction bits) ----

func sSatAdd(a, b u128) u128 {
	s, _ := a.add(b)
	if a.neg() == b.neg() && s.neg() != a.neg() {
		if a.neg() {
			return i128Min
		}
		return i128Max
	}
	return s
}

func sSatSub(a, b u128) u128 {
	s, _ := a.sub(b)
	if a.neg() != b.neg() && s.neg() != a.neg() {
		if a.neg() {
			return i128Min
		}
		return i128Max
	}
	return s
}

func sSatMul(a, b u128, frac uint) u128 {
	if r, ok := mulShrSigned(a, b, frac); ok {
		return r
	}
	if a.neg() != b.neg() {
		return i128Min
	}
	return i128Max
}

func sCheckedDiv(a, b u128, frac uint) (u128, bool) {
	if b.isZero() {
		return u128{}, false
	}
	return divShlSigned(a, b, frac)
}

// sFromU64 is saturating_from_num(u64) into a signed type with `int` integer bits.
func sFromU64(v uint64, frac uint) u128 {
	if frac == 64 {
		if v > math.MaxInt64 {
			return i128Max
		}
		return u128{hi: v}
	}
	return u128{hi: v >> (64 - frac), lo: v << frac}
}

// sFloorU64 is saturating_to_num::<u64>() from a signed type.
func sFloorU64(a u128, frac uint) uint64 {
	if a.neg() {
		return 0
	}
	q := shl128(a, 0).shr(frac)
	if q[1] != 0 {
		return math.MaxUint64
	}
	return q[0]
}

// decimal writes the raw value in base 10, as a signed or unsigned integer.
func (a u128) decimal(signed bool) string {
	var buf [41]byte // 2^128 has 39 digits; one more for the sign
	i := len(buf)
	mag, neg := a, false
	if signed {
		mag, neg = a.abs()
	}
	for {
		// Divide by 10^19, the largest power of ten below 2^64, and write
		// the remainder's 19 digits (all of them except for the last chunk).
		const chunk = 10_000_000_000_000_000_000
		qhi, r := bits.Div64(0, mag.hi, chunk)
		qlo, r := bits.Div64(r, mag.lo, chunk)
		mag = u128{hi: qhi, lo: qlo}
		for k := 0; k < 19 && (r != 0 || !mag.isZero()); k++ {
			i--
			buf[i] = byte('0' + r%10)
			r /= 10
		}
		if mag.isZero() {
			break
		}
	}
	if i == len(buf) {
		i--
		buf[i] = '0'
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// fracDigits writes a fraction left-aligned in 64 bits (value f / 2^64) as
// its exact decimal digits after the point; "" when f is zero. Every binary
// fraction has a finite decimal expansion: at most 64 digits here.
func fracDigits(f uint64) string {
	var buf [64]byte
	n := 0
	for f != 0 {
		d, lo := bits.Mul64(f, 10)
		buf[n] = byte('0' + d)
		n++
		f = lo
	}
	return string(buf[:n])
}

// parseRaw parses a raw value written as a decimal integer ("-" allowed when
// signed), without leading "+", spaces or other bases.
func parseRaw(s string, signed bool) (u128, error) {
	digits, neg := s, false
	if signed && len(s) > 0 && s[0] == '-' {
		digits, neg = s[1:], true
	}
	if digits == "" {
		return u128{}, fmt.Errorf("fixed: %q is not a decimal integer", s)
	}
	var mag u128
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return u128{}, fmt.Errorf("fixed: %q is not a decimal integer", s)
		}
		p, ok := mul128(mag, u128{lo: 10}).fits128()
		var carry uint64
		if ok {
			p, carry = p.add(u128{lo: uint64(c - '0')})
		}
		if !ok || carry != 0 {
			return u128{}, fmt.Errorf("fixed: raw value %s is out of range", s)
		}
		mag = p
	}
	switch {
	case !signed:
		return mag, nil
	case neg && mag.cmp(i128MinMag) <= 0:
		return mag.negate(), nil
	case !neg && !mag.neg():
		return mag, nil
	}
	return u128{}, fmt.Errorf("fixed: raw value %s is out of range", s)
}

// ---- I64F64 ----

// I64F64FromU64 is saturating_from_num(u64).
func I64F64FromU64(v uint64) I64F64 { return I64F64{sFromU64(v, 64)} }

// I64F64FromI32F32 converts exactly (saturating_from_num between fixed types).
func I64F64FromI32F32(a I32F32) I64F64 {
	v := u128{hi: uint64(int64(a) >> 32), lo: uint64(a) << 32}
	return I64F64{v}
}

// I64F64FromU96F32 is saturating_from_num(U96F32): shift left by 32 bits, saturating.
func I64F64FromU96F32(a U96F32) I64F64 {
	if a.r.hi>>31 != 0 {
		return I64F64{i128Max}
	}
	return I64F64{u128{hi: a.r.hi<<32 | a.r.lo>>32, lo: a.r.lo << 32}}
}

// ParseI64F64Raw parses a raw value written as a decimal integer.
func ParseI64F64Raw(s string) (I64F64, error) {
	r, err := parseRaw(s, true)
	return I64F64{r}, err
}

// I32F32 is saturating_from_num into I32F32: an arithmetic shift right by 32
// bits (floor), clamped to the I32F32 range.
func (a I64F64) I32F32() I32F32 {
	v := int64(a.r.hi)
	if v > math.MaxInt32 {
		return I32F32Max
	}
	if v < math.MinInt32 {
		return I32F32Min
	}
	return I32F32(a.r.hi<<32 | a.r.lo>>32)
}

// Add is the plain (wrapping) addition that Rust's Iterator::sum performs.
func (a I64F64) Add(b I64F64) I64F64 { s, _ := a.r.add(b.r); return I64F64{s} }

// SatAdd is saturating_add.
func (a I64F64) SatAdd(b I64F64) I64F64 { return I64F64{sSatAdd(a.r, b.r)} }

// SatSub is saturating_sub.
func (a I64F64) SatSub(b I64F64) I64F64 { return I64F64{sSatSub(a.r, b.r)} }

// SatMul is saturating_mul (floor).
func (a I64F64) SatMul(b I64F64) I64F64 { return I64F64{sSatMul(a.r, b.r, 64)} }

// CheckedDiv is checked_div (truncation toward zero).
func (a I64F64) CheckedDiv(b I64F64) (I64F64, bool) {
	q, ok := sCheckedDiv(a.r, b.r, 64)
	return I64F64{q}, ok
}

// SafeDiv returns zero on division by zero and on overflow.
func (a I64F64) SafeDiv(b I64F64) I64F64 { q, _ := a.CheckedDiv(b); return q }

// DivI32F32 is a.SafeDiv(b).I32F32(), bit for bit, for every a and b. The
// common case of normalizing a share (0 <= a <= b, b > 0: the quotient is
// at most 1) takes a short path of one or two 64-bit divisions instead of
// the general 256-by-128-bit one: a subnet's stake normalization makes one
// call per uid.
func (a I64F64) DivI32F32(b I64F64) I32F32 {
	if !a.r.neg() && !b.r.neg() && !b.r.isZero() && a.r.cmp(b.r) <= 0 {
		return I32F32(shareFrac32(a.r, b.r))
	}
	return a.SafeDiv(b).I32F32()
}

// shareFrac32 returns floor(a·2^32 / b) for 0 <= a <= b < 2^127, b > 0
// (at most 2^32). Truncating the I64F64 quotient floor(a·2^64 / b) to
// I32F32 keeps floor(a·2^32 / b), so this is what SafeDiv then I32F32
// give.
func shareFrac32(a, b u128) uint64 {
	// The numerator a·2^32 as three words n2:n1:n0 (at most 159 bits).
	n0, n1, n2 := a.lo<<32, a.hi<<32|a.lo>>32, a.hi>>32
	if b.hi == 0 {
		// a <= b < 2^64, so n2 == 0 and n1 = a>>32 < b: one division.
		q, _ := bits.Div64(n1, n0, b.lo)
		return q
	}
	// Knuth's estimate from the top words, with the divisor normalized so
	// that its top bit is set: qhat >= q, and qhat - q <= 2. The quotient
	// is at most 2^32, so the top numerator word stays below the divisor's.
	s := uint(bits.LeadingZeros64(b.hi))
	bt, u2, u1 := b.hi, n2, n1
	if s > 0 {
		bt = b.hi<<s | b.lo>>(64-s)
		u2 = n2<<s | n1>>(64-s)
		u1 = n1<<s | n0>>(64-s)
	}
	q, _ := bits.Div64(u2, u1, bt)
	// Correct down while q·b > a·2^32 (q·b as three words p2:p1:p0).
	for {
		h0, p0 := bits.Mul64(q, b.lo)
		h1, l1 := bits.Mul64(q, b.hi)
		p1, c := bits.Add64(l1, h0, 0)
		p2 := h1 + c
		if p2 < n2 || p2 == n2 && (p1 < n1 || p1 == n1 && p0 <= n0) {
			return q
		}
		q--
	}
}

// IsZero reports whether a == 0.
func (a I64F64) IsZero() bool { return a.r.isZero() }

// Cmp compares a and b: -1, 0 or +1.
func (a I64F64) Cmp(b I64F64) int { return a.r.scmp(b.r) }

// FloorU64 is saturating_to_num::<u64>().
func (a I64F64) FloorU64() uint64 { return sFloorU64(a.r, 64) }

// RawString returns the raw value (value * 2^64) in decimal.
func (a I64F64) RawString() string { return a.r.decimal(true) }

// String returns the exact decimal value, such as "-0.25" (at most 64
// digits after the point).
func (a I64F64) String() string {
	mag, neg := a.r.abs()
	s := u128{lo: mag.hi}.decimal(false)
	if f := fracDigits(mag.lo); f != "" {
		s += "." + f
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ---- I96F32 ----

// I96F32FromU64 is saturating_from_num(u64); it always fits.
func I96F32FromU64(v uint64) I96F32 { return I96F32{sFromU64(v, 32)} }

// I96F32FromI32F32 converts exactly (same fraction bits, sign-extended).
func I96F32FromI32F32(a I32F32) I96F32 {
	return I96F32{u128{hi: uint64(int64(a) >> 63), lo: uint64(a)}}
}

// SatMul is saturating_mul (floor).
func (a I96F32) SatMul(b I96F32) I96F32 { return I96F32{sSatMul(a.r, b.r, 32)} }

// SatAdd is saturating_add.
func (a I96F32) SatAdd(b I96F32) I96F32 { return I96F32{sSatAdd(a.r, b.r)} }

// CheckedDiv is checked_div (truncation toward zero).
func (a I96F32) CheckedDiv(b I96F32) (I96F32, bool) {
	q, ok := sCheckedDiv(a.r, b.r, 32)
	return I96F32{q}, ok
}

// FloorU64 is saturating_to_num::<u64>().
func (a I96F32) FloorU64() uint64 { return sFloorU64(a.r, 32) }

// RawString returns the raw value (value * 2^32) in decimal.
func (a I96F32) RawString() string { return a.r.decimal(true) }

// ---- unsigned helpers ----

func uSatMul(a, b u128, frac uint) u128 {
	q, ok := mul128(a, b).shr(frac).fits128()
	if !ok {
		return u128Max
	}
	return q
}

func uCheckedDiv(a, b u128, frac uint) (u128, bool) {
	if b.isZero() {
		return u128{}, false
	}
	// fits128 returns the quotient's low 128 bits even when it does not fit;
	// report zero instead, so that SafeDiv (checked_div().unwrap_or_default())
	// gives 0 on overflow.
	q, ok := div256(shl128(a, frac), b).fits128()
	if !ok {
		return u128{}, false
	}
	return q, true
}

func uFromU64(v uint64, frac uint) u128 {
	if frac == 64 {
		return u128{hi: v}
	}
	return u128{hi: v >> (64 - frac), lo: v << frac}
}

func uFloorU64(a u128, frac uint) uint64 {
	q := shl128(a, 0).shr(frac)
	if q[1] != 0 {
		return math.MaxUint64
	}
	return q[0]
}

// ---- U96F32 ----

// U96F32FromU64 is saturating_from_num(u64); it always fits.
func U96F32FromU64(v uint64) U96F32 { return U96F32{uFromU64(v, 32)} }

// SatMul is saturating_mul (floor).
func (a U96F32) SatMul(b U96F32) U96F32 { return U96F32{uSatMul(a.r, b.r, 32)} }

// SatAdd is saturating_add.
func (a U96F32) SatAdd(b U96F32) U96F32 {
	s, c := a.r.add(b.r)
	if c != 0 {
		return U96F32{u128Max}
	}
	return U96F32{s}
}

// SatSub is saturating_sub (clamps at zero).
func (a U96F32) SatSub(b U96F32) U96F32 {
	s, br := a.r.sub(b.r)
	if br != 0 {
		return U96F32{}
	}
	return U96F32{s}
}

// CheckedDiv is checked_div (truncation).
func (a U96F32) CheckedDiv(b U96F32) (U96F32, bool) {
	q, ok := uCheckedDiv(a.r, b.r, 32)
	return U96F32{q}, ok
}

// SafeDiv returns zero on division by zero and on overflow.
func (a U96F32) SafeDiv(b U96F32) U96F32 { q, _ := a.CheckedDiv(b); return q }

// FloorU64 is saturating_to_num::<u64>().
func (a U96F32) FloorU64() uint64 { return uFloorU64(a.r, 32) }

// RawString returns the raw value (value * 2^32) in decimal.
func (a U96F32) RawString() string { return a.r.decimal(false) }

// ---- U64F64 ----

// U64F64FromU64 is saturating_from_num(u64); it always fits.
func U64F64FromU64(v uint64) U64F64 { return U64F64{uFromU64(v, 64)} }

// SatMul is saturating_mul (floor).
func (a U64F64) SatMul(b U64F64) U64F64 { return U64F64{uSatMul(a.r, b.r, 64)} }

// SatAdd is saturating_add.
func (a U64F64) SatAdd(b U64F64) U64F64 {
	s, c := a.r.add(b.r)
	if c != 0 {
		return U64F64{u128Max}
	}
	return U64F64{s}
}

// SatSub is saturating_sub (clamps at zero).
func (a U64F64) SatSub(b U64F64) U64F64 {
	s, br := a.r.sub(b.r)
	if br != 0 {
		return U64F64{}
	}
	return U64F64{s}
}

// CheckedDiv is checked_div (truncation).
func (a U64F64) CheckedDiv(b U64F64) (U64F64, bool) {
	q, ok := uCheckedDiv(a.r, b.r, 64)
	return U64F64{q}, ok
}

// SafeDiv returns zero on division by zero and on overflow.
func (a U64F64) SafeDiv(b U64F64) U64F64 { q, _ := a.CheckedDiv(b); return q }

// FloorU64 is saturating_to_num::<u64>().
func (a U64F64) FloorU64() uint64 { return uFloorU64(a.r, 64) }

// RawString returns the raw value (value * 2^64) in decimal.
func (a U64F64) RawString() string { return a.r.decimal(false) }
