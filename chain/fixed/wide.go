package fixed

import "math/bits"

// This file holds the 128- and 256-bit integer arithmetic under the wide
// fixed-point types. Values are little-endian words; signed values are two's
// complement. Everything is built on math/bits so that it compiles to plain
// multiply, add-with-carry and divide instructions and never allocates.

// u128 is an unsigned 128-bit integer; as a signed value it is two's complement.
type u128 struct{ hi, lo uint64 }

var (
	u128Zero   = u128{}
	i128Max    = u128{hi: 1<<63 - 1, lo: ^uint64(0)}
	i128Min    = u128{hi: 1 << 63}
	u128Max    = u128{hi: ^uint64(0), lo: ^uint64(0)}
	i128MinMag = u128{hi: 1 << 63} // |MIN| = 2^127, representable unsigned
)

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }
func (a u128) neg() bool    { return int64(a.hi) < 0 }

func (a u128) add(b u128) (u128, uint64) {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, c := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}, c
}

func (a u128) sub(b u128) (u128, uint64) {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, br := bits.Sub64(a.hi, b.hi, br)
	return u128{hi, lo}, br
}

// negate returns the two's complement of a.
func (a u128) negate() u128 {
	r, _ := u128Zero.sub(a)
	return r
}

// abs returns the magnitude of a signed value and whether it was negative.
// The magnitude of MIN is 2^127, which fits the unsigned result.
func (a u128) abs() (u128, bool) {
	if a.neg() {
		return a.negate(), true
	}
	return a, false
}

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// scmp compares a and b as signed values.
func (a u128) scmp(b u128) int {
	if an, bn := a.neg(), b.neg(); an != bn {
		if an {
			return -1
		}
		return 1
	}
	return a.cmp(b)
}

// u256 is an unsigned 256-bit integer, least significant word first.
type u256 [4]uint64

// mul128 returns the full 256-bit product of two unsigned 128-bit values.
func mul128(a, b u128) u256 {
	var r u256
	h0, l0 := bits.Mul64(a.lo, b.lo)
	h1, l1 := bits.Mul64(a.lo, b.hi)
	h2, l2 := bits.Mul64(a.hi, b.lo)
	h3, l3 := bits.Mul64(a.hi, b.hi)
	r[0] = l0
	var c uint64
	r[1], c = bits.Add64(h0, l1, 0)
	r[2], c = bits.Add64(h1, l3, c)
	r[3], _ = bits.Add64(h3, 0, c)
	r[1], c = bits.Add64(r[1], l2, 0)
	r[2], c = bits.Add64(r[2], h2, c)
	r[3], _ = bits.Add64(r[3], 0, c)
	return r
}

// shr shifts x right by s bits (0 <= s < 128).
func (x u256) shr(s uint) u256 {
	for s >= 64 {
		x = u256{x[1], x[2], x[3], 0}
		s -= 64
	}
	if s == 0 {
		return x
	}
	return u256{
		x[0]>>s | x[1]<<(64-s),
		x[1]>>s | x[2]<<(64-s),
		x[2]>>s | x[3]<<(64-s),
		x[3] >> s,
	}
}

// lowBitsNonZero reports whether any of the low s bits of x are set (s <= 128).
func (x u256) lowBitsNonZero(s uint) bool {
	switch {
	case s == 0:
		return false
	case s < 64:
		return x[0]<<(64-s) != 0
	case s == 64:
		return x[0] != 0
	default:
		return x[0] != 0 || x[1]<<(128-s) != 0
	}
}

// fits128 reports whether x < 2^128 and returns its low 128 bits.
func (x u256) fits128() (u128, bool) {
	return u128{hi: x[1], lo: x[0]}, x[2] == 0 && x[3] == 0
}

// shl128 returns a << s as a 256-bit value (0 <= s <= 64).
func shl128(a u128, s uint) u256 {
	if s == 0 {
		return u256{a.lo, a.hi, 0, 0}
	}
	if s == 64 {
		return u256{0, a.lo, a.hi, 0}
	}
	return u256{a.lo << s, a.hi<<s | a.lo>>(64-s), a.hi >> (64 - s), 0}
}

