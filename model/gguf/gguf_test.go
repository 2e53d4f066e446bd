package gguf

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func allMetadata(t testing.TB, w *Writer) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddString("general.architecture", "llama"))
	must(w.AddUint8("u8", 200))
	must(w.AddInt8("i8", -100))
	must(w.AddUint16("u16", 60000))
	must(w.AddInt16("i16", -30000))
	must(w.AddUint32("u32", 4000000000))
	must(w.AddInt32("i32", -2000000000))
	must(w.AddFloat32("f32", 1e-5))
	must(w.AddBool("bool", true))
	must(w.AddBool("boolf", false))
	must(w.AddUint64("u64", 1<<63+5))
	must(w.AddInt64("i64", -1<<62))
	must(w.AddFloat64("f64", 10000.5))
	must(w.AddString("empty", ""))
	must(w.AddArray("a.u8", []uint8{1, 2, 255}))
	must(w.AddArray("a.i8", []int8{-1, 2}))
	must(w.AddArray("a.u16", []uint16{1, 65535}))
	must(w.AddArray("a.i16", []int16{-1, 300}))
	must(w.AddArray("a.u32", []uint32{7}))
	must(w.AddArray("a.i32", []int32{-7, 1, 2, 3}))
	must(w.AddArray("a.f32", []float32{0.5, -1.25, float32(math.Inf(1))}))
	must(w.AddArray("a.bool", []bool{true, false, true}))
	must(w.AddArray("a.str", []string{"<s>", "", "héllo"}))
	must(w.AddArray("a.u64", []uint64{1 << 40}))
	must(w.AddArray("a.i64", []int64{-1 << 40}))
	must(w.AddArray("a.f64", []float64{math.Pi}))
	must(w.AddArray("a.empty", []string{}))
	must(w.AddArray("a.nested", []Array{{Type: TypeInt32, Values: []int32{1, 2}}, {Type: TypeString, Values: []string{"x"}}}))
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 1, 64} {
		w := NewWriter()
		if align != 0 {
			if err := w.AddUint32("general.alignment", align); err != nil {
				t.Fatal(err)
			}
		}
		allMetadata(t, w)
		src := make([]float32, 64)
		for i := range src {
			src[i] = float32(i-30) * 0.37
		}
		f16 := make([]byte, 128)
		bf16 := make([]byte, 128)
		f32 := make([]byte, 256)
		for i, v := range src {
			le.PutUint16(f16[2*i:], Float32ToHalf(v))
			le.PutUint16(bf16[2*i:], Float32ToBF16(v))
			le.PutUint32(f32[4*i:], math.Float32bits(v))
		}
		q8, _ := QuantizeQ8_0(src)
		q4, _ := QuantizeQ4_0(src)
		tensors := []struct {
			name string
			typ  GGMLType
			dims []uint64
			raw  []byte
		}{
			{"f32", TypeF32, []uint64{8, 2, 2, 2}, f32},
			{"f16", TypeF16, []uint64{64}, f16},
			{"bf16", TypeBF16, []uint64{16, 4}, bf16},
			{"q8", TypeQ8_0, []uint64{32, 2}, q8},
			{"q4", TypeQ4_0, []uint64{64, 1}, q4},
			{"odd", TypeF32, []uint64{3}, f32[:12]},
		}
		for _, tt := range tensors {
			if err := w.AddTensor(tt.name, tt.typ, tt.dims, tt.raw); err != nil {
				t.Fatal(err)
			}
		}
		data, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		wantAlign := uint64(32)
		if align != 0 {
			wantAlign = uint64(align)
		}
		if f.Version != 3 || f.Alignment != wantAlign || f.DataOffset%wantAlign != 0 {
			t.Fatalf("version %d alignment %d dataoffset %d", f.Version, f.Alignment, f.DataOffset)
		}
		if !reflect.DeepEqual(f.Metadata, w.kvs) {
			t.Fatalf("metadata mismatch:\n got %#v\nwant %#v", f.Metadata, w.kvs)
		}
		for _, tt := range tensors {
			info, raw, err := f.Tensor(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != tt.typ || !reflect.DeepEqual(info.Dims, tt.dims) || !bytes.Equal(raw, tt.raw) {
				t.Fatalf("tensor %s mismatch: %+v", tt.name, info)
			}
			if info.Offset%wantAlign != 0 {
				t.Fatalf("tensor %s offset %d unaligned", tt.name, info.Offset)
			}
			n := int(info.Elements())
			dst := make([]float32, n)
			if err := ToFloat32(info.Type, raw, n, dst); err != nil {
				t.Fatal(err)
			}
			tol := map[GGMLType]float64{TypeF32: 0, TypeF16: 0.01, TypeBF16: 0.07, TypeQ8_0: 0.05, TypeQ4_0: 0.8}[tt.typ]
			for i := range dst {
				if d := math.Abs(float64(dst[i] - src[i])); d > tol {
					t.Fatalf("tensor %s elem %d: %v vs %v", tt.name, i, dst[i], src[i])
				}
			}
		}
		// Parse of the same bytes in memory agrees with the mmap.
		g, err := Parse(data)
		if err != nil || !reflect.DeepEqual(g.Tensors, f.Tensors) {
			t.Fatalf("Parse: %v", err)
		}
		// No copy: the tensor slice aliases the input.
		info, raw, _ := g.Tensor("q8")
		if &raw[0] != &data[g.DataOffset+info.Offset] {
			t.Fatal("Tensor copied its data")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.Tensor("f32"); err == nil {
			t.Fatal("Tensor after Close succeeded")
		}
	}
}

func TestAccessors(t *testing.T) {
	w := NewWriter()
	allMetadata(t, w)
	data, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.String("general.architecture"); err != nil || s != "llama" {
		t.Fatal(s, err)
	}
	if u, err := f.Uint("u32"); err != nil || u != 4000000000 {
		t.Fatal(u, err)
	}
	if u, err := f.Uint("u8"); err != nil || u != 200 {
		t.Fatal(u, err)
	}
	if i, err := f.Int("i16"); err != nil || i != -30000 {
		t.Fatal(i, err)
	}
	if x, err := f.Float("f32"); err != nil || float32(x) != 1e-5 {
		t.Fatal(x, err)
	}
	if b, err := f.Bool("bool"); err != nil || !b {
		t.Fatal(b, err)
	}
	if s, err := f.Strings("a.str"); err != nil || !reflect.DeepEqual(s, []string{"<s>", "", "héllo"}) {
		t.Fatal(s, err)
	}
	if s, err := f.Ints("a.i32"); err != nil || !reflect.DeepEqual(s, []int64{-7, 1, 2, 3}) {
		t.Fatal(s, err)
	}
	if s, err := f.Ints("a.u16"); err != nil || !reflect.DeepEqual(s, []int64{1, 65535}) {
		t.Fatal(s, err)
	}
	if s, err := f.Floats("a.f64"); err != nil || s[0] != float32(math.Pi) {
		t.Fatal(s, err)
	}
	errCases := []struct {
		call func() error
		want string
		is   error
	}{
		{func() error { _, err := f.String("nope"); return err }, `"nope"`, ErrNotFound},
		{func() error { _, err := f.String("u32"); return err }, `key "u32": wrong type: is u32, want string`, ErrWrongType},
		{func() error { _, err := f.Uint("i8"); return err }, `key "i8": value -100 is negative`, nil},
		{func() error { _, err := f.Uint("f32"); return err }, `key "f32"`, ErrWrongType},
		{func() error { _, err := f.Int("u64"); return err }, `key "u64": value 9223372036854775813 overflows int64`, nil},
		{func() error { _, err := f.Float("u8"); return err }, `key "u8"`, ErrWrongType},
		{func() error { _, err := f.Bool("u8"); return err }, `key "u8"`, ErrWrongType},
		{func() error { _, err := f.Strings("a.i32"); return err }, `key "a.i32": wrong type: is array of i32, want array of string`, ErrWrongType},
		{func() error { _, err := f.Strings("u8"); return err }, `key "u8"`, ErrWrongType},
		{func() error { _, err := f.Ints("a.f32"); return err }, `key "a.f32"`, ErrWrongType},
		{func() error { _, err := f.Floats("a.str"); return err }, `key "a.str"`, ErrWrongType},
		{func() error { _, _, err := f.Tensor("w"); return err }, `tensor "w"`, ErrNotFound},
	}
	for i, c := range errCases {
		err := c.call()
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("case %d: got %v, want %q", i, err, c.want)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	cases := []struct {
		err  error
		want string
	}{
		{w.AddKV("k", TypeUint32, int32(1)), `key "k": value of Go type int32 does not match u32`},
		{w.AddKV("k", ValueType(99), 1), `key "k": unknown value type 99`},
		{w.AddArray("k", []int{1}), `key "k": unsupported array type []int`},
		{w.AddUint32("general.alignment", 3), `key "general.alignment": want a u32 power of two`},
		{w.AddTensor("t", TypeQ8_0, []uint64{16}, make([]byte, 17)), `tensor "t": row length 16 is not a multiple of the Q8_0 block size 32`},
		{w.AddTensor("t", TypeF32, []uint64{4}, make([]byte, 15)), `tensor "t": 15 bytes of data, want 16`},
		{w.AddTensor("t", TypeQ4_K, []uint64{256}, nil), `tensor "t": unsupported tensor type Q4_K`},
		{w.AddTensor("t", TypeF32, []uint64{4, 0}, nil), `tensor "t": dimension 1 is zero`},
		{w.AddTensor("t", TypeF32, []uint64{1, 1, 1, 1, 1}, nil), `tensor "t": 5 dims`},
	}
	for i, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("case %d: got %v, want %q", i, c.err, c.want)
		}
	}
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("WriteTo after failed Add succeeded")
	}
	w = NewWriter()
	w.AddString("a", "x")
	if err := w.AddString("a", "y"); err == nil || !strings.Contains(err.Error(), `key "a": duplicate`) {
		t.Error(err)
	}
	w.AddTensor("t", TypeF32, []uint64{1}, make([]byte, 4))
	if err := w.AddTensor("t", TypeF32, []uint64{1}, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), `tensor "t": duplicate`) {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF\x01\x00\x00\x00"), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "bad.gguf: gguf: unsupported version 1") {
		t.Errorf("bad file: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "truncated file") {
		t.Errorf("empty file: %v", err)
	}
	// The non-mmap fallback reads the same bytes.
	w := NewWriter()
	w.AddTensor("x", TypeF32, []uint64{1}, []byte{0, 0, 128, 63})
	data, _ := w.Bytes()
	path := filepath.Join(dir, "x.gguf")
	os.WriteFile(path, data, 0o644)
	src, err := readSource(path)
	if err != nil || !bytes.Equal(src.Bytes(), data) || src.Close() != nil {
		t.Fatal(err)
	}
}
