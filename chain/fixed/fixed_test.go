package fixed

// Property, table, fuzz and benchmark tests for the substrate-fixed v0.6.0
// semantics implemented by this package.
//
// Every operation is compared against a reference written here on math/big.
// The reference works on the exact raw integers (value = raw / 2^frac) and
// spells every rounding rule out explicitly:
//
//   - multiply: floor(a*b / 2^frac) (toward minus infinity), then range check;
//   - divide:   trunc((a * 2^frac) / b) (toward zero), then range check;
//   - Sat*:     clamp the exact result to [Min, Max]; saturating_mul and
//     saturating_div pick Min when the operand signs differ, else Max;
//   - SafeDiv:  zero on a zero divisor and on overflow;
//   - conversions: floor, then clamp.
//
// None of the reference code calls the package's arithmetic, so a mistake in
// wide.go cannot hide in both.

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// Reference arithmetic on math/big.

var bigOne = big.NewInt(1)

// p2 returns 2^n.
func p2(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }

// floorDiv returns floor(a / b) for b != 0. It does not rely on big.Int.Rsh's
// rounding of negative values: the quotient is truncated, then corrected.
func floorDiv(a, b *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(a, b, new(big.Int))
	if r.Sign() != 0 && (r.Sign() < 0) != (b.Sign() < 0) {
		q.Sub(q, bigOne)
	}
	return q
}

// truncDiv returns a / b rounded toward zero (big.Int.Quo is truncated
// division, like Go's and Rust's integer division).
func truncDiv(a, b *big.Int) *big.Int { return new(big.Int).Quo(a, b) }

// fx describes a fixed-point type: its raw integer has `width` bits, `frac` of
// them fractional, two's complement when signed.
type fx struct {
	name   string
	width  uint
	frac   uint
	signed bool
}

var (
	fxI32F32 = fx{"I32F32", 64, 32, true}
	fxI64F64 = fx{"I64F64", 128, 64, true}
	fxI96F32 = fx{"I96F32", 128, 32, true}
	fxU64F64 = fx{"U64F64", 128, 64, false}
	fxU96F32 = fx{"U96F32", 128, 32, false}
	// plain integers, used to generate conversion inputs
	fxInt64  = fx{"int64", 64, 0, true}
	fxUint64 = fx{"uint64", 64, 0, false}
	fxU128   = fx{"u128", 128, 0, false}
	fxI128   = fx{"i128", 128, 0, true}
)

func (s fx) min() *big.Int {
	if s.signed {
		return new(big.Int).Neg(p2(s.width - 1))
	}
	return new(big.Int)
}

func (s fx) max() *big.Int {
	if s.signed {
		return new(big.Int).Sub(p2(s.width-1), bigOne)
	}
	return new(big.Int).Sub(p2(s.width), bigOne)
}

func (s fx) one() *big.Int { return p2(s.frac) }

func (s fx) fits(v *big.Int) bool { return v.Cmp(s.min()) >= 0 && v.Cmp(s.max()) <= 0 }

func (s fx) clamp(v *big.Int) *big.Int {
	if lo := s.min(); v.Cmp(lo) < 0 {
		return lo
	}
	if hi := s.max(); v.Cmp(hi) > 0 {
		return hi
	}
	return new(big.Int).Set(v)
}

// wrap reduces v modulo 2^width into the type's range (two's complement).
func (s fx) wrap(v *big.Int) *big.Int {
	m := new(big.Int).Mod(v, p2(s.width)) // Euclidean: 0 <= m < 2^width
	if s.signed && m.Cmp(p2(s.width-1)) >= 0 {
		m.Sub(m, p2(s.width))
	}
	return m
}

func (s fx) checked(v *big.Int) (*big.Int, bool) {
	if !s.fits(v) {
		return new(big.Int), false
	}
	return v, true
}

func (s fx) add(a, b *big.Int) (*big.Int, bool) { return s.checked(new(big.Int).Add(a, b)) }
func (s fx) sub(a, b *big.Int) (*big.Int, bool) { return s.checked(new(big.Int).Sub(a, b)) }
func (s fx) satAdd(a, b *big.Int) *big.Int      { return s.clamp(new(big.Int).Add(a, b)) }
func (s fx) satSub(a, b *big.Int) *big.Int      { return s.clamp(new(big.Int).Sub(a, b)) }
func (s fx) satNeg(a *big.Int) *big.Int         { return s.clamp(new(big.Int).Neg(a)) }

// mul is checked_mul: floor(a*b / 2^frac), None when it does not fit.
func (s fx) mul(a, b *big.Int) (*big.Int, bool) {
	return s.checked(floorDiv(new(big.Int).Mul(a, b), s.one()))
}

// satByOperandSigns is the overflow value of saturating_mul / saturating_div:
// Min when exactly one operand is negative, else Max.
func (s fx) satByOperandSigns(a, b *big.Int) *big.Int {
	if s.signed && (a.Sign() < 0) != (b.Sign() < 0) {
		return s.min()
	}
	return s.max()
}

func (s fx) satMul(a, b *big.Int) *big.Int {
	if q, ok := s.mul(a, b); ok {
		return q
	}
	return s.satByOperandSigns(a, b)
}

// div is checked_div: trunc(a*2^frac / b), None on a zero divisor or overflow.
func (s fx) div(a, b *big.Int) (*big.Int, bool) {
	if b.Sign() == 0 {
		return new(big.Int), false
	}
	return s.checked(truncDiv(new(big.Int).Lsh(a, s.frac), b))
}

func (s fx) safeDiv(a, b *big.Int) *big.Int {
	q, _ := s.div(a, b)
	return q
}

func (s fx) satDiv(a, b *big.Int) *big.Int {
	if b.Sign() == 0 {
		panic("reference: saturating division by zero")
	}
	if q, ok := s.div(a, b); ok {
		return q
	}
	return s.satByOperandSigns(a, b)
}

// floorTo is saturating_to_num / saturating_from_num into a type `to`: the
// value floored to to.frac fraction bits, then clamped.
func (s fx) floorTo(a *big.Int, to fx) *big.Int {
	var v *big.Int
	if to.frac >= s.frac {
		v = new(big.Int).Lsh(a, to.frac-s.frac)
	} else {
		v = floorDiv(a, p2(s.frac-to.frac))
	}
	return to.clamp(v)
}

// round is round(): nearest integer, ties away from zero. The package
// saturates where Rust would overflow (documented on I32F32.Round).
func (s fx) round(a *big.Int) *big.Int {
	m := new(big.Int).Abs(a)
	m.Add(m, p2(s.frac-1))
	m = floorDiv(m, s.one())
	m.Mul(m, s.one())
	if a.Sign() < 0 {
		m.Neg(m)
	}
	return s.clamp(m)
}

// ---------------------------------------------------------------------------
// Conversions between the package's words and big integers (written here,
// independently of rawBig / rawFromBig).

var mask64 = new(big.Int).SetUint64(math.MaxUint64)

func u128Big(a u128, signed bool) *big.Int {
	v := new(big.Int).SetUint64(a.hi)
	v.Lsh(v, 64)
	v.Or(v, new(big.Int).SetUint64(a.lo))
	if signed && a.hi>>63 == 1 {
		v.Sub(v, p2(128))
	}
	return v
}

// bigU128 returns v modulo 2^128 as two words.
func bigU128(v *big.Int) u128 {
	m := new(big.Int).Mod(v, p2(128))
	return u128{
		hi: new(big.Int).Rsh(m, 64).Uint64(),
		lo: new(big.Int).And(m, mask64).Uint64(),
	}
}

func u256Big(x u256) *big.Int {
	v := new(big.Int)
	for i := 3; i >= 0; i-- {
		v.Lsh(v, 64)
		v.Or(v, new(big.Int).SetUint64(x[i]))
	}
	return v
}

func bigU256(v *big.Int) u256 {
	m := new(big.Int).Mod(v, p2(256))
	var x u256
	for i := range 4 {
		x[i] = new(big.Int).And(m, mask64).Uint64()
		m.Rsh(m, 64)
	}
	return x
}

func boolBig(b bool) *big.Int {
	if b {
		return big.NewInt(1)
	}
	return big.NewInt(0)
}

// ---------------------------------------------------------------------------
// A deterministic generator biased toward edge values.

type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 0x7a0b0c5eed))} }

// bits returns a uniform integer in [0, 2^n).
func (g *gen) bits(n uint) *big.Int {
	v := new(big.Int)
	for i := uint(0); i < n; i += 64 {
		v.Lsh(v, 64)
		v.Or(v, new(big.Int).SetUint64(g.r.Uint64()))
	}
	return v.Rsh(v, (64-n%64)%64)
}

func (g *gen) randSign(v *big.Int) *big.Int {
	if g.r.IntN(2) == 0 {
		v.Neg(v)
	}
	return v
}

// val returns a raw value of type s (wrapped into its range). About half of
// the values come from edge-seeking patterns: 0, ±1 raw, Min, Max, ±(2^k + d)
// for every k (so values near 2^31, 2^32, 2^63, 2^64, 2^127), small integers
// as fixed values, a high or low word of zero, every leading-zero count
// (normalisation shift), pure fractions and values next to one.
func (g *gen) val(s fx) *big.Int {
	r := g.r
	w := int(s.width)
	var v *big.Int
	switch r.IntN(16) {
	case 0:
		switch r.IntN(9) {
		case 0:
			v = big.NewInt(0)
		case 1:
			v = big.NewInt(1)
		case 2:
			v = big.NewInt(-1)
		case 3:
			v = s.min()
		case 4:
			v = s.max()
		case 5:
			v = new(big.Int).Add(s.min(), bigOne)
		case 6:
			v = new(big.Int).Sub(s.max(), bigOne)
		case 7:
			v = g.randSign(s.one())
		default:
			v = g.randSign(big.NewInt(int64(r.IntN(4) + 2)))
		}
	case 1, 2: // ±(2^k + d)
		v = p2(uint(r.IntN(w)))
		v.Add(v, big.NewInt(int64(r.IntN(7)-3)))
		g.randSign(v)
	case 3: // small integers as fixed values
		v = big.NewInt(int64(r.IntN(601) - 300))
		v.Lsh(v, s.frac)
	case 4: // small integer plus a random fraction
		v = big.NewInt(int64(r.IntN(2001) - 1000))
		v.Lsh(v, s.frac)
		v.Add(v, g.bits(s.frac))
	case 5, 6: // random magnitude, random bit length
		v = g.randSign(g.bits(uint(r.IntN(w) + 1)))
	case 7: // high half zero
		v = g.randSign(g.bits(s.width / 2))
	case 8: // low half zero
		v = g.bits(s.width / 2)
		g.randSign(v.Lsh(v, s.width/2))
	case 9: // top set bit at k: every normalisation shift
		k := uint(r.IntN(w))
		v = p2(k)
		v.Or(v, g.bits(k))
		g.randSign(v)
	case 10: // pure fractions, or within a fraction of ±1
		v = g.bits(s.frac)
		if r.IntN(2) == 0 && s.frac > 0 {
			v.Add(v, new(big.Int).Sub(s.one(), p2(s.frac-1)))
		}
		g.randSign(v)
	case 11: // power of two with a random low pattern of ones or zeros
		k := uint(r.IntN(w))
		v = new(big.Int).Sub(p2(k), big.NewInt(int64(r.IntN(2))))
		if r.IntN(2) == 0 {
			v.Lsh(v, uint(r.IntN(w)))
		}
		g.randSign(v)
	default: // uniform over the whole bit pattern
		v = g.bits(s.width)
	}
	return s.wrap(v)
}

