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

func bytesOf[T uint16 | uint64 | int64 | yuma.Entry](vs []T) []byte {
	if len(vs) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), len(vs)*int(unsafe.Sizeof(vs[0])))
}
