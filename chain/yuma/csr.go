package yuma

import "taobox/chain/fixed"

// csr is a sparse matrix in compressed-row form: row i holds the entries
// col[ptr[i]:ptr[i+1]] and val[ptr[i]:ptr[i+1]], in stored order (not
// necessarily sorted, duplicates allowed) exactly like subtensor's
// Vec<Vec<(u16, I32F32)>>. Flat slices keep the epoch free of per-row
// allocations and let a GPU kernel mirror every loop.
type csr struct {
	ptr []int32
	col []uint16
	val []fixed.I32F32
}

// builder returns m's arrays emptied for rebuilding, with the leading 0 of
// ptr in place. Builders append to these local slices (which the compiler
// keeps in registers) and hand them back with set.
func (m *csr) builder() (ptr []int32, col []uint16, val []fixed.I32F32) {
	return append(m.ptr[:0], 0), m.col[:0], m.val[:0]
}

// set stores the arrays a builder filled.
func (m *csr) set(ptr []int32, col []uint16, val []fixed.I32F32) {
	m.ptr, m.col, m.val = ptr, col, val
}

// rows returns the number of closed rows.
func (m *csr) rows() int { return len(m.ptr) - 1 }

// row returns the bounds of row i.
func (m *csr) row(i int) (lo, hi int32) { return m.ptr[i], m.ptr[i+1] }

// copyFrom makes m an independent copy of src.
func (m *csr) copyFrom(src *csr) {
	m.ptr = append(m.ptr[:0], src.ptr...)
	m.col = append(m.col[:0], src.col...)
	m.val = append(m.val[:0], src.val...)
}

// colNormalize is inplace_col_normalize_sparse: column sums use saturating
// adds; entries of columns with a nonzero sum are divided by it (safe_div).
// sums is scratch of length n.
func (m *csr) colNormalize(sums []fixed.I32F32) {
	clear(sums)
	for k, j := range m.col {
		if int(j) < len(sums) {
			sums[j] = sums[j].SatAdd(m.val[k])
		}
	}
	for k, j := range m.col {
		if int(j) < len(sums) && sums[j] != 0 {
			m.val[k] = m.val[k].SafeDiv(sums[j])
		}
	}
}

// colMaxUpscale is inplace_col_max_upscale_sparse: each entry is divided by
// its column's maximum (which starts at 0), when that maximum is nonzero.
func (m *csr) colMaxUpscale(maxs []fixed.I32F32) {
	clear(maxs)
	for k, j := range m.col {
		if int(j) < len(maxs) && maxs[j] < m.val[k] {
			maxs[j] = m.val[k]
		}
	}
	for k, j := range m.col {
		if int(j) < len(maxs) && maxs[j] != 0 {
			m.val[k] = m.val[k].SafeDiv(maxs[j])
		}
	}
}

// normalize is inplace_normalize: divide by the plain (wrapping) sum unless
// that sum is zero.
func normalize(x []fixed.I32F32) {
	var sum fixed.I32F32
	for _, v := range x {
		sum += v
	}
	normalizeBy(x, sum)
}

// normalizeBy is inplace_normalize_using_sum.
func normalizeBy(x []fixed.I32F32, sum fixed.I32F32) {
	if sum == 0 {
		return
	}
	for i, v := range x {
		x[i] = v.SafeDiv(sum)
	}
}

// sumOf is the plain (wrapping) Iterator::sum of subtensor.
func sumOf(x []fixed.I32F32) fixed.I32F32 {
	var s fixed.I32F32
	for _, v := range x {
		s += v
	}
	return s
}

// u16Max is I32F32(65535).
const u16Max = fixed.I32F32(65535 << 32)

// proportionToU16 is fixed_proportion_to_u16: floor_u16_sat(x ⊗ 65535).
// For 0 <= x <= 1 (every bond and normalized share) the product is below 2^48
// and its floor is a shift, which is what the general path computes too.
func proportionToU16(x fixed.I32F32) uint16 {
	if uint64(x) <= 1<<32 {
		return uint16(uint64(x) * 65535 >> 32)
	}
	return x.SatMul(u16Max).FloorU16()
}

// u16Proportion is u16_proportion_to_fixed: I32F32(x) safe_div I32F32(65535)
// = trunc((x·2^32·2^32) / (65535·2^32)) = trunc(x·2^32 / 65535), a division
// by a constant that fits 64 bits.
func u16Proportion(x uint16) fixed.I32F32 { return fixed.I32F32(uint64(x) << 32 / 65535) }
