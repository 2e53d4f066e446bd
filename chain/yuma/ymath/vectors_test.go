package ymath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"

	"taobox/chain/fixed"
	"taobox/internal/vectors"
)

type mathCase struct {
	Test             string         `json:"test"`
	Function         string         `json:"function"`
	Inputs           map[string]any `json:"inputs"`
	Expected         any            `json:"expected"`
	Tolerance        any            `json:"tolerance"`
	ExpectedIsExact  bool           `json:"expected_is_exact"`
	PythonPortOutput any            `json:"python_port_output"`
}

type mathFile struct {
	Meta struct {
		Commit string `json:"commit"`
		Counts struct {
			MathCases int `json:"math_cases"`
		} `json:"counts"`
	} `json:"meta"`
	MathHelpers []mathCase `json:"math_helpers"`
}

func loadMathVectors(t *testing.T) *mathFile {
	t.Helper()
	p, err := vectors.Path("math.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	// UseNumber keeps raw I32F32 integers above 2^53 exact and keeps the
	// literal text of f32 inputs written as JSON numbers.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var f mathFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("parse %s: %v", p, err)
	}
	t.Logf("vectors: %s (commit %s)", p, f.Meta.Commit)
	return &f
}

// TestMathVectors runs every math_helpers case of math.json and requires our
// output to equal python_port_output exactly, and Rust's asserted `expected`
// within `tolerance`.
func TestMathVectors(t *testing.T) {
	f := loadMathVectors(t)
	if got, want := len(f.MathHelpers), f.Meta.Counts.MathCases; got != want {
		t.Fatalf("math.json holds %d cases, meta.counts says %d", got, want)
	}
	ran := 0
	for i := range f.MathHelpers {
		c := &f.MathHelpers[i]
		h, ok := mathHandlers[c.Function]
		if !ok {
			t.Errorf("%s: no handler for function %q", c.Test, c.Function)
			continue
		}
		ran++
		t.Run(c.Test, func(t *testing.T) {
			if c.ExpectedIsExact && tolerance(t, c) != 0 {
				t.Errorf("expected_is_exact with a non-zero tolerance %v", c.Tolerance)
			}
			got := h(t, c)
			gotJSON := mustJSON(t, canon(t, got))
			wantJSON := mustJSON(t, c.PythonPortOutput)
			if gotJSON != wantJSON {
				t.Errorf("python_port_output mismatch\n got: %s\nwant: %s", gotJSON, wantJSON)
			}
		})
	}
	if ran != len(f.MathHelpers) {
		t.Errorf("dispatched %d of %d cases", ran, len(f.MathHelpers))
	}
}

