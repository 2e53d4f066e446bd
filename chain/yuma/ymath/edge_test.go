package ymath

import (
	"fmt"
	"testing"

	"taobox/chain/fixed"
)

// Focused tests of edge behaviours that math.json does not exercise.

func fx(vs ...float64) []fixed.I32F32 {
	out := []fixed.I32F32{}
	for _, v := range vs {
		out = append(out, fromFloat(v))
	}
	return out
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("%s: got %s, want %s", what, g, w)
	}
}

func TestMaskEdges(t *testing.T) {
	// An empty mask leaves the vector alone; a short one masks the tail.
	v := fx(1, 2, 3)
	InplaceMaskVector(nil, v)
	same(t, "empty vector mask", v, fx(1, 2, 3))
	InplaceMaskVector([]bool{false}, v)
	same(t, "short vector mask", v, fx(1, 0, 0))

	// Matrix mask: empty mask or empty first mask row does nothing; missing
	// rows and cells are masked.
	m := [][]fixed.I32F32{fx(1, 2), fx(3, 4), fx(5, 6)}
	InplaceMaskMatrix([][]bool{{}}, m)
	same(t, "empty first mask row", m, [][]fixed.I32F32{fx(1, 2), fx(3, 4), fx(5, 6)})
	InplaceMaskMatrix([][]bool{{false, false}, {false}}, m)
	same(t, "short matrix mask", m, [][]fixed.I32F32{fx(1, 2), fx(3, 0), fx(0, 0)})

	// Row mask: masked and missing rows become zeros of the first row's width.
	m = [][]fixed.I32F32{fx(1, 2), fx(3, 4, 5), fx(6)}
	InplaceMaskRows([]bool{false}, m)
	same(t, "short row mask", m, [][]fixed.I32F32{fx(1, 2), fx(0, 0), fx(0, 0)})

	// Column mask: columns past the mask are masked, even with an empty mask.
	m = [][]fixed.I32F32{fx(1, 2, 3), fx(4, 5, 6)}
	InplaceMaskCols([]bool{false, true}, m)
	same(t, "short col mask", m, [][]fixed.I32F32{fx(1, 0, 0), fx(4, 0, 0)})
	m = [][]fixed.I32F32{fx(1, 2)}
	InplaceMaskCols(nil, m)
	same(t, "empty col mask", m, [][]fixed.I32F32{fx(0, 0)})

	// Diagonal masks only touch square matrices (rows == first row width).
	m = [][]fixed.I32F32{fx(1, 2, 3), fx(4, 5, 6)}
	InplaceMaskDiag(m)
	same(t, "non-square diag", m, [][]fixed.I32F32{fx(1, 2, 3), fx(4, 5, 6)})
	m = [][]fixed.I32F32{fx(1, 2), fx(3, 4)}
	InplaceMaskDiagExceptIndex(m, 1)
	same(t, "diag except 1", m, [][]fixed.I32F32{fx(0, 2), fx(3, 4)})
	InplaceMaskDiagExceptIndex(m, 7)
	same(t, "diag except out of range", m, [][]fixed.I32F32{fx(0, 2), fx(3, 0)})

	// Sparse row mask: missing mask entries drop the row.
	s := [][]Pair{{{0, 1}}, {{1, 2}}}
	same(t, "short sparse row mask", MaskRowsSparse([]bool{false}, s), [][]Pair{{{0, 1}}, {}})

	// Vector masks: a missing value reads as 0.
	lt := func(a, b uint64) bool { return a < b }
	s = [][]Pair{{{0, 1}, {3, 2}}, {{0, 3}}}
	same(t, "vec mask", VecMaskSparseMatrix(s, []uint64{1}, []uint64{5}, lt), [][]Pair{{{3, 2}}, {}})
	same(t, "scalar mask", ScalarVecMaskSparseMatrix(s, 0, []uint64{5}, lt), [][]Pair{{{3, 2}}, {}})
}

