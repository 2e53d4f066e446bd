package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF version 3 file. Add metadata and tensors, then call
// WriteTo. Errors from the Add methods are also reported by WriteTo.
type Writer struct {
	alignment uint64
	kvs       []KV
	keys      map[string]bool
	tensors   []wtensor
	names     map[string]bool
	err       error
}

type wtensor struct {
	info TensorInfo
	raw  []byte
}

// NewWriter returns an empty writer with the default alignment (32).
func NewWriter() *Writer {
	return &Writer{alignment: DefaultAlignment, keys: map[string]bool{}, names: map[string]bool{}}
}

func (w *Writer) setErr(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// AddKV adds a metadata pair; value must have the Go type matching vt (see KV).
// Setting general.alignment (u32, a power of two) changes the data alignment.
func (w *Writer) AddKV(key string, vt ValueType, value any) error {
	if w.keys[key] {
		return w.setErr(fmt.Errorf("gguf: key %q: duplicate", key))
	}
	if len(key) > MaxStringLen {
		return w.setErr(fmt.Errorf("gguf: key %q...: too long", key[:32]))
	}
	if err := checkValue(key, vt, value, 0); err != nil {
		return w.setErr(err)
	}
	if key == "general.alignment" {
		a, ok := value.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return w.setErr(fmt.Errorf("gguf: key %q: want a u32 power of two, got %v", key, value))
		}
		w.alignment = uint64(a)
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{Key: key, Type: vt, Value: value})
	return nil
}

// Typed helpers.
func (w *Writer) AddUint8(key string, v uint8) error     { return w.AddKV(key, TypeUint8, v) }
func (w *Writer) AddInt8(key string, v int8) error       { return w.AddKV(key, TypeInt8, v) }
func (w *Writer) AddUint16(key string, v uint16) error   { return w.AddKV(key, TypeUint16, v) }
func (w *Writer) AddInt16(key string, v int16) error     { return w.AddKV(key, TypeInt16, v) }
func (w *Writer) AddUint32(key string, v uint32) error   { return w.AddKV(key, TypeUint32, v) }
func (w *Writer) AddInt32(key string, v int32) error     { return w.AddKV(key, TypeInt32, v) }
func (w *Writer) AddFloat32(key string, v float32) error { return w.AddKV(key, TypeFloat32, v) }
func (w *Writer) AddBool(key string, v bool) error       { return w.AddKV(key, TypeBool, v) }
func (w *Writer) AddString(key string, v string) error   { return w.AddKV(key, TypeString, v) }
func (w *Writer) AddUint64(key string, v uint64) error   { return w.AddKV(key, TypeUint64, v) }
func (w *Writer) AddInt64(key string, v int64) error     { return w.AddKV(key, TypeInt64, v) }
func (w *Writer) AddFloat64(key string, v float64) error { return w.AddKV(key, TypeFloat64, v) }

// AddArray adds an array; values is one of the slice types listed for Array.
func (w *Writer) AddArray(key string, values any) error {
	et, ok := sliceType(values)
	if !ok {
		return w.setErr(fmt.Errorf("gguf: key %q: unsupported array type %T", key, values))
	}
	return w.AddKV(key, TypeArray, Array{Type: et, Values: values})
}

func sliceType(v any) (ValueType, bool) {
	switch v.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []Array:
		return TypeArray, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	}
	return 0, false
}

