package gguf

import (
	"encoding/binary"
	"strings"
	"testing"
)

var le = binary.LittleEndian

// raw is a hand-built GGUF file for malformed-input tests.
type raw struct{ lew }

func (r *raw) kv(key string, vt ValueType, v any) *raw {
	r.str(key)
	r.u32(uint32(vt))
	r.value(v)
	return r
}

func (r *raw) tensor(name string, dims []uint64, t GGMLType, off uint64) *raw {
	r.str(name)
	r.u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	r.u32(uint32(t))
	r.u64(off)
	return r
}

func (r *raw) pad(a int) *raw {
	for r.Len()%a != 0 {
		r.WriteByte(0)
	}
	return r
}

func (r *raw) zeros(n int) *raw { r.Write(make([]byte, n)); return r }

func hdr(version uint32, nt, nkv uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	r.u32(version)
	r.u64(nt)
	r.u64(nkv)
	return r
}

func TestValidation(t *testing.T) {
	f32x8 := []uint64{8}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated file: magic"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), `bad magic "GGML"`},
		{"version 1", hdr(1, 0, 0).Bytes(), "unsupported version 1"},
		{"version 4", hdr(4, 0, 0).Bytes(), "unsupported version 4"},
		{"truncated counts", []byte("GGUF\x03\x00\x00\x00\x00"), "truncated file: tensor count"},
		{"too many tensors", hdr(3, 1<<20+1, 0).Bytes(), "tensor count 1048577 exceeds limit"},
		{"too many kvs", hdr(3, 0, 1<<20+1).Bytes(), "metadata count 1048577 exceeds limit"},
		{"kv count vs size", hdr(3, 0, 1000).Bytes(), "1000 metadata pairs cannot fit"},
		{"tensor count vs size", hdr(3, 1000, 0).Bytes(), "1000 tensor infos cannot fit"},
		{"tensor infos vs size", hdr(3, 2, 0).tensor("w", f32x8, TypeF32, 0).Bytes(), "2 tensor infos cannot fit in 33 bytes"},
		{"key too long", func() []byte { r := hdr(3, 0, 1); r.u64(1<<20 + 1); r.zeros(16); return r.Bytes() }(), "metadata key #0: string length 1048577 exceeds limit"},
		{"truncated key", func() []byte { r := hdr(3, 0, 1); r.u64(100); r.zeros(16); return r.Bytes() }(), "truncated file: metadata key #0 needs 100 bytes"},
		{"unknown value type", hdr(3, 0, 1).kv("k", 13, uint8(0)).Bytes(), `key "k": unknown value type 13`},
		{"truncated value", func() []byte { r := hdr(3, 0, 1); r.str("k"); r.u32(uint32(TypeUint64)); r.u32(0); return r.Bytes() }(), "truncated file: key k needs 8 bytes"},
		{"bad bool", hdr(3, 0, 1).kv("flag", TypeBool, uint8(2)).Bytes(), `key "flag": bool value 2`},
		{"string value too long", func() []byte {
			r := hdr(3, 0, 1)
			r.str("name")
			r.u32(uint32(TypeString))
			r.u64(1 << 21)
			return r.Bytes()
		}(), "key name: string length 2097152 exceeds limit"},
		{"array too long", func() []byte {
			r := hdr(3, 0, 1)
			r.str("toks")
			r.u32(uint32(TypeArray))
			r.u32(uint32(TypeUint8))
			r.u64(1<<28 + 1)
			return r.Bytes()
		}(), `key "toks": array length 268435457 exceeds limit`},
		{"array past end", func() []byte {
			r := hdr(3, 0, 1)
			r.str("toks")
			r.u32(uint32(TypeArray))
			r.u32(uint32(TypeString))
			r.u64(1000)
			return r.Bytes()
		}(), `key "toks": array of 1000 string needs at least 8000 bytes`},
		{"array bad elem type", func() []byte {
			r := hdr(3, 0, 1)
			r.str("toks")
			r.u32(uint32(TypeArray))
			r.u32(77)
			r.u64(1)
			r.zeros(8)
			return r.Bytes()
		}(), `key "toks": unknown array element type 77`},
		{"array too deep", func() []byte {
			r := hdr(3, 0, 1)
			r.str("deep")
			r.u32(uint32(TypeArray))
			for i := 0; i < 10; i++ {
				r.u32(uint32(TypeArray))
				r.u64(1)
			}
			r.zeros(100)
			return r.Bytes()
		}(), `key "deep": arrays nested deeper than 8`},
		{"duplicate key", hdr(3, 0, 2).kv("k", TypeUint8, uint8(1)).kv("k", TypeUint8, uint8(1)).Bytes(), `key "k": duplicate`},
		{"alignment type", hdr(3, 0, 1).kv("general.alignment", TypeUint64, uint64(32)).Bytes(), `key "general.alignment": type u64, want u32`},
		{"alignment not pow2", hdr(3, 0, 1).kv("general.alignment", TypeUint32, uint32(48)).Bytes(), `key "general.alignment": alignment 48 is not a power of two`},
		{"alignment zero", hdr(3, 0, 1).kv("general.alignment", TypeUint32, uint32(0)).Bytes(), `alignment 0 is not a power of two`},
		{"n_dims zero", hdr(3, 1, 0).tensor("w", nil, TypeF32, 0).zeros(64).Bytes(), `tensor "w": n_dims 0 out of range 1..4`},
		{"n_dims five", hdr(3, 1, 0).tensor("w", []uint64{1, 1, 1, 1, 1}, TypeF32, 0).zeros(64).Bytes(), `tensor "w": n_dims 5 out of range`},
		{"zero dim", hdr(3, 1, 0).tensor("w", []uint64{8, 0}, TypeF32, 0).zeros(64).Bytes(), `tensor "w": dimension 1 is zero`},
		{"dims overflow", hdr(3, 1, 0).tensor("w", []uint64{1 << 40, 1 << 40}, TypeF32, 0).zeros(64).Bytes(), `tensor "w": element count exceeds 72057594037927936`},
		{"size overflow", hdr(3, 1, 0).tensor("w", []uint64{1 << 62}, TypeF32, 0).zeros(64).Bytes(), `tensor "w": element count exceeds`},
		{"unsupported type", hdr(3, 1, 0).tensor("blk.0.attn_q.weight", []uint64{256}, TypeQ4_K, 0).zeros(64).Bytes(), `tensor "blk.0.attn_q.weight": unsupported tensor type Q4_K`},
		{"unknown type", hdr(3, 1, 0).tensor("w", f32x8, 99, 0).zeros(64).Bytes(), `tensor "w": unsupported tensor type type(99)`},
		{"block multiple", hdr(3, 1, 0).tensor("w", []uint64{48, 2}, TypeQ8_0, 0).zeros(256).Bytes(), `tensor "w": row length 48 (dims[0]) is not a multiple of the Q8_0 block size 32`},
		{"unaligned offset", hdr(3, 1, 0).tensor("w", f32x8, TypeF32, 4).zeros(64).Bytes(), `tensor "w": offset 4 is not a multiple of the alignment 32`},
		{"duplicate tensor", hdr(3, 2, 0).tensor("w", f32x8, TypeF32, 0).tensor("w", f32x8, TypeF32, 32).zeros(64).Bytes(), `tensor "w": duplicate name`},
		{"truncated tensor info", func() []byte {
			r := hdr(3, 1, 0)
			r.str("w")
			r.u32(4)
			r.u64(8)
			r.u64(1)
			r.u64(1)
			return r.Bytes()
		}(), `truncated file: tensor "w" dims`},
		{"data section missing", hdr(3, 1, 0).tensor("w", f32x8, TypeF32, 0).Bytes(), "truncated file: data section starts at"},
		{"data past eof", hdr(3, 1, 0).tensor("w", f32x8, TypeF32, 0).pad(32).zeros(31).Bytes(), `tensor "w": data [0, 32) extends past end of file (data section has 31 bytes)`},
		{"offset past eof", hdr(3, 1, 0).tensor("w", f32x8, TypeF32, 1<<62).pad(32).zeros(64).Bytes(), `tensor "w": data [4611686018427387904, `},
		{"overlap", hdr(3, 2, 0).tensor("a", []uint64{16}, TypeF32, 0).tensor("b", f32x8, TypeF32, 32).pad(32).zeros(128).Bytes(), `tensor "b": data at offset 32 overlaps tensor "a" [0, 64)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("parsed: %+v", f)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestValidMinimal(t *testing.T) {
	// Vocab-only file: no tensors, no padding after the KVs.
	f, err := Parse(hdr(2, 0, 1).kv("tokenizer.ggml.model", TypeString, "llama").Bytes())
	if err != nil || f.Version != 2 || len(f.Tensors) != 0 {
		t.Fatal(f, err)
	}
	// Tensors listed out of offset order, touching but not overlapping.
	f, err = Parse(hdr(3, 2, 0).tensor("b", []uint64{8}, TypeF32, 32).tensor("a", []uint64{8}, TypeF32, 0).pad(32).zeros(64).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, raw, err := f.Tensor("b"); err != nil || len(raw) != 32 {
		t.Fatal(err)
	}
}
