//go:build !cuda

package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"taobox/model"
)

// Config is the shape of the model and of its training. The zero value of a
// field means the default given on it (see TinyConfig for the shipped one).
type Config struct {
	Dim    int // embedding width; 0: 128
	Hidden int // SwiGLU feed-forward width; 0: 192
	Layers int // 0: 4
	Heads  int // query heads (as many key/value heads); 0: 4
	SeqLen int // context length, which is also the training sequence length; 0: 128
	Batch  int // sequences per step; 0: 8

	Steps  int     // optimizer steps; 0: 1000
	LR     float64 // peak Adam learning rate; 0: 3e-3
	Warmup int     // linear warm-up steps, then cosine decay to LR/10; 0: Steps/20
	Clip   float64 // global gradient-norm clip; 0: 1

	// Seed drives the initial weights, the training stories and the batch
	// order. Held-out stories use Seed+1.
	Seed uint64
}

// TinyConfig is the configuration of assets/tiny.gguf.
func TinyConfig() Config {
	c := Config{Seed: 4}
	c.fill()
	return c
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	c.fill()
	return c
}

func (c *Config) fill() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Dim, 128)
	def(&c.Hidden, 192)
	def(&c.Layers, 4)
	def(&c.Heads, 4)
	def(&c.SeqLen, 128)
	def(&c.Batch, 8)
	def(&c.Steps, 1000)
	def(&c.Warmup, max(c.Steps/20, 1))
	if c.LR == 0 {
		c.LR = 3e-3
	}
	if c.Clip == 0 {
		c.Clip = 1
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Dim <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.SeqLen <= 1 || c.Batch <= 0 || c.Steps < 0 {
		errs = append(errs, fmt.Errorf("train: sizes must be positive: %+v", *c))
	}
	if c.Heads > 0 && (c.Dim%c.Heads != 0 || (c.Dim/c.Heads)%2 != 0) {
		errs = append(errs, fmt.Errorf("train: dim %d must split into %d heads of even size", c.Dim, c.Heads))
	}
	if !(c.LR > 0) || !(c.Clip > 0) {
		errs = append(errs, fmt.Errorf("train: LR %v and Clip %v must be positive", c.LR, c.Clip))
	}
	return errors.Join(errs...)
}

// ModelConfig is the model.Config of the trained model (tied embeddings).
func (c Config) ModelConfig(vocab int) model.Config {
	c.fill()
	return model.Config{Dim: c.Dim, HiddenDim: c.Hidden, NLayers: c.Layers, NHeads: c.Heads, NKVHeads: c.Heads,
		VocabSize: vocab, SeqLen: c.SeqLen, SharedClassifier: true}
}

// Trainer trains a LLaMA on the story grammar with gorgonia: the forward
// pass is a gorgonia expression graph over a whole batch (Batch×SeqLen
// tokens as the rows of every matrix), gorgonia's symbolic differentiation
// gives the gradients, a TapeMachine runs both, and the Adam update is done
// here on the parameters' backing slices.
//
// The graph computes what model.Model.Forward computes: RMSNorm (eps 1e-5)
// with a learned gain, RoPE on consecutive pairs (i, i+1) of each head with
// theta = pos·10000^(-i/head_size) (as a multiply by cos plus a multiply of
// the pair-swapped vector, x·P, by sin), causal softmax attention scaled by
// 1/sqrt(head_size), a residual, RMSNorm, SwiGLU (w2(silu(w1 x)·w3 x)), a
// residual, a final RMSNorm and the classifier, tied to the token embedding.
// Matrices are stored [in][out] (x·W), transposed on export.
//
// A Trainer is not safe for concurrent use. Its results are the same for
// the same Config on the same machine (gonum's matrix products split the
// work by output blocks, each summed in one fixed order, so GOMAXPROCS does
// not change a bit).
type Trainer struct {
	Config Config
	Vocab  *Vocab

	g      *G.ExprGraph
	vm     G.VM
	params []*G.Node
	names  []string
	loss   *G.Node
	inp    *tensor.Dense // [N][V] one-hot of the input tokens
	tgt    *tensor.Dense // [N][V] one-hot of the targets
	inNode *G.Node
	tgNode *G.Node

	m, v  [][]float32 // Adam moments, per parameter
	step  int
	data  *rand.Rand // batch stories
	batch []int      // [Batch][SeqLen+1] token ids of the last batch
}

