package gpuplan

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"taobox/chain/fixed"
	"taobox/chain/yuma"
)

// MaxCells bounds the dense n×n tables of one chunk (cells summed over its
// subnets). A subnet whose n² alone exceeds it (n > 5792) runs on the CPU.
const MaxCells = 1 << 25

// Eligible reports whether the batched kernels handle in: the sparse variant
// (the one the chain runs) with at least one uid and n² within MaxCells.
// Everything else (the test-only dense variant, empty subnets) goes to the
// CPU engine, which is bit-exact by definition.
func Eligible(in *yuma.Input) bool {
	return in.Variant == yuma.Sparse && in.N > 0 && int64(in.N)*int64(in.N) <= MaxCells
}

// Chunks splits the eligible inputs (indices into ins) into launch chunks of
// at most MaxCells dense cells each, keeping batch order.
func Chunks(ins []yuma.Input, idx []int) [][]int {
	var out [][]int
	var cur []int
	var cells int64
	for _, i := range idx {
		c := int64(ins[i].N) * int64(ins[i].N)
		if len(cur) > 0 && cells+c > MaxCells {
			out = append(out, cur)
			cur, cells = nil, 0
		}
		cur = append(cur, i)
		cells += c
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// hostSub is what Pack keeps per subnet for Unpack.
type hostSub struct {
	in                   *yuma.Input
	u0                   int64 // first global uid (Unpack reads it here, not from the arena)
	inactive, newPermits []bool
	stake, active        []int64
	lastTempo            uint64
}

// Batch is one chunk laid out for the kernels: the input arena (uploaded in
// one copy; it starts with the descriptor) and the work arena (device-only
// except its output prefix and the bond entries), with typed views of every
// array for the Go kernels.
type Batch struct {
	L    *Layout
	In   []int64 // input arena; In[:DCount] is filled by Descriptor on the device path
	Work []int64 // work arena (the Go kernels run on it; the device has its own)
	subs []hostSub

	Sub, USub, UFlag, Active, Stake, UseIdx, UseStake, WPtr, BPtr []int64
	LU, BAR, Commit                                               []uint64
	WEnt, BEnt                                                    []uint32

	Cons, VTrust, Inc, Divs, SState, Total           []int64
	SEm, VEm, Em                                     []uint64
	WV, CV, XV, BV, ColA, ColB, ColM, RowCnt, RowOff []int64
	D1, D2, D3                                       []int64
	WFlag, NextW, BFlag, NextB, HW, HB               []int32
	D2I, D3I                                         []int32 // int32 views of D2 and D3 (consensus scratch)
	BondOut                                          []uint32
	RowT                                             []int64
	PMW                                              []int32
	PMB                                              []int32
}

// InWords is the size in int64 words of the input arena Pack makes for
// ins[idx[k]] (for staging it in page-locked memory first).
func InWords(ins []yuma.Input, idx []int) int64 {
	var S, U, NW, NB int64
	for _, k := range idx {
		in := &ins[k]
		S++
		U += int64(in.N)
		for _, row := range in.Weights {
			NW += int64(len(row))
		}
		for _, row := range in.Bonds {
			NB += int64(len(row))
		}
	}
	return newLayout(S, U, NW, NB, 0, 0).InWords
}

// Pack lays out the inputs ins[idx[k]] (already validated, all Eligible) as
// one batch: it computes the per-uid prelude on the host and flattens the
// sparse rows, one goroutine per subnet at a time (GOMAXPROCS of them). The
// work arena is allocated only if withWork (the Go path). reuse, if large
// enough, becomes the input arena (every word the kernels read is
// rewritten).
func Pack(ins []yuma.Input, idx []int, withWork bool, reuse ...[]int64) *Batch {
	S := int64(len(idx))
	type offs struct{ u0, cell0, w0, b0 int64 }
	off := make([]offs, S)
	var U, NW, NB, cells, bondCap int64
	for s, k := range idx {
		in := &ins[k]
		n := int64(in.N)
		off[s] = offs{U, cells, NW, NB}
		U += n
		cells += n * n
		for _, row := range in.Weights {
			NW += int64(len(row))
			bondCap += max(n, int64(len(row)))
		}
		for _, row := range in.Bonds {
			NB += int64(len(row))
		}
	}
	l := newLayout(S, U, NW, NB, cells, bondCap)
	b := &Batch{L: l}
	if len(reuse) > 0 && int64(cap(reuse[0])) >= l.InWords {
		b.In = reuse[0][:l.InWords]
	} else {
		b.In = make([]int64, l.InWords)
	}
	b.inViews()
	if withWork {
		b.Work = make([]int64, l.WorkWords)
		b.workViews()
	}
	b.subs = make([]hostSub, S)
	parallel(int(S), func(s int) {
		in := &ins[idx[s]]
		o := off[s]
		b.packSub(int64(s), in, o.u0, o.cell0)
		w, bo := o.w0, o.b0
		for i := range in.N {
			u := o.u0 + int64(i)
			b.WPtr[u] = w
			w += putEntries(b.WEnt[w:], in.Weights[i])
			b.BPtr[u] = bo
			bo += putEntries(b.BEnt[bo:], in.Bonds[i])
		}
	})
	b.WPtr[U], b.BPtr[U] = NW, NB
	return b
}

// entryWord reports whether a yuma.Entry is stored as the uint32
// uid | value<<16 (little-endian, fields in order), the kernels' format, so
// rows copy as memory.
var entryWord = func() bool {
	e := yuma.Entry{UID: 0x1234, Value: 0xabcd}
	return unsafe.Sizeof(e) == 4 && *(*uint32)(unsafe.Pointer(&e)) == 0xabcd1234
}()

// putEntries writes row into dst as uid | value<<16 words.
func putEntries(dst []uint32, row []yuma.Entry) int64 {
	if len(row) == 0 {
		return 0
	}
	if entryWord {
		copy(dst, unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(row))), len(row)))
	} else {
		for p, e := range row {
			dst[p] = uint32(e.UID) | uint32(e.Value)<<16
		}
	}
	return int64(len(row))
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func (b *Batch) inViews() {
	l, a := b.L, b.In
	b.Sub, b.USub, b.UFlag = i64s(a, l, DSub), i64s(a, l, DUSub), i64s(a, l, DUFlag)
	b.Active, b.Stake = i64s(a, l, DActive), i64s(a, l, DStake)
	b.UseIdx, b.UseStake = i64s(a, l, DUseIdx), i64s(a, l, DUseStake)
	b.WPtr, b.BPtr = i64s(a, l, DWPtr), i64s(a, l, DBPtr)
	b.LU, b.BAR, b.Commit = u64s(a, l, DLU), u64s(a, l, DBAR), u64s(a, l, DCommit)
	b.WEnt, b.BEnt = u32s(a, l, DWEnt, l.NW), u32s(a, l, DBEnt, l.NB)
}

