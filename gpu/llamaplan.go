package gpu

// The CPU-side half of the GPU LLaMA engine (gpu/llama_cuda.go): the weight
// layout, the RoPE table, the random test models and the benchmark shapes.
// Nothing here needs CUDA, so it is built and tested everywhere.

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"taobox/model"
	"taobox/model/gguf"
)

// llamaAlign is the alignment of every tensor and state buffer on the
// device (the kernels' float4/uint4 loads need 16).
const llamaAlign = 256

// llamaTensor is one tensor of the forward pass: a matrix of rows × cols
// (cols = ne0, the row length) or a vector (rows = 1, norm = true: an
// RMSNorm weight or a bias, F32 on the device).
type llamaTensor struct {
	name  string
	rows  int
	cols  int
	norm  bool          // 1-D RMSNorm weight, kept in F32 on the device
	typ   gguf.GGMLType // element type on the device
	off   int64         // offset in the weight allocation
	bytes int64
}

// llamaTensors lists the tensors the forward pass reads, in upload order,
// with llama.cpp's names; bias adds the attention biases (qwen2).
// Types are left zero (F32).
func llamaTensors(c model.Config, bias bool) []llamaTensor {
	d, hd, kv := c.Dim, c.HiddenDim, c.KVDim()
	ts := []llamaTensor{{name: "token_embd.weight", rows: c.VocabSize, cols: d}}
	for l := 0; l < c.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			llamaTensor{name: p + "attn_norm.weight", rows: 1, cols: d, norm: true},
			llamaTensor{name: p + "attn_q.weight", rows: d, cols: d},
			llamaTensor{name: p + "attn_k.weight", rows: kv, cols: d},
			llamaTensor{name: p + "attn_v.weight", rows: kv, cols: d},
			llamaTensor{name: p + "attn_output.weight", rows: d, cols: d},
			llamaTensor{name: p + "ffn_norm.weight", rows: 1, cols: d, norm: true},
			llamaTensor{name: p + "ffn_gate.weight", rows: hd, cols: d},
			llamaTensor{name: p + "ffn_up.weight", rows: hd, cols: d},
			llamaTensor{name: p + "ffn_down.weight", rows: d, cols: hd},
		)
		if bias {
			ts = append(ts,
				llamaTensor{name: p + "attn_q.bias", rows: 1, cols: d, norm: true},
				llamaTensor{name: p + "attn_k.bias", rows: 1, cols: kv, norm: true},
				llamaTensor{name: p + "attn_v.bias", rows: 1, cols: kv, norm: true},
			)
		}
	}
	ts = append(ts, llamaTensor{name: "output_norm.weight", rows: 1, cols: d, norm: true})
	if !c.SharedClassifier {
		ts = append(ts, llamaTensor{name: "output.weight", rows: c.VocabSize, cols: d})
	}
	return ts
}

// llamaTypeOK reports whether the kernels multiply with matrices of type t.
func llamaTypeOK(t gguf.GGMLType) bool {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0:
		return true
	}
	return false
}

// llamaRowBytes is the size of one row of n elements of type t.
func llamaRowBytes(t gguf.GGMLType, n int) (int64, error) {
	if !llamaTypeOK(t) {
		return 0, fmt.Errorf("type %s is not supported by the GPU kernels (F32, F16, BF16, Q8_0, Q4_0)", t)
	}
	s, err := gguf.RowSize(t, n)
	return int64(s), err
}

// layoutLlama fills typ (via typeOf for matrices; F32 for norms), bytes and
// off of every tensor and returns the total size, each tensor aligned to
// llamaAlign.
func layoutLlama(ts []llamaTensor, typeOf func(name string) gguf.GGMLType) (int64, error) {
	var off int64
	for i := range ts {
		t := &ts[i]
		if t.norm {
			t.typ = gguf.TypeF32
		} else {
			t.typ = typeOf(t.name)
		}
		rb, err := llamaRowBytes(t.typ, t.cols)
		if err != nil {
			return 0, fmt.Errorf("gpu: tensor %q: %w", t.name, err)
		}
		t.bytes = rb * int64(t.rows)
		t.off = off
		off += alignUp(t.bytes, llamaAlign)
	}
	return off, nil
}

