package ymath

import "taobox/chain/fixed"

// InplaceRowNormalize normalizes, in place, each row whose plain sum is > 0
// (safe_div); other rows are untouched.
func InplaceRowNormalize(x [][]fixed.I32F32) {
	for _, row := range x {
		rowSum := Sum(row)
		if rowSum > 0 {
			for j := range row {
				row[j] = row[j].SafeDiv(rowSum)
			}
		}
	}
}

// InplaceRowNormalizeSparse normalizes, in place, each sparse row whose plain
// sum is > 0 (safe_div).
func InplaceRowNormalizeSparse(sparseMatrix [][]Pair) {
	for _, row := range sparseMatrix {
		var rowSum fixed.I32F32
		for _, p := range row {
			rowSum += p.V
		}
		if rowSum > 0 {
			for j := range row {
				row[j].V = row[j].V.SafeDiv(rowSum)
			}
		}
	}
}

// RowSum returns the plain sum of each row; it returns an empty vector when
// the first row is empty.
func RowSum(x [][]fixed.I32F32) []fixed.I32F32 {
	if len(x) > 0 && len(x[0]) == 0 {
		return []fixed.I32F32{}
	}
	out := make([]fixed.I32F32, 0, len(x))
	for _, row := range x {
		out = append(out, Sum(row))
	}
	return out
}

// RowSumSparse returns the plain sum of each sparse row.
func RowSumSparse(sparseMatrix [][]Pair) []fixed.I32F32 {
	out := make([]fixed.I32F32, 0, len(sparseMatrix))
	for _, row := range sparseMatrix {
		var s fixed.I32F32
		for _, p := range row {
			s += p.V
		}
		out = append(out, s)
	}
	return out
}

// InplaceColNormalizeSparse divides each entry by its column's saturating
// sum (over columns < columns) where that sum is non-zero.
func InplaceColNormalizeSparse(sparseMatrix [][]Pair, columns uint16) {
	colSum := make([]fixed.I32F32, columns)
	for _, row := range sparseMatrix {
		for _, p := range row {
			if int(p.J) < len(colSum) {
				colSum[p.J] = colSum[p.J].SatAdd(p.V)
			}
		}
	}
	for _, row := range sparseMatrix {
		for k := range row {
			denom := GetSafe(colSum, int(row[k].J))
			if denom != 0 {
				row[k].V = row[k].V.SafeDiv(denom)
			}
		}
	}
}

// InplaceColNormalize divides each entry by its column's saturating sum where
// that sum is non-zero. Columns are sized by the longest row; short rows
// simply contribute and receive fewer entries.
func InplaceColNormalize(x [][]fixed.I32F32) {
	var colSums []fixed.I32F32
	for _, row := range x {
		if len(colSums) < len(row) {
			colSums = append(colSums, make([]fixed.I32F32, len(row)-len(colSums))...)
		}
		for j, v := range row {
			colSums[j] = colSums[j].SatAdd(v)
		}
	}
	if len(colSums) == 0 {
		return
	}
	for _, row := range x {
		for j := range row {
			if j >= len(colSums) {
				break
			}
			if colSums[j] != 0 {
				row[j] = row[j].SafeDiv(colSums[j])
			}
		}
	}
}

// InplaceColMaxUpscaleSparse divides each entry by its column maximum (the
// max starts at 0, so only positive entries raise it) where that max is
// non-zero. Entries with J >= columns are left unchanged.
func InplaceColMaxUpscaleSparse(sparseMatrix [][]Pair, columns uint16) {
	colMax := make([]fixed.I32F32, columns)
	for _, row := range sparseMatrix {
		for _, p := range row {
			if int(p.J) < len(colMax) && colMax[p.J] < p.V {
				colMax[p.J] = p.V
			}
		}
	}
	for _, row := range sparseMatrix {
		for k := range row {
			m := GetSafe(colMax, int(row[k].J))
			if m != 0 {
				row[k].V = row[k].V.SafeDiv(m)
			}
		}
	}
}

