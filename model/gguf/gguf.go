// Package gguf reads and writes GGUF model files (the llama.cpp / ggml
// format): header, typed metadata, tensor infos and the aligned data section.
// The reader never copies tensor data: Tensor returns slices of the
// (memory-mapped) file.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// Sanity caps applied while parsing untrusted files.
const (
	MaxStringLen = 1 << 20 // bytes in one string (key, value or tensor name)
	MaxArrayLen  = 1 << 28 // elements in one array
	MaxTensors   = 1 << 20
	MaxKVs       = 1 << 20
	MaxDims      = 4
	MaxElements  = 1 << 56 // elements in one tensor; keeps byte sizes far from overflow
	maxDepth     = 8       // nesting of arrays of arrays
)

// ErrNotFound is wrapped by accessor errors for a missing key or tensor.
var ErrNotFound = errors.New("not found")

// ErrWrongType is wrapped by accessor errors for a value of another type.
var ErrWrongType = errors.New("wrong type")

// GGMLType is a ggml tensor element type id.
type GGMLType uint32

// Tensor types. Only F32, F16, BF16, Q8_0 and Q4_0 are supported for data.
const (
	TypeF32  GGMLType = 0
	TypeF16  GGMLType = 1
	TypeQ4_0 GGMLType = 2
	TypeQ4_1 GGMLType = 3
	TypeQ5_0 GGMLType = 6
	TypeQ5_1 GGMLType = 7
	TypeQ8_0 GGMLType = 8
	TypeQ8_1 GGMLType = 9
	TypeQ2_K GGMLType = 10
	TypeQ3_K GGMLType = 11
	TypeQ4_K GGMLType = 12
	TypeQ5_K GGMLType = 13
	TypeQ6_K GGMLType = 14
	TypeQ8_K GGMLType = 15
	TypeI8   GGMLType = 24
	TypeI16  GGMLType = 25
	TypeI32  GGMLType = 26
	TypeI64  GGMLType = 27
	TypeF64  GGMLType = 28
	TypeBF16 GGMLType = 30
)

var typeNames = map[GGMLType]string{
	TypeF32: "F32", TypeF16: "F16", TypeQ4_0: "Q4_0", TypeQ4_1: "Q4_1",
	TypeQ5_0: "Q5_0", TypeQ5_1: "Q5_1", TypeQ8_0: "Q8_0", TypeQ8_1: "Q8_1",
	TypeQ2_K: "Q2_K", TypeQ3_K: "Q3_K", TypeQ4_K: "Q4_K", TypeQ5_K: "Q5_K",
	TypeQ6_K: "Q6_K", TypeQ8_K: "Q8_K", TypeI8: "I8", TypeI16: "I16",
	TypeI32: "I32", TypeI64: "I64", TypeF64: "F64", TypeBF16: "BF16",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
	21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0",
}

func (t GGMLType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements per block and the bytes per
// block of a supported type; ok is false for types this package cannot read.
func (t GGMLType) BlockSize() (elems, bytes int, ok bool) {
	switch t {
	case TypeF32:
		return 1, 4, true
	case TypeF16, TypeBF16:
		return 1, 2, true
	case TypeQ8_0:
		return 32, 34, true
	case TypeQ4_0:
		return 32, 18, true
	}
	return 0, 0, false
}

// Supported reports whether the package can read and dequantize t.
func (t GGMLType) Supported() bool { _, _, ok := t.BlockSize(); return ok }

// ValueType is a metadata value type id.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(v))
}

// fixedSize is the encoded size of a scalar type, 0 for string/array/unknown.
func (v ValueType) fixedSize() int {
	switch v {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Array is an array metadata value. Values holds a Go slice matching Type:
// []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []Array, []uint64, []int64 or []float64.
type Array struct {
	Type   ValueType
	Values any
}

// Len returns the number of elements.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []Array:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	}
	return 0
}

// KV is one metadata pair. Value has the Go type matching Type (uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, Array, uint64, int64,
// float64).
type KV struct {
	Key   string
	Type  ValueType
	Value any
}

// TensorInfo describes one tensor. Offset is relative to File.DataOffset.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // Dims[0] is the contiguous (row) dimension
	Type   GGMLType
	Offset uint64
}