// llamaMMRows and llamaMMCols are matmul's tile (kernels/llama.cu MM_ROWS,
// MM_COLS): weight rows and batch rows per block.
const (
	llamaMMRows = 64
	llamaMMCols = 64
)

// llamaBatchRows is the most positions of the batched prompt's chunk for
// shape c: 256, at most the context.
func llamaBatchRows(c model.Config) int { return max(1, min(256, c.SeqLen)) }

// llamaAttScratch is the bytes of the batched attention's score scratch
// for shape c: what a full chunk of batchRows positions at the end of the
// context would need (rows × n_heads × context floats), at most 64 MiB
// but never less than one row at the end of the context (a chunk has at
// least one row).
func llamaAttScratch(c model.Config, batchRows int) int64 {
	row := int64(c.NHeads) * int64(c.SeqLen) * 4
	return max(min(int64(batchRows)*row, 64<<20), row)
}

// llamaChunkRows is how many positions (at most want, at least 1) a chunk
// starting at pos0 can take with scratch bytes of attention scratch: T
// rows of n_heads rows of pos0+T scores (attention_rows's stride), so
// chunks early in the context are full and late ones in a long context
// shrink.
func llamaChunkRows(c model.Config, pos0, want int, scratch int64) int {
	t := max(want, 1)
	for t > 1 && int64(t)*int64(c.NHeads)*int64(pos0+t)*4 > scratch {
		t--
	}
	return t
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// llamaRopeBase and llamaEps are the Config's values with model's defaults
// for zero (10000, 1e-5).
func llamaRopeBase(c model.Config) float32 {
	if c.RopeBase == 0 {
		return 10000
	}
	return c.RopeBase
}

func llamaEps(c model.Config) float32 {
	if c.RMSEps == 0 {
		return 1e-5
	}
	return c.RMSEps
}

// checkLlamaConfig refuses shapes the kernels cannot run.
func checkLlamaConfig(c model.Config) error {
	if c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.VocabSize <= 0 || c.SeqLen <= 0 {
		return fmt.Errorf("gpu: llama config %+v: every size must be positive", c)
	}
	if c.Dim%c.NHeads != 0 || c.NHeads%c.NKVHeads != 0 || c.HeadSize()%2 != 0 {
		return fmt.Errorf("gpu: llama config %+v: dim must split into even-sized heads and n_heads must be a multiple of n_kv_heads", c)
	}
	if c.RMSEps < 0 || c.RopeBase < 0 {
		return fmt.Errorf("gpu: llama config %+v: negative RMSEps or RopeBase", c)
	}
	return nil
}

// ropeTable returns the (cos, sin) of every position and pair of a head,
// [seq][hs/2][2], computed exactly as the CPU engine (model/llama.go) does:
// freq = 1/float32(base^float32(2i/hs)), angle = float32(pos)*freq in
// float32, cos and sin in float64 rounded to float32. base is c.RopeBase,
// 10000 when zero.
func ropeTable(c model.Config) []float32 {
	hs := c.HeadSize()
	freq := make([]float32, hs/2)
	base := float64(llamaRopeBase(c))
	for i := range freq {
		e := float32(2*i) / float32(hs)
		freq[i] = 1 / float32(math.Pow(base, float64(e)))
	}
	out := make([]float32, c.SeqLen*hs)
	for pos := 0; pos < c.SeqLen; pos++ {
		fpos := float32(pos)
		for i, f := range freq {
			val := fpos * f
			out[(pos*(hs/2)+i)*2] = float32(math.Cos(float64(val)))
			out[(pos*(hs/2)+i)*2+1] = float32(math.Sin(float64(val)))
		}
	}
	return out
}

// weightBytesPerToken is what one decode step reads from the weights: every
// matrix and norm, except that only one row of the embedding table is read
// (all of it when the classifier is tied to it).
func weightBytesPerToken(ts []llamaTensor, c model.Config) int64 {
	var n int64
	for _, t := range ts {
		if t.name == "token_embd.weight" {
			if c.SharedClassifier {
				n += t.bytes
			} else {
				n += t.bytes / int64(t.rows)
			}
			continue
		}
		n += t.bytes
	}
	return n
}

// RandomLlamaGGUF builds an in-memory GGUF file of a random LLaMA model of
// shape c, its matrices stored as typ (F32, F16, Q8_0 or Q4_0), for tests
// and the selftest. With c.RopeNeox it is a "qwen2" file (NEOX RoPE,
// attention biases), otherwise a "llama" one; c.RMSEps and c.RopeBase are
// written (defaults for zero). Values are uniform with variance about 1/n per matrix
// (n its row length) times a gain, so activations stay O(1) and the logits
// spread over a few units (clear greedy choices).
func RandomLlamaGGUF(c model.Config, typ gguf.GGMLType, seed uint64) ([]byte, error) {
	if err := checkLlamaConfig(c); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x11a3a))
	arch := "llama"
	if c.RopeNeox {
		arch = "qwen2"
	}
	g := gguf.NewWriter()
	g.AddString("general.architecture", arch)
	g.AddString("general.name", "taobox-gpu-test")
	g.AddUint32(arch+".context_length", uint32(c.DeclaredSeqLen()))
	g.AddUint32(arch+".embedding_length", uint32(c.Dim))
	g.AddUint32(arch+".block_count", uint32(c.NLayers))
	g.AddUint32(arch+".feed_forward_length", uint32(c.HiddenDim))
	g.AddUint32(arch+".rope.dimension_count", uint32(c.HeadSize()))
	g.AddUint32(arch+".attention.head_count", uint32(c.NHeads))
	g.AddUint32(arch+".attention.head_count_kv", uint32(c.NKVHeads))
	g.AddFloat32(arch+".attention.layer_norm_rms_epsilon", llamaEps(c))
	g.AddFloat32(arch+".rope.freq_base", llamaRopeBase(c))
	for _, t := range llamaTensors(c, c.RopeNeox) {
		n := t.rows * t.cols
		vals := make([]float32, n)
		var dims []uint64
		tt := typ
		switch {
		case t.norm && strings.HasSuffix(t.name, ".bias"):
			for i := range vals {
				vals[i] = 0.5 * float32(r.Float64()*2-1)
			}
			dims, tt = []uint64{uint64(t.cols)}, gguf.TypeF32
		case t.norm:
			for i := range vals {
				vals[i] = 1 + 0.25*float32(r.Float64()*2-1)
			}
			dims, tt = []uint64{uint64(t.cols)}, gguf.TypeF32
		default:
			a := float32(math.Sqrt(3 / float64(t.cols)))
			switch {
			case t.name == "token_embd.weight" && c.SharedClassifier:
				// Tied: the table is also the classifier; rows of norm ~1
				// keep a token's own row from dominating its logits.
			case t.name == "token_embd.weight":
				a = 1
			case t.name == "output.weight" || strings.HasSuffix(t.name, "attn_q.weight") || strings.HasSuffix(t.name, "attn_k.weight"):
				a *= 3 // sharper logits and attention
			case strings.HasSuffix(t.name, "attn_output.weight") || strings.HasSuffix(t.name, "ffn_down.weight"):
				a *= 2 // layers that move the residual stream away from the embedding
			}
			for i := range vals {
				vals[i] = a * float32(r.Float64()*2-1)
			}
			dims = []uint64{uint64(t.cols), uint64(t.rows)}
		}
		raw, err := encodeTensor(tt, vals)
		if err != nil {
			return nil, fmt.Errorf("gpu: random model: %s: %w", t.name, err)
		}
		if err := g.AddTensor(t.name, tt, dims, raw); err != nil {
			return nil, fmt.Errorf("gpu: random model: %s: %w", t.name, err)
		}
	}
	return g.Bytes()
}

