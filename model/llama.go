package model

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"
)

// Model is a LLaMA model with its run state (activations and KV cache).
//
// Its weight matrices stay in their file type (F32, F16, Q8_0 or Q4_0; see
// quant.go): with F32 weights it computes exactly what llama2.c's run.c
// computes, in the same float32 operation order, so that its logits are
// bit-comparable with run.c built without FMA contraction. The other types
// multiply against activations quantized once per product to Q8 blocks.
//
// Every output is computed in an order fixed by the model alone, so the
// logits are bit-identical for any thread count, with or without the SIMD
// kernels, between the one-token path (Forward, generation) and the
// batched prompt path (Score, the prompt of Generate and GenerateSampled),
// and between one sequence alone and several decoded together
// (ForwardBatch over Seqs; see batch.go). A Model is not safe for
// concurrent use.
type Model struct {
	Config Config
	// Weights holds the F32 weights the model was built from by NewModel
	// (llama2.c checkpoints). Models loaded from GGUF keep their tensors
	// in the file's types instead and leave Weights zero; F32Weights
	// returns a dequantized copy for either.
	Weights Weights

	layers   []layer
	emb, cls matrix // cls aliases emb when the classifier is tied
	rmsFinal []float32

	// run state for up to maxBatch tokens, token t at [t*width:], allocated once
	x, xb, xb2 []float32   // [B][dim]
	hb, hb2    []float32   // [B][hidden]
	q          []float32   // [B][dim]
	xq         []int8      // [B][max(dim, hidden)]: activations quantized to Q8
	xd         []float32   // [B][max(dim, hidden)/32]: their block scales
	att        []float32   // [attB][n_heads][seq_len]: scores of (token, head)
	blogits    []float32   // [B][vocab]
	logits     []float32   // blogits[:vocab]: the logits Forward returns
	keyCache   []float32   // [layers][seq_len][kv_dim]: Forward's sequence
	valueCache []float32   // [layers][seq_len][kv_dim]
	kbuf, vbuf []float32   // [B][kv_dim]: the block's new keys and values
	bpos       []int       // [B]: position of block token t
	bkey, bval [][]float32 // [B]: the KV cache of block token t's sequence
	bwant      []bool      // [B]: whether block token t's logits are computed
	btok       []int       // [B]: ForwardBatch's tokens
	ropeFreq   []float32   // [head_size/2]: 1/base^(2i/head_size)
	ropeCos    []float32   // [B][head_size/2]: cos(pos*ropeFreq[i]) of the block
	ropeSin    []float32   // likewise sin
	attScale   float32     // sqrtf(head_size)
	eps        float32     // RMSNorm epsilon
	tok1       [1]int      // Forward's one-token block

	// threading (see SetThreads); pool is nil with one thread
	threads int
	pool    *pool
	cleanup runtime.Cleanup
	mm      mmTask
	mmFn    func(lo, hi int) // m.mmRows, built once so runs do not allocate
	attFn   func(lo, hi int) // m.attnItems, likewise
	attLoff int              // attention job: layer offset in the KV caches,
	attTok0 int              // and first block token of the job
	attB    int              // tokens whose attention fits att at once
	siluFn  func(lo, hi int) // m.swiglu
	siluN   int              // SwiGLU job: elements of hb
	lpFn    func(lo, hi int) // m.logProbs (Score)
	lpIDs   []int            // Score: the ids the block's logits score,
	lpOut   []float64        // and where their log-probs go;
	lpAhead []int            // ScoreRanks: where the counts of tokens ahead go (nil: Score)
	lpGap   float64          // ScoreRanks: the margin they are ahead by

	// file is the GGUF file the weights alias (nil if none); see Close.
	file        io.Closer
	fileCleanup runtime.Cleanup
}

// layer is one transformer block's weights.
type layer struct {
	rmsAtt, rmsFFN             []float32 // [dim]
	wq, wk, wv, wo, w1, w2, w3 matrix
	bq, bk, bv                 []float32 // attention biases (qwen2); nil when absent
}

// maxBatch is the number of tokens the prompt path runs through each
// product together: every weight row is read once per block and reused
// from cache for each token (the products iterate rows outside, tokens
// inside, in row chunks that fit L1).
const maxBatch = MaxBatch

// MaxBatch is the most tokens one block (a prompt block, a Score block or a
// ForwardBatch step) runs through the model together.
const MaxBatch = 16

