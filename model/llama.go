package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"
)

// Model is an F32 LLaMA model with its run state (activations and KV cache).
// It computes exactly what llama2.c's run.c computes, in the same float32
// operation order, so that its logits are bit-comparable with run.c built
// without FMA contraction. A Model is not safe for concurrent use.
type Model struct {
	Config  Config
	Weights Weights

	// run state, allocated once
	x, xb, xb2 []float32 // [dim]
	hb, hb2    []float32 // [hidden]
	q          []float32 // [dim]
	att        []float32 // [n_heads][seq_len]
	logits     []float32 // [vocab]
	keyCache   []float32 // [layers][seq_len][kv_dim]
	valueCache []float32 // [layers][seq_len][kv_dim]
	ropeFreq   []float32 // [head_size/2]: 1/10000^(2i/head_size)
	attScale   float32   // sqrtf(head_size)

	// threading (see SetThreads); pool is nil with one thread
	threads int
	pool    *pool
	cleanup runtime.Cleanup
	mm      mmTask
	mmFn    func(lo, hi int) // m.mmRows, built once so runs do not allocate
	attFn   func(lo, hi int) // m.attnHeads, likewise
	attLoff int              // layer offset into the KV cache for attnHeads
	attPos  int              // position for attnHeads
}

// mmTask is up to three matmuls that share their input x (n columns), run
// as one job over their concatenated output rows.
type mmTask struct {
	x    []float32
	n    int
	segs [3]mmSeg
	nseg int
	rows int
}

type mmSeg struct {
	out, w []float32
	d      int
}

// parallelMinWork is the number of multiply-adds below which a matmul (or
// the attention of one layer) runs inline on the calling goroutine: waking a
// parked helper costs a few microseconds, more than small products take.
// Tests lower it to force the pooled path on tiny models.
var parallelMinWork = 1 << 17

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

// NewModel checks the weight sizes against c and allocates the run state.
func NewModel(c Config, w Weights) (*Model, error) {
	if c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.VocabSize <= 0 || c.SeqLen <= 0 {
		return nil, fmt.Errorf("config %+v: every size must be positive", c)
	}
	if c.Dim%c.NHeads != 0 || c.NHeads%c.NKVHeads != 0 || c.HeadSize()%2 != 0 {
		return nil, fmt.Errorf("config %+v: dim must split into even-sized heads and n_heads must be a multiple of n_kv_heads", c)
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
	hs := c.HeadSize()
	m := &Model{
		Config:     c,
		Weights:    w,
		x:          make([]float32, d),
		xb:         make([]float32, d),
		xb2:        make([]float32, d),
		hb:         make([]float32, hd),
		hb2:        make([]float32, hd),
		q:          make([]float32, d),
		att:        make([]float32, c.NHeads*c.SeqLen),
		logits:     make([]float32, v),
		keyCache:   make([]float32, l*c.SeqLen*kv),
		valueCache: make([]float32, l*c.SeqLen*kv),
		ropeFreq:   make([]float32, hs/2),
		attScale:   sqrtf(float32(hs)),
		threads:    1,
	}
	m.mmFn = m.mmRows
	m.attFn = m.attnHeads
	for i := range m.ropeFreq {
		// run.c: 1.0f / powf(10000.0f, head_dim / (float)head_size)
		e := float32(2*i) / float32(hs)
		m.ropeFreq[i] = 1 / float32(math.Pow(10000, float64(e)))
	}
	return m, nil
}

func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }
func expf(x float32) float32  { return float32(math.Exp(float64(x))) }

// matmul computes xout = W·x for W of shape (d, n), row-major; each output
// is summed over j in order, as in run.c. The float32 conversion around each
// product forbids FMA fusion, keeping the result bit-comparable.
//
// Reducing 2 or 4 rows side by side (same order per row, so the same bits)
// measured 10-25% faster on stories260K but 25-40% slower on the 15M shape
// here, so the plain loop stays until the SIMD kernels replace it.
func matmul(xout, x, w []float32, n, d int) {
	matmulRows(xout, x, w, n, 0, d)
}

// matmulRows computes rows [lo, hi) of matmul, each exactly as matmul does.
func matmulRows(xout, x, w []float32, n, lo, hi int) {
	for i := lo; i < hi; i++ {
		row := w[i*n : i*n+n]
		xr := x[:len(row)] // lets the compiler drop the bounds check on x[j]
		var val float32
		for j, wj := range row {
			val += float32(wj * xr[j])
		}
		xout[i] = val
	}
}

