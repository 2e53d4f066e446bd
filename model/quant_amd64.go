package model

import "taobox/model/gguf"

// AVX2 kernels (quant_amd64.s), chosen at run time: they need AVX2 and F16C
// (VCVTPH2PS for the f16 scales and F16 weights) and an OS that saves the
// YMM registers. Without them the portable Go kernels run; both give the
// same bits (see quant.go). Detection reads CPUID and XCR0 directly (a few
// lines of assembly) rather than through golang.org/x/sys/cpu: it needs
// F16C and the OS-enabled register state checked together, and keeps the
// module's dependencies as they are.

// haveSIMD reports whether this CPU can run the assembly kernels.
var haveSIMD = detectAVX2F16C()

// haveVNNI reports whether it also has AVX512-VNNI on 256-bit vectors
// (AVX512VL), with the AVX-512 state enabled by the OS: the Q8_0 and Q4_0
// kernels then use VPDPBUSD (same bits, one instruction less per block).
var haveVNNI = haveSIMD && detectVNNI()

// useVNNI selects the VNNI kernels; tests switch it off.
var useVNNI = haveVNNI

// useSIMD selects the assembly kernels; tests switch it off to compare.
var useSIMD = haveSIMD

// setSIMD turns the assembly kernels on or off (on only where the CPU has
// them) and returns the previous setting. For tests and benchmarks; not
// safe while a forward pass runs.
func setSIMD(on bool) bool {
	old := useSIMD
	useSIMD = on && haveSIMD
	return old
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() (eax, edx uint32)

func detectVNNI() bool {
	_, ebx7, ecx7, _ := cpuid(7, 0)
	const avx512vl, avx512vnni = 1 << 31, 1 << 11
	if ebx7&avx512vl == 0 || ecx7&avx512vnni == 0 {
		return false
	}
	xcr0, _ := xgetbv0()
	return xcr0&0xe6 == 0xe6 // XMM, YMM, opmask, ZMM state
}

func detectAVX2F16C() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx, f16c = 1 << 27, 1 << 28, 1 << 29
	if ecx1&osxsave == 0 || ecx1&avx == 0 || ecx1&f16c == 0 {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}

//go:noescape
func dotQ8RowsAVX2(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)

//go:noescape
func dotQ4RowsAVX2(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)

//go:noescape
func dotQ8RowsVNNI(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)

//go:noescape
func dotQ4RowsVNNI(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)

//go:noescape
func dotF16RowsAVX2(out *float32, w *byte, x *float32, rows, n8, rowBytes int)

func dotQ8Rows(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	nb := rowBytes / 34
	if !useSIMD || len(out) == 0 || nb == 0 {
		dotQ8RowsGo(out, w, rowBytes, xq, xd)
		return
	}
	_ = w[len(out)*rowBytes-1] // bounds, once
	_ = xq[nb*32-1]
	_ = xd[nb-1]
	if useVNNI {
		dotQ8RowsVNNI(&out[0], &w[0], &xq[0], &xd[0], len(out), nb, rowBytes)
		return
	}
	dotQ8RowsAVX2(&out[0], &w[0], &xq[0], &xd[0], len(out), nb, rowBytes)
}

func dotQ4Rows(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	nb := rowBytes / 18
	if !useSIMD || len(out) == 0 || nb == 0 {
		dotQ4RowsGo(out, w, rowBytes, xq, xd)
		return
	}
	_ = w[len(out)*rowBytes-1]
	_ = xq[nb*32-1]
	_ = xd[nb-1]
	if useVNNI {
		dotQ4RowsVNNI(&out[0], &w[0], &xq[0], &xd[0], len(out), nb, rowBytes)
		return
	}
	dotQ4RowsAVX2(&out[0], &w[0], &xq[0], &xd[0], len(out), nb, rowBytes)
}

func dotF16Rows(out []float32, w []byte, rowBytes int, x []float32) {
	n8 := rowBytes / 2 &^ 7
	if !useSIMD || len(out) == 0 || n8 == 0 {
		dotF16RowsGo(out, w, rowBytes, x)
		return
	}
	_ = w[len(out)*rowBytes-1]
	_ = x[n8-1]
	dotF16RowsAVX2(&out[0], &w[0], &x[0], len(out), n8, rowBytes)
}

//go:noescape
func dotF32x8AVX2(out *float32, w *float32, x *float32, n8, stride int)

//go:noescape
func axpyAVX2(y *float32, x *float32, a float32, n8 int)

// dotF32Rows sets out[r] = dotF32(w[r*stride:r*stride+len(x)], x) for
// r < len(out): run.c's order for every row (see dotF32x8AVX2).
func dotF32Rows(out, w []float32, stride int, x []float32) {
	n := len(x)
	n8 := n / 8
	r := 0
	if useSIMD && n8 > 0 && len(out) >= 8 {
		_ = w[(len(out)-1)*stride+n-1] // bounds, once
		for ; r+8 <= len(out); r += 8 {
			dotF32x8AVX2(&out[r], &w[r*stride], &x[0], n8, stride)
			for k := r; k < r+8 && n8*8 < n; k++ { // column tail, in order
				row := w[k*stride : k*stride+n]
				v := out[k]
				for j := n8 * 8; j < n; j++ {
					v += float32(row[j] * x[j])
				}
				out[k] = v
			}
		}
	}
	for ; r < len(out); r++ {
		out[r] = dotF32(w[r*stride:r*stride+n], x)
	}
}

// axpy sets y[i] += float32(a*x[i]) for i < len(y).
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	i := 0
	if n8 := len(y) / 8; useSIMD && n8 > 0 {
		axpyAVX2(&y[0], &x[0], a, n8)
		i = n8 * 8
	}
	for ; i < len(y); i++ {
		y[i] += float32(a * x[i])
	}
}