// SetWork points the output views at a work arena (or just its downloaded
// prefix plus the bond entries) for Unpack.
func (b *Batch) SetWork(work []int64) {
	b.Work = work
	b.workViews()
}

func (b *Batch) workViews() {
	l, a := b.L, b.Work
	b.Cons, b.VTrust, b.Inc, b.Divs = i64s(a, l, DCons), i64s(a, l, DVTrust), i64s(a, l, DInc), i64s(a, l, DDivs)
	b.SEm, b.VEm, b.Em = u64s(a, l, DSEm), u64s(a, l, DVEm), u64s(a, l, DEm)
	b.SState, b.Total = i64s(a, l, DSState), i64s(a, l, DTotal)
	b.RowOff = i64s(a, l, DRowOff)
	if int64(len(a)) < l.WorkWords {
		return // output prefix only
	}
	b.WV, b.CV, b.XV, b.BV = i64s(a, l, DWV), i64s(a, l, DCV), i64s(a, l, DXV), i64s(a, l, DBV)
	b.ColA, b.ColB, b.ColM = i64s(a, l, DColA), i64s(a, l, DColB), i64s(a, l, DColM)
	b.RowCnt = i64s(a, l, DRowCnt)
	b.D1, b.D2, b.D3 = i64s(a, l, DD1), i64s(a, l, DD2), i64s(a, l, DD3)
	b.D2I, b.D3I = i32s(a, l, DD2, 2*l.Cells), i32s(a, l, DD3, 2*l.Cells)
	b.WFlag, b.NextW = i32s(a, l, DWFlag, l.NW), i32s(a, l, DNextW, l.NW)
	b.BFlag, b.NextB = i32s(a, l, DBFlag, l.NB), i32s(a, l, DNextB, l.NB)
	b.HW, b.HB = i32s(a, l, DHW, l.Cells), i32s(a, l, DHB, l.Cells)
	b.BondOut = u32s(a, l, DBondOut, l.BondCap)
	b.RowT = i64s(a, l, DRowT)
	b.PMW, b.PMB = i32s(a, l, DPMW, l.NW), i32s(a, l, DPMB, l.NB)
}

