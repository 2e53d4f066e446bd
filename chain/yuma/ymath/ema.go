package ymath

import "taobox/chain/fixed"

// Interpolate returns mat1 ⊕ ratio⊗(mat2 ⊖ mat1) element-wise. ratio == 0
// returns a copy of mat1 and ratio == 1 a copy of mat2 (any shapes). Otherwise
// an empty mat1 or empty first row gives [[]]; the result has mat1's row count
// and first-row width, computed over the common prefix of each row pair (rows
// past mat2's end, and cells past either row's end, stay 0).
func Interpolate(mat1, mat2 [][]fixed.I32F32, ratio fixed.I32F32) [][]fixed.I32F32 {
	if ratio == 0 {
		return cloneDense(mat1)
	}
	if ratio == fixed.I32F32One {
		return cloneDense(mat2)
	}
	if len(mat1) == 0 || len(mat1[0]) == 0 {
		return emptyMatrix()
	}
	cols := len(mat1[0])
	result := make([][]fixed.I32F32, len(mat1))
	for i := range result {
		result[i] = make([]fixed.I32F32, cols)
	}
	for i, row1 := range mat1 {
		if i >= len(mat2) {
			break
		}
		row2, outRow := mat2[i], result[i]
		for j := 0; j < len(row1) && j < len(row2) && j < len(outRow); j++ {
			v1, v2 := row1[j], row2[j]
			outRow[j] = v1.SatAdd(ratio.SatMul(v2.SatSub(v1)))
		}
	}
	return result
}

// InterpolateSparse returns mat1 ⊕ ratio⊗(mat2 ⊖ mat1) on the densified rows
// (columns wide; entries with J >= columns ignored, a later duplicate wins),
// keeping results > 0 in column order. ratio == 0 returns a copy of mat1;
// ratio == 1, or a row-count mismatch, returns a copy of mat2.
func InterpolateSparse(mat1, mat2 [][]Pair, columns uint16, ratio fixed.I32F32) [][]Pair {
	if ratio == 0 {
		return cloneSparse(mat1)
	}
	if ratio == fixed.I32F32One {
		return cloneSparse(mat2)
	}
	if len(mat1) != len(mat2) {
		return cloneSparse(mat2)
	}
	rows := len(mat1)
	result := make([][]Pair, rows)
	for i := range rows {
		result[i] = []Pair{}
		row1 := densify(mat1[i], int(columns))
		row2 := densify(mat2[i], int(columns))
		for j := range int(columns) {
			v1, v2 := row1[j], row2[j]
			interp := v1.SatAdd(ratio.SatMul(v2.SatSub(v1)))
			if 0 < interp {
				result[i] = append(result[i], Pair{uint16(j), interp})
			}
		}
	}
	return result
}

// densify writes a sparse row into a zero vector of the given width,
// ignoring out-of-range columns; a later duplicate column overwrites.
func densify(row []Pair, width int) []fixed.I32F32 {
	out := make([]fixed.I32F32, width)
	for _, p := range row {
		if int(p.J) < width {
			out[p.J] = p.V
		}
	}
	return out
}

// MatEma returns alpha⊗new ⊕ (1⊖alpha)⊗old element-wise over the common
// prefix of rows and of each row pair; [[]] when new is empty or its first
// row is empty.
func MatEma(newM, old [][]fixed.I32F32, alpha fixed.I32F32) [][]fixed.I32F32 {
	if len(newM) == 0 || len(newM[0]) == 0 {
		return emptyMatrix()
	}
	oneMinusAlpha := fixed.I32F32One.SatSub(alpha)
	out := make([][]fixed.I32F32, 0, len(newM))
	for i, newRow := range newM {
		if i >= len(old) {
			break
		}
		oldRow := old[i]
		n := min(len(newRow), len(oldRow))
		rowOut := make([]fixed.I32F32, 0, n)
		for j := range n {
			rowOut = append(rowOut, alpha.SatMul(newRow[j]).SatAdd(oneMinusAlpha.SatMul(oldRow[j])))
		}
		out = append(out, rowOut)
	}
	return out
}

