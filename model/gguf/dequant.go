package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// HalfToFloat32 converts an IEEE 754 binary16 value to float32 exactly,
// including subnormals, infinities and NaNs (the payload is kept).
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	var bits uint32
	switch {
	case exp == 0 && man == 0:
		bits = sign
	case exp == 0: // subnormal: man * 2^-24; normalise
		e := int32(-14)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		man &= 0x3ff
		bits = sign | uint32(e+127)<<23 | man<<13
	case exp == 31:
		bits = sign | 0x7f800000 | man<<13
	default:
		bits = sign | (exp+127-15)<<23 | man<<13
	}
	return math.Float32frombits(bits)
}

// Float32ToHalf converts f to binary16 with round-to-nearest-even, as ggml
// does: overflow gives ±Inf, tiny values become subnormals or ±0, NaN stays NaN.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 31 {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := man | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to Inf
	}
	return sign | uint16(h)
}

// BF16ToFloat32 converts a bfloat16 value to float32 exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to bfloat16 with round-to-nearest-even (NaN stays NaN), as ggml does.
func Float32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// RowSize returns the number of bytes that n elements of type t occupy.
func RowSize(t GGMLType, n int) (int, error) {
	be, bb, ok := t.BlockSize()
	if !ok {
		return 0, fmt.Errorf("gguf: unsupported tensor type %s", t)
	}
	if n < 0 || uint64(n) > MaxElements {
		return 0, fmt.Errorf("gguf: element count %d out of range", n)
	}
	if n%be != 0 {
		return 0, fmt.Errorf("gguf: %d elements is not a multiple of the %s block size %d", n, t, be)
	}
	return n / be * bb, nil
}

// ToFloat32 decodes the first n elements of raw (of type t) into dst[:n].
func ToFloat32(t GGMLType, raw []byte, n int, dst []float32) error {
	size, err := RowSize(t, n)
	if err != nil {
		return err
	}
	if len(raw) < size {
		return fmt.Errorf("gguf: %s: %d elements need %d bytes, have %d", t, n, size, len(raw))
	}
	if len(dst) < n {
		return fmt.Errorf("gguf: %s: destination holds %d elements, need %d", t, len(dst), n)
	}
	raw, dst = raw[:size], dst[:n]
	switch t {
	case TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case TypeF16:
		for i := range dst {
			dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case TypeBF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case TypeQ8_0:
		for b := 0; b < n/32; b++ {
			blk := raw[b*34 : b*34+34]
			d := HalfToFloat32(binary.LittleEndian.Uint16(blk))
			out := dst[b*32 : b*32+32]
			for j := range out {
				out[j] = float32(int8(blk[2+j])) * d
			}
		}
	case TypeQ4_0:
		for b := 0; b < n/32; b++ {
			blk := raw[b*18 : b*18+18]
			d := HalfToFloat32(binary.LittleEndian.Uint16(blk))
			out := dst[b*32 : b*32+32]
			for j := 0; j < 16; j++ {
				q := blk[2+j]
				out[j] = float32(int(q&0xf)-8) * d
				out[j+16] = float32(int(q>>4)-8) * d
			}
		}
	}
	return nil
}

// QuantizeQ8_0 quantizes src (a multiple of 32 values) like ggml's
// quantize_row_q8_0_ref: d = amax/127, q = round(x/d) (half away from zero).
func QuantizeQ8_0(src []float32) ([]byte, error) {
	if len(src)%32 != 0 {
		return nil, fmt.Errorf("gguf: Q8_0: %d values is not a multiple of 32", len(src))
	}
	out := make([]byte, len(src)/32*34)
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : b*32+32]
		blk := out[b*34 : b*34+34]
		var amax float32
		for _, v := range x {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(blk, Float32ToHalf(d))
		for j, v := range x {
			blk[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
	return out, nil
}

// QuantizeQ4_0 quantizes src (a multiple of 32 values) like ggml's
// quantize_row_q4_0_ref: d = max/-8 where max is the signed value of largest
// magnitude, q = min(15, trunc(x/d + 8.5)).
func QuantizeQ4_0(src []float32) ([]byte, error) {
	if len(src)%32 != 0 {
		return nil, fmt.Errorf("gguf: Q4_0: %d values is not a multiple of 32", len(src))
	}
	out := make([]byte, len(src)/32*18)
	q := func(v, id float32) byte {
		t := float32(v*id) + 8.5
		i := int32(t) // truncation toward zero, as C's (int8_t) cast
		if i > 15 {
			i = 15
		} else if i < 0 { // only for non-finite input
			i = 0
		}
		return byte(i)
	}
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : b*32+32]
		blk := out[b*18 : b*18+18]
		var amax, max float32
		for _, v := range x {
			if a := float32(math.Abs(float64(v))); amax < a {
				amax, max = a, v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(blk, Float32ToHalf(d))
		for j := 0; j < 16; j++ {
			blk[2+j] = q(x[j], id) | q(x[j+16], id)<<4
		}
	}
	return out, nil
}
