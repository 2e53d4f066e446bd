package gguf

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestHalfKnown(t *testing.T) {
	cases := []struct {
		h uint16
		f float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x3800, 0.5}, {0x7bff, 65504},
		{0x0001, float32(math.Ldexp(1, -24))}, {0x03ff, float32(math.Ldexp(1023, -24))},
		{0x0400, float32(math.Ldexp(1, -14))}, {0x8001, -float32(math.Ldexp(1, -24))},
		{0x3555, 0.333251953125}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := HalfToFloat32(c.h); got != c.f {
			t.Errorf("HalfToFloat32(%#04x) = %v, want %v", c.h, got, c.f)
		}
		if got := Float32ToHalf(c.f); got != c.h {
			t.Errorf("Float32ToHalf(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if b := math.Float32bits(HalfToFloat32(0x8000)); b != 0x80000000 {
		t.Errorf("-0 -> %#x", b)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if f := HalfToFloat32(h); !math.IsNaN(float64(f)) {
			t.Errorf("%#04x -> %v, want NaN", h, f)
		}
	}
	if h := Float32ToHalf(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN -> %#04x", h)
	}
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{65520, 0x7c00}, {math.Nextafter32(65520, 0), 0x7bff}, {1e10, 0x7c00}, {-1e10, 0xfc00},
		{float32(math.Ldexp(1, -25)), 0}, {math.Nextafter32(float32(math.Ldexp(1, -25)), 1), 1},
		{float32(math.Ldexp(3, -25)), 2}, // tie between subnormals 1 and 2 -> even
		{1e-30, 0}, {-1e-30, 0x8000},
	} {
		if got := Float32ToHalf(c.f); got != c.h {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
}

// Every half survives a round trip, and every midpoint rounds to even.
func TestHalfExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue
		}
		if got := Float32ToHalf(HalfToFloat32(h)); got != h {
			t.Fatalf("round trip %#04x -> %#04x", h, got)
		}
		if h&0x7fff >= 0x7bff {
			continue
		}
		lo, hi := HalfToFloat32(h), HalfToFloat32(h+1)
		mid := (lo + hi) / 2
		want := h
		if h&1 == 1 {
			want = h + 1
		}
		if got := Float32ToHalf(mid); got != want {
			t.Fatalf("midpoint of %#04x,%#04x: got %#04x", h, h+1, got)
		}
		if got := Float32ToHalf(math.Nextafter32(mid, hi)); got != h+1 {
			t.Fatalf("above midpoint of %#04x: got %#04x", h, got)
		}
		if got := Float32ToHalf(math.Nextafter32(mid, lo)); got != h {
			t.Fatalf("below midpoint of %#04x: got %#04x", h, got)
		}
	}
}

func TestBF16(t *testing.T) {
	if f := BF16ToFloat32(0x3f80); f != 1 {
		t.Error(f)
	}
	if f := BF16ToFloat32(0xc0a0); f != -5 {
		t.Error(f)
	}
	if h := Float32ToBF16(1 + 1.0/256); h != 0x3f80 { // tie -> even
		t.Errorf("%#x", h)
	}
	if h := Float32ToBF16(1 + 3.0/256); h != 0x3f82 { // tie -> even
		t.Errorf("%#x", h)
	}
	if h := Float32ToBF16(float32(math.NaN())); !math.IsNaN(float64(BF16ToFloat32(h))) {
		t.Errorf("NaN -> %#x", h)
	}
}

func TestDequantKnown(t *testing.T) {
	// Q8_0: d = 0.5
	q8 := make([]byte, 34)
	le.PutUint16(q8, 0x3800)
	for j, q := range []int8{-128, -1, 0, 1, 127} {
		q8[2+j] = byte(q)
	}
	dst := make([]float32, 32)
	if err := ToFloat32(TypeQ8_0, q8, 32, dst); err != nil {
		t.Fatal(err)
	}
	for j, want := range []float32{-64, -0.5, 0, 0.5, 63.5, 0} {
		if dst[j] != want {
			t.Errorf("Q8_0[%d] = %v, want %v", j, dst[j], want)
		}
	}
	// Q4_0: d = 2; low nibbles are elements 0..15, high nibbles 16..31.
	q4 := make([]byte, 18)
	le.PutUint16(q4, 0x4000)
	for j := 0; j < 16; j++ {
		q4[2+j] = 0x88
	}
	q4[2], q4[3], q4[17] = 0xf0, 0x98, 0x3c
	if err := ToFloat32(TypeQ4_0, q4, 32, dst); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 32)
	want[0], want[16] = -16, 14
	want[1], want[17] = 0, 2
	want[15], want[31] = 8, -10
	for j := range want {
		if dst[j] != want[j] {
			t.Errorf("Q4_0[%d] = %v, want %v", j, dst[j], want[j])
		}
	}
	// F16 subnormal, BF16, F32
	f16 := []byte{0x01, 0x00, 0x00, 0x3c}
	if err := ToFloat32(TypeF16, f16, 2, dst); err != nil || dst[0] != float32(math.Ldexp(1, -24)) || dst[1] != 1 {
		t.Error(dst[:2], err)
	}
	if err := ToFloat32(TypeBF16, []byte{0x80, 0x3f}, 1, dst); err != nil || dst[0] != 1 {
		t.Error(dst[0], err)
	}
	if err := ToFloat32(TypeF32, []byte{0, 0, 0xc0, 0x7f}, 1, dst); err != nil || !math.IsNaN(float64(dst[0])) {
		t.Error(dst[0], err)
	}
}

