package yuma

import (
	"math"
	"math/bits"

	"taobox/chain/fixed"
)

// Workspace holds the scratch memory of one epoch so that running epoch after
// epoch allocates nothing once the buffers have grown to the subnet's size.
// A Workspace is not safe for concurrent use; give each goroutine its own.
// The zero value is ready to use.
type Workspace struct {
	// per-uid vectors
	inactive, forbids, permits, newPermits []bool
	stake64                                []fixed.I64F64
	stake, active, useStake                []fixed.I32F32
	consensus, vtrust, ranks, dividends    []fixed.I32F32
	nse, nve, nce, combined, colScratch    []fixed.I32F32
	keys                                   []uint64 // TopkNonzero's scratch
	commitBlocks                           []uint64

	// matrices
	w, clipped, wfb, bonds, ema, delta csr

	// weighted median: the column-major n × k score matrix, or for large
	// subnets the active rows' weights indexed by column and one column's
	// scores (see weightedMedianCols)
	score                   []fixed.I32F32
	colNonzero              []bool
	colPtr, colFill, colRow []int32
	colVal                  []fixed.I32F32
	wmCur, wmLow, wmHigh    []wmPair

	// dense row scratch for the row-wise sparse operations
	rowA, rowB, rowC []fixed.I32F32
	rowMark          []uint32
	rowGen           uint32

	alphaCache alphaCache
}