// Elements returns the number of elements.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size returns the number of data bytes, or 0 for an unsupported type.
func (t *TensorInfo) Size() uint64 {
	be, bb, ok := t.Type.BlockSize()
	if !ok {
		return 0
	}
	return t.Elements() / uint64(be) * uint64(bb)
}

// File is a parsed GGUF file.
type File struct {
	Version    uint32
	Metadata   []KV // in file order
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // absolute offset of the data section

	data    []byte
	kvIndex map[string]int
	tIndex  map[string]int
	src     source
}

// source holds the file bytes: an mmap or an ordinary slice.
type source interface {
	Bytes() []byte
	Close() error
}

type byteSource []byte

func (b byteSource) Bytes() []byte { return b }
func (byteSource) Close() error    { return nil }

// Open maps path into memory (or reads it where mmap is unavailable) and parses it.
func Open(path string) (*File, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(src.Bytes())
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.src = src
	return f, nil
}

// readSource is the non-mmap fallback.
func readSource(path string) (source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return byteSource(b), nil
}

// Close releases the mapping. Slices returned by Tensor are invalid afterwards.
func (f *File) Close() error {
	if f.src == nil {
		return nil
	}
	err := f.src.Close()
	f.src = nil
	f.data = nil
	return err
}

// Data returns the whole file contents.
func (f *File) Data() []byte { return f.data }

// parseError is the panic value used internally by the parser.
type parseError struct{ err error }

type reader struct {
	b   []byte
	pos uint64
}

func fail(format string, args ...any) {
	panic(parseError{fmt.Errorf("gguf: "+format, args...)})
}