// pair returns two operands; some pairs are related (a ≈ q·b for a random
// q), so that quotients and products land near the range limits and inside
// it more often than independent draws would.
func (g *gen) pair(s fx) (*big.Int, *big.Int) {
	a, b := g.val(s), g.val(s)
	switch g.r.IntN(8) {
	case 0:
		q := g.val(s)
		a = floorDiv(new(big.Int).Mul(q, b), s.one())
		a.Add(a, big.NewInt(int64(g.r.IntN(5)-2)))
		a = s.wrap(a)
	case 1:
		a = new(big.Int).Set(b)
	case 2:
		a = s.wrap(new(big.Int).Neg(b))
	}
	return a, b
}

// ---------------------------------------------------------------------------
// Generic property runners.

type binOp struct {
	name    string
	impl    func(a, b *big.Int) (*big.Int, bool)
	ref     func(a, b *big.Int) (*big.Int, bool)
	nonzero bool // skip b == 0 (saturating_div panics)
}

type unOp struct {
	name string
	impl func(a *big.Int) (*big.Int, bool)
	ref  func(a *big.Int) (*big.Int, bool)
}

// always lifts a total function into the (value, ok) form.
func always(v *big.Int) (*big.Int, bool) { return v, true }

// opStats counts outcomes so that a test can prove both branches were hit.
type opStats struct{ fails, ok, notOK int }

func compareOp(t testing.TB, st *opStats, op string, in string, got *big.Int, gotOK bool, want *big.Int, wantOK bool) {
	t.Helper()
	if wantOK {
		st.ok++
	} else {
		st.notOK++
	}
	if gotOK == wantOK && (!wantOK || got.Cmp(want) == 0) {
		return
	}
	st.fails++
	if st.fails <= 5 {
		t.Errorf("%s(%s) = %v, %v; want %v, %v", op, in, got, gotOK, want, wantOK)
	}
}

func casesN(t testing.TB, n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

func runBin(t *testing.T, s fx, ops []binOp, n int, seed uint64) {
	t.Helper()
	g := newGen(seed)
	st := make([]opStats, len(ops))
	n = casesN(t, n)
	for range n {
		a, b := g.pair(s)
		in := fmt.Sprintf("%s raw %v, raw %v", s.name, a, b)
		for i, op := range ops {
			if op.nonzero && b.Sign() == 0 {
				continue
			}
			got, gotOK := op.impl(a, b)
			want, wantOK := op.ref(a, b)
			compareOp(t, &st[i], op.name, in, got, gotOK, want, wantOK)
		}
	}
	for i, op := range ops {
		if st[i].fails > 0 {
			t.Errorf("%s.%s: %d of %d cases differ from the reference", s.name, op.name, st[i].fails, st[i].ok+st[i].notOK)
		}
	}
	// The generator must reach both sides of every checked operation.
	for i, op := range ops {
		if st[i].notOK > 0 && st[i].notOK < n/200 {
			t.Errorf("%s.%s: only %d failing cases of %d; generator too narrow", s.name, op.name, st[i].notOK, n)
		}
		if st[i].ok < n/200 {
			t.Errorf("%s.%s: only %d successful cases of %d; generator too narrow", s.name, op.name, st[i].ok, n)
		}
	}
}

func runUn(t *testing.T, s fx, ops []unOp, n int, seed uint64) {
	t.Helper()
	g := newGen(seed)
	st := make([]opStats, len(ops))
	for range casesN(t, n) {
		a := g.val(s)
		in := fmt.Sprintf("%s raw %v", s.name, a)
		for i, op := range ops {
			got, gotOK := op.impl(a)
			want, wantOK := op.ref(a)
			compareOp(t, &st[i], op.name, in, got, gotOK, want, wantOK)
		}
	}
	for i, op := range ops {
		if st[i].fails > 0 {
			t.Errorf("%s.%s: %d cases differ from the reference", s.name, op.name, st[i].fails)
		}
	}
}

const propN = 40000

// ---------------------------------------------------------------------------
// I32F32

func i32(v *big.Int) I32F32 { return I32F32(v.Int64()) }
func b32(a I32F32) *big.Int { return big.NewInt(int64(a)) }

func TestI32F32Properties(t *testing.T) {
	t.Parallel()
	s := fxI32F32
	ops := []binOp{
		{name: "CheckedAdd", impl: func(a, b *big.Int) (*big.Int, bool) {
			r, ok := i32(a).CheckedAdd(i32(b))
			return b32(r), ok
		}, ref: s.add},
		{name: "SatAdd", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).SatAdd(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satAdd(a, b)) }},
		{name: "SatSub", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).SatSub(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satSub(a, b)) }},
		{name: "CheckedMul", impl: func(a, b *big.Int) (*big.Int, bool) {
			r, ok := i32(a).CheckedMul(i32(b))
			return b32(r), ok
		}, ref: s.mul},
		{name: "SatMul", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).SatMul(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satMul(a, b)) }},
		{name: "CheckedDiv", impl: func(a, b *big.Int) (*big.Int, bool) {
			r, ok := i32(a).CheckedDiv(i32(b))
			return b32(r), ok
		}, ref: s.div},
		{name: "SafeDiv", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).SafeDiv(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.safeDiv(a, b)) }},
		{name: "SatDiv", nonzero: true,
			impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).SatDiv(i32(b)))) },
			ref:  func(a, b *big.Int) (*big.Int, bool) { return always(s.satDiv(a, b)) }},
		{name: "Min", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).Min(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) {
				if a.Cmp(b) < 0 {
					return a, true
				}
				return b, true
			}},
		{name: "Max", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a).Max(i32(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) {
				if a.Cmp(b) > 0 {
					return a, true
				}
				return b, true
			}},
		{name: "wrapping +", impl: func(a, b *big.Int) (*big.Int, bool) { return always(b32(i32(a) + i32(b))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.wrap(new(big.Int).Add(a, b))) }},
	}
	runBin(t, s, ops, propN, 1)

	un := []unOp{
		{name: "SatNeg", impl: func(a *big.Int) (*big.Int, bool) { return always(b32(i32(a).SatNeg())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.satNeg(a)) }},
		{name: "Round", impl: func(a *big.Int) (*big.Int, bool) { return always(b32(i32(a).Round())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.round(a)) }},
		{name: "FloorU16", impl: func(a *big.Int) (*big.Int, bool) {
			return always(new(big.Int).SetUint64(uint64(i32(a).FloorU16())))
		}, ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fx{"u16", 16, 0, false})) }},
		{name: "FloorU64", impl: func(a *big.Int) (*big.Int, bool) {
			return always(new(big.Int).SetUint64(i32(a).FloorU64()))
		}, ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxUint64)) }},
		{name: "Raw", impl: func(a *big.Int) (*big.Int, bool) { return always(big.NewInt(i32(a).Raw())) },
			ref: always},
		{name: "I64F64FromI32F32", impl: func(a *big.Int) (*big.Int, bool) {
			return always(u128Big(I64F64FromI32F32(i32(a)).r, true))
		}, ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxI64F64)) }},
		{name: "I96F32FromI32F32", impl: func(a *big.Int) (*big.Int, bool) {
			return always(u128Big(I96F32FromI32F32(i32(a)).r, true))
		}, ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxI96F32)) }},
		{name: "Float64", impl: func(a *big.Int) (*big.Int, bool) {
			f := i32(a).Float64()
			return always(big.NewInt(int64(math.Float64bits(f))))
		}, ref: func(a *big.Int) (*big.Int, bool) {
			// nearest float64 (ties to even) of raw / 2^32
			f, _ := new(big.Float).SetMantExp(new(big.Float).SetInt(a), -32).Float64()
			return always(big.NewInt(int64(math.Float64bits(f))))
		}},
	}
	runUn(t, s, un, propN, 2)

	// Integer constructors: saturating_from_num.
	runUn(t, fxInt64, []unOp{{name: "I32F32FromInt",
		impl: func(v *big.Int) (*big.Int, bool) { return always(b32(I32F32FromInt(v.Int64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxInt64.floorTo(v, s)) }}}, propN/4, 3)
	runUn(t, fxUint64, []unOp{{name: "I32F32FromU64",
		impl: func(v *big.Int) (*big.Int, bool) { return always(b32(I32F32FromU64(v.Uint64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxUint64.floorTo(v, s)) }}}, propN/4, 4)
}

func TestI32F32String(t *testing.T) {
	g := newGen(5)
	for range casesN(t, 20000) {
		a := i32(g.val(fxI32F32))
		str := a.String()
		f, err := strconv.ParseFloat(str, 64)
		if err != nil || f != a.Float64() || strings.ContainsAny(str, "eE") {
			t.Fatalf("I32F32(raw %d).String() = %q, want a plain decimal of %v", int64(a), str, a.Float64())
		}
	}
	for _, c := range []struct {
		raw  int64
		want string
	}{{0, "0"}, {1 << 32, "1"}, {-1 << 31, "-0.5"}, {3 << 30, "0.75"}, {-7 << 32, "-7"}} {
		if got := I32F32(c.raw).String(); got != c.want {
			t.Errorf("I32F32(raw %d).String() = %q, want %q", c.raw, got, c.want)
		}
	}
}

func TestI32F32SatDivByZeroPanics(t *testing.T) {
	for _, a := range []I32F32{0, 1, -1, I32F32One, I32F32Max, I32F32Min} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("I32F32(raw %d).SatDiv(0) did not panic", int64(a))
				}
			}()
			_ = a.SatDiv(0)
		}()
		if q, ok := a.CheckedDiv(0); ok || q != 0 {
			t.Errorf("CheckedDiv(raw %d, 0) = %d, %v; want 0, false", int64(a), int64(q), ok)
		}
		if q := a.SafeDiv(0); q != 0 {
			t.Errorf("SafeDiv(raw %d, 0) = %d; want 0", int64(a), int64(q))
		}
	}
}

func TestI32F32Constants(t *testing.T) {
	if I32F32Zero != 0 || I32F32One != 1<<32 || I32F32Half != 1<<31 ||
		I32F32Max != math.MaxInt64 || I32F32Min != math.MinInt64 {
		t.Fatal("I32F32 constants changed")
	}
}

// ---------------------------------------------------------------------------
// The 128-bit types.