// rmsnorm as run.c: o = weight * (x / sqrt(mean(x²) + 1e-5)). o may alias x.
func rmsnorm(o, x, weight []float32) {
	n := len(x)
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss /= float32(n)
	ss += 1e-5
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
	c := &m.Config
	w := &m.Weights
	dim, hidden, kvDim, hs := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize()
	x := m.x
	copy(x, w.TokenEmbedding[token*dim:(token+1)*dim])
	fpos := float32(pos)

	for l := 0; l < c.NLayers; l++ {
		rmsnorm(m.xb, x, w.RMSAtt[l*dim:(l+1)*dim])

		loff := l * c.SeqLen * kvDim
		k := m.keyCache[loff+pos*kvDim : loff+(pos+1)*kvDim]
		v := m.valueCache[loff+pos*kvDim : loff+(pos+1)*kvDim]
		m.setMM(m.xb, dim)
		m.addMM(m.q, w.WQ[l*dim*dim:], dim)
		m.addMM(k, w.WK[l*dim*kvDim:], kvDim)
		m.addMM(v, w.WV[l*dim*kvDim:], kvDim)
		m.runMM()

		// RoPE: rotate consecutive pairs (i, i+1) within each head.
		for i := 0; i < dim; i += 2 {
			freq := m.ropeFreq[(i%hs)/2]
			val := fpos * freq
			fcr := float32(math.Cos(float64(val)))
			fci := float32(math.Sin(float64(val)))
			v0, v1 := m.q[i], m.q[i+1]
			m.q[i] = float32(v0*fcr) - float32(v1*fci)
			m.q[i+1] = float32(v0*fci) + float32(v1*fcr)
			if i < kvDim {
				v0, v1 = k[i], k[i+1]
				k[i] = float32(v0*fcr) - float32(v1*fci)
				k[i+1] = float32(v0*fci) + float32(v1*fcr)
			}
		}

		// Grouped-query attention, heads split across the threads.
		m.attLoff, m.attPos = loff, pos
		if m.pool != nil && c.NHeads*(pos+1)*hs*2 >= parallelMinWork {
			m.pool.run(c.NHeads, m.attFn)
		} else {
			m.attnHeads(0, c.NHeads)
		}

		m.setMM(m.xb, dim)
		m.addMM(m.xb2, w.WO[l*dim*dim:], dim)
		m.runMM()
		for i := range x {
			x[i] += m.xb2[i]
		}

		rmsnorm(m.xb, x, w.RMSFFN[l*dim:(l+1)*dim])
		m.setMM(m.xb, dim)
		m.addMM(m.hb, w.W1[l*dim*hidden:], hidden)
		m.addMM(m.hb2, w.W3[l*dim*hidden:], hidden)
		m.runMM()
		for i, val := range m.hb {
			val *= 1 / (1 + expf(-val))
			val *= m.hb2[i]
			m.hb[i] = val
		}
		m.setMM(m.hb, hidden)
		m.addMM(m.xb, w.W2[l*dim*hidden:], dim)
		m.runMM()
		for i := range x {
			x[i] += m.xb[i]
		}
	}

	rmsnorm(x, x, w.RMSFinal)
	m.setMM(x, dim)
	m.addMM(m.logits, w.WCls, c.VocabSize)
	m.runMM()
}

// attnHeads computes the attention of heads [lo, hi) for layer offset
// m.attLoff at position m.attPos, writing att and xb of those heads only.
func (m *Model) attnHeads(lo, hi int) {
	c := &m.Config
	kvDim, hs := c.KVDim(), c.HeadSize()
	kvMul := c.NHeads / c.NKVHeads
	loff, pos := m.attLoff, m.attPos
	for h := lo; h < hi; h++ {
		q := m.q[h*hs : (h+1)*hs]
		att := m.att[h*c.SeqLen : h*c.SeqLen+pos+1]
		kvOff := loff + (h/kvMul)*hs
		for t := range att {
			kt := m.keyCache[kvOff+t*kvDim : kvOff+t*kvDim+hs]
			kt = kt[:len(q)]
			var score float32
			for i, qi := range q {
				score += float32(qi * kt[i])
			}
			att[t] = score / m.attScale
		}
		softmax(att)
		xb := m.xb[h*hs : (h+1)*hs]
		clear(xb)
		for t, a := range att {
			vt := m.valueCache[kvOff+t*kvDim : kvOff+t*kvDim+hs]
			vt = vt[:len(xb)]
			for i, vi := range vt {
				xb[i] += float32(a * vi)
			}
		}
	}
}

// setMM starts a matmul job on input x of n columns; addMM adds an output.
func (m *Model) setMM(x []float32, n int) {
	m.mm.x, m.mm.n, m.mm.nseg, m.mm.rows = x, n, 0, 0
}

func (m *Model) addMM(out, w []float32, d int) {
	m.mm.segs[m.mm.nseg] = mmSeg{out: out, w: w, d: d}
	m.mm.nseg++
	m.mm.rows += d
}

// runMM computes the job's rows, split across the pool when large enough.
func (m *Model) runMM() {
	t := &m.mm
	if m.pool != nil && t.rows*t.n >= parallelMinWork {
		m.pool.run(t.rows, m.mmFn)
	} else {
		m.mmRows(0, t.rows)
	}
	for i := range t.segs[:t.nseg] {
		t.segs[i] = mmSeg{} // hold no references between jobs
	}
	t.x = nil
}

// mmRows computes rows [lo, hi) of the concatenated outputs of m.mm.
func (m *Model) mmRows(lo, hi int) {
	t := &m.mm
	base := 0
	for i := range t.segs[:t.nseg] {
		s := &t.segs[i]
		a, b := max(lo-base, 0), min(hi-base, s.d)
		if a < b {
			matmulRows(s.out, t.x, s.w, t.n, a, b)
		}
		base += s.d
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
	pos := 0
	for _, t := range prompt {
		m.forward(t, pos)
		pos++
	}
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