// mathHandlers runs one case: it builds the inputs, calls the function under
// test, checks Rust's `expected` and returns the output for the bit-exact
// comparison with python_port_output.
var mathHandlers = map[string]func(t *testing.T, c *mathCase) any{
	"vec_max_upscale_to_u16": func(t *testing.T, c *mathCase) any {
		vec := raws(t, c.Inputs["vector_raw"])
		if lits, ok := c.Inputs["vector_f32"]; ok {
			checkVec(t, "vector_f32 vs vector_raw", fixeds(f32s(t, lits)), vec, 0)
		} else {
			want, ok := descVectors[c.Test]
			if !ok || want.desc != str(t, c.Inputs["vector_desc"]) {
				t.Fatalf("no interpretation for vector_desc %q", c.Inputs["vector_desc"])
			}
			checkVec(t, "vector_desc vs vector_raw", want.vec, vec, 0)
		}
		got := VecMaxUpscaleToU16(vec)
		checkU16(t, got, u16s(t, c.Expected))
		return got
	},
	"vec_u16_max_upscale_to_u16": func(t *testing.T, c *mathCase) any {
		got := VecU16MaxUpscaleToU16(u16s(t, c.Inputs["vector_u16"]))
		checkU16(t, got, u16s(t, c.Expected))
		return got
	},
	"check_vec_max_limited": func(t *testing.T, c *mathCase) any {
		got := CheckVecMaxLimited(u16s(t, c.Inputs["vector_u16"]), uint16(integer(t, c.Inputs["max_limit"])))
		if want := c.Expected.(bool); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		return got
	},
	"exp_safe": func(t *testing.T, c *mathCase) any {
		x := raw(t, c.Inputs["x_raw"])
		got := ExpSafe(x)
		if alt := fixed.ExpSafe(x); alt != got {
			t.Errorf("fixed.ExpSafe(%d) = %d, ymath.ExpSafe = %d", x, alt, got)
		}
		checkScalar(t, got, raw(t, field(t, c.Expected, "raw")), 0)
		return got
	},
	"sigmoid_safe": func(t *testing.T, c *mathCase) any {
		rho, kappa := raw(t, c.Inputs["rho_raw"]), raw(t, c.Inputs["kappa_raw"])
		got := []fixed.I32F32{}
		for _, x := range raws(t, c.Inputs["input_raw"]) {
			y := SigmoidSafe(x, rho, kappa)
			if alt := fixed.SigmoidSafe(x, rho, kappa); alt != y {
				t.Errorf("fixed.SigmoidSafe(%d) = %d, ymath.SigmoidSafe = %d", x, alt, y)
			}
			got = append(got, y)
		}
		checkVec(t, "expected", got, raws(t, field(t, c.Expected, "raw")), 0)
		return got
	},
	"is_topk": func(t *testing.T, c *mathCase) any {
		got := IsTopk(fixeds(f32s(t, c.Inputs["vector_f32"])), int(integer(t, c.Inputs["k"])))
		want := []bool{}
		for _, v := range list(t, c.Expected) {
			want = append(want, v.(bool))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
		return got
	},
	"inplace_normalize": func(t *testing.T, c *mathCase) any {
		x := raws(t, c.Inputs["x_raw"])
		checkVec(t, "x_f64 vs x_raw", fixedsF64(t, c.Inputs["x_f64"]), x, 0)
		copied := Normalize(x)
		InplaceNormalize(x)
		checkVec(t, "Normalize vs InplaceNormalize", copied, x, 0)
		tol := mapOf(t, c.Tolerance)
		checkVec(t, "expected.raw", x, raws(t, field(t, c.Expected, "raw")), raw(t, tol["raw"]))
		checkVec(t, "expected.f64", x, fixedsF64(t, field(t, c.Expected, "f64")), fromF64(t, tol["abs"]))
		return x
	},
	"inplace_normalize_64": func(t *testing.T, c *mathCase) any {
		var x []fixed.I64F64
		for i, s := range list(t, c.Inputs["x_raw_I64F64"]) {
			v, err := fixed.ParseI64F64Raw(str(t, s))
			if err != nil {
				t.Fatal(err)
			}
			if want := f64(t, list(t, c.Inputs["x_f64"])[i]); i64f64Float(v) != want {
				t.Errorf("x_raw_I64F64[%d] = %v, x_f64 says %v", i, i64f64Float(v), want)
			}
			x = append(x, v)
		}
		InplaceNormalize64(x)
		abs := f64(t, mapOf(t, c.Tolerance)["abs"])
		want := list(t, field(t, c.Expected, "f64"))
		if len(want) != len(x) {
			t.Fatalf("got %d values, want %d", len(x), len(want))
		}
		for i := range x {
			if d := math.Abs(i64f64Float(x[i]) - f64(t, want[i])); d > abs {
				t.Errorf("[%d] = %v, want %v ± %v", i, i64f64Float(x[i]), f64(t, want[i]), abs)
			}
		}
		return x
	},
	"vecdiv": func(t *testing.T, c *mathCase) any {
		got := Vecdiv(fixeds(f32s(t, c.Inputs["x_f32"])), fixeds(f32s(t, c.Inputs["y_f32"])))
		checkVec(t, "expected", got, raws(t, field(t, c.Expected, "raw")), 0)
		return got
	},
	"inplace_row_normalize":   denseInplace(InplaceRowNormalize),
	"inplace_col_normalize":   denseInplace(InplaceColNormalize),
	"inplace_col_max_upscale": denseInplace(InplaceColMaxUpscale),
	"inplace_mask_diag":       denseInplace(InplaceMaskDiag),
	"inplace_row_normalize_sparse": func(t *testing.T, c *mathCase) any {
		m := inputSparse(t, c)
		InplaceRowNormalizeSparse(m)
		checkSparseExpected(t, c, m)
		return m
	},
	"inplace_col_normalize_sparse": func(t *testing.T, c *mathCase) any {
		m := inputSparse(t, c)
		InplaceColNormalizeSparse(m, uint16(integer(t, c.Inputs["columns"])))
		checkSparseExpected(t, c, m)
		return m
	},
	"inplace_col_max_upscale_sparse": func(t *testing.T, c *mathCase) any {
		m := inputSparse(t, c)
		InplaceColMaxUpscaleSparse(m, uint16(integer(t, c.Inputs["columns"])))
		checkSparseExpected(t, c, m)
		return m
	},
	"mask_diag_sparse_except_index": func(t *testing.T, c *mathCase) any {
		got := MaskDiagSparseExceptIndex(inputSparse(t, c), uint16(integer(t, c.Inputs["except_index"])))
		checkSparseExpected(t, c, got)
		return got
	},
	"vec_mask_sparse_matrix": func(t *testing.T, c *mathCase) any {
		mf, ok := maskFns[c.Test]
		if !ok || mf.desc != str(t, c.Inputs["mask_fn"]) {
			t.Fatalf("no interpretation for mask_fn %q", c.Inputs["mask_fn"])
		}
		got := VecMaskSparseMatrix(inputSparse(t, c), u64s(t, c.Inputs["first_vector"]), u64s(t, c.Inputs["second_vector"]), mf.fn)
		checkSparseExpected(t, c, got)
		return got
	},
	"row_hadamard": func(t *testing.T, c *mathCase) any {
		got := RowHadamard(inputDense(t, c), fixeds(f32s(t, c.Inputs["vector_f32"])))
		checkDenseExpected(t, c, got)
		return got
	},
	"matmul": func(t *testing.T, c *mathCase) any {
		got := Matmul(inputDense(t, c), fixeds(f32s(t, c.Inputs["vector_f32"])))
		checkVecExpected(t, c, got)
		return got
	},
	"matmul_transpose": func(t *testing.T, c *mathCase) any {
		got := MatmulTranspose(inputDense(t, c), fixeds(f32s(t, c.Inputs["vector_f32"])))
		checkVecExpected(t, c, got)
		return got
	},
	"matmul_sparse": func(t *testing.T, c *mathCase) any {
		got := MatmulSparse(inputSparse(t, c), fixeds(f32s(t, c.Inputs["vector_f32"])), uint16(integer(t, c.Inputs["columns"])))
		checkVecExpected(t, c, got)
		return got
	},
	"matmul_transpose_sparse": func(t *testing.T, c *mathCase) any {
		got := MatmulTransposeSparse(inputSparse(t, c), fixeds(f32s(t, c.Inputs["vector_f32"])))
		checkVecExpected(t, c, got)
		return got
	},
	"inplace_col_clip": func(t *testing.T, c *mathCase) any {
		m := inputDense(t, c)
		InplaceColClip(m, fixeds(f32s(t, c.Inputs["threshold_f32"])))
		checkDenseExpected(t, c, m)
		return m
	},
	"col_clip_sparse": func(t *testing.T, c *mathCase) any {
		got := ColClipSparse(inputSparse(t, c), fixeds(f32s(t, c.Inputs["threshold_f32"])))
		checkSparseExpected(t, c, got)
		return got
	},
	"weighted_median": func(t *testing.T, c *mathCase) any {
		in := c.Inputs
		stake := raws(t, in["stake_raw"])
		if s, ok := in["stake_f32"].(string); ok {
			want, ok := descVectors[c.Test]
			if !ok || want.desc != s {
				t.Fatalf("no interpretation for stake_f32 %q", s)
			}
			checkVec(t, "stake_f32 vs stake_raw", want.vec, stake, 0)
		} else {
			checkVec(t, "stake_f32 vs stake_raw", fixeds(f32s(t, in["stake_f32"])), stake, 0)
		}
		score := fixeds(f32s(t, in["score_f32"]))
		minority := raw(t, in["minority_raw"])
		// Rust: one - fixed(majority), with fixed() = saturating_from_num(f32).
		if d := str(t, in["minority"]); d != "1 - majority (I32F32)" {
			t.Fatalf("unknown minority description %q", d)
		}
		checkScalar(t, fixed.I32F32One-fromF32(t, in["majority_f32"]), minority, 0)
		lo := raw(t, in["partition_lo"])
		// Rust: stake.iter().sum(), the plain sum.
		if d := str(t, in["partition_hi"]); d != "sum(stake)" {
			t.Fatalf("unknown partition_hi description %q", d)
		}
		hi := Sum(stake)
		got := WeightedMedian(stake, score, indices(len(stake)), minority, lo, hi)
		want := raw(t, field(t, c.Expected, "raw"))
		checkScalar(t, got, want, 0)
		checkScalar(t, fromF32(t, field(t, c.Expected, "f32")), want, 0)
		checkScalar(t, closedFormMedian(stake, score, minority), got, 0)
		return got
	},
	"weighted_median_col": func(t *testing.T, c *mathCase) any {
		stake := fixeds(f32s(t, c.Inputs["stake_f32"]))
		w := vecToMatFixed(t, f32s(t, c.Inputs["weights_f32"]), integer(t, c.Inputs["rows"]), false)
		got := WeightedMedianCol(stake, w, fromF32(t, c.Inputs["majority_f32"]))
		checkVecExpected(t, c, got)
		return got
	},
	"weighted_median_col_sparse": func(t *testing.T, c *mathCase) any {
		stake := fixeds(f32s(t, c.Inputs["stake_f32"]))
		w := vecToSparseMatFixed(t, f32s(t, c.Inputs["weights_f32"]), integer(t, c.Inputs["rows"]), false)
		got := WeightedMedianColSparse(stake, w, uint16(integer(t, c.Inputs["columns"])), fromF32(t, c.Inputs["majority_f32"]))
		checkVecExpected(t, c, got)
		return got
	},
	"interpolate": func(t *testing.T, c *mathCase) any {
		m1, m2, rows := interpolateInputs(t, c)
		ratio := interpolateRatio(t, c)
		got := Interpolate(vecToMatFixed(t, m1, rows, false), vecToMatFixed(t, m2, rows, false), ratio)
		want := vecToMatFixed(t, interpolateTarget(t, c, len(m1)), rows, false)
		checkDense(t, got, want, tolerance(t, c))
		return got
	},
	"interpolate_sparse": func(t *testing.T, c *mathCase) any {
		m1, m2, rows := interpolateInputs(t, c)
		ratio := interpolateRatio(t, c)
		columns := uint16(integer(t, c.Inputs["columns"]))
		got := InterpolateSparse(vecToSparseMatFixed(t, m1, rows, false), vecToSparseMatFixed(t, m2, rows, false), columns, ratio)
		want := vecToSparseMatFixed(t, interpolateTarget(t, c, len(m1)), rows, false)
		checkSparse(t, got, want, tolerance(t, c))
		return got
	},
	"mat_ema_alpha": func(t *testing.T, c *mathCase) any {
		in := c.Inputs
		var newM, old, alpha [][]fixed.I32F32
		if a, ok := in["alpha_f32_all"]; ok {
			// Rust: vec_to_mat_fixed of new/old/[a; 12] with `rows` rows.
			rows := integer(t, in["rows"])
			nv, ov := f32s(t, in["new_f32"]), f32s(t, in["old_f32"])
			newM = vecToMatFixed(t, nv, rows, false)
			old = vecToMatFixed(t, ov, rows, false)
			alpha = vecToMatFixed(t, repeat(f32s(t, []any{a})[0], len(nv)), rows, false)
		} else {
			// Rust: mat_to_fixed (f32) of nested rows; alpha from_num(f64),
			// either one value for every cell or one row repeated per row.
			newM, old = matToFixed(t, in["new_f32"]), matToFixed(t, in["old_f32"])
			for _, row := range newM {
				var ar []fixed.I32F32
				if a, ok := in["alpha_f64"]; ok {
					for range row {
						ar = append(ar, fromF64(t, a))
					}
				} else {
					ar = fixedsF64(t, in["alpha_f64_row"])
				}
				alpha = append(alpha, ar)
			}
		}
		got := MatEmaAlpha(newM, old, alpha)
		var want [][]fixed.I32F32
		if exp := list(t, field(t, c.Expected, "f32")); len(exp) > 0 && isList(exp[0]) {
			want = matToFixed(t, exp)
		} else {
			want = vecToMatFixed(t, f32s(t, exp), integer(t, in["rows"]), false)
		}
		checkDense(t, got, want, tolerance(t, c))
		return got
	},
	"mat_ema_alpha_sparse": func(t *testing.T, c *mathCase) any {
		in := c.Inputs
		var newM, old [][]Pair
		var alpha [][]fixed.I32F32
		var want [][]Pair
		if a, ok := in["alpha_f32_all"]; ok {
			// Rust: vec_to_sparse_mat_fixed for new/old, vec_to_mat_fixed for
			// the alphas, all with `rows` rows.
			rows := integer(t, in["rows"])
			nv, ov := f32s(t, in["new_f32"]), f32s(t, in["old_f32"])
			newM = vecToSparseMatFixed(t, nv, rows, false)
			old = vecToSparseMatFixed(t, ov, rows, false)
			alpha = vecToMatFixed(t, repeat(f32s(t, []any{a})[0], len(nv)), rows, false)
			want = vecToSparseMatFixed(t, f32s(t, field(t, c.Expected, "f32")), rows, false)
		} else {
			// Rust: explicit (u16, I32F32::from_num(f64)) rows and alphas.
			newM, old = sparseF64(t, in["new"]), sparseF64(t, in["old"])
			for _, row := range list(t, in["alpha"]) {
				alpha = append(alpha, fixedsF64(t, row))
			}
			want = sparseF64(t, field(t, c.Expected, "f64"))
		}
		got := MatEmaAlphaSparse(newM, old, alpha)
		checkSparse(t, got, want, tolerance(t, c))
		return got
	},
	"fixed conversions": func(t *testing.T, c *mathCase) any {
		conv, ok := conversions[c.Test]
		if !ok || conv.desc != str(t, c.Inputs["desc"]) {
			t.Fatalf("no interpretation for desc %q", c.Inputs["desc"])
		}
		got := conv.fn()
		if want := str(t, field(t, c.Expected, "raw")); got != want {
			t.Errorf("got raw %s, want %s", got, want)
		}
		return got
	},
}

// ---- description strings, interpreted case by case ----

// descVectors holds vector inputs that math.json gives as Rust source text
// rather than as f32 literals; the raw values in the file must match them.
var descVectors = map[string]struct {
	desc string
	vec  []fixed.I32F32
}{
	// I32F32::from_num of integers: exact.
	"test_vec_max_upscale_to_u16[special 0]": {"I32F32::from_num(16384)", ints(16384)},
	"test_vec_max_upscale_to_u16[special 1]": {"from_num(32768)", ints(32768)},
	"test_vec_max_upscale_to_u16[special 2]": {"from_num(32769)", ints(32769)},
	"test_vec_max_upscale_to_u16[special 3]": {"from_num(65535)", ints(65535)},
	"test_vec_max_upscale_to_u16[special 4]": {"I32F32::max_value()", []fixed.I32F32{fixed.I32F32Max}},
	"test_vec_max_upscale_to_u16[special 5]": {
		"[0, 1, 32768, 32769, I32F32::max_value()]",
		append(ints(0, 1, 32768, 32769), fixed.I32F32Max),
	},
	// normalize(vec_to_fixed(&[0.51])): a single entry normalizes to 1.
	"test_math_weighted_median[1]": {
		"stake = normalize([0.51])",
		Normalize([]fixed.I32F32{mustF32("0.51")}),
	},
}

// maskFns interprets the closures of test_math_vec_mask_sparse_matrix.
var maskFns = map[string]struct {
	desc string
	fn   func(a, b uint64) bool
}{
	"test_math_vec_mask_sparse_matrix[0]": {"a == b", func(a, b uint64) bool { return a == b }},
	"test_math_vec_mask_sparse_matrix[1]": {"a < b", func(a, b uint64) bool { return a < b }},
}

// interpolateDesc interprets the "4x3 zeros/ones" matrices of the
// interpolate tests: Rust builds them with vec_to_mat_fixed (dense) or
// vec_to_sparse_mat_fixed (sparse, so zeros become empty rows) from 12 f32
// zeros or ones with 4 rows. The expected value there is one f32 literal
// repeated over the 12 cells.
var interpolateDesc = map[string]struct{ mat1, mat2 string }{
	"test_math_interpolate[zeros->ones ratio=0.000000001]":         {"4x3 zeros", "4x3 ones"},
	"test_math_interpolate[zeros->ones ratio=0.5]":                 {"4x3 zeros", "4x3 ones"},
	"test_math_interpolate[zeros->ones ratio=0.9999998808]":        {"4x3 zeros", "4x3 ones"},
	"test_math_interpolate_sparse[zeros->ones ratio=0.000000001]":  {"4x3 zeros (empty rows)", "4x3 ones"},
	"test_math_interpolate_sparse[zeros->ones ratio=0.5]":          {"4x3 zeros (empty rows)", "4x3 ones"},
	"test_math_interpolate_sparse[zeros->ones ratio=0.9999998808]": {"4x3 zeros (empty rows)", "4x3 ones"},
}

// conversions interprets the fixed-point conversion checks of
// test_math_u64_normalization and test_math_fixed_overflow. Rust's `/` is
// checked_div that panics on None, and I32F32::from_num(I64F64) is the
// floor-and-range conversion Fixed64ToFixed32.
var conversions = map[string]struct {
	desc string
	fn   func() string
}{
	"test_math_conversions[0]": {"test_math_u64_normalization: I64F64(1)/I64F64(21e15)", func() string {
		return i64f64Div(1, 21_000_000_000_000_000).RawString()
	}},
	"test_math_conversions[1]": {"test_math_u64_normalization: ->I32F32 of 1/21e15", func() string {
		return rawString(Fixed64ToFixed32(i64f64Div(1, 21_000_000_000_000_000)))
	}},
	"test_math_conversions[2]": {"test_math_u64_normalization: I64F64(4_889_444)/I64F64(21e15)", func() string {
		return i64f64Div(4_889_444, 21_000_000_000_000_000).RawString()
	}},
	"test_math_conversions[3]": {"test_math_u64_normalization: ->I32F32", func() string {
		return rawString(Fixed64ToFixed32(i64f64Div(4_889_444, 21_000_000_000_000_000)))
	}},
	"test_math_conversions[4]": {"test_math_fixed_overflow: alpha = 1 - I32F32(I64F64(900_000)/1e6)", func() string {
		return rawString(fixed.I32F32One - Fixed64ToFixed32(i64f64Div(900_000, 1_000_000)))
	}},
}

func i64f64Div(a, b uint64) fixed.I64F64 {
	q, ok := fixed.I64F64FromU64(a).CheckedDiv(fixed.I64F64FromU64(b))
	if !ok {
		panic("I64F64 division overflow")
	}
	return q
}

func rawString(x fixed.I32F32) string { return strconv.FormatInt(int64(x), 10) }

func interpolateInputs(t *testing.T, c *mathCase) (m1, m2 []float64, rows int) {
	in := c.Inputs
	if _, ok := in["mat1_f32"]; ok {
		return f32s(t, in["mat1_f32"]), f32s(t, in["mat2_f32"]), integer(t, in["rows"])
	}
	d, ok := interpolateDesc[c.Test]
	if !ok || d.mat1 != str(t, in["mat1"]) || d.mat2 != str(t, in["mat2"]) {
		t.Fatalf("no interpretation for mat1 %q, mat2 %q", in["mat1"], in["mat2"])
	}
	return repeat(0, 12), repeat(1, 12), 4
}

// interpolateRatio is I32F32::from_num(f64 literal); ratio_raw, when given,
// must agree.
func interpolateRatio(t *testing.T, c *mathCase) fixed.I32F32 {
	ratio := fromF64(t, c.Inputs["ratio_f64"])
	if r, ok := c.Inputs["ratio_raw"]; ok {
		checkScalar(t, ratio, raw(t, r), 0)
	}
	return ratio
}

func interpolateTarget(t *testing.T, c *mathCase, n int) []float64 {
	e := field(t, c.Expected, "f32")
	if isList(e) {
		return f32s(t, e)
	}
	if _, ok := interpolateDesc[c.Test]; !ok {
		t.Fatalf("scalar expected without an interpretation")
	}
	return repeat(f32s(t, []any{e})[0], n)
}

// ---- expected-value checks ----

func tolerance(t *testing.T, c *mathCase) fixed.I32F32 {
	switch tol := c.Tolerance.(type) {
	case json.Number:
		if tol.String() != "0" {
			t.Fatalf("unexpected scalar tolerance %s", tol)
		}
		return 0
	case map[string]any:
		if r, ok := tol["raw"]; ok {
			return raw(t, r)
		}
		// Rust: I32F32::from_num(epsilon as f64).
		return fromF64(t, tol["abs"])
	}
	t.Fatalf("unexpected tolerance %v", c.Tolerance)
	return 0
}

func checkVecExpected(t *testing.T, c *mathCase, got []fixed.I32F32) {
	t.Helper()
	checkVec(t, "expected", got, fixeds(f32s(t, field(t, c.Expected, "f32"))), tolerance(t, c))
}

// expectedMatrix reads a flat f32 target reshaped like Rust's
// vec_to_(sparse_)mat_fixed(target, rows, transpose).
func expectedMatrix(t *testing.T, c *mathCase) (vals []float64, rows int, transpose bool) {
	e := mapOf(t, c.Expected)
	v, ok := e["f32"]
	if !ok {
		v = e["f32_rowmajor"]
	}
	rows = integer(t, c.Inputs["rows"])
	if r, ok := e["rows"]; ok {
		rows = integer(t, r)
	}
	if tr, ok := e["transpose"]; ok {
		transpose = tr.(bool)
	}
	return f32s(t, v), rows, transpose
}

func checkDenseExpected(t *testing.T, c *mathCase, got [][]fixed.I32F32) {
	t.Helper()
	vals, rows, tr := expectedMatrix(t, c)
	checkDense(t, got, vecToMatFixed(t, vals, rows, tr), tolerance(t, c))
}

func checkSparseExpected(t *testing.T, c *mathCase, got [][]Pair) {
	t.Helper()
	vals, rows, tr := expectedMatrix(t, c)
	checkSparse(t, got, vecToSparseMatFixed(t, vals, rows, tr), tolerance(t, c))
}

func denseInplace(fn func([][]fixed.I32F32)) func(t *testing.T, c *mathCase) any {
	return func(t *testing.T, c *mathCase) any {
		m := inputDense(t, c)
		fn(m)
		checkDenseExpected(t, c, m)
		return m
	}
}

func inputMatrix(t *testing.T, c *mathCase) (vals []float64, rows int, transpose bool) {
	v, ok := c.Inputs["matrix_f32"]
	if !ok {
		v = c.Inputs["matrix_f32_rowmajor"]
	}
	if tr, ok := c.Inputs["transpose"]; ok {
		transpose = tr.(bool)
	}
	return f32s(t, v), integer(t, c.Inputs["rows"]), transpose
}

func inputDense(t *testing.T, c *mathCase) [][]fixed.I32F32 {
	vals, rows, tr := inputMatrix(t, c)
	return vecToMatFixed(t, vals, rows, tr)
}

func inputSparse(t *testing.T, c *mathCase) [][]Pair {
	vals, rows, tr := inputMatrix(t, c)
	return vecToSparseMatFixed(t, vals, rows, tr)
}

func absDiff(a, b fixed.I32F32) uint64 {
	if a >= b {
		return uint64(a) - uint64(b)
	}
	return uint64(b) - uint64(a)
}

func checkScalar(t *testing.T, got, want, eps fixed.I32F32) {
	t.Helper()
	if absDiff(got, want) > uint64(eps) {
		t.Errorf("got raw %d, want %d ± %d", got, want, eps)
	}
}

func checkVec(t *testing.T, what string, got, want []fixed.I32F32, eps fixed.I32F32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range got {
		if absDiff(got[i], want[i]) > uint64(eps) {
			t.Errorf("%s: [%d] raw %d, want %d ± %d", what, i, got[i], want[i], eps)
		}
	}
}

func checkU16(t *testing.T, got, want []uint16) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func checkDense(t *testing.T, got, want [][]fixed.I32F32, eps fixed.I32F32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("expected: got %d rows, want %d", len(got), len(want))
		return
	}
	for i := range got {
		checkVec(t, fmt.Sprintf("expected row %d", i), got[i], want[i], eps)
	}
}