// NewTrainer builds the graph and the initial weights for c.
func NewTrainer(c Config) (*Trainer, error) {
	c.fill()
	if err := c.validate(); err != nil {
		return nil, err
	}
	t := &Trainer{Config: c, Vocab: GrammarVocab()}
	if err := t.build(); err != nil {
		return nil, fmt.Errorf("train: building the graph: %w", err)
	}
	t.data = rand.New(rand.NewPCG(c.Seed, 0x7a0b0c5))
	return t, nil
}

// build makes the expression graph. Any gorgonia error is returned.
func (t *Trainer) build() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	c := t.Config
	V, D, F, H, T := t.Vocab.Len(), c.Dim, c.Hidden, c.Heads, c.SeqLen
	B, HS := c.Batch, c.Dim/c.Heads
	N := B * T
	g := G.NewGraph()
	t.g = g
	f32 := tensor.Float32
	must := func(n *G.Node, err error) *G.Node {
		if err != nil {
			panic(err)
		}
		return n
	}
	init := rand.New(rand.NewPCG(c.Seed, 0x1217))
	param := func(name string, r, cols int, std float64) *G.Node {
		back := make([]float32, r*cols)
		for i := range back {
			if std < 0 {
				back[i] = 1
			} else {
				back[i] = float32(init.NormFloat64() * std)
			}
		}
		n := G.NewMatrix(g, f32, G.WithShape(r, cols), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(r, cols), tensor.WithBacking(back))))
		t.params = append(t.params, n)
		t.names = append(t.names, name)
		return n
	}
	constant := func(name string, r, cols int, back []float32) *G.Node {
		return G.NewMatrix(g, f32, G.WithShape(r, cols), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(r, cols), tensor.WithBacking(back))))
	}

	// RoPE tables, computed exactly as model.NewModel and forward do.
	freq := make([]float32, HS/2)
	for i := range freq {
		e := float32(2*i) / float32(HS)
		freq[i] = 1 / float32(math.Pow(10000, float64(e)))
	}
	cosv, sinv := make([]float32, N*D), make([]float32, N*D)
	for n := 0; n < N; n++ {
		pos := float32(n % T)
		for i := 0; i < D; i += 2 {
			val := pos * freq[(i%HS)/2]
			cs, sn := float32(math.Cos(float64(val))), float32(math.Sin(float64(val)))
			cosv[n*D+i], cosv[n*D+i+1] = cs, cs
			sinv[n*D+i], sinv[n*D+i+1] = sn, sn
		}
	}
	swap := make([]float32, D*D) // (x·P)[i] = -x[i+1], (x·P)[i+1] = x[i]
	for i := 0; i < D; i += 2 {
		swap[(i+1)*D+i] = -1
		swap[i*D+i+1] = 1
	}
	mask := make([]float32, T*T)
	for i := 0; i < T; i++ {
		for j := i + 1; j < T; j++ {
			mask[i*T+j] = -1e9
		}
	}
	cosN, sinN := constant("rope_cos", N, D, cosv), constant("rope_sin", N, D, sinv)
	swapN, maskN := constant("rope_swap", D, D, swap), constant("causal_mask", T, T, mask)

	t.inp = tensor.New(tensor.WithShape(N, V), tensor.WithBacking(make([]float32, N*V)))
	t.tgt = tensor.New(tensor.WithShape(N, V), tensor.WithBacking(make([]float32, N*V)))
	t.inNode = G.NewMatrix(g, f32, G.WithShape(N, V), G.WithName("input"), G.WithValue(t.inp))
	t.tgNode = G.NewMatrix(g, f32, G.WithShape(N, V), G.WithName("target"), G.WithValue(t.tgt))

	const std = 0.02
	outStd := std / math.Sqrt(2*float64(c.Layers))
	emb := param("token_embd", V, D, std)
	rms := func(a, gain *G.Node) *G.Node {
		ms := must(G.Mean(must(G.Square(a)), 1))
		r := must(G.Sqrt(must(G.Add(ms, G.NewConstant(float32(1e-5))))))
		an := must(G.BroadcastHadamardDiv(a, r, nil, []byte{1}))
		return must(G.BroadcastHadamardProd(an, gain, nil, []byte{0}))
	}
	rope := func(a *G.Node) *G.Node {
		return must(G.Add(must(G.HadamardProd(a, cosN)), must(G.HadamardProd(must(G.Mul(a, swapN)), sinN))))
	}
	heads := func(a *G.Node) *G.Node { // [N][D] → [B·H][T][HS]
		r := must(G.Reshape(a, tensor.Shape{B, T, H, HS}))
		r = must(G.Transpose(r, 0, 2, 1, 3))
		return must(G.Reshape(r, tensor.Shape{B * H, T, HS}))
	}
	x := must(G.Mul(t.inNode, emb))
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		attnNorm := param(p+"attn_norm", 1, D, -1)
		wq, wk, wv := param(p+"attn_q", D, D, std), param(p+"attn_k", D, D, std), param(p+"attn_v", D, D, std)
		wo := param(p+"attn_output", D, D, outStd)
		ffnNorm := param(p+"ffn_norm", 1, D, -1)
		w1, w3 := param(p+"ffn_gate", D, F, std), param(p+"ffn_up", D, F, std)
		w2 := param(p+"ffn_down", F, D, outStd)

		xn := rms(x, attnNorm)
		q := heads(rope(must(G.Mul(xn, wq))))
		k := heads(rope(must(G.Mul(xn, wk))))
		v := heads(must(G.Mul(xn, wv)))
		s := must(G.BatchedMatMul(q, k, false, true))
		s = must(G.Mul(s, G.NewConstant(float32(1/math.Sqrt(float64(HS))))))
		s = must(G.BroadcastAdd(s, maskN, nil, []byte{0}))
		o := must(G.BatchedMatMul(must(G.SoftMax(s, 2)), v, false, false))
		o = must(G.Reshape(o, tensor.Shape{B, H, T, HS}))
		o = must(G.Transpose(o, 0, 2, 1, 3))
		o = must(G.Reshape(o, tensor.Shape{N, D}))
		x = must(G.Add(x, must(G.Mul(o, wo))))

		xn = rms(x, ffnNorm)
		a := must(G.Mul(xn, w1))
		silu := must(G.HadamardProd(a, must(G.Sigmoid(a))))
		x = must(G.Add(x, must(G.Mul(must(G.HadamardProd(silu, must(G.Mul(xn, w3)))), w2))))
	}
	outNorm := param("output_norm", 1, D, -1)
	logits := must(G.Mul(rms(x, outNorm), must(G.Transpose(emb))))
	lsm := must(G.LogSoftMax(logits, 1))
	sum := must(G.Sum(must(G.HadamardProd(lsm, t.tgNode))))
	t.loss = must(G.Mul(sum, G.NewConstant(float32(-1/float64(N)))))
	if _, err := G.Grad(t.loss, t.params...); err != nil {
		return err
	}
	t.vm = G.NewTapeMachine(g, G.BindDualValues(t.params...))
	for _, p := range t.params {
		n := p.Shape().TotalSize()
		t.m = append(t.m, make([]float32, n))
		t.v = append(t.v, make([]float32, n))
	}
	return nil
}

