package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Random-weight models in the shapes of the llama2.c "stories" checkpoints.
// They are for cross-checks and benchmarks: the same (shape, seed) always
// gives the same weights, bit for bit, on every platform (a PCG stream
// turned into float32 by integer arithmetic only), so a test can regenerate
// a model instead of committing it.
//
// Weight scale. Matrices are uniform in ±sqrt(3/in) (unit variance out for
// unit variance in), norms uniform in [0.5, 1.5], embeddings uniform in
// ±1, and the classifier is scaled so that logits have a standard deviation
// of about SynthLogitScale: large enough that the greedy token usually wins
// by a margin far above float32 rounding (so independent engines agree),
// small enough that the distribution is not one-hot.
//
// Design note: an untied classifier matters for greedy cross-checks. With
// tied random weights the largest logit is almost always the input token's
// own row, so greedy decoding repeats the prompt's last token and checks
// little.

// SynthLogitScale is the approximate standard deviation of a synthesized
// model's logits.
const SynthLogitScale = 4

// SynthShapes are the named shapes Synthesize accepts, llama2.c's stories
// models (tied classifier, as trained).
var SynthShapes = map[string]Config{
	"s260K": {Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4, VocabSize: 512, SeqLen: 512, SharedClassifier: true},
	"s15M":  {Dim: 288, HiddenDim: 768, NLayers: 6, NHeads: 6, NKVHeads: 6, VocabSize: 32000, SeqLen: 256, SharedClassifier: true},
	"s42M":  {Dim: 512, HiddenDim: 1376, NLayers: 8, NHeads: 8, NKVHeads: 8, VocabSize: 32000, SeqLen: 1024, SharedClassifier: true},
	"s110M": {Dim: 768, HiddenDim: 2048, NLayers: 12, NHeads: 12, NKVHeads: 12, VocabSize: 32000, SeqLen: 1024, SharedClassifier: true},
}

// SynthShapeNames lists SynthShapes' keys, sorted.
func SynthShapeNames() []string {
	names := make([]string, 0, len(SynthShapes))
	for n := range SynthShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Synthesize builds a random-weight model of shape c from seed (see the
// notes above). c.SharedClassifier chooses a tied or untied classifier. The
// weights are drawn in a fixed order (embedding, then per layer attention
// norm, q, k, v, o, ffn norm, w1, w2, w3, then the final norm and the
// classifier), so growing one tensor changes those after it.
func Synthesize(c Config, seed uint64) (*Model, error) {
	if c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.VocabSize <= 0 || c.SeqLen <= 0 {
		return nil, fmt.Errorf("synthesize: config %+v: every size must be positive", c)
	}
	if n, ok := c.floatCount(); !ok || n > 1<<31 {
		return nil, fmt.Errorf("synthesize: config %+v is too large", c)
	}
	r := rand.New(rand.NewPCG(seed, 0x7461_6f62_6f78_0001)) // "taobox" + 1
	uniform := func(n int, lo, hi float32) []float32 {
		s := make([]float32, n)
		for i := range s {
			// 24 random bits: exact in float32 and platform-independent.
			u := float32(r.Uint32()>>8) / (1 << 24)
			s[i] = lo + (hi-lo)*u
		}
		return s
	}
	sym := func(n, in int, gain float64) []float32 {
		a := float32(gain * math.Sqrt(3/float64(in)))
		return uniform(n, -a, a)
	}
	d, hd, l, v, kv := c.Dim, c.HiddenDim, c.NLayers, c.VocabSize, c.KVDim()
	if c.Dim%c.NHeads != 0 || c.NHeads%c.NKVHeads != 0 {
		return nil, fmt.Errorf("synthesize: config %+v: dim must split into heads and n_heads must be a multiple of n_kv_heads", c)
	}
	var w Weights
	w.TokenEmbedding = uniform(v*d, -1, 1)
	w.RMSAtt = make([]float32, 0, l*d)
	w.WQ = make([]float32, 0, l*d*d)
	w.WK = make([]float32, 0, l*kv*d)
	w.WV = make([]float32, 0, l*kv*d)
	w.WO = make([]float32, 0, l*d*d)
	w.RMSFFN = make([]float32, 0, l*d)
	w.W1 = make([]float32, 0, l*hd*d)
	w.W2 = make([]float32, 0, l*d*hd)
	w.W3 = make([]float32, 0, l*hd*d)
	for range l {
		w.RMSAtt = append(w.RMSAtt, uniform(d, 0.5, 1.5)...)
		w.WQ = append(w.WQ, sym(d*d, d, 1)...)
		w.WK = append(w.WK, sym(kv*d, d, 1)...)
		w.WV = append(w.WV, sym(kv*d, d, 1)...)
		w.WO = append(w.WO, sym(d*d, d, 1)...)
		w.RMSFFN = append(w.RMSFFN, uniform(d, 0.5, 1.5)...)
		w.W1 = append(w.W1, sym(hd*d, d, 1)...)
		w.W2 = append(w.W2, sym(d*hd, hd, 1)...)
		w.W3 = append(w.W3, sym(hd*d, d, 1)...)
	}
	w.RMSFinal = uniform(d, 0.5, 1.5)
	if c.SharedClassifier {
		w.WCls = w.TokenEmbedding
	} else {
		// The final norm leaves x with an RMS of about 1 (times the norm
		// weights, mean 1), so rows of variance scale²/dim give logits of
		// standard deviation about scale.
		w.WCls = sym(v*d, d, SynthLogitScale)
	}
	return NewModel(c, w)
}