// Epoch runs one epoch of the variant in.Variant and returns a fresh Output.
// It validates the input first and returns a *FieldError if it is malformed.
func Epoch(in *Input) (*Output, error) {
	var ws Workspace
	out := new(Output)
	if err := ws.Epoch(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Epoch runs one epoch into out, reusing out's slices and the workspace's
// scratch. The input is not modified and out shares no memory with it.
func (ws *Workspace) Epoch(in *Input, out *Output) error {
	if err := in.Validate(); err != nil {
		return err
	}
	ws.run(in, out)
	return nil
}

// grow returns s resized to n, reusing its array when it is large enough.
// The contents are unspecified; callers overwrite or clear them.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n, n+n/4)
}

// lastTempo is the block the recently-registered bond mask compares against
// (run_epoch.rs:835-840): LastMechansimStepBlock+1, or current_block - tempo
// (saturating) when no epoch has distributed yet.
func lastTempo(in *Input) uint64 {
	if in.LastMechanismStepBlock == 0 {
		if in.CurrentBlock < in.Tempo {
			return 0
		}
		return in.CurrentBlock - in.Tempo
	}
	return satAddU64(in.LastMechanismStepBlock, 1)
}

func satAddU64(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// taoWeight is get_tao_weight as I64F64: U96F32(w) safe_div U96F32(u64::MAX).
func taoWeight(w uint64) fixed.I64F64 {
	return fixed.I64F64FromU96F32(fixed.U96F32FromU64(w).SafeDiv(fixed.U96F32FromU64(math.MaxUint64)))
}

// emaAlpha is the scalar bonds EMA rate 1 - I32F32(I64F64(bma)/1e6).
func emaAlpha(bma uint64) fixed.I32F32 {
	q := fixed.I64F64FromU64(bma).SafeDiv(fixed.I64F64FromU64(1_000_000))
	return fixed.I32F32One.SatSub(q.I32F32())
}

// normalizedStake computes the filtered, normalized stake (steps 2.1-2.4 of
// yuma-epoch.md §4) into ws.stake. ownerExempt is false for the dense variant.
func (ws *Workspace) normalizedStake(in *Input, ownerExempt bool) {
	n := in.N
	tw := taoWeight(in.TaoWeight)
	ws.stake64 = grow(ws.stake64, n)
	var sum fixed.I64F64
	for i := range n {
		t := fixed.I64F64FromU64(in.AlphaStake[i])
		if in.TaoStake[i] != 0 && !tw.IsZero() {
			t = t.SatAdd(fixed.I64F64FromU64(in.TaoStake[i]).SatMul(tw))
		}
		if !(ownerExempt && i == in.OwnerUID) && t.FloorU64() < in.StakeThreshold {
			t = fixed.I64F64{}
		}
		ws.stake64[i] = t
		sum = sum.Add(t)
	}
	ws.stake = grow(ws.stake, n)
	for i, t := range ws.stake64 {
		if sum.IsZero() {
			ws.stake[i] = t.I32F32()
		} else {
			ws.stake[i] = t.DivI32F32(sum)
		}
	}
}

// topkNonzero is is_topk_nonzero (TopkNonzero with the workspace's
// scratch).
func (ws *Workspace) topkNonzero(v []fixed.I32F32, k int, res []bool) {
	ws.keys = TopkNonzero(v, k, res, ws.keys)
}

// maskVector is inplace_mask_vector: an empty mask does nothing; past the end
// of a non-empty mask every entry is masked.
func maskVector(mask []bool, v []fixed.I32F32) {
	if len(mask) == 0 {
		return
	}
	for i := range v {
		if i >= len(mask) || mask[i] {
			v[i] = 0
		}
	}
}

// sparse is epoch_mechanism (run_epoch.rs:566-1075) over flat slices.
func (ws *Workspace) sparse(in *Input, out *Output) {
	n := in.N
	hasOwner := in.OwnerUID >= 0
	owner := in.OwnerUID

	// == Active ==
	ws.inactive = grow(ws.inactive, n)
	for i := range n {
		ws.inactive[i] = satAddU64(in.LastUpdate[i], in.ActivityCutoffBlocks) < in.CurrentBlock
	}

	// == Stake ==
	ws.normalizedStake(in, true)

	// == Permits == (the stored vector may be shorter than n)
	np := len(in.ValidatorPermit)
	ws.permits = append(ws.permits[:0], in.ValidatorPermit...)
	if hasOwner && owner < np {
		ws.permits[owner] = true
	}
	ws.forbids = grow(ws.forbids, np)
	for i, p := range ws.permits {
		ws.forbids[i] = !p
	}
	ws.newPermits = grow(ws.newPermits, n)
	ws.topkNonzero(ws.stake, int(in.MaxAllowedValidators), ws.newPermits)
	if hasOwner && owner < n {
		ws.newPermits[owner] = true
	}

	// == Active stake ==
	ws.active = append(ws.active[:0], ws.stake...)
	maskVector(ws.inactive, ws.active)
	maskVector(ws.forbids, ws.active)
	normalize(ws.active)

	// == Weights == all removals of steps 5.2-5.5 fused into one pass.
	ws.loadWeights(in, hasOwner, owner)
	ws.rowNormalize(&ws.w)

	// == Consensus, validator trust ==
	kappa := fixed.I32F32FromU64(uint64(in.Kappa)).SafeDiv(u16Max)
	ws.weightedMedianCols(n, kappa)
	ws.colClip()
	ws.vtrust = grow(ws.vtrust, n)
	for i := range n {
		lo, hi := ws.clipped.row(i)
		ws.vtrust[i] = sumOf(ws.clipped.val[lo:hi])
	}

	// == Incentive == ranks_j = Σ_i active_i ⊗ clipped_ij, saturating, row order.
	ws.ranks = grow(ws.ranks, n)
	clear(ws.ranks)
	for i := range n {
		s := ws.active[i]
		lo, hi := ws.clipped.row(i)
		for k := lo; k < hi; k++ {
			j := ws.clipped.col[k]
			ws.ranks[j] = ws.ranks[j].SatAdd(s.SatMul(ws.clipped.val[k]))
		}
	}
	normalize(ws.ranks)
	incentive := ws.ranks

	// == Bonds and dividends ==
	beta := fixed.I32F32FromU64(uint64(in.BondsPenalty)).SafeDiv(u16Max)
	wfb := ws.interpolate(n, beta)
	lt := lastTempo(in)
	ws.dividends = grow(ws.dividends, n)
	if in.Yuma3 {
		ws.loadBonds(in, lt, true)
		ws.computeBondsY3(in, wfb)
		// ema_norm = col-normalized copy; tbpv_i = Σ_j ema_norm_ij ⊗ incentive_j.
		ws.delta.copyFrom(&ws.ema)
		ws.colScratch = grow(ws.colScratch, n)
		ws.delta.colNormalize(ws.colScratch)
		for i := range n {
			lo, hi := ws.delta.row(i)
			var t fixed.I32F32
			for k := lo; k < hi; k++ {
				if j := int(ws.delta.col[k]); j < n {
					t += ws.delta.val[k].SatMul(incentive[j])
				}
			}
			d, ok := t.CheckedMul(ws.active[i])
			if !ok {
				d = 0
			}
			ws.dividends[i] = d
		}
		normalize(ws.dividends)
	} else {
		ws.loadBonds(in, lt, false)
		ws.colScratch = grow(ws.colScratch, n)
		ws.bonds.colNormalize(ws.colScratch)
		// ΔB = wfb_ij ⊗ active_i, column-normalized.
		ws.delta.copyFrom(wfb)
		for i := range n {
			lo, hi := ws.delta.row(i)
			for k := lo; k < hi; k++ {
				ws.delta.val[k] = ws.delta.val[k].SatMul(ws.active[i])
			}
		}
		ws.delta.colNormalize(ws.colScratch)
		ws.matEma(n, &ws.delta, &ws.bonds, emaAlpha(in.BondsMovingAverage))
		ws.ema.colNormalize(ws.colScratch)
		// dividends_i = Σ_j incentive_j ⊗ ema_ij (saturating).
		for i := range n {
			lo, hi := ws.ema.row(i)
			var acc fixed.I32F32
			for k := lo; k < hi; k++ {
				acc = acc.SatAdd(incentive[ws.ema.col[k]].SatMul(ws.ema.val[k]))
			}
			ws.dividends[i] = acc
		}
		normalize(ws.dividends)
		ws.ema.colMaxUpscale(ws.colScratch)
	}

	emission(in, ws, incentive, out)

	// == Outputs ==
	out.NewValidatorPermits = append(out.NewValidatorPermits[:0], ws.newPermits...)
	out.Inactive = append(out.Inactive[:0], ws.inactive...)
	out.LastTempo = lt
	out.resetBonds(n, len(ws.ema.col))
	for i := range n {
		out.BondsWritten[i] = true
		if !ws.newPermits[i] {
			out.setBondRow(i, nil) // old permit only, or neither: the row becomes empty
			continue
		}
		lo, hi := ws.ema.row(i)
		start := len(out.bondBuf)
		for k := lo; k < hi; k++ {
			out.bondBuf = append(out.bondBuf, Entry{ws.ema.col[k], proportionToU16(ws.ema.val[k])})
		}
		out.setBondRow(i, out.bondBuf[start:len(out.bondBuf):len(out.bondBuf)])
	}
}

// loadWeights builds ws.w from the stored rows with every removal of
// yuma-epoch.md §4 steps 5.2-5.5 (each removes entries independently, so
// their order does not matter): rows of forbidden uids, the diagonal except
// the owner's, weights set at or before the target's registration, and the
// commit-reveal mask. Values are I32F32(u16).
func (ws *Workspace) loadWeights(in *Input, hasOwner bool, owner int) {
	n := in.N
	commit := ws.commitBlocks[:0]
	if in.CommitReveal {
		if in.CommitBlocks != nil {
			commit = append(commit, in.CommitBlocks...)
		} else {
			for range n {
				commit = append(commit, NoCommit)
			}
		}
	}
	ws.commitBlocks = commit
	bar := in.BlockAtRegistration
	ptr, col, val := ws.w.builder()
	for i, row := range in.Weights {
		// mask_rows_sparse: a missing mask entry masks the row.
		if i >= len(ws.forbids) || ws.forbids[i] {
			ptr = append(ptr, int32(len(col)))
			continue
		}
		lu := in.LastUpdate[i]
		for _, e := range row {
			j := int(e.UID)
			if j == i && !(hasOwner && i == owner) {
				continue
			}
			if lu <= bar[j] {
				continue
			}
			if in.CommitReveal && commit[i] < bar[j] {
				continue
			}
			col, val = append(col, e.UID), append(val, fixed.I32F32(uint64(e.Value)<<32))
		}
		ptr = append(ptr, int32(len(col)))
	}
	ws.w.set(ptr, col, val)
}

// rowNormalize is inplace_row_normalize_sparse: rows whose plain sum is > 0
// are divided by it.
func (ws *Workspace) rowNormalize(m *csr) {
	for i := range m.rows() {
		lo, hi := m.row(i)
		s := sumOf(m.val[lo:hi])
		if s > 0 {
			for k := lo; k < hi; k++ {
				m.val[k] = m.val[k].SafeDiv(s)
			}
		}
	}
}

// maxDenseScores bounds the n × k score matrix of weightedMedianCols
// (2^24 entries, 128 MiB); larger subnets use the column index instead.
// Tests lower it to run every input through the column index.
var maxDenseScores = 1 << 24

// weightedMedianCols is weighted_median_col_sparse into ws.consensus.
//
// The Rust code builds a dense columns × k score matrix (k = rows with
// positive active stake), and so does this function while n·k stays within
// maxDenseScores: one pass over the rows fills it. Beyond that (a 65535-uid
// subnet with every uid staked would need 34 GB) the positive-stake rows'
// entries are first indexed by column with a stable counting sort, so each
// column's entries keep row order and, within a row, stored order;
// scattering them into one k-long score vector gives exactly the column of
// the Rust matrix (for a uid named twice in a row, the later entry wins, as
// there), in O(nnz + n + k) memory.
func (ws *Workspace) weightedMedianCols(n int, kappa fixed.I32F32) {
	use := ws.useStake[:0]
	for _, s := range ws.active {
		if s > 0 {
			use = append(use, s)
		}
	}
	normalize(use)
	ws.useStake = use
	k := len(use)
	stakeSum := sumOf(use)
	minority := stakeSum.SatSub(kappa)
	ws.consensus = grow(ws.consensus, n)
	if n*k > maxDenseScores {
		ws.weightedMedianColsIndexed(n, k, minority, stakeSum)
		return
	}

	ws.score = grow(ws.score, n*k)
	clear(ws.score)
	ws.colNonzero = grow(ws.colNonzero, n)
	clear(ws.colNonzero)
	r := 0
	for i := range n {
		if ws.active[i] <= 0 {
			continue
		}
		lo, hi := ws.w.row(i)
		for e := lo; e < hi; e++ {
			j := int(ws.w.col[e])
			ws.score[j*k+r] = ws.w.val[e]
			ws.colNonzero[j] = true
		}
		r++
	}
	for j := range n {
		// A column whose scores are all zero has median 0: every path of
		// weighted_median returns a score, and all of them are 0.
		if !ws.colNonzero[j] {
			ws.consensus[j] = 0
			continue
		}
		ws.consensus[j] = ws.weightedMedian(use, ws.score[j*k:(j+1)*k], minority, 0, stakeSum)
	}
}

// weightedMedianColsIndexed is weightedMedianCols through the column index.
func (ws *Workspace) weightedMedianColsIndexed(n, k int, minority, stakeSum fixed.I32F32) {
	use := ws.useStake
	// Count the entries per column, then place them.
	ptr := grow(ws.colPtr, n+1)
	clear(ptr)
	for i := range n {
		if ws.active[i] <= 0 {
			continue
		}
		lo, hi := ws.w.row(i)
		for _, j := range ws.w.col[lo:hi] {
			ptr[int(j)+1]++
		}
	}
	for j := range n {
		ptr[j+1] += ptr[j]
	}
	total := int(ptr[n])
	fill := grow(ws.colFill, n)
	copy(fill, ptr[:n])
	rowOf := grow(ws.colRow, total)
	valOf := grow(ws.colVal, total)
	r := int32(0)
	for i := range n {
		if ws.active[i] <= 0 {
			continue
		}
		lo, hi := ws.w.row(i)
		for e := lo; e < hi; e++ {
			j := ws.w.col[e]
			p := fill[j]
			rowOf[p], valOf[p] = r, ws.w.val[e]
			fill[j] = p + 1
		}
		r++
	}
	ws.colPtr, ws.colFill, ws.colRow, ws.colVal = ptr, fill, rowOf, valOf

	score := grow(ws.score, k)
	ws.score = score
	for j := range n {
		lo, hi := ptr[j], ptr[j+1]
		// A column with no entries has all scores zero, so its median is 0:
		// every path of weighted_median returns a score, and all are 0.
		if lo == hi {
			ws.consensus[j] = 0
			continue
		}
		clear(score)
		for p := lo; p < hi; p++ {
			score[rowOf[p]] = valOf[p]
		}
		ws.consensus[j] = ws.weightedMedian(use, score, minority, 0, stakeSum)
	}
}

// weightedMedian is math.rs weighted_median over all indices: a quickselect
// with the middle element as pivot. The stake below and above the pivot
// decides which side holds the stake-weighted median.
//
// The Rust code sums stake with saturating adds. Here stake holds the
// normalized positive active stakes: at most 65535 values, each at most 1.0
// (2^32 raw), so every partial sum and lo/hi stays below 2^49 and plain
// integer adds are exact. That lets the partition loop run without branches.
func (ws *Workspace) weightedMedian(stake, score []fixed.I32F32, minority, lo, hi fixed.I32F32) fixed.I32F32 {
	n := len(stake)
	// The partitions hold (score, stake) pairs in their Rust order rather
	// than indices, so the loop reads memory in sequence. The three buffers
	// trade places as partitions shrink and keep their arrays between calls.
	if len(ws.wmCur) < n {
		ws.wmCur = make([]wmPair, n)
		ws.wmLow = make([]wmPair, n)
		ws.wmHigh = make([]wmPair, n)
	}
	cur, lower, upper := ws.wmCur[:n], ws.wmLow[:n], ws.wmHigh[:n]
	for i := range cur {
		cur[i] = wmPair{score[i], stake[i]}
	}
	for iter := 0; ; {
		m := len(cur)
		if m == 0 {
			return 0
		}
		if m == 1 {
			return cur[0].score
		}
		pivot := cur[m/2].score
		var loStake, hiStake fixed.I32F32
		nl, nh := 0, 0
		for _, p := range cur {
			lower[nl], upper[nh] = p, p
			isLo, isHi := b2i(p.score < pivot), b2i(p.score > pivot)
			nl += isLo
			nh += isHi
			loStake += p.stake & fixed.I32F32(-isLo)
			hiStake += p.stake & fixed.I32F32(-isHi)
		}
		switch {
		case minority < lo+loStake && nl > 0:
			cur, lower = lower[:nl], cur[:n]
			hi = lo + loStake
		case hi-hiStake <= minority && nh > 0:
			cur, upper = upper[:nh], cur[:n]
			lo = hi - hiStake
		default:
			return pivot
		}
		iter++
		if iter > n {
			return 0
		}
	}
}

// wmPair is one row's score and stake inside weightedMedian.
type wmPair struct{ score, stake fixed.I32F32 }

// b2i is 1 for true and 0 for false, without a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// colClip is col_clip_sparse: an entry above its column's consensus becomes
// the consensus, or is dropped when the consensus is zero. The loop writes
// every entry and advances past it only when it is kept, without branches.
func (ws *Workspace) colClip() {
	c := &ws.clipped
	nnz := len(ws.w.col)
	ptr := append(c.ptr[:0], 0)
	col, val := grow(c.col, nnz), grow(c.val, nnz)
	k := 0
	for i := range ws.w.rows() {
		lo, hi := ws.w.row(i)
		for e := lo; e < hi; e++ {
			j, v := ws.w.col[e], ws.w.val[e]
			th := ws.consensus[j]
			col[k], val[k] = j, min(th, v)
			k += 1 - b2i(th < v && th <= 0)
		}
		ptr = append(ptr, int32(k))
	}
	c.set(ptr, col[:k], val[:k])
}

// rowScratch makes the dense row buffers at least n long.
func (ws *Workspace) rowScratch(n int) {
	if len(ws.rowA) < n {
		ws.rowA = make([]fixed.I32F32, n)
		ws.rowB = make([]fixed.I32F32, n)
		ws.rowC = make([]fixed.I32F32, n)
		ws.rowMark = make([]uint32, n)
		ws.rowGen = 0
	}
}

func (ws *Workspace) nextGen() uint32 {
	ws.rowGen++
	if ws.rowGen == 0 { // wrapped: clear the stamps once
		clear(ws.rowMark)
		ws.rowGen = 1
	}
	return ws.rowGen
}

// interpolate is interpolate_sparse(W, clipped, n, β): W for β = 0, clipped
// for β = 1, else W + β(clipped - W) per dense row, keeping entries > 0.
func (ws *Workspace) interpolate(n int, beta fixed.I32F32) *csr {
	switch beta {
	case 0:
		return &ws.w
	case fixed.I32F32One:
		return &ws.clipped
	}
	ws.rowScratch(n)
	out := &ws.wfb
	ptr, col, val := out.builder()
	a, b := ws.rowA[:n], ws.rowB[:n]
	for i := range n {
		wlo, whi := ws.w.row(i)
		clo, chi := ws.clipped.row(i)
		if wlo == whi && clo == chi {
			ptr = append(ptr, int32(len(col)))
			continue
		}
		clear(a)
		clear(b)
		for k := wlo; k < whi; k++ {
			a[ws.w.col[k]] = ws.w.val[k]
		}
		for k := clo; k < chi; k++ {
			b[ws.clipped.col[k]] = ws.clipped.val[k]
		}
		for j := range n {
			v := a[j].SatAdd(beta.SatMul(b[j].SatSub(a[j])))
			if v > 0 {
				col, val = append(col, uint16(j)), append(val, v)
			}
		}
		ptr = append(ptr, int32(len(col)))
	}
	out.set(ptr, col, val)
	return out
}

// loadBonds reads the stored bonds into ws.bonds, dropping columns of uids
// registered at or after lastTempo (scalar_vec_mask_sparse_matrix). Yuma 3
// reads them as proportions (u16/65535), original Yuma as I32F32(u16).
func (ws *Workspace) loadBonds(in *Input, lastTempo uint64, proportion bool) {
	b := &ws.bonds
	ptr, col, val := b.builder()
	for _, row := range in.Bonds {
		for _, e := range row {
			if lastTempo <= in.BlockAtRegistration[e.UID] {
				continue
			}
			v := fixed.I32F32(uint64(e.Value) << 32)
			if proportion {
				v = u16Proportion(e.Value)
			}
			col, val = append(col, e.UID), append(val, v)
		}
		ptr = append(ptr, int32(len(col)))
	}
	b.set(ptr, col, val)
}

// matEma is mat_ema_sparse(new, old, α) into ws.ema: per row, a dense
// accumulator adds α⊗new then (1-α)⊗old (saturating, duplicates accumulate)
// and entries > 0 are kept in ascending column order.
func (ws *Workspace) matEma(n int, nw, old *csr, alpha fixed.I32F32) {
	ws.rowScratch(n)
	oneMinus := fixed.I32F32One.SatSub(alpha)
	acc := ws.rowA[:n]
	out := &ws.ema
	ptr, col, val := out.builder()
	for i := range nw.rows() {
		nlo, nhi := nw.row(i)
		var olo, ohi int32
		if i < old.rows() {
			olo, ohi = old.row(i)
		}
		if nlo == nhi && olo == ohi {
			ptr = append(ptr, int32(len(col)))
			continue
		}
		clear(acc)
		for k := nlo; k < nhi; k++ {
			if j := nw.col[k]; int(j) < n {
				acc[j] = acc[j].SatAdd(alpha.SatMul(nw.val[k]))
			}
		}
		for k := olo; k < ohi; k++ {
			if j := old.col[k]; int(j) < n {
				acc[j] = acc[j].SatAdd(oneMinus.SatMul(old.val[k]))
			}
		}
		for j, v := range acc {
			if v > 0 {
				col, val = append(col, uint16(j)), append(val, v)
			}
		}
		ptr = append(ptr, int32(len(col)))
	}
	out.set(ptr, col, val)
}

// computeBondsY3 is compute_bonds_sparse into ws.ema: the liquid-alpha EMA
// when liquid alpha is on and some consensus is nonzero, else mat_ema_sparse
// with the scalar rate.
func (ws *Workspace) computeBondsY3(in *Input, wfb *csr) {
	n := in.N
	liquid := false
	if in.LiquidAlpha {
		for _, c := range ws.consensus {
			if c != 0 {
				liquid = true
				break
			}
		}
	}
	if !liquid {
		ws.matEma(n, wfb, &ws.bonds, emaAlpha(in.BondsMovingAverage))
		return
	}
	ws.liquidEma(in, wfb)
}

// liquidEma is mat_ema_alpha_sparse(wfb, B, alphas) with the alphas of
// compute_liquid_alpha_values_sparse. The Rust code builds a dense n×n alpha
// matrix; only the entries at columns present in a wfb row are ever read, so
// only those are computed. The weight and bond each alpha sees come from the
// same merge walk the Rust code performs, which assumes rows sorted by column:
// on an unsorted row some lookups read 0, exactly as on chain.
func (ws *Workspace) liquidEma(in *Input, wfb *csr) {
	n := in.N
	ws.rowScratch(n)
	lowA := u16Proportion(in.AlphaLow)
	highA := u16Proportion(in.AlphaHigh)
	steep := fixed.I32F32FromInt(int64(in.AlphaSteepness))
	ws.alphaCache.reset(steep, lowA, highA)

	wl, bl, oldv := ws.rowA[:n], ws.rowB[:n], ws.rowC[:n]
	mark := ws.rowMark[:n]
	out := &ws.ema
	ptr, col, val := out.builder()
	for i := range n {
		nlo, nhi := wfb.row(i)
		if nlo == nhi {
			ptr = append(ptr, int32(len(col)))
			continue
		}
		olo, ohi := ws.bonds.row(i)
		// The merge walks of compute_liquid_alpha_values_sparse: for each
		// column j in order, advance past entries with col < j and read the
		// value if the next entry's col == j.
		mergeWalk(wfb.col[nlo:nhi], wfb.val[nlo:nhi], wl)
		mergeWalk(ws.bonds.col[olo:ohi], ws.bonds.val[olo:ohi], bl)
		// decayed_j = (1-α_ij)⊗old_ij, assigned per old entry, so the last
		// entry at column j wins; writing them in order leaves exactly that.
		gen := ws.nextGen()
		for k := olo; k < ohi; k++ {
			j := ws.bonds.col[k]
			mark[j], oldv[j] = gen, ws.bonds.val[k]
		}
		for k := nlo; k < nhi; k++ {
			j := wfb.col[k]
			a := ws.alphaCache.alpha(ws.consensus[j], wl[j], bl[j])
			var decayed fixed.I32F32
			if mark[j] == gen {
				decayed = fixed.I32F32One.SatSub(a).SatMul(oldv[j])
			}
			inc := a.SatMul(wfb.val[k]).Max(0)
			v := decayed.SatAdd(inc).Min(fixed.I32F32One)
			if v > 0 {
				col, val = append(col, j), append(val, v)
			}
		}
		ptr = append(ptr, int32(len(col)))
	}
	out.set(ptr, col, val)
}

// mergeWalk fills dst[j] for every column j with the value the Rust peekable
// walk reads for that column (0 when it reads none).
func mergeWalk(cols []uint16, vals []fixed.I32F32, dst []fixed.I32F32) {
	p := 0
	for j := range dst {
		for p < len(cols) && int(cols[p]) < j {
			p++
		}
		if p < len(cols) && int(cols[p]) == j {
			dst[j] = vals[p]
		} else {
			dst[j] = 0
		}
	}
}

// emission computes the normalized and rao emissions and the u16 outputs
// (run_epoch.rs:925-986, the u16 conversions of :1005-1027), shared by both variants.
func emission(in *Input, ws *Workspace, incentive []fixed.I32F32, out *Output) {
	n := in.N
	ws.combined = grow(ws.combined, n)
	for i := range n {
		ws.combined[i] = incentive[i].SatAdd(ws.dividends[i])
	}
	esum := sumOf(ws.combined)
	ws.nse = append(ws.nse[:0], incentive...)
	ws.nve = append(ws.nve[:0], ws.dividends...)
	ws.nce = append(ws.nce[:0], ws.combined...)
	normalizeBy(ws.nse, esum)
	normalizeBy(ws.nve, esum)
	normalize(ws.nce)
	if esum == 0 {
		src := ws.active
		if sumOf(ws.active) == 0 {
			src = ws.stake
		}
		ws.nve = append(ws.nve[:0], src...)
		ws.nce = append(ws.nce[:0], src...)
	}
	out.ServerEmission = raoVec(out.ServerEmission, ws.nse, in.RaoEmission)
	out.ValidatorEmission = raoVec(out.ValidatorEmission, ws.nve, in.RaoEmission)
	out.Emission = raoVec(out.Emission, ws.nce, in.RaoEmission)

	out.StakeWeight = u16Vec(out.StakeWeight, ws.stake)
	out.Consensus = u16Vec(out.Consensus, ws.consensus)
	out.Incentive = u16Vec(out.Incentive, incentive)
	out.Dividends = u16Vec(out.Dividends, ws.dividends)
	out.ValidatorTrust = u16Vec(out.ValidatorTrust, ws.vtrust)

	r := &out.Raw
	r.Stake = rawVec(r.Stake, ws.stake)
	r.ActiveStake = rawVec(r.ActiveStake, ws.active)
	r.Consensus = rawVec(r.Consensus, ws.consensus)
	r.Incentive = rawVec(r.Incentive, incentive)
	r.Dividends = rawVec(r.Dividends, ws.dividends)
	r.ValidatorTrust = rawVec(r.ValidatorTrust, ws.vtrust)
}

// raoAmount is I96F32(x).saturating_mul(I96F32(rao)).saturating_to_num::<u64>().
// The product x_raw·rao is exact (|x_raw·rao| < 2^127 never saturates I96F32),
// so the result is floor(x_raw·rao / 2^32) clamped to [0, u64::MAX].
func raoAmount(x fixed.I32F32, rao uint64) uint64 {
	if x <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(x), rao)
	if hi>>32 != 0 {
		return math.MaxUint64
	}
	return hi<<32 | lo>>32
}

func raoVec(dst []uint64, x []fixed.I32F32, rao uint64) []uint64 {
	dst = grow(dst, len(x))
	for i, v := range x {
		dst[i] = raoAmount(v, rao)
	}
	return dst
}

func u16Vec(dst []uint16, x []fixed.I32F32) []uint16 {
	dst = grow(dst, len(x))
	for i, v := range x {
		dst[i] = proportionToU16(v)
	}
	return dst
}

func rawVec(dst []int64, x []fixed.I32F32) []int64 {
	dst = grow(dst, len(x))
	for i, v := range x {
		dst[i] = int64(v)
	}
	return dst
}

// resetBonds prepares out's bond rows for n uids and about nnz entries.
func (out *Output) resetBonds(n, nnz int) {
	out.NewBonds = grow(out.NewBonds, n)
	out.BondsWritten = grow(out.BondsWritten, n)
	if cap(out.bondBuf) < nnz {
		out.bondBuf = make([]Entry, 0, nnz+nnz/4)
	}
	out.bondBuf = out.bondBuf[:0]
}

// setBondRow stores row i; a nil row is stored as an empty, non-nil row.
func (out *Output) setBondRow(i int, row []Entry) {
	if row == nil {
		row = out.bondBuf[len(out.bondBuf):len(out.bondBuf):len(out.bondBuf)]
	}
	out.NewBonds[i] = row
}
