package gpuplan

// The kernel bodies of kernels/yuma.cu, one Go function per CUDA kernel with
// the same name (yuma_load → kLoad, ...), each computing what one CUDA
// thread (or, for the block-per-subnet and block-per-row kernels, one block)
// computes. Run executes them in the launch order of the device engine.

// subOf returns the subnet of global uid u, its n, first uid and first cell.
func (b *Batch) subOf(u int64) (s, n, u0, c0 int64) {
	s = b.USub[u]
	sub := b.Sub[s*SubFields:]
	return s, sub[SFN], sub[SFUid], sub[SFCell]
}

func (b *Batch) sub(s, f int64) int64 { return b.Sub[s*SubFields+f] }

// wfbAlive and wfbVal read the weights for bonds at a stored weight entry
// when the subnet's mode is 0 (β = 0: W itself) or 1 (β = 1: clipped W).
func (b *Batch) wfbAlive(mode, e int64) bool {
	if mode == 0 {
		return b.WFlag[e]&WFAlive != 0
	}
	return b.WFlag[e]&WFClip != 0
}

func (b *Batch) wfbVal(mode, e int64) int64 {
	if mode == 0 {
		return b.WV[e]
	}
	return b.CV[e]
}

// link appends entry e to the chain whose head is *head (stored order).
func link(head *int32, next []int32, e int64) {
	next[e] = -1
	p := *head
	if p < 0 {
		*head = int32(e)
		return
	}
	for next[p] >= 0 {
		p = next[p]
	}
	next[p] = int32(e)
}

// kClear is yuma_clear (thread per dense cell c): empty chain heads.
func (b *Batch) kClear(c int64) {
	b.HW[c], b.HB[c] = -1, -1
}

// kLoad is yuma_load (block per row u): the weight masks of steps 5.2-5.5,
// the row sum (wrapping) for the normalisation, the bond load and last_tempo
// mask, and the per-cell chains of the surviving entries in stored order.

func (b *Batch) kLoad(u int64) {
	s, n, u0, c0 := b.subOf(u)
	i := u - u0
	row := c0 + i*n
	owner := b.sub(s, SFOwner)
	cr := b.sub(s, SFCR) != 0
	forbid := b.UFlag[u]&UFRowForbid != 0
	lu, cm := b.LU[u], b.Commit[u]
	var sum uint64
	for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
		ent := b.WEnt[e]
		j, v := int64(ent&0xffff), int64(ent>>16)
		bar := b.BAR[u0+j]
		alive := !forbid && !(j == i && i != owner) && !(lu <= bar) && !(cr && cm < bar)
		b.WFlag[e], b.WV[e] = 0, 0
		if alive {
			b.WFlag[e] = WFAlive
			b.WV[e] = v << 32
			sum += uint64(v << 32)
		}
	}
	b.RowT[u] = int64(sum) // the row sum for yuma_wnorm
	b.VTrust[u] = 0        // accumulated by yuma_clip
	for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
		if b.WFlag[e]&WFAlive != 0 {
			link(&b.HW[row+int64(b.WEnt[e]&0xffff)], b.NextW, e)
		}
	}
	lt := uint64(b.sub(s, SFLT))
	y3 := b.sub(s, SFYuma3) != 0
	for e := b.BPtr[u]; e < b.BPtr[u+1]; e++ {
		ent := b.BEnt[e]
		j, v := int64(ent&0xffff), uint64(ent>>16)
		b.BFlag[e], b.BV[e] = 0, 0
		if lt <= b.BAR[u0+j] {
			continue
		}
		b.BFlag[e] = 1
		if y3 {
			b.BV[e] = fxU16Prop(v)
		} else {
			b.BV[e] = int64(v << 32)
		}
		link(&b.HB[row+j], b.NextB, e)
	}
}