// mmTask is up to three products that share their input x (n columns, nt
// tokens), run as one job over their concatenated output rows.
type mmTask struct {
	x     []float32 // nt rows of n
	n, nt int
	segs  [3]mmSeg
	nseg  int
	rows  int
}

type mmSeg struct {
	out    []float32 // token t's outputs start at out[t*stride]
	stride int
	w      *matrix
}

// parallelMinWork is the number of bytes a job reads (weight bytes times
// tokens for a product, key and value bytes for the attention of one
// token) below which it runs inline on the calling goroutine. The kernels
// stream 16-30 GB/s on one core and waking a parked helper costs ~20 µs on
// these VMs, i.e. 0.3-0.6 MB of streaming, so splitting pays only above
// about 1 MB. Tests lower it to force the pooled path on tiny models.
var parallelMinWork = 1 << 20

// SetThreads sets the number of threads the forward pass uses: 1 (the
// default) computes everything on the calling goroutine; n ≤ 0 means
// runtime.GOMAXPROCS(0). Helpers are persistent goroutines parked between
// jobs (they never spin). Results are bit-identical for every n: each
// output element is computed by one thread in the same order as with one.
func (m *Model) SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n == m.threads && (n == 1) == (m.pool == nil) {
		return
	}
	if m.pool != nil {
		m.cleanup.Stop()
		m.pool.close()
		m.pool = nil
	}
	m.threads = n
	if n > 1 {
		m.pool = newPool(n)
		// The helpers reference only the pool, so an unreachable Model is
		// collected and its helpers stopped.
		m.cleanup = runtime.AddCleanup(m, func(p *pool) { p.close() }, m.pool)
	}
}

// Threads reports the number of threads the forward pass uses.
func (m *Model) Threads() int { return m.threads }

// Close releases the GGUF file mapping the weights of a model loaded by
// LoadGGUF live in, and stops the helper threads. The model must not be
// used afterwards. It is a no-op for other models (an unreachable model is
// released by the garbage collector as well).
func (m *Model) Close() error {
	m.SetThreads(1)
	if m.file == nil {
		return nil
	}
	m.fileCleanup.Stop()
	err := m.file.Close()
	m.file = nil
	m.layers, m.emb, m.cls = nil, matrix{}, matrix{}
	return err
}

// NewModel checks the weight sizes against c and allocates the run state.
// The model uses the slices of w directly (no copy).
func NewModel(c Config, w Weights) (*Model, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	d, hd, l, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	checks := []struct {
		name string
		s    []float32
		n    int
	}{
		{"token_embedding", w.TokenEmbedding, v * d},
		{"rms_att", w.RMSAtt, l * d},
		{"wq", w.WQ, l * d * d},
		{"wk", w.WK, l * kv * d},
		{"wv", w.WV, l * kv * d},
		{"wo", w.WO, l * d * d},
		{"rms_ffn", w.RMSFFN, l * d},
		{"w1", w.W1, l * hd * d},
		{"w2", w.W2, l * d * hd},
		{"w3", w.W3, l * hd * d},
		{"rms_final", w.RMSFinal, d},
		{"wcls", w.WCls, v * d},
	}
	for _, ch := range checks {
		if len(ch.s) != ch.n {
			return nil, fmt.Errorf("weight %s has %d values, want %d", ch.name, len(ch.s), ch.n)
		}
	}
	layers := make([]layer, l)
	for i := range layers {
		layers[i] = layer{
			rmsAtt: w.RMSAtt[i*d : (i+1)*d],
			rmsFFN: w.RMSFFN[i*d : (i+1)*d],
			wq:     f32Matrix(w.WQ[i*d*d:], d, d),
			wk:     f32Matrix(w.WK[i*kv*d:], kv, d),
			wv:     f32Matrix(w.WV[i*kv*d:], kv, d),
			wo:     f32Matrix(w.WO[i*d*d:], d, d),
			w1:     f32Matrix(w.W1[i*hd*d:], hd, d),
			w2:     f32Matrix(w.W2[i*d*hd:], d, hd),
			w3:     f32Matrix(w.W3[i*hd*d:], hd, d),
		}
	}
	m := newModel(c, layers, f32Matrix(w.TokenEmbedding, v, d), f32Matrix(w.WCls, v, d), w.RMSFinal)
	m.Weights = w
	return m, nil
}

