// Package gpuplan is the CPU-side reference path of the batched Yuma CUDA
// kernels (kernels/yuma.cu): the same flattened batch layout, the same
// per-thread kernel bodies and the same launch sequence, run in Go. It is
// untagged pure Go, so CI tests it against yuma.CPUEngine bit for bit on
// every vector and on thousands of random batches; the cuda-tagged engine in
// package gpu packs batches with Pack, runs the kernels on the device over
// exactly these arrays and decodes them with Unpack.
//
// # Decomposition
//
// Host (Pack, O(n) per subnet, in the CPU engine's exact order): activity,
// the I64F64 stake normalisation (128-bit division), validator permits
// (stable top-k sort), active stake and the consensus stake list, and the
// per-subnet constants (κ, β, EMA rate, liquid-alpha bounds, last_tempo).
// These need wide division or a sort and cost O(n); everything O(nnz) or
// O(n²) runs on the device:
//
//	kernel            grid             step (yuma-epoch.md §4)
//	yuma_clear        thread per cell  empty the per-cell chain heads
//	yuma_load         block per row    5.2-5.5 weights masks, row sums; 10.1-10.2/11.1 bond load + mask; chains
//	yuma_wnorm        thread per entry 5.6 row normalisation
//	yuma_consensus    thread per col   6 weighted median (literal quickselect per column)
//	yuma_clip         block per row    7 col clip, validator trust (wrapping row sums)
//	yuma_cols_a       thread per col   8 ranks (row order); 11.2 bond column sums (row order)
//	yuma_subnet1      block per subnet 8 incentive = normalise(ranks); liquid-alpha switch
//	yuma_wfb          block per row    9 weights for bonds; 11.2-11.3 bond normalise, ΔB
//	yuma_cols_b       thread per col   11.3 ΔB column sums (row order)
//	yuma_ema          block per row    10.3 / 11.4 EMA with the scalar rate; liquid alpha: the rows'
//	                                   column prefix maxima (β 0/1) or the whole dense row (0 < β < 1)
//	yuma_liquid       thread per entry 10.3-10.4 liquid-alpha EMA (sigmoid with the exp series) per wfb entry
//	yuma_cols_c       thread per col   10.5 / 11.4 EMA column sums, 11.6 column max
//	yuma_divs_e       block per row    10.5 Yuma 3 dividend terms of a structured EMA (wrapping row sums)
//	yuma_divs         block per row    10.5 / 11.5 dividends; bond row counts
//	yuma_subnet2      block per subnet 10.5/11.5 normalise dividends; 12 emission; bond row offsets
//	yuma_bond_base    one thread       bond output offsets of the subnets
//	yuma_bond_write   block per row    13 bond rows as (uid, u16)
//
// A block-per-row kernel (GridRow) is one block of Layout.RowThreads() (at
// most RowBlock) threads per uid whose threads stride over the row's
// entries or columns, so that neighbouring threads read neighbouring
// words; its Go twin is the whole block. What depends on a row's order is kept in that order: the chains are
// linked in steps of one entry per thread, in parallel when a step's entries
// have distinct columns and by one thread in stored order when not; prefix
// maxima and the bond output positions are block scans carried across steps;
// the original-Yuma dividend sum is added by one thread in column order.
//
// Exactness: every saturating accumulation runs in the CPU engine's order.
// A row thread walks its row in stored order. A column thread walks rows
// 0..n-1 and, inside a row, the entries of that (row, column) cell in stored
// order through per-cell linked lists (HW/HB heads in a dense n×n table,
// NextW/NextB links), which is exactly the order of the CPU's row-major walk
// restricted to one column, duplicates and unsorted rows included (the
// device skips rows without entries: their chains are empty and their dense
// EMA rows zero). The only reductions done in a different order are the
// plain wrapping sums of inplace_normalize, row sums (validator trust, the
// weight row sums, Yuma 3's Σ_j ema_ij ⊗ incentive_j) and the emission sum,
// which are exact modulo 2^64 in any order (on the device: block reductions
// on unsigned 64-bit words), and max/any, which are order-free. The
// liquid-alpha merge walk of a row, which reads at column j the first
// surviving entry whose column is >= j, is answered per entry (or per column
// of a dense row) by a binary search over the row's prefix maximum of columns
// (PMW/PMB), the same entry the sequential walk reaches. The
// weighted median is subtensor's quickselect itself, one column per thread,
// rather than the closed form of yuma-epoch.md §5.3: that form assumes
// non-negative stakes whose sums do not wrap, which adversarial inputs
// (stakes that wrap the I64F64 sum) break, while the literal algorithm is
// exact for every input. No floats anywhere.
//
// The device engine (package gpu) packs straight into page-locked memory,
// uploads the input arena in one copy, launches the kernels on one stream
// and downloads the output prefix of the work arena and the bond entries.
//
// Matrices derived by densifying rows (interpolation for 0 < β < 1, every
// EMA without liquid alpha) live in dense per-subnet n×n tables where a value
// > 0 means "present", because the CPU keeps exactly the entries > 0 of them
// in ascending column order. Matrices with the stored structure (weights,
// clipped weights, bonds, the liquid-alpha EMA when β is 0 or 1) keep every
// stored entry with flags for "alive" instead of being compacted.
package gpuplan