func TestEmptyInputs(t *testing.T) {
	var dense [][]fixed.I32F32
	emptyRow := [][]fixed.I32F32{{}}
	same(t, "RowHadamard", len(RowHadamard(dense, nil)), 1)
	same(t, "RowHadamard empty row", len(RowHadamard(emptyRow, fx(1))), 1)
	same(t, "MatVecMul", len(MatVecMul(dense, nil)), 1)
	same(t, "MatEma", len(MatEma(dense, dense, fixed.I32F32Half)), 1)
	same(t, "MatEmaAlpha", len(MatEmaAlpha(dense, dense, dense)), 1)
	same(t, "Interpolate", len(Interpolate(dense, dense, fixed.I32F32Half)), 1)
	// ratio 0 and 1 return the inputs themselves, even empty ones.
	same(t, "Interpolate ratio 0", len(Interpolate(dense, emptyRow, 0)), 0)
	same(t, "Interpolate ratio 1", len(Interpolate(dense, emptyRow, fixed.I32F32One)), 1)
	same(t, "Matmul", Matmul(emptyRow, fx(1)), []fixed.I32F32{})
	same(t, "MatmulTranspose", MatmulTranspose(dense, nil), []fixed.I32F32{})
	same(t, "RowSum empty first row", RowSum([][]fixed.I32F32{{}, fx(1)}), []fixed.I32F32{})
	same(t, "MatEmaSparse", len(MatEmaSparse(nil, nil, fixed.I32F32Half)), 0)
	same(t, "VecMaxUpscaleToU16", VecMaxUpscaleToU16(nil), []uint16{})
	same(t, "CheckVecMaxLimited", CheckVecMaxLimited(nil, 0), true)
	same(t, "WeightedMedianCol", WeightedMedianCol(nil, [][]fixed.I32F32{{}}, 0), []fixed.I32F32{})
	same(t, "WeightedMedianColSparse", WeightedMedianColSparse(nil, nil, 2, 0), fx(0, 0))
	// Column sums of nothing: no-ops.
	InplaceColNormalize(dense)
	InplaceColMaxUpscale(emptyRow)
	InplaceColNormalizeSparse(nil, 0)
}

func TestShapeMismatches(t *testing.T) {
	half := fixed.I32F32Half
	// Iterators stop at the shortest input.
	same(t, "RowHadamard short vector", RowHadamard([][]fixed.I32F32{fx(1, 2), fx(3, 4)}, fx(2)), [][]fixed.I32F32{fx(2, 4)})
	same(t, "RowHadamardSparse short vector", RowHadamardSparse([][]Pair{{{0, fixed.I32F32One}}, {}}, nil), [][]Pair{})
	same(t, "VecMul", VecMul(fx(1, 2, 3), fx(2, 2)), fx(2, 4))
	same(t, "MatEma short old", MatEma([][]fixed.I32F32{fx(1, 1), fx(1)}, [][]fixed.I32F32{fx(0)}, half), [][]fixed.I32F32{fx(0.5)})
	same(t, "Matmul ragged", Matmul([][]fixed.I32F32{fx(1, 1), fx(1, 1, 1), fx(1)}, fx(1, 2)), fx(3, 3))
	same(t, "Vecdiv short y", Vecdiv(fx(1, 1), fx(2)), fx(0.5, 0))
	// Interpolate keeps mat1's shape; missing mat2 rows/cells stay 0.
	same(t, "Interpolate short mat2",
		Interpolate([][]fixed.I32F32{fx(1, 1), fx(1, 1)}, [][]fixed.I32F32{fx(0)}, half),
		[][]fixed.I32F32{fx(0.5, 0), fx(0, 0)})
	// Sparse interpolate returns mat2 on a row-count mismatch.
	same(t, "InterpolateSparse mismatch", InterpolateSparse([][]Pair{{}}, [][]Pair{}, 3, half), [][]Pair{})
	// mat_ema_alpha: old on a row-count mismatch, new on a row-width mismatch.
	n2 := [][]fixed.I32F32{fx(1, 1), fx(1, 1)}
	same(t, "MatEmaAlpha rows", MatEmaAlpha(n2, [][]fixed.I32F32{fx(0, 0)}, n2), [][]fixed.I32F32{fx(0, 0)})
	same(t, "MatEmaAlpha widths", MatEmaAlpha(n2, [][]fixed.I32F32{fx(0, 0), fx(0)}, n2), n2)
	// mat_ema_alpha_sparse: new on a shape mismatch; columns outside the
	// alpha row are ignored; old-only columns are dropped.
	ns := [][]Pair{{{0, half}, {5, half}}}
	same(t, "MatEmaAlphaSparse mismatch", MatEmaAlphaSparse(ns, nil, nil), ns)
	same(t, "MatEmaAlphaSparse", MatEmaAlphaSparse(ns, [][]Pair{{{1, half}}}, [][]fixed.I32F32{fx(0.5, 0.5)}), [][]Pair{{{0, fromFloat(0.25)}}})
	// Sparse EMA densifies to len(new) columns (square assumption): with one
	// row only column 0 survives.
	same(t, "MatEmaSparse", MatEmaSparse([][]Pair{{{0, half}, {4, half}}}, [][]Pair{{{0, half}, {1, half}}}, half), [][]Pair{{{0, fixed.I32F32Half}}})
}