// check validates the sizes of c.
func (c *Config) check() error {
	if c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.VocabSize <= 0 || c.SeqLen <= 0 {
		return fmt.Errorf("config %+v: every size must be positive", *c)
	}
	if c.Dim%c.NHeads != 0 || c.NHeads%c.NKVHeads != 0 || c.HeadSize()%2 != 0 {
		return fmt.Errorf("config %+v: dim must split into even-sized heads and n_heads must be a multiple of n_kv_heads", *c)
	}
	if c.RMSEps < 0 || c.RopeBase < 0 {
		return fmt.Errorf("config %+v: negative RMSEps or RopeBase", *c)
	}
	return nil
}

// newModel allocates the run state around checked weights.
func newModel(c Config, layers []layer, emb, cls matrix, rmsFinal []float32) *Model {
	d, hd, l, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	hs := c.HeadSize()
	b := maxBatch // ForwardBatch takes maxBatch tokens whatever SeqLen is
	wide := max(d, hd)
	m := &Model{
		Config:     c,
		layers:     layers,
		emb:        emb,
		cls:        cls,
		rmsFinal:   rmsFinal,
		x:          make([]float32, b*d),
		xb:         make([]float32, b*d),
		xb2:        make([]float32, b*d),
		hb:         make([]float32, b*hd),
		hb2:        make([]float32, b*hd),
		q:          make([]float32, b*d),
		xq:         make([]int8, b*wide),
		xd:         make([]float32, b*wide/q8Block+1),
		att:        make([]float32, attB(c, b)*c.NHeads*c.SeqLen),
		blogits:    make([]float32, b*v),
		keyCache:   make([]float32, l*c.SeqLen*kv),
		valueCache: make([]float32, l*c.SeqLen*kv),
		kbuf:       make([]float32, b*kv),
		vbuf:       make([]float32, b*kv),
		bpos:       make([]int, b),
		bkey:       make([][]float32, b),
		bval:       make([][]float32, b),
		bwant:      make([]bool, b),
		btok:       make([]int, b),
		ropeFreq:   make([]float32, hs/2),
		ropeCos:    make([]float32, b*hs/2),
		ropeSin:    make([]float32, b*hs/2),
		attScale:   sqrtf(float32(hs)),
		eps:        c.rmsEps(),
		threads:    1,
	}
	m.logits = m.blogits[:v]
	m.mmFn = m.mmRows
	m.attFn = m.attnItems
	m.attB = attB(c, b)
	m.siluFn = m.swiglu
	m.lpFn = m.logProbs
	base := float64(c.ropeBase())
	for i := range m.ropeFreq {
		// run.c: 1.0f / powf(10000.0f, head_dim / (float)head_size)
		e := float32(2*i) / float32(hs)
		m.ropeFreq[i] = 1 / float32(math.Pow(base, float64(e)))
	}
	return m
}

// F32Weights returns the model's weights as F32 in llama2.c's layout: the
// Weights field when set (no copy), otherwise a dequantized copy.
func (m *Model) F32Weights() Weights {
	if m.Weights.WQ != nil {
		return m.Weights
	}
	c := m.Config
	d, hd, l, kv := c.Dim, c.HiddenDim, c.NLayers, c.KVDim()
	deq := func(mt *matrix) []float32 {
		out := make([]float32, mt.rows*mt.cols)
		for i := range mt.rows {
			mt.row(i, out[i*mt.cols:])
		}
		return out
	}
	var w Weights
	w.TokenEmbedding = deq(&m.emb)
	if c.SharedClassifier {
		w.WCls = w.TokenEmbedding
	} else {
		w.WCls = deq(&m.cls)
	}
	w.RMSAtt = make([]float32, 0, l*d)
	w.RMSFFN = make([]float32, 0, l*d)
	w.WQ = make([]float32, 0, l*d*d)
	w.WK = make([]float32, 0, l*kv*d)
	w.WV = make([]float32, 0, l*kv*d)
	w.WO = make([]float32, 0, l*d*d)
	w.W1 = make([]float32, 0, l*hd*d)
	w.W2 = make([]float32, 0, l*hd*d)
	w.W3 = make([]float32, 0, l*hd*d)
	for i := range m.layers {
		L := &m.layers[i]
		w.RMSAtt = append(w.RMSAtt, L.rmsAtt...)
		w.RMSFFN = append(w.RMSFFN, L.rmsFFN...)
		w.WQ = append(w.WQ, deq(&L.wq)...)
		w.WK = append(w.WK, deq(&L.wk)...)
		w.WV = append(w.WV, deq(&L.wv)...)
		w.WO = append(w.WO, deq(&L.wo)...)
		w.W1 = append(w.W1, deq(&L.w1)...)
		w.W2 = append(w.W2, deq(&L.w2)...)
		w.W3 = append(w.W3, deq(&L.w3)...)
	}
	w.RMSFinal = m.rmsFinal
	return w
}