// kConsensus is yuma_consensus (thread per column u): weighted_median over
// the consensus rows, the literal quickselect of math.rs with the column's
// scores in D1 and the three index partitions in D2/D3 (all free here).
func (b *Batch) kConsensus(u int64) {
	s, n, u0, c0 := b.subOf(u)
	j := u - u0
	k := b.sub(s, SFUseK)
	minority := b.sub(s, SFMinority)
	score := b.D1[c0+j*n:]
	idxA := b.D2I[2*(c0+j*n):]
	idxB := idxA[n:]
	idxC := b.D3I[2*(c0+j*n):]
	var hi int64
	for r := range k {
		i := b.UseIdx[u0+r]
		// the last surviving entry of cell (i, j), or 0
		var sc int64
		for p := b.HW[c0+i*n+j]; p >= 0; p = b.NextW[p] {
			sc = b.WV[p]
		}
		score[r] = sc
		idxA[r] = int32(r)
		hi = int64(uint64(hi) + uint64(b.UseStake[u0+r]))
	}
	b.Cons[u] = weightedMedian(score, b.UseStake[u0:], idxA, idxB, idxC, k, minority, 0, hi)
}

// weightedMedian is dev_weighted_median: math.rs weighted_median over
// indices, partitions kept in Rust order, stake sums wrapping like Rust's
// release-mode `+` on I32F32 (the CPU engine's weightedMedian).
func weightedMedian(score, stake []int64, cur, lower, upper []int32, m, minority, lo, hi int64) int64 {
	k0 := m
	for iter := int64(0); ; {
		if m == 0 {
			return 0
		}
		if m == 1 {
			return score[cur[0]]
		}
		pivot := score[cur[m/2]]
		var loS, hiS uint64
		var nl, nh int64
		for t := range m {
			r := cur[t]
			if score[r] < pivot {
				lower[nl] = r
				nl++
				loS += uint64(stake[r])
			} else if score[r] > pivot {
				upper[nh] = r
				nh++
				hiS += uint64(stake[r])
			}
		}
		switch {
		case minority < int64(uint64(lo)+loS) && nl > 0:
			hi = int64(uint64(lo) + loS)
			cur, lower = lower, cur
			m = nl
		case int64(uint64(hi)-hiS) <= minority && nh > 0:
			lo = int64(uint64(hi) - hiS)
			cur, upper = upper, cur
			m = nh
		default:
			return pivot
		}
		iter++
		if iter > k0 {
			return 0
		}
	}
}

// kWnorm is yuma_wnorm (thread per weight entry e): inplace_row_normalize_sparse,
// dividing by the row's wrapping sum when it is > 0.
func (b *Batch) kWnorm(e int64) {
	if b.WFlag[e]&WFAlive == 0 {
		return
	}
	if sum := b.RowT[b.rowOfEntry(e)]; sum > 0 {
		b.WV[e] = fxSafeDiv(b.WV[e], sum)
	}
}

// kClip is yuma_clip (block per row u): col_clip_sparse per weight entry,
// and the row's validator trust, a wrapping sum (a block reduction).
func (b *Batch) kClip(u int64) {
	for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
		b.clipEntry(e)
	}
}

// clipEntry is kClip's work on weight entry e (one thread of the block).
func (b *Batch) clipEntry(e int64) {
	u := b.rowOfEntry(e)
	_, _, u0, _ := b.subOf(u)
	f := b.WFlag[e] &^ WFClip
	b.CV[e] = 0
	if f&WFAlive != 0 {
		th, v := b.Cons[u0+int64(b.WEnt[e]&0xffff)], b.WV[e]
		if !(th < v && th <= 0) {
			f |= WFClip
			b.CV[e] = min(th, v)
			b.VTrust[u] = int64(uint64(b.VTrust[u]) + uint64(b.CV[e]))
		}
	}
	b.WFlag[e] = f
}

// kColsA is yuma_cols_a (thread per column u): ranks_j = Σ_i active_i ⊗
// clipped_ij with saturating adds in row order (matmul_sparse), and for
// original Yuma the saturating bond column sums (inplace_col_normalize_sparse).
func (b *Batch) kColsA(u int64) {
	s, n, u0, c0 := b.subOf(u)
	j := u - u0
	var acc int64
	for i := range n {
		a := b.Active[u0+i]
		for p := b.HW[c0+i*n+j]; p >= 0; p = b.NextW[p] {
			if b.WFlag[p]&WFClip != 0 {
				acc = fxSatAdd(acc, fxSatMul(a, b.CV[p]))
			}
		}
	}
	b.Inc[u] = acc
	if b.sub(s, SFYuma3) == 0 {
		var cs int64
		for i := range n {
			for p := b.HB[c0+i*n+j]; p >= 0; p = b.NextB[p] {
				cs = fxSatAdd(cs, b.BV[p])
			}
		}
		b.ColB[u] = cs
	}
}

