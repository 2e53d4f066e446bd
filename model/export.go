package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"taobox/model/gguf"
)

// GGUFExport chooses how ExportGGUF writes a model; the zero value writes a
// faithful F32 file.
type GGUFExport struct {
	// Type is the type of the 2-D tensors: F32, F16, Q8_0 or Q4_0. The 1-D
	// norm weights stay F32, as llama.cpp writes them.
	Type gguf.GGMLType

	// Tokenizer, when set, is written as the tokenizer.ggml.* keys; it must
	// have one token per vocabulary entry and pass NewTokenizer. When nil, a
	// placeholder vocabulary is written (token i is "<ti>"), marked with
	// tokenizer.taobox.placeholder so that TokenizerFromGGUF reports
	// ErrNoTokenizer; llama.cpp ignores the mark and loads the file as before.
	Tokenizer *TokenizerConfig

	// Name is general.name; "" writes "taobox-test".
	Name string

	// Fault injection for the loader's tests.
	arch     string // general.architecture; "" = "llama"
	skip     string // tensor name left out
	badShape string // tensor written with ne0 and ne1 swapped
	nTokens  int    // length of tokenizer.ggml.tokens; 0 = vocab size
	tied     bool   // omit output.weight
}

// ExportGGUF writes m as a llama.cpp-style GGUF v3 file: llama.cpp's tensor
// names and metadata keys, dims innermost first ([in, out] for an [out][in]
// matrix), and o.Tokenizer's vocabulary or a placeholder (token i is "<ti>").
// LoadGGUF reads it back to the same model (bit for bit for F32).
func ExportGGUF(m *Model, o GGUFExport) ([]byte, error) {
	c, w := m.Config, m.F32Weights()
	if o.Type == 0 && o.arch == "" {
		o.Type = gguf.TypeF32
	}
	if o.arch == "" {
		o.arch = "llama"
		if c.RopeNeox {
			o.arch = "qwen2" // the architecture whose RoPE pairs (i, i+head_size/2)
		}
	}
	if o.nTokens == 0 {
		o.nTokens = c.VocabSize
	}
	g := gguf.NewWriter()
	g.AddString("general.architecture", o.arch)
	if o.Name == "" {
		o.Name = "taobox-test"
	}
	g.AddString("general.name", o.Name)
	g.AddUint32(o.arch+".context_length", uint32(c.DeclaredSeqLen()))
	g.AddUint32(o.arch+".embedding_length", uint32(c.Dim))
	g.AddUint32(o.arch+".block_count", uint32(c.NLayers))
	g.AddUint32(o.arch+".feed_forward_length", uint32(c.HiddenDim))
	g.AddUint32(o.arch+".rope.dimension_count", uint32(c.HeadSize()))
	g.AddUint32(o.arch+".attention.head_count", uint32(c.NHeads))
	g.AddUint32(o.arch+".attention.head_count_kv", uint32(c.NKVHeads))
	g.AddFloat32(o.arch+".attention.layer_norm_rms_epsilon", c.rmsEps())
	g.AddFloat32(o.arch+".rope.freq_base", c.ropeBase())
	if o.Tokenizer != nil {
		if len(o.Tokenizer.Tokens) != o.nTokens {
			return nil, fmt.Errorf("model: export: the tokenizer has %d tokens but the model's vocabulary %d; give one token per embedding row", len(o.Tokenizer.Tokens), o.nTokens)
		}
		if _, err := NewTokenizer(*o.Tokenizer); err != nil {
			return nil, fmt.Errorf("model: export: %w", err)
		}
		if err := addTokenizerKVs(g, o.Tokenizer); err != nil {
			return nil, fmt.Errorf("model: export: %w", err)
		}
	} else {
		toks := make([]string, o.nTokens)
		scores := make([]float32, o.nTokens)
		types := make([]int32, o.nTokens)
		for i := range toks {
			toks[i] = fmt.Sprintf("<t%d>", i)
			types[i] = 1
		}
		g.AddString("tokenizer.ggml.model", "llama")
		g.AddArray("tokenizer.ggml.tokens", toks)
		g.AddArray("tokenizer.ggml.scores", scores)
		g.AddArray("tokenizer.ggml.token_type", types)
		g.AddBool(placeholderKey, true)
	}

	var failed error
	add := func(name string, data []float32, in, out int) {
		if failed != nil || name == o.skip {
			return
		}
		dims := []uint64{uint64(in)}
		typ := gguf.TypeF32
		if out > 0 {
			dims = append(dims, uint64(out))
			typ = o.Type
		}
		if name == o.badShape && out > 0 {
			dims[0], dims[1] = dims[1], dims[0]
			typ = gguf.TypeF32 // any row length is fine for F32
		}
		var raw []byte
		var err error
		switch typ {
		case gguf.TypeF32:
			raw = make([]byte, 4*len(data))
			for i, x := range data {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
			}
		case gguf.TypeF16:
			raw = make([]byte, 2*len(data))
			for i, x := range data {
				binary.LittleEndian.PutUint16(raw[2*i:], gguf.Float32ToHalf(x))
			}
		case gguf.TypeQ8_0:
			raw, err = gguf.QuantizeQ8_0(data)
		case gguf.TypeQ4_0:
			raw, err = gguf.QuantizeQ4_0(data)
		default:
			err = fmt.Errorf("model: cannot export tensors as %s (F32, F16, Q8_0 or Q4_0)", typ)
		}
		if err == nil {
			err = g.AddTensor(name, typ, dims, raw)
		}
		if err != nil {
			failed = fmt.Errorf("model: exporting %s: %w", name, err)
		}
	}
	d, hd, kv := c.Dim, c.HiddenDim, c.KVDim()
	add("token_embd.weight", w.TokenEmbedding, d, c.VocabSize)
	for l := 0; l < c.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", w.RMSAtt[l*d:(l+1)*d], d, 0)
		add(p+"attn_q.weight", w.WQ[l*d*d:(l+1)*d*d], d, d)
		add(p+"attn_k.weight", w.WK[l*kv*d:(l+1)*kv*d], d, kv)
		add(p+"attn_v.weight", w.WV[l*kv*d:(l+1)*kv*d], d, kv)
		if l < len(m.layers) && m.layers[l].bq != nil { // qwen2's attention biases
			L := &m.layers[l]
			add(p+"attn_q.bias", L.bq, d, 0)
			add(p+"attn_k.bias", L.bk, kv, 0)
			add(p+"attn_v.bias", L.bv, kv, 0)
		}
		add(p+"attn_output.weight", w.WO[l*d*d:(l+1)*d*d], d, d)
		add(p+"ffn_norm.weight", w.RMSFFN[l*d:(l+1)*d], d, 0)
		add(p+"ffn_gate.weight", w.W1[l*hd*d:(l+1)*hd*d], d, hd)
		add(p+"ffn_down.weight", w.W2[l*hd*d:(l+1)*hd*d], hd, d)
		add(p+"ffn_up.weight", w.W3[l*hd*d:(l+1)*hd*d], d, hd)
	}
	add("output_norm.weight", w.RMSFinal, d, 0)
	if !o.tied && !c.SharedClassifier {
		add("output.weight", w.WCls, d, c.VocabSize)
	}
	if failed != nil {
		return nil, failed
	}
	return g.Bytes()
}
