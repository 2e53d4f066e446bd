//go:build cuda

package gpu

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

// taobox_launch launches f on stream s with n 64-bit parameters, without
// the two mallocs per launch of gorgonia's Launch.
static CUresult taobox_launch(CUfunction f, unsigned grid, unsigned gridy, unsigned block, unsigned shared, CUstream s, unsigned long long *vals, int n) {
	void *args[32];
	for (int i = 0; i < n && i < 32; i++) args[i] = &vals[i];
	return cuLaunchKernel(f, grid, gridy, 1, block, 1, 1, shared, s, args, 0);
}

// Programmatic dependent launch needs cuLaunchKernelEx (a CUDA 12.0
// driver), which the pinned CUDA 11.8 headers lack: its types are declared
// here (taobox_ names, the driver's layout) and the entry point is looked
// up in the loaded driver at run time, so the binary still starts on any
// driver. taobox_launch_pdl returns CUDA_ERROR_NOT_SUPPORTED without it.
#include <dlfcn.h>

typedef struct {
	int id;
	char pad[4];
	union { char pad[64]; int programmaticStreamSerializationAllowed; } value;
} taobox_launch_attr;

typedef struct {
	unsigned gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
	CUstream hStream;
	taobox_launch_attr *attrs;
	unsigned numAttrs;
} taobox_launch_config;

typedef CUresult (*taobox_launch_ex_fn)(const taobox_launch_config *, CUfunction, void **, void **);

static taobox_launch_ex_fn taobox_launch_ex(void) {
	static int looked;
	static taobox_launch_ex_fn fn;
	if (!looked) {
		fn = (taobox_launch_ex_fn)dlsym(RTLD_DEFAULT, "cuLaunchKernelEx");
		looked = 1;
	}
	return fn;
}

static int taobox_have_pdl(void) { return taobox_launch_ex() != 0; }

// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
#define TAOBOX_ATTR_PDL 6

static CUresult taobox_launch_pdl(CUfunction f, unsigned grid, unsigned block, unsigned shared, CUstream s, unsigned long long *vals, int n) {
	taobox_launch_ex_fn ex = taobox_launch_ex();
	if (!ex) return CUDA_ERROR_NOT_SUPPORTED;
	void *args[32];
	for (int i = 0; i < n && i < 32; i++) args[i] = &vals[i];
	taobox_launch_attr attr = {0};
	attr.id = TAOBOX_ATTR_PDL;
	attr.value.programmaticStreamSerializationAllowed = 1;
	taobox_launch_config cfg = {grid, 1, 1, block, 1, 1, shared, s, &attr, 1};
	return ex(&cfg, f, args, 0);
}

static CUresult taobox_occupancy(CUfunction f, int block, int shared, int *blocks) {
	return cuOccupancyMaxActiveBlocksPerMultiprocessor(blocks, f, block, (size_t)shared);
}

// A blocking stream (CU_STREAM_DEFAULT): ordered with the legacy default
// stream, which gorgonia's synchronous copies use.
static CUresult taobox_stream(CUstream *s) { return cuStreamCreate(s, CU_STREAM_DEFAULT); }
static CUresult taobox_stream_destroy(CUstream s) { return cuStreamDestroy(s); }

static CUresult taobox_capture_begin(CUstream s) {
	return cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED);
}

// taobox_capture_end ends the capture on s and instantiates the graph.
static CUresult taobox_capture_end(CUstream s, CUgraphExec *exec) {
	CUgraph g;
	CUresult r = cuStreamEndCapture(s, &g);
	if (r != CUDA_SUCCESS) return r;
	r = cuGraphInstantiateWithFlags(exec, g, 0);
	cuGraphDestroy(g);
	return r;
}

static CUresult taobox_graph_launch(CUgraphExec e, CUstream s) { return cuGraphLaunch(e, s); }
static CUresult taobox_graph_destroy(CUgraphExec e) { return cuGraphExecDestroy(e); }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"taobox/model"
	"taobox/model/gguf"
)

// Llama is a LLaMA model whose weights live on the GPU: the forward pass of
// model.Model (model/llama.go) as CUDA kernels (kernels/llama.cu), for the
// "llama" and "qwen2" GGUF architectures the CPU engine runs (RMSNorm
// epsilon and RoPE base from the file, llama or NEOX RoPE pairs, optional
// q/k/v biases, GQA, tied or separate classifier). Matrices are the GGUF
// tensors uploaded byte for byte (F32, F16, BF16, Q8_0, Q4_0, multiplied
// in place; Q8_0/Q4_0 products quantize the activations to Q8 blocks as the
// CPU engine and ggml do); norms, activations, the KV cache and the logits
// are float32. Results are deterministic: no float atomics, every
// reduction in a fixed order, so repeated runs give identical bits.
//
// A step's launches do not depend on the position (it lives on the device
// and the step advances it), so the prompt step and the decode step (logits,
// greedy choice, advance) are each captured once as a CUDA graph and
// replayed: one host call per token (TAOBOX_LLAMA_GRAPHS=0 launches the
// kernels one by one instead). Generate enqueues the whole generation and
// synchronizes once; the chosen tokens stay on the device.
//
// A layer is four product launches and the attention: q/k/v (which
// normalize their own input and, with llama's RoPE pairing, write q and k
// rotated), the output projection with the residual add, gate/up with the
// SwiGLU applied, and down with the residual add; each warp group computes
// two rows at once (TAOBOX_LLAMA_ROWS, TAOBOX_LLAMA_FUSE=0 and
// TAOBOX_LLAMA_WARPS select the other shapes for scripts/gpu-profile.sh).
//
// The prompt runs in chunks of up to llamaBatchRows tokens (batched: one
// matrix-matrix product per weight and chunk reads each weight once per
// chunk instead of once per token, and attention is causal within the
// chunk), all but its last token, which is the first decode step's; the
// logits are computed for that last token only (PromptLogits computes
// them at every position). TAOBOX_LLAMA_BATCH=0 runs the prompt one token
// at a time (matrix-vector products), TAOBOX_LLAMA_BATCH=N in chunks of N.
// A Llama is not safe for concurrent use; all its work runs inside
// Device.Do.
type Llama struct {
	d   *Device
	cfg model.Config

	fn struct {
		embed, prep, rope, attention, argmaxPartial, argmax, logsoftmax, fill, advance, read, scoreRows cu.Function
		matvec                                                                                          [5]cu.Function // by rows per warp group: 1, 2, 4
		matmul, embedRows, ropeRows, attentionRows                                                      cu.Function    // the batched prompt
	}

	tensors     []llamaTensor
	byName      map[string]*llamaTensor
	wmem        cu.DevicePtr // every weight, one allocation
	wbytes      int64
	smem        cu.DevicePtr // state, one allocation
	sbytes      int64
	bytesPerTok int64

	// state buffers (inside smem)
	x, xb, q, hb, hb2, att, logits, kc, vc, rope, toks, lps, lsm, posp cu.DevicePtr
	xin, xq, xd                                                        cu.DevicePtr // a product's prepared input
	pv, pi, ps                                                         cu.DevicePtr // argmax partials

	// The batched prompt's state, for batchCap rows (positions) at once:
	// activations [rows][dim or hidden], the attention scratch
	// [rows][n_heads][pos0+rows] (attScratch bytes; llamaChunkRows fits
	// each chunk to it), Q8 blocks of a product's inputs, and the logits
	// [logitRows][vocab] of PromptLogits.
	bx, bxb, bq, bhb, bhb2, batt, bxq, bxd, blogits cu.DevicePtr
	blps, bahead                                    cu.DevicePtr // Score's per-row results (float64, int64)
	batchCap, logitRows                             int
	attScratch                                      int64 // bytes at batt (llamaChunkRows)
	// batch: the prompt's chunk (rows per pass, ≤ batchCap; 0 runs the
	// prompt one token at a time: TAOBOX_LLAMA_BATCH=0).
	batch int

	sms  int
	eps  uint64 // RMSNorm epsilon, float64 bits
	neox uint64 // 1: NEOX RoPE pairing

	layers            []llamaLayer
	emb, cls, outNorm devW
	clsPF             pfRange
	prefetch          bool // warm each product's first weights in L2

	hostLogits []float32
	argv       [32]C.ulonglong
	closed     bool

	stream  C.CUstream
	occ     map[occKey]int // resident blocks per SM of the product kernels
	graphs  bool           // replay decode steps as CUDA graphs
	decodeG C.CUgraphExec
	promptG C.CUgraphExec

	forceWpr  int // tests: warps per row, 0 = automatic
	gridScale int // tests: resident blocks per SM multiplier, 0 = 1

	// fuse: products normalize their own input (no prep_input launch) and
	// the FFN's gate/up product applies the SwiGLU (TAOBOX_LLAMA_FUSE=0:
	// off, each step as separate launches). rows: rows per warp group of
	// the products (1, 2 or 4; TAOBOX_LLAMA_ROWS, default 2).
	fuse  bool
	pdl   bool // products launched programmatically dependent (llama_sm90; TAOBOX_LLAMA_PDL=0: off)
	rows  int
	warps int // warps per SM a product's row groups should give at least
	// attnThreads: the attention kernel's block size (llamaAttnThreads;
	// TAOBOX_LLAMA_ATTN_THREADS overrides, a multiple of 32 ≥ the head size)
	attnThreads int
}

// devW is a weight on the device: its address and kernel type id.
type devW struct{ p, t uint64 }

type llamaLayer struct {
	attnNorm, q, k, v, o, ffnNorm, gate, up, down devW
	bq, bk, bv                                    uint64 // biases, 0 if none

	// L2 prefetch ranges warmed by the small kernel before each product
	qkvPF, oPF, gateupPF, downPF pfRange
}

// pfRange is a device byte range to prefetch into L2.
type pfRange struct{ p, n uint64 }

// llamaPrefetchMax bounds a prefetch (H100's L2 holds 50 MB).
const llamaPrefetchMax = 16 << 20

// kernel type ids are the GGML type ids (kernels/llama.cu T_*).
func ktype(t gguf.GGMLType) uint64 { return uint64(t) }

func dptr(p cu.DevicePtr, byteOff int64) uint64 { return uint64(p) + uint64(byteOff) }