// kSubnet1 is yuma_subnet1 (block per subnet s): incentive =
// inplace_normalize(ranks); the liquid-alpha switch of compute_bonds_sparse.
// The block sums with wrapping adds (exact in any order) and ORs the flag.
func (b *Batch) kSubnet1(s int64) {
	n, u0 := b.sub(s, SFN), b.sub(s, SFUid)
	var sum uint64
	any := false
	for i := range n {
		sum += uint64(b.Inc[u0+i])
		any = any || b.Cons[u0+i] != 0
	}
	if sum != 0 {
		for i := range n {
			b.Inc[u0+i] = fxSafeDiv(b.Inc[u0+i], int64(sum))
		}
	}
	b.SState[s*StateFields+SSLiq] = b2i(b.sub(s, SFLiqIn) != 0 && any)
}

// kWfb is yuma_wfb (block per row u): interpolate_sparse for 0 < β < 1 into
// the dense D1 row (entries > 0 kept); for original Yuma also ΔB = wfb ⊗
// active_i (dense in D1 or per entry in XV) and the bond column normalisation.
func (b *Batch) kWfb(u int64) {
	s, n, u0, c0 := b.subOf(u)
	i := u - u0
	row := c0 + i*n
	mode := b.sub(s, SFMode)
	y3 := b.sub(s, SFYuma3) != 0
	act := b.Active[u]
	b.RowT[u], b.RowCnt[u] = 0, 0 // accumulated by yuma_divs_e
	if mode == 2 {
		beta := b.sub(s, SFBeta)
		for j := range n {
			var a, c int64
			for p := b.HW[row+j]; p >= 0; p = b.NextW[p] {
				a = b.WV[p]
				if b.WFlag[p]&WFClip != 0 {
					c = b.CV[p]
				}
			}
			v := fxSatAdd(a, fxSatMul(beta, fxSatSub(c, a)))
			if v < 0 {
				v = 0
			}
			if !y3 {
				v = fxSatMul(v, act)
			}
			b.D1[row+j] = v
		}
	}
	if y3 {
		return
	}
	if mode != 2 {
		for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
			if b.wfbAlive(mode, e) {
				b.XV[e] = fxSatMul(b.wfbVal(mode, e), act)
			}
		}
	}
	for e := b.BPtr[u]; e < b.BPtr[u+1]; e++ {
		if b.BFlag[e] != 0 {
			if c := b.ColB[u0+int64(b.BEnt[e]&0xffff)]; c != 0 {
				b.BV[e] = fxSafeDiv(b.BV[e], c)
			}
		}
	}
}

// kColsB is yuma_cols_b (thread per column u, original Yuma only): the
// saturating column sums of ΔB in row order.
func (b *Batch) kColsB(u int64) {
	s, n, u0, c0 := b.subOf(u)
	if b.sub(s, SFYuma3) != 0 {
		return
	}
	j := u - u0
	mode := b.sub(s, SFMode)
	var acc int64
	for i := range n {
		if mode == 2 {
			acc = fxSatAdd(acc, b.D1[c0+i*n+j])
			continue
		}
		for p := b.HW[c0+i*n+j]; p >= 0; p = b.NextW[p] {
			if b.wfbAlive(mode, int64(p)) {
				acc = fxSatAdd(acc, b.XV[p])
			}
		}
	}
	b.ColA[u] = acc
}

// emaDense reports whether subnet s's EMA is a dense D3 table (every case
// but liquid alpha over stored-structure weights for bonds).
func (b *Batch) emaDense(s int64) bool {
	return !(b.sub(s, SFYuma3) != 0 && b.SState[s*StateFields+SSLiq] != 0 && b.sub(s, SFMode) != 2)
}