// u16Max is I32F32(65535).
const u16Max = fixed.I32F32(65535 << 32)

// packSub runs the host prelude of one subnet (epoch.go sparse(), up to the
// weights) and fills its rows of the input arena.
func (b *Batch) packSub(s int64, in *yuma.Input, u0, cell0 int64) {
	n := in.N
	hasOwner := in.OwnerUID >= 0
	owner := in.OwnerUID
	h := &b.subs[s]
	h.in, h.u0 = in, u0

	// == Active ==
	h.inactive = make([]bool, n)
	for i := range n {
		h.inactive[i] = satAddU64(in.LastUpdate[i], in.ActivityCutoffBlocks) < in.CurrentBlock
	}
	// == Stake == (normalizedStake, owner exempt)
	stake := normalizedStake(in)
	// == Permits ==
	np := len(in.ValidatorPermit)
	permits := slices.Clone(in.ValidatorPermit)
	if hasOwner && owner < np {
		permits[owner] = true
	}
	forbids := make([]bool, np)
	for i, p := range permits {
		forbids[i] = !p
	}
	h.newPermits = topkNonzero(stake, int(in.MaxAllowedValidators))
	if hasOwner && owner < n {
		h.newPermits[owner] = true
	}
	// == Active stake ==
	active := slices.Clone(stake)
	maskVector(h.inactive, active)
	maskVector(forbids, active)
	normalize(active)
	h.stake, h.active = stake, active

	// consensus stake list (weightedMedianCols)
	var use []int64
	var useIdx []int64
	for i, a := range active {
		if a > 0 {
			use = append(use, a)
			useIdx = append(useIdx, int64(i))
		}
	}
	normalize(use)
	var stakeSum int64
	for _, v := range use {
		stakeSum = int64(uint64(stakeSum) + uint64(v))
	}
	kappa := fixed.I32F32FromU64(uint64(in.Kappa)).SafeDiv(u16Max)
	beta := fixed.I32F32FromU64(uint64(in.BondsPenalty)).SafeDiv(u16Max)
	h.lastTempo = lastTempo(in)

	sub := b.Sub[s*SubFields : (s+1)*SubFields]
	sub[SFN], sub[SFUid], sub[SFCell] = int64(n), u0, cell0
	sub[SFOwner] = int64(owner)
	if !hasOwner {
		sub[SFOwner] = -1
	}
	sub[SFCR] = b2i(in.CommitReveal)
	sub[SFMinority] = int64(fixed.I32F32(stakeSum).SatSub(kappa))
	sub[SFUseK] = int64(len(use))
	sub[SFYuma3], sub[SFLiqIn] = b2i(in.Yuma3), b2i(in.LiquidAlpha)
	switch beta {
	case 0:
		sub[SFMode] = 0
	case fixed.I32F32One:
		sub[SFMode] = 1
	default:
		sub[SFMode] = 2
	}
	sub[SFBeta] = int64(beta)
	sub[SFEmaA] = int64(emaAlpha(in.BondsMovingAverage))
	sub[SFLow] = fxU16Prop(uint64(in.AlphaLow))
	sub[SFHigh] = fxU16Prop(uint64(in.AlphaHigh))
	sub[SFScale] = int64(fixed.I32F32FromInt(int64(in.AlphaSteepness)).SatDiv(fixed.I32F32FromInt(-100)))
	sub[SFLT] = int64(h.lastTempo)
	var asum int64
	for _, a := range active {
		asum = int64(uint64(asum) + uint64(a))
	}
	sub[SFActZero] = b2i(asum == 0)
	sub[SFRao] = int64(in.RaoEmission)

	for i := range n {
		u := u0 + int64(i)
		b.USub[u] = s
		b.LU[u] = in.LastUpdate[i]
		b.BAR[u] = in.BlockAtRegistration[i]
		c := uint64(yuma.NoCommit)
		if in.CommitReveal && in.CommitBlocks != nil {
			c = in.CommitBlocks[i]
		}
		b.Commit[u] = c
		var f int64
		if i >= np || forbids[i] {
			f |= UFRowForbid
		}
		if h.newPermits[i] {
			f |= UFNewPermit
		}
		if active[i] > 0 {
			f |= UFUse
		}
		b.UFlag[u] = f
		b.Active[u], b.Stake[u] = active[i], stake[i]
	}
	for r := range useIdx {
		b.UseIdx[u0+int64(r)] = useIdx[r]
		b.UseStake[u0+int64(r)] = use[r]
	}
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

func satAddU64(a, c uint64) uint64 {
	s, carry := bits.Add64(a, c, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// lastTempo is yuma's lastTempo (run_epoch.rs:827).
func lastTempo(in *yuma.Input) uint64 {
	if in.LastMechanismStepBlock == 0 {
		if in.CurrentBlock < in.Tempo {
			return 0
		}
		return in.CurrentBlock - in.Tempo
	}
	return satAddU64(in.LastMechanismStepBlock, 1)
}

// emaAlpha is 1 - I32F32(I64F64(bma)/1e6).
func emaAlpha(bma uint64) fixed.I32F32 {
	q := fixed.I64F64FromU64(bma).SafeDiv(fixed.I64F64FromU64(1_000_000))
	return fixed.I32F32One.SatSub(q.I32F32())
}

// normalizedStake is yuma's normalizedStake with the owner exempt from the
// threshold (steps 2.1-2.4).
func normalizedStake(in *yuma.Input) []int64 {
	n := in.N
	tw := fixed.I64F64FromU96F32(fixed.U96F32FromU64(in.TaoWeight).SafeDiv(fixed.U96F32FromU64(math.MaxUint64)))
	s64 := make([]fixed.I64F64, n)
	var sum fixed.I64F64
	for i := range n {
		t := fixed.I64F64FromU64(in.AlphaStake[i])
		if in.TaoStake[i] != 0 && !tw.IsZero() {
			t = t.SatAdd(fixed.I64F64FromU64(in.TaoStake[i]).SatMul(tw))
		}
		if i != in.OwnerUID && t.FloorU64() < in.StakeThreshold {
			t = fixed.I64F64{}
		}
		s64[i] = t
		sum = sum.Add(t)
	}
	out := make([]int64, n)
	for i, t := range s64 {
		if sum.IsZero() {
			out[i] = int64(t.I32F32())
		} else {
			out[i] = int64(t.DivI32F32(sum))
		}
	}
	return out
}

// topkNonzero is is_topk_nonzero (ties: lower uid dropped first).
func topkNonzero(v []int64, k int) []bool {
	res := make([]bool, len(v))
	yuma.TopkNonzero(v, k, res, nil)
	return res
}

// maskVector is inplace_mask_vector.
func maskVector(mask []bool, v []int64) {
	if len(mask) == 0 {
		return
	}
	for i := range v {
		if i >= len(mask) || mask[i] {
			v[i] = 0
		}
	}
}

// normalize is inplace_normalize (plain wrapping sum, safe_div).
func normalize(x []int64) {
	var sum int64
	for _, v := range x {
		sum = int64(uint64(sum) + uint64(v))
	}
	if sum == 0 {
		return
	}
	for i, v := range x {
		x[i] = int64(fixed.I32F32(v).SafeDiv(fixed.I32F32(sum)))
	}
}

// Unpack decodes the outputs of the batch (after the kernels ran and the
// output prefix and bond entries are in b.Work / b.BondOut) into
// outs[idx[k]], one goroutine per subnet at a time. The outputs are copies,
// so b.Work and b.BondOut may be reused once Unpack returns (the GPU engine
// downloads into page-locked buffers it keeps); each subnet's goroutine
// allocates and fills its own arrays, which spreads the first touch of the
// fresh memory (page faults) over the cores.
func (b *Batch) Unpack(idx []int, outs []yuma.Output) {
	parallel(len(idx), func(s int) {
		h := &b.subs[s]
		n, u0 := int64(h.in.N), h.u0
		out := &outs[idx[s]]
		*out = yuma.Output{}
		// append to nil allocates without zeroing first (make would clear
		// the memory the copy then overwrites)
		sl := func(v []int64) []int64 { return append([]int64(nil), v[u0:u0+n]...) }
		su := func(v []uint64) []uint64 { return append([]uint64(nil), v[u0:u0+n]...) }
		cons, vtrust, inc, divs := sl(b.Cons), sl(b.VTrust), sl(b.Inc), sl(b.Divs)
		out.StakeWeight = u16Vec(h.stake)
		out.Consensus = u16Vec(cons)
		out.Incentive = u16Vec(inc)
		out.Dividends = u16Vec(divs)
		out.ValidatorTrust = u16Vec(vtrust)
		out.ServerEmission, out.ValidatorEmission, out.Emission = su(b.SEm), su(b.VEm), su(b.Em)
		out.NewValidatorPermits = h.newPermits
		out.Inactive = h.inactive
		out.LastTempo = h.lastTempo
		out.NewBonds = make([][]yuma.Entry, n)
		out.BondsWritten = make([]bool, n)
		base := b.SState[int64(s)*StateFields+SSBondBase]
		cnt := b.SState[int64(s)*StateFields+SSBondN]
		var mine []yuma.Entry
		if src := b.BondOut[base : base+cnt]; entryWord && cnt > 0 {
			mine = append(mine, unsafe.Slice((*yuma.Entry)(unsafe.Pointer(unsafe.SliceData(src))), cnt)...)
		} else {
			mine = make([]yuma.Entry, cnt)
			for p, v := range src {
				mine[p] = yuma.Entry{UID: uint16(v), Value: uint16(v >> 16)}
			}
		}
		// Rows are consecutive in uid order: row i holds the entries from
		// its offset to the next row's (rows without a new permit hold none).
		off := b.RowOff[u0 : u0+n] // read here only: no copy
		for i := range n {
			out.BondsWritten[i] = true
			lo, hi := off[i], cnt
			if i+1 < n {
				hi = off[i+1]
			}
			out.NewBonds[i] = mine[lo:hi:hi]
		}
		out.Raw = yuma.RawTerms{
			Stake: h.stake, ActiveStake: h.active,
			Consensus: cons, Incentive: inc, Dividends: divs, ValidatorTrust: vtrust,
		}
	})
}

func u16Vec(x []int64) []uint16 {
	out := make([]uint16, len(x))
	for i, v := range x {
		out[i] = fxPropU16(v)
	}
	return out
}
