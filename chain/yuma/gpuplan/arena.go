package gpuplan

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"taobox/chain/yuma"
)

// A batch packed in one process and run in another (the GPU runner's
// yuma.packed op): the parent packs, the runner learns the Layout from the
// batch's Shape, runs the kernels over the arena and returns the output
// prefix and the bond entries, and the parent checks them (SetOutputs)
// before Unpack. Nothing but the arena and six numbers crosses.

// Shape is what fixes a batch's Layout: subnets, uids, weight and bond
// entries, dense cells and bond output capacity.
type Shape struct {
	S, U, NW, NB, Cells, BondCap int64
}

// Shape returns the numbers l was made from.
func (l *Layout) Shape() Shape {
	return Shape{l.S, l.U, l.NW, l.NB, l.Cells, l.BondCap}
}

// maxEntries bounds NW and NB: the kernels' entry links are int32.
const maxEntries = 1<<31 - 1

// Layout returns the layout of a batch of this shape, or an error if the
// numbers cannot come from one Pack: S subnets of n_s uids (1 ≤ n_s ≤ 5792)
// have U = Σn_s and Cells = Σn_s², so S ≤ U ≤ 5792·S, U ≤ Cells ≤
// (U−S+1)² + S−1 (one big subnet, the rest of one uid), U² ≤ S·Cells
// (Cauchy-Schwarz) and Cells ≤ MaxCells; entries within the
// kernels' int32 links; and a bond capacity of max(n, its weight entries)
// a row, between Cells and Cells + NW. (Shapes that pass and still come
// from no Pack exist: the numbers do not pin the n_s down.)
func (sh Shape) Layout() (*Layout, error) {
	const maxN = 5792 // the largest n with n² ≤ MaxCells (Eligible)
	switch {
	case sh.S < 1 || sh.U < sh.S || sh.U > maxN*sh.S:
		return nil, fmt.Errorf("gpuplan: shape: %d uids in %d subnets", sh.U, sh.S)
	case sh.Cells < sh.U || sh.Cells > MaxCells || sh.Cells > (sh.U-sh.S+1)*(sh.U-sh.S+1)+sh.S-1 || sh.U*sh.U > sh.S*sh.Cells:
		return nil, fmt.Errorf("gpuplan: shape: %d dense cells for %d uids in %d subnets (at most %d)", sh.Cells, sh.U, sh.S, MaxCells)
	case sh.NW < 0 || sh.NW > maxEntries || sh.NB < 0 || sh.NB > maxEntries:
		return nil, fmt.Errorf("gpuplan: shape: %d weight and %d bond entries (at most %d each)", sh.NW, sh.NB, maxEntries)
	case sh.BondCap < sh.Cells || sh.BondCap > sh.Cells+sh.NW:
		return nil, fmt.Errorf("gpuplan: shape: bond capacity %d (cells %d, weight entries %d)", sh.BondCap, sh.Cells, sh.NW)
	}
	return newLayout(sh.S, sh.U, sh.NW, sh.NB, sh.Cells, sh.BondCap), nil
}

// FromArena returns the batch whose input arena is in (l.InWords words,
// as Pack made it), with a work arena for the Go kernels: the runner's
// stand-in for the device. It cannot Unpack (the host prelude stayed with
// the packer); Outputs gives what the device path downloads.
func FromArena(l *Layout, in []int64) (*Batch, error) {
	if int64(len(in)) != l.InWords {
		return nil, fmt.Errorf("gpuplan: input arena of %d words, layout wants %d", len(in), l.InWords)
	}
	b := &Batch{L: l, In: in, Work: make([]int64, l.WorkWords)}
	b.inViews()
	b.workViews()
	return b, nil
}

// Outputs returns, after Run, what the device path downloads: the output
// prefix of the work arena (l.OutWords words, its last word the number of
// bond entries) and those bond entries.
func (b *Batch) Outputs() (prefix []int64, bonds []uint32) {
	total := min(max(b.Total[0], 0), b.L.BondCap)
	return b.Work[:b.L.OutWords], b.BondOut[:total]
}

// ErrOutputs: a downloaded output prefix is inconsistent (bond counts or
// offsets outside their arrays); the batch must run elsewhere.
var ErrOutputs = errors.New("gpuplan: inconsistent kernel outputs")

// SetOutputs points Unpack at a downloaded output prefix and bond entries
// (b from Pack), after checking every count and offset Unpack slices with:
// the bond total against BondCap and len(bonds), each subnet's bond base
// and count against the total, each row offset against its subnet's count
// and the one before it. Those words are checked in copies that Unpack
// then uses, so that prefix may be memory another process can still write
// (a runner's shared region): whatever changes there afterwards changes
// values Unpack copies, never where it slices. Values are not checked.
func (b *Batch) SetOutputs(prefix []int64, bonds []uint32) error {
	l := b.L
	if int64(len(prefix)) != l.OutWords {
		return fmt.Errorf("%w: output prefix of %d words, want %d", ErrOutputs, len(prefix), l.OutWords)
	}
	b.SetWork(prefix)
	b.SState, b.RowOff = slices.Clone(b.SState), slices.Clone(b.RowOff)
	if total := b.Total[0]; total < 0 || total > l.BondCap || total != int64(len(bonds)) {
		return fmt.Errorf("%w: %d bond entries (capacity %d, %d downloaded)", ErrOutputs, total, l.BondCap, len(bonds))
	}
	total := int64(len(bonds))
	for s := range b.subs {
		h := &b.subs[s]
		base := b.SState[int64(s)*StateFields+SSBondBase]
		cnt := b.SState[int64(s)*StateFields+SSBondN]
		if base < 0 || cnt < 0 || base > total || cnt > total-base {
			return fmt.Errorf("%w: subnet %d: bond entries %d+%d of %d", ErrOutputs, s, base, cnt, total)
		}
		prev := int64(0)
		for i, off := range b.RowOff[h.u0 : h.u0+int64(h.in.N)] {
			if off < prev || off > cnt {
				return fmt.Errorf("%w: subnet %d: row %d's bonds start at %d (previous row %d, %d entries)", ErrOutputs, s, i, off, prev, cnt)
			}
			prev = off
		}
	}
	b.BondOut = bonds
	return nil
}

// Words returns p's bytes as native-endian int64 words when p is 8-byte
// aligned and a whole number of words, else nil.
func Words(p []byte) []int64 {
	if len(p)%8 != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%8 != 0 {
		return nil
	}
	if len(p) == 0 {
		return []int64{}
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(p))), len(p)/8)
}

// Bytes returns the memory of a slice of fixed-size words (Words' inverse
// for int64): nil when it is empty.
func Bytes[T int64 | uint64 | uint32 | uint16 | yuma.Entry](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// CopyParallel copies src into dst (equal lengths) in pieces of at least
// 1 MiB on up to GOMAXPROCS goroutines: staging an arena in page-locked
// memory is bound by memory bandwidth, which one core does not fill.
func CopyParallel(dst, src []byte) {
	const piece = 1 << 20
	n := (len(src) + piece - 1) / piece
	parallel(n, func(i int) {
		lo, hi := i*piece, min((i+1)*piece, len(src))
		copy(dst[lo:hi], src[lo:hi])
	})
}