// kEma is yuma_ema (block per row u): mat_ema_sparse (scalar rate; new
// terms then old terms per column, saturating, in stored order) into the
// dense D3 row, or mat_ema_alpha_sparse with the liquid-alpha rates.
func (b *Batch) kEma(u int64) {
	s, n, u0, c0 := b.subOf(u)
	i := u - u0
	row := c0 + i*n
	mode := b.sub(s, SFMode)
	y3 := b.sub(s, SFYuma3) != 0
	if y3 && b.SState[s*StateFields+SSLiq] != 0 {
		b.liquidRow(s, u, u0, row, n, mode)
		return
	}
	alpha := b.sub(s, SFEmaA)
	oneMinus := fxSatSub(fxOne, alpha)
	for j := range n {
		var acc int64
		if mode == 2 {
			x := b.D1[row+j]
			if !y3 {
				if c := b.ColA[u0+j]; c != 0 {
					x = fxSafeDiv(x, c)
				}
			}
			acc = fxSatAdd(acc, fxSatMul(alpha, x))
		} else {
			for p := b.HW[row+j]; p >= 0; p = b.NextW[p] {
				if !b.wfbAlive(mode, int64(p)) {
					continue
				}
				x := b.wfbVal(mode, int64(p))
				if !y3 {
					x = b.XV[p]
					if c := b.ColA[u0+j]; c != 0 {
						x = fxSafeDiv(x, c)
					}
				}
				acc = fxSatAdd(acc, fxSatMul(alpha, x))
			}
		}
		for p := b.HB[row+j]; p >= 0; p = b.NextB[p] {
			acc = fxSatAdd(acc, fxSatMul(oneMinus, b.BV[p]))
		}
		if acc < 0 {
			acc = 0
		}
		b.D3[row+j] = acc
	}
}

// liquidRow is the liquid-alpha half of yuma_ema: the merge walks of
// compute_liquid_alpha_values_sparse (weights into D1 unless D1 already is
// the dense sorted wfb row, bonds into D2), then, for a dense wfb (mode 2),
// the EMA row into D3; for mode 0/1 yuma_liquid does the entries.
func (b *Batch) liquidRow(s, u, u0, row, n, mode int64) {
	if mode != 2 {
		m := int32(-1)
		for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
			if b.wfbAlive(mode, e) {
				m = max(m, int32(b.WEnt[e]&0xffff))
			}
			b.PMW[e] = m
		}
		m = -1
		for e := b.BPtr[u]; e < b.BPtr[u+1]; e++ {
			if b.BFlag[e] != 0 {
				m = max(m, int32(b.BEnt[e]&0xffff))
			}
			b.PMB[e] = m
		}
		return // yuma_liquid computes the entries, one thread each
	}
	// mode 2: the wfb row is D1 (dense, sorted); the bond walk into D2.
	lo, hi := b.BPtr[u], b.BPtr[u+1]
	p := lo
	for j := range n {
		for p < hi && (b.BFlag[p] == 0 || int64(b.BEnt[p]&0xffff) < j) {
			p++
		}
		var v int64
		if p < hi && int64(b.BEnt[p]&0xffff) == j {
			v = b.BV[p]
		}
		b.D2[row+j] = v
	}
	for j := range n {
		var v int64
		if w := b.D1[row+j]; w > 0 {
			v = max(b.liquidVal(s, u0, row, j, w, w, b.D2[row+j]), 0)
		}
		b.D3[row+j] = v
	}
}