func TestI64F64Properties(t *testing.T) {
	t.Parallel()
	s := fxI64F64
	mk := func(v *big.Int) I64F64 { return I64F64{bigU128(v)} }
	bg := func(a I64F64) *big.Int { return u128Big(a.r, true) }
	ops := []binOp{
		{name: "Add", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).Add(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.wrap(new(big.Int).Add(a, b))) }},
		{name: "SatAdd", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SatAdd(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satAdd(a, b)) }},
		{name: "SatSub", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SatSub(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satSub(a, b)) }},
		{name: "SatMul", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SatMul(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satMul(a, b)) }},
		{name: "CheckedDiv", impl: func(a, b *big.Int) (*big.Int, bool) {
			q, ok := mk(a).CheckedDiv(mk(b))
			return bg(q), ok
		}, ref: s.div},
		{name: "SafeDiv", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SafeDiv(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.safeDiv(a, b)) }},
		{name: "Cmp", impl: func(a, b *big.Int) (*big.Int, bool) { return always(big.NewInt(int64(mk(a).Cmp(mk(b))))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(big.NewInt(int64(a.Cmp(b)))) }},
	}
	runBin(t, s, ops, propN, 11)

	un := []unOp{
		{name: "IsZero", impl: func(a *big.Int) (*big.Int, bool) { return always(boolBig(mk(a).IsZero())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(boolBig(a.Sign() == 0)) }},
		{name: "FloorU64", impl: func(a *big.Int) (*big.Int, bool) { return always(new(big.Int).SetUint64(mk(a).FloorU64())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxUint64)) }},
		{name: "I32F32", impl: func(a *big.Int) (*big.Int, bool) { return always(b32(mk(a).I32F32())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxI32F32)) }},
		{name: "RawString", impl: func(a *big.Int) (*big.Int, bool) {
			v, ok := new(big.Int).SetString(mk(a).RawString(), 10)
			return v, ok
		}, ref: always},
		{name: "ParseI64F64Raw", impl: func(a *big.Int) (*big.Int, bool) {
			v, err := ParseI64F64Raw(a.String())
			return bg(v), err == nil
		}, ref: always},
		{name: "String", impl: func(a *big.Int) (*big.Int, bool) {
			f, err := strconv.ParseFloat(mk(a).String(), 64)
			return big.NewInt(int64(math.Float64bits(f))), err == nil
		}, ref: func(a *big.Int) (*big.Int, bool) {
			f, _ := new(big.Float).SetMantExp(new(big.Float).SetInt(a), -64).Float64()
			return always(big.NewInt(int64(math.Float64bits(f))))
		}},
	}
	runUn(t, s, un, propN, 12)

	runUn(t, fxUint64, []unOp{{name: "I64F64FromU64",
		impl: func(v *big.Int) (*big.Int, bool) { return always(bg(I64F64FromU64(v.Uint64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxUint64.floorTo(v, s)) }}}, propN/4, 13)
	runUn(t, fxU96F32, []unOp{{name: "I64F64FromU96F32",
		impl: func(v *big.Int) (*big.Int, bool) { return always(bg(I64F64FromU96F32(U96F32{bigU128(v)}))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxU96F32.floorTo(v, s)) }}}, propN/2, 14)
}

func TestParseI64F64RawErrors(t *testing.T) {
	for _, in := range []string{"", "abc", "1.5", "0x10", " 1",
		"170141183460469231731687303715884105728",  // 2^127
		"-170141183460469231731687303715884105729", // -2^127 - 1
		"340282366920938463463374607431768211455"} {
		if _, err := ParseI64F64Raw(in); err == nil {
			t.Errorf("ParseI64F64Raw(%q) succeeded; want an error", in)
		}
	}
	for _, in := range []string{"0", "-1", "18446744073709551616",
		"170141183460469231731687303715884105727", "-170141183460469231731687303715884105728"} {
		v, err := ParseI64F64Raw(in)
		if err != nil || v.RawString() != in {
			t.Errorf("ParseI64F64Raw(%q) = %s, %v", in, v.RawString(), err)
		}
	}
}

func TestI96F32Properties(t *testing.T) {
	t.Parallel()
	s := fxI96F32
	mk := func(v *big.Int) I96F32 { return I96F32{bigU128(v)} }
	bg := func(a I96F32) *big.Int { return u128Big(a.r, true) }
	ops := []binOp{
		{name: "SatAdd", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SatAdd(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satAdd(a, b)) }},
		{name: "SatMul", impl: func(a, b *big.Int) (*big.Int, bool) { return always(bg(mk(a).SatMul(mk(b)))) },
			ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satMul(a, b)) }},
		{name: "CheckedDiv", impl: func(a, b *big.Int) (*big.Int, bool) {
			q, ok := mk(a).CheckedDiv(mk(b))
			return bg(q), ok
		}, ref: s.div},
	}
	runBin(t, s, ops, propN, 21)
	un := []unOp{
		{name: "FloorU64", impl: func(a *big.Int) (*big.Int, bool) { return always(new(big.Int).SetUint64(mk(a).FloorU64())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxUint64)) }},
		{name: "RawString", impl: func(a *big.Int) (*big.Int, bool) {
			v, ok := new(big.Int).SetString(mk(a).RawString(), 10)
			return v, ok
		}, ref: always},
	}
	runUn(t, s, un, propN, 22)
	runUn(t, fxUint64, []unOp{{name: "I96F32FromU64",
		impl: func(v *big.Int) (*big.Int, bool) { return always(bg(I96F32FromU64(v.Uint64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxUint64.floorTo(v, s)) }}}, propN/4, 23)
}

// unsignedOps builds the shared operation list of U96F32 and U64F64.
func unsignedOps[T any](s fx, mk func(*big.Int) T, bg func(T) *big.Int,
	satMul, satAdd, satSub, safeDiv func(T, T) T, checkedDiv func(T, T) (T, bool)) []binOp {
	lift := func(f func(T, T) T) func(a, b *big.Int) (*big.Int, bool) {
		return func(a, b *big.Int) (*big.Int, bool) { return always(bg(f(mk(a), mk(b)))) }
	}
	return []binOp{
		{name: "SatMul", impl: lift(satMul), ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satMul(a, b)) }},
		{name: "SatAdd", impl: lift(satAdd), ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satAdd(a, b)) }},
		{name: "SatSub", impl: lift(satSub), ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.satSub(a, b)) }},
		{name: "SafeDiv", impl: lift(safeDiv), ref: func(a, b *big.Int) (*big.Int, bool) { return always(s.safeDiv(a, b)) }},
		{name: "CheckedDiv", impl: func(a, b *big.Int) (*big.Int, bool) {
			q, ok := checkedDiv(mk(a), mk(b))
			return bg(q), ok
		}, ref: s.div},
	}
}

// fullOps is the operation set every type has: checked and saturating add,
// sub, mul and div, SafeDiv, and the wrapping add and sub where the type has
// them (nil otherwise), each against its math/big definition.
func fullOps[T any](s fx, mk func(*big.Int) T, bg func(T) *big.Int,
	checkedAdd, checkedSub, checkedMul, checkedDiv func(T, T) (T, bool),
	satAdd, satSub, satMul, safeDiv, satDiv, add, sub func(T, T) T) []binOp {
	lift := func(f func(T, T) T) func(a, b *big.Int) (*big.Int, bool) {
		return func(a, b *big.Int) (*big.Int, bool) { return always(bg(f(mk(a), mk(b)))) }
	}
	liftOK := func(f func(T, T) (T, bool)) func(a, b *big.Int) (*big.Int, bool) {
		return func(a, b *big.Int) (*big.Int, bool) {
			r, ok := f(mk(a), mk(b))
			if !ok {
				if z := bg(r); z.Sign() != 0 {
					return z, false // a failed checked op must return the zero value
				}
				return new(big.Int), false
			}
			return bg(r), true
		}
	}
	total := func(f func(a, b *big.Int) *big.Int) func(a, b *big.Int) (*big.Int, bool) {
		return func(a, b *big.Int) (*big.Int, bool) { return always(f(a, b)) }
	}
	ops := []binOp{
		{name: "CheckedAdd", impl: liftOK(checkedAdd), ref: s.add},
		{name: "CheckedSub", impl: liftOK(checkedSub), ref: s.sub},
		{name: "CheckedMul", impl: liftOK(checkedMul), ref: s.mul},
		{name: "CheckedDiv", impl: liftOK(checkedDiv), ref: s.div},
		{name: "SatAdd", impl: lift(satAdd), ref: total(s.satAdd)},
		{name: "SatSub", impl: lift(satSub), ref: total(s.satSub)},
		{name: "SatMul", impl: lift(satMul), ref: total(s.satMul)},
		{name: "SafeDiv", impl: lift(safeDiv), ref: total(s.safeDiv)},
		{name: "SatDiv", nonzero: true, impl: lift(satDiv), ref: total(s.satDiv)},
	}
	if add != nil {
		ops = append(ops,
			binOp{name: "wrapping Add", impl: lift(add), ref: total(func(a, b *big.Int) *big.Int { return s.wrap(new(big.Int).Add(a, b)) })},
			binOp{name: "wrapping Sub", impl: lift(sub), ref: total(func(a, b *big.Int) *big.Int { return s.wrap(new(big.Int).Sub(a, b)) })})
	}
	return ops
}

// TestFullOpSets: every type has the whole operation set, each operation
// equal to its math/big definition on random values (both the in-range and
// the overflow side of every checked operation are reached).
func TestFullOpSets(t *testing.T) {
	t.Parallel()
	i32b := func(a I32F32) *big.Int { return b32(a) }
	runBin(t, fxI32F32, fullOps(fxI32F32, i32, i32b,
		I32F32.CheckedAdd, I32F32.CheckedSub, I32F32.CheckedMul, I32F32.CheckedDiv,
		I32F32.SatAdd, I32F32.SatSub, I32F32.SatMul, I32F32.SafeDiv, I32F32.SatDiv,
		func(a, b I32F32) I32F32 { return a + b }, func(a, b I32F32) I32F32 { return a - b }), propN/2, 101)

	i64 := func(v *big.Int) I64F64 { return I64F64{bigU128(v)} }
	i64b := func(a I64F64) *big.Int { return u128Big(a.r, true) }
	runBin(t, fxI64F64, fullOps(fxI64F64, i64, i64b,
		I64F64.CheckedAdd, I64F64.CheckedSub, I64F64.CheckedMul, I64F64.CheckedDiv,
		I64F64.SatAdd, I64F64.SatSub, I64F64.SatMul, I64F64.SafeDiv, I64F64.SatDiv,
		I64F64.Add, I64F64.Sub), propN/2, 102)

	i96 := func(v *big.Int) I96F32 { return I96F32{bigU128(v)} }
	i96b := func(a I96F32) *big.Int { return u128Big(a.r, true) }
	runBin(t, fxI96F32, fullOps(fxI96F32, i96, i96b,
		I96F32.CheckedAdd, I96F32.CheckedSub, I96F32.CheckedMul, I96F32.CheckedDiv,
		I96F32.SatAdd, I96F32.SatSub, I96F32.SatMul, I96F32.SafeDiv, I96F32.SatDiv,
		I96F32.Add, I96F32.Sub), propN/2, 103)

	u96 := func(v *big.Int) U96F32 { return U96F32{bigU128(v)} }
	u96b := func(a U96F32) *big.Int { return u128Big(a.r, false) }
	runBin(t, fxU96F32, fullOps(fxU96F32, u96, u96b,
		U96F32.CheckedAdd, U96F32.CheckedSub, U96F32.CheckedMul, U96F32.CheckedDiv,
		U96F32.SatAdd, U96F32.SatSub, U96F32.SatMul, U96F32.SafeDiv, U96F32.SatDiv,
		nil, nil), propN/2, 104)

	u64 := func(v *big.Int) U64F64 { return U64F64{bigU128(v)} }
	u64b := func(a U64F64) *big.Int { return u128Big(a.r, false) }
	runBin(t, fxU64F64, fullOps(fxU64F64, u64, u64b,
		U64F64.CheckedAdd, U64F64.CheckedSub, U64F64.CheckedMul, U64F64.CheckedDiv,
		U64F64.SatAdd, U64F64.SatSub, U64F64.SatMul, U64F64.SafeDiv, U64F64.SatDiv,
		nil, nil), propN/2, 105)

	// Comparisons and zero tests of the types that gained them.
	cmpOps := func(s fx, cmp func(a, b *big.Int) int, isZero func(a *big.Int) bool) []binOp {
		return []binOp{
			{name: "Cmp", impl: func(a, b *big.Int) (*big.Int, bool) { return always(big.NewInt(int64(cmp(a, b)))) },
				ref: func(a, b *big.Int) (*big.Int, bool) { return always(big.NewInt(int64(a.Cmp(b)))) }},
			{name: "IsZero", impl: func(a, b *big.Int) (*big.Int, bool) { return always(boolBig(isZero(a))) },
				ref: func(a, b *big.Int) (*big.Int, bool) { return always(boolBig(a.Sign() == 0)) }},
		}
	}
	runBin(t, fxI96F32, cmpOps(fxI96F32, func(a, b *big.Int) int { return i96(a).Cmp(i96(b)) }, func(a *big.Int) bool { return i96(a).IsZero() }), propN/4, 106)
	runBin(t, fxU96F32, cmpOps(fxU96F32, func(a, b *big.Int) int { return u96(a).Cmp(u96(b)) }, func(a *big.Int) bool { return u96(a).IsZero() }), propN/4, 107)
	runBin(t, fxU64F64, cmpOps(fxU64F64, func(a, b *big.Int) int { return u64(a).Cmp(u64(b)) }, func(a *big.Int) bool { return u64(a).IsZero() }), propN/4, 108)
}

