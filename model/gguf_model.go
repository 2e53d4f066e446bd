package model

import (
	"errors"
	"fmt"
	"math"

	"taobox/model/gguf"
)

// GGUF LLaMA loading.
//
// Layout. GGUF lists a tensor's dims innermost first (ne[0] is the row
// length), so a row-major [out][in] matrix has dims [in, out]. With that
// reading, every llama.cpp "llama" tensor is laid out exactly as llama2.c's
// run.c expects it, and dequantizing row by row gives the Weights slices
// directly.
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
// unchanged; NEOX architectures will need a rotation mode in the forward pass.
//
// Hyper-parameters the forward pass hard-codes (as run.c does): RMSNorm
// epsilon 1e-5 and RoPE base 10000 over the whole head, no rope scaling.
// Files that ask for anything else are refused with an error naming the key;
// supporting them needs Config fields (RMSEps, RopeTheta) used by rmsnorm and
// ropeFreq in llama.go.
//
// Weights are dequantized to F32 (F32, F16, BF16, Q8_0, Q4_0 accepted); a
// later step keeps them quantized in memory.

const (
	ggufArch      = "general.architecture"
	ggufTokens    = "tokenizer.ggml.tokens"
	forwardRMSEps = 1e-5
	forwardRopeHz = 10000
	maxGGUFDim    = 1 << 24 // sanity bound on every size read from metadata
)

