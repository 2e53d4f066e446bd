// Package model holds the CPU inference engine: checkpoint loading, the
// LLaMA forward pass, greedy generation and log-probs.
package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// Config holds a LLaMA model's hyper-parameters.
type Config struct {
	Dim       int // embedding width
	HiddenDim int // feed-forward width
	NLayers   int
	NHeads    int // query heads
	NKVHeads  int // key/value heads (grouped-query attention when < NHeads)
	VocabSize int
	SeqLen    int // maximum context length (size of the KV cache)
	// FileSeqLen is the context length the file declares when the loader
	// capped SeqLen to MaxContext; 0 when SeqLen is the file's own. Export
	// and `model info` report the file's.
	FileSeqLen int
	// SharedClassifier is true when the output classifier is the token
	// embedding table (tied weights).
	SharedClassifier bool

	// RMSEps is the RMSNorm epsilon; 0 means 1e-5 (run.c's constant).
	// Loaders store 0 for 1e-5, so that Configs compare equal across file
	// formats.
	RMSEps float32
	// RopeBase is the RoPE frequency base θ; 0 means 10000 (run.c's), and
	// loaders store 0 for 10000 likewise.
	RopeBase float32
	// RopeNeox selects the NEOX RoPE pairing, (i, i+head_size/2) within
	// each head, used by e.g. qwen2; false is run.c's and llama's pairing
	// of consecutive values (i, i+1).
	RopeNeox bool
}

// DeclaredSeqLen is the context length the model file declares: SeqLen,
// or FileSeqLen when the loader capped it.
func (c Config) DeclaredSeqLen() int {
	if c.FileSeqLen > 0 {
		return c.FileSeqLen
	}
	return c.SeqLen
}

func (c Config) rmsEps() float32 {
	if c.RMSEps == 0 {
		return 1e-5
	}
	return c.RMSEps
}

func (c Config) ropeBase() float32 {
	if c.RopeBase == 0 {
		return 10000
	}
	return c.RopeBase
}

// HeadSize is Dim / NHeads.
func (c Config) HeadSize() int { return c.Dim / c.NHeads }

// KVDim is the width of one position's keys (or values): Dim*NKVHeads/NHeads.
func (c Config) KVDim() int { return c.Dim * c.NKVHeads / c.NHeads }

// Weights holds F32 weights, every matrix row-major [out][in], per-layer
// tensors concatenated over layers, as in llama2.c's run.c.
type Weights struct {
	TokenEmbedding []float32 // [vocab][dim]
	RMSAtt         []float32 // [layers][dim]
	WQ             []float32 // [layers][dim][dim]
	WK             []float32 // [layers][kv_dim][dim]
	WV             []float32 // [layers][kv_dim][dim]
	WO             []float32 // [layers][dim][dim]
	RMSFFN         []float32 // [layers][dim]
	W1             []float32 // [layers][hidden][dim]
	W2             []float32 // [layers][dim][hidden]
	W3             []float32 // [layers][hidden][dim]
	RMSFinal       []float32 // [dim]
	WCls           []float32 // [vocab][dim]; aliases TokenEmbedding when tied
}

// llama2cHeaderSize is the v0 header: 7 little-endian int32.
const llama2cHeaderSize = 7 * 4

// LoadLlama2C reads a llama2.c version-0 checkpoint (the format run.c reads).
func LoadLlama2C(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama2.c checkpoint: %w", err)
	}
	m, err := ParseLlama2C(data)
	if err != nil {
		return nil, fmt.Errorf("llama2.c checkpoint %s: %w", path, err)
	}
	return m, nil
}