// TestSatDivByZeroPanics: saturating_div panics on a zero divisor for every
// type, as in Rust; SafeDiv returns zero.
func TestSatDivByZeroPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"I64F64": func() { I64F64FromU64(1).SatDiv(I64F64{}) },
		"I96F32": func() { I96F32FromU64(1).SatDiv(I96F32{}) },
		"U96F32": func() { U96F32FromU64(1).SatDiv(U96F32{}) },
		"U64F64": func() { U64F64FromU64(1).SatDiv(U64F64{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s.SatDiv(0) did not panic", name)
				}
			}()
			f()
		}()
	}
	if !I96F32FromU64(5).SafeDiv(I96F32{}).IsZero() {
		t.Error("I96F32 SafeDiv by zero is not zero")
	}
}

func TestU96F32Properties(t *testing.T) {
	t.Parallel()
	s := fxU96F32
	mk := func(v *big.Int) U96F32 { return U96F32{bigU128(v)} }
	bg := func(a U96F32) *big.Int { return u128Big(a.r, false) }
	runBin(t, s, unsignedOps(s, mk, bg, U96F32.SatMul, U96F32.SatAdd, U96F32.SatSub, U96F32.SafeDiv, U96F32.CheckedDiv), propN, 31)
	runUn(t, s, []unOp{
		{name: "FloorU64", impl: func(a *big.Int) (*big.Int, bool) { return always(new(big.Int).SetUint64(mk(a).FloorU64())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxUint64)) }},
		{name: "RawString", impl: func(a *big.Int) (*big.Int, bool) {
			v, ok := new(big.Int).SetString(mk(a).RawString(), 10)
			return v, ok
		}, ref: always},
	}, propN, 32)
	runUn(t, fxUint64, []unOp{{name: "U96F32FromU64",
		impl: func(v *big.Int) (*big.Int, bool) { return always(bg(U96F32FromU64(v.Uint64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxUint64.floorTo(v, s)) }}}, propN/4, 33)
}

func TestU64F64Properties(t *testing.T) {
	t.Parallel()
	s := fxU64F64
	mk := func(v *big.Int) U64F64 { return U64F64{bigU128(v)} }
	bg := func(a U64F64) *big.Int { return u128Big(a.r, false) }
	runBin(t, s, unsignedOps(s, mk, bg, U64F64.SatMul, U64F64.SatAdd, U64F64.SatSub, U64F64.SafeDiv, U64F64.CheckedDiv), propN, 41)
	runUn(t, s, []unOp{
		{name: "FloorU64", impl: func(a *big.Int) (*big.Int, bool) { return always(new(big.Int).SetUint64(mk(a).FloorU64())) },
			ref: func(a *big.Int) (*big.Int, bool) { return always(s.floorTo(a, fxUint64)) }},
		{name: "RawString", impl: func(a *big.Int) (*big.Int, bool) {
			v, ok := new(big.Int).SetString(mk(a).RawString(), 10)
			return v, ok
		}, ref: always},
	}, propN, 42)
	runUn(t, fxUint64, []unOp{{name: "U64F64FromU64",
		impl: func(v *big.Int) (*big.Int, bool) { return always(bg(U64F64FromU64(v.Uint64()))) },
		ref:  func(v *big.Int) (*big.Int, bool) { return always(fxUint64.floorTo(v, s)) }}}, propN/4, 43)
}

// Division by zero of the wide types: None / zero, never a panic.
func TestWideDivByZero(t *testing.T) {
	g := newGen(50)
	for range 200 {
		a := g.val(fxU128)
		r := bigU128(a)
		if q, ok := (I64F64{r}).CheckedDiv(I64F64{}); ok || !q.IsZero() {
			t.Fatalf("I64F64 CheckedDiv by zero = %s, %v", q.RawString(), ok)
		}
		if q := (I64F64{r}).SafeDiv(I64F64{}); !q.IsZero() {
			t.Fatalf("I64F64 SafeDiv by zero = %s", q.RawString())
		}
		if _, ok := (I96F32{r}).CheckedDiv(I96F32{}); ok {
			t.Fatal("I96F32 CheckedDiv by zero succeeded")
		}
		if _, ok := (U96F32{r}).CheckedDiv(U96F32{}); ok {
			t.Fatal("U96F32 CheckedDiv by zero succeeded")
		}
		if q := (U96F32{r}).SafeDiv(U96F32{}); q.RawString() != "0" {
			t.Fatalf("U96F32 SafeDiv by zero = %s", q.RawString())
		}
		if _, ok := (U64F64{r}).CheckedDiv(U64F64{}); ok {
			t.Fatal("U64F64 CheckedDiv by zero succeeded")
		}
		if q := (U64F64{r}).SafeDiv(U64F64{}); q.RawString() != "0" {
			t.Fatalf("U64F64 SafeDiv by zero = %s", q.RawString())
		}
	}
}

// ---------------------------------------------------------------------------
// Internals of wide.go.

// val256 returns a 256-bit dividend biased toward edge shapes.
func (g *gen) val256() *big.Int {
	switch g.r.IntN(6) {
	case 0:
		return g.bits(256)
	case 1: // a shifted 128-bit value, as the fixed-point division builds it
		v := g.val(fxU128)
		return v.Lsh(v, uint(g.r.IntN(65)))
	case 2: // random length
		return g.bits(uint(g.r.IntN(256) + 1))
	case 3: // words from {0, 1, max, 2^63, random}
		v := new(big.Int)
		for range 4 {
			v.Lsh(v, 64)
			switch g.r.IntN(5) {
			case 0:
			case 1:
				v.Or(v, bigOne)
			case 2:
				v.Or(v, mask64)
			case 3:
				v.Or(v, p2(63))
			default:
				v.Or(v, new(big.Int).SetUint64(g.r.Uint64()))
			}
		}
		return v
	default:
		v := g.val(fxU128)
		v.Lsh(v, 128)
		return v.Or(v, g.val(fxU128))
	}
}

// divisor returns a nonzero 128-bit divisor: high word zero or not, every
// normalisation shift, and all-ones words.
func (g *gen) divisor() *big.Int {
	for {
		var d *big.Int
		switch g.r.IntN(5) {
		case 0: // high word zero
			d = g.val(fxUint64)
		case 1: // normalisation shift 0 (top bit set)
			d = new(big.Int).Or(p2(127), g.bits(127))
		case 2: // all ones in the low word, small high word (qhat correction)
			d = new(big.Int).Lsh(new(big.Int).SetUint64(uint64(g.r.IntN(4)+1)), 64)
			d.Or(d, mask64)
		case 3: // top word 2^k, low word all ones or random
			d = p2(uint(g.r.IntN(64) + 64))
			if g.r.IntN(2) == 0 {
				d.Or(d, mask64)
			} else {
				d.Or(d, g.bits(64))
			}
		default:
			d = g.val(fxU128)
		}
		if d.Sign() != 0 {
			return d
		}
	}
}

func TestMul128(t *testing.T) {
	t.Parallel()
	g := newGen(60)
	for range casesN(t, propN) {
		a, b := g.val(fxU128), g.val(fxU128)
		got := u256Big(mul128(bigU128(a), bigU128(b)))
		if want := new(big.Int).Mul(a, b); got.Cmp(want) != 0 {
			t.Fatalf("mul128(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}

func TestDiv256(t *testing.T) {
	t.Parallel()
	g := newGen(61)
	for i := range casesN(t, 3*propN) {
		d := g.divisor()
		var n *big.Int
		if i%2 == 0 {
			n = g.val256()
		} else {
			// n = q*d + r with quotient words drawn from {0, 1, B-1, B-2,
			// random}: remainders whose top word equals the divisor's top word
			// drive the qhat = B-1 estimate and its correction loop.
			q := new(big.Int)
			for range 3 {
				q.Lsh(q, 64)
				switch g.r.IntN(5) {
				case 0:
				case 1:
					q.Or(q, bigOne)
				case 2:
					q.Or(q, mask64)
				case 3:
					q.Or(q, new(big.Int).SetUint64(math.MaxUint64-1))
				default:
					q.Or(q, new(big.Int).SetUint64(g.r.Uint64()))
				}
			}
			var r *big.Int
			switch g.r.IntN(3) {
			case 0:
				r = new(big.Int)
			case 1:
				r = new(big.Int).Sub(d, bigOne)
			default:
				r = new(big.Int).Mod(g.bits(uint(d.BitLen())+64), d)
			}
			n = q.Mul(q, d).Add(q, r)
			if n.BitLen() > 256 {
				continue
			}
		}
		got := u256Big(div256(bigU256(n), bigU128(d)))
		if want := new(big.Int).Quo(n, d); got.Cmp(want) != 0 {
			t.Fatalf("div256(%#x, %#x) = %#x, want %#x", n, d, got, want)
		}
	}
}

// Specific div256 vectors: one- and two-word divisors, normalisation shift 0
// and 63, the qhat = B-1 estimate, maximal dividends.
func TestDiv256Vectors(t *testing.T) {
	h := func(s string) *big.Int {
		v, ok := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 16)
		if !ok {
			t.Fatalf("bad hex %q", s)
		}
		return v
	}
	cases := [][2]string{
		{"0", "1"},
		{"ffffffffffffffff_ffffffffffffffff_ffffffffffffffff_ffffffffffffffff", "1"},
		{"ffffffffffffffff_ffffffffffffffff_ffffffffffffffff_ffffffffffffffff", "ffffffffffffffff"},
		{"ffffffffffffffff_ffffffffffffffff_ffffffffffffffff_ffffffffffffffff", "1_0000000000000000"},
		{"ffffffffffffffff_ffffffffffffffff_ffffffffffffffff_ffffffffffffffff", "ffffffffffffffff_ffffffffffffffff"},
		{"ffffffffffffffff_ffffffffffffffff_ffffffffffffffff_ffffffffffffffff", "80000000_00000000_00000000_00000000"},
		{"7fffffffffffffff_ffffffffffffffff_0000000000000000_0000000000000000", "80000000_00000000_00000000_00000001"},
		{"8000000000000000_0000000000000000_0000000000000000_0000000000000000", "80000000_00000000_ffffffff_ffffffff"},
		{"1_0000000000000000_0000000000000000", "1_ffffffffffffffff"},
		{"ffffffffffffffff_fffffffffffffffe_0000000000000000", "ffffffffffffffff_ffffffffffffffff"},
		{"8000000000000000_7fffffffffffffff_ffffffffffffffff_0000000000000000", "80000000_00000000_80000000_00000000"},
		{"123456789abcdef0_0fedcba987654321", "123456789abcdef0_0fedcba987654321"},
		{"123456789abcdef0_0fedcba987654320", "123456789abcdef0_0fedcba987654321"},
	}
	for _, c := range cases {
		n, d := h(c[0]), h(c[1])
		got := u256Big(div256(bigU256(n), bigU128(d)))
		if want := new(big.Int).Quo(n, d); got.Cmp(want) != 0 {
			t.Errorf("div256(%#x, %#x) = %#x, want %#x", n, d, got, want)
		}
	}
}

func TestMulShrSigned(t *testing.T) {
	t.Parallel()
	g := newGen(62)
	for i := range casesN(t, 2*propN) {
		frac := uint(32 + 32*(i%2))
		if i%8 == 7 {
			frac = uint(g.r.IntN(128))
		}
		s := fx{"i128", 128, frac, true}
		a, b := g.pair(s)
		got, ok := mulShrSigned(bigU128(a), bigU128(b), frac)
		want, wantOK := s.mul(a, b)
		if ok != wantOK || (ok && u128Big(got, true).Cmp(want) != 0) {
			t.Fatalf("mulShrSigned(%v, %v, %d) = %v, %v; want %v, %v", a, b, frac, u128Big(got, true), ok, want, wantOK)
		}
	}
}

func TestDivShlSigned(t *testing.T) {
	t.Parallel()
	g := newGen(63)
	for i := range casesN(t, 2*propN) {
		frac := uint(32 + 32*(i%2))
		if i%8 == 7 {
			frac = uint(g.r.IntN(65))
		}
		s := fx{"i128", 128, frac, true}
		a, b := g.pair(s)
		if b.Sign() == 0 {
			continue
		}
		got, ok := divShlSigned(bigU128(a), bigU128(b), frac)
		want, wantOK := s.div(a, b)
		if ok != wantOK || (ok && u128Big(got, true).Cmp(want) != 0) {
			t.Fatalf("divShlSigned(%v, %v, %d) = %v, %v; want %v, %v", a, b, frac, u128Big(got, true), ok, want, wantOK)
		}
	}
}

func TestWideHelpers(t *testing.T) {
	g := newGen(64)
	for range casesN(t, 10000) {
		a, b := g.val(fxU128), g.val(fxU128)
		ua, ub := bigU128(a), bigU128(b)
		sa, sb := u128Big(ua, true), u128Big(ub, true)
		if got := ua.cmp(ub); got != a.Cmp(b) {
			t.Fatalf("cmp(%v, %v) = %d", a, b, got)
		}
		if got := ua.scmp(ub); got != sa.Cmp(sb) {
			t.Fatalf("scmp(%v, %v) = %d", sa, sb, got)
		}
		m, neg := ua.abs()
		if neg != (sa.Sign() < 0) || u128Big(m, false).Cmp(new(big.Int).Abs(sa)) != 0 {
			t.Fatalf("abs(%v) = %v, %v", sa, u128Big(m, false), neg)
		}
		s := uint(g.r.IntN(65))
		if got, want := u256Big(shl128(ua, s)), new(big.Int).Lsh(a, s); got.Cmp(want) != 0 {
			t.Fatalf("shl128(%v, %d) = %v", a, s, got)
		}
		x := g.val256()
		s = uint(g.r.IntN(128))
		if got, want := u256Big(bigU256(x).shr(s)), new(big.Int).Rsh(x, s); got.Cmp(want) != 0 {
			t.Fatalf("shr(%v, %d) = %v", x, s, got)
		}
		s = uint(g.r.IntN(129))
		low := new(big.Int).And(x, new(big.Int).Sub(p2(s), bigOne))
		if got := bigU256(x).lowBitsNonZero(s); got != (low.Sign() != 0) {
			t.Fatalf("lowBitsNonZero(%#x, %d) = %v", x, s, got)
		}
	}
}

// ---------------------------------------------------------------------------
// Exp: the literal series of substrate_fixed::transcendental::exp.

// refEConst is transcendental::E = I9F23::from_bits(consts::E.to_bits() >> 103)
// where consts::E is a U2F126, widened to I32F32 (bits << 9). It is derived
// here from e computed to 300 bits.
func refEConst() int64 {
	e := new(big.Float).SetPrec(300).SetInt64(0)
	term := new(big.Float).SetPrec(300).SetInt64(1)
	for k := int64(1); k < 100; k++ {
		e.Add(e, term)
		term.Quo(term, new(big.Float).SetPrec(300).SetInt64(k))
	}
	e.SetMantExp(e, 126)
	u2f126, _ := e.Int(nil) // floor for a positive value
	return new(big.Int).Rsh(u2f126, 103).Int64() << 9
}

var refE = refEConst()

// refExp follows the Rust code step by step on exact integers.
func refExp(x int64) (int64, bool) {
	s := fxI32F32
	if x == 0 {
		return 1 << 32, true
	}
	if x == 1<<32 {
		return refE, true
	}
	X := big.NewInt(x)
	if x < 0 {
		X.Neg(X)
		if !s.fits(X) {
			return 0, false // checked_neg of Min
		}
	}
	one := s.one()
	result, ok := s.add(X, one)
	if !ok {
		return 0, false
	}
	term := new(big.Int).Set(X)
	for i := int64(2); i < 32; i++ {
		if term, ok = s.mul(term, X); !ok {
			return 0, false
		}
		if term, ok = s.div(term, new(big.Int).Lsh(big.NewInt(i), 32)); !ok {
			return 0, false
		}
		if result, ok = s.add(result, term); !ok {
			return 0, false
		}
	}
	if x < 0 {
		if result, ok = s.div(one, result); !ok {
			return 0, false
		}
	}
	return result.Int64(), true
}

func refExpSafe(x int64) int64 {
	const lim = 20 << 32
	x = min(max(x, -lim), lim)
	if r, ok := refExp(x); ok {
		return r
	}
	if x <= 0 {
		return 0
	}
	return math.MaxInt64
}

func refSigmoidSafe(x, rho, kappa int64) int64 {
	s := fxI32F32
	one := s.one()
	offset := s.satSub(big.NewInt(x), big.NewInt(kappa))
	negRho := s.satMul(big.NewInt(rho), s.satNeg(one))
	e := big.NewInt(refExpSafe(s.satMul(negRho, offset).Int64()))
	return s.safeDiv(one, s.satAdd(e, one)).Int64()
}

// expInputs returns >= 20000 uniform inputs in [-25, 25] plus edge values.
func expInputs(n int) []int64 {
	g := newGen(70)
	const lim = 25 << 32
	xs := make([]int64, 0, n+2000)
	for range n {
		xs = append(xs, g.r.Int64N(2*lim+1)-lim)
	}
	for k := int64(-25); k <= 25; k++ {
		for _, d := range []int64{-2, -1, 0, 1, 2, 1 << 31, -1 << 31} {
			xs = append(xs, k<<32+d)
		}
	}
	for k := range 64 {
		xs = append(xs, 1<<k, -1<<k, 1<<k-1, -(1<<k - 1))
	}
	// Around the overflow threshold, near 20.5 .. 21.5.
	for range 1000 {
		xs = append(xs, g.r.Int64N(1<<32)+(41<<31))
		xs = append(xs, -(g.r.Int64N(1<<32) + (41 << 31)))
	}
	xs = append(xs, 0, 1, -1, 1<<32, -1<<32, 20<<32, -20<<32, math.MaxInt64, math.MinInt64, math.MinInt64+1)
	return xs
}

func TestExpMatchesSeries(t *testing.T) {
	t.Parallel()
	if refE != 11674931200 {
		t.Fatalf("reference E = %d, want 11674931200", refE)
	}
	var nOK, nErr int
	xs := expInputs(casesN(t, 25000))
	for _, x := range xs {
		got, ok := Exp(I32F32(x))
		want, wantOK := refExp(x)
		if ok != wantOK || (ok && int64(got) != want) {
			t.Fatalf("Exp(raw %d = %v) = %d, %v; want %d, %v", x, I32F32(x), int64(got), ok, want, wantOK)
		}
		if ok {
			nOK++
		} else {
			nErr++
		}
		if gs, ws := ExpSafe(I32F32(x)), refExpSafe(x); int64(gs) != ws {
			t.Fatalf("ExpSafe(raw %d) = %d; want %d", x, int64(gs), ws)
		}
	}
	if nErr < len(xs)/20 || nOK < len(xs)/2 {
		t.Fatalf("exp inputs hit %d ok and %d Err results; want both sides well covered", nOK, nErr)
	}
}

// The overflow boundary of the series: the last input that succeeds and the
// first that fails, found on the reference by bisection. ExpSafe turns those
// Errs into 0 / Max only outside [-20, 20]: inside it the series never fails.
func TestExpOverflowBoundary(t *testing.T) {
	lo, hi := int64(20<<32), int64(22<<32)
	if _, ok := refExp(lo); !ok {
		t.Fatal("reference exp(20) fails")
	}
	if _, ok := refExp(hi); ok {
		t.Fatal("reference exp(22) succeeds")
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if _, ok := refExp(mid); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	t.Logf("exp boundary: last ok raw %d (%v), first Err raw %d", lo, I32F32(lo), hi)
	for d := int64(-3); d <= 3; d++ {
		for _, x := range []int64{lo + d, -(lo + d)} {
			got, ok := Exp(I32F32(x))
			want, wantOK := refExp(x)
			if ok != wantOK || (ok && int64(got) != want) {
				t.Errorf("Exp(raw %d) = %d, %v; want %d, %v", x, int64(got), ok, want, wantOK)
			}
		}
	}
	for _, x := range []int64{lo, lo + 1, 30 << 32, math.MaxInt64} {
		if got := ExpSafe(I32F32(x)); int64(got) != refExpSafe(x) {
			t.Errorf("ExpSafe(raw %d) = %d, want %d", x, int64(got), refExpSafe(x))
		}
		if got := ExpSafe(I32F32(-x)); int64(got) != refExpSafe(-x) {
			t.Errorf("ExpSafe(raw %d) = %d, want %d", -x, int64(got), refExpSafe(-x))
		}
	}
	if got := ExpSafe(I32F32Min); int64(got) != refExpSafe(math.MinInt64) {
		t.Errorf("ExpSafe(Min) = %d", int64(got))
	}
}

// A sanity check of the reference itself: for |x| <= 10 the truncated series
// is e^x to within its rounding.
func TestExpNearMathExp(t *testing.T) {
	g := newGen(71)
	for range casesN(t, 5000) {
		x := g.r.Int64N(20<<32+1) - 10<<32
		got, ok := Exp(I32F32(x))
		if !ok {
			t.Fatalf("Exp(raw %d) failed", x)
		}
		want := math.Exp(I32F32(x).Float64())
		if d := math.Abs(got.Float64() - want); d > 1e-6*want+1e-8 {
			t.Fatalf("Exp(%v) = %v, e^x = %v", I32F32(x), got, want)
		}
	}
}

func TestSigmoidSafe(t *testing.T) {
	t.Parallel()
	g := newGen(72)
	for i := range casesN(t, 30000) {
		var x, rho, kappa int64
		if i%2 == 0 {
			// realistic: x and kappa in [0, 1], rho in [0, 100]
			x = g.r.Int64N(1<<32 + 1)
			kappa = g.r.Int64N(1<<32 + 1)
			rho = g.r.Int64N(100<<32 + 1)
		} else {
			x, rho, kappa = g.val(fxI32F32).Int64(), g.val(fxI32F32).Int64(), g.val(fxI32F32).Int64()
		}
		got := SigmoidSafe(I32F32(x), I32F32(rho), I32F32(kappa))
		if want := refSigmoidSafe(x, rho, kappa); int64(got) != want {
			t.Fatalf("SigmoidSafe(raw %d, %d, %d) = %d; want %d", x, rho, kappa, int64(got), want)
		}
	}
	// x == kappa: exp_safe(0) = 1, so exactly one half.
	for _, k := range []I32F32{0, I32F32Half, I32F32One, -5 << 32} {
		if got := SigmoidSafe(k, 10<<32, k); got != I32F32Half {
			t.Errorf("SigmoidSafe(k, 10, k) = %v, want 0.5", got)
		}
	}
}

// ---------------------------------------------------------------------------
// Table tests for known values.

func TestKnownValues(t *testing.T) {
	// Yuma's kappa: 32767 / 65535 as I32F32.
	if got := I32F32FromInt(32767).SafeDiv(I32F32FromInt(65535)); got != 2147450879 {
		t.Errorf("32767 safe_div 65535 = raw %d, want 2147450879", int64(got))
	}
	// I64F64 0.9 narrowed to I32F32, and 1 - 0.9.
	q, ok := I64F64FromU64(900000).CheckedDiv(I64F64FromU64(1000000))
	if !ok {
		t.Fatal("900000 / 1000000 failed")
	}
	n := q.I32F32()
	if n != 3865470566 {
		t.Errorf("I32F32(900000/1000000) = raw %d, want 3865470566", int64(n))
	}
	if got := I32F32One.SatSub(n); got != 429496730 {
		t.Errorf("1 - 0.9 = raw %d, want 429496730", int64(got))
	}
	// A tiny I64F64 quotient truncates.
	if got := I64F64FromU64(1).SafeDiv(I64F64FromU64(21_000_000_000_000_000)); got.RawString() != "878" {
		t.Errorf("1 / 21e15 = raw %s, want 878", got.RawString())
	}
	// exp(1) is the I9F23 constant E widened.
	if got, ok := Exp(I32F32One); !ok || got != 11674931200 {
		t.Errorf("exp(1) = raw %d, %v; want 11674931200", int64(got), ok)
	}
	if got := ExpSafe(I32F32One); got != 11674931200 {
		t.Errorf("exp_safe(1) = raw %d; want 11674931200", int64(got))
	}
	if got, ok := Exp(0); !ok || got != I32F32One {
		t.Errorf("exp(0) = %v, %v", got, ok)
	}
	// exp_safe(20) is the truncated series, 481239357.674…, not e^20.
	want, ok := refExp(20 << 32)
	if !ok {
		t.Fatal("reference exp(20) failed")
	}
	got := ExpSafe(20 << 32)
	if int64(got) != want {
		t.Errorf("exp_safe(20) = raw %d, want %d", int64(got), want)
	}
	if s := got.String(); !strings.HasPrefix(s, "481239357.674") {
		t.Errorf("exp_safe(20) = %s, want 481239357.674…", s)
	}
	if ExpSafe(100<<32) != got || ExpSafe(I32F32Max) != got {
		t.Error("exp_safe does not clamp large inputs to 20")
	}
	if w, _ := refExp(-20 << 32); ExpSafe(-100<<32) != I32F32(w) || ExpSafe(I32F32Min) != I32F32(w) {
		t.Error("exp_safe does not clamp small inputs to -20")
	}

	// Round: nearest, ties away from zero.
	for _, c := range []struct{ in, want float64 }{
		{2.5, 3}, {-2.5, -3}, {0.5, 1}, {-0.5, -1}, {1.5, 2}, {-1.5, -2},
		{2.4999999997671694, 2}, {-2.4999999997671694, -2}, {2.5000000002328306, 3},
		{0, 0}, {0.25, 0}, {-0.25, 0}, {7, 7}, {-7, -7},
	} {
		in := I32F32(c.in * (1 << 32))
		if got := in.Round(); got != I32F32(c.want*(1<<32)) {
			t.Errorf("Round(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := I32F32Max.Round(); got != I32F32Max {
		t.Errorf("Round(Max) = raw %d, want saturation at Max", int64(got))
	}
	if got := I32F32Min.Round(); got != I32F32Min {
		t.Errorf("Round(Min) = raw %d, want Min", int64(got))
	}

	// Multiply floors, divide truncates: the two differ on negative results.
	raw := func(v int64) I32F32 { return I32F32(v) }
	i32Cases := []struct {
		name      string
		got, want I32F32
	}{
		{"-1raw * 1raw floors to -1raw", raw(-1).SatMul(1), -1},
		{"1raw * 1raw floors to 0", raw(1).SatMul(1), 0},
		{"-1raw * 0.5 floors to -1raw", raw(-1).SatMul(I32F32Half), -1},
		{"3raw * 0.5 floors to 1raw", raw(3).SatMul(I32F32Half), 1},
		{"-3raw * 0.5 floors to -2raw", raw(-3).SatMul(I32F32Half), -2},
		{"-1 / 3 truncates", I32F32FromInt(-1).SafeDiv(I32F32FromInt(3)), -1431655765},
		{"1 / 3 truncates", I32F32One.SafeDiv(I32F32FromInt(3)), 1431655765},
		{"-1raw / 3 truncates to 0", raw(-1).SafeDiv(I32F32FromInt(3)), 0},
		{"Max * Max saturates", I32F32Max.SatMul(I32F32Max), I32F32Max},
		{"Min * Max saturates to Min", I32F32Min.SatMul(I32F32Max), I32F32Min},
		{"Min * Min saturates to Max", I32F32Min.SatMul(I32F32Min), I32F32Max},
		{"Min * -1 saturates to Max", I32F32Min.SatMul(-I32F32One), I32F32Max},
		{"Min * 1 is exact", I32F32Min.SatMul(I32F32One), I32F32Min},
		{"Min / -1 saturates to Max", I32F32Min.SatDiv(-I32F32One), I32F32Max},
		{"Min / -1 safe_div is 0", I32F32Min.SafeDiv(-I32F32One), 0},
		{"Min / 1 is exact", I32F32Min.SafeDiv(I32F32One), I32F32Min},
		{"Max / 0.5 overflows to 0", I32F32Max.SafeDiv(I32F32Half), 0},
		{"Max / -0.5 saturates to Min", I32F32Max.SatDiv(-I32F32Half), I32F32Min},
		{"-2^30 / 0.5 is Min exactly", I32F32FromInt(-1 << 30).SafeDiv(I32F32Half), I32F32Min},
		{"2^30 / 0.5 overflows", I32F32FromInt(1 << 30).SafeDiv(I32F32Half), 0},
		{"Max + 1raw saturates", I32F32Max.SatAdd(1), I32F32Max},
		{"Min - 1raw saturates", I32F32Min.SatSub(1), I32F32Min},
		{"-Min saturates", I32F32Min.SatNeg(), I32F32Max},
		{"FromInt(2^31) saturates", I32F32FromInt(1 << 31), I32F32Max},
		{"FromInt(-2^31) is Min", I32F32FromInt(-1 << 31), I32F32Min},
		{"FromInt(-2^31-1) saturates", I32F32FromInt(-1<<31 - 1), I32F32Min},
		{"FromU64(2^31-1)", I32F32FromU64(1<<31 - 1), (1<<31 - 1) << 32},
		{"FromU64(2^31) saturates", I32F32FromU64(1 << 31), I32F32Max},
		{"FromInt(2^31-1) is exact", I32F32FromInt(math.MaxInt32), math.MaxInt32 << 32},
		{"FromInt(-2^31+1) is exact", I32F32FromInt(math.MinInt32 + 1), (math.MinInt32 + 1) << 32},
		{"I64F64 2^31-1 narrows exactly", I64F64FromU64(math.MaxInt32).I32F32(), math.MaxInt32 << 32},
		{"I64F64 2^31-1raw narrows exactly", I64F64{u128{hi: 1<<31 - 1, lo: 1<<63 - 1}}.I32F32(), math.MaxInt32<<32 | (1<<31 - 1)},
		{"I64F64 2^31 saturates", I64F64FromU64(1 << 31).I32F32(), I32F32Max},
		{"I64F64 -2^31 narrows exactly", I64F64FromI32F32(I32F32Min).I32F32(), I32F32Min},
		{"I64F64 -2^31-1raw saturates", I64F64{u128{hi: 0xFFFFFFFF7FFFFFFF, lo: math.MaxUint64}}.I32F32(), I32F32Min},
		{"FromU64(2^63) saturates", I32F32FromU64(1 << 63), I32F32Max},
		{"I64F64 Min narrows to Min", I64F64{i128Min}.I32F32(), I32F32Min},
		{"I64F64 Max narrows to Max", I64F64{i128Max}.I32F32(), I32F32Max},
		{"I64F64 -1raw narrows (floor) to -1raw", I64F64{u128Max}.I32F32(), -1},
	}
	for _, c := range i32Cases {
		if c.got != c.want {
			t.Errorf("%s: got raw %d, want raw %d", c.name, int64(c.got), int64(c.want))
		}
	}
	if got := raw(-1).FloorU64(); got != 0 {
		t.Errorf("FloorU64(-1raw) = %d", got)
	}
	if got := I32F32Max.FloorU16(); got != math.MaxUint16 {
		t.Errorf("FloorU16(Max) = %d", got)
	}
	if got := I32F32FromInt(65535).FloorU16(); got != 65535 {
		t.Errorf("FloorU16(65535) = %d", got)
	}
	if got := (I32F32FromInt(65536) - 1).FloorU16(); got != 65535 {
		t.Errorf("FloorU16(65536-1raw) = %d", got)
	}

	// Wide types.
	wide := []struct{ name, got, want string }{
		{"I64F64 -1raw * 1raw floors", I64F64{u128Max}.SatMul(I64F64{u128{lo: 1}}).RawString(), "-1"},
		{"I64F64 Min * -1 saturates", I64F64{i128Min}.SatMul(I64F64{u128{hi: ^uint64(0)}}).RawString(), u128Big(i128Max, true).String()},
		{"I64F64 Min / -1 overflows", I64F64{i128Min}.SafeDiv(I64F64{u128{hi: ^uint64(0)}}).RawString(), "0"},
		{"I64F64 -1 / 3 truncates", I64F64{u128{hi: ^uint64(0)}}.SafeDiv(I64F64FromU64(3)).RawString(), "-6148914691236517205"},
		{"I64F64 FromU64(max) saturates", I64F64FromU64(math.MaxUint64).RawString(), u128Big(i128Max, true).String()},
		{"I64F64 FromU64(2^63-1)", I64F64FromU64(math.MaxInt64).RawString(), new(big.Int).Lsh(big.NewInt(math.MaxInt64), 64).String()},
		{"I64F64 from U96F32 2^95-1raw", I64F64FromU96F32(U96F32{u128{hi: 1<<31 - 1, lo: ^uint64(0)}}).RawString(), new(big.Int).Sub(p2(127), p2(32)).String()},
		{"I64F64 from U96F32 2^95raw saturates", I64F64FromU96F32(U96F32{u128{hi: 1 << 31}}).RawString(), u128Big(i128Max, true).String()},
		{"I96F32 -1raw * 1raw floors", I96F32{u128Max}.SatMul(I96F32{u128{lo: 1}}).RawString(), "-1"},
		{"I96F32 from I32F32 Min", I96F32FromI32F32(I32F32Min).RawString(), "-9223372036854775808"},
		{"U96F32 Max * 2 saturates", U96F32{u128Max}.SatMul(U96F32FromU64(2)).RawString(), u128Big(u128Max, false).String()},
		{"U96F32 1 - 2 clamps at 0", U96F32FromU64(1).SatSub(U96F32FromU64(2)).RawString(), "0"},
		{"U96F32 1 / 3", U96F32FromU64(1).SafeDiv(U96F32FromU64(3)).RawString(), "1431655765"},
		{"U64F64 1 / 3", U64F64FromU64(1).SafeDiv(U64F64FromU64(3)).RawString(), "6148914691236517205"},
		{"U64F64 Max / 0.5 overflows", U64F64{u128Max}.SafeDiv(U64F64{u128{lo: 1 << 63}}).RawString(), "0"},
		{"U64F64 Max + 1raw saturates", U64F64{u128Max}.SatAdd(U64F64{u128{lo: 1}}).RawString(), u128Big(u128Max, false).String()},
	}
	for _, c := range wide {
		if c.got != c.want {
			t.Errorf("%s: got raw %s, want %s", c.name, c.got, c.want)
		}
	}
	if got := (I64F64{u128{hi: 3, lo: 1 << 63}}).String(); got != "3.5" {
		t.Errorf("I64F64(3.5).String() = %q", got)
	}
	if got := U96F32FromU64(math.MaxUint64).FloorU64(); got != math.MaxUint64 {
		t.Errorf("U96F32(2^64-1).FloorU64() = %d", got)
	}
	if got := (U96F32{u128{hi: 1 << 32}}).FloorU64(); got != math.MaxUint64 {
		t.Errorf("U96F32(2^64).FloorU64() = %d, want saturation", got)
	}
	if got := (I96F32{i128Min}).FloorU64(); got != 0 {
		t.Errorf("I96F32(Min).FloorU64() = %d, want 0", got)
	}
}

// ---------------------------------------------------------------------------
// Fuzz targets. Each compares against the big reference, so a crash report is
// a real deviation.

var fuzzI64Seeds = []int64{0, 1, -1, 2, -2, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1,
	1 << 31, -1 << 31, 1<<31 - 1, 1 << 32, -1 << 32, 1<<32 - 1, 1<<32 + 1, 1 << 62, -1 << 62, 1<<63 - 1<<32,
	3 << 32, -3 << 32, 20 << 32, -20 << 32, 21 << 32, 2147450879}

func checkI32(t *testing.T, op string, a, b int64, got I32F32, gotOK bool, want *big.Int, wantOK bool) {
	t.Helper()
	if gotOK != wantOK || (wantOK && big.NewInt(int64(got)).Cmp(want) != 0) {
		t.Fatalf("%s(raw %d, raw %d) = %d, %v; want %v, %v", op, a, b, int64(got), gotOK, want, wantOK)
	}
}

func addI64Pairs(f *testing.F) {
	for i, a := range fuzzI64Seeds {
		for j, b := range fuzzI64Seeds {
			if (i+j)%3 == 0 {
				f.Add(a, b)
			}
		}
	}
}

func FuzzI32F32Mul(f *testing.F) {
	addI64Pairs(f)
	s := fxI32F32
	f.Fuzz(func(t *testing.T, a, b int64) {
		A, B := big.NewInt(a), big.NewInt(b)
		got, ok := I32F32(a).CheckedMul(I32F32(b))
		want, wantOK := s.mul(A, B)
		checkI32(t, "CheckedMul", a, b, got, ok, want, wantOK)
		checkI32(t, "SatMul", a, b, I32F32(a).SatMul(I32F32(b)), true, s.satMul(A, B), true)
	})
}

func FuzzI32F32Div(f *testing.F) {
	addI64Pairs(f)
	s := fxI32F32
	f.Fuzz(func(t *testing.T, a, b int64) {
		A, B := big.NewInt(a), big.NewInt(b)
		got, ok := I32F32(a).CheckedDiv(I32F32(b))
		want, wantOK := s.div(A, B)
		checkI32(t, "CheckedDiv", a, b, got, ok, want, wantOK)
		checkI32(t, "SafeDiv", a, b, I32F32(a).SafeDiv(I32F32(b)), true, s.safeDiv(A, B), true)
		if b != 0 {
			checkI32(t, "SatDiv", a, b, I32F32(a).SatDiv(I32F32(b)), true, s.satDiv(A, B), true)
		}
	})
}

func FuzzI32F32Add(f *testing.F) {
	addI64Pairs(f)
	s := fxI32F32
	f.Fuzz(func(t *testing.T, a, b int64) {
		A, B := big.NewInt(a), big.NewInt(b)
		got, ok := I32F32(a).CheckedAdd(I32F32(b))
		want, wantOK := s.add(A, B)
		checkI32(t, "CheckedAdd", a, b, got, ok, want, wantOK)
		checkI32(t, "SatAdd", a, b, I32F32(a).SatAdd(I32F32(b)), true, s.satAdd(A, B), true)
		checkI32(t, "SatSub", a, b, I32F32(a).SatSub(I32F32(b)), true, s.satSub(A, B), true)
		checkI32(t, "SatNeg", a, 0, I32F32(a).SatNeg(), true, s.satNeg(A), true)
	})
}

var fuzzWordSeeds = []uint64{0, 1, 2, math.MaxUint64, math.MaxUint64 - 1, 1 << 63, 1<<63 - 1, 1<<63 + 1,
	1 << 32, 1<<32 - 1, 1 << 31, 3, 0x123456789abcdef0}

func addWidePairs(f *testing.F) {
	n := len(fuzzWordSeeds)
	for i := range n * n {
		w := func(k int) uint64 { return fuzzWordSeeds[(i*k+k*k)%n] }
		f.Add(w(1), w(2), w(3), w(5))
		f.Add(fuzzWordSeeds[i%n], fuzzWordSeeds[i/n], uint64(0), fuzzWordSeeds[(i+3)%n])
	}
}

func checkWide(t *testing.T, s fx, op string, a, b *big.Int, got u128, gotOK bool, want *big.Int, wantOK bool) {
	t.Helper()
	if gotOK != wantOK || (wantOK && u128Big(got, s.signed).Cmp(want) != 0) {
		t.Fatalf("%s %s(raw %v, raw %v) = %v, %v; want %v, %v", s.name, op, a, b, u128Big(got, s.signed), gotOK, want, wantOK)
	}
}

func FuzzI64F64Mul(f *testing.F) {
	addWidePairs(f)
	s := fxI64F64
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		ar, br := u128{ahi, alo}, u128{bhi, blo}
		A, B := u128Big(ar, true), u128Big(br, true)
		checkWide(t, s, "SatMul", A, B, I64F64{ar}.SatMul(I64F64{br}).r, true, s.satMul(A, B), true)
		for _, frac := range []uint{32, 64} {
			sf := fx{"i128", 128, frac, true}
			got, ok := mulShrSigned(ar, br, frac)
			want, wantOK := sf.mul(A, B)
			checkWide(t, sf, fmt.Sprint("mulShrSigned/", frac), A, B, got, ok, want, wantOK)
		}
		ua, ub := u128Big(ar, false), u128Big(br, false)
		if got, want := u256Big(mul128(ar, br)), new(big.Int).Mul(ua, ub); got.Cmp(want) != 0 {
			t.Fatalf("mul128(%v, %v) = %v, want %v", ua, ub, got, want)
		}
	})
}

func FuzzI64F64Div(f *testing.F) {
	addWidePairs(f)
	s := fxI64F64
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		ar, br := u128{ahi, alo}, u128{bhi, blo}
		A, B := u128Big(ar, true), u128Big(br, true)
		got, ok := I64F64{ar}.CheckedDiv(I64F64{br})
		want, wantOK := s.div(A, B)
		checkWide(t, s, "CheckedDiv", A, B, got.r, ok, want, wantOK)
		checkWide(t, s, "SafeDiv", A, B, I64F64{ar}.SafeDiv(I64F64{br}).r, true, s.safeDiv(A, B), true)
		s32 := fxI96F32
		g32, ok := I96F32{ar}.CheckedDiv(I96F32{br})
		w32, wantOK := s32.div(A, B)
		checkWide(t, s32, "CheckedDiv", A, B, g32.r, ok, w32, wantOK)
	})
}

func fuzzUnsignedDiv(t *testing.T, s fx, ar, br u128, checked func(a, b u128) (u128, bool), safe func(a, b u128) u128) {
	A, B := u128Big(ar, false), u128Big(br, false)
	got, ok := checked(ar, br)
	want, wantOK := s.div(A, B)
	checkWide(t, s, "CheckedDiv", A, B, got, ok, want, wantOK)
	checkWide(t, s, "SafeDiv", A, B, safe(ar, br), true, s.safeDiv(A, B), true)
	if !br.isZero() {
		// div256 on the same operands, at every shift the types use
		n := new(big.Int).Lsh(A, s.frac)
		if got, want := u256Big(div256(bigU256(n), br)), new(big.Int).Quo(n, B); got.Cmp(want) != 0 {
			t.Fatalf("div256(%v, %v) = %v, want %v", n, B, got, want)
		}
	}
}

func FuzzU96F32Div(f *testing.F) {
	addWidePairs(f)
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		fuzzUnsignedDiv(t, fxU96F32, u128{ahi, alo}, u128{bhi, blo},
			func(a, b u128) (u128, bool) { q, ok := U96F32{a}.CheckedDiv(U96F32{b}); return q.r, ok },
			func(a, b u128) u128 { return U96F32{a}.SafeDiv(U96F32{b}).r })
	})
}

func FuzzU64F64Div(f *testing.F) {
	addWidePairs(f)
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		fuzzUnsignedDiv(t, fxU64F64, u128{ahi, alo}, u128{bhi, blo},
			func(a, b u128) (u128, bool) { q, ok := U64F64{a}.CheckedDiv(U64F64{b}); return q.r, ok },
			func(a, b u128) u128 { return U64F64{a}.SafeDiv(U64F64{b}).r })
	})
}

