package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"taobox/model/gguf"
)

// Weights in their file type, and the inner products over them.
//
// A matrix keeps the bytes of its GGUF tensor (usually a slice of the
// mmapped file, never a copy) in one of four types: F32, F16, Q8_0 or Q4_0.
// Every product W·x computes each output row as one inner product whose
// float32 operation order is fixed below, once, for every implementation:
// the AVX2 assembly (quant_amd64.s) and the portable Go (this file) give the
// same bits, so results do not depend on the CPU, on the thread count, or on
// whether a token goes through the one-token or the batched path.
//
//   - F32: run.c's order: val += float32(w[j]*x[j]) for j = 0..n-1, no FMA.
//     This is what keeps F32 files and llama2.c checkpoints bit-exact with
//     run.c. The assembly keeps that order by putting eight rows in the
//     eight lanes (an 8x8 transpose per group of columns) instead of
//     splitting a row across lanes; the attention scores q·k use it too.
//   - Q8_0 and Q4_0 against activations quantized to Q8 blocks (32 int8 and
//     a scale per block, see quantizeQ8): for each block b the
//     integer products are summed exactly in 8 int32 lanes, lane k holding
//     elements 4k..4k+3 (what VPMADDUBSW then VPMADDWD produce); with
//     d = float32(d_w) * d_x (float32 multiply), lane k of accumulator
//     p = b mod 2 takes acc[p][k] = acc[p][k] + float32(float32(lane_k) * d),
//     over the blocks in order. The row's value is hsum8 of the lane-wise
//     sum acc[0][k] + acc[1][k]. (Two accumulators let two add chains
//     overlap in the one-row-at-a-time kernel.)
//   - F16 against float32 x: acc[k] = acc[k] + float32(w[j]*x[j]) for
//     j ≡ k mod 8 over the first n&^7 elements, in order; then
//     r = hsum8(acc), then r = r + float32(w[j]*x[j]) for the n%8 tail.
//   - Attention (all types; F32 activations and cache): the scores q·k_t in
//     the F32 order above, the values xb[i] = Σ_t att[t]·v_t[i] accumulated
//     from 0 in t order, element by element, as run.c.
//
// The kernels read one weight row at a time, in address order: the memory
// system here streams that at ~29 GB/s from DRAM on one core, against 7-13
// GB/s for four rows interleaved (measured). Only the F32 kernel must
// interleave eight rows (the lanes); it prefetches each row ahead instead.
// The prompt path multiplies each Q8_0/Q4_0 row by four tokens per pass
// (dotQ8Rows4AVX2), loading and preparing each weight block once; every
// token's value is still the one-token kernel's, accumulator for
// accumulator. Where the CPU has AVX512-VNNI (with AVX512VL), VPDPBUSD
// replaces the VPMADDUBSW/VPMADDWD pair: the integer lanes are exact either
// way, so the bits do not change (about 10% faster per block).
//
// hsum8(a) = ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), the natural AVX
// reduction (extract the high half and add, add the high pair, add the odd
// lane).
//
// Multiply and add stay separate instructions (VMULPS, VADDPS) rather than
// FMA: Go has no float32 fused multiply-add (math.FMA is float64, and
// rounding its result again to float32 is not always the single rounding
// VFMADD does), so a fused kernel could not be matched bit for bit by the
// portable code. The integer kernels are bound by the integer pipeline and
// memory, not by the float adds, so the cost is small.
//
// Why Go assembly and not GOEXPERIMENT=simd (simd/archsimd): the build must
// work with a plain `go build` and `go test`, and archsimd is only compiled
// under the experiment flag, so it would still need this portable fallback
// plus a second build configuration to keep tested. Assembly needs neither,
// lets the loops keep every pointer in a register (no bounds checks, which
// halved archsimd's throughput in the spec's measurements), and exposes the
// exact instruction sequence that the bit-exactness contract above relies
// on. The price is that the kernels are amd64-only; other architectures run
// the Go versions (same bits, slower).

// matrix is a row-major [rows][cols] weight matrix in its file type.
type matrix struct {
	typ        gguf.GGMLType
	rows, cols int
	f32        []float32 // F32: rows*cols values
	raw        []byte    // F16, Q8_0, Q4_0: rows*rowBytes bytes
	rowBytes   int
}

// f32Matrix wraps float32 weights (no copy).
func f32Matrix(w []float32, rows, cols int) matrix {
	return matrix{typ: gguf.TypeF32, rows: rows, cols: cols, f32: w[:rows*cols], rowBytes: 4 * cols}
}