func encodeTensor(t gguf.GGMLType, vals []float32) ([]byte, error) {
	switch t {
	case gguf.TypeF32:
		raw := make([]byte, 4*len(vals))
		for i, x := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
		}
		return raw, nil
	case gguf.TypeF16:
		raw := make([]byte, 2*len(vals))
		for i, x := range vals {
			binary.LittleEndian.PutUint16(raw[2*i:], gguf.Float32ToHalf(x))
		}
		return raw, nil
	case gguf.TypeBF16:
		raw := make([]byte, 2*len(vals))
		for i, x := range vals {
			binary.LittleEndian.PutUint16(raw[2*i:], gguf.Float32ToBF16(x))
		}
		return raw, nil
	case gguf.TypeQ8_0:
		return gguf.QuantizeQ8_0(vals)
	case gguf.TypeQ4_0:
		return gguf.QuantizeQ4_0(vals)
	}
	return nil, fmt.Errorf("cannot encode type %s", t)
}

// llamaTestModel is one of the selftest's random models.
type llamaTestModel struct {
	name   string
	cfg    model.Config
	typ    gguf.GGMLType
	seed   uint64
	prompt []int
	bound  float64 // max |GPU - CPU| of a generated token's log-prob
	median float64 // bound on the median |GPU - CPU| (0: bound)
}

