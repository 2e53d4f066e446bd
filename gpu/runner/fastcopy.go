package runner

import (
	"encoding/binary"
	"unsafe"

	"taobox/chain/yuma"
)

// On a little-endian machine the wire form of []uint16, []uint64, []int64
// and []yuma.Entry (u16 uid, u16 value) is their memory layout, so the
// codec copies them with one memmove each instead of a loop per element.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func init() {
	// The Entry fast path needs Entry to be exactly (UID, Value), unpadded.
	if unsafe.Sizeof(yuma.Entry{}) != 4 || unsafe.Offsetof(yuma.Entry{}.Value) != 2 {
		littleEndian = false
	}
}

// word is an element type the codec writes as fixed-size little-endian words.
type word interface{ uint16 | uint64 | int64 }

// decodeAs returns p's n elements as a []T: sharing p's memory when the
// decoder may alias, else a copy (append to nil: no zeroing first). It
// needs a little-endian machine and p aligned for T (a misaligned *T is
// invalid even where the CPU allows it); ok false: decode otherwise.
func decodeAs[T uint16 | uint64 | int64 | yuma.Entry](d *dec, p []byte, n int) ([]T, bool) {
	view, ok := viewAs[T](p, n)
	if !ok || d.alias {
		return view, ok
	}
	return append([]T(nil), view...), true
}

func viewAs[T uint16 | uint64 | int64 | yuma.Entry](p []byte, n int) ([]T, bool) {
	if !littleEndian || n == 0 {
		return nil, false
	}
	var zero T
	if len(p) != n*int(unsafe.Sizeof(zero)) || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%unsafe.Alignof(zero) != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(p))), n), true
}