// InplaceColMaxUpscale divides each entry by its column maximum (starting at
// 0) where that max is non-zero; columns are sized by the longest row.
func InplaceColMaxUpscale(x [][]fixed.I32F32) {
	maxCols := 0
	for _, row := range x {
		maxCols = max(maxCols, len(row))
	}
	if maxCols == 0 {
		return
	}
	colMaxes := make([]fixed.I32F32, maxCols)
	for _, row := range x {
		for j, v := range row {
			if colMaxes[j] < v {
				colMaxes[j] = v
			}
		}
	}
	for _, row := range x {
		for j := range row {
			if m := colMaxes[j]; m != 0 {
				row[j] = row[j].SafeDiv(m)
			}
		}
	}
}

// InplaceMaskVector zeroes vector[i] where mask[i] is true. An empty mask
// does nothing; with a non-empty mask, indices past its end are zeroed.
func InplaceMaskVector(mask []bool, vector []fixed.I32F32) {
	if len(mask) == 0 {
		return
	}
	for i := range vector {
		if i >= len(mask) || mask[i] {
			vector[i] = 0
		}
	}
}

// InplaceMaskMatrix zeroes matrix[r][c] where mask[r][c] is true or missing.
// It does nothing when the mask is empty or its first row is empty.
func InplaceMaskMatrix(mask [][]bool, matrix [][]fixed.I32F32) {
	if len(mask) == 0 || len(mask[0]) == 0 {
		return
	}
	for r, row := range matrix {
		for c := range row {
			shouldZero := true
			if r < len(mask) && c < len(mask[r]) {
				shouldZero = mask[r][c]
			}
			if shouldZero {
				row[c] = 0
			}
		}
	}
}

// InplaceMaskRows replaces row r with zeros of the first row's length where
// mask[r] is true or missing.
func InplaceMaskRows(mask []bool, matrix [][]fixed.I32F32) {
	if len(matrix) == 0 {
		return
	}
	cols := len(matrix[0])
	for r := range matrix {
		if r >= len(mask) || mask[r] {
			matrix[r] = make([]fixed.I32F32, cols)
		}
	}
}

// InplaceMaskCols zeroes column c of every row where mask[c] is true or
// missing.
func InplaceMaskCols(mask []bool, matrix [][]fixed.I32F32) {
	if len(matrix) == 0 {
		return
	}
	for _, row := range matrix {
		for c := range row {
			if c >= len(mask) || mask[c] {
				row[c] = 0
			}
		}
	}
}

// InplaceMaskDiag zeroes the diagonal; it does nothing unless the matrix is
// non-empty and has as many rows as its first row has columns.
func InplaceMaskDiag(matrix [][]fixed.I32F32) {
	if len(matrix) == 0 || len(matrix[0]) == 0 {
		return
	}
	if len(matrix) != len(matrix[0]) {
		return
	}
	for idx, row := range matrix {
		if idx < len(row) {
			row[idx] = 0
		}
	}
}

// InplaceMaskDiagExceptIndex is InplaceMaskDiag that keeps the diagonal entry
// at exceptIndex (same preconditions).
func InplaceMaskDiagExceptIndex(matrix [][]fixed.I32F32, exceptIndex uint16) {
	if len(matrix) == 0 || len(matrix[0]) == 0 {
		return
	}
	if len(matrix) != len(matrix[0]) {
		return
	}
	ei := int(exceptIndex)
	var diagAtIndex fixed.I32F32
	hasDiag := ei < len(matrix) && ei < len(matrix[ei])
	if hasDiag {
		diagAtIndex = matrix[ei][ei]
	}
	InplaceMaskDiag(matrix)
	if hasDiag {
		matrix[ei][ei] = diagAtIndex
	}
}

// ScalarVecMaskSparseMatrix returns a copy without the entries (i, j) where
// maskFn(scalar, vector[j]) is true; a missing vector[j] reads as 0.
func ScalarVecMaskSparseMatrix(sparseMatrix [][]Pair, scalar uint64, vector []uint64, maskFn func(a, b uint64) bool) [][]Pair {
	result := make([][]Pair, 0, len(sparseMatrix))
	for _, row := range sparseMatrix {
		outRow := make([]Pair, 0, len(row))
		for _, p := range row {
			if !maskFn(scalar, GetSafe(vector, int(p.J))) {
				outRow = append(outRow, p)
			}
		}
		result = append(result, outRow)
	}
	return result
}

