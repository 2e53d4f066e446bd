package yuma

import (
	"taobox/chain/fixed"
	"taobox/chain/yuma/ymath"
)

// dense is epoch_dense_mechanism (run_epoch.rs:147-551), subtensor's
// test-only dense variant, composed from the literal ports of math.rs in
// ymath. It allocates freely: nothing on the chain path runs it. It differs
// from the sparse epoch as yuma-epoch.md §6 lists: no owner exemption or
// forced owner permit, the diagonal masked twice, no commit-reveal mask,
// recently registered bond columns zeroed rather than removed, and bond rows
// written densely for new-permit uids only.
func (ws *Workspace) dense(in *Input, out *Output) {
	n := in.N
	bar := in.BlockAtRegistration

	inactive := make([]bool, n)
	for i := range n {
		inactive[i] = satAddU64(in.LastUpdate[i], in.ActivityCutoffBlocks) < in.CurrentBlock
	}
	outdated := make([][]bool, n)
	for i := range n {
		outdated[i] = make([]bool, n)
		for j := range n {
			outdated[i][j] = in.LastUpdate[i] <= bar[j]
		}
	}
	lt := lastTempo(in)
	recently := make([]bool, n)
	for j := range n {
		recently[j] = lt <= bar[j]
	}

	ws.normalizedStake(in, false)
	stake := append([]fixed.I32F32(nil), ws.stake...)

	permits := append([]bool(nil), in.ValidatorPermit...)
	forbids := make([]bool, len(permits))
	for i, p := range permits {
		forbids[i] = !p
	}
	newPermits := ymath.IsTopkNonzero(stake, int(in.MaxAllowedValidators))

	active := append([]fixed.I32F32(nil), stake...)
	ymath.InplaceMaskVector(inactive, active)
	ymath.InplaceMaskVector(forbids, active)
	ymath.InplaceNormalize(active)

	weights := denseRows(in.Weights, n, func(v uint16) fixed.I32F32 { return ymath.U16ToFixed(v) })
	ymath.InplaceMaskRows(forbids, weights)
	if in.OwnerUID >= 0 {
		ymath.InplaceMaskDiagExceptIndex(weights, uint16(in.OwnerUID))
	} else {
		ymath.InplaceMaskDiag(weights)
	}
	ymath.InplaceMaskDiag(weights)
	ymath.InplaceMaskMatrix(outdated, weights)
	ymath.InplaceRowNormalize(weights)

	kappa := fixed.I32F32FromU64(uint64(in.Kappa)).SafeDiv(u16Max)
	consensus := ymath.WeightedMedianCol(active, weights, kappa)
	clipped := cloneRows(weights)
	ymath.InplaceColClip(clipped, consensus)
	vtrust := ymath.RowSum(clipped)

	incentive := ymath.Matmul(clipped, active)
	ymath.InplaceNormalize(incentive)

	beta := fixed.I32F32FromU64(uint64(in.BondsPenalty)).SafeDiv(u16Max)
	wfb := ymath.Interpolate(weights, clipped, beta)

	var dividends []fixed.I32F32
	var ema [][]fixed.I32F32
	if in.Yuma3 {
		bonds := denseRows(in.Bonds, n, u16Proportion)
		ymath.InplaceMaskCols(recently, bonds)
		ema = denseComputeBonds(in, wfb, bonds, consensus)
		norm := cloneRows(ema)
		ymath.InplaceColNormalize(norm)
		tbpv := ymath.RowSum(ymath.MatVecMul(norm, incentive))
		dividends = ymath.VecMul(tbpv, active)
		ymath.InplaceNormalize(dividends)
	} else {
		bonds := denseRows(in.Bonds, n, func(v uint16) fixed.I32F32 { return ymath.U16ToFixed(v) })
		ymath.InplaceMaskCols(recently, bonds)
		ymath.InplaceColNormalize(bonds)
		delta := ymath.RowHadamard(wfb, active)
		ymath.InplaceColNormalize(delta)
		ema = ymath.MatEma(delta, bonds, emaAlpha(in.BondsMovingAverage))
		ymath.InplaceColNormalize(ema)
		dividends = ymath.MatmulTranspose(ema, incentive)
		ymath.InplaceNormalize(dividends)
		ymath.InplaceColMaxUpscale(ema)
	}

	ws.inactive, ws.active, ws.consensus, ws.vtrust, ws.dividends = inactive, active, consensus, vtrust, dividends
	emission(in, ws, incentive, out)
	out.NewValidatorPermits = append(out.NewValidatorPermits[:0], newPermits...)
	out.Inactive = append(out.Inactive[:0], inactive...)
	out.LastTempo = lt

	// Bond rows: the Rust code zips new permits with the stored permit vector
	// and the EMA rows, so uids past the shortest of them are left untouched.
	out.NewBonds = make([][]Entry, n)
	out.BondsWritten = make([]bool, n)
	for i := range n {
		out.NewBonds[i] = append([]Entry{}, in.Bonds[i]...)
	}
	for i := range min(n, len(permits), len(ema)) {
		switch {
		case newPermits[i]:
			vals := ymath.VecFixedProportionsToU16(ema[i])
			row := make([]Entry, 0, min(n, len(vals)))
			for j := range min(n, len(vals)) {
				row = append(row, Entry{uint16(j), vals[j]})
			}
			out.NewBonds[i], out.BondsWritten[i] = row, true
		case permits[i]:
			out.NewBonds[i], out.BondsWritten[i] = []Entry{}, true
		}
	}
}

// denseComputeBonds is compute_bonds (run_epoch.rs): the liquid-alpha EMA
// when liquid alpha is on and some consensus is nonzero, else mat_ema with the
// scalar rate.
func denseComputeBonds(in *Input, wfb, bonds [][]fixed.I32F32, consensus []fixed.I32F32) [][]fixed.I32F32 {
	liquid := false
	for _, c := range consensus {
		liquid = liquid || c != 0
	}
	if in.LiquidAlpha && liquid {
		alphas := ymath.ComputeLiquidAlphaValues(wfb, bonds, consensus,
			fixed.I32F32FromInt(int64(in.AlphaSteepness)), u16Proportion(in.AlphaLow), u16Proportion(in.AlphaHigh))
		return ymath.MatEmaAlpha(wfb, bonds, alphas)
	}
	return ymath.MatEma(wfb, bonds, emaAlpha(in.BondsMovingAverage))
}

// denseRows is get_weights / get_bonds: an n×n matrix of zeros with each
// stored entry written at its column (a later duplicate overwrites).
func denseRows(rows [][]Entry, n int, conv func(uint16) fixed.I32F32) [][]fixed.I32F32 {
	m := make([][]fixed.I32F32, n)
	for i := range m {
		m[i] = make([]fixed.I32F32, n)
	}
	for i, row := range rows[:n] {
		for _, e := range row {
			if int(e.UID) < n {
				m[i][e.UID] = conv(e.Value)
			}
		}
	}
	return m
}

func cloneRows(m [][]fixed.I32F32) [][]fixed.I32F32 {
	c := make([][]fixed.I32F32, len(m))
	for i, r := range m {
		c[i] = append([]fixed.I32F32(nil), r...)
	}
	return c
}