// LoadGGUF opens a GGUF file and loads a LLaMA model from it. The weights
// are copied (dequantized), so the file is closed before returning.
func LoadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ModelFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// GGUFConfig reads and validates the LLaMA hyper-parameters of f (without
// touching tensor data). SharedClassifier is set when output.weight is absent.
func GGUFConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String(ggufArch)
	if err != nil {
		return c, fmt.Errorf("gguf: %s: %w", ggufArch, err)
	}
	if arch != "llama" {
		return c, fmt.Errorf("gguf: unsupported architecture %q (key %s); only \"llama\" is supported", arch, ggufArch)
	}
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
	if c.Dim, err = size("llama.embedding_length", 0); err != nil {
		return c, err
	}
	if c.HiddenDim, err = size("llama.feed_forward_length", 0); err != nil {
		return c, err
	}
	if c.NLayers, err = size("llama.block_count", 0); err != nil {
		return c, err
	}
	if c.NHeads, err = size("llama.attention.head_count", 0); err != nil {
		return c, err
	}
	if c.NKVHeads, err = size("llama.attention.head_count_kv", c.NHeads); err != nil {
		return c, err
	}
	if c.SeqLen, err = size("llama.context_length", 0); err != nil {
		return c, err
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
	if n, ok := f.KV("llama.expert_count"); ok {
		if e, err := f.Uint(n.Key); err != nil || e > 0 {
			return c, fmt.Errorf("gguf: llama.expert_count is set (mixture of experts): not supported")
		}
	}

	// Constants of the forward pass: refuse what it cannot honour.
	const epsKey = "llama.attention.layer_norm_rms_epsilon"
	eps, err := f.Float(epsKey)
	if err != nil {
		return c, fmt.Errorf("gguf: %s: %w", epsKey, err)
	}
	if float32(eps) != forwardRMSEps {
		return c, fmt.Errorf("gguf: %s = %g: only %g is supported by the forward pass for now", epsKey, eps, forwardRMSEps)
	}
	const baseKey = "llama.rope.freq_base"
	if f.Has(baseKey) {
		base, err := f.Float(baseKey)
		if err != nil {
			return c, fmt.Errorf("gguf: %s: %w", baseKey, err)
		}
		if float32(base) != forwardRopeHz {
			return c, fmt.Errorf("gguf: %s = %g: only %d is supported by the forward pass for now", baseKey, base, forwardRopeHz)
		}
	}
	const rotKey = "llama.rope.dimension_count"
	if f.Has(rotKey) {
		n, err := f.Uint(rotKey)
		if err != nil {
			return c, fmt.Errorf("gguf: %s: %w", rotKey, err)
		}
		if n != uint64(c.HeadSize()) {
			return c, fmt.Errorf("gguf: %s = %d: only full-head RoPE (%d) is supported", rotKey, n, c.HeadSize())
		}
	}
	for _, key := range []string{"llama.rope.scaling.type", "llama.rope.scaling.factor"} {
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
	if f.Has("llama.vocab_size") {
		v, err := f.Uint("llama.vocab_size")
		if err != nil || v != uint64(c.VocabSize) {
			return c, fmt.Errorf("gguf: vocabulary mismatch: llama.vocab_size (%v) differs from token_embd.weight's %d rows", v, c.VocabSize)
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

// ModelFromGGUF builds an F32 model from a parsed GGUF file (architecture
// "llama"). The weights are dequantized copies; f may be closed afterwards.
func ModelFromGGUF(f *gguf.File) (*Model, error) {
	c, err := GGUFConfig(f)
	if err != nil {
		return nil, err
	}
	d, hd, nl, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	var w Weights
	w.TokenEmbedding = make([]float32, v*d)
	w.RMSAtt = make([]float32, nl*d)
	w.WQ = make([]float32, nl*d*d)
	w.WK = make([]float32, nl*kv*d)
	w.WV = make([]float32, nl*kv*d)
	w.WO = make([]float32, nl*d*d)
	w.RMSFFN = make([]float32, nl*d)
	w.W1 = make([]float32, nl*hd*d)
	w.W2 = make([]float32, nl*d*hd)
	w.W3 = make([]float32, nl*hd*d)
	w.RMSFinal = make([]float32, d)

	if err := loadTensor(f, "token_embd.weight", w.TokenEmbedding, d, v); err != nil {
		return nil, err
	}
	for l := 0; l < nl; l++ {
		layer := []struct {
			name    string
			dst     []float32
			in, out int // dims [in, out]; out = 0 for a vector
		}{
			{"attn_norm", w.RMSAtt, d, 0},
			{"attn_q", w.WQ, d, d},
			{"attn_k", w.WK, d, kv},
			{"attn_v", w.WV, d, kv},
			{"attn_output", w.WO, d, d},
			{"ffn_norm", w.RMSFFN, d, 0},
			{"ffn_gate", w.W1, d, hd},
			{"ffn_down", w.W2, hd, d},
			{"ffn_up", w.W3, d, hd},
		}
		for _, t := range layer {
			n := t.in * max(t.out, 1)
			name := fmt.Sprintf("blk.%d.%s.weight", l, t.name)
			if err := loadTensor(f, name, t.dst[l*n:(l+1)*n], t.in, t.out); err != nil {
				return nil, err
			}
		}
	}
	if err := loadTensor(f, "output_norm.weight", w.RMSFinal, d, 0); err != nil {
		return nil, err
	}
	if c.SharedClassifier {
		w.WCls = w.TokenEmbedding
	} else {
		w.WCls = make([]float32, v*d)
		if err := loadTensor(f, "output.weight", w.WCls, d, v); err != nil {
			return nil, err
		}
	}
	return NewModel(c, w)
}

// loadTensor dequantizes the named tensor into dst after checking that its
// shape is [in] (out == 0) or [in, out], innermost first.
func loadTensor(f *gguf.File, name string, dst []float32, in, out int) error {
	want := []uint64{uint64(in)}
	if out > 0 {
		want = append(want, uint64(out))
	}
	info, raw, err := f.Tensor(name)
	if err != nil {
		if errors.Is(err, gguf.ErrNotFound) {
			return fmt.Errorf("gguf: required tensor %q is missing (%w)", name, gguf.ErrNotFound)
		}
		return err
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
		return fmt.Errorf("gguf: tensor %q has shape %v, want %v (ne0 = row length first)", name, info.Dims, want)
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