// MaskRowsSparse returns a copy in which rows with mask[i] true or missing
// are replaced by empty rows.
func MaskRowsSparse(mask []bool, sparseMatrix [][]Pair) [][]Pair {
	out := make([][]Pair, 0, len(sparseMatrix))
	for i, row := range sparseMatrix {
		if i >= len(mask) || mask[i] {
			out = append(out, []Pair{})
		} else {
			out = append(out, append([]Pair{}, row...))
		}
	}
	return out
}

// MaskDiagSparse returns a copy without the diagonal entries (J == row).
func MaskDiagSparse(sparseMatrix [][]Pair) [][]Pair {
	out := make([][]Pair, 0, len(sparseMatrix))
	for i, row := range sparseMatrix {
		outRow := []Pair{}
		for _, p := range row {
			if i != int(p.J) {
				outRow = append(outRow, p)
			}
		}
		out = append(out, outRow)
	}
	return out
}

// MaskDiagSparseExceptIndex returns a copy without the diagonal entries,
// except the one at (exceptIndex, exceptIndex).
func MaskDiagSparseExceptIndex(sparseMatrix [][]Pair, exceptIndex uint16) [][]Pair {
	out := make([][]Pair, 0, len(sparseMatrix))
	for i, row := range sparseMatrix {
		outRow := []Pair{}
		for _, p := range row {
			if i != int(p.J) || (i == int(exceptIndex) && p.J == exceptIndex) {
				outRow = append(outRow, p)
			}
		}
		out = append(out, outRow)
	}
	return out
}

// VecMaskSparseMatrix returns a copy without the entries (i, j) where
// maskFn(firstVector[i], secondVector[j]) is true; missing values read as 0.
func VecMaskSparseMatrix(sparseMatrix [][]Pair, firstVector, secondVector []uint64, maskFn func(a, b uint64) bool) [][]Pair {
	result := make([][]Pair, 0, len(sparseMatrix))
	for i, row := range sparseMatrix {
		fv := GetSafe(firstVector, i)
		outRow := make([]Pair, 0, len(row))
		for _, p := range row {
			if !maskFn(fv, GetSafe(secondVector, int(p.J))) {
				outRow = append(outRow, p)
			}
		}
		result = append(result, outRow)
	}
	return result
}

// RowHadamard returns vector[i] ⊗ matrix[i][j] for rows that have a vector
// entry (the result stops at the shorter of the two); [[]] for an empty
// matrix or empty first row.
func RowHadamard(matrix [][]fixed.I32F32, vector []fixed.I32F32) [][]fixed.I32F32 {
	if len(matrix) == 0 || len(matrix[0]) == 0 {
		return emptyMatrix()
	}
	out := make([][]fixed.I32F32, 0, len(matrix))
	for i, row := range matrix {
		if i >= len(vector) {
			break
		}
		scale := vector[i]
		newRow := make([]fixed.I32F32, 0, len(row))
		for _, m := range row {
			newRow = append(newRow, scale.SatMul(m))
		}
		out = append(out, newRow)
	}
	return out
}

// RowHadamardSparse returns matrix[i][j] ⊗ vector[i] for rows that have a
// vector entry (the result stops at the shorter of the two).
func RowHadamardSparse(sparseMatrix [][]Pair, vector []fixed.I32F32) [][]Pair {
	out := make([][]Pair, 0, len(sparseMatrix))
	for i, row := range sparseMatrix {
		if i >= len(vector) {
			break
		}
		scale := vector[i]
		newRow := make([]Pair, 0, len(row))
		for _, p := range row {
			newRow = append(newRow, Pair{p.J, p.V.SatMul(scale)})
		}
		out = append(out, newRow)
	}
	return out
}

// Matmul returns out[j] = Σ_i vector[i] ⊗ matrix[i][j], accumulated with
// saturating adds in row order, for j below the first row's width; missing
// vector entries count as 0. Empty matrix or first row gives [].
func Matmul(matrix [][]fixed.I32F32, vector []fixed.I32F32) []fixed.I32F32 {
	if len(matrix) == 0 {
		return []fixed.I32F32{}
	}
	cols := len(matrix[0])
	if cols == 0 {
		return []fixed.I32F32{}
	}
	acc := make([]fixed.I32F32, cols)
	for i, row := range matrix {
		scale := GetSafe(vector, i)
		for j, m := range row {
			if j >= cols {
				break
			}
			acc[j] = acc[j].SatAdd(scale.SatMul(m))
		}
	}
	return acc
}

