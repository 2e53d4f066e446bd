package fixed

// The rest of the substrate-fixed operation set on the 128-bit types, so that
// every type has the same checked and saturating add, sub, mul and div (the
// epoch itself needs only some of them; coinbase code needs others).

// ---- signed helpers ----

func sCheckedAdd(a, b u128) (u128, bool) {
	s, _ := a.add(b)
	return s, a.neg() != b.neg() || s.neg() == a.neg()
}

func sCheckedSub(a, b u128) (u128, bool) {
	s, _ := a.sub(b)
	return s, a.neg() == b.neg() || s.neg() == a.neg()
}

// sSatDiv is saturating_div: on overflow Min if the signs differ, else Max;
// it panics on division by zero, as the Rust code does.
func sSatDiv(a, b u128, frac uint) u128 {
	if b.isZero() {
		panic("fixed: saturating division by zero")
	}
	if q, ok := divShlSigned(a, b, frac); ok {
		return q
	}
	if a.neg() != b.neg() {
		return i128Min
	}
	return i128Max
}

// ---- unsigned helpers ----

func uCheckedAdd(a, b u128) (u128, bool) {
	s, c := a.add(b)
	return s, c == 0
}

func uCheckedSub(a, b u128) (u128, bool) {
	s, br := a.sub(b)
	return s, br == 0
}

func uCheckedMul(a, b u128, frac uint) (u128, bool) {
	return mul128(a, b).shr(frac).fits128()
}

// uSatDiv is saturating_div: Max on overflow; it panics on division by zero.
func uSatDiv(a, b u128, frac uint) u128 {
	if b.isZero() {
		panic("fixed: saturating division by zero")
	}
	if q, ok := uCheckedDiv(a, b, frac); ok {
		return q
	}
	return u128Max
}

// ---- I32F32 ----