// Close releases the machine.
func (t *Trainer) Close() error { return t.vm.Close() }

// storyStream appends stories from r, each as BOS, its tokens and EOS, until
// ids holds n tokens.
func (t *Trainer) storyStream(r *rand.Rand, ids []int, n int) []int {
	var b strings.Builder
	for len(ids) < n {
		b.Reset()
		story(r, &b)
		ids = append(ids, BOS)
		ids = append(ids, t.Vocab.Encode(b.String())...)
		ids = append(ids, EOS)
	}
	return ids[:n]
}

// NextBatch draws the next training batch: Batch rows of SeqLen+1 tokens,
// each starting at the BOS of a fresh story and filled with the stories
// that follow it.
func (t *Trainer) NextBatch() []int {
	c := t.Config
	ids := make([]int, 0, c.Batch*(c.SeqLen+1))
	for range c.Batch {
		ids = t.storyStream(t.data, ids, len(ids)+c.SeqLen+1)
	}
	return ids
}

// HeldOutBatch is a batch of stories from seed Seed+1, never trained on.
func (t *Trainer) HeldOutBatch() []int {
	r := rand.New(rand.NewPCG(t.Config.Seed+1, 0x7a0b0c5))
	c := t.Config
	ids := make([]int, 0, c.Batch*(c.SeqLen+1))
	for range c.Batch {
		ids = t.storyStream(r, ids, len(ids)+c.SeqLen+1)
	}
	return ids
}

