package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"taobox/model/gguf"
)

// GGUF LLaMA loading.
//
// Layout. GGUF lists a tensor's dims innermost first (ne[0] is the row
// length), so a row-major [out][in] matrix has dims [in, out]. With that
// reading, every llama.cpp "llama" tensor is laid out exactly as llama2.c's
// run.c expects it: each output is one row's inner product.
//
// RoPE. llama.cpp runs the "llama" architecture with LLAMA_ROPE_TYPE_NORM.
// Its kernel (ggml rope_norm, e.g. ggml-cuda/rope.cu, and the CPU twin)
// rotates the consecutive pair (x[i0], x[i0+1]) of each head by
// theta = pos * freq_base^(-i0/n_dims), n_dims = rope.dimension_count = the
// head size: the same pairs and angles as run.c (freq = 1/10000^((i%hs)/hs)).
// The NEOX mode (qwen2, phi3, gemma, ...) instead pairs (i, i+n_dims/2).
// The "norm" pairing only matches the weights because the q/k rows are in
// Meta's interleaved layout: convert_hf_to_gguf.py permutes HF's
// half-split q/k weights back into it (LlamaModel.permute), and llama2.c
// checkpoints are already in it. So a "llama" GGUF runs through Forward
// unchanged; NEOX architectures (here qwen2) set Config.RopeNeox.
//
// Hyper-parameters. The RMSNorm epsilon (<arch>.attention.
// layer_norm_rms_epsilon) and the RoPE base (<arch>.rope.freq_base, default
// 10000) go into Config. The RoPE pairing follows the architecture, as
// llama.cpp's llama_model_rope_type: "llama" is LLAMA_ROPE_TYPE_NORM
// (consecutive pairs, above), "qwen2" LLAMA_ROPE_TYPE_NEOX (pairs
// (i, i+head_size/2)). Optional attention biases (blk.N.attn_{q,k,v}.bias,
// which qwen2 files have and llama.cpp also accepts for llama) are added
// after the q, k and v products. Rope scaling, partial-head RoPE and
// mixtures of experts are refused with an error naming the key.
//
// Weights stay in the file's type (F32, F16, Q8_0 and Q4_0 matrices alias
// the file's bytes, see quant.go); BF16 matrices are dequantized to F32 at
// load. The 1-D norm weights and biases are copied as F32.

const (
	ggufArch   = "general.architecture"
	ggufTokens = "tokenizer.ggml.tokens"
	maxGGUFDim = 1 << 24 // sanity bound on every size read from metadata
)

// ggufArchs are the architectures the forward pass runs, with their RoPE
// pairing (true: NEOX).
var ggufArchs = map[string]bool{"llama": false, "qwen2": true}

// LoadGGUF maps a GGUF file into memory and loads a LLaMA model from it.
// The model's weights live in the mapping, which stays open until
// Model.Close (or until the model is garbage collected).
func LoadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := ModelFromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.file = f
	m.fileCleanup = runtime.AddCleanup(m, func(f *gguf.File) { f.Close() }, f)
	return m, nil
}

// MaxContext caps a GGUF model's context. The engines allocate the KV
// cache and attention scratch for the whole context (a 1B Llama 3 file
// says 131,072 positions: 8.6 GB of float32 KV cache on the CPU and again
// on the GPU), and no task can use more than the task protocol's longest
// prompt and answer (task.MaxPromptTokens + task.MaxGenTokens, 8,192;
// TestGGUFContextCapped checks they agree), so capping changes no task's
// answer or verdict. A file with a shorter context keeps it.
const MaxContext = 8192