// file builds the model's GGUF file in memory.
func (tm llamaTestModel) file() (*gguf.File, error) {
	raw, err := RandomLlamaGGUF(tm.cfg, tm.typ, tm.seed)
	if err != nil {
		return nil, err
	}
	return gguf.Parse(raw)
}

// check applies the model's bounds to the per-token |GPU - CPU| log-prob
// differences d and returns the max and the median.
func (tm llamaTestModel) check(d []float64) (maxd, median float64, err error) {
	s := make([]float64, len(d))
	for i, x := range d {
		s[i] = math.Abs(x)
		maxd = max(maxd, s[i])
	}
	slices.Sort(s)
	if len(s) > 0 {
		median = s[len(s)/2]
	}
	mb := tm.median
	if mb == 0 {
		mb = tm.bound
	}
	if !(maxd <= tm.bound) || !(median <= mb) {
		err = fmt.Errorf("|dlogprob| max %.3g (bound %g), median %.3g (bound %g)", maxd, tm.bound, median, mb)
	}
	return maxd, median, err
}

// llamaTestModels are the selftest's models: every weight type, MHA and GQA,
// tied and untied classifiers, llama and qwen2 (NEOX RoPE, attention
// biases, other epsilon and RoPE base), row lengths that miss the vector loads'
// multiples (F32 150, F16 100: the kernels' scalar paths) and head sizes
// 10, 16, 32. Bounds: float32 sums in another order and expf differ
// from the CPU engine by a few ulps per operation (~1e-5 on these logits):
// 1e-3 for F32 and F16. Q8_0 and Q4_0 products quantize the activations to
// int8 (as the CPU engine and ggml do), a discontinuous step: after a
// few ulps of drift an activation on a rounding boundary rounds the other
// way, which moves that token's log-probs by ~1e-3, and through the KV
// cache the later tokens' too (these random models have sharp attention).
// Measured on an H100 and by the Go reference (TestLlamaReference), which
// gives the same differences (most tokens < 1e-6 until a flip, the worst
// 0.12); the reference against itself with float32 instead of float64
// sums drifts as much (TestLlamaQuantSensitivity). So for the quantized
// models: median 0.05 and max 0.25, with the greedy tokens equal, and the
// prompt's logits (before any drift has accumulated) within 1e-3.
// TestLlamaTestModelsMargins checks on the CPU that every greedy choice
// wins by more than 1e-3 (1e-2 for the quantized ones), so drift cannot
// flip it.
func llamaTestModels() []llamaTestModel {
	return []llamaTestModel{
		{"f32-mha", model.Config{Dim: 60, HiddenDim: 150, NLayers: 2, NHeads: 6, NKVHeads: 6, VocabSize: 300, SeqLen: 48, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeF32, 1, []int{1, 7, 42}, 1e-3, 0},
		{"f16-gqa-tied", model.Config{Dim: 100, HiddenDim: 260, NLayers: 2, NHeads: 10, NKVHeads: 2, VocabSize: 333, SeqLen: 48, SharedClassifier: true, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeF16, 2, []int{5, 3}, 1e-3, 0},
		{"q8_0-gqa", model.Config{Dim: 128, HiddenDim: 352, NLayers: 3, NHeads: 8, NKVHeads: 2, VocabSize: 512, SeqLen: 64, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeQ8_0, 3, []int{1, 2, 3, 4, 5}, 0.25, 0.05},
		{"q4_0-gqa", model.Config{Dim: 96, HiddenDim: 256, NLayers: 2, NHeads: 3, NKVHeads: 1, VocabSize: 256, SeqLen: 40, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeQ4_0, 6, []int{9}, 0.25, 0.05},
		{"f32-qwen2-neox-bias", model.Config{Dim: 64, HiddenDim: 128, NLayers: 2, NHeads: 4, NKVHeads: 2, VocabSize: 200, SeqLen: 48, RMSEps: 1e-6, RopeBase: 1e6, RopeNeox: true}, gguf.TypeF32, 7, []int{2, 7}, 1e-3, 0},
		{"q8_0-qwen2-neox-bias", model.Config{Dim: 128, HiddenDim: 320, NLayers: 2, NHeads: 4, NKVHeads: 2, VocabSize: 400, SeqLen: 48, RMSEps: 1e-6, RopeBase: 1e6, RopeNeox: true}, gguf.TypeQ8_0, 5, []int{3, 1, 4}, 0.25, 0.05},
	}
}

// LlamaBenchConfig is the benchmark's Llama-3.2-1B-like shape: dim 2048,
// hidden 8192, 16 layers, 32 heads of 64, 8 KV heads, vocab 128256 with the
// classifier tied to the embeddings (as Llama-3.2-1B), context seq.
func LlamaBenchConfig(seq int) model.Config {
	return model.Config{Dim: 2048, HiddenDim: 8192, NLayers: 16, NHeads: 32, NKVHeads: 8, VocabSize: 128256, SeqLen: seq, SharedClassifier: true,
		RMSEps: 1e-5, RopeBase: 500000}
}

// HBMBandwidth returns the peak memory bandwidth in bytes/s of a GPU known
// by name (from NVIDIA's data sheets), 0 if unknown: H100 SXM 3.35 TB/s,
// H100 PCIe 2.0 TB/s, H100 NVL 3.9 TB/s, H200 4.8 TB/s, A100 80GB SXM
// 2.039 TB/s, A100 40GB 1.555 TB/s.
func HBMBandwidth(name string) float64 {
	n := strings.ToUpper(name)
	switch {
	case strings.Contains(n, "H200"):
		return 4.8e12
	case strings.Contains(n, "H100") && strings.Contains(n, "NVL"):
		return 3.9e12
	case strings.Contains(n, "H100") && strings.Contains(n, "PCIE"):
		return 2.0e12
	case strings.Contains(n, "H100"):
		return 3.35e12
	case strings.Contains(n, "A100") && strings.Contains(n, "80GB"):
		return 2.039e12
	case strings.Contains(n, "A100"):
		return 1.555e12
	}
	return 0
}

// LlamaBenchResult is one benchmark run of the GPU forward pass.
type LlamaBenchResult struct {
	Model           string  `json:"model"`  // file name or "synthetic"
	Shape           string  `json:"shape"`  // dims
	DType           string  `json:"dtype"`  // matrix type
	Params          int64   `json:"params"` // matrix and norm elements
	WeightBytes     int64   `json:"weight_bytes"`
	BytesPerToken   int64   `json:"bytes_per_token"` // weights read per decode step
	MemBytes        int64   `json:"mem_bytes"`       // weights + KV cache + activations on the device
	PromptTokens    int     `json:"prompt_tokens"`
	DecodeTokens    int     `json:"decode_tokens"`
	PromptTokPerSec float64 `json:"prompt_tok_per_s"` // batched, PromptBatch positions per chunk (token by token when 0)
	// PromptSerialTokPerSec: the same prompt one token at a time
	// (matrix-vector products), timed in the same run: the baseline.
	PromptSerialTokPerSec float64 `json:"prompt_serial_tok_per_s"`
	PromptBatch           int     `json:"prompt_batch"`
	// ScoreMs: a validator's teacher-forced pass over the prompt's ids
	// (second half scored, four spots, ranks) in one Score call;
	// ScoreForwardMs: the same pass a Forward per position with the
	// reductions on the host (the per-position path's cost, less the
	// runner's socket).
	ScoreMs         float64 `json:"score_ms"`
	ScoreForwardMs  float64 `json:"score_forward_ms"`
	DecodeTokPerSec float64 `json:"decode_tok_per_s"`
	DecodeGBPerSec  float64 `json:"decode_gb_per_s"`    // BytesPerToken × decode tok/s
	PeakGBPerSec    float64 `json:"peak_gb_per_s"`      // HBMBandwidth of the device, 0 if unknown
	FractionOfPeak  float64 `json:"fraction_of_peak"`   // DecodeGBPerSec / PeakGBPerSec
	ReadGBPerSec    float64 `json:"read_gb_per_s"`      // measured: a kernel that only reads the weights
	FractionOfRead  float64 `json:"fraction_of_read"`   // DecodeGBPerSec / ReadGBPerSec
	EnqueueUsPerTok float64 `json:"enqueue_us_per_tok"` // host time to launch one decode step's kernels
	Graphs          bool    `json:"cuda_graphs"`        // decode steps replayed as CUDA graphs
	PDL             bool    `json:"pdl"`                // products launched programmatically dependent
}

func (r LlamaBenchResult) String() string {
	s := fmt.Sprintf("llama %s %s %s: %.0f MB weights, decode %.1f tok/s (%.0f GB/s", r.Model, r.Shape, r.DType,
		float64(r.WeightBytes)/1e6, r.DecodeTokPerSec, r.DecodeGBPerSec)
	if r.PeakGBPerSec > 0 {
		s += fmt.Sprintf(", %.0f%% of the %.0f GB/s datasheet peak", 100*r.FractionOfPeak, r.PeakGBPerSec)
	}
	if r.ReadGBPerSec > 0 {
		s += fmt.Sprintf(", %.0f%% of the %.0f GB/s measured read ceiling", 100*r.FractionOfRead, r.ReadGBPerSec)
	}
	return s + fmt.Sprintf("), prompt %.1f tok/s (chunks of %d; token by token %.1f tok/s), a validator's pass over %d ids %.2f ms (a forward per position %.2f ms), %.0f MB on the GPU, host enqueue %.0f us/token, graphs %v, pdl %v",
		r.PromptTokPerSec, r.PromptBatch, r.PromptSerialTokPerSec, r.PromptTokens, r.ScoreMs, r.ScoreForwardMs, float64(r.MemBytes)/1e6, r.EnqueueUsPerTok, r.Graphs, r.PDL)
}

func shapeString(c model.Config) string {
	tied := ""
	if c.SharedClassifier {
		tied = " tied"
	}
	return fmt.Sprintf("dim %d hidden %d layers %d heads %d/%d vocab %d seq %d%s", c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen, tied)
}

// ParseLlamaDType maps "f32", "f16", "bf16", "q8_0", "q4_0" to a type.
func ParseLlamaDType(s string) (gguf.GGMLType, error) {
	switch strings.ToLower(s) {
	case "f32":
		return gguf.TypeF32, nil
	case "f16":
		return gguf.TypeF16, nil
	case "bf16":
		return gguf.TypeBF16, nil
	case "q8_0":
		return gguf.TypeQ8_0, nil
	case "q4_0":
		return gguf.TypeQ4_0, nil
	}
	return 0, fmt.Errorf("gpu: unknown weight type %q (f32, f16, bf16, q8_0, q4_0)", s)
}