// run computes the loss (mean cross-entropy, natural log, over the
// Batch×SeqLen next-token predictions) and the gradients for batch.
func (t *Trainer) run(batch []int) (float64, error) {
	c := t.Config
	T, V := c.SeqLen, t.Vocab.Len()
	if len(batch) != c.Batch*(T+1) {
		return 0, fmt.Errorf("train: batch has %d ids, want %d", len(batch), c.Batch*(T+1))
	}
	for i, id := range batch {
		if id < 0 || id >= V {
			return 0, fmt.Errorf("train: batch id %d (index %d) outside the vocabulary [0,%d)", id, i, V)
		}
	}
	in, tg := t.inp.Data().([]float32), t.tgt.Data().([]float32)
	clear(in)
	clear(tg)
	for b := 0; b < c.Batch; b++ {
		row := batch[b*(T+1) : (b+1)*(T+1)]
		for i := 0; i < T; i++ {
			n := b*T + i
			in[n*V+row[i]] = 1
			tg[n*V+row[i+1]] = 1
		}
	}
	// Gradients accumulate across runs (gorgonia's solvers zero them after
	// each update), so clear them first. Before the first run there are none.
	for _, p := range t.params {
		if gv, err := p.Grad(); err == nil && gv != nil {
			clear(gv.Data().([]float32))
		}
	}
	t.vm.Reset()
	if err := t.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	return float64(t.loss.Value().Data().(float32)), nil
}

// Loss returns the mean cross-entropy of batch (Batch rows of SeqLen+1 ids)
// under the current weights, without changing them.
func (t *Trainer) Loss(batch []int) (float64, error) { return t.run(batch) }

// Step runs one optimizer step on batch and returns its loss (before the
// update).
func (t *Trainer) Step(batch []int) (float64, error) {
	loss, err := t.run(batch)
	if err != nil {
		return 0, err
	}
	c := t.Config
	grads := make([][]float32, len(t.params))
	var norm float64
	for i, p := range t.params {
		gv, err := p.Grad()
		if err != nil {
			return 0, fmt.Errorf("train: gradient of %s: %w", t.names[i], err)
		}
		grads[i] = gv.Data().([]float32)
		for _, g := range grads[i] {
			norm += float64(g) * float64(g)
		}
	}
	norm = math.Sqrt(norm)
	scale := 1.0
	if norm > c.Clip {
		scale = c.Clip / norm
	}
	t.step++
	lr := t.LR(t.step)
	const b1, b2, eps = 0.9, 0.99, 1e-8
	bc1 := 1 - math.Pow(b1, float64(t.step))
	bc2 := 1 - math.Pow(b2, float64(t.step))
	for i, p := range t.params {
		w := p.Value().Data().([]float32)
		m, v := t.m[i], t.v[i]
		for j, g := range grads[i] {
			gs := float64(g) * scale
			m[j] = float32(b1*float64(m[j]) + (1-b1)*gs)
			v[j] = float32(b2*float64(v[j]) + (1-b2)*gs*gs)
			mh := float64(m[j]) / bc1
			vh := float64(v[j]) / bc2
			w[j] -= float32(lr * mh / (math.Sqrt(vh) + eps))
		}
	}
	return loss, nil
}