func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }
func expf(x float32) float32  { return float32(math.Exp(float64(x))) }

// rmsnorm as run.c: o = weight * (x / sqrt(mean(x²) + eps)). o may alias x.
func rmsnorm(o, x, weight []float32, eps float32) {
	n := len(x)
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss /= float32(n)
	ss += eps
	ss = 1 / sqrtf(ss)
	weight = weight[:n]
	o = o[:n]
	for j, v := range x {
		o[j] = weight[j] * float32(ss*v)
	}
}

// softmax in place, as run.c (float32 throughout).
func softmax(x []float32) {
	maxv := x[0]
	for _, v := range x[1:] {
		if v > maxv {
			maxv = v
		}
	}
	var sum float32
	for i, v := range x {
		e := expf(v - maxv)
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// ErrPosition reports a position outside the KV cache.
var ErrPosition = errors.New("position outside the context window")

// Forward runs one token at position pos (0-based) through the model, using
// and extending the KV cache for positions < pos, and returns the logits.
// The returned slice is owned by the model and overwritten by the next call.
// Forward does not allocate.
func (m *Model) Forward(token, pos int) ([]float32, error) {
	c := &m.Config
	if token < 0 || token >= c.VocabSize {
		return nil, fmt.Errorf("token %d outside the vocabulary [0,%d)", token, c.VocabSize)
	}
	if pos < 0 || pos >= c.SeqLen {
		return nil, fmt.Errorf("%w: %d not in [0,%d)", ErrPosition, pos, c.SeqLen)
	}
	m.forward(token, pos)
	return m.logits, nil
}

func (m *Model) forward(token, pos int) {
	m.tok1[0] = token
	m.forwardBlock(m.tok1[:], pos, 0)
}

// prefill runs tokens (checked, at most SeqLen) at positions 0.. through the
// batched path, leaving the last token's logits in m.logits.
func (m *Model) prefill(tokens []int) {
	b := min(maxBatch, m.Config.SeqLen)
	for s := 0; s < len(tokens); s += b {
		blk := tokens[s:min(s+b, len(tokens))]
		from := len(blk) // no logits
		if s+len(blk) == len(tokens) {
			from = len(blk) - 1
		}
		m.forwardBlock(blk, s, from)
	}
}

// forwardBlock runs len(toks) ≤ maxBatch consecutive tokens at positions
// pos0.. of Forward's sequence (the model's own KV cache) through the
// model, and computes the logits of tokens from.. into
// blogits[(t-from)*vocab:]. Each token's arithmetic is exactly that of a
// one-token block: the block only changes the order in which independent
// outputs are computed.
func (m *Model) forwardBlock(toks []int, pos0, from int) {
	m.forwardSeqBlock(m.keyCache, m.valueCache, toks, pos0, from)
}

// forwardSeqBlock is forwardBlock on the sequence whose KV cache is key,
// value.
func (m *Model) forwardSeqBlock(key, value []float32, toks []int, pos0, from int) {
	for t := range toks {
		m.bpos[t], m.bkey[t], m.bval[t], m.bwant[t] = pos0+t, key, value, t >= from
	}
	m.forwardTokens(toks)
}

// forwardTokens runs block token t = toks[t] (len(toks) ≤ maxBatch) at
// position m.bpos[t] of the sequence whose KV cache is m.bkey[t],
// m.bval[t], and computes the logits of the tokens with m.bwant[t], in
// block order, into blogits[j*vocab:] for the j-th of them. Every token
// writes its key and value at its position of its own sequence, before
// any token's attention reads the positions ≤ its own of its own sequence:
// a sequence may appear several times in one block (at distinct
// positions), as a prompt block does. Each token's arithmetic is exactly
// that of a one-token block: the block only changes the order in which
// independent outputs are computed, and which weight reads they share.
func (m *Model) forwardTokens(toks []int) {
	c := &m.Config
	nt := len(toks)
	dim, hidden, kvDim, hs := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize()
	for t, tok := range toks {
		m.emb.row(tok, m.x[t*dim:(t+1)*dim])
	}
	half := hs / 2
	for t := range nt {
		fpos := float32(m.bpos[t])
		cs, sn := m.ropeCos[t*half:(t+1)*half], m.ropeSin[t*half:(t+1)*half]
		for i, f := range m.ropeFreq {
			val := fpos * f
			cs[i] = float32(math.Cos(float64(val)))
			sn[i] = float32(math.Sin(float64(val)))
		}
	}
	x := m.x[:nt*dim]

	for l := range m.layers {
		L := &m.layers[l]
		for t := range nt {
			rmsnorm(m.xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], L.rmsAtt, m.eps)
		}

		loff := l * c.SeqLen * kvDim
		m.setMM(m.xb, dim, nt)
		m.addMM(m.q, dim, &L.wq)
		m.addMM(m.kbuf, kvDim, &L.wk)
		m.addMM(m.vbuf, kvDim, &L.wv)
		m.runMM()
		for t := range nt {
			q := m.q[t*dim : (t+1)*dim]
			k := m.kbuf[t*kvDim : (t+1)*kvDim]
			v := m.vbuf[t*kvDim : (t+1)*kvDim]
			if L.bq != nil {
				addBias(q, L.bq)
				addBias(k, L.bk)
				addBias(v, L.bv)
			}
			m.rope(q, k, t)
			at := loff + m.bpos[t]*kvDim
			copy(m.bkey[t][at:at+kvDim], k)
			copy(m.bval[t][at:at+kvDim], v)
		}

		// Grouped-query attention: the (token, head) pairs of up to attB
		// tokens at a time, split across the threads. Each pair reads the
		// keys and values of positions ≤ its own only, all written above.
		for t0 := 0; t0 < nt; t0 += m.attB {
			t1 := min(t0+m.attB, nt)
			m.attLoff, m.attTok0 = loff, t0
			bytes := 0
			for t := t0; t < t1; t++ {
				bytes += c.NHeads * (m.bpos[t] + 1) * hs * 8
			}
			if m.pool != nil && bytes >= parallelMinWork {
				m.pool.run((t1-t0)*c.NHeads, m.attFn)
			} else {
				m.attnItems(0, (t1-t0)*c.NHeads)
			}
		}

		m.setMM(m.xb, dim, nt)
		m.addMM(m.xb2, dim, &L.wo)
		m.runMM()
		for i := range x {
			x[i] += m.xb2[i]
		}

		for t := range nt {
			rmsnorm(m.xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], L.rmsFFN, m.eps)
		}
		m.setMM(m.xb, dim, nt)
		m.addMM(m.hb, hidden, &L.w1)
		m.addMM(m.hb2, hidden, &L.w3)
		m.runMM()
		m.siluN = nt * hidden
		if m.pool != nil && m.siluN*siluCost >= parallelMinWork {
			m.pool.run(m.siluN, m.siluFn)
		} else {
			m.swiglu(0, m.siluN)
		}
		m.setMM(m.hb, hidden, nt)
		m.addMM(m.xb, dim, &L.w2)
		m.runMM()
		for i := range x {
			x[i] += m.xb[i]
		}
	}

	// The final norm of the tokens whose logits are wanted goes into xb
	// (free now), packed, so that the classifier runs over them together.
	nw := 0
	for t := range nt {
		if m.bwant[t] {
			rmsnorm(m.xb[nw*dim:(nw+1)*dim], x[t*dim:(t+1)*dim], m.rmsFinal, m.eps)
			nw++
		}
	}
	for t := range nt {
		m.bkey[t], m.bval[t] = nil, nil // hold no caches between blocks
	}
	if nw == 0 {
		return
	}
	m.setMM(m.xb, dim, nw)
	m.addMM(m.blogits, c.VocabSize, &m.cls)
	m.runMM()
}