// GGUFConfig reads and validates the LLaMA hyper-parameters of f (without
// touching tensor data). SharedClassifier is set when output.weight is absent.
func GGUFConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String(ggufArch)
	if err != nil {
		return c, fmt.Errorf("gguf: %s: %w", ggufArch, err)
	}
	neox, ok := ggufArchs[arch]
	if !ok {
		return c, fmt.Errorf("gguf: unsupported architecture %q (key %s); supported: \"llama\", \"qwen2\"", arch, ggufArch)
	}
	c.RopeNeox = neox
	p := arch + "."
	size := func(key string, dflt int) (int, error) {
		if dflt > 0 && !f.Has(key) {
			return dflt, nil
		}
		v, err := f.Uint(key)
		if err != nil {
			return 0, fmt.Errorf("gguf: %s: %w", key, err)
		}
		if v == 0 || v > maxGGUFDim {
			return 0, fmt.Errorf("gguf: %s = %d, want 1..%d", key, v, maxGGUFDim)
		}
		return int(v), nil
	}
	if c.Dim, err = size(p+"embedding_length", 0); err != nil {
		return c, err
	}
	if c.HiddenDim, err = size(p+"feed_forward_length", 0); err != nil {
		return c, err
	}
	if c.NLayers, err = size(p+"block_count", 0); err != nil {
		return c, err
	}
	if c.NHeads, err = size(p+"attention.head_count", 0); err != nil {
		return c, err
	}
	if c.NKVHeads, err = size(p+"attention.head_count_kv", c.NHeads); err != nil {
		return c, err
	}
	if c.SeqLen, err = size(p+"context_length", 0); err != nil {
		return c, err
	}
	if c.SeqLen > MaxContext {
		c.SeqLen, c.FileSeqLen = MaxContext, c.SeqLen
	}
	if c.Dim%c.NHeads != 0 {
		return c, fmt.Errorf("gguf: llama.embedding_length %d is not a multiple of llama.attention.head_count %d", c.Dim, c.NHeads)
	}
	if c.NKVHeads > c.NHeads || c.NHeads%c.NKVHeads != 0 {
		return c, fmt.Errorf("gguf: llama.attention.head_count %d is not a multiple of llama.attention.head_count_kv %d", c.NHeads, c.NKVHeads)
	}
	if c.HeadSize()%2 != 0 {
		return c, fmt.Errorf("gguf: head size %d (llama.embedding_length %d / llama.attention.head_count %d) is odd; RoPE needs pairs", c.HeadSize(), c.Dim, c.NHeads)
	}
	if n, ok := f.KV(p + "expert_count"); ok {
		if e, err := f.Uint(n.Key); err != nil || e > 0 {
			return c, fmt.Errorf("gguf: %s is set (mixture of experts): not supported", n.Key)
		}
	}

	epsKey := p + "attention.layer_norm_rms_epsilon"
	eps, err := f.Float(epsKey)
	if err != nil {
		return c, fmt.Errorf("gguf: %s: %w", epsKey, err)
	}
	if !(eps > 0 && eps < 1) {
		return c, fmt.Errorf("gguf: %s = %g, want a value in (0, 1)", epsKey, eps)
	}
	if c.RMSEps = float32(eps); c.RMSEps == 1e-5 {
		c.RMSEps = 0 // the default (see Config)
	}
	baseKey := p + "rope.freq_base"
	if f.Has(baseKey) {
		base, err := f.Float(baseKey)
		if err != nil {
			return c, fmt.Errorf("gguf: %s: %w", baseKey, err)
		}
		if !(base > 1 && base < 1e12) {
			return c, fmt.Errorf("gguf: %s = %g, want a value in (1, 1e12)", baseKey, base)
		}
		if c.RopeBase = float32(base); c.RopeBase == 10000 {
			c.RopeBase = 0
		}
	}
	rotKey := p + "rope.dimension_count"
	if f.Has(rotKey) {
		n, err := f.Uint(rotKey)
		if err != nil {
			return c, fmt.Errorf("gguf: %s: %w", rotKey, err)
		}
		if n != uint64(c.HeadSize()) {
			return c, fmt.Errorf("gguf: %s = %d: only full-head RoPE (%d) is supported", rotKey, n, c.HeadSize())
		}
	}
	for _, key := range []string{p + "rope.scaling.type", p + "rope.scaling.factor"} {
		if !f.Has(key) {
			continue
		}
		if s, err := f.String(key); err == nil && (s == "none" || s == "") {
			continue
		}
		if v, err := f.Float(key); err == nil && (v == 0 || v == 1) {
			continue
		}
		kv, _ := f.KV(key)
		return c, fmt.Errorf("gguf: %s = %v: rope scaling is not supported", key, kv.Value)
	}

	// Vocabulary: the tokenizer and the embedding table must agree.
	emb, ok := tensorInfo(f, "token_embd.weight")
	if !ok {
		return c, fmt.Errorf("gguf: required tensor %q is missing (%w)", "token_embd.weight", gguf.ErrNotFound)
	}
	if len(emb.Dims) != 2 || emb.Dims[0] != uint64(c.Dim) || emb.Dims[1] == 0 || emb.Dims[1] > maxGGUFDim {
		return c, fmt.Errorf("gguf: tensor %q has shape %v, want [%d n_vocab] (ne0 first)", emb.Name, emb.Dims, c.Dim)
	}
	c.VocabSize = int(emb.Dims[1])
	if f.Has(ggufTokens) {
		a, err := f.Array(ggufTokens)
		if err != nil {
			return c, fmt.Errorf("gguf: %s: %w", ggufTokens, err)
		}
		if a.Len() != c.VocabSize {
			return c, fmt.Errorf("gguf: vocabulary mismatch: %s has %d entries but token_embd.weight has %d rows", ggufTokens, a.Len(), c.VocabSize)
		}
	}
	if f.Has(p + "vocab_size") {
		v, err := f.Uint(p + "vocab_size")
		if err != nil || v != uint64(c.VocabSize) {
			return c, fmt.Errorf("gguf: vocabulary mismatch: %svocab_size (%v) differs from token_embd.weight's %d rows", p, v, c.VocabSize)
		}
	}
	_, hasOut := tensorInfo(f, "output.weight")
	c.SharedClassifier = !hasOut
	return c, nil
}