func checkSparse(t *testing.T, got, want [][]Pair, eps fixed.I32F32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("expected: got %d rows, want %d", len(got), len(want))
		return
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Errorf("expected row %d: got %v, want %v", i, got[i], want[i])
			continue
		}
		for k := range got[i] {
			g, w := got[i][k], want[i][k]
			if g.J != w.J || absDiff(g.V, w.V) > uint64(eps) {
				t.Errorf("expected row %d entry %d: got %v, want %v ± %d", i, k, g, w, eps)
			}
		}
	}
}

// ---- literal conversion (meta.conventions) ----

// fromFloat is I32F32::from_num(float): the exact binary value rounded to
// the nearest multiple of 2^-32, ties to even. Scaling by 2^32 is exact in
// float64, so RoundToEven performs exactly that rounding. Out-of-range
// values saturate (from_num would panic; no vector needs it).
func fromFloat(f float64) fixed.I32F32 {
	r := math.RoundToEven(math.Ldexp(f, 32))
	switch {
	case r >= 0x1p63:
		return fixed.I32F32Max
	case r < -0x1p63:
		return fixed.I32F32Min
	}
	return fixed.I32F32(int64(r))
}

// literal returns the source text of a number given as a string or a JSON
// number; Rust's digit separators are removed.
func literal(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "_", "")
	case json.Number:
		return x.String()
	}
	t.Fatalf("not a numeric literal: %#v", v)
	return ""
}

