package yuma

import (
	"taobox/chain/fixed"
	"taobox/chain/yuma/ymath"
)

// Reference runs the sparse epoch through referenceSparse after validating
// the input. It is the baseline of the benchmarks and the oracle of the
// differential tests: the fast engine (and later the GPU engine) must match
// it bit for bit on every input.
func Reference(in *Input) (*Output, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.Variant == Dense {
		var ws Workspace
		out := new(Output)
		ws.dense(in, out)
		return out, nil
	}
	return referenceSparse(in), nil
}

// referenceSparse is epoch_mechanism (run_epoch.rs:566-1075) written step by
// step with the literal math.rs ports of ymath, Vec<Vec<(u16, I32F32)>> and
// all. It shares no code with the fast engine except the stake and emission
// arithmetic checked by the vectors, so the differential tests below compare
// two independent readings of the Rust code. It is also the benchmark
// baseline: what a straight port of subtensor's Vec<Vec<_>> code costs.
func referenceSparse(in *Input) *Output {
	n := in.N
	hasOwner := in.OwnerUID >= 0
	inactive := make([]bool, n)
	for i := range n {
		inactive[i] = satAddU64(in.LastUpdate[i], in.ActivityCutoffBlocks) < in.CurrentBlock
	}
	bar := in.BlockAtRegistration

	tw := taoWeight(in.TaoWeight)
	total := make([]fixed.I64F64, n)
	for i := range n {
		t := fixed.I64F64FromU64(in.AlphaStake[i]).SatAdd(fixed.I64F64FromU64(in.TaoStake[i]).SatMul(tw))
		if !(hasOwner && i == in.OwnerUID) && t.FloorU64() < in.StakeThreshold {
			t = fixed.I64F64{}
		}
		total[i] = t
	}
	ymath.InplaceNormalize64(total)
	stake := ymath.VecFixed64ToFixed32(total)

	permits := append([]bool(nil), in.ValidatorPermit...)
	if hasOwner && in.OwnerUID < len(permits) {
		permits[in.OwnerUID] = true
	}
	forbids := make([]bool, len(permits))
	for i, p := range permits {
		forbids[i] = !p
	}
	newPermits := ymath.IsTopkNonzero(stake, int(in.MaxAllowedValidators))
	if hasOwner && in.OwnerUID < n {
		newPermits[in.OwnerUID] = true
	}

	active := append([]fixed.I32F32(nil), stake...)
	ymath.InplaceMaskVector(inactive, active)
	ymath.InplaceMaskVector(forbids, active)
	ymath.InplaceNormalize(active)

	weights := pairRows(in.Weights, func(v uint16) fixed.I32F32 { return ymath.U16ToFixed(v) })
	weights = ymath.MaskRowsSparse(forbids, weights)
	if hasOwner {
		weights = ymath.MaskDiagSparseExceptIndex(weights, uint16(in.OwnerUID))
	} else {
		weights = ymath.MaskDiagSparse(weights)
	}
	weights = ymath.VecMaskSparseMatrix(weights, in.LastUpdate, bar, func(u, r uint64) bool { return u <= r })
	if in.CommitReveal {
		cb := in.CommitBlocks
		if cb == nil {
			cb = make([]uint64, n)
			for i := range cb {
				cb[i] = NoCommit
			}
		}
		weights = ymath.VecMaskSparseMatrix(weights, cb, bar, func(c, r uint64) bool { return c < r })
	}
	ymath.InplaceRowNormalizeSparse(weights)

	kappa := fixed.I32F32FromU64(uint64(in.Kappa)).SafeDiv(u16Max)
	consensus := ymath.WeightedMedianColSparse(active, weights, uint16(n), kappa)
	clipped := ymath.ColClipSparse(weights, consensus)
	vtrust := ymath.RowSumSparse(clipped)
	incentive := ymath.MatmulSparse(clipped, active, uint16(n))
	ymath.InplaceNormalize(incentive)

	beta := fixed.I32F32FromU64(uint64(in.BondsPenalty)).SafeDiv(u16Max)
	wfb := ymath.InterpolateSparse(weights, clipped, uint16(n), beta)
	lt := lastTempo(in)
	older := func(l, r uint64) bool { return l <= r }
	var dividends []fixed.I32F32
	var ema [][]ymath.Pair
	if in.Yuma3 {
		bonds := pairRows(in.Bonds, u16Proportion)
		bonds = ymath.ScalarVecMaskSparseMatrix(bonds, lt, bar, older)
		liquid := false
		for _, c := range consensus {
			liquid = liquid || c != 0
		}
		if in.LiquidAlpha && liquid {
			alphas := ymath.ComputeLiquidAlphaValuesSparse(wfb, bonds, consensus,
				fixed.I32F32FromInt(int64(in.AlphaSteepness)), u16Proportion(in.AlphaLow), u16Proportion(in.AlphaHigh))
			ema = ymath.MatEmaAlphaSparse(wfb, bonds, alphas)
		} else {
			ema = ymath.MatEmaSparse(wfb, bonds, emaAlpha(in.BondsMovingAverage))
		}
		norm := make([][]ymath.Pair, len(ema))
		for i, r := range ema {
			norm[i] = append([]ymath.Pair(nil), r...)
		}
		ymath.InplaceColNormalizeSparse(norm, uint16(n))
		tbpv := ymath.RowSumSparse(ymath.MatVecMulSparse(norm, incentive))
		dividends = ymath.VecMul(tbpv, active)
		ymath.InplaceNormalize(dividends)
	} else {
		bonds := pairRows(in.Bonds, func(v uint16) fixed.I32F32 { return ymath.U16ToFixed(v) })
		bonds = ymath.ScalarVecMaskSparseMatrix(bonds, lt, bar, older)
		ymath.InplaceColNormalizeSparse(bonds, uint16(n))
		delta := ymath.RowHadamardSparse(wfb, active)
		ymath.InplaceColNormalizeSparse(delta, uint16(n))
		ema = ymath.MatEmaSparse(delta, bonds, emaAlpha(in.BondsMovingAverage))
		ymath.InplaceColNormalizeSparse(ema, uint16(n))
		dividends = ymath.MatmulTransposeSparse(ema, incentive)
		ymath.InplaceNormalize(dividends)
		ymath.InplaceColMaxUpscaleSparse(ema, uint16(n))
	}

	// Emission, written out again rather than shared with the engine.
	combined := make([]fixed.I32F32, n)
	for i := range n {
		combined[i] = incentive[i].SatAdd(dividends[i])
	}
	esum := ymath.Sum(combined)
	nse := append([]fixed.I32F32(nil), incentive...)
	nve := append([]fixed.I32F32(nil), dividends...)
	nce := append([]fixed.I32F32(nil), combined...)
	ymath.InplaceNormalizeUsingSum(nse, esum)
	ymath.InplaceNormalizeUsingSum(nve, esum)
	ymath.InplaceNormalize(nce)
	if esum == 0 {
		src := active
		if ymath.IsZero(active) {
			src = stake
		}
		nve = append([]fixed.I32F32(nil), src...)
		nce = append([]fixed.I32F32(nil), src...)
	}
	rao := fixed.I96F32FromU64(in.RaoEmission)
	toRao := func(v []fixed.I32F32) []uint64 {
		r := make([]uint64, len(v))
		for i, x := range v {
			r[i] = fixed.I96F32FromI32F32(x).SatMul(rao).FloorU64()
		}
		return r
	}
	out := &Output{
		StakeWeight: ymath.VecFixedProportionsToU16(stake), Consensus: ymath.VecFixedProportionsToU16(consensus),
		Incentive: ymath.VecFixedProportionsToU16(incentive), Dividends: ymath.VecFixedProportionsToU16(dividends),
		ValidatorTrust: ymath.VecFixedProportionsToU16(vtrust), ServerEmission: toRao(nse),
		ValidatorEmission: toRao(nve), Emission: toRao(nce), NewValidatorPermits: newPermits,
		Inactive: inactive, LastTempo: lt, NewBonds: make([][]Entry, n), BondsWritten: make([]bool, n),
	}
	for i := range n {
		out.BondsWritten[i] = true
		out.NewBonds[i] = []Entry{}
		if newPermits[i] {
			for _, p := range ema[i] {
				out.NewBonds[i] = append(out.NewBonds[i], Entry{p.J, ymath.FixedProportionToU16(p.V)})
			}
		}
	}
	raw := func(v []fixed.I32F32) []int64 {
		r := make([]int64, len(v))
		for i, x := range v {
			r[i] = int64(x)
		}
		return r
	}
	out.Raw = RawTerms{raw(stake), raw(active), raw(consensus), raw(incentive), raw(dividends), raw(vtrust)}
	return out
}

func pairRows(rows [][]Entry, conv func(uint16) fixed.I32F32) [][]ymath.Pair {
	m := make([][]ymath.Pair, len(rows))
	for i, row := range rows {
		m[i] = make([]ymath.Pair, 0, len(row))
		for _, e := range row {
			m[i] = append(m[i], ymath.Pair{J: e.UID, V: conv(e.Value)})
		}
	}
	return m
}