func FuzzDiv256(f *testing.F) {
	for i, w := range fuzzWordSeeds {
		f.Add(w, fuzzWordSeeds[(i+1)%len(fuzzWordSeeds)], uint64(0), w, uint64(1<<63), w)
		f.Add(uint64(0), w, w, w, w, uint64(math.MaxUint64))
		f.Add(w, w, w, w, uint64(0), w)
	}
	f.Fuzz(func(t *testing.T, n3, n2, n1, n0, dhi, dlo uint64) {
		d := u128{dhi, dlo}
		if d.isZero() {
			return
		}
		n := u256{n0, n1, n2, n3}
		N, D := u256Big(n), u128Big(d, false)
		if got, want := u256Big(div256(n, d)), new(big.Int).Quo(N, D); got.Cmp(want) != 0 {
			t.Fatalf("div256(%#x, %#x) = %#x, want %#x", N, D, got, want)
		}
	})
}

func FuzzExp(f *testing.F) {
	for _, x := range fuzzI64Seeds {
		f.Add(x)
	}
	for _, x := range []int64{1, -1, 20<<32 + 1, 21<<32 - 1, 41 << 31, -(41 << 31), 1 << 31, 25 << 32, -25 << 32} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x int64) {
		// Most of int64 is outside the series' domain; fold half the inputs
		// into [-32, 32] where the interesting behaviour is.
		if x&1 == 1 {
			x %= 32 << 32
		}
		got, ok := Exp(I32F32(x))
		want, wantOK := refExp(x)
		if ok != wantOK || (ok && int64(got) != want) {
			t.Fatalf("Exp(raw %d) = %d, %v; want %d, %v", x, int64(got), ok, want, wantOK)
		}
		if gs, ws := ExpSafe(I32F32(x)), refExpSafe(x); int64(gs) != ws {
			t.Fatalf("ExpSafe(raw %d) = %d; want %d", x, int64(gs), ws)
		}
	})
}