//go:noescape
func dotQ8Rows4AVX2(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)

//go:noescape
func dotQ4Rows4AVX2(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)

//go:noescape
func dotQ8Rows4VNNI(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)

//go:noescape
func dotQ4Rows4VNNI(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)

// mulRows4 is mulRows for four tokens at once where a kernel exists:
// token t's activations are x[t*n:], xq[t*n:], xd[t*n/32:] (n = w.cols) and
// its outputs go to out[t*ostride:][:w.rows]. It reports false (computing
// nothing) for the types without one.
func mulRows4(out []float32, ostride int, w *matrix, xq []int8, xd []float32) bool {
	if !useSIMD || w.rows == 0 {
		return false
	}
	n := w.cols
	nb := n / 32
	switch w.typ {
	case gguf.TypeQ8_0, gguf.TypeQ4_0:
	default:
		return false
	}
	_ = out[3*ostride+w.rows-1]
	_ = w.raw[w.rows*w.rowBytes-1]
	_ = xq[3*n+n-1]
	_ = xd[3*nb+nb-1]
	kernel := dotQ8Rows4AVX2
	switch {
	case w.typ == gguf.TypeQ8_0 && useVNNI:
		kernel = dotQ8Rows4VNNI
	case w.typ == gguf.TypeQ4_0 && useVNNI:
		kernel = dotQ4Rows4VNNI
	case w.typ == gguf.TypeQ4_0:
		kernel = dotQ4Rows4AVX2
	}
	kernel(&out[0], ostride, &w.raw[0], &xq[0], n, &xd[0], nb, w.rows, nb, w.rowBytes)
	return true
}

//go:noescape
func attnValuesAVX2(xb *float32, v *float32, att *float32, nt, stride, n8 int)

// attnValues sets xb[i] = sum over t of att[t]*v[t*stride+i] (i < len(xb)),
// accumulated from 0 in t order: the bits of len(att) axpy calls.
func attnValues(xb, v []float32, stride int, att []float32) {
	n := len(xb)
	if len(att) == 0 {
		clear(xb)
		return
	}
	_ = v[(len(att)-1)*stride+n-1]
	n8 := n / 8
	if useSIMD && n8 > 0 {
		attnValuesAVX2(&xb[0], &v[0], &att[0], len(att), stride, n8)
	} else {
		n8 = 0
	}
	tail := xb[n8*8:]
	clear(tail)
	for t, a := range att {
		axpy(tail, v[t*stride+n8*8:t*stride+n], a)
	}
}
