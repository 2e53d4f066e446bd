//go:build !amd64

package model

// Without assembly kernels every product runs the portable Go code.

const haveSIMD = false

func dotQ8Rows(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	dotQ8RowsGo(out, w, rowBytes, xq, xd)
}

func dotQ4Rows(out []float32, w []byte, rowBytes int, xq []int8, xd []float32) {
	dotQ4RowsGo(out, w, rowBytes, xq, xd)
}

func dotF16Rows(out []float32, w []byte, rowBytes int, x []float32) {
	dotF16RowsGo(out, w, rowBytes, x)
}

// setSIMD is a no-op here; it reports false (no kernels to enable).
func setSIMD(on bool) bool { return false }

func dotF32Rows(out, w []float32, stride int, x []float32) {
	n := len(x)
	for r := range out {
		out[r] = dotF32(w[r*stride:r*stride+n], x)
	}
}

func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += float32(a * x[i])
	}
}

func mulRows4(out []float32, ostride int, w *matrix, xq []int8, xd []float32) bool { return false }

func attnValues(xb, v []float32, stride int, att []float32) {
	n := len(xb)
	clear(xb)
	for t, a := range att {
		axpy(xb, v[t*stride:t*stride+n], a)
	}
}

const haveVNNI = false

var useVNNI = false