func TestArithmeticEdges(t *testing.T) {
	// Sums are plain and wrap; column sums saturate.
	same(t, "Sum wraps", Sum([]fixed.I32F32{fixed.I32F32Max, 1}), fixed.I32F32Min)
	m := [][]fixed.I32F32{{fixed.I32F32Max}, {fixed.I32F32Max}}
	InplaceColNormalize(m)
	same(t, "col sums saturate", m, [][]fixed.I32F32{{fixed.I32F32Max.SafeDiv(fixed.I32F32Max)}, {fixed.I32F32One}})
	// vec_mul maps an overflowing checked_mul to 0; mat_vec_mul_sparse
	// saturates and drops zero products.
	big := fixed.I32F32FromInt(1 << 20)
	same(t, "VecMul overflow", VecMul([]fixed.I32F32{big}, []fixed.I32F32{big}), fx(0))
	same(t, "MatVecMulSparse", MatVecMulSparse([][]Pair{{{0, big}, {1, big}, {2, big}}}, []fixed.I32F32{big, 0}),
		[][]Pair{{{0, fixed.I32F32Max}}})
	// Normalizing a zero-sum vector leaves it unchanged (negatives allowed).
	v := fx(-1, 1)
	InplaceNormalize(v)
	same(t, "zero sum", v, fx(-1, 1))
	// safe_div by zero is 0.
	same(t, "U16ProportionToFixed", U16ProportionToFixed(65535), fixed.I32F32One)
	same(t, "FixedProportionToU16", FixedProportionToU16(fixed.I32F32Max), uint16(65535))
	// col_clip_sparse drops entries clipped to a threshold <= 0.
	same(t, "ColClipSparse", ColClipSparse([][]Pair{{{0, fixed.I32F32One}, {1, fixed.I32F32One}}}, fx(0.5)), [][]Pair{{{0, fixed.I32F32Half}}})
	// is_topk_nonzero keeps zero entries false even when n < k.
	same(t, "IsTopkNonzero", IsTopkNonzero(fx(0, 1, 2), 5), []bool{false, true, true})
	same(t, "IsTopkNonzero k", IsTopkNonzero(fx(3, 0, 2, 2), 2), []bool{true, false, false, true})
}