// div256 returns floor(n / d) for d != 0. The quotient may need all 256 bits.
// It is Knuth's algorithm D with 64-bit digits, specialised to divisors of one
// or two words.
func div256(n u256, d u128) u256 {
	if d.hi == 0 {
		var q u256
		var r uint64
		for i := 3; i >= 0; i-- {
			q[i], r = bits.Div64(r, n[i], d.lo)
		}
		return q
	}
	// Normalise so the divisor's top bit is set.
	s := uint(bits.LeadingZeros64(d.hi))
	v1, v0 := d.hi, d.lo
	if s > 0 {
		v1 = d.hi<<s | d.lo>>(64-s)
		v0 = d.lo << s
	}
	var u [5]uint64
	if s == 0 {
		u = [5]uint64{n[0], n[1], n[2], n[3], 0}
	} else {
		u[0] = n[0] << s
		u[1] = n[1]<<s | n[0]>>(64-s)
		u[2] = n[2]<<s | n[1]>>(64-s)
		u[3] = n[3]<<s | n[2]>>(64-s)
		u[4] = n[3] >> (64 - s)
	}
	var q u256
	for j := 2; j >= 0; j-- {
		// Estimate qhat from the top two words of the current remainder.
		var qhat, rhat uint64
		overflowR := false
		if u[j+2] >= v1 {
			qhat = ^uint64(0)
			// rhat = u[j+2]*B + u[j+1] - qhat*v1 = u[j+1] + v1 (when u[j+2] == v1).
			var c uint64
			rhat, c = bits.Add64(u[j+1], v1, 0)
			overflowR = c != 0
		} else {
			qhat, rhat = bits.Div64(u[j+2], u[j+1], v1)
		}
		for !overflowR {
			ph, pl := bits.Mul64(qhat, v0)
			if ph < rhat || (ph == rhat && pl <= u[j]) {
				break
			}
			qhat--
			var c uint64
			rhat, c = bits.Add64(rhat, v1, 0)
			overflowR = c != 0
		}
		// Multiply and subtract qhat*v from u[j..j+2].
		ph0, pl0 := bits.Mul64(qhat, v0)
		ph1, pl1 := bits.Mul64(qhat, v1)
		p1, c := bits.Add64(pl1, ph0, 0)
		p2 := ph1 + c
		var br uint64
		u[j], br = bits.Sub64(u[j], pl0, 0)
		u[j+1], br = bits.Sub64(u[j+1], p1, br)
		u[j+2], br = bits.Sub64(u[j+2], p2, br)
		if br != 0 {
			// qhat was one too large: add the divisor back.
			qhat--
			u[j], c = bits.Add64(u[j], v0, 0)
			u[j+1], c = bits.Add64(u[j+1], v1, c)
			u[j+2] += c
		}
		q[j] = qhat
	}
	return q
}

// mulShr returns floor-toward-minus-infinity((a*b) >> frac) for signed 128-bit
// a and b, and whether the result fits a signed 128-bit value.
func mulShrSigned(a, b u128, frac uint) (u128, bool) {
	ma, na := a.abs()
	mb, nb := b.abs()
	p := mul128(ma, mb)
	q := p.shr(frac)
	mag, ok := q.fits128()
	if !ok {
		return u128{}, false
	}
	if na != nb {
		// floor of a negative value: round the magnitude up when bits were dropped.
		if p.lowBitsNonZero(frac) {
			var c uint64
			mag, c = mag.add(u128{lo: 1})
			if c != 0 {
				return u128{}, false
			}
		}
		if mag.cmp(i128MinMag) > 0 {
			return u128{}, false
		}
		return mag.negate(), true
	}
	if mag.neg() {
		return u128{}, false
	}
	return mag, true
}

// divShlSigned returns trunc((a << frac) / b) for signed 128-bit a and b != 0,
// and whether the quotient fits a signed 128-bit value.
func divShlSigned(a, b u128, frac uint) (u128, bool) {
	ma, na := a.abs()
	mb, nb := b.abs()
	q := div256(shl128(ma, frac), mb)
	mag, ok := q.fits128()
	if !ok {
		return u128{}, false
	}
	if na != nb {
		if mag.cmp(i128MinMag) > 0 {
			return u128{}, false
		}
		return mag.negate(), true
	}
	if mag.neg() {
		return u128{}, false
	}
	return mag, true
}