func tensorInfo(f *gguf.File, name string) (*gguf.TensorInfo, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// ModelFromGGUF builds a model from a parsed GGUF file (architectures
// "llama" and "qwen2"). Its F32, F16, Q8_0 and Q4_0 matrices alias f's
// data, so f must stay open while the model is used (LoadGGUF takes care
// of that; a File from gguf.Parse needs nothing closed).
func ModelFromGGUF(f *gguf.File) (*Model, error) {
	c, err := GGUFConfig(f)
	if err != nil {
		return nil, err
	}
	d, hd, nl, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	emb, err := loadMatrix(f, "token_embd.weight", d, v)
	if err != nil {
		return nil, err
	}
	vec := func(name string, n int) ([]float32, error) {
		dst := make([]float32, n)
		return dst, loadTensor(f, name, dst, n, 0)
	}
	layers := make([]layer, nl)
	for l := range layers {
		L := &layers[l]
		p := fmt.Sprintf("blk.%d.", l)
		if L.rmsAtt, err = vec(p+"attn_norm.weight", d); err != nil {
			return nil, err
		}
		if L.rmsFFN, err = vec(p+"ffn_norm.weight", d); err != nil {
			return nil, err
		}
		for _, t := range []struct {
			name    string
			dst     *matrix
			in, out int
		}{
			{"attn_q", &L.wq, d, d},
			{"attn_k", &L.wk, d, kv},
			{"attn_v", &L.wv, d, kv},
			{"attn_output", &L.wo, d, d},
			{"ffn_gate", &L.w1, d, hd},
			{"ffn_down", &L.w2, hd, d},
			{"ffn_up", &L.w3, d, hd},
		} {
			if *t.dst, err = loadMatrix(f, p+t.name+".weight", t.in, t.out); err != nil {
				return nil, err
			}
		}
		// Attention biases: all three or none.
		if _, ok := tensorInfo(f, p+"attn_q.bias"); ok {
			if L.bq, err = vec(p+"attn_q.bias", d); err != nil {
				return nil, err
			}
			if L.bk, err = vec(p+"attn_k.bias", kv); err != nil {
				return nil, err
			}
			if L.bv, err = vec(p+"attn_v.bias", kv); err != nil {
				return nil, err
			}
		} else if _, ok := tensorInfo(f, p+"attn_k.bias"); ok {
			return nil, fmt.Errorf("gguf: tensor %q without %q: the attention biases come as q, k and v together", p+"attn_k.bias", p+"attn_q.bias")
		}
	}
	rmsFinal, err := vec("output_norm.weight", d)
	if err != nil {
		return nil, err
	}
	cls := emb
	if !c.SharedClassifier {
		if cls, err = loadMatrix(f, "output.weight", d, v); err != nil {
			return nil, err
		}
	}
	return newModel(c, layers, emb, cls, rmsFinal), nil
}

// tensorShape returns the named tensor after checking that its shape is
// [in] (out == 0) or [in, out], innermost first.
func tensorShape(f *gguf.File, name string, in, out int) (*gguf.TensorInfo, []byte, error) {
	want := []uint64{uint64(in)}
	if out > 0 {
		want = append(want, uint64(out))
	}
	info, raw, err := f.Tensor(name)
	if err != nil {
		if errors.Is(err, gguf.ErrNotFound) {
			return nil, nil, fmt.Errorf("gguf: required tensor %q is missing (%w)", name, gguf.ErrNotFound)
		}
		return nil, nil, err
	}
	dims := info.Dims
	for len(dims) > len(want) && dims[len(dims)-1] == 1 { // tolerate trailing 1s
		dims = dims[:len(dims)-1]
	}
	same := len(dims) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = dims[i] == want[i]
	}
	if !same {
		return nil, nil, fmt.Errorf("gguf: tensor %q has shape %v, want %v (ne0 = row length first)", name, info.Dims, want)
	}
	return info, raw, nil
}