// LR is the learning rate of step s (1-based): linear warm-up over Warmup
// steps, then a cosine decay to LR/10 at Steps.
func (t *Trainer) LR(s int) float64 {
	c := t.Config
	if s <= c.Warmup {
		return c.LR * float64(s) / float64(c.Warmup)
	}
	frac := float64(s-c.Warmup) / float64(max(c.Steps-c.Warmup, 1))
	frac = min(frac, 1)
	return c.LR * (0.1 + 0.9*0.5*(1+math.Cos(math.Pi*frac)))
}

// Model returns the current weights as a model.Model (copied, transposed to
// the engine's [out][in] layout; the classifier aliases the embedding).
func (t *Trainer) Model() (*model.Model, error) {
	c := t.Config
	D, F, L := c.Dim, c.Hidden, c.Layers
	val := func(i int) []float32 { return t.params[i].Value().Data().([]float32) }
	// transpose appends the [out][in] form of the [in][out] matrix a.
	transpose := func(dst, a []float32, in, out int) []float32 {
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				dst = append(dst, a[i*out+o])
			}
		}
		return dst
	}
	var w model.Weights
	w.TokenEmbedding = append([]float32(nil), val(0)...)
	k := 1
	for l := 0; l < L; l++ {
		w.RMSAtt = append(w.RMSAtt, val(k)...)
		w.WQ = transpose(w.WQ, val(k+1), D, D)
		w.WK = transpose(w.WK, val(k+2), D, D)
		w.WV = transpose(w.WV, val(k+3), D, D)
		w.WO = transpose(w.WO, val(k+4), D, D)
		w.RMSFFN = append(w.RMSFFN, val(k+5)...)
		w.W1 = transpose(w.W1, val(k+6), D, F)
		w.W3 = transpose(w.W3, val(k+7), D, F)
		w.W2 = transpose(w.W2, val(k+8), F, D)
		k += 9
	}
	w.RMSFinal = append([]float32(nil), val(k)...)
	w.WCls = w.TokenEmbedding
	return model.NewModel(c.ModelConfig(t.Vocab.Len()), w)
}

// Progress is what Train reports after a step.
type Progress struct {
	Step, Steps  int
	Loss         float64 // the step's training loss (before its update)
	LR           float64
	TokensPerSec float64 // trained tokens per second since the start
	Elapsed, ETA time.Duration
}

// Train runs c.Steps steps from a fresh trainer, calling report (if not
// nil) after each, and returns the trainer. It stops with ctx's error when
// ctx is done.
func Train(ctx context.Context, c Config, report func(Progress)) (*Trainer, error) {
	t, err := NewTrainer(c)
	if err != nil {
		return nil, err
	}
	c = t.Config
	start := time.Now()
	for s := 1; s <= c.Steps; s++ {
		if err := ctx.Err(); err != nil {
			t.Close()
			return nil, err
		}
		loss, err := t.Step(t.NextBatch())
		if err != nil {
			t.Close()
			return nil, err
		}
		if report != nil {
			el := time.Since(start)
			report(Progress{Step: s, Steps: c.Steps, Loss: loss, LR: t.LR(s),
				TokensPerSec: float64(s*c.Batch*c.SeqLen) / el.Seconds(), Elapsed: el,
				ETA: time.Duration(float64(el) / float64(s) * float64(c.Steps-s))})
		}
	}
	return t, nil
}

// Greedy returns the greedy continuation of BOS+prompt under m, up to n
// tokens or through the first EOS: the text of prompt and continuation, and
// the continuation's ids.
func Greedy(m *model.Model, v *Vocab, prompt string, n int) (string, []int, error) {
	ids := append([]int{BOS}, v.Encode(prompt)...)
	g, err := m.GenerateSampled(ids, model.GenerateOptions{MaxTokens: n, EOS: EOS})
	if err != nil {
		return "", nil, err
	}
	return v.Decode(append(ids, g.IDs...)), g.IDs, nil
}