func checkValue(key string, vt ValueType, v any, depth int) error {
	ok := false
	switch vt {
	case TypeUint8:
		_, ok = v.(uint8)
	case TypeInt8:
		_, ok = v.(int8)
	case TypeUint16:
		_, ok = v.(uint16)
	case TypeInt16:
		_, ok = v.(int16)
	case TypeUint32:
		_, ok = v.(uint32)
	case TypeInt32:
		_, ok = v.(int32)
	case TypeFloat32:
		_, ok = v.(float32)
	case TypeBool:
		_, ok = v.(bool)
	case TypeString:
		var s string
		s, ok = v.(string)
		if ok && len(s) > MaxStringLen {
			return fmt.Errorf("gguf: key %q: string longer than %d bytes", key, MaxStringLen)
		}
	case TypeUint64:
		_, ok = v.(uint64)
	case TypeInt64:
		_, ok = v.(int64)
	case TypeFloat64:
		_, ok = v.(float64)
	case TypeArray:
		var a Array
		a, ok = v.(Array)
		if !ok {
			break
		}
		if depth >= maxDepth {
			return fmt.Errorf("gguf: key %q: arrays nested deeper than %d", key, maxDepth)
		}
		et, sok := sliceType(a.Values)
		if !sok || et != a.Type {
			return fmt.Errorf("gguf: key %q: array of %s holds %T", key, a.Type, a.Values)
		}
		if a.Len() > MaxArrayLen {
			return fmt.Errorf("gguf: key %q: array longer than %d", key, MaxArrayLen)
		}
		switch x := a.Values.(type) {
		case []string:
			for _, s := range x {
				if len(s) > MaxStringLen {
					return fmt.Errorf("gguf: key %q: string longer than %d bytes", key, MaxStringLen)
				}
			}
		case []Array:
			for _, e := range x {
				if err := checkValue(key, TypeArray, e, depth+1); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("gguf: key %q: unknown value type %d", key, uint32(vt))
	}
	if !ok {
		return fmt.Errorf("gguf: key %q: value of Go type %T does not match %s", key, v, vt)
	}
	return nil
}

// AddTensor adds a tensor; raw must hold exactly its data (see RowSize).
// Tensors are laid out in the order added. raw is not copied.
func (w *Writer) AddTensor(name string, t GGMLType, dims []uint64, raw []byte) error {
	if w.names[name] {
		return w.setErr(fmt.Errorf("gguf: tensor %q: duplicate", name))
	}
	if len(name) > MaxStringLen {
		return w.setErr(fmt.Errorf("gguf: tensor name too long"))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return w.setErr(fmt.Errorf("gguf: tensor %q: %d dims, want 1..%d", name, len(dims), MaxDims))
	}
	be, _, ok := t.BlockSize()
	if !ok {
		return w.setErr(fmt.Errorf("gguf: tensor %q: unsupported tensor type %s", name, t))
	}
	elems := uint64(1)
	for i, d := range dims {
		if d == 0 {
			return w.setErr(fmt.Errorf("gguf: tensor %q: dimension %d is zero", name, i))
		}
		if d > MaxElements/elems {
			return w.setErr(fmt.Errorf("gguf: tensor %q: element count exceeds %d", name, uint64(MaxElements)))
		}
		elems *= d
	}
	if dims[0]%uint64(be) != 0 {
		return w.setErr(fmt.Errorf("gguf: tensor %q: row length %d is not a multiple of the %s block size %d", name, dims[0], t, be))
	}
	info := TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t}
	if uint64(len(raw)) != info.Size() {
		return w.setErr(fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d for %s %v", name, len(raw), info.Size(), t, dims))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, wtensor{info: info, raw: raw})
	return nil
}

type lew struct{ bytes.Buffer }

func (b *lew) u32(v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (b *lew) u64(v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (b *lew) str(s string) { b.u64(uint64(len(s))); b.WriteString(s) }

func (b *lew) value(v any) {
	switch x := v.(type) {
	case uint8:
		b.WriteByte(x)
	case int8:
		b.WriteByte(byte(x))
	case uint16:
		b.Write(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		b.u32(x)
	case int32:
		b.u32(uint32(x))
	case float32:
		b.u32(math.Float32bits(x))
	case bool:
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case string:
		b.str(x)
	case uint64:
		b.u64(x)
	case int64:
		b.u64(uint64(x))
	case float64:
		b.u64(math.Float64bits(x))
	case Array:
		b.u32(uint32(x.Type))
		b.u64(uint64(x.Len()))
		switch s := x.Values.(type) {
		case []uint8:
			b.Write(s)
		case []int8:
			for _, e := range s {
				b.value(e)
			}
		case []uint16:
			for _, e := range s {
				b.value(e)
			}
		case []int16:
			for _, e := range s {
				b.value(e)
			}
		case []uint32:
			for _, e := range s {
				b.value(e)
			}
		case []int32:
			for _, e := range s {
				b.value(e)
			}
		case []float32:
			for _, e := range s {
				b.value(e)
			}
		case []bool:
			for _, e := range s {
				b.value(e)
			}
		case []string:
			for _, e := range s {
				b.value(e)
			}
		case []Array:
			for _, e := range s {
				b.value(e)
			}
		case []uint64:
			for _, e := range s {
				b.value(e)
			}
		case []int64:
			for _, e := range s {
				b.value(e)
			}
		case []float64:
			for _, e := range s {
				b.value(e)
			}
		}
	}
}

// WriteTo writes the file: header, metadata, tensor infos, padding, and the
// tensor data, each tensor padded to the alignment (as ggml does).
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	var h lew
	h.WriteString(Magic)
	h.u32(3)
	h.u64(uint64(len(w.tensors)))
	h.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		h.str(kv.Key)
		h.u32(uint32(kv.Type))
		h.value(kv.Value)
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.info.Offset = off
		h.str(t.info.Name)
		h.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			h.u64(d)
		}
		h.u32(uint32(t.info.Type))
		h.u64(off)
		off = alignUp(off+uint64(len(t.raw)), w.alignment)
	}
	if len(w.tensors) > 0 {
		h.Write(make([]byte, alignUp(uint64(h.Len()), w.alignment)-uint64(h.Len())))
	}
	n, err := out.Write(h.Bytes())
	total := int64(n)
	if err != nil {
		return total, err
	}
	pad := make([]byte, w.alignment)
	for _, t := range w.tensors {
		n, err = out.Write(t.raw)
		total += int64(n)
		if err != nil {
			return total, err
		}
		p := alignUp(uint64(len(t.raw)), w.alignment) - uint64(len(t.raw))
		n, err = out.Write(pad[:p])
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Bytes returns the encoded file.
func (w *Writer) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