// NewLlama uploads the weights of a "llama" GGUF file to d. Matrices must be
// F32, F16, BF16, Q8_0 or Q4_0 (the error names the tensor otherwise); f may
// be closed once NewLlama returns.
func NewLlama(d *Device, f *gguf.File) (*Llama, error) {
	c, err := model.GGUFConfig(f)
	if err != nil {
		return nil, err
	}
	// Attention biases (qwen2; llama.cpp accepts them for llama too): q, k
	// and v of every layer, or none.
	_, _, berr := f.Tensor("blk.0.attn_q.bias")
	ts := llamaTensors(c, berr == nil)
	infos := map[string]*gguf.TensorInfo{}
	for _, t := range ts {
		info, _, err := f.Tensor(t.name)
		if err != nil {
			return nil, fmt.Errorf("gpu: llama: %w", err)
		}
		want := []uint64{uint64(t.cols)}
		if !t.norm {
			want = append(want, uint64(t.rows))
		}
		dims := info.Dims
		for len(dims) > len(want) && dims[len(dims)-1] == 1 {
			dims = dims[:len(dims)-1]
		}
		if fmt.Sprint(dims) != fmt.Sprint(want) {
			return nil, fmt.Errorf("gpu: llama: tensor %q has shape %v, want %v (ne0 first)", t.name, info.Dims, want)
		}
		if t.norm && !info.Type.Supported() || !t.norm && !llamaTypeOK(info.Type) {
			return nil, fmt.Errorf("gpu: llama: tensor %q has type %s; the GPU kernels support F32, F16, BF16, Q8_0 and Q4_0", t.name, info.Type)
		}
		infos[t.name] = info
	}
	l, err := newLlama(d, c, ts, func(name string) gguf.GGMLType { return infos[name].Type })
	if err != nil {
		return nil, err
	}
	err = d.Do(func() error {
		for i := range l.tensors {
			t := &l.tensors[i]
			_, raw, err := f.Tensor(t.name)
			if err != nil {
				return fmt.Errorf("gpu: llama: %w", err)
			}
			if t.norm {
				v := make([]float32, t.cols)
				if err := gguf.ToFloat32(infos[t.name].Type, raw, t.cols, v); err != nil {
					return fmt.Errorf("gpu: llama: tensor %q: %w", t.name, err)
				}
				raw = unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
			}
			if int64(len(raw)) != t.bytes {
				return fmt.Errorf("gpu: llama: tensor %q has %d bytes, want %d", t.name, len(raw), t.bytes)
			}
			if err := cu.MemcpyHtoD(l.wmem+cu.DevicePtr(t.off), unsafe.Pointer(&raw[0]), t.bytes); err != nil {
				return fmt.Errorf("gpu: llama: uploading %q: %v", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// NewLlamaSynthetic makes a model of shape c whose matrices (of type typ)
// are filled on the device from seed by a hash generator, so that a large
// benchmark model needs no file. Its outputs are meaningless but its memory
// traffic is a real model's.
func NewLlamaSynthetic(d *Device, c model.Config, typ gguf.GGMLType, seed uint64) (*Llama, error) {
	if !llamaTypeOK(typ) {
		return nil, fmt.Errorf("gpu: llama: synthetic type %s; the GPU kernels support F32, F16, BF16, Q8_0 and Q4_0", typ)
	}
	l, err := newLlama(d, c, llamaTensors(c, false), func(string) gguf.GGMLType { return typ })
	if err != nil {
		return nil, err
	}
	err = d.Do(func() error {
		for i := range l.tensors {
			t := &l.tensors[i]
			scale, offset := math.Sqrt(3/float64(t.cols)), 0.0
			switch {
			case t.norm:
				scale, offset = 0.25, 1
			case t.name == "token_embd.weight":
				scale = 1
			}
			n := int64(t.rows) * int64(t.cols)
			blocks := min((n+255)/256, 4096)
			if err := l.launch(l.fn.fill, "fill_weights", int(blocks), 256, 0,
				dptr(l.wmem, t.off), ktype(t.typ), uint64(n), seed+uint64(i)*0x9e3779b97f4a7c15, math.Float64bits(scale), math.Float64bits(offset)); err != nil {
				return err
			}
		}
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: llama: filling synthetic weights: %v", err)
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// newLlama lays out and allocates the weights and the state and loads the
// kernels; the caller fills the weights.
func newLlama(d *Device, c model.Config, ts []llamaTensor, typeOf func(string) gguf.GGMLType) (*Llama, error) {
	if err := checkLlamaConfig(c); err != nil {
		return nil, err
	}
	wbytes, err := layoutLlama(ts, typeOf)
	if err != nil {
		return nil, err
	}
	l := &Llama{d: d, cfg: c, tensors: ts, byName: map[string]*llamaTensor{}, wbytes: wbytes}
	for i := range l.tensors {
		l.byName[l.tensors[i].name] = &l.tensors[i]
	}
	l.bytesPerTok = weightBytesPerToken(ts, c)
	l.eps = math.Float64bits(float64(llamaEps(c)))
	if c.RopeNeox {
		l.neox = 1
	}
	l.sms = max(d.Info().SMs, 1)
	l.hostLogits = make([]float32, c.VocabSize)
	l.occ = map[occKey]int{}
	l.graphs = os.Getenv("TAOBOX_LLAMA_GRAPHS") != "0"
	// L2 prefetch of each product's first weights by the kernel before it:
	// off by default until measured on a GPU (TAOBOX_LLAMA_PREFETCH=1).
	l.prefetch = os.Getenv("TAOBOX_LLAMA_PREFETCH") == "1"
	l.fuse = os.Getenv("TAOBOX_LLAMA_FUSE") != "0"
	l.warps = 16
	l.attnThreads = llamaAttnThreads
	if t, err := strconv.Atoi(os.Getenv("TAOBOX_LLAMA_ATTN_THREADS")); err == nil && t >= 32 && t <= 1024 && t%32 == 0 && t >= c.HeadSize() {
		l.attnThreads = t
	}
	if w, err := strconv.Atoi(os.Getenv("TAOBOX_LLAMA_WARPS")); err == nil && w > 0 {
		l.warps = w
	}
	l.batchCap = llamaBatchRows(c)
	l.attScratch = llamaAttScratch(c, l.batchCap)
	l.batch = l.batchCap
	l.logitRows = max(1, min(l.batchCap, (32<<20)/(4*c.VocabSize)))
	if b, err := strconv.Atoi(os.Getenv("TAOBOX_LLAMA_BATCH")); err == nil && b >= 0 {
		l.batch = min(b, l.batchCap)
	}
	l.rows = 2
	switch os.Getenv("TAOBOX_LLAMA_ROWS") {
	case "1":
		l.rows = 1
	case "4":
		l.rows = 4
	}

	// State layout (float32 unless noted).
	kv := int64(c.NLayers) * int64(c.SeqLen) * int64(c.KVDim()) * 4
	sizes := []struct {
		p *cu.DevicePtr
		n int64
	}{
		{&l.x, int64(c.Dim) * 4},
		{&l.xb, int64(c.Dim) * 4},
		{&l.q, int64(c.Dim) * 4},
		{&l.hb, int64(c.HiddenDim) * 4},
		{&l.hb2, int64(c.HiddenDim) * 4},
		{&l.att, int64(c.NHeads) * int64(c.SeqLen) * 4},
		{&l.logits, int64(c.VocabSize) * 4},
		{&l.kc, kv},
		{&l.vc, kv},
		{&l.rope, int64(c.SeqLen) * int64(c.HeadSize()) * 4},
		{&l.toks, int64(c.SeqLen+2) * 8}, // int64 token ids; the last slot is Forward's
		{&l.lps, int64(c.SeqLen+1) * 8},  // float64 log-probs of generated tokens
		{&l.lsm, int64(c.VocabSize) * 8}, // float64 log-softmax
		{&l.pv, int64(argmaxBlocks(c.VocabSize)) * 4},
		{&l.pi, int64(argmaxBlocks(c.VocabSize)) * 8},
		{&l.ps, int64(argmaxBlocks(c.VocabSize)) * 8},
		{&l.posp, 8}, // int64: the current position
		{&l.xin, int64(max(c.Dim, c.HiddenDim)) * 4},
		{&l.xq, int64(max(c.Dim, c.HiddenDim))},
		{&l.xd, int64(max(c.Dim, c.HiddenDim)/32+1) * 4},
		{&l.bx, int64(l.batchCap) * int64(c.Dim) * 4},
		{&l.bxb, int64(l.batchCap) * int64(c.Dim) * 4},
		{&l.bq, int64(l.batchCap) * int64(c.Dim) * 4},
		{&l.bhb, int64(l.batchCap) * int64(c.HiddenDim) * 4},
		{&l.bhb2, int64(l.batchCap) * int64(c.HiddenDim) * 4},
		{&l.batt, l.attScratch},
		{&l.bxq, int64(l.batchCap) * int64(max(c.Dim, c.HiddenDim))},
		{&l.bxd, int64(l.batchCap) * int64(max(c.Dim, c.HiddenDim)/32+1) * 4},
		{&l.blogits, int64(l.logitRows) * int64(c.VocabSize) * 4},
		{&l.blps, int64(l.logitRows) * 8},
		{&l.bahead, int64(l.logitRows) * 8},
	}
	offs := make([]int64, len(sizes))
	for i, s := range sizes {
		offs[i] = l.sbytes
		l.sbytes += alignUp(s.n, llamaAlign)
	}
	// Hopper and newer: the compute_90 build, whose products are launched
	// programmatically dependent (TAOBOX_LLAMA_PDL=0: the compute_80 build,
	// plain launches).
	l.pdl = d.Info().Major >= 9 && os.Getenv("TAOBOX_LLAMA_PDL") != "0" && C.taobox_have_pdl() != 0
	err = d.Do(func() error {
		module := "llama"
		if l.pdl {
			module = "llama_sm90"
		}
		m, err := d.Module(module)
		if err != nil && l.pdl {
			l.pdl = false
			m, err = d.Module("llama")
		}
		if err != nil {
			return err
		}
		for _, k := range []struct {
			f    *cu.Function
			name string
		}{
			{&l.fn.embed, "embed"}, {&l.fn.prep, "prep_input"},
			{&l.fn.matvec[1], "matvec3"}, {&l.fn.matvec[2], "matvec3x2"}, {&l.fn.matvec[4], "matvec3x4"},
			{&l.fn.rope, "rope_pairs"}, {&l.fn.attention, "attention"}, {&l.fn.argmax, "argmax_logprob"}, {&l.fn.argmaxPartial, "argmax_partial"},
			{&l.fn.logsoftmax, "log_softmax"}, {&l.fn.fill, "fill_weights"}, {&l.fn.advance, "advance_pos"},
			{&l.fn.read, "read_bytes"},
			{&l.fn.scoreRows, "score_rows"}, {&l.fn.matmul, "matmul"}, {&l.fn.embedRows, "embed_rows"}, {&l.fn.ropeRows, "rope_rows"}, {&l.fn.attentionRows, "attention_rows"},
		} {
			if *k.f, err = m.Function(k.name); err != nil {
				return fmt.Errorf("gpu: llama.ptx: kernel %s: %v", k.name, err)
			}
		}
		if r := C.taobox_stream(&l.stream); r != C.CUDA_SUCCESS {
			return fmt.Errorf("gpu: llama: creating a stream: CUDA error %d", int(r))
		}
		if l.wmem, err = alloc("llama weights", wbytes); err != nil {
			return err
		}
		if l.smem, err = alloc("llama state (KV cache, activations)", l.sbytes); err != nil {
			return err
		}
		for i, s := range sizes {
			*s.p = l.smem + cu.DevicePtr(offs[i])
		}
		l.resolve()
		if err := cu.MemsetD8(l.smem, 0, l.sbytes); err != nil {
			return fmt.Errorf("gpu: llama: clearing state: %v", err)
		}
		rt := ropeTable(c)
		if err := cu.MemcpyHtoD(l.rope, unsafe.Pointer(&rt[0]), int64(len(rt))*4); err != nil {
			return fmt.Errorf("gpu: llama: uploading the RoPE table: %v", err)
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// llamaAttnThreads is the attention kernel's block size: one block per
// head, one thread per position for the scores, blockDim/hs groups for the
// weighted sum of the values.
const llamaAttnThreads = 1024

// argmaxChunk is the number of logits one argmax_partial block scans.
const argmaxChunk = 512

func argmaxBlocks(vocab int) int { return (vocab + argmaxChunk - 1) / argmaxChunk }

// argmax enqueues the greedy choice over the logits: the id goes to
// toks[pos+1], its log-prob (float64) to lps[pos+1], pos the device's
// current position.
func (l *Llama) argmax() error {
	v := l.cfg.VocabSize
	nb := argmaxBlocks(v)
	if err := l.launch(l.fn.argmaxPartial, "argmax_partial", nb, 256, 0,
		uint64(l.logits), uint64(v), argmaxChunk, uint64(l.pv), uint64(l.pi), uint64(l.ps)); err != nil {
		return err
	}
	return l.launch(l.fn.argmax, "argmax_logprob", 1, 256, 0,
		uint64(l.pv), uint64(l.pi), uint64(l.ps), uint64(nb), uint64(v), uint64(l.toks), uint64(l.lps), uint64(l.posp))
}

func alloc(what string, n int64) (cu.DevicePtr, error) {
	p, err := cu.MemAlloc(n)
	if err == cu.OutOfMemory {
		free, total, _ := cu.MemInfo()
		return 0, fmt.Errorf("%w: %s need %d bytes, %d of %d are free; use a smaller or more quantized model, or stop other GPU processes (nvidia-smi)", ErrOutOfMemory, what, n, free, total)
	}
	if err != nil {
		return 0, fmt.Errorf("gpu: allocating %d bytes for %s: %v", n, what, err)
	}
	return p, nil
}

// Config returns the model's hyper-parameters.
func (l *Llama) Config() model.Config { return l.cfg }

// MemBytes returns the device memory the model holds: weights, KV cache,
// activations and scratch.
func (l *Llama) MemBytes() int64 { return l.wbytes + l.sbytes }

// WeightBytes returns the bytes of the weights on the device.
func (l *Llama) WeightBytes() int64 { return l.wbytes }

// launch runs kernel fn with 64-bit parameters vals (inside Do), through
// taobox_launch: cu.Function is a struct holding only the CUfunction handle.
func (l *Llama) launch(fn cu.Function, name string, grid, block, shared int, vals ...uint64) error {
	return l.launchAs(false, fn, name, grid, block, shared, vals...)
}

// launchAs is launch, programmatically dependent on the kernel before it
// when pdl (the kernel must call pdl_wait before reading what that kernel
// writes).
func (l *Llama) launchAs(pdl bool, fn cu.Function, name string, grid, block, shared int, vals ...uint64) error {
	if len(vals) > len(l.argv) {
		return fmt.Errorf("gpu: llama: %s: %d parameters", name, len(vals))
	}
	for i, v := range vals {
		l.argv[i] = C.ulonglong(v)
	}
	f := *(*C.CUfunction)(unsafe.Pointer(&fn))
	var r C.CUresult
	if pdl {
		r = C.taobox_launch_pdl(f, C.uint(grid), C.uint(block), C.uint(shared), l.stream, &l.argv[0], C.int(len(vals)))
	} else {
		r = C.taobox_launch(f, C.uint(grid), 1, C.uint(block), C.uint(shared), l.stream, &l.argv[0], C.int(len(vals)))
	}
	if r != C.CUDA_SUCCESS {
		return fmt.Errorf("gpu: llama: launching %s: CUDA error %d", name, int(r))
	}
	return nil
}

// launchRows launches fn (not programmatically dependent) on a grid of
// grid × rows blocks: the batched prompt's kernels take the batch row from
// blockIdx.y.
func (l *Llama) launchRows(fn cu.Function, name string, grid, rows, block, shared int, vals ...uint64) error {
	if len(vals) > len(l.argv) {
		return fmt.Errorf("gpu: llama: %s: %d parameters", name, len(vals))
	}
	for i, v := range vals {
		l.argv[i] = C.ulonglong(v)
	}
	f := *(*C.CUfunction)(unsafe.Pointer(&fn))
	if r := C.taobox_launch(f, C.uint(grid), C.uint(rows), C.uint(block), C.uint(shared), l.stream, &l.argv[0], C.int(len(vals))); r != C.CUDA_SUCCESS {
		return fmt.Errorf("gpu: llama: launching %s: CUDA error %d", name, int(r))
	}
	return nil
}

// wpr chooses how many warps share a row group (1, 2, 4 or 8) so that a
// product of `rows` groups gives each SM at least l.warps warps (16;
// TAOBOX_LLAMA_WARPS overrides).
func (l *Llama) wpr(rows int) int {
	w := 1
	for w < 8 && rows*w < l.sms*l.warps {
		w *= 2
	}
	return w
}

// span is the prefetch range from the start of tensor a to the end of b,
// at most llamaPrefetchMax bytes (0 when prefetching is off).
func (l *Llama) span(a, b string) pfRange {
	ta, tb := l.byName[a], l.byName[b]
	if ta == nil || tb == nil || !l.prefetch {
		return pfRange{}
	}
	n := tb.off + tb.bytes - ta.off
	return pfRange{dptr(l.wmem, ta.off), uint64(min(n, llamaPrefetchMax))}
}

func (l *Llama) w(name string) devW {
	t, ok := l.byName[name]
	if !ok {
		return devW{}
	}
	return devW{dptr(l.wmem, t.off), ktype(t.typ)}
}

// resolve computes the device addresses of the weights (after wmem exists).
func (l *Llama) resolve() {
	c := l.cfg
	l.emb = l.w("token_embd.weight")
	l.outNorm = l.w("output_norm.weight")
	if c.SharedClassifier {
		l.cls = l.emb
	} else {
		l.cls = l.w("output.weight")
	}
	if c.SharedClassifier {
		l.clsPF = l.span("token_embd.weight", "token_embd.weight")
	} else {
		l.clsPF = l.span("output.weight", "output.weight")
	}
	l.layers = make([]llamaLayer, c.NLayers)
	for i := range l.layers {
		p := fmt.Sprintf("blk.%d.", i)
		l.layers[i] = llamaLayer{
			attnNorm: l.w(p + "attn_norm.weight"), q: l.w(p + "attn_q.weight"), k: l.w(p + "attn_k.weight"),
			v: l.w(p + "attn_v.weight"), o: l.w(p + "attn_output.weight"), ffnNorm: l.w(p + "ffn_norm.weight"),
			gate: l.w(p + "ffn_gate.weight"), up: l.w(p + "ffn_up.weight"), down: l.w(p + "ffn_down.weight"),
			bq: l.w(p + "attn_q.bias").p, bk: l.w(p + "attn_k.bias").p, bv: l.w(p + "attn_v.bias").p,
			qkvPF:    l.span(p+"attn_q.weight", p+"attn_v.weight"),
			oPF:      l.span(p+"attn_output.weight", p+"attn_output.weight"),
			gateupPF: l.span(p+"ffn_gate.weight", p+"ffn_up.weight"),
			downPF:   l.span(p+"ffn_down.weight", p+"ffn_down.weight"),
		}
	}
}

// mvSeg is one of the up to three stacked products of a matvec3 launch.
type mvSeg struct {
	w, t, y, b uint64 // weight, type, output, bias (0: none)
	rows       int
}

func isQuant(t uint64) bool {
	return t == uint64(gguf.TypeQ8_0) || t == uint64(gguf.TypeQ4_0)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// prep enqueues prep_input: the input of the next product, RMSNorm(x)*normw
// (normw != 0), silu(x)*glu (glu != 0) or x itself, and its Q8 blocks in
// l.xq/l.xd when quant. It returns the input's address.
// Further blocks prefetch pf into L2.
func (l *Llama) prep(x, normw, glu uint64, n int, quant bool, pf pfRange) (uint64, error) {
	out := x
	if normw != 0 || glu != 0 {
		out = uint64(l.xin)
	} else if !quant && pf.n == 0 {
		return x, nil
	}
	xq, xd := uint64(0), uint64(0)
	if quant {
		xq, xd = uint64(l.xq), uint64(l.xd)
	}
	err := l.launch(l.fn.prep, "prep_input", (n+255)/256+l.pfBlocks(pf, 256), 256, 0,
		x, normw, glu, l.eps, uint64(n), out, xq, xd, pf.p, pf.n)
	return out, err
}

// pfBlocks is the number of extra blocks of threads threads that prefetch
// pf: one 128-byte line per thread, at most two blocks per SM.
func (l *Llama) pfBlocks(pf pfRange, threads int) int {
	if pf.n == 0 {
		return 0
	}
	return min(int((pf.n+uint64(threads)*128-1)/(uint64(threads)*128)), 2*l.sms)
}

// mvOpts says how product prepares its input and writes its output.
type mvOpts struct {
	normw      uint64  // RMSNorm weight of the input (0: the input as is)
	gluIn      uint64  // the input is silu(x)*gluIn (made by prep_input)
	glu        bool    // segments 0, 1 are gate, up: y0 = silu(gate·x)*(up·x)
	accumulate bool    // y += W·x (the residual add)
	kvstride   int     // > 0: segments 1, 2 write the K, V cache rows at *posp
	rope       bool    // segments 0, 1 are q, k: rotate them if the product can
	pf         pfRange // L2 prefetch by a prep_input launch (none when the product normalizes x itself)
}

// maxFusedShared bounds the products' dynamic shared memory: the default
// limit without opting in to more is 48 KiB for static and dynamic
// together, and the kernels' static arrays take up to 256 bytes.
const maxFusedShared = 47 << 10

// fusedShared is the dynamic shared memory of a product that normalizes
// its n-value input itself (and quantizes it when quant), 0 if it cannot.
func fusedShared(n int, quant bool) int {
	b := n * 4
	if quant {
		b += n + n/32*4
	}
	if b > maxFusedShared {
		return 0
	}
	return b
}

// product enqueues up to three stacked products sharing the input x of n
// values (see matvec3 in kernels/llama.cu): with l.fuse the RMSNorm (and
// Q8 blocks) of x are made by the product's own blocks, otherwise by a
// prep_input launch first, as they are for unnormalized Q8_0/Q4_0 inputs.
func (l *Llama) product(segs []mvSeg, x uint64, n int, o mvOpts) error {
	var s [3]mvSeg
	copy(s[:], segs)
	quant := false
	for _, g := range s {
		if g.rows > 0 && isQuant(g.t) {
			quant = true
		}
	}
	shared, normw := 0, uint64(0)
	if o.normw != 0 && l.fuse {
		if shared = fusedShared(n, quant); shared > 0 {
			normw = o.normw
		}
	}
	if normw == 0 && (o.normw != 0 || o.gluIn != 0 || quant || o.pf.n > 0) {
		in, err := l.prep(x, o.normw, o.gluIn, n, quant, o.pf)
		if err != nil {
			return err
		}
		x = in
	}
	R := l.rowsPerGroup(s, o.glu)
	var cs, hs uint64
	if o.rope {
		if !l.fusedRope(R) {
			return fmt.Errorf("gpu: llama: a product with %d rows per group cannot apply RoPE", R)
		}
		cs, hs = uint64(l.rope), uint64(l.cfg.HeadSize())
	}
	name := [...]string{1: "matvec3", 2: "matvec3x2", 4: "matvec3x4"}[R]
	fn := l.fn.matvec[R]
	groups := (s[0].rows + s[1].rows + s[2].rows + R - 1) / R
	if o.glu {
		groups = s[0].rows / (R / 2)
	}
	wpr := l.wpr(groups)
	if l.forceWpr > 0 {
		wpr = l.forceWpr
	}
	// One wave of resident blocks looping over the rows.
	key := occKey{R, shared}
	occ, ok := l.occ[key]
	if !ok {
		var b C.int
		f := *(*C.CUfunction)(unsafe.Pointer(&fn))
		if r := C.taobox_occupancy(f, 256, C.int(shared), &b); r != C.CUDA_SUCCESS || b < 1 {
			b = 3
		}
		occ = int(b)
		l.occ[key] = occ
	}
	grid := min((groups*wpr+7)/8, l.sms*occ*max(l.gridScale, 1))
	var kvp uint64
	if o.kvstride > 0 {
		kvp = uint64(l.posp)
	}
	return l.launchAs(l.pdl, fn, name, grid, 256, shared,
		s[0].w, s[0].t, s[0].y, s[0].b, uint64(s[0].rows),
		s[1].w, s[1].t, s[1].y, s[1].b, uint64(s[1].rows),
		s[2].w, s[2].t, s[2].y, s[2].b, uint64(s[2].rows),
		x, uint64(l.xq), uint64(l.xd), uint64(n), b2u(o.accumulate), uint64(wpr), kvp, uint64(o.kvstride),
		normw, l.eps, b2u(quant && normw != 0), b2u(o.glu), cs, hs)
}

// fusedRope reports whether the q/k/v product, computing R rows per group,
// also applies RoPE (llama's pairing only: a pair is two adjacent rows).
func (l *Llama) fusedRope(R int) bool {
	return l.fuse && l.neox == 0 && R%2 == 0
}

// rowsPerGroup is how many rows each warp group of a product computes at
// once: l.rows (TAOBOX_LLAMA_ROWS), at least 2 for the SwiGLU pairs, and
// less where a group's rows would straddle two segments or two types.
func (l *Llama) rowsPerGroup(s [3]mvSeg, glu bool) int {
	R := l.rows
	if glu {
		R = max(R, 2)
		for R > 2 && s[0].rows%(R/2) != 0 {
			R /= 2
		}
		return R
	}
	last := 0 // the last segment with rows
	for i, g := range s {
		if g.rows > 0 {
			last = i
		}
	}
	for R > 1 {
		ok := true
		for i, g := range s {
			if g.rows == 0 {
				continue
			}
			if g.t != s[0].t || (i < last && g.rows%R != 0) {
				ok = false
			}
		}
		if ok {
			break
		}
		R /= 2
	}
	return max(R, 1)
}

// occKey keys the occupancy cache: a kernel and its dynamic shared memory.
type occKey struct {
	rows   int // rows per warp group
	shared int
}

// step enqueues one token's forward pass at the device's current position
// pos (*posp) for the token toks[pos]; with logits false the classifier is
// skipped (prompt tokens before the last). The launches do not depend on
// pos, so a step can be captured once as a CUDA graph. Inside Do.
func (l *Llama) step(logits bool) error {
	c := l.cfg
	dim, hidden, kvDim, hs, seq := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize(), c.SeqLen
	x, xb, q, hb, hb2 := uint64(l.x), uint64(l.xb), uint64(l.q), uint64(l.hb), uint64(l.hb2)
	posp := uint64(l.posp)
	if err := l.launch(l.fn.embed, "embed", (dim+255)/256, 256, 0, l.emb.p, l.emb.t, uint64(l.toks), posp, x, uint64(dim)); err != nil {
		return err
	}
	attShared := l.attnShared()
	for layer := range l.layers {
		w := &l.layers[layer]
		kc, vc := l.kvCache(layer)
		qkv := [3]mvSeg{{w.q.p, w.q.t, q, w.bq, dim}, {w.k.p, w.k.t, kc, w.bk, kvDim}, {w.v.p, w.v.t, vc, w.bv, kvDim}}
		rope := l.fusedRope(l.rowsPerGroup(qkv, false))
		if err := l.product(qkv[:], x, dim, mvOpts{normw: w.attnNorm.p, kvstride: kvDim, rope: rope, pf: w.qkvPF}); err != nil {
			return err
		}
		if !rope {
			if err := l.launch(l.fn.rope, "rope_pairs", (dim/2+255)/256, 256, 0,
				q, kc, uint64(l.rope), posp, uint64(dim), uint64(kvDim), uint64(hs), l.neox); err != nil {
				return err
			}
		}
		if err := l.launch(l.fn.attention, "attention", c.NHeads+l.pfBlocks(w.oPF, l.attnThreads), l.attnThreads, attShared,
			q, kc, vc, uint64(l.att), xb,
			posp, uint64(hs), uint64(kvDim), uint64(c.NHeads/c.NKVHeads), uint64(seq), uint64(c.NHeads), w.oPF.p, w.oPF.n); err != nil {
			return err
		}
		if err := l.product([]mvSeg{{w.o.p, w.o.t, x, 0, dim}}, xb, dim, mvOpts{accumulate: true}); err != nil {
			return err
		}
		// FFN: gate and up in one launch (with l.fuse their SwiGLU too,
		// into hb), then down of the SwiGLU with the residual added.
		glu := l.fuse && w.gate.t == w.up.t
		if err := l.product([]mvSeg{{w.gate.p, w.gate.t, hb, 0, hidden}, {w.up.p, w.up.t, hb2, 0, hidden}},
			x, dim, mvOpts{normw: w.ffnNorm.p, glu: glu, pf: w.gateupPF}); err != nil {
			return err
		}
		down := mvOpts{accumulate: true, pf: w.downPF}
		if !glu {
			down.gluIn = hb2
		}
		if err := l.product([]mvSeg{{w.down.p, w.down.t, x, 0, dim}}, hb, hidden, down); err != nil {
			return err
		}
	}
	if !logits {
		return nil
	}
	return l.product([]mvSeg{{l.cls.p, l.cls.t, uint64(l.logits), 0, c.VocabSize}}, x, dim, mvOpts{normw: l.outNorm.p, pf: l.clsPF})
}

// kvCache returns the addresses of layer's key and value caches ([seq][kvDim]
// floats each).
func (l *Llama) kvCache(layer int) (kc, vc uint64) {
	off := int64(layer) * int64(l.cfg.SeqLen) * int64(l.cfg.KVDim()) * 4
	return dptr(l.kc, off), dptr(l.vc, off)
}

// attnShared is the attention kernels' dynamic shared memory: the head's
// query and G = attnThreads/hs partial outputs (hs floats each).
func (l *Llama) attnShared() int {
	hs := l.cfg.HeadSize()
	return (hs + max(1, l.attnThreads/hs)*hs) * 4
}

func (l *Llama) advance() error {
	return l.launch(l.fn.advance, "advance_pos", 1, 32, 0, uint64(l.posp))
}

// promptStep runs a prompt token without logits and advances; decodeStep
// runs the token at pos with logits, picks the next token into toks[pos+1]
// and advances. Both are replayed from a CUDA graph captured on first use
// (unless TAOBOX_LLAMA_GRAPHS=0).
func (l *Llama) promptStep() error {
	return l.replay(&l.promptG, func() error {
		if err := l.step(false); err != nil {
			return err
		}
		return l.advance()
	})
}

func (l *Llama) decodeStep() error {
	return l.replay(&l.decodeG, func() error {
		if err := l.step(true); err != nil {
			return err
		}
		if err := l.argmax(); err != nil {
			return err
		}
		return l.advance()
	})
}

func (l *Llama) replay(g *C.CUgraphExec, body func() error) error {
	if !l.graphs {
		return body()
	}
	if *g == nil {
		exec, err := l.capture(body)
		if err != nil && l.pdl {
			// A driver that cannot capture programmatic launches: capture
			// plain ones (pdl_wait is then a no-op).
			l.pdl = false
			exec, err = l.capture(body)
		}
		if err != nil {
			return err
		}
		*g = exec
	}
	if r := C.taobox_graph_launch(*g, l.stream); r != C.CUDA_SUCCESS {
		return fmt.Errorf("gpu: llama: launching a graph: CUDA error %d", int(r))
	}
	return nil
}

// capture records body's launches on the stream as a graph and
// instantiates it.
func (l *Llama) capture(body func() error) (C.CUgraphExec, error) {
	if r := C.taobox_capture_begin(l.stream); r != C.CUDA_SUCCESS {
		return nil, fmt.Errorf("gpu: llama: starting a graph capture: CUDA error %d", int(r))
	}
	err := body()
	var exec C.CUgraphExec
	r := C.taobox_capture_end(l.stream, &exec)
	if err != nil {
		return nil, err
	}
	if r != C.CUDA_SUCCESS {
		return nil, fmt.Errorf("gpu: llama: capturing a decode step as a graph: CUDA error %d (TAOBOX_LLAMA_GRAPHS=0 launches kernels one by one)", int(r))
	}
	return exec, nil
}

// setPos sets the device's current position (a synchronous copy, ordered
// with the stream).
func (l *Llama) setPos(pos int) error {
	p := int64(pos)
	if err := cu.MemcpyHtoD(l.posp, unsafe.Pointer(&p), 8); err != nil {
		return fmt.Errorf("gpu: llama: %v", err)
	}
	return nil
}

func (l *Llama) checkOpen() error {
	if l.closed {
		return errors.New("gpu: llama: model is closed")
	}
	return nil
}

// Forward runs one token at position pos (using and extending the KV cache
// for positions < pos, as model.Model.Forward) and returns the logits. The
// slice is owned by l and overwritten by the next call.
func (l *Llama) Forward(token, pos int) ([]float32, error) {
	c := l.cfg
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if token < 0 || token >= c.VocabSize {
		return nil, fmt.Errorf("gpu: llama: token %d outside the vocabulary [0,%d)", token, c.VocabSize)
	}
	if pos < 0 || pos >= c.SeqLen {
		return nil, fmt.Errorf("gpu: llama: %w: %d not in [0,%d)", model.ErrPosition, pos, c.SeqLen)
	}
	err := l.d.Do(func() error {
		t := int64(token)
		if err := cu.MemcpyHtoD(l.toks+cu.DevicePtr(pos*8), unsafe.Pointer(&t), 8); err != nil {
			return fmt.Errorf("gpu: llama: %v", err)
		}
		return l.stepLogits(pos, "forward")
	})
	if err != nil {
		return nil, err
	}
	return l.hostLogits, nil
}

// stepLogits runs one position's step at pos (its token already on the
// device) with the logits, and downloads them into l.hostLogits; what
// names the caller in errors. It runs inside l.d.Do.
func (l *Llama) stepLogits(pos int, what string) error {
	if err := l.setPos(pos); err != nil {
		return err
	}
	if err := l.step(true); err != nil {
		return err
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&l.hostLogits[0]), l.logits, int64(l.Config().VocabSize)*4); err != nil {
		return fmt.Errorf("gpu: llama: %s: %v", what, err)
	}
	return nil
}

// Feed runs tokens at positions pos, pos+1, … (the KV cache holds the
// positions below pos, as Forward and earlier Feeds leave it) and returns
// the last position's logits, owned by l and overwritten by the next call,
// as Forward's. All but the last token go through the batched prompt path
// in chunks (token by token with TAOBOX_LLAMA_BATCH=0); the last is a
// Forward step. The runner's llama.sample feeds a miner's prompt this way.
func (l *Llama) Feed(tokens []int, pos int) ([]float32, error) {
	c := l.cfg
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, errors.New("gpu: llama: feed: no tokens")
	}
	if pos < 0 || pos+len(tokens) > c.SeqLen {
		return nil, fmt.Errorf("gpu: llama: feed: %w: %d tokens at %d do not fit a context of %d", model.ErrPosition, len(tokens), pos, c.SeqLen)
	}
	toks := make([]int64, len(tokens))
	for i, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return nil, fmt.Errorf("gpu: llama: feed: token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
		toks[i] = int64(t)
	}
	last := pos + len(tokens) - 1
	err := l.d.Do(func() error {
		if err := cu.MemcpyHtoD(l.toks+cu.DevicePtr(pos*8), unsafe.Pointer(&toks[0]), int64(len(toks))*8); err != nil {
			return fmt.Errorf("gpu: llama: feed: %v", err)
		}
		if l.batch > 0 {
			for pos0, T := pos, 0; pos0 < last; pos0 += T {
				T = llamaChunkRows(c, pos0, min(l.batch, last-pos0), l.attScratch)
				if err := l.promptChunk(pos0, T, false); err != nil {
					return err
				}
			}
		} else {
			if err := l.setPos(pos); err != nil {
				return err
			}
			for range last - pos {
				if err := l.promptStep(); err != nil {
					return err
				}
			}
		}
		return l.stepLogits(last, "feed")
	})
	if err != nil {
		return nil, err
	}
	return l.hostLogits, nil
}

// LogSoftmax returns log-softmax (float64, natural log) of the logits of the
// last Forward or Generate step, computed on the device.
func (l *Llama) LogSoftmax() ([]float64, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	out := make([]float64, l.cfg.VocabSize)
	err := l.d.Do(func() error {
		if err := l.launch(l.fn.logsoftmax, "log_softmax", 1, 1024, 0, uint64(l.logits), uint64(l.cfg.VocabSize), uint64(l.lsm)); err != nil {
			return err
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&out[0]), l.lsm, int64(len(out))*8); err != nil {
			return fmt.Errorf("gpu: llama: log-softmax: %v", err)
		}
		return nil
	})
	return out, err
}

// Generate feeds prompt from position 0 and then generates n tokens
// greedily (argmax, lowest id on ties, as model.Argmax), returning the ids
// and each one's log-prob (log-softmax in float64, as model.LogProb). Like
// model.Model.Generate it stops early only at the end of the context. The
// whole generation is enqueued without host round trips (each step's token
// id stays on the device) and synchronized once.
func (l *Llama) Generate(prompt []int, n int) ([]int, []float64, error) {
	c := l.cfg
	if err := l.checkOpen(); err != nil {
		return nil, nil, err
	}
	if len(prompt) == 0 {
		return nil, nil, errors.New("gpu: llama: generate: empty prompt")
	}
	if n < 0 {
		return nil, nil, fmt.Errorf("gpu: llama: generate: negative token count %d", n)
	}
	if len(prompt) > c.SeqLen {
		return nil, nil, fmt.Errorf("gpu: llama: generate: %w: prompt of %d tokens exceeds context %d", model.ErrPosition, len(prompt), c.SeqLen)
	}
	toks := make([]int64, len(prompt))
	for i, t := range prompt {
		if t < 0 || t >= c.VocabSize {
			return nil, nil, fmt.Errorf("gpu: llama: generate: prompt token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
		toks[i] = int64(t)
	}
	if room := c.SeqLen - len(prompt) + 1; n > room {
		n = room
	}
	ids := make([]int64, n)
	lps := make([]float64, n)
	err := l.d.Do(func() error {
		if err := l.enqueueGenerate(toks, n); err != nil {
			return err
		}
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: llama: generate: %v", err)
		}
		if n == 0 {
			return nil
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&ids[0]), l.toks+cu.DevicePtr(len(prompt)*8), int64(n)*8); err != nil {
			return fmt.Errorf("gpu: llama: generate: %v", err)
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&lps[0]), l.lps+cu.DevicePtr(len(prompt)*8), int64(n)*8); err != nil {
			return fmt.Errorf("gpu: llama: generate: %v", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]int, n)
	for i, id := range ids {
		out[i] = int(id)
	}
	return out, lps, nil
}

// enqueueGenerate uploads the prompt and enqueues the prompt steps and n
// decode steps (inside Do; no synchronization).
func (l *Llama) enqueueGenerate(prompt []int64, n int) error {
	if err := l.enqueuePrompt(prompt); err != nil {
		return err
	}
	return l.enqueueDecode(n)
}

// enqueuePrompt uploads the prompt to toks[0..], sets the position to 0
// and runs all but the last prompt token (that one is the first decode
// step's).
func (l *Llama) enqueuePrompt(prompt []int64) error {
	if err := cu.MemcpyHtoD(l.toks, unsafe.Pointer(&prompt[0]), int64(len(prompt))*8); err != nil {
		return fmt.Errorf("gpu: llama: uploading the prompt: %v", err)
	}
	if l.batch > 0 {
		for pos0, T := 0, 0; pos0 < len(prompt)-1; pos0 += T {
			T = llamaChunkRows(l.cfg, pos0, min(l.batch, len(prompt)-1-pos0), l.attScratch)
			if err := l.promptChunk(pos0, T, false); err != nil {
				return err
			}
		}
		return l.setPos(len(prompt) - 1)
	}
	if err := l.setPos(0); err != nil {
		return err
	}
	for range len(prompt) - 1 {
		if err := l.promptStep(); err != nil {
			return err
		}
	}
	return nil
}

// promptChunk enqueues the forward pass of the T tokens at positions
// pos0.. (toks[pos0..] on the device; the KV cache holds the positions
// before pos0) as one batch: every product is a matmul over the T rows,
// attention is causal within them, and their K and V rows are written to
// the cache. T ≤ batchCap, and llamaChunkRows(pos0, T) == T (the attention
// scratch holds them). With logits (T ≤ logitRows), the logits of all T
// rows go to blogits. Inside Do.
func (l *Llama) promptChunk(pos0, T int, logits bool) error {
	c := l.cfg
	dim, hidden, kvDim, hs := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize()
	X, XB, Q, HB, HB2 := uint64(l.bx), uint64(l.bxb), uint64(l.bq), uint64(l.bhb), uint64(l.bhb2)
	if err := l.launchRows(l.fn.embedRows, "embed_rows", (dim+255)/256, T, 256, 0,
		l.emb.p, l.emb.t, uint64(l.toks), uint64(pos0), X, uint64(dim)); err != nil {
		return err
	}
	attShared := l.attnShared()
	for layer := range l.layers {
		w := &l.layers[layer]
		kc, vc := l.kvCache(layer)
		kvRow := int64(pos0) * int64(kvDim) * 4
		if err := l.prepRows(X, w.attnNorm.p, 0, dim, T, XB, w.q, w.k, w.v); err != nil {
			return err
		}
		for _, p := range []struct {
			w       devW
			rows    int
			y, bias uint64
			ld      int
		}{{w.q, dim, Q, w.bq, dim}, {w.k, kvDim, kc + uint64(kvRow), w.bk, kvDim}, {w.v, kvDim, vc + uint64(kvRow), w.bv, kvDim}} {
			if err := l.matmul(p.w, p.rows, dim, XB, T, p.y, p.ld, p.bias, false); err != nil {
				return err
			}
		}
		if err := l.launchRows(l.fn.ropeRows, "rope_rows", (dim/2+255)/256, T, 256, 0,
			Q, kc, uint64(l.rope), uint64(pos0), uint64(dim), uint64(kvDim), uint64(hs), l.neox); err != nil {
			return err
		}
		if err := l.launchRows(l.fn.attentionRows, "attention_rows", c.NHeads, T, l.attnThreads, attShared,
			Q, kc, vc, uint64(l.batt), XB, uint64(pos0), uint64(hs), uint64(kvDim), uint64(c.NHeads/c.NKVHeads), uint64(pos0+T), uint64(c.NHeads), uint64(dim)); err != nil {
			return err
		}
		if err := l.prepRows(XB, 0, 0, dim, T, 0, w.o); err != nil {
			return err
		}
		if err := l.matmul(w.o, dim, dim, XB, T, X, dim, 0, true); err != nil {
			return err
		}
		if err := l.prepRows(X, w.ffnNorm.p, 0, dim, T, XB, w.gate, w.up); err != nil {
			return err
		}
		if err := l.matmul(w.gate, hidden, dim, XB, T, HB, hidden, 0, false); err != nil {
			return err
		}
		if err := l.matmul(w.up, hidden, dim, XB, T, HB2, hidden, 0, false); err != nil {
			return err
		}
		if err := l.prepRows(HB, 0, HB2, hidden, T, HB, w.down); err != nil {
			return err
		}
		if err := l.matmul(w.down, dim, hidden, HB, T, X, dim, 0, true); err != nil {
			return err
		}
	}
	if !logits {
		return nil
	}
	if err := l.prepRows(X, l.outNorm.p, 0, dim, T, XB, l.cls); err != nil {
		return err
	}
	return l.matmul(l.cls, c.VocabSize, dim, XB, T, uint64(l.blogits), c.VocabSize, 0, false)
}

// prepRows makes the T input rows (n values each) of the products of ws
// with prep_input: out = RMSNorm(x)*normw, or SwiGLU silu(x)*glu, or x
// itself (neither: out is not written), and their Q8 blocks in bxq/bxd
// when one of ws is Q8_0 or Q4_0. Nothing is launched when there is
// nothing to make.
func (l *Llama) prepRows(x, normw, glu uint64, n, T int, out uint64, ws ...devW) error {
	quant := false
	for _, w := range ws {
		quant = quant || isQuant(w.t)
	}
	if normw == 0 && glu == 0 && !quant {
		return nil
	}
	var xq, xd uint64
	if quant {
		xq, xd = uint64(l.bxq), uint64(l.bxd)
	}
	return l.launchRows(l.fn.prep, "prep_input", (n+255)/256, T, 256, 0,
		x, normw, glu, l.eps, uint64(n), out, xq, xd, 0, 0)
}

// matmul enqueues y[c*ld + r] = W_r·in_c (+ bias[r]), or += with acc, for
// the rows r < rows of w (row length n) and the T inputs: in's rows (n
// floats apart) for F32/F16/BF16 weights, their Q8 blocks (prepRows) for
// Q8_0/Q4_0.
func (l *Llama) matmul(w devW, rows, n int, in uint64, T int, y uint64, ld int, bias uint64, acc bool) error {
	return l.launchRows(l.fn.matmul, "matmul", (rows+llamaMMRows-1)/llamaMMRows, (T+llamaMMCols-1)/llamaMMCols, 256, 0,
		w.p, w.t, uint64(n), uint64(rows), in, uint64(l.bxq), uint64(l.bxd), uint64(T), y, uint64(ld), bias, b2u(acc))
}

// Score is the validator's teacher-forced pass (model.AccelScorer): ids
// from position 0 (replacing the KV cache) through the batched prompt
// path, and on the device for each position p ≥ from-1 the log-prob of
// ids[p+1] and, with ranks, the count of tokens ahead of it by more than
// margin (score_rows, as model.LogProbAhead), and the log-softmax at each
// position in qs; only those cross back. Arguments as model.CheckScore
// takes them. With batching off (TAOBOX_LLAMA_BATCH=0) it is
// model.ScoreForward over Forward. The device's position is left at
// len(ids)-1; Forward and Generate set their own.
func (l *Llama) Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	c := l.cfg
	if err := l.checkOpen(); err != nil {
		return nil, nil, nil, err
	}
	if err := model.CheckScore(c.VocabSize, ids, from, qs, margin); err != nil {
		return nil, nil, nil, fmt.Errorf("gpu: llama: %w", err)
	}
	if len(ids) > c.SeqLen+1 {
		return nil, nil, nil, fmt.Errorf("gpu: llama: score: %w: %d ids exceed the context %d", model.ErrPosition, len(ids), c.SeqLen)
	}
	dists := make([][]float64, len(qs))
	for i := range dists {
		dists[i] = make([]float64, c.VocabSize)
	}
	if l.batch == 0 {
		lps, ahead, err := model.ScoreForward(l.Forward, ids, from, qs, dists, ranks, margin)
		if err != nil {
			return nil, nil, nil, err
		}
		return lps, ahead, dists, nil
	}
	toks := make([]int64, len(ids))
	for i, t := range ids {
		toks[i] = int64(t)
	}
	n := len(ids) - 1 // positions fed: the last id is only a target
	lps := make([]float64, n-(from-1))
	aheads := make([]int64, len(lps))
	err := l.d.Do(func() error {
		if err := cu.MemcpyHtoD(l.toks, unsafe.Pointer(&toks[0]), int64(len(toks))*8); err != nil {
			return fmt.Errorf("gpu: llama: score: uploading the ids: %v", err)
		}
		chunk := min(l.batch, l.logitRows)
		vocab := int64(c.VocabSize)
		for pos0, T := 0, 0; pos0 < n; pos0 += T {
			T = llamaChunkRows(c, pos0, min(chunk, n-pos0), l.attScratch)
			if err := l.promptChunk(pos0, T, true); err != nil {
				return err
			}
			// Rows r0.. of this chunk are positions ≥ from-1.
			r0 := max(0, from-1-pos0)
			if r0 < T {
				rows := T - r0
				if err := l.launch(l.fn.scoreRows, "score_rows", rows, 256, 0,
					dptr(l.blogits, int64(r0)*vocab*4), uint64(vocab), dptr(l.toks, int64(pos0+r0+1)*8), math.Float64bits(margin), uint64(l.blps), uint64(l.bahead)); err != nil {
					return err
				}
				at := pos0 + r0 - (from - 1)
				if err := cu.MemcpyDtoH(unsafe.Pointer(&lps[at]), l.blps, int64(rows)*8); err != nil {
					return fmt.Errorf("gpu: llama: score: %v", err)
				}
				if err := cu.MemcpyDtoH(unsafe.Pointer(&aheads[at]), l.bahead, int64(rows)*8); err != nil {
					return fmt.Errorf("gpu: llama: score: %v", err)
				}
			}
			for i, q := range qs {
				if q < pos0 || q >= pos0+T {
					continue
				}
				if err := l.launch(l.fn.logsoftmax, "log_softmax", 1, 1024, 0, dptr(l.blogits, int64(q-pos0)*vocab*4), uint64(vocab), uint64(l.lsm)); err != nil {
					return err
				}
				if err := cu.MemcpyDtoH(unsafe.Pointer(&dists[i][0]), l.lsm, vocab*8); err != nil {
					return fmt.Errorf("gpu: llama: score: %v", err)
				}
			}
		}
		return l.setPos(n)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var ahead []int
	if ranks {
		ahead = make([]int, len(aheads))
		for i, a := range aheads {
			ahead[i] = int(a)
		}
	}
	return lps, ahead, dists, nil
}

// PromptLogits runs tokens from position 0 (replacing the KV cache) as
// batched prompt chunks and returns the logits at every position, row i
// (VocabSize values) predicting token i+1: a teacher-forced pass, as a
// validator re-scores an answer. With batching off (TAOBOX_LLAMA_BATCH=0)
// it runs Forward at each position instead. The device's position is left
// at len(tokens); Forward and Generate set their own.
func (l *Llama) PromptLogits(tokens []int) ([]float32, error) {
	c := l.cfg
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if len(tokens) == 0 || len(tokens) > c.SeqLen {
		return nil, fmt.Errorf("gpu: llama: prompt logits: %w: %d tokens, context %d", model.ErrPosition, len(tokens), c.SeqLen)
	}
	toks := make([]int64, len(tokens))
	for i, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return nil, fmt.Errorf("gpu: llama: prompt logits: token %d (index %d) outside the vocabulary [0,%d)", t, i, c.VocabSize)
		}
		toks[i] = int64(t)
	}
	out := make([]float32, len(tokens)*c.VocabSize)
	if l.batch == 0 {
		for pos, t := range tokens {
			lg, err := l.Forward(t, pos)
			if err != nil {
				return nil, err
			}
			copy(out[pos*c.VocabSize:], lg)
		}
		return out, nil
	}
	err := l.d.Do(func() error {
		if err := cu.MemcpyHtoD(l.toks, unsafe.Pointer(&toks[0]), int64(len(toks))*8); err != nil {
			return fmt.Errorf("gpu: llama: uploading the prompt: %v", err)
		}
		chunk := min(l.batch, l.logitRows)
		for pos0, T := 0, 0; pos0 < len(toks); pos0 += T {
			T = llamaChunkRows(c, pos0, min(chunk, len(toks)-pos0), l.attScratch)
			if err := l.promptChunk(pos0, T, true); err != nil {
				return err
			}
			if err := cu.MemcpyDtoH(unsafe.Pointer(&out[pos0*c.VocabSize]), l.blogits, int64(T)*int64(c.VocabSize)*4); err != nil {
				return fmt.Errorf("gpu: llama: prompt logits: %v", err)
			}
		}
		return l.setPos(len(toks))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// enqueueDecode enqueues n decode steps: step k runs the token at the
// current position p+k and writes the next one to toks[p+k+1].
func (l *Llama) enqueueDecode(n int) error {
	for range n {
		if err := l.decodeStep(); err != nil {
			return err
		}
	}
	return nil
}

// Reset clears the KV cache and the activations.
func (l *Llama) Reset() error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	return l.d.Do(func() error {
		if err := cu.MemsetD8(l.smem, 0, l.sbytes); err != nil {
			return fmt.Errorf("gpu: llama: reset: %v", err)
		}
		rt := ropeTable(l.cfg)
		if err := cu.MemcpyHtoD(l.rope, unsafe.Pointer(&rt[0]), int64(len(rt))*4); err != nil {
			return fmt.Errorf("gpu: llama: reset: %v", err)
		}
		return nil
	})
}

// Close frees the model's device memory. Later calls return nil.
func (l *Llama) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	return l.d.Do(func() error {
		var errs []error
		for _, g := range []*C.CUgraphExec{&l.decodeG, &l.promptG} {
			if *g != nil {
				C.taobox_graph_destroy(*g)
				*g = nil
			}
		}
		if l.stream != nil {
			if err := cu.Synchronize(); err != nil {
				errs = append(errs, fmt.Errorf("gpu: llama: %v", err))
			}
			C.taobox_stream_destroy(l.stream)
			l.stream = nil
		}
		for _, p := range []*cu.DevicePtr{&l.wmem, &l.smem} {
			if *p != 0 {
				if err := cu.MemFree(*p); err != nil {
					errs = append(errs, fmt.Errorf("gpu: llama: freeing device memory: %v", err))
				}
				*p = 0
			}
		}
		return errors.Join(errs...)
	})
}

// bench times a prompt of prompt tokens one at a time (the baseline) and
// batched (l.batch positions per chunk), then decode greedy tokens.
func (l *Llama) bench(decode, prompt int) (r LlamaBenchResult, err error) {
	c := l.cfg
	prompt, decode = max(prompt, 2), max(decode, 1)
	if prompt+decode > c.SeqLen { // fit the context: shorten, decode first
		if c.SeqLen < 3 {
			return r, fmt.Errorf("gpu: llama bench: context %d too short", c.SeqLen)
		}
		prompt = min(prompt, c.SeqLen/2)
		decode = min(decode, c.SeqLen-prompt)
	}
	toks := make([]int64, prompt)
	for i := range toks {
		toks[i] = int64((i*7919 + 1) % c.VocabSize)
	}
	// Warm-up: the JIT, first launches, clocks, and the capture of the
	// token-by-token prompt's graph (the baseline's) as well as the
	// batched path's kernels.
	// (A prompt of up to two ids and up to four tokens, within any
	// vocabulary and context.)
	warm := []int{1 % c.VocabSize, 2 % c.VocabSize}[:max(1, min(2, c.SeqLen-1))]
	warmN := max(1, min(4, c.SeqLen-len(warm)))
	batch := l.batch
	l.batch = 0
	_, _, err = l.Generate(warm, warmN)
	l.batch = batch
	if err != nil {
		return r, err
	}
	if _, _, err := l.Generate(warm, warmN); err != nil {
		return r, err
	}
	var tp, tps, td, te time.Duration
	err = l.d.Do(func() error {
		if err := cu.Synchronize(); err != nil {
			return err
		}
		batch := l.batch
		l.batch = 0
		t0 := time.Now()
		err := l.enqueuePrompt(toks)
		if err == nil {
			err = cu.Synchronize()
		}
		l.batch = batch
		if err != nil {
			return fmt.Errorf("gpu: llama bench: %v", err)
		}
		tps = time.Since(t0)
		t0 = time.Now()
		if err := l.enqueuePrompt(toks); err != nil {
			return err
		}
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: llama bench: %v", err)
		}
		t1 := time.Now()
		if err := l.enqueueDecode(decode); err != nil {
			return err
		}
		te = time.Since(t1)
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: llama bench: %v", err)
		}
		tp, td = t1.Sub(t0), time.Since(t1)
		return nil
	})
	if err != nil {
		return r, err
	}
	var params int64
	for _, t := range l.tensors {
		params += int64(t.rows) * int64(t.cols)
	}
	r = LlamaBenchResult{
		Shape: shapeString(c), Params: params, WeightBytes: l.wbytes, BytesPerToken: l.bytesPerTok, MemBytes: l.MemBytes(),
		PromptTokens: prompt, DecodeTokens: decode, Graphs: l.graphs, PDL: l.pdl,
		// The prompt's last token is the first decode step's, so prompt-1
		// token steps (no logits) were timed.
		PromptTokPerSec:       float64(prompt-1) / tp.Seconds(),
		PromptSerialTokPerSec: float64(prompt-1) / tps.Seconds(),
		PromptBatch:           l.batch,
		DecodeTokPerSec:       float64(decode) / td.Seconds(),
		PeakGBPerSec:          HBMBandwidth(l.d.Info().Name) / 1e9,
		EnqueueUsPerTok:       float64(te.Microseconds()) / float64(decode),
	}
	r.DecodeGBPerSec = float64(r.BytesPerToken) * r.DecodeTokPerSec / 1e9
	if r.PeakGBPerSec > 0 {
		r.FractionOfPeak = r.DecodeGBPerSec / r.PeakGBPerSec
	}
	if r.ReadGBPerSec, err = l.readCeiling(); err != nil {
		return r, err
	}
	if r.ReadGBPerSec > 0 {
		r.FractionOfRead = r.DecodeGBPerSec / r.ReadGBPerSec
	}
	r.DType = l.dtypeString()
	if r.ScoreMs, r.ScoreForwardMs, err = l.benchScore(toks); err != nil {
		return r, err
	}
	return r, nil
}

// benchScore times a validator's teacher-forced pass over ids (the
// answer: the second half; four spots; ranks): Score in one call, and the
// same pass a Forward per position with the reductions on the host
// (model.ScoreForward: what a runner without llama.score costs, less the
// socket), in milliseconds.
func (l *Llama) benchScore(toks []int64) (oneCall, perPosition float64, err error) {
	ids := make([]int, len(toks))
	for i, t := range toks {
		ids[i] = int(t)
	}
	if len(ids) < 4 {
		return 0, 0, nil
	}
	from := len(ids) / 2
	qs := []int{from - 1, from, (from + len(ids)) / 2, len(ids) - 2}
	if _, _, _, err := l.Score(ids, from, qs, true, 0.3); err != nil { // warm-up
		return 0, 0, err
	}
	t0 := time.Now()
	if _, _, _, err := l.Score(ids, from, qs, true, 0.3); err != nil {
		return 0, 0, err
	}
	oneCall = float64(time.Since(t0).Microseconds()) / 1e3
	dists := make([][]float64, len(qs))
	for i := range dists {
		dists[i] = make([]float64, l.cfg.VocabSize)
	}
	t0 = time.Now()
	if _, _, err := model.ScoreForward(l.Forward, ids, from, qs, dists, true, 0.3); err != nil {
		return 0, 0, err
	}
	return oneCall, float64(time.Since(t0).Microseconds()) / 1e3, nil
}

// readCeiling measures how fast a kernel that only reads can stream the
// weights from device memory (read_bytes over all of them, the median of
// five passes after a warm-up): the bound a decode step, which reads every
// weight once, could reach on this device.
func (l *Llama) readCeiling() (float64, error) {
	n := l.wbytes / 16
	var gbs []float64
	err := l.d.Do(func() error {
		for k := range 6 {
			if err := cu.Synchronize(); err != nil {
				return err
			}
			t0 := time.Now()
			if err := l.launch(l.fn.read, "read_bytes", l.sms*8, 256, 0, uint64(l.wmem), uint64(n), uint64(l.pv)); err != nil { // pv: scratch the next argmax rewrites
				return err
			}
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("gpu: llama: read ceiling: %v", err)
			}
			if k > 0 {
				gbs = append(gbs, float64(n*16)/time.Since(t0).Seconds()/1e9)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.Sort(gbs)
	return gbs[len(gbs)/2], nil
}

func (l *Llama) dtypeString() string {
	seen := map[gguf.GGMLType]bool{}
	s := ""
	for _, t := range l.tensors {
		if !t.norm && !seen[t.typ] {
			seen[t.typ] = true
			if s != "" {
				s += "+"
			}
			s += t.typ.String()
		}
	}
	return s
}

// BenchLlama loads f onto d and measures greedy decode (decode tokens) and
// prompt processing (prompt tokens, batched).
func BenchLlama(d *Device, f *gguf.File, decode, prompt int) (decodeTokPerSec, promptTokPerSec float64, memBytes int64, err error) {
	r, err := BenchLlamaFile(d, f, decode, prompt)
	return r.DecodeTokPerSec, r.PromptTokPerSec, r.MemBytes, err
}

// BenchLlamaFile is BenchLlama with the whole result.
func BenchLlamaFile(d *Device, f *gguf.File, decode, prompt int) (LlamaBenchResult, error) {
	l, err := NewLlama(d, f)
	if err != nil {
		return LlamaBenchResult{}, err
	}
	defer l.Close()
	r, err := l.bench(decode, prompt)
	r.Model = "gguf"
	return r, err
}

// BenchLlamaSynthetic builds a model of shape c with random weights of type
// dtype ("f16", "q8_0", ...) on the device (LlamaBenchConfig gives the
// Llama-3.2-1B-like shape) and measures it as BenchLlama does.
func BenchLlamaSynthetic(d *Device, c model.Config, dtype string, decode, prompt int) (LlamaBenchResult, error) {
	typ, err := ParseLlamaDType(dtype)
	if err != nil {
		return LlamaBenchResult{}, err
	}
	l, err := NewLlamaSynthetic(d, c, typ, 0x5eed)
	if err != nil {
		return LlamaBenchResult{}, err
	}
	defer l.Close()
	r, err := l.bench(decode, prompt)
	r.Model = "synthetic"
	return r, err
}

func init() {
	RegisterSelftest("llama/forward", selftestLlama)
}

// selftestLlama runs each random test model (llamaTestModels) on the CPU
// engine and on the GPU: the 32 greedy tokens must be equal and every
// log-prob within the model's bound; a second GPU run must give identical
// bits; Forward's logits and LogSoftmax are checked against the CPU's too.
// It prints one line per model to stderr with the measured differences.
func selftestLlama(d *Device) error {
	for _, tm := range llamaTestModels() {
		rep, err := checkLlamaModel(d, tm, 32)
		if err != nil {
			return fmt.Errorf("%s: %w", tm.name, err)
		}
		fmt.Fprintf(os.Stderr, "     llama/%s: %s\n", tm.name, rep)
	}
	return nil
}

func checkLlamaModel(d *Device, tm llamaTestModel, n int) (string, error) {
	f, err := tm.file()
	if err != nil {
		return "", err
	}
	cpu, err := model.ModelFromGGUF(f)
	if err != nil {
		return "", err
	}
	wantIDs, wantLPs, err := cpu.Generate(tm.prompt, n)
	if err != nil {
		return "", err
	}
	g, err := NewLlama(d, f)
	if err != nil {
		return "", err
	}
	defer g.Close()
	ids, lps, err := g.Generate(tm.prompt, n)
	if err != nil {
		return "", err
	}
	if len(ids) != len(wantIDs) {
		return "", fmt.Errorf("GPU generated %d tokens, CPU %d", len(ids), len(wantIDs))
	}
	diffs := make([]float64, len(ids))
	for i := range ids {
		if ids[i] != wantIDs[i] {
			return "", fmt.Errorf("token %d: GPU %d, CPU %d (GPU %v, CPU %v)", i, ids[i], wantIDs[i], ids, wantIDs)
		}
		diffs[i] = lps[i] - wantLPs[i]
	}
	maxLP, medLP, err := tm.check(diffs)
	if err != nil {
		return "", fmt.Errorf("%v; per token: %.1e", err, diffs)
	}
	ids2, lps2, err := g.Generate(tm.prompt, n)
	if err != nil {
		return "", err
	}
	for i := range ids2 {
		if ids2[i] != ids[i] || math.Float64bits(lps2[i]) != math.Float64bits(lps[i]) {
			return "", fmt.Errorf("not deterministic: second run differs at token %d", i)
		}
	}
	// Forward and LogSoftmax over the prompt, logits compared elementwise.
	var maxLogit, maxLS float64
	for pos, t := range tm.prompt {
		want, err := cpu.Forward(t, pos)
		if err != nil {
			return "", err
		}
		got, err := g.Forward(t, pos)
		if err != nil {
			return "", err
		}
		for i := range want {
			maxLogit = max(maxLogit, math.Abs(float64(got[i])-float64(want[i])))
		}
		ls, err := g.LogSoftmax()
		if err != nil {
			return "", err
		}
		wls := make([]float64, len(want))
		model.LogSoftmax(wls, want)
		for i := range wls {
			maxLS = max(maxLS, math.Abs(ls[i]-wls[i]))
		}
	}
	const promptBound = 1e-3
	if !(maxLogit <= promptBound) || !(maxLS <= promptBound) {
		return "", fmt.Errorf("Forward over the prompt: max |GPU - CPU| logit %.3g, log-softmax %.3g; bound %g", maxLogit, maxLS, promptBound)
	}
	// The batched prompt: the prompt and the generated tokens, teacher
	// forced, in chunks of 7 positions (several chunks, a short last one),
	// every position's logits against the CPU's Forward. Float models: every
	// position within the prompt's bound. Q8_0/Q4_0: a last-bit difference
	// upstream can move an activation across a Q8 rounding boundary and the
	// KV cache carries it on (under fakecuda q8_0 positions are equal to
	// 1e-6 until such a flip, then differ by up to 0.2, as token-by-token
	// decoding does), so position 0 (no history) within the prompt's bound
	// and the worst within twice the model's token bound; a wrong kernel is
	// off by O(1) everywhere.
	seqToks := append(slices.Clone(tm.prompt), ids...)
	seqToks = seqToks[:min(len(seqToks), g.cfg.SeqLen)]
	saved := g.batch
	g.batch = min(7, g.batchCap)
	all, err := g.PromptLogits(seqToks)
	g.batch = saved
	if err != nil {
		return "", err
	}
	perPos := make([]float64, len(seqToks))
	cpuLogits := make([][]float32, len(seqToks))
	for pos, t := range seqToks {
		want, err := cpu.Forward(t, pos)
		if err != nil {
			return "", err
		}
		cpuLogits[pos] = slices.Clone(want)
		got := all[pos*len(want) : (pos+1)*len(want)]
		for i := range want {
			perPos[pos] = max(perPos[pos], math.Abs(float64(got[i])-float64(want[i])))
		}
	}
	maxBatch := slices.Max(perPos)
	batchMax := promptBound
	if isQuant(ktype(tm.typ)) {
		batchMax = 2 * tm.bound
	}
	if !(maxBatch <= batchMax) || !(perPos[0] <= promptBound) {
		return "", fmt.Errorf("PromptLogits over %d positions in chunks of 7: max |GPU - CPU| logit %.3g (bound %g), at position 0 %.3g (bound %g); per position %.1e",
			len(seqToks), maxBatch, batchMax, perPos[0], promptBound, perPos)
	}
	// Score (the validator's pass on the GPU) against the same pass on the
	// CPU (model.ScoreForward over its Forward): log-probs of the answer
	// within the bound above, the spots' log-softmax too, and for float
	// models the counts ahead (margin 0.5) equal but for logits within 1e-3
	// of the bar, which the engines' last-bit differences may put on either
	// side.
	from := len(tm.prompt)
	qs := []int{from - 1, len(seqToks) - 2, (from + len(seqToks)) / 2}
	g.batch = min(5, g.batchCap)
	glps, gahead, gdists, err := g.Score(seqToks, from, qs, true, 0.5)
	g.batch = saved
	if err != nil {
		return "", err
	}
	wdists := make([][]float64, len(qs))
	for i := range wdists {
		wdists[i] = make([]float64, g.cfg.VocabSize)
	}
	wlps, wahead, err := model.ScoreForward(cpu.Forward, seqToks, from, qs, wdists, true, 0.5)
	if err != nil {
		return "", err
	}
	if len(glps) != len(wlps) || len(gahead) != len(wahead) {
		return "", fmt.Errorf("Score: %d log-probs and %d counts, CPU %d and %d", len(glps), len(gahead), len(wlps), len(wahead))
	}
	var maxScore float64
	for i := range wlps {
		maxScore = max(maxScore, math.Abs(glps[i]-wlps[i]))
		if isQuant(ktype(tm.typ)) {
			continue
		}
		p := from - 1 + i
		bar, near := float64(cpuLogits[p][seqToks[p+1]])+0.5, 0
		for _, v := range cpuLogits[p] {
			if math.Abs(float64(v)-bar) <= 1e-3 {
				near++
			}
		}
		if d := gahead[i] - wahead[i]; d > near || -d > near {
			return "", fmt.Errorf("Score: position %d: %d tokens ahead on the GPU, %d on the CPU (%d logits within 1e-3 of the bar)", p, gahead[i], wahead[i], near)
		}
	}
	for i := range wdists {
		for j := range wdists[i] {
			maxScore = max(maxScore, math.Abs(gdists[i][j]-wdists[i][j]))
		}
	}
	if !(maxScore <= batchMax) {
		return "", fmt.Errorf("Score over %d ids from %d: max |GPU - CPU| %.3g (bound %g)", len(seqToks), from, maxScore, batchMax)
	}
	// Feed (the runner's llama.sample: a miner's prompt batched, then its
	// tokens): the sequence in two calls, in chunks of 7, each call's last
	// logits against the CPU's at that position.
	var maxFeed float64
	g.batch = min(7, g.batchCap)
	for _, span := range [][2]int{{0, len(seqToks) / 2}, {len(seqToks) / 2, len(seqToks)}} {
		if span[0] == span[1] {
			continue
		}
		got, err := g.Feed(seqToks[span[0]:span[1]], span[0])
		if err != nil {
			g.batch = saved
			return "", fmt.Errorf("Feed: %w", err)
		}
		for i, w := range cpuLogits[span[1]-1] {
			maxFeed = max(maxFeed, math.Abs(float64(got[i])-float64(w)))
		}
	}
	g.batch = saved
	if !(maxFeed <= batchMax) {
		return "", fmt.Errorf("Feed of %d tokens in two calls: max |GPU - CPU| logit %.3g (bound %g)", len(seqToks), maxFeed, batchMax)
	}
	mb := tm.median
	if mb == 0 {
		mb = tm.bound
	}
	return fmt.Sprintf("%d tokens equal, |dlogprob| max %.2g (bound %g) median %.2g (bound %g), prompt |dlogit| max %.2g, |dlogsoftmax| max %.2g, batched %d positions |dlogit| max %.2g, Score |dlogprob| max %.2g (bound %g), Feed |dlogit| max %.2g, deterministic",
		len(ids), maxLP, tm.bound, medLP, mb, maxLogit, maxLS, len(seqToks), maxBatch, maxScore, batchMax, maxFeed), nil
}