// parseF32 parses an f32 literal; the float32 value is returned as float64.
func parseF32(s string) (float64, error) { return strconv.ParseFloat(s, 32) }

func mustF32(s string) fixed.I32F32 {
	f, err := parseF32(s)
	if err != nil {
		panic(err)
	}
	return fromFloat(f)
}

func f32s(t *testing.T, v any) []float64 {
	t.Helper()
	out := []float64{}
	for _, e := range list(t, v) {
		f, err := parseF32(literal(t, e))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func fromF32(t *testing.T, v any) fixed.I32F32 { return fixeds(f32s(t, []any{v}))[0] }

func f64(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(literal(t, v), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fromF64(t *testing.T, v any) fixed.I32F32 { return fromFloat(f64(t, v)) }

func fixedsF64(t *testing.T, v any) []fixed.I32F32 {
	out := []fixed.I32F32{}
	for _, e := range list(t, v) {
		out = append(out, fromF64(t, e))
	}
	return out
}

func fixeds(fs []float64) []fixed.I32F32 {
	out := make([]fixed.I32F32, 0, len(fs))
	for _, f := range fs {
		out = append(out, fromFloat(f))
	}
	return out
}

func ints(vs ...int64) []fixed.I32F32 {
	out := []fixed.I32F32{}
	for _, v := range vs {
		out = append(out, fixed.I32F32FromInt(v))
	}
	return out
}

func repeat(f float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// vecToMatFixed is the Rust test helper vec_to_mat_fixed: a row-major
// reshape into `rows` rows, transposed on request.
func vecToMatFixed(t *testing.T, v []float64, rows int, transpose bool) [][]fixed.I32F32 {
	t.Helper()
	if rows <= 0 || len(v)%rows != 0 {
		t.Fatalf("cannot reshape %d values into %d rows", len(v), rows)
	}
	cols := len(v) / rows
	mat := [][]fixed.I32F32{}
	if transpose {
		for col := range cols {
			vals := []fixed.I32F32{}
			for row := range rows {
				vals = append(vals, fromFloat(v[row*cols+col]))
			}
			mat = append(mat, vals)
		}
		return mat
	}
	for row := range rows {
		mat = append(mat, fixeds(v[row*cols:(row+1)*cols]))
	}
	return mat
}

// vecToSparseMatFixed is vec_to_sparse_mat_fixed: the same reshape keeping
// only entries whose f32 value is > 0.
func vecToSparseMatFixed(t *testing.T, v []float64, rows int, transpose bool) [][]Pair {
	t.Helper()
	if rows <= 0 || len(v)%rows != 0 {
		t.Fatalf("cannot reshape %d values into %d rows", len(v), rows)
	}
	cols := len(v) / rows
	mat := [][]Pair{}
	if transpose {
		for col := range cols {
			rowVec := []Pair{}
			for row := range rows {
				if x := v[row*cols+col]; x > 0 {
					rowVec = append(rowVec, Pair{uint16(row), fromFloat(x)})
				}
			}
			mat = append(mat, rowVec)
		}
		return mat
	}
	for row := range rows {
		rowVec := []Pair{}
		for col := range cols {
			if x := v[row*cols+col]; x > 0 {
				rowVec = append(rowVec, Pair{uint16(col), fromFloat(x)})
			}
		}
		mat = append(mat, rowVec)
	}
	return mat
}

// matToFixed is the Rust test helper mat_to_fixed over nested f32 literals.
func matToFixed(t *testing.T, v any) [][]fixed.I32F32 {
	out := [][]fixed.I32F32{}
	for _, row := range list(t, v) {
		out = append(out, fixeds(f32s(t, row)))
	}
	return out
}

// sparseF64 reads rows of [column, f64 value] pairs (I32F32::from_num(f64)).
func sparseF64(t *testing.T, v any) [][]Pair {
	out := [][]Pair{}
	for _, row := range list(t, v) {
		r := []Pair{}
		for _, e := range list(t, row) {
			p := list(t, e)
			r = append(r, Pair{uint16(integer(t, p[0])), fromF64(t, p[1])})
		}
		out = append(out, r)
	}
	return out
}

func i64f64Float(x fixed.I64F64) float64 {
	r, ok := new(big.Int).SetString(x.RawString(), 10)
	if !ok {
		panic("bad raw string")
	}
	f, _ := new(big.Float).SetMantExp(new(big.Float).SetInt(r), -64).Float64()
	return f
}

// ---- JSON plumbing ----

func list(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("not a list: %#v", v)
	}
	return l
}

func isList(v any) bool { _, ok := v.([]any); return ok }

func mapOf(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %#v", v)
	}
	return m
}

func field(t *testing.T, v any, key string) any {
	t.Helper()
	x, ok := mapOf(t, v)[key]
	if !ok {
		t.Fatalf("missing field %q in %#v", key, v)
	}
	return x
}

func str(t *testing.T, v any) string {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("not a string: %#v", v)
	}
	return s
}

func raw(t *testing.T, v any) fixed.I32F32 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a number: %#v", v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return fixed.I32F32(i)
}

func integer(t *testing.T, v any) int { return int(raw(t, v)) }

func raws(t *testing.T, v any) []fixed.I32F32 {
	out := []fixed.I32F32{}
	for _, e := range list(t, v) {
		out = append(out, raw(t, e))
	}
	return out
}

func u16s(t *testing.T, v any) []uint16 {
	out := []uint16{}
	for _, e := range list(t, v) {
		out = append(out, uint16(integer(t, e)))
	}
	return out
}

func u64s(t *testing.T, v any) []uint64 {
	out := []uint64{}
	for _, e := range list(t, v) {
		out = append(out, uint64(integer(t, e)))
	}
	return out
}

// canon converts a result to the JSON shape of python_port_output: raw
// integers, (column, raw) pairs, I64F64 raw values as decimal strings. Empty
// slices stay [] (never null) so [] and [[]] remain distinct.
func canon(t *testing.T, v any) any {
	switch x := v.(type) {
	case bool, string:
		return x
	case uint16:
		return x
	case fixed.I32F32:
		return int64(x)
	case fixed.I64F64:
		return x.RawString()
	case []bool:
		return append([]bool{}, x...)
	case []uint16:
		out := []int{}
		for _, e := range x {
			out = append(out, int(e))
		}
		return out
	case []fixed.I32F32:
		out := []int64{}
		for _, e := range x {
			out = append(out, int64(e))
		}
		return out
	case []fixed.I64F64:
		out := []string{}
		for _, e := range x {
			out = append(out, e.RawString())
		}
		return out
	case [][]fixed.I32F32:
		out := []any{}
		for _, row := range x {
			out = append(out, canon(t, row))
		}
		return out
	case [][]Pair:
		out := [][][2]int64{}
		for _, row := range x {
			r := [][2]int64{}
			for _, p := range row {
				r = append(r, [2]int64{int64(p.J), int64(p.V)})
			}
			out = append(out, r)
		}
		return out
	}
	t.Fatalf("canon: unsupported type %T", v)
	return nil
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