func addBias(x, b []float32) {
	b = b[:len(x)]
	for i := range x {
		x[i] += b[i]
	}
}

// rope rotates q and k (one token's) with the angles of token t of the
// block. The "normal" mode (run.c, llama.cpp's LLAMA_ROPE_TYPE_NORM)
// rotates consecutive pairs (i, i+1) of each head; NEOX rotates (i,
// i+head_size/2). Pair p of a head turns by pos*ropeFreq[p] either way.
func (m *Model) rope(q, k []float32, t int) {
	c := &m.Config
	hs := c.HeadSize()
	half := hs / 2
	kvDim := len(k)
	cs, sn := m.ropeCos[t*half:(t+1)*half], m.ropeSin[t*half:(t+1)*half]
	if !c.RopeNeox {
		for i := 0; i < len(q); i += 2 {
			p := (i % hs) / 2
			fcr, fci := cs[p], sn[p]
			v0, v1 := q[i], q[i+1]
			q[i] = float32(v0*fcr) - float32(v1*fci)
			q[i+1] = float32(v0*fci) + float32(v1*fcr)
			if i < kvDim {
				v0, v1 = k[i], k[i+1]
				k[i] = float32(v0*fcr) - float32(v1*fci)
				k[i+1] = float32(v0*fci) + float32(v1*fcr)
			}
		}
		return
	}
	for h := 0; h*hs < len(q); h++ {
		for p := range half {
			i0, i1 := h*hs+p, h*hs+p+half
			fcr, fci := cs[p], sn[p]
			v0, v1 := q[i0], q[i1]
			q[i0] = float32(v0*fcr) - float32(v1*fci)
			q[i1] = float32(v0*fci) + float32(v1*fcr)
			if i1 < kvDim {
				v0, v1 = k[i0], k[i1]
				k[i0] = float32(v0*fcr) - float32(v1*fci)
				k[i1] = float32(v0*fci) + float32(v1*fcr)
			}
		}
	}
}