// MatEmaSparse is the sparse EMA: each row is densified to len(new) columns
// (the matrix is assumed square), alpha⊗new is added first and then
// (1⊖alpha)⊗old, all saturating; entries > 0 are kept. A row of new past the
// end of old gets only the alpha⊗new term. An empty new gives [].
func MatEmaSparse(newM, old [][]Pair, alpha fixed.I32F32) [][]Pair {
	oneMinusAlpha := fixed.I32F32One.SatSub(alpha)
	n := len(newM)
	if n == 0 {
		return [][]Pair{}
	}
	result := make([][]Pair, 0, n)
	for i, newRow := range newM {
		acc := make([]fixed.I32F32, n)
		for _, p := range newRow {
			if int(p.J) < n {
				acc[p.J] = acc[p.J].SatAdd(alpha.SatMul(p.V))
			}
		}
		if i < len(old) {
			for _, p := range old[i] {
				if int(p.J) < n {
					acc[p.J] = acc[p.J].SatAdd(oneMinusAlpha.SatMul(p.V))
				}
			}
		}
		outRow := []Pair{}
		for j, v := range acc {
			if v > 0 {
				outRow = append(outRow, Pair{uint16(j), v})
			}
		}
		result = append(result, outRow)
	}
	return result
}

// MatEmaAlphaSparse is the per-entry-alpha sparse EMA: for each entry of new
// with a column inside its alpha row, min((1⊖a)⊗old ⊕ max(a⊗new, 0), 1) is
// kept when > 0. Old entries whose column is absent from new are dropped (not
// decayed). If the three row counts differ it returns a copy of new.
func MatEmaAlphaSparse(newM, old [][]Pair, alpha [][]fixed.I32F32) [][]Pair {
	if len(newM) != len(old) || len(newM) != len(alpha) {
		return cloneSparse(newM)
	}
	one := fixed.I32F32One
	result := make([][]Pair, 0, len(newM))
	for i, newRow := range newM {
		oldRow, alphaRow := old[i], alpha[i]
		decayed := make([]fixed.I32F32, len(alphaRow))
		for _, p := range oldRow {
			if int(p.J) < len(alphaRow) {
				// Assignment, not accumulation: a duplicate old column overwrites.
				decayed[p.J] = one.SatSub(alphaRow[p.J]).SatMul(p.V)
			}
		}
		outRow := []Pair{}
		for _, p := range newRow {
			if int(p.J) < len(alphaRow) {
				a := alphaRow[p.J]
				inc := a.SatMul(p.V).Max(0)
				val := decayed[p.J].SatAdd(inc).Min(one)
				if val > 0 {
					outRow = append(outRow, Pair{p.J, val})
				}
			}
		}
		result = append(result, outRow)
	}
	return result
}

// MatEmaAlpha is the per-entry-alpha dense EMA min((1⊖a)⊗old ⊕ max(a⊗new, 0),
// 1). It returns [[]] when new is empty or its first row is empty, a copy of
// old when the row counts differ, and a copy of new when any row lengths
// differ.
func MatEmaAlpha(newM, old, alpha [][]fixed.I32F32) [][]fixed.I32F32 {
	if len(newM) == 0 || len(newM[0]) == 0 {
		return emptyMatrix()
	}
	if len(newM) != len(old) || len(newM) != len(alpha) {
		return cloneDense(old)
	}
	for i, nrow := range newM {
		if len(nrow) != len(old[i]) || len(nrow) != len(alpha[i]) {
			return cloneDense(newM)
		}
	}
	one := fixed.I32F32One
	out := make([][]fixed.I32F32, 0, len(newM))
	for i, nrow := range newM {
		orow, arow := old[i], alpha[i]
		r := make([]fixed.I32F32, 0, len(nrow))
		for j := range nrow {
			n, o, a := nrow[j], orow[j], arow[j]
			oneMinusA := one.SatSub(a)
			decayed := oneMinusA.SatMul(o)
			inc := a.SatMul(n).Max(0)
			r = append(r, decayed.SatAdd(inc).Min(one))
		}
		out = append(out, r)
	}
	return out
}