// loadMatrix returns the named [in, out] tensor as an out×in matrix in its
// file type, aliasing the file's bytes (BF16 is dequantized to F32). Every
// value (F32, F16) or block scale (Q8_0, Q4_0) must be finite.
func loadMatrix(f *gguf.File, name string, in, out int) (matrix, error) {
	info, raw, err := tensorShape(f, name, in, out)
	if err != nil {
		return matrix{}, err
	}
	switch info.Type {
	case gguf.TypeBF16:
		dst := make([]float32, in*out)
		if err := loadTensor(f, name, dst, in, out); err != nil {
			return matrix{}, err
		}
		return f32Matrix(dst, out, in), nil
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0:
	default:
		return matrix{}, fmt.Errorf("gguf: tensor %q has type %s; supported: F32, F16, BF16, Q8_0, Q4_0", name, info.Type)
	}
	m, err := newMatrix(info.Type, raw, out, in)
	if err != nil {
		return matrix{}, fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	bad := -1
	switch m.typ {
	case gguf.TypeF32:
		for i, x := range m.f32 {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				bad = i
				break
			}
		}
	case gguf.TypeF16:
		for i := 0; i < len(m.raw); i += 2 {
			if m.raw[i+1]&0x7c == 0x7c { // exponent all ones: Inf or NaN
				bad = i / 2
				break
			}
		}
	default: // the f16 scale opens each block
		bs := 34
		if m.typ == gguf.TypeQ4_0 {
			bs = 18
		}
		for i := 0; i < len(m.raw); i += bs {
			if m.raw[i+1]&0x7c == 0x7c {
				bad = i / bs * 32
				break
			}
		}
	}
	if bad >= 0 {
		return matrix{}, fmt.Errorf("gguf: tensor %q: element %d (or its block scale) is not finite", name, bad)
	}
	return m, nil
}

// loadTensor dequantizes the named tensor into dst after checking that its
// shape is [in] (out == 0) or [in, out], innermost first.
func loadTensor(f *gguf.File, name string, dst []float32, in, out int) error {
	info, raw, err := tensorShape(f, name, in, out)
	if err != nil {
		return err
	}
	if !info.Type.Supported() {
		return fmt.Errorf("gguf: tensor %q has type %s; supported: F32, F16, BF16, Q8_0, Q4_0", name, info.Type)
	}
	if err := gguf.ToFloat32(info.Type, raw, len(dst), dst); err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	for i, x := range dst {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("gguf: tensor %q: element %d is %v", name, i, x)
		}
	}
	return nil
}
