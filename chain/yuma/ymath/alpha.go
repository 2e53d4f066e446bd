package ymath

import "taobox/chain/fixed"

// AlphaSigmoid is run_epoch.rs alpha_sigmoid: the liquid-alpha EMA rate for
// one (validator, miner) cell. With diff = clamp(weight ⊖ consensus, 0, 1) when
// weight >= bond, else clamp(bond ⊖ weight, 0, 1), it returns
// clamp(low ⊕ sigmoid⊗(high ⊖ low), low, high) where
// sigmoid = 1 / (1 ⊕ ExpSafe((steepness / -100) ⊗ (diff ⊖ 0.5))), with
// saturating division.
func AlphaSigmoid(consensus, weight, bond, alphaLow, alphaHigh, alphaSigmoidSteepness fixed.I32F32) fixed.I32F32 {
	var zero fixed.I32F32
	one := fixed.I32F32One

	diffBuy := ClampValue(weight.SatSub(consensus), zero, one)
	diffSell := ClampValue(bond.SatSub(weight), zero, one)
	combinedDiff := diffSell
	if weight >= bond {
		combinedDiff = diffBuy
	}

	expInput := alphaSigmoidSteepness.
		SatDiv(fixed.I32F32FromInt(-100)).
		SatMul(combinedDiff.SatSub(fixed.I32F32Half))
	sigmoid := one.SatDiv(one.SatAdd(ExpSafe(expInput)))
	alpha := alphaLow.SatAdd(sigmoid.SatMul(alphaHigh.SatSub(alphaLow)))
	return ClampValue(alpha, alphaLow, alphaHigh)
}

// ComputeLiquidAlphaValues is run_epoch.rs compute_liquid_alpha_values with
// the subnet parameters passed in: AlphaSigmoid for each cell of the zipped
// weights/bonds rows and consensus (each row stops at the shortest of the
// three). It returns an empty matrix when weights and bonds differ in rows.
func ComputeLiquidAlphaValues(weights, bonds [][]fixed.I32F32, consensus []fixed.I32F32, alphaSigmoidSteepness, alphaLow, alphaHigh fixed.I32F32) [][]fixed.I32F32 {
	alphas := [][]fixed.I32F32{}
	if len(weights) != len(bonds) {
		return alphas
	}
	for i, wRow := range weights {
		bRow := bonds[i]
		rowAlphas := []fixed.I32F32{}
		for j := 0; j < len(wRow) && j < len(bRow) && j < len(consensus); j++ {
			rowAlphas = append(rowAlphas, AlphaSigmoid(consensus[j], wRow[j], bRow[j], alphaLow, alphaHigh, alphaSigmoidSteepness))
		}
		alphas = append(alphas, rowAlphas)
	}
	return alphas
}

// ComputeLiquidAlphaValuesSparse is run_epoch.rs
// compute_liquid_alpha_values_sparse with the subnet parameters passed in: a
// dense len(consensus)-wide alpha row per weights/bonds row pair. Each sparse
// row is walked once assuming ascending columns (entries below the current
// column are skipped for good, so an unsorted row reads some weights as 0);
// the column index is truncated to u16 as in Rust. It returns an empty matrix
// when weights and bonds differ in rows.
func ComputeLiquidAlphaValuesSparse(weights, bonds [][]Pair, consensus []fixed.I32F32, alphaSigmoidSteepness, alphaLow, alphaHigh fixed.I32F32) [][]fixed.I32F32 {
	alphas := make([][]fixed.I32F32, 0, len(consensus))
	if len(weights) != len(bonds) {
		return alphas
	}
	for i, wRow := range weights {
		bRow := bonds[i]
		rowAlphas := make([]fixed.I32F32, 0, len(wRow))
		wPos, bPos := 0, 0
		for jPos, consensusVal := range consensus {
			j := uint16(jPos)
			weight := peekColumn(wRow, &wPos, j)
			bond := peekColumn(bRow, &bPos, j)
			rowAlphas = append(rowAlphas, AlphaSigmoid(consensusVal, weight, bond, alphaLow, alphaHigh, alphaSigmoidSteepness))
		}
		alphas = append(alphas, rowAlphas)
	}
	return alphas
}

// peekColumn mirrors the Peekable walk of compute_liquid_alpha_values_sparse:
// skip entries with column < j, then return the value if the next column is
// j (without consuming it), else 0.
func peekColumn(row []Pair, pos *int, j uint16) fixed.I32F32 {
	for *pos < len(row) {
		p := row[*pos]
		if p.J < j {
			*pos++
			continue
		}
		if p.J == j {
			return p.V
		}
		break
	}
	return 0
}