// MatmulTranspose returns out[i] = Σ_j matrix[i][j] ⊗ vector[j] (saturating,
// over the common prefix of row and vector). Empty matrix or first row gives [].
func MatmulTranspose(matrix [][]fixed.I32F32, vector []fixed.I32F32) []fixed.I32F32 {
	if len(matrix) == 0 || len(matrix[0]) == 0 {
		return []fixed.I32F32{}
	}
	out := make([]fixed.I32F32, 0, len(matrix))
	for _, row := range matrix {
		var sum fixed.I32F32
		for j, m := range row {
			if j >= len(vector) {
				break
			}
			sum = sum.SatAdd(m.SatMul(vector[j]))
		}
		out = append(out, sum)
	}
	return out
}

// MatmulSparse returns out[j] = Σ_i vector[i] ⊗ matrix[i][j] (saturating, in
// stored order) for j < columns; missing vector entries count as 0.
func MatmulSparse(sparseMatrix [][]Pair, vector []fixed.I32F32, columns uint16) []fixed.I32F32 {
	result := make([]fixed.I32F32, columns)
	for i, row := range sparseMatrix {
		scale := GetSafe(vector, i)
		for _, p := range row {
			if int(p.J) < len(result) {
				result[p.J] = result[p.J].SatAdd(scale.SatMul(p.V))
			}
		}
	}
	return result
}

// MatmulTransposeSparse returns out[i] = Σ_j vector[j] ⊗ matrix[i][j]
// (saturating, in stored order); missing vector entries count as 0.
func MatmulTransposeSparse(sparseMatrix [][]Pair, vector []fixed.I32F32) []fixed.I32F32 {
	result := make([]fixed.I32F32, len(sparseMatrix))
	for i, row := range sparseMatrix {
		var acc fixed.I32F32
		for _, p := range row {
			acc = acc.SatAdd(GetSafe(vector, int(p.J)).SatMul(p.V))
		}
		result[i] = acc
	}
	return result
}

// InplaceColClip sets x[i][j] = min(threshold[j], x[i][j]) in place; entries
// beyond the threshold vector are untouched.
func InplaceColClip(x [][]fixed.I32F32, colThreshold []fixed.I32F32) {
	for _, row := range x {
		for j := range row {
			if j >= len(colThreshold) {
				break
			}
			row[j] = colThreshold[j].Min(row[j])
		}
	}
}

// ColClipSparse returns a copy with entries above their column threshold
// (missing threshold = 0) clipped to it; a clipped entry whose threshold is
// <= 0 is dropped.
func ColClipSparse(sparseMatrix [][]Pair, colThreshold []fixed.I32F32) [][]Pair {
	result := make([][]Pair, 0, len(sparseMatrix))
	for _, row := range sparseMatrix {
		outRow := make([]Pair, 0, len(row))
		for _, p := range row {
			th := GetSafe(colThreshold, int(p.J))
			if th < p.V {
				if th > 0 {
					outRow = append(outRow, Pair{p.J, th})
				}
			} else {
				outRow = append(outRow, p)
			}
		}
		result = append(result, outRow)
	}
	return result
}

// MatVecMul returns VecMul(row, vector) for every row (checked products, 0 on
// overflow, truncated to the shorter length); [[]] for an empty matrix or
// empty first row.
func MatVecMul(matrix [][]fixed.I32F32, vector []fixed.I32F32) [][]fixed.I32F32 {
	if len(matrix) == 0 || len(matrix[0]) == 0 {
		return emptyMatrix()
	}
	out := make([][]fixed.I32F32, 0, len(matrix))
	for _, row := range matrix {
		out = append(out, VecMul(row, vector))
	}
	return out
}

// MatVecMulSparse returns matrix[i][j] ⊗ vector[j] (saturating), dropping
// zero products and entries whose column has no vector entry.
func MatVecMulSparse(matrix [][]Pair, vector []fixed.I32F32) [][]Pair {
	result := make([][]Pair, len(matrix))
	for i, row := range matrix {
		result[i] = []Pair{}
		for _, p := range row {
			if int(p.J) < len(vector) {
				nv := p.V.SatMul(vector[p.J])
				if nv != 0 {
					result[i] = append(result[i], Pair{p.J, nv})
				}
			}
		}
	}
	return result
}