// attB is how many tokens' attention scores the att buffer holds: the
// block size, unless that would take more than 32 MB (long contexts).
func attB(c Config, b int) int {
	per := c.NHeads * c.SeqLen * 4
	return max(1, min(b, (32<<20)/per))
}

// siluCost is the cost of one SwiGLU element in parallelMinWork's unit
// (bytes streamed in the same time): an expf takes ~5 ns.
const siluCost = 128

// swiglu sets hb[i] = silu(hb[i]) * hb2[i] for i in [lo, hi), as run.c.
func (m *Model) swiglu(lo, hi int) {
	hb2 := m.hb2[lo:hi]
	for i, val := range m.hb[lo:hi] {
		val *= 1 / (1 + expf(-val))
		val *= hb2[i]
		m.hb[lo+i] = val
	}
}

// attnItems computes the attention of items [lo, hi) of the current
// attention job, item i being head i%n_heads of block token
// m.attTok0+i/n_heads (at its position m.bpos of its sequence's cache
// m.bkey/m.bval, layer offset m.attLoff). It writes the item's att row and
// the token's xb of that head only.
func (m *Model) attnItems(lo, hi int) {
	c := &m.Config
	kvDim, hs := c.KVDim(), c.HeadSize()
	kvMul := c.NHeads / c.NKVHeads
	loff := m.attLoff
	for it := lo; it < hi; it++ {
		tok, h := m.attTok0+it/c.NHeads, it%c.NHeads
		pos := m.bpos[tok]
		q := m.q[tok*c.Dim+h*hs : tok*c.Dim+(h+1)*hs]
		xb := m.xb[tok*c.Dim+h*hs : tok*c.Dim+(h+1)*hs]
		att := m.att[it*c.SeqLen : it*c.SeqLen+pos+1]
		kvOff := loff + (h/kvMul)*hs
		dotF32Rows(att, m.bkey[tok][kvOff:], kvDim, q)
		for t := range att {
			att[t] /= m.attScale
		}
		softmax(att)
		attnValues(xb, m.bval[tok][kvOff:], kvDim, att)
	}
}

// setMM starts a product job on nt tokens of input x (n columns each,
// token t at x[t*n:]); addMM adds an output: w's rows for token t go to
// out[t*stride:].
func (m *Model) setMM(x []float32, n, nt int) {
	m.mm.x, m.mm.n, m.mm.nt, m.mm.nseg, m.mm.rows = x[:nt*n], n, nt, 0, 0
}

func (m *Model) addMM(out []float32, stride int, w *matrix) {
	m.mm.segs[m.mm.nseg] = mmSeg{out: out, stride: stride, w: w}
	m.mm.nseg++
	m.mm.rows += w.rows
}