// walkFirst is walk_first: the first index p in [lo, hi) whose prefix
// maximum column pm[p] is >= j (hi if none), by binary search. That is the
// entry the sequential merge walk of compute_liquid_alpha_values_sparse
// stands on at column j: it passes an entry exactly when j exceeds its
// column.
func walkFirst(pm []int32, lo, hi, j int64) int64 {
	for lo < hi {
		mid := (lo + hi) / 2
		if int64(pm[mid]) >= j {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// liquidVal is liquid_val: the liquid-alpha EMA of one wfb entry at column j
// with value w, min((1-α)⊗old + max(α⊗w, 0), 1), where α = alpha_sigmoid of
// the merge-walk reads wl, bl and old is the last surviving bond of cell
// (i, j) (no decay term without one).
func (b *Batch) liquidVal(s, u0, row, j, w, wl, bl int64) int64 {
	scale, low, high := b.sub(s, SFScale), b.sub(s, SFLow), b.sub(s, SFHigh)
	a := fxAlphaSigmoid(b.Cons[u0+j], wl, bl, scale, low, high)
	var decayed int64
	has := false
	var old int64
	for p := b.HB[row+j]; p >= 0; p = b.NextB[p] {
		has, old = true, b.BV[p]
	}
	if has {
		decayed = fxSatMul(fxSatSub(fxOne, a), old)
	}
	inc := max(fxSatMul(a, w), 0)
	return min(fxSatAdd(decayed, inc), fxOne)
}

// rowOfEntry is row_of_entry: the row u holding weight entry e (the last u
// with WPtr[u] <= e), by binary search.
func (b *Batch) rowOfEntry(e int64) int64 {
	lo, hi := int64(0), b.L.U
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if b.WPtr[mid] <= e {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// kLiquid is yuma_liquid (thread per weight entry e): mat_ema_alpha_sparse
// for subnets with liquid alpha over stored-structure weights for bonds
// (mode 0/1): each wfb entry's EMA value into XV, flagged WFEma when > 0.
// The prefix maxima it searches (PMW, PMB) were written by yuma_ema.
func (b *Batch) kLiquid(e int64) {
	u := b.rowOfEntry(e)
	s, n, u0, c0 := b.subOf(u)
	mode := b.sub(s, SFMode)
	if b.sub(s, SFYuma3) == 0 || b.SState[s*StateFields+SSLiq] == 0 || mode == 2 {
		return
	}
	b.WFlag[e] &^= WFEma
	if !b.wfbAlive(mode, e) {
		return
	}
	row := c0 + (u-u0)*n
	j := int64(b.WEnt[e] & 0xffff)
	var wl, bl int64
	if p := walkFirst(b.PMW, b.WPtr[u], b.WPtr[u+1], j); p < b.WPtr[u+1] && int64(b.WEnt[p]&0xffff) == j {
		wl = b.wfbVal(mode, p)
	}
	if p := walkFirst(b.PMB, b.BPtr[u], b.BPtr[u+1], j); p < b.BPtr[u+1] && int64(b.BEnt[p]&0xffff) == j {
		bl = b.BV[p]
	}
	v := b.liquidVal(s, u0, row, j, b.wfbVal(mode, e), wl, bl)
	b.XV[e] = v
	if v > 0 {
		b.WFlag[e] |= WFEma
	}
}

// kColsC is yuma_cols_c (thread per column u): the saturating EMA column
// sums in row order into ColA, and for original Yuma the column maximum of
// the normalised EMA into ColM (inplace_col_max_upscale_sparse).
func (b *Batch) kColsC(u int64) {
	s, n, u0, c0 := b.subOf(u)
	j := u - u0
	var acc int64
	if b.emaDense(s) {
		for i := range n {
			acc = fxSatAdd(acc, b.D3[c0+i*n+j])
		}
	} else {
		for i := range n {
			for p := b.HW[c0+i*n+j]; p >= 0; p = b.NextW[p] {
				if b.WFlag[p]&WFEma != 0 {
					acc = fxSatAdd(acc, b.XV[p])
				}
			}
		}
	}
	b.ColA[u] = acc
	if b.sub(s, SFYuma3) == 0 {
		var m int64
		for i := range n {
			if x := b.D3[c0+i*n+j]; x > 0 {
				if acc != 0 {
					x = fxSafeDiv(x, acc)
				}
				m = max(m, x)
			}
		}
		b.ColM[u] = m
	}
}

// emaEntries calls f(j, value) for the EMA entries of row u in the CPU's
// order: ascending column for a dense EMA, stored order otherwise.
func (b *Batch) emaEntries(s, u, row, n int64, f func(j, x int64)) {
	if b.emaDense(s) {
		for j := range n {
			if x := b.D3[row+j]; x > 0 {
				f(j, x)
			}
		}
		return
	}
	for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
		if b.WFlag[e]&WFEma != 0 {
			f(int64(b.WEnt[e]&0xffff), b.XV[e])
		}
	}
}

// kDivsE is yuma_divs_e (block per row u): for a Yuma 3 subnet whose EMA
// has the stored structure (liquid alpha, β = 0 or 1), the row's sum of the
// terms col-normalised EMA ⊗ incentive_j with wrapping adds (a block
// reduction) and its entry count.
func (b *Batch) kDivsE(u int64) {
	for e := b.WPtr[u]; e < b.WPtr[u+1]; e++ {
		b.divsEntry(e)
	}
}

// divsEntry is kDivsE's work on weight entry e (one thread of the block).
func (b *Batch) divsEntry(e int64) {
	if b.WFlag[e]&WFEma == 0 {
		return
	}
	u := b.rowOfEntry(e)
	s, _, u0, _ := b.subOf(u)
	if b.emaDense(s) { // WFEma is only meaningful for structured EMAs
		return
	}
	j := int64(b.WEnt[e] & 0xffff)
	x := b.XV[e]
	if c := b.ColA[u0+j]; c != 0 {
		x = fxSafeDiv(x, c)
	}
	b.RowT[u] = int64(uint64(b.RowT[u]) + uint64(fxSatMul(x, b.Inc[u0+j])))
	b.RowCnt[u]++
}

// kDivs is yuma_divs (block per row u): Yuma 3 dividends (Σ_j
// col-normalised EMA ⊗ incentive, wrapping, then checked ⊗ active stake) or
// original-Yuma dividends (saturating Σ incentive ⊗ normalised EMA, in
// column order), and the number of bond entries the row writes. For a
// structured EMA the Yuma 3 sum and count come from yuma_divs_e.
func (b *Batch) kDivs(u int64) {
	s, n, u0, c0 := b.subOf(u)
	row := c0 + (u-u0)*n
	y3 := b.sub(s, SFYuma3) != 0
	var t uint64
	var acc, cnt int64
	if b.emaDense(s) {
		for j := range n {
			x := b.D3[row+j]
			if x <= 0 {
				continue
			}
			if c := b.ColA[u0+j]; c != 0 {
				x = fxSafeDiv(x, c)
			}
			if y3 {
				t += uint64(fxSatMul(x, b.Inc[u0+j]))
			} else {
				acc = fxSatAdd(acc, fxSatMul(b.Inc[u0+j], x))
			}
			cnt++
		}
	} else {
		t, cnt = uint64(b.RowT[u]), b.RowCnt[u]
	}
	if y3 {
		d, ok := fxCheckedMul(int64(t), b.Active[u])
		if !ok {
			d = 0
		}
		acc = d
	}
	b.Divs[u] = acc
	if b.UFlag[u]&UFNewPermit == 0 {
		cnt = 0
	}
	b.RowCnt[u] = cnt
}

// kSubnet2 is yuma_subnet2 (block per subnet s): inplace_normalize of the
// dividends, the emission of step 12, and the bond row offsets (a serial scan
// in thread 0).
func (b *Batch) kSubnet2(s int64) {
	n, u0 := b.sub(s, SFN), b.sub(s, SFUid)
	var sum uint64
	for i := range n {
		sum += uint64(b.Divs[u0+i])
	}
	if sum != 0 {
		for i := range n {
			b.Divs[u0+i] = fxSafeDiv(b.Divs[u0+i], int64(sum))
		}
	}
	var esum uint64
	for i := range n {
		esum += uint64(fxSatAdd(b.Inc[u0+i], b.Divs[u0+i]))
	}
	rao := uint64(b.sub(s, SFRao))
	actZero := b.sub(s, SFActZero) != 0
	for i := range n {
		u := u0 + i
		nse, nve := b.Inc[u], b.Divs[u]
		nce := fxSatAdd(nse, nve)
		if esum != 0 {
			nse = fxSafeDiv(nse, int64(esum))
			nve = fxSafeDiv(nve, int64(esum))
			nce = fxSafeDiv(nce, int64(esum))
		} else {
			src := b.Active[u]
			if actZero {
				src = b.Stake[u]
			}
			nve, nce = src, src
		}
		b.SEm[u], b.VEm[u], b.Em[u] = fxRao(nse, rao), fxRao(nve, rao), fxRao(nce, rao)
	}
	var off int64
	for i := range n {
		b.RowOff[u0+i] = off
		off += b.RowCnt[u0+i]
	}
	b.SState[s*StateFields+SSBondN] = off
}

// kBondBase is yuma_bond_base (one thread): the subnets' bond offsets.
func (b *Batch) kBondBase() {
	var base int64
	for s := range b.L.S {
		b.SState[s*StateFields+SSBondBase] = base
		base += b.SState[s*StateFields+SSBondN]
	}
	b.Total[0] = base
}

// kBondWrite is yuma_bond_write (block per row u): the stored bond row,
// fixed_proportion_to_u16 of the EMA (Yuma 3) or of the column-max-upscaled
// normalised EMA (original Yuma), as uid | value<<16 (the memory layout of yuma.Entry).
func (b *Batch) kBondWrite(u int64) {
	if b.RowCnt[u] == 0 {
		return
	}
	s, n, u0, c0 := b.subOf(u)
	row := c0 + (u-u0)*n
	y3 := b.sub(s, SFYuma3) != 0
	pos := b.SState[s*StateFields+SSBondBase] + b.RowOff[u]
	b.emaEntries(s, u, row, n, func(j, x int64) {
		if !y3 {
			if c := b.ColA[u0+j]; c != 0 {
				x = fxSafeDiv(x, c)
			}
			if m := b.ColM[u0+j]; m != 0 {
				x = fxSafeDiv(x, m)
			}
		}
		b.BondOut[pos] = uint32(j) | uint32(fxPropU16(x))<<16
		pos++
	})
}

// Grid kinds: what one thread (or block) of a launch covers.
const (
	GridUID    = iota // one thread per uid (a row or a column)
	GridSubnet        // one block of SubnetBlock threads per subnet
	GridOne           // a single thread
	GridEntry         // one thread per weight entry
	GridCell          // one thread per dense cell
	GridRow           // one block of Layout.RowThreads threads per uid (row); the Go twin is the block
)

// SubnetBlock is the block size of the GridSubnet kernels (BLOCK in
// kernels/yuma.cu).
const SubnetBlock = 256

// RowBlock is the largest block size of the GridRow kernels (ROWBLOCK in
// kernels/yuma.cu; the kernels are written for any block size up to it).
const RowBlock = 128

// RowThreads is the block size of the GridRow launches for layout l:
// RowBlock, or for short rows fewer threads, a multiple of 32 at least the
// mean row length (Cells/U: a subnet of n uids has n rows of n columns).
func (l *Layout) RowThreads() int {
	if l.U == 0 {
		return RowBlock
	}
	m := (l.Cells/l.U + 31) / 32 * 32
	return int(min(max(m, 32), RowBlock))
}

// Launch is one kernel launch of the sequence.
type Launch struct {
	Name string
	Grid int
}

// Launches is the launch sequence of one batch, in order: the device engine
// launches exactly these kernels, Run executes their Go twins, and the host
// compilation test of kernels/yuma.cu runs them from this list.
var Launches = []Launch{
	{"yuma_clear", GridCell}, {"yuma_load", GridRow}, {"yuma_wnorm", GridEntry},
	{"yuma_consensus", GridUID}, {"yuma_clip", GridRow}, {"yuma_cols_a", GridUID},
	{"yuma_subnet1", GridSubnet}, {"yuma_wfb", GridRow}, {"yuma_cols_b", GridUID},
	{"yuma_ema", GridRow}, {"yuma_liquid", GridEntry}, {"yuma_cols_c", GridUID},
	{"yuma_divs_e", GridRow}, {"yuma_divs", GridRow}, {"yuma_subnet2", GridSubnet},
	{"yuma_bond_base", GridOne}, {"yuma_bond_write", GridRow},
}

// Threads returns how many threads (GridSubnet, GridRow: blocks) a launch of
// grid kind g runs for layout l.
func (l *Layout) Threads(g int) int64 {
	switch g {
	case GridSubnet:
		return l.S
	case GridOne:
		return 1
	case GridEntry:
		return l.NW
	case GridCell:
		return l.Cells
	}
	return l.U
}

// Run executes the launch sequence of the device engine on the Go kernels.
func (b *Batch) Run() {
	k := map[string]func(int64){
		"yuma_clear": b.kClear, "yuma_load": b.kLoad, "yuma_wnorm": b.kWnorm,
		"yuma_consensus": b.kConsensus, "yuma_clip": b.kClip, "yuma_cols_a": b.kColsA,
		"yuma_subnet1": b.kSubnet1, "yuma_wfb": b.kWfb, "yuma_cols_b": b.kColsB,
		"yuma_ema": b.kEma, "yuma_liquid": b.kLiquid, "yuma_cols_c": b.kColsC,
		"yuma_divs_e": b.kDivsE, "yuma_divs": b.kDivs, "yuma_subnet2": b.kSubnet2,
		"yuma_bond_base": func(int64) { b.kBondBase() }, "yuma_bond_write": b.kBondWrite,
	}
	for _, la := range Launches {
		f := k[la.Name]
		for i := range b.L.Threads(la.Grid) {
			f(i)
		}
	}
}