// newMatrix wraps raw tensor bytes of type t (no copy). F32 bytes become a
// []float32 view when the data is aligned (always so for mmapped GGUF).
func newMatrix(t gguf.GGMLType, raw []byte, rows, cols int) (matrix, error) {
	rb, err := gguf.RowSize(t, cols)
	if err != nil {
		return matrix{}, err
	}
	if len(raw) < rows*rb {
		return matrix{}, fmt.Errorf("%d bytes for %d rows of %d %s values, need %d", len(raw), rows, cols, t, rows*rb)
	}
	raw = raw[: rows*rb : rows*rb]
	switch t {
	case gguf.TypeF32:
		return f32Matrix(bytesToF32(raw), rows, cols), nil
	case gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0:
		return matrix{typ: t, rows: rows, cols: cols, raw: raw, rowBytes: rb}, nil
	}
	return matrix{}, fmt.Errorf("tensor type %s is not kept in memory (F32, F16, Q8_0, Q4_0)", t)
}

// quantized reports whether products with m take Q8-quantized activations.
func (m *matrix) quantized() bool { return m.typ == gguf.TypeQ8_0 || m.typ == gguf.TypeQ4_0 }

// sub returns rows [lo, hi) of m (no copy).
func (m *matrix) sub(lo, hi int) matrix {
	s := *m
	s.rows = hi - lo
	if m.typ == gguf.TypeF32 {
		s.f32 = m.f32[lo*m.cols : hi*m.cols]
	} else {
		s.raw = m.raw[lo*m.rowBytes : hi*m.rowBytes]
	}
	return s
}

// row dequantizes row i into dst[:cols] (the embedding lookup). For F32 it
// is a copy; for the others it is gguf.ToFloat32's arithmetic.
func (m *matrix) row(i int, dst []float32) {
	dst = dst[:m.cols]
	if m.typ == gguf.TypeF32 {
		copy(dst, m.f32[i*m.cols:(i+1)*m.cols])
		return
	}
	if err := gguf.ToFloat32(m.typ, m.raw[i*m.rowBytes:(i+1)*m.rowBytes], m.cols, dst); err != nil {
		panic(err) // sizes were checked when the matrix was built
	}
}

// q8Block is the number of values per quantization block.
const q8Block = 32

// quantizeQ8 quantizes x (len a multiple of 32) into Q8 blocks the way
// ggml's x86 quantize_row_q8_0 does for the activations of a Q8_0 or Q4_0
// product: per block, amax = max|x|, id = 127/amax (0 when amax is 0),
// q = round-half-even(x*id), and the scale d = amax/127 rounded to f16. The
// int8 values go to qs[len(x)], the scales (as float32) to ds[len(x)/32].
// |q| ≤ 127, which the VPMADDUBSW kernels rely on (no int16 saturation).
// Matching ggml here, rather than keeping the scale in float32, is what
// keeps greedy Q8_0 decoding on llama.cpp's tokens (TestLlamaCppGreedy).
func quantizeQ8(qs []int8, ds []float32, x []float32) {
	nb := len(x) / q8Block
	qs, ds = qs[:nb*q8Block], ds[:nb]
	for b := range nb {
		xs := x[b*q8Block : (b+1)*q8Block]
		var amaxBits uint32 // |x| compares as its bits (NaN aside)
		for _, v := range xs {
			if a := math.Float32bits(v) &^ (1 << 31); a > amaxBits {
				amaxBits = a
			}
		}
		amax := math.Float32frombits(amaxBits)
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		ds[b] = gguf.HalfToFloat32(gguf.Float32ToHalf(amax / 127))
		q := qs[b*q8Block : (b+1)*q8Block]
		for j, v := range xs {
			// |v*id| ≤ 127.5, so adding and removing 1.5·2^23 in float32
			// rounds half to even, as math.RoundToEven would.
			const magic = 3 << 22
			q[j] = int8(int32(float32(float32(v*id)+magic) - magic))
		}
	}
}