// runMM quantizes the input once (when a product needs it) and computes
// the job's rows, split across the pool when large enough.
func (m *Model) runMM() {
	t := &m.mm
	for i := range t.segs[:t.nseg] {
		if t.segs[i].w.quantized() {
			for k := range t.nt {
				quantizeQ8(m.xq[k*t.n:(k+1)*t.n], m.xd[k*t.n/q8Block:], t.x[k*t.n:(k+1)*t.n])
			}
			break
		}
	}
	bytes := 0
	for i := range t.segs[:t.nseg] {
		bytes += t.segs[i].w.rows * t.segs[i].w.rowBytes
	}
	if m.pool != nil && bytes*t.nt >= parallelMinWork {
		m.pool.run(t.rows, m.mmFn)
	} else {
		m.mmRows(0, t.rows)
	}
	for i := range t.segs[:t.nseg] {
		t.segs[i] = mmSeg{} // hold no references between jobs
	}
	t.x = nil
}

// mmChunkBytes bounds the weight rows a block of tokens sweeps together, so
// that they stay in cache (L2) while each token of the block uses them.
// Measured on the s110M shape (prompt of 64, Q8_0, one thread): 4 KB 433,
// 16 KB 470, 64 KB 506 tok/s; larger chunks were no better.
const mmChunkBytes = 64 << 10

// mmRows computes rows [lo, hi) of the concatenated outputs of m.mm, for
// every token of the job.
func (m *Model) mmRows(lo, hi int) {
	t := &m.mm
	n := t.n
	base := 0
	for i := range t.segs[:t.nseg] {
		s := &t.segs[i]
		a, b := max(lo-base, 0), min(hi-base, s.w.rows)
		base += s.w.rows
		if a >= b {
			continue
		}
		if t.nt == 1 {
			w := s.w.sub(a, b)
			mulRows(s.out[a:b], &w, t.x, m.xq, m.xd)
			continue
		}
		rc := max(1, mmChunkBytes/s.w.rowBytes)
		for c0 := a; c0 < b; c0 += rc {
			c1 := min(c0+rc, b)
			w := s.w.sub(c0, c1)
			k := 0
			for ; k+4 <= t.nt; k += 4 {
				o := k * s.stride
				if !mulRows4(s.out[o+c0:], s.stride, &w, m.xq[k*n:], m.xd[k*n/q8Block:]) {
					break
				}
			}
			for ; k < t.nt; k++ {
				o := k * s.stride
				mulRows(s.out[o+c0:o+c1], &w, t.x[k*n:(k+1)*n], m.xq[k*n:(k+1)*n], m.xd[k*n/q8Block:])
			}
		}
	}
}

// Argmax returns the index of the largest logit, the lowest index on ties.
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// LogProb returns log-softmax(logits)[id] computed in float64 (natural log).
func LogProb(logits []float32, id int) float64 {
	maxv := float64(logits[0])
	for _, v := range logits[1:] {
		if float64(v) > maxv {
			maxv = float64(v)
		}
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	return float64(logits[id]) - maxv - math.Log(sum)
}

// LogProbAhead is LogProb(logits, id) and the number of tokens whose
// log-prob exceeds id's by more than margin (≥ 0): 0 when id is within
// margin of the argmax, under k when it is inside a top-k cut with that
// margin. The margin is in nats of the temperature-1 distribution (the
// order of the tokens is the same at any temperature).
func LogProbAhead(logits []float32, id int, margin float64) (float64, int) {
	lp := LogProb(logits, id)
	bar := float64(logits[id]) + margin
	ahead := 0
	for _, v := range logits {
		if float64(v) > bar {
			ahead++
		}
	}
	return lp, ahead
}

// LogSoftmax writes log-softmax(logits) in float64 into dst (len ≥ len(logits)).
func LogSoftmax(dst []float64, logits []float32) {
	maxv := float64(logits[0])
	for _, v := range logits[1:] {
		if float64(v) > maxv {
			maxv = float64(v)
		}
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxv)
	}
	ls := maxv + math.Log(sum)
	for i, v := range logits {
		dst[i] = float64(v) - ls
	}
}