// ---------------------------------------------------------------------------
// Benchmarks.

var (
	sinkI32  I32F32
	sinkI64  I64F64
	benchI32 = func() []I32F32 {
		g := newGen(90)
		v := make([]I32F32, 1024)
		for i := range v {
			// moderate magnitudes, so that most products and quotients fit
			v[i] = I32F32(g.r.Int64N(2000<<32) - 1000<<32)
			if v[i] == 0 {
				v[i] = 1
			}
		}
		return v
	}()
	benchI64F64 = func() []I64F64 {
		g := newGen(91)
		v := make([]I64F64, 1024)
		for i := range v {
			x := g.bits(100)
			x.Add(x, bigOne)
			v[i] = I64F64{bigU128(g.randSign(x))}
		}
		return v
	}()
)

func BenchmarkI32F32Mul(b *testing.B) {
	var acc I32F32
	for i := 0; b.Loop(); i++ {
		acc ^= benchI32[i&1023].SatMul(benchI32[(i+7)&1023])
	}
	sinkI32 = acc
}

func BenchmarkI32F32Div(b *testing.B) {
	var acc I32F32
	for i := 0; b.Loop(); i++ {
		acc ^= benchI32[i&1023].SafeDiv(benchI32[(i+7)&1023])
	}
	sinkI32 = acc
}

