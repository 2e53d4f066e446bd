package gpuplan

import (
	"errors"
	"fmt"
	"unsafe"
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

// Layout returns the layout of a batch of this shape, or an error if no
// Pack makes one like it: at least one subnet; S ≤ U ≤ 65535·S; U ≤ Cells
// ≤ MaxCells; entries within the kernels' int32 links; BondCap within what
// Pack reserves (max(n, its weight entries) a row: at most Cells + NW).
func (sh Shape) Layout() (*Layout, error) {
	switch {
	case sh.S < 1 || sh.U < sh.S || sh.U > 65535*sh.S:
		return nil, fmt.Errorf("gpuplan: shape: %d uids in %d subnets", sh.U, sh.S)
	case sh.Cells < sh.U || sh.Cells > MaxCells:
		return nil, fmt.Errorf("gpuplan: shape: %d dense cells for %d uids (at most %d)", sh.Cells, sh.U, MaxCells)
	case sh.NW < 0 || sh.NW > maxEntries || sh.NB < 0 || sh.NB > maxEntries:
		return nil, fmt.Errorf("gpuplan: shape: %d weight and %d bond entries (at most %d each)", sh.NW, sh.NB, maxEntries)
	case sh.BondCap < 0 || sh.BondCap > sh.Cells+sh.NW:
		return nil, fmt.Errorf("gpuplan: shape: bond capacity %d", sh.BondCap)
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
// and the one before it. Values are not checked (they are copied as they
// are). prefix and bonds must stay unchanged until Unpack returns.
func (b *Batch) SetOutputs(prefix []int64, bonds []uint32) error {
	l := b.L
	if int64(len(prefix)) != l.OutWords {
		return fmt.Errorf("%w: output prefix of %d words, want %d", ErrOutputs, len(prefix), l.OutWords)
	}
	b.SetWork(prefix)
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