import "unsafe"

// Per-subnet input table: SubFields int64 per subnet (kernels/yuma.cu SF_*).
const (
	SFN        = iota // n
	SFUid             // first global uid (row) of the subnet
	SFCell            // first dense cell (n×n row-major table)
	SFOwner           // owner uid, -1 for none
	SFCR              // commit-reveal mask on
	SFMinority        // consensus minority = Σuse − κ (saturating)
	SFUseK            // number of rows with active stake > 0
	SFYuma3           // Yuma 3 bonds
	SFLiqIn           // LiquidAlpha input flag
	SFMode            // weights for bonds: 0 = W (β=0), 1 = clipped (β=1), 2 = dense interpolation
	SFBeta            // β
	SFEmaA            // scalar EMA rate
	SFLow             // liquid alpha low
	SFHigh            // liquid alpha high
	SFScale           // steepness sdiv -100
	SFLT              // last_tempo (u64 bits)
	SFActZero         // Σ active stake == 0 (emission fallback uses stake)
	SFRao             // rao emission (u64 bits)
	SubFields
)

// Per-subnet work state: StateFields int64 per subnet (SS_*).
const (
	SSLiq      = iota // liquid alpha applies (LiquidAlpha && some consensus != 0)
	SSBondN           // bond entries written by the subnet
	SSBondBase        // first bond entry of the subnet in BondOut
	StateFields
)

// Per-uid flags (UF_*) and per-weight-entry flags (WF_*).
const (
	UFRowForbid = 1 // weight row masked (no permit, or past the permit vector)
	UFNewPermit = 2 // new validator permit: the bond row is written
	UFUse       = 4 // active stake > 0: a consensus row

	WFAlive = 1 // weight survives the masks of step 5
	WFClip  = 2 // kept by col_clip_sparse
	WFEma   = 4 // liquid-alpha EMA entry > 0 (structured EMA only)
)

// Descriptor slots: the device descriptor is DCount int64 words, holding the
// scalars and the device address of every array (kernels/yuma.cu D_*).
const (
	DS = iota
	DU
	DNW
	DNB
	// inputs
	DSub
	DUSub
	DLU
	DBAR
	DCommit
	DUFlag
	DActive
	DStake
	DUseIdx
	DUseStake
	DWPtr
	DBPtr
	DWEnt
	DBEnt
	// outputs (the work arena's downloaded prefix, in this order)
	DCons
	DVTrust
	DInc
	DDivs
	DSEm
	DVEm
	DEm
	DRowOff
	DSState
	DTotal
	// work
	DWV
	DCV
	DXV
	DBV
	DColA
	DColB
	DColM
	DRowCnt
	DD1
	DD2
	DD3
	DWFlag
	DNextW
	DBFlag
	DNextB
	DHW
	DHB
	DBondOut
	DRowT
	DPMW
	DPMB
	DCount
)