func BenchmarkI64F64Div(b *testing.B) {
	var acc I64F64
	for i := 0; b.Loop(); i++ {
		acc = acc.Add(benchI64F64[i&1023].SafeDiv(benchI64F64[(i+7)&1023]))
	}
	sinkI64 = acc
}

func BenchmarkExpSafe(b *testing.B) {
	xs := make([]I32F32, 1024)
	g := newGen(92)
	for i := range xs {
		xs[i] = I32F32(g.r.Int64N(40<<32+1) - 20<<32)
	}
	var acc I32F32
	for i := 0; b.Loop(); i++ {
		acc ^= ExpSafe(xs[i&1023])
	}
	sinkI32 = acc
}

// mulShrSigned's magnitude can be exactly 2^128-1 with dropped low bits: the
// floor of a negative product then needs 2^128, which must be reported as an
// overflow rather than wrapped to zero. Such products exist: a multiple of a
// ~2^(frac+1) factor always lands in an interval of length 2^frac.
func TestMulShrSignedCarry(t *testing.T) {
	for _, frac := range []uint{32, 64} {
		s := fx{"i128", 128, frac, true}
		lo := new(big.Int).Lsh(new(big.Int).Sub(p2(128), bigOne), frac) // (2^128-1)·2^frac
		hi := new(big.Int).Sub(p2(128+frac), bigOne)
		found := 0
		for k := int64(1); found < 8 && k < 10000; k++ {
			a := new(big.Int).Add(p2(frac+1), big.NewInt(k))
			b := new(big.Int).Quo(new(big.Int).Add(lo, a), a) // smallest b with a·b > lo
			p := new(big.Int).Mul(a, b)
			if p.Cmp(hi) > 0 || b.Cmp(s.max()) > 0 {
				continue
			}
			found++
			for _, sg := range [][2]int{{-1, 1}, {1, -1}, {1, 1}, {-1, -1}} {
				x, y := new(big.Int).Mul(a, big.NewInt(int64(sg[0]))), new(big.Int).Mul(b, big.NewInt(int64(sg[1])))
				got, ok := mulShrSigned(bigU128(x), bigU128(y), frac)
				want, wantOK := s.mul(x, y)
				if ok != wantOK || (ok && u128Big(got, true).Cmp(want) != 0) {
					t.Errorf("mulShrSigned(%v, %v, %d) = %v, %v; want %v, %v", x, y, frac, u128Big(got, true), ok, want, wantOK)
				}
				if frac == 64 {
					if got, want := u128Big(I64F64{bigU128(x)}.SatMul(I64F64{bigU128(y)}).r, true), s.satMul(x, y); got.Cmp(want) != 0 {
						t.Errorf("I64F64 SatMul(%v, %v) = %v, want %v", x, y, got, want)
					}
				} else {
					if got, want := u128Big(I96F32{bigU128(x)}.SatMul(I96F32{bigU128(y)}).r, true), s.satMul(x, y); got.Cmp(want) != 0 {
						t.Errorf("I96F32 SatMul(%v, %v) = %v, want %v", x, y, got, want)
					}
				}
			}
		}
		if found == 0 {
			t.Fatalf("frac %d: no product with magnitude 2^128-1 after the shift found", frac)
		}
	}
}