func (r *reader) need(n uint64, what string) []byte {
	if n > uint64(len(r.b))-r.pos {
		fail("truncated file: %s needs %d bytes at offset %d, file has %d", what, n, r.pos, len(r.b))
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) remaining() uint64 { return uint64(len(r.b)) - r.pos }

func (r *reader) u8(what string) uint8   { return r.need(1, what)[0] }
func (r *reader) u16(what string) uint16 { return binary.LittleEndian.Uint16(r.need(2, what)) }
func (r *reader) u32(what string) uint32 { return binary.LittleEndian.Uint32(r.need(4, what)) }
func (r *reader) u64(what string) uint64 { return binary.LittleEndian.Uint64(r.need(8, what)) }

func (r *reader) str(what string) string {
	n := r.u64(what + " length")
	if n > MaxStringLen {
		fail("%s: string length %d exceeds limit %d", what, n, MaxStringLen)
	}
	return string(r.need(n, what))
}

// Parse parses a GGUF file held in data. The returned File references data.
func Parse(data []byte) (f *File, err error) {
	defer func() {
		if e := recover(); e != nil {
			pe, ok := e.(parseError)
			if !ok {
				panic(e)
			}
			f, err = nil, pe.err
		}
	}()
	return parse(data), nil
}

func parse(data []byte) *File {
	r := &reader{b: data}
	if string(r.need(4, "magic")) != Magic {
		fail("bad magic %q, want %q", data[:4], Magic)
	}
	f := &File{data: data, Alignment: DefaultAlignment}
	f.Version = r.u32("version")
	if f.Version != 2 && f.Version != 3 {
		fail("unsupported version %d (want 2 or 3)", f.Version)
	}
	nt := r.u64("tensor count")
	nkv := r.u64("metadata count")
	if nt > MaxTensors {
		fail("tensor count %d exceeds limit %d", nt, MaxTensors)
	}
	if nkv > MaxKVs {
		fail("metadata count %d exceeds limit %d", nkv, MaxKVs)
	}
	// Each KV needs at least 8+4+1 bytes, each tensor info at least 8+4+8+4+8.
	if nkv*13 > r.remaining() {
		fail("truncated file: %d metadata pairs cannot fit in %d bytes", nkv, r.remaining())
	}
	f.kvIndex = make(map[string]int, nkv)
	f.Metadata = make([]KV, 0, nkv)
	for i := uint64(0); i < nkv; i++ {
		key := r.str(fmt.Sprintf("metadata key #%d", i))
		if _, dup := f.kvIndex[key]; dup {
			fail("key %q: duplicate", key)
		}
		vt := ValueType(r.u32("key " + key + " type"))
		v := r.value(key, vt, 0)
		f.kvIndex[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{Key: key, Type: vt, Value: v})
	}
	if i, ok := f.kvIndex["general.alignment"]; ok {
		kv := f.Metadata[i]
		a, isU32 := kv.Value.(uint32)
		if !isU32 {
			fail("key %q: type %s, want u32", kv.Key, kv.Type)
		}
		if a == 0 || a&(a-1) != 0 {
			fail("key %q: alignment %d is not a power of two", kv.Key, a)
		}
		f.Alignment = uint64(a)
	}
	if nt*32 > r.remaining() {
		fail("truncated file: %d tensor infos cannot fit in %d bytes", nt, r.remaining())
	}
	f.tIndex = make(map[string]int, nt)
	f.Tensors = make([]TensorInfo, 0, nt)
	for i := uint64(0); i < nt; i++ {
		name := r.str(fmt.Sprintf("tensor #%d name", i))
		what := fmt.Sprintf("tensor %q", name)
		if _, dup := f.tIndex[name]; dup {
			fail("%s: duplicate name", what)
		}
		nd := r.u32(what + " n_dims")
		if nd == 0 || nd > MaxDims {
			fail("%s: n_dims %d out of range 1..%d", what, nd, MaxDims)
		}
		dims := make([]uint64, nd)
		elems := uint64(1)
		for j := range dims {
			d := r.u64(what + " dims")
			if d == 0 {
				fail("%s: dimension %d is zero", what, j)
			}
			if d > MaxElements/elems {
				fail("%s: element count exceeds %d", what, uint64(MaxElements))
			}
			elems *= d
			dims[j] = d
		}
		t := TensorInfo{Name: name, Dims: dims}
		t.Type = GGMLType(r.u32(what + " type"))
		t.Offset = r.u64(what + " offset")
		be, _, ok := t.Type.BlockSize()
		if !ok {
			fail("%s: unsupported tensor type %s", what, t.Type)
		}
		if dims[0]%uint64(be) != 0 {
			fail("%s: row length %d (dims[0]) is not a multiple of the %s block size %d", what, dims[0], t.Type, be)
		}
		if t.Offset%f.Alignment != 0 {
			fail("%s: offset %d is not a multiple of the alignment %d", what, t.Offset, f.Alignment)
		}
		f.tIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(r.pos, f.Alignment)
	if len(f.Tensors) == 0 {
		return f
	}
	if f.DataOffset > uint64(len(data)) {
		fail("truncated file: data section starts at %d, file has %d bytes", f.DataOffset, len(data))
	}
	dataLen := uint64(len(data)) - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	for _, i := range order {
		t := &f.Tensors[i]
		size := t.Size()
		if t.Offset > dataLen || size > dataLen-t.Offset {
			fail("tensor %q: data [%d, %d) extends past end of file (data section has %d bytes)", t.Name, t.Offset, t.Offset+size, dataLen)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		p, q := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size() > q.Offset {
			fail("tensor %q: data at offset %d overlaps tensor %q [%d, %d)", q.Name, q.Offset, p.Name, p.Offset, p.Offset+p.Size())
		}
	}
	return f
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

func (r *reader) value(key string, vt ValueType, depth int) any {
	what := "key " + key
	switch vt {
	case TypeUint8:
		return r.u8(what)
	case TypeInt8:
		return int8(r.u8(what))
	case TypeUint16:
		return r.u16(what)
	case TypeInt16:
		return int16(r.u16(what))
	case TypeUint32:
		return r.u32(what)
	case TypeInt32:
		return int32(r.u32(what))
	case TypeFloat32:
		return math.Float32frombits(r.u32(what))
	case TypeBool:
		b := r.u8(what)
		if b > 1 {
			fail("key %q: bool value %d is not 0 or 1", key, b)
		}
		return b == 1
	case TypeString:
		return r.str(what)
	case TypeUint64:
		return r.u64(what)
	case TypeInt64:
		return int64(r.u64(what))
	case TypeFloat64:
		return math.Float64frombits(r.u64(what))
	case TypeArray:
		if depth >= maxDepth {
			fail("key %q: arrays nested deeper than %d", key, maxDepth)
		}
		et := ValueType(r.u32(what + " array type"))
		n := r.u64(what + " array length")
		if n > MaxArrayLen {
			fail("key %q: array length %d exceeds limit %d", key, n, MaxArrayLen)
		}
		min := uint64(et.fixedSize())
		switch et {
		case TypeString:
			min = 8
		case TypeArray:
			min = 12
		}
		if min == 0 {
			fail("key %q: unknown array element type %d", key, uint32(et))
		}
		if n*min > r.remaining() {
			fail("truncated file: key %q: array of %d %s needs at least %d bytes, %d left", key, n, et, n*min, r.remaining())
		}
		return Array{Type: et, Values: r.array(key, et, int(n), depth)}
	}
	fail("key %q: unknown value type %d", key, uint32(vt))
	return nil
}

// fixedArray decodes len(b)/size little-endian elements of one fixed size.
func fixedArray[T any](b []byte, size int, dec func([]byte) T) []T {
	v := make([]T, len(b)/size)
	for i := range v {
		v[i] = dec(b[size*i:])
	}
	return v
}

func (r *reader) array(key string, et ValueType, n int, depth int) any {
	what := "key " + key
	switch et {
	case TypeUint8:
		return append([]uint8(nil), r.need(uint64(n), what)...)
	case TypeInt8:
		return fixedArray(r.need(uint64(n), what), 1, func(b []byte) int8 { return int8(b[0]) })
	case TypeBool:
		b := r.need(uint64(n), what)
		v := make([]bool, n)
		for i := range v {
			if b[i] > 1 {
				fail("key %q: bool element %d has value %d", key, i, b[i])
			}
			v[i] = b[i] == 1
		}
		return v
	case TypeUint16:
		return fixedArray(r.need(uint64(n)*2, what), 2, binary.LittleEndian.Uint16)
	case TypeInt16:
		return fixedArray(r.need(uint64(n)*2, what), 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case TypeUint32:
		return fixedArray(r.need(uint64(n)*4, what), 4, binary.LittleEndian.Uint32)
	case TypeInt32:
		return fixedArray(r.need(uint64(n)*4, what), 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case TypeFloat32:
		return fixedArray(r.need(uint64(n)*4, what), 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case TypeUint64:
		return fixedArray(r.need(uint64(n)*8, what), 8, binary.LittleEndian.Uint64)
	case TypeInt64:
		return fixedArray(r.need(uint64(n)*8, what), 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case TypeFloat64:
		return fixedArray(r.need(uint64(n)*8, what), 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	case TypeString:
		v := make([]string, n)
		for i := range v {
			v[i] = r.str(what)
		}
		return v
	case TypeArray:
		v := make([]Array, n)
		for i := range v {
			v[i] = r.value(key, TypeArray, depth+1).(Array)
		}
		return v
	}
	fail("key %q: unknown array element type %d", key, uint32(et))
	return nil
}
