package gguf

import (
	"fmt"
	"math"
)

// KV returns the metadata pair for key.
func (f *File) KV(key string) (*KV, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return &f.Metadata[i], true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.kvIndex[key]; return ok }

func (f *File) get(key string) (*KV, error) {
	kv, ok := f.KV(key)
	if !ok {
		return nil, fmt.Errorf("gguf: key %q: %w", key, ErrNotFound)
	}
	return kv, nil
}

func wrongType(kv *KV, want string) error {
	t := kv.Type.String()
	if a, ok := kv.Value.(Array); ok {
		t = "array of " + a.Type.String()
	}
	return fmt.Errorf("gguf: key %q: %w: is %s, want %s", kv.Key, ErrWrongType, t, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	kv, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := kv.Value.(string)
	if !ok {
		return "", wrongType(kv, "string")
	}
	return s, nil
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	kv, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := kv.Value.(bool)
	if !ok {
		return false, wrongType(kv, "bool")
	}
	return b, nil
}

// asInt converts any integer scalar; neg reports a negative signed value.
func asInt(v any) (u uint64, s int64, neg, ok bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), int64(x), false, true
	case uint16:
		return uint64(x), int64(x), false, true
	case uint32:
		return uint64(x), int64(x), false, true
	case uint64:
		return x, int64(x), false, true
	case int8:
		return uint64(x), int64(x), x < 0, true
	case int16:
		return uint64(x), int64(x), x < 0, true
	case int32:
		return uint64(x), int64(x), x < 0, true
	case int64:
		return uint64(x), x, x < 0, true
	}
	return 0, 0, false, false
}

// Uint returns a non-negative integer value of any integer type.
func (f *File) Uint(key string) (uint64, error) {
	kv, err := f.get(key)
	if err != nil {
		return 0, err
	}
	u, s, neg, ok := asInt(kv.Value)
	if !ok {
		return 0, wrongType(kv, "an unsigned integer")
	}
	if neg {
		return 0, fmt.Errorf("gguf: key %q: value %d is negative", key, s)
	}
	return u, nil
}

// Int returns an integer value of any integer type that fits in int64.
func (f *File) Int(key string) (int64, error) {
	kv, err := f.get(key)
	if err != nil {
		return 0, err
	}
	u, s, _, ok := asInt(kv.Value)
	if !ok {
		return 0, wrongType(kv, "an integer")
	}
	if kv.Type == TypeUint64 && u > math.MaxInt64 {
		return 0, fmt.Errorf("gguf: key %q: value %d overflows int64", key, u)
	}
	return s, nil
}

// Float returns an f32 or f64 value.
func (f *File) Float(key string) (float64, error) {
	kv, err := f.get(key)
	if err != nil {
		return 0, err
	}
	switch x := kv.Value.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, wrongType(kv, "a float")
}

// Array returns an array value.
func (f *File) Array(key string) (Array, error) {
	kv, err := f.get(key)
	if err != nil {
		return Array{}, err
	}
	a, ok := kv.Value.(Array)
	if !ok {
		return Array{}, wrongType(kv, "an array")
	}
	return a, nil
}

// Strings returns an array of strings (not copied).
func (f *File) Strings(key string) ([]string, error) {
	a, err := f.Array(key)
	if err != nil {
		return nil, err
	}
	s, ok := a.Values.([]string)
	if !ok {
		kv, _ := f.KV(key)
		return nil, wrongType(kv, "array of string")
	}
	return s, nil
}

// Ints returns an array of any integer type as int64s.
func (f *File) Ints(key string) ([]int64, error) {
	a, err := f.Array(key)
	if err != nil {
		return nil, err
	}
	conv := func(n int, at func(int) int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	switch v := a.Values.(type) {
	case []uint8:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []int8:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []uint16:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []int16:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []uint32:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []int32:
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	case []int64:
		return v, nil
	case []uint64:
		for i, x := range v {
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("gguf: key %q: element %d value %d overflows int64", key, i, x)
			}
		}
		return conv(len(v), func(i int) int64 { return int64(v[i]) }), nil
	}
	kv, _ := f.KV(key)
	return nil, wrongType(kv, "array of integers")
}

// Floats returns an array of f32 (not copied) or f64 (converted) as float32s.
func (f *File) Floats(key string) ([]float32, error) {
	a, err := f.Array(key)
	if err != nil {
		return nil, err
	}
	switch v := a.Values.(type) {
	case []float32:
		return v, nil
	case []float64:
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, nil
	}
	kv, _ := f.KV(key)
	return nil, wrongType(kv, "array of floats")
}

// Tensor returns the info and raw data of the named tensor. The data is a
// slice of the file contents, not a copy.
func (f *File) Tensor(name string) (*TensorInfo, []byte, error) {
	i, ok := f.tIndex[name]
	if !ok {
		return nil, nil, fmt.Errorf("gguf: tensor %q: %w", name, ErrNotFound)
	}
	t := &f.Tensors[i]
	raw, err := f.TensorData(t)
	return t, raw, err
}

// TensorData returns the raw bytes of t (which must belong to f).
func (f *File) TensorData(t *TensorInfo) ([]byte, error) {
	if f.data == nil {
		return nil, fmt.Errorf("gguf: tensor %q: file is closed", t.Name)
	}
	start := f.DataOffset + t.Offset
	end := start + t.Size()
	if start > uint64(len(f.data)) || end > uint64(len(f.data)) || end < start {
		return nil, fmt.Errorf("gguf: tensor %q: data past end of file", t.Name)
	}
	return f.data[start:end:end], nil
}