// FuzzWideOps checks the whole operation set of the four 128-bit types
// (fullOps) against math/big on the fuzzer's words.
func FuzzWideOps(f *testing.F) {
	addWidePairs(f)
	i64 := func(v *big.Int) I64F64 { return I64F64{bigU128(v)} }
	i96 := func(v *big.Int) I96F32 { return I96F32{bigU128(v)} }
	u96 := func(v *big.Int) U96F32 { return U96F32{bigU128(v)} }
	u64 := func(v *big.Int) U64F64 { return U64F64{bigU128(v)} }
	sets := []struct {
		s   fx
		ops []binOp
	}{
		{fxI64F64, fullOps(fxI64F64, i64, func(a I64F64) *big.Int { return u128Big(a.r, true) },
			I64F64.CheckedAdd, I64F64.CheckedSub, I64F64.CheckedMul, I64F64.CheckedDiv,
			I64F64.SatAdd, I64F64.SatSub, I64F64.SatMul, I64F64.SafeDiv, I64F64.SatDiv, I64F64.Add, I64F64.Sub)},
		{fxI96F32, fullOps(fxI96F32, i96, func(a I96F32) *big.Int { return u128Big(a.r, true) },
			I96F32.CheckedAdd, I96F32.CheckedSub, I96F32.CheckedMul, I96F32.CheckedDiv,
			I96F32.SatAdd, I96F32.SatSub, I96F32.SatMul, I96F32.SafeDiv, I96F32.SatDiv, I96F32.Add, I96F32.Sub)},
		{fxU96F32, fullOps(fxU96F32, u96, func(a U96F32) *big.Int { return u128Big(a.r, false) },
			U96F32.CheckedAdd, U96F32.CheckedSub, U96F32.CheckedMul, U96F32.CheckedDiv,
			U96F32.SatAdd, U96F32.SatSub, U96F32.SatMul, U96F32.SafeDiv, U96F32.SatDiv, nil, nil)},
		{fxU64F64, fullOps(fxU64F64, u64, func(a U64F64) *big.Int { return u128Big(a.r, false) },
			U64F64.CheckedAdd, U64F64.CheckedSub, U64F64.CheckedMul, U64F64.CheckedDiv,
			U64F64.SatAdd, U64F64.SatSub, U64F64.SatMul, U64F64.SafeDiv, U64F64.SatDiv, nil, nil)},
	}
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		for _, set := range sets {
			a, b := u128Big(u128{ahi, alo}, set.s.signed), u128Big(u128{bhi, blo}, set.s.signed)
			for _, op := range set.ops {
				if op.nonzero && b.Sign() == 0 {
					continue
				}
				got, gotOK := op.impl(a, b)
				want, wantOK := op.ref(a, b)
				if gotOK != wantOK || (wantOK && got.Cmp(want) != 0) {
					t.Fatalf("%s.%s(raw %v, raw %v) = %v, %v; want %v, %v", set.s.name, op.name, a, b, got, gotOK, want, wantOK)
				}
			}
		}
	})
}

// TestI64F64StringExact: String writes the exact decimal value, computed
// with integers only.
func TestI64F64StringExact(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"0", "0"},
		{"18446744073709551616", "1"},
		{"-4611686018427387904", "-0.25"},
		{"1", "0.0000000000000000000542101086242752217003726400434970855712890625"},
		{"-170141183460469231731687303715884105728", "-9223372036854775808"},
		{"170141183460469231731687303715884105727", "9223372036854775807.9999999999999999999457898913757247782996273599565029144287109375"},
		{"27670116110564327424", "1.5"},
	} {
		v, err := ParseI64F64Raw(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.String(); got != c.want {
			t.Errorf("I64F64(raw %s).String() = %q, want %q", c.raw, got, c.want)
		}
	}
}

// checkDivI32F32 compares DivI32F32 with the general path it shortens and,
// on the short path's domain, with floor(a·2^32 / b) in big integers.
func checkDivI32F32(t *testing.T, ar, br u128) {
	t.Helper()
	a, b := I64F64{ar}, I64F64{br}
	got, want := a.DivI32F32(b), a.SafeDiv(b).I32F32()
	if got != want {
		t.Fatalf("I64F64(raw %v).DivI32F32(raw %v) = %d, SafeDiv then I32F32 = %d", u128Big(ar, true), u128Big(br, true), got, want)
	}
	if !ar.neg() && !br.neg() && !br.isZero() && ar.cmp(br) <= 0 {
		A, B := u128Big(ar, false), u128Big(br, false)
		q := new(big.Int).Quo(new(big.Int).Lsh(A, 32), B)
		if q.Cmp(big.NewInt(int64(got))) != 0 {
			t.Fatalf("DivI32F32(raw %v, raw %v) = %d, want floor(a·2^32/b) = %v", A, B, got, q)
		}
	}
}

// TestDivI32F32 covers the stake share's short path at its edges (the
// divisor below and above 2^64, every normalization shift, a == b, a just
// below b, zero) and at random shares, and the general path's inputs
// (negative, zero divisor, a > b).
func TestDivI32F32(t *testing.T) {
	edge := []u128{{0, 0}, {0, 1}, {0, 2}, {0, 1<<32 - 1}, {0, 1 << 32}, {0, 1<<63 + 1}, {0, ^uint64(0)},
		{1, 0}, {1, 1}, {1, ^uint64(0)}, {1 << 31, 0}, {1<<62 + 5, 7}, {1<<63 - 1, ^uint64(0)},
		{1 << 63, 0}, {^uint64(0), ^uint64(0)}}
	for _, a := range edge {
		for _, b := range edge {
			checkDivI32F32(t, a, b)
		}
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range 200_000 {
		// b of every bit length up to 127, a a share of it (a <= b) or
		// b minus a little, or anything.
		bl := r.IntN(127) + 1
		var b u128
		if bl > 64 {
			b = u128{r.Uint64()>>(128-bl) | 1<<(bl-65), r.Uint64()}
		} else {
			b = u128{0, r.Uint64()>>(64-bl) | 1<<(bl-1)}
		}
		var a u128
		switch r.IntN(4) {
		case 0:
			a = b
		case 1:
			a, _ = b.sub(u128{0, r.Uint64() & 0xff})
		case 2:
			w := shl128(b, 0).shr(uint(r.IntN(128)))
			a = u128{w[1], w[0]}
		default:
			a = u128{r.Uint64(), r.Uint64()}
		}
		checkDivI32F32(t, a, b)
	}
}

func FuzzI64F64DivI32F32(f *testing.F) {
	addWidePairs(f)
	f.Fuzz(func(t *testing.T, ahi, alo, bhi, blo uint64) {
		checkDivI32F32(t, u128{ahi, alo}, u128{bhi, blo})
		// the same divisor with the numerator folded below it: the short path
		if b := (u128{bhi &^ (1 << 63), blo}); !b.isZero() {
			a := u128{ahi % (b.hi + 1), alo}
			if a.cmp(b) > 0 {
				a = u128{0, alo % max(b.lo, 1)}
			}
			checkDivI32F32(t, a, b)
		}
	})
}

// BenchmarkDivI32F32 normalizes 256 stakes (a subnet's shares) the short
// way and, the baseline, through SafeDiv then I32F32.
func BenchmarkDivI32F32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	stakes := make([]I64F64, 256)
	var sum I64F64
	for i := range stakes {
		stakes[i] = I64F64FromU64(r.Uint64() >> 12) // rao amounts: the sum stays below 2^60
		sum = sum.Add(stakes[i])
	}
	out := make([]I32F32, len(stakes))
	b.Run("short", func(b *testing.B) {
		for b.Loop() {
			for i, t := range stakes {
				out[i] = t.DivI32F32(sum)
			}
		}
	})
	b.Run("safediv", func(b *testing.B) {
		for b.Loop() {
			for i, t := range stakes {
				out[i] = t.SafeDiv(sum).I32F32()
			}
		}
	})
}