// hsum8 is the fixed reduction of eight float32 lanes (see above).
func hsum8(a *[8]float32) float32 {
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

// hsum2x8 is hsum8 of the lane-wise sum of two accumulators.
func hsum2x8(acc *[2][8]float32) float32 {
	var a [8]float32
	for k := range a {
		a[k] = acc[0][k] + acc[1][k]
	}
	return hsum8(&a)
}

// dotF32 is run.c's inner product (the F32 order above). The float32
// conversion around each product forbids FMA fusion.
func dotF32(w, x []float32) float32 {
	x = x[:len(w)]
	var val float32
	for j, wj := range w {
		val += float32(wj * x[j])
	}
	return val
}

// The portable kernels. Each computes out[i] for the len(out) rows of w
// (consecutive rows of rowBytes bytes) against one activation vector.

func dotQ8RowsGo(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	nb := rowBytes / 34
	xq, xd = xq[:nb*32], xd[:nb]
	for i := range out {
		row := w[i*rowBytes : (i+1)*rowBytes]
		var acc [2][8]float32
		for b := range nb {
			blk := row[b*34 : b*34+34]
			d := gguf.HalfToFloat32(binary.LittleEndian.Uint16(blk)) * xd[b]
			qs := blk[2:34]
			xs := xq[b*32 : b*32+32]
			for k := range 8 {
				s := int32(int8(qs[4*k]))*int32(xs[4*k]) +
					int32(int8(qs[4*k+1]))*int32(xs[4*k+1]) +
					int32(int8(qs[4*k+2]))*int32(xs[4*k+2]) +
					int32(int8(qs[4*k+3]))*int32(xs[4*k+3])
				acc[b&1][k] += float32(float32(s) * d)
			}
		}
		out[i] = hsum2x8(&acc)
	}
}

func dotQ4RowsGo(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	nb := rowBytes / 18
	xq, xd = xq[:nb*32], xd[:nb]
	var wq [32]int32
	for i := range out {
		row := w[i*rowBytes : (i+1)*rowBytes]
		var acc [2][8]float32
		for b := range nb {
			blk := row[b*18 : b*18+18]
			d := gguf.HalfToFloat32(binary.LittleEndian.Uint16(blk)) * xd[b]
			for j := range 16 {
				wq[j] = int32(blk[2+j]&0xf) - 8
				wq[j+16] = int32(blk[2+j]>>4) - 8
			}
			xs := xq[b*32 : b*32+32]
			for k := range 8 {
				s := wq[4*k]*int32(xs[4*k]) + wq[4*k+1]*int32(xs[4*k+1]) +
					wq[4*k+2]*int32(xs[4*k+2]) + wq[4*k+3]*int32(xs[4*k+3])
				acc[b&1][k] += float32(float32(s) * d)
			}
		}
		out[i] = hsum2x8(&acc)
	}
}

// dotF16RowsGo computes the n&^7 head part of each row only (f16Tail adds
// the rest), like the assembly.
func dotF16RowsGo(out []float32, w []byte, rowBytes int, x []float32) {
	n8 := rowBytes / 2 &^ 7
	x = x[:n8]
	for i := range out {
		row := w[i*rowBytes : i*rowBytes+2*n8]
		var acc [8]float32
		for j := 0; j < n8; j += 8 {
			for k := range 8 {
				h := gguf.HalfToFloat32(binary.LittleEndian.Uint16(row[2*(j+k):]))
				acc[k] += float32(h * x[j+k])
			}
		}
		out[i] = hsum8(&acc)
	}
}

// f16Tail adds the n%8 tail of each F16 row to out, in order.
func f16Tail(out []float32, w []byte, rowBytes int, x []float32) {
	n := rowBytes / 2
	n8 := n &^ 7
	if n8 == n {
		return
	}
	for i := range out {
		row := w[i*rowBytes : (i+1)*rowBytes]
		r := out[i]
		for j := n8; j < n; j++ {
			r += float32(gguf.HalfToFloat32(binary.LittleEndian.Uint16(row[2*j:])) * x[j])
		}
		out[i] = r
	}
}

// mulRows computes out[i] = row i of w · x for the len(out) = w.rows rows
// of w. x is the float32 activation vector (used by F32 and F16); xq, xd
// are its Q8 quantization (used by Q8_0 and Q4_0).
func mulRows(out []float32, w *matrix, x []float32, xq []int8, xd []float32) {
	switch w.typ {
	case gguf.TypeF32:
		dotF32Rows(out, w.f32, w.cols, x[:w.cols])
	case gguf.TypeQ8_0:
		dotQ8Rows(out, w.raw, w.rowBytes, xq, xd)
	case gguf.TypeQ4_0:
		dotQ4Rows(out, w.raw, w.rowBytes, xq, xd)
	case gguf.TypeF16:
		dotF16Rows(out, w.raw, w.rowBytes, x)
		f16Tail(out, w.raw, w.rowBytes, x)
	default:
		panic("model: unsupported matrix type " + w.typ.String())
	}
}

// nativeLittleEndian reports whether float32 views of file bytes are valid.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bytesToF32 returns little-endian float32 data as a []float32: a view of b
// (no copy) when b is 4-byte aligned on a little-endian machine, else a
// decoded copy.
func bytesToF32(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return []float32{}
	}
	if nativeLittleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