// CheckedSub is checked_sub.
func (a I32F32) CheckedSub(b I32F32) (I32F32, bool) {
	s := a - b
	if (a >= 0) != (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// ---- I64F64 ----

// Sub is the plain (wrapping) subtraction.
func (a I64F64) Sub(b I64F64) I64F64 { s, _ := a.r.sub(b.r); return I64F64{s} }

// CheckedAdd is checked_add.
func (a I64F64) CheckedAdd(b I64F64) (I64F64, bool) {
	s, ok := sCheckedAdd(a.r, b.r)
	return ok64(s, ok)
}

// CheckedSub is checked_sub.
func (a I64F64) CheckedSub(b I64F64) (I64F64, bool) {
	s, ok := sCheckedSub(a.r, b.r)
	return ok64(s, ok)
}

// CheckedMul is checked_mul (floor), false on overflow.
func (a I64F64) CheckedMul(b I64F64) (I64F64, bool) {
	s, ok := mulShrSigned(a.r, b.r, 64)
	return ok64(s, ok)
}

// SatDiv is saturating_div; it panics when b is zero.
func (a I64F64) SatDiv(b I64F64) I64F64 { return I64F64{sSatDiv(a.r, b.r, 64)} }

func ok64(s u128, ok bool) (I64F64, bool) {
	if !ok {
		return I64F64{}, false
	}
	return I64F64{s}, true
}

// ---- I96F32 ----

// Add is the plain (wrapping) addition that Rust's Iterator::sum performs.
func (a I96F32) Add(b I96F32) I96F32 { s, _ := a.r.add(b.r); return I96F32{s} }

// Sub is the plain (wrapping) subtraction.
func (a I96F32) Sub(b I96F32) I96F32 { s, _ := a.r.sub(b.r); return I96F32{s} }

// SatSub is saturating_sub.
func (a I96F32) SatSub(b I96F32) I96F32 { return I96F32{sSatSub(a.r, b.r)} }

// CheckedAdd is checked_add.
func (a I96F32) CheckedAdd(b I96F32) (I96F32, bool) {
	s, ok := sCheckedAdd(a.r, b.r)
	return ok96(s, ok)
}

// CheckedSub is checked_sub.
func (a I96F32) CheckedSub(b I96F32) (I96F32, bool) {
	s, ok := sCheckedSub(a.r, b.r)
	return ok96(s, ok)
}

// CheckedMul is checked_mul (floor), false on overflow.
func (a I96F32) CheckedMul(b I96F32) (I96F32, bool) {
	s, ok := mulShrSigned(a.r, b.r, 32)
	return ok96(s, ok)
}

// SafeDiv returns zero on division by zero and on overflow.
func (a I96F32) SafeDiv(b I96F32) I96F32 { q, _ := a.CheckedDiv(b); return q }

// SatDiv is saturating_div; it panics when b is zero.
func (a I96F32) SatDiv(b I96F32) I96F32 { return I96F32{sSatDiv(a.r, b.r, 32)} }

// IsZero reports whether a == 0.
func (a I96F32) IsZero() bool { return a.r.isZero() }

// Cmp compares a and b: -1, 0 or +1.
func (a I96F32) Cmp(b I96F32) int { return a.r.scmp(b.r) }

func ok96(s u128, ok bool) (I96F32, bool) {
	if !ok {
		return I96F32{}, false
	}
	return I96F32{s}, true
}

// ---- U96F32 ----

// CheckedAdd is checked_add.
func (a U96F32) CheckedAdd(b U96F32) (U96F32, bool) {
	s, ok := uCheckedAdd(a.r, b.r)
	if !ok {
		return U96F32{}, false
	}
	return U96F32{s}, true
}

// CheckedSub is checked_sub (false below zero).
func (a U96F32) CheckedSub(b U96F32) (U96F32, bool) {
	s, ok := uCheckedSub(a.r, b.r)
	if !ok {
		return U96F32{}, false
	}
	return U96F32{s}, true
}

// CheckedMul is checked_mul (floor), false on overflow.
func (a U96F32) CheckedMul(b U96F32) (U96F32, bool) {
	s, ok := uCheckedMul(a.r, b.r, 32)
	if !ok {
		return U96F32{}, false
	}
	return U96F32{s}, true
}

// SatDiv is saturating_div; it panics when b is zero.
func (a U96F32) SatDiv(b U96F32) U96F32 { return U96F32{uSatDiv(a.r, b.r, 32)} }

// IsZero reports whether a == 0.
func (a U96F32) IsZero() bool { return a.r.isZero() }

// Cmp compares a and b: -1, 0 or +1.
func (a U96F32) Cmp(b U96F32) int { return a.r.cmp(b.r) }

// ---- U64F64 ----

// CheckedAdd is checked_add.
func (a U64F64) CheckedAdd(b U64F64) (U64F64, bool) {
	s, ok := uCheckedAdd(a.r, b.r)
	if !ok {
		return U64F64{}, false
	}
	return U64F64{s}, true
}

// CheckedSub is checked_sub (false below zero).
func (a U64F64) CheckedSub(b U64F64) (U64F64, bool) {
	s, ok := uCheckedSub(a.r, b.r)
	if !ok {
		return U64F64{}, false
	}
	return U64F64{s}, true
}

// CheckedMul is checked_mul (floor), false on overflow.
func (a U64F64) CheckedMul(b U64F64) (U64F64, bool) {
	s, ok := uCheckedMul(a.r, b.r, 64)
	if !ok {
		return U64F64{}, false
	}
	return U64F64{s}, true
}

// SatDiv is saturating_div; it panics when b is zero.
func (a U64F64) SatDiv(b U64F64) U64F64 { return U64F64{uSatDiv(a.r, b.r, 64)} }

// IsZero reports whether a == 0.
func (a U64F64) IsZero() bool { return a.r.isZero() }

// Cmp compares a and b: -1, 0 or +1.
func (a U64F64) Cmp(b U64F64) int { return a.r.cmp(b.r) }