// Generate feeds prompt (token ids, no BOS added) from position 0 and then
// generates n tokens greedily (argmax, lowest id on ties). It returns the
// generated ids and, for each, its log-prob under the model. Generation does
// not stop at any special token; it stops early only at the end of the
// context window. The KV cache is overwritten from position 0.
func (m *Model) Generate(prompt []int, n int) (ids []int, logprobs []float64, err error) {
	if len(prompt) == 0 {
		return nil, nil, errors.New("generate: empty prompt")
	}
	if n < 0 {
		return nil, nil, fmt.Errorf("generate: negative token count %d", n)
	}
	if len(prompt) > m.Config.SeqLen {
		return nil, nil, fmt.Errorf("generate: %w: prompt of %d tokens exceeds context %d", ErrPosition, len(prompt), m.Config.SeqLen)
	}
	for i, t := range prompt {
		if t < 0 || t >= m.Config.VocabSize {
			return nil, nil, fmt.Errorf("generate: prompt token %d (index %d) outside the vocabulary [0,%d)", t, i, m.Config.VocabSize)
		}
	}
	m.prefill(prompt)
	pos := len(prompt)
	if room := m.Config.SeqLen - pos + 1; n > room {
		n = room
	}
	ids = make([]int, 0, n)
	logprobs = make([]float64, 0, n)
	for len(ids) < n {
		next := Argmax(m.logits)
		ids = append(ids, next)
		logprobs = append(logprobs, LogProb(m.logits, next))
		if len(ids) == n {
			break
		}
		m.forward(next, pos)
		pos++
	}
	return ids, logprobs, nil
}

// BenchDecode measures decode speed for `taobox bench model` and the
// benchmarks: n one-token forward passes at positions 0..n-1 (n ≤ SeqLen),
// each feeding the previous step's argmax as Generate does after the
// prompt, timed on the wall clock; it returns tokens per second. The KV
// cache is overwritten. Call it once to warm up (page in the weights) and
// again to measure.
func (m *Model) BenchDecode(n int) (tokPerSec float64, err error) {
	if n <= 0 || n > m.Config.SeqLen {
		return 0, fmt.Errorf("bench decode: %d tokens, want 1..%d (the context)", n, m.Config.SeqLen)
	}
	tok := 1 % m.Config.VocabSize
	start := time.Now()
	for pos := range n {
		m.forward(tok, pos)
		tok = Argmax(m.logits)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// BenchPrompt measures prompt speed: n fixed pseudo-random tokens (n ≤
// SeqLen) through the batched prompt path from position 0 with the logits
// of the last one, exactly the prompt work of Generate and GenerateSampled
// (llama-bench's ppN); it returns tokens per second. The KV cache is
// overwritten.
func (m *Model) BenchPrompt(n int) (tokPerSec float64, err error) {
	if n <= 0 || n > m.Config.SeqLen {
		return 0, fmt.Errorf("bench prompt: %d tokens, want 1..%d (the context)", n, m.Config.SeqLen)
	}
	toks := benchTokens(n, m.Config.VocabSize)
	start := time.Now()
	m.prefill(toks)
	return float64(n) / time.Since(start).Seconds(), nil
}

// BenchScore measures the validator's path: Score of n+1 fixed
// pseudo-random ids from 1 (n ≤ SeqLen), i.e. n positions fed through the
// batched path, each with its classifier product and log-softmax; it
// returns scored tokens per second. The KV cache is overwritten.
func (m *Model) BenchScore(n int) (tokPerSec float64, err error) {
	if n <= 0 || n > m.Config.SeqLen {
		return 0, fmt.Errorf("bench score: %d tokens, want 1..%d (the context)", n, m.Config.SeqLen)
	}
	ids := benchTokens(n+1, m.Config.VocabSize)
	start := time.Now()
	if _, err := m.Score(ids, 1); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func benchTokens(n, vocab int) []int {
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*7919 + 1) % vocab
	}
	return toks
}

// ParamCount returns the number of weights: the embedding, every layer's
// norms, matrices and biases, the final norm, and the classifier when it is
// not tied to the embedding.
func (m *Model) ParamCount() int64 {
	n := int64(m.emb.rows*m.emb.cols) + int64(len(m.rmsFinal))
	if !m.Config.SharedClassifier {
		n += int64(m.cls.rows * m.cls.cols)
	}
	for i := range m.layers {
		L := &m.layers[i]
		n += int64(len(L.rmsAtt) + len(L.rmsFFN) + len(L.bq) + len(L.bk) + len(L.bv))
		for _, w := range []*matrix{&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w2, &L.w3} {
			n += int64(w.rows * w.cols)
		}
	}
	return n
}