func TestNoAliasing(t *testing.T) {
	one := fixed.I32F32One
	m1 := [][]fixed.I32F32{fx(1, 2)}
	m2 := [][]fixed.I32F32{fx(3, 4)}
	for name, out := range map[string][][]fixed.I32F32{
		"Interpolate 0":      Interpolate(m1, m2, 0),
		"Interpolate 1":      Interpolate(m2, m1, one),
		"MatEmaAlpha old":    MatEmaAlpha(m2, m1, nil),
		"MatEmaAlpha widths": MatEmaAlpha(m1, [][]fixed.I32F32{fx(1)}, m1),
	} {
		out[0][0] = 99
		if m1[0][0] != one || m2[0][0] != fixed.I32F32FromInt(3) {
			t.Errorf("%s: result aliases its input", name)
		}
	}
	s := [][]Pair{{{0, one}}}
	for name, out := range map[string][][]Pair{
		"InterpolateSparse 0": InterpolateSparse(s, s, 1, 0),
		"InterpolateSparse 1": InterpolateSparse(s, s, 1, one),
		"MatEmaAlphaSparse":   MatEmaAlphaSparse(s, nil, nil),
		"MaskRowsSparse":      MaskRowsSparse([]bool{false}, s),
		"MaskDiagSparse":      MaskDiagSparse([][]Pair{{{1, one}}}),
		"ColClipSparse":       ColClipSparse(s, fx(5)),
	} {
		out[0][0].V = 99
		if s[0][0].V != one {
			t.Errorf("%s: result aliases its input", name)
		}
	}
}

func TestLiquidAlpha(t *testing.T) {
	low, high := fromFloat(0.7), fromFloat(0.9)
	steep := fixed.I32F32FromInt(1000)
	// Far above consensus (diff 1) the alpha approaches the high bound: the
	// exp input -10*0.5 gives sigmoid = 1/(1+exp(-5)). With a huge steepness
	// the exp input clamps to -20 and alpha lands within 8 raw of high.
	if a := AlphaSigmoid(0, fixed.I32F32One, 0, low, high, steep); a <= fromFloat(0.898) || a >= high {
		t.Errorf("buy side: %v", a)
	}
	if a := AlphaSigmoid(0, fixed.I32F32One, 0, low, high, fixed.I32F32FromInt(30000)); a > high || high-a > 8 {
		t.Errorf("steep buy side: %v, want ~%v", a, high)
	}
	// At the midpoint (diff = 0.5) the sigmoid is exactly 1/2.
	mid := AlphaSigmoid(0, fixed.I32F32Half, 0, low, high, steep)
	if want := low.SatAdd(fixed.I32F32Half.SatMul(high - low)); mid != want {
		t.Errorf("midpoint: %v, want %v", mid, want)
	}
	// The sparse version over sorted rows equals the dense version.
	w := [][]Pair{{{0, fromFloat(0.2)}, {2, fromFloat(0.9)}}, {}}
	b := [][]Pair{{{1, fromFloat(0.3)}}, {{0, fromFloat(0.5)}}}
	cons := fx(0.1, 0.2, 0.4)
	dense := func(m [][]Pair) [][]fixed.I32F32 {
		out := [][]fixed.I32F32{}
		for _, row := range m {
			out = append(out, densify(row, len(cons)))
		}
		return out
	}
	sparse := ComputeLiquidAlphaValuesSparse(w, b, cons, steep, low, high)
	same(t, "sparse vs dense", sparse, ComputeLiquidAlphaValues(dense(w), dense(b), cons, steep, low, high))
	// An unsorted row hides the entries that come after a larger column.
	unsorted := [][]Pair{{{2, fromFloat(0.9)}, {0, fromFloat(0.2)}}, {}}
	got := ComputeLiquidAlphaValuesSparse(unsorted, b, cons, steep, low, high)
	hidden := [][]Pair{{{2, fromFloat(0.9)}}, {}}
	same(t, "unsorted row", got, ComputeLiquidAlphaValuesSparse(hidden, b, cons, steep, low, high))
	// Row-count mismatch gives no rows.
	same(t, "mismatch", len(ComputeLiquidAlphaValues([][]fixed.I32F32{{}}, nil, cons, steep, low, high)), 0)
	same(t, "mismatch sparse", len(ComputeLiquidAlphaValuesSparse(w, nil, cons, steep, low, high)), 0)
}