// ParseLlama2CConfig decodes and validates the v0 header and returns the
// configuration and the exact file size it implies.
func ParseLlama2CConfig(data []byte) (Config, int64, error) {
	if len(data) < llama2cHeaderSize {
		return Config{}, 0, fmt.Errorf("file is %d bytes, shorter than the 28-byte header", len(data))
	}
	var h [7]int32
	for i := range h {
		h[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	names := [7]string{"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"}
	for i, v := range h {
		if i == 5 {
			if v == 0 || v == math.MinInt32 {
				return Config{}, 0, fmt.Errorf("header: invalid vocab_size %d", v)
			}
			continue
		}
		if v <= 0 {
			return Config{}, 0, fmt.Errorf("header: %s = %d, must be positive", names[i], v)
		}
	}
	c := Config{
		Dim: int(h[0]), HiddenDim: int(h[1]), NLayers: int(h[2]), NHeads: int(h[3]),
		NKVHeads: int(h[4]), VocabSize: int(h[5]), SeqLen: int(h[6]),
		SharedClassifier: h[5] > 0,
	}
	if c.VocabSize < 0 {
		c.VocabSize = -c.VocabSize
	}
	if c.Dim%c.NHeads != 0 {
		return c, 0, fmt.Errorf("header: dim %d is not a multiple of n_heads %d", c.Dim, c.NHeads)
	}
	if c.NKVHeads > c.NHeads || c.NHeads%c.NKVHeads != 0 {
		return c, 0, fmt.Errorf("header: n_heads %d is not a multiple of n_kv_heads %d", c.NHeads, c.NKVHeads)
	}
	if c.HeadSize()%2 != 0 {
		return c, 0, fmt.Errorf("header: head size %d (dim %d / n_heads %d) is odd; RoPE needs pairs", c.HeadSize(), c.Dim, c.NHeads)
	}
	n, ok := c.floatCount()
	if !ok {
		return c, 0, fmt.Errorf("header: parameter count overflows (dim %d, hidden_dim %d, n_layers %d, vocab_size %d)", c.Dim, c.HiddenDim, c.NLayers, c.VocabSize)
	}
	return c, llama2cHeaderSize + 4*n, nil
}

// floatCount is the number of float32 values following the header.
func (c Config) floatCount() (int64, bool) {
	const lim = int64(1) << 40
	for _, v := range []int{c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.SeqLen} {
		if int64(v) > 1<<24 {
			return 0, false
		}
	}
	d, hd, l, v := int64(c.Dim), int64(c.HiddenDim), int64(c.NLayers), int64(c.VocabSize)
	kv := int64(c.KVDim())
	hs := int64(c.HeadSize())
	n := v * d                // token embedding
	n += l * d                // rms_att
	n += l * d * d            // wq
	n += 2 * l * kv * d       // wk, wv
	n += l * d * d            // wo
	n += l * d                // rms_ffn
	n += 3 * l * hd * d       // w1, w2, w3
	n += d                    // rms_final
	n += int64(c.SeqLen) * hs // freq_cis_real + freq_cis_imag (seq_len*head_size/2 each)
	if !c.SharedClassifier {
		n += v * d // wcls
	}
	if n <= 0 || n > lim {
		return 0, false
	}
	return n, true
}

// ParseLlama2C decodes a llama2.c v0 checkpoint held in memory. The size
// must match the header exactly. The weights are copied into float32 slices.
func ParseLlama2C(data []byte) (*Model, error) {
	c, want, err := ParseLlama2CConfig(data)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != want {
		kind := "tied"
		if !c.SharedClassifier {
			kind = "untied"
		}
		return nil, fmt.Errorf("file is %d bytes but the header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d %s, seq_len %d) implies %d bytes (difference %+d)",
			len(data), c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, kind, c.SeqLen, want, int64(len(data))-want)
	}
	all := make([]float32, (len(data)-llama2cHeaderSize)/4)
	body := data[llama2cHeaderSize:]
	for i := range all {
		all[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	d, hd, l, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	off := 0
	take := func(n int) []float32 {
		s := all[off : off+n : off+n]
		off += n
		return s
	}
	var w Weights
	w.TokenEmbedding = take(v * d)
	w.RMSAtt = take(l * d)
	w.WQ = take(l * d * d)
	w.WK = take(l * kv * d)
	w.WV = take(l * kv * d)
	w.WO = take(l * d * d)
	w.RMSFFN = take(l * d)
	w.W1 = take(l * hd * d)
	w.W2 = take(l * d * hd)
	w.W3 = take(l * hd * d)
	w.RMSFinal = take(d)
	take(c.SeqLen * c.HeadSize()) // freq_cis_real, freq_cis_imag: unused
	if c.SharedClassifier {
		w.WCls = w.TokenEmbedding
	} else {
		w.WCls = take(v * d)
	}
	if off != len(all) {
		return nil, fmt.Errorf("internal: consumed %d of %d floats", off, len(all))
	}
	return NewModel(c, w)
}