func TestDequantErrors(t *testing.T) {
	dst := make([]float32, 64)
	cases := []struct {
		err  error
		want string
	}{
		{ToFloat32(TypeQ4_K, make([]byte, 1000), 256, dst), "unsupported tensor type Q4_K"},
		{ToFloat32(TypeQ8_0, make([]byte, 34), 31, dst), "31 elements is not a multiple of the Q8_0 block size 32"},
		{ToFloat32(TypeQ4_0, make([]byte, 35), 64, dst), "Q4_0: 64 elements need 36 bytes, have 35"},
		{ToFloat32(TypeF32, make([]byte, 400), 100, dst), "destination holds 64 elements, need 100"},
	}
	for i, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("case %d: got %v, want %q", i, c.err, c.want)
		}
	}
	if n, err := RowSize(TypeQ4_0, 64); n != 36 || err != nil {
		t.Error(n, err)
	}
	if n, err := RowSize(TypeQ8_0, 4096); n != 4352 || err != nil {
		t.Error(n, err)
	}
	if _, err := QuantizeQ8_0(make([]float32, 33)); err == nil {
		t.Error("Q8_0 accepted 33 values")
	}
	if _, err := QuantizeQ4_0(make([]float32, 33)); err == nil {
		t.Error("Q4_0 accepted 33 values")
	}
}

func TestQuantizeQ8_0Known(t *testing.T) {
	x := make([]float32, 32)
	x[0], x[1], x[2], x[3], x[4], x[5] = 127, 2.5, -2.5, 0.5, -0.5, -126.49
	b, _ := QuantizeQ8_0(x)
	if d := le.Uint16(b); d != 0x3c00 {
		t.Fatalf("d = %#04x, want 1.0", d)
	}
	for j, want := range []int8{127, 3, -3, 1, -1, -126, 0} { // roundf: half away from zero
		if got := int8(b[2+j]); got != want {
			t.Errorf("q[%d] = %d, want %d", j, got, want)
		}
	}
	for j := range x {
		x[j] = float32(j - 16)
	}
	b, _ = QuantizeQ8_0(x)
	if d := le.Uint16(b); d != Float32ToHalf(16.0/127) {
		t.Fatalf("d = %#04x", d)
	}
	for j := range x {
		want := int8(math.Round(float64(j-16) * 127 / 16))
		if got := int8(b[2+j]); got != want {
			t.Errorf("q[%d] = %d, want %d", j, got, want)
		}
	}
	b, _ = QuantizeQ8_0(make([]float32, 32))
	for _, c := range b {
		if c != 0 {
			t.Fatal("zero block not all zero")
		}
	}
}

func TestQuantizeQ4_0Known(t *testing.T) {
	x := make([]float32, 32)
	// max = -8 (first of equal magnitude wins) -> d = 1, id = 1
	x[0], x[1], x[2], x[3], x[4], x[16], x[17], x[18] = -8, 7, 8, -0.5, 0.49, -3.7, 3.5, -7.6
	b, _ := QuantizeQ4_0(x)
	if d := le.Uint16(b); d != 0x3c00 {
		t.Fatalf("d = %#04x, want 1.0", d)
	}
	// q = min(15, trunc(x + 8.5))
	lo := []byte{0, 15, 15, 8, 8}
	hi := []byte{4, 12, 0}
	for j := 0; j < 16; j++ {
		wl, wh := byte(8), byte(8)
		if j < len(lo) {
			wl = lo[j]
		}
		if j < len(hi) {
			wh = hi[j]
		}
		if b[2+j] != wl|wh<<4 {
			t.Errorf("qs[%d] = %#02x, want %#02x", j, b[2+j], wl|wh<<4)
		}
	}
	// Positive max: d = 4/-8 = -0.5, so x = 4 -> q 0 and x = -4 -> 15 (clamped from 16).
	x = make([]float32, 32)
	x[0], x[1] = 4, -4
	b, _ = QuantizeQ4_0(x)
	if d := HalfToFloat32(le.Uint16(b)); d != -0.5 || b[2] != 0x80 || b[3] != 0x8f {
		t.Fatalf("d=%v qs=%#x %#x", d, b[2], b[3])
	}
	dst := make([]float32, 32)
	ToFloat32(TypeQ4_0, b, 32, dst)
	if dst[0] != 4 || dst[1] != -3.5 || dst[2] != 0 {
		t.Fatal(dst[:3])
	}
}

func TestQuantizeErrorBound(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	x := make([]float32, 32*64)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * float32(math.Pow(10, float64(i/32%6-3)))
	}
	dst := make([]float32, len(x))
	for _, c := range []struct {
		typ  GGMLType
		q    func([]float32) ([]byte, error)
		frac float64 // max error as a fraction of the block's amax
	}{{TypeQ8_0, QuantizeQ8_0, 0.5/127 + 1e-3}, {TypeQ4_0, QuantizeQ4_0, 1.0/8 + 1e-3}} {
		b, err := c.q(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := ToFloat32(c.typ, b, len(x), dst); err != nil {
			t.Fatal(err)
		}
		for blk := 0; blk < len(x)/32; blk++ {
			amax := 0.0
			for _, v := range x[blk*32 : blk*32+32] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for j := blk * 32; j < blk*32+32; j++ {
				if e := math.Abs(float64(dst[j] - x[j])); e > c.frac*amax {
					t.Fatalf("%s elem %d: %v vs %v (amax %v)", c.typ, j, dst[j], x[j], amax)
				}
			}
		}
	}
}