// section is one array inside an arena: its descriptor slot, first word and
// length in elements of elem bytes.
type section struct {
	slot       int
	off, words int64
}

// Layout places every array of a batch in the two arenas (int64 words).
type Layout struct {
	S, U, NW, NB, Cells int64
	BondCap             int64 // capacity of BondOut (entries)

	InWords, WorkWords int64
	OutWords           int64 // downloaded prefix of the work arena
	sec                [DCount]section
	inArena            [DCount]bool
}

func words(n, elem int64) int64 { return (n*elem + 7) / 8 }

func newLayout(S, U, NW, NB, cells, bondCap int64) *Layout {
	l := &Layout{S: S, U: U, NW: NW, NB: NB, Cells: cells, BondCap: bondCap}
	in := [...]struct {
		slot int
		w    int64
	}{
		{DSub, S * SubFields}, {DUSub, U}, {DLU, U}, {DBAR, U}, {DCommit, U}, {DUFlag, U},
		{DActive, U}, {DStake, U}, {DUseIdx, U}, {DUseStake, U}, {DWPtr, U + 1}, {DBPtr, U + 1},
		{DWEnt, words(NW, 4)}, {DBEnt, words(NB, 4)},
	}
	var off int64 = DCount // the descriptor itself opens the input arena
	for _, s := range in {
		l.sec[s.slot] = section{s.slot, off, s.w}
		l.inArena[s.slot] = true
		off += s.w
	}
	l.InWords = off
	work := [...]struct {
		slot int
		w    int64
	}{
		{DCons, U}, {DVTrust, U}, {DInc, U}, {DDivs, U}, {DSEm, U}, {DVEm, U}, {DEm, U}, {DRowOff, U},
		{DSState, S * StateFields}, {DTotal, 1},
		{DWV, NW}, {DCV, NW}, {DXV, NW}, {DBV, NB},
		{DColA, U}, {DColB, U}, {DColM, U}, {DRowCnt, U},
		{DD1, cells}, {DD2, cells}, {DD3, cells},
		{DWFlag, words(NW, 4)}, {DNextW, words(NW, 4)}, {DBFlag, words(NB, 4)}, {DNextB, words(NB, 4)},
		{DHW, words(cells, 4)}, {DHB, words(cells, 4)}, {DBondOut, words(bondCap, 4)},
		{DRowT, U}, {DPMW, words(NW, 4)}, {DPMB, words(NB, 4)},
	}
	off = 0
	for _, s := range work {
		l.sec[s.slot] = section{s.slot, off, s.w}
		off += s.w
		if s.slot == DTotal {
			l.OutWords = off
		}
	}
	l.WorkWords = off
	return l
}

// Descriptor returns the DCount words the kernels read: the scalars and the
// address of every array, given the device addresses of the two arenas.
func (l *Layout) Descriptor(inBase, workBase uint64) []int64 {
	d := make([]int64, DCount)
	d[DS], d[DU], d[DNW], d[DNB] = l.S, l.U, l.NW, l.NB
	for slot := DSub; slot < DCount; slot++ {
		base := workBase
		if l.inArena[slot] {
			base = inBase
		}
		d[slot] = int64(base + uint64(l.sec[slot].off)*8)
	}
	return d
}

// BondOffset is the word offset of BondOut in the work arena.
func (l *Layout) BondOffset() int64 { return l.sec[DBondOut].off }

func i64s(a []int64, l *Layout, slot int) []int64 {
	s := l.sec[slot]
	return a[s.off : s.off+s.words : s.off+s.words]
}

func u64s(a []int64, l *Layout, slot int) []uint64 {
	v := i64s(a, l, slot)
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&v[0])), len(v))
}

func i32s(a []int64, l *Layout, slot int, n int64) []int32 {
	v := i64s(a, l, slot)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&v[0])), n)
}

func u32s(a []int64, l *Layout, slot int, n int64) []uint32 {
	v := i64s(a, l, slot)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&v[0])), n)
}
