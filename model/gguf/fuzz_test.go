package gguf

import (
	"bytes"
	"testing"
)

// rewrite re-encodes a parsed file with the Writer.
func rewrite(t *testing.T, g *File) []byte {
	w := NewWriter()
	for _, kv := range g.Metadata {
		if err := w.AddKV(kv.Key, kv.Type, kv.Value); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
	}
	for i := range g.Tensors {
		ti := &g.Tensors[i]
		raw, err := g.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, raw); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	return b
}

func FuzzParse(f *testing.F) {
	w := NewWriter()
	allMetadata(f, w)
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i) - 20
	}
	q8, _ := QuantizeQ8_0(src)
	q4, _ := QuantizeQ4_0(src)
	w.AddTensor("q8", TypeQ8_0, []uint64{32, 2}, q8)
	w.AddTensor("q4", TypeQ4_0, []uint64{64}, q4)
	w.AddTensor("f16", TypeF16, []uint64{2, 2}, make([]byte, 8))
	w.AddTensor("bf16", TypeBF16, []uint64{3}, make([]byte, 6))
	w.AddTensor("f32", TypeF32, []uint64{1, 1, 1, 2}, make([]byte, 8))
	data, err := w.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(hdr(2, 0, 1).kv("tokenizer.ggml.model", TypeString, "llama").Bytes())
	f.Add(hdr(3, 2, 0).tensor("b", []uint64{8}, TypeF32, 32).tensor("a", []uint64{8}, TypeF32, 0).pad(32).zeros(64).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			if g != nil {
				t.Fatal("file and error")
			}
			return
		}
		for _, kv := range g.Metadata {
			k := kv.Key
			g.String(k)
			g.Uint(k)
			g.Int(k)
			g.Float(k)
			g.Bool(k)
			g.Array(k)
			g.Strings(k)
			g.Ints(k)
			g.Floats(k)
			if a, ok := kv.Value.(Array); ok {
				a.Len()
			}
		}
		for i := range g.Tensors {
			info, raw, err := g.Tensor(g.Tensors[i].Name)
			if err != nil {
				t.Fatalf("tensor %q: %v", g.Tensors[i].Name, err)
			}
			if info.Elements() > MaxElements || uint64(len(raw)) != info.Size() || info.Offset%g.Alignment != 0 {
				t.Fatalf("tensor %q: bad slice", info.Name)
			}
			if n := info.Elements(); n <= 1<<16 {
				dst := make([]float32, n)
				if err := ToFloat32(info.Type, raw, int(n), dst); err != nil {
					t.Fatalf("tensor %q: %v", info.Name, err)
				}
			}
		}
		g.Tensor("missing")
		// Writer and reader agree: parse(write(parse(x))) re-encodes identically.
		b1 := rewrite(t, g)
		g2, err := Parse(b1)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if b2 := rewrite(t, g2); !bytes.Equal(b1, b2) {
			t.Fatal("re-encoding differs")
		}
		g.Close()
	})
}
