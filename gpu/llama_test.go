package gpu

import (
	"fmt"
	"math"
	"testing"

	"taobox/model"
	"taobox/model/gguf"
)

// The selftest's random models load in the CPU engine, and every greedy
// choice of their 32-token generations wins by a margin far above the
// float32 drift between the GPU kernels and the CPU engine (summation order,
// expf: ~1e-5 on these logits), so the GPU must pick the same tokens.
func TestLlamaTestModelsMargins(t *testing.T) {
	for _, tm := range llamaTestModels() {
		t.Run(tm.name, func(t *testing.T) {
			f, err := tm.file()
			if err != nil {
				t.Fatal(err)
			}
			c, err := model.GGUFConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			shape := func(c model.Config) model.Config {
				c.RMSEps, c.RopeBase = llamaEps(c), llamaRopeBase(c)
				return c
			}
			if shape(c) != shape(tm.cfg) {
				t.Fatalf("config read back %+v, want %+v", c, tm.cfg)
			}
			for _, ts := range llamaTensors(c, c.RopeNeox) {
				info, _, err := f.Tensor(ts.name)
				if err != nil {
					t.Fatal(err)
				}
				if want := tm.typ; !ts.norm && info.Type != want {
					t.Fatalf("%s: type %s, want %s", ts.name, info.Type, want)
				}
			}
			m, err := model.ModelFromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			ids, lps, err := m.Generate(tm.prompt, 32)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 32 {
				t.Fatalf("generated %d tokens", len(ids))
			}
			// Replay and measure the gap between the two best logits.
			var logits []float32
			for pos, tok := range tm.prompt {
				if logits, err = m.Forward(tok, pos); err != nil {
					t.Fatal(err)
				}
			}
			minGap := math.Inf(1)
			distinct := map[int]bool{}
			for i, id := range ids {
				if got := model.Argmax(logits); got != id {
					t.Fatalf("replay token %d: %d, Generate gave %d", i, got, id)
				}
				if lp := model.LogProb(logits, id); lp != lps[i] {
					t.Fatalf("replay log-prob %d: %v vs %v", i, lp, lps[i])
				}
				distinct[id] = true
				best, second := float32(math.Inf(-1)), float32(math.Inf(-1))
				for _, v := range logits {
					if v > best {
						best, second = v, best
					} else if v > second {
						second = v
					}
				}
				minGap = min(minGap, float64(best-second))
				if i == len(ids)-1 {
					break
				}
				if logits, err = m.Forward(id, len(tm.prompt)+i); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: %d distinct tokens, smallest top-2 logit gap %.3g", tm.name, len(distinct), minGap)
			need := 1e-3
			if tm.typ == gguf.TypeQ8_0 || tm.typ == gguf.TypeQ4_0 {
				need = 1e-2
			}
			if minGap < need {
				t.Errorf("smallest top-2 logit gap %.3g < %g: a GPU rounding difference could flip a greedy token; change the seed", minGap, need)
			}
			if len(distinct) < 4 {
				t.Errorf("only %d distinct tokens: a degenerate test model", len(distinct))
			}
		})
	}
}

func TestLlamaLayout(t *testing.T) {
	c := LlamaBenchConfig(1024)
	ts := llamaTensors(c, false)
	if len(ts) != 1+9*c.NLayers+1 {
		t.Fatalf("%d tensors", len(ts))
	}
	total, err := layoutLlama(ts, func(string) gguf.GGMLType { return gguf.TypeF16 })
	if err != nil {
		t.Fatal(err)
	}
	var params int64
	for i, x := range ts {
		if x.off%llamaAlign != 0 || (i > 0 && x.off < ts[i-1].off+ts[i-1].bytes) {
			t.Fatalf("%s: offset %d", x.name, x.off)
		}
		params += int64(x.rows) * int64(x.cols)
	}
	// Llama-3.2-1B: 1.236e9 parameters with tied embeddings.
	if params < 1.2e9 || params > 1.3e9 {
		t.Errorf("%d parameters, want about 1.24e9", params)
	}
	var want int64 // F16 matrices, F32 norms, no padding needed at these sizes
	for _, x := range ts {
		if x.norm {
			want += 4 * int64(x.cols)
		} else {
			want += 2 * int64(x.rows) * int64(x.cols)
		}
	}
	if total != want {
		t.Errorf("total %d bytes, want %d", total, want)
	}
	// Tied classifier: the whole embedding table is read by the logits.
	if bpt := weightBytesPerToken(ts, c); bpt != total {
		t.Errorf("bytes per token %d, total %d", bpt, total)
	}
	bpt := weightBytesPerToken(ts, c)
	t.Logf("1B-like F16: %d params, %.3f GB weights, %.3f GB read per token; at 3.35 TB/s: %.0f tok/s, 60%% = %.0f tok/s",
		params, float64(total)/1e9, float64(bpt)/1e9, 3.35e12/float64(bpt), 0.6*3.35e12/float64(bpt))

	if _, err := layoutLlama(llamaTensors(c, false), func(string) gguf.GGMLType { return gguf.TypeQ4_1 }); err == nil {
		t.Error("Q4_1 accepted")
	}
	// Q8_0 sizes: 34 bytes per 32.
	ts = llamaTensors(model.Config{Dim: 64, HiddenDim: 96, NLayers: 1, NHeads: 4, NKVHeads: 2, VocabSize: 10, SeqLen: 8}, false)
	if _, err := layoutLlama(ts, func(string) gguf.GGMLType { return gguf.TypeQ8_0 }); err != nil {
		t.Fatal(err)
	}
	if ts[0].bytes != 10*2*34 {
		t.Errorf("embedding %d bytes", ts[0].bytes)
	}
}

func TestRopeTable(t *testing.T) {
	c := model.Config{Dim: 64, HiddenDim: 96, NLayers: 1, NHeads: 4, NKVHeads: 2, VocabSize: 10, SeqLen: 8}
	rt := ropeTable(c)
	hs := c.HeadSize()
	if len(rt) != c.SeqLen*hs {
		t.Fatalf("%d entries", len(rt))
	}
	for pos := 0; pos < c.SeqLen; pos++ {
		for i := 0; i < hs/2; i++ {
			th := float64(pos) * math.Pow(10000, -float64(2*i)/float64(hs))
			cs, sn := rt[(pos*hs/2+i)*2], rt[(pos*hs/2+i)*2+1]
			if math.Abs(float64(cs)-math.Cos(th)) > 1e-5 || math.Abs(float64(sn)-math.Sin(th)) > 1e-5 {
				t.Fatalf("pos %d pair %d: (%v, %v), want about (%v, %v)", pos, i, cs, sn, math.Cos(th), math.Sin(th))
			}
		}
	}
}

func TestHBMBandwidth(t *testing.T) {
	for name, want := range map[string]float64{
		"NVIDIA H100 80GB HBM3": 3.35e12, "NVIDIA H100 PCIe": 2.0e12, "NVIDIA H200": 4.8e12, "NVIDIA GeForce RTX 4090": 0,
	} {
		if got := HBMBandwidth(name); got != want {
			t.Errorf("%s: %g, want %g", name, got, want)
		}
	}
}

// refLlama is a plain-Go reference of what the GPU kernels compute (the
// same quantization of the activations for Q8_0/Q4_0 products, float64
// sums elsewhere): it checks the kernels' arithmetic on machines without a
// GPU, against the CPU engine.
type refLlama struct {
	c      model.Config
	f      *gguf.File
	kc, vc [][]float32 // [layer][pos*kv+i]
	rope   []float32
	f32    bool // float32 sums in the Q8 products (a perturbation, for tests)
}

func newRefLlama(t *testing.T, f *gguf.File) *refLlama {
	c, err := model.GGUFConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	r := &refLlama{c: c, f: f, rope: ropeTable(c)}
	for range c.NLayers {
		r.kc = append(r.kc, make([]float32, c.SeqLen*c.KVDim()))
		r.vc = append(r.vc, make([]float32, c.SeqLen*c.KVDim()))
	}
	return r
}

func (r *refLlama) tensor(name string) (gguf.GGMLType, []byte) {
	info, raw, err := r.f.Tensor(name)
	if err != nil {
		panic(err)
	}
	return info.Type, raw
}

func (r *refLlama) vec(name string, n int) []float32 {
	typ, raw := r.tensor(name)
	v := make([]float32, n)
	if err := gguf.ToFloat32(typ, raw, n, v); err != nil {
		panic(err)
	}
	return v
}

// refQ8 quantizes x as stage_q8 does.
func refQ8(x []float32) ([]int8, []float32) {
	q := make([]int8, len(x))
	d := make([]float32, len(x)/32)
	for b := range d {
		var amax float32
		for _, v := range x[b*32 : b*32+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		for j, v := range x[b*32 : b*32+32] {
			q[b*32+j] = int8(math.RoundToEven(float64(v * id)))
		}
		d[b] = gguf.HalfToFloat32(gguf.Float32ToHalf(amax / 127))
	}
	return q, d
}

// matvec computes W·x for the rows of the named matrix (n columns).
func (r *refLlama) matvec(name string, x []float32, rows, n int) []float32 {
	typ, raw := r.tensor(name)
	out := make([]float32, rows)
	switch typ {
	case gguf.TypeQ8_0, gguf.TypeQ4_0:
		xq, xd := refQ8(x)
		w := make([]float32, n)
		rb, _ := gguf.RowSize(typ, n)
		for i := range out {
			row := raw[i*rb : (i+1)*rb]
			var acc float64
			for b := 0; b < n/32; b++ {
				// integer values of the weights: dequantize with d = 1
				var dw float32
				var blk []byte
				if typ == gguf.TypeQ8_0 {
					blk = row[b*34 : b*34+34]
				} else {
					blk = row[b*18 : b*18+18]
				}
				dw = gguf.HalfToFloat32(uint16(blk[0]) | uint16(blk[1])<<8)
				one := []byte{0x00, 0x3c} // f16 1.0
				tmp := append(append([]byte{}, one...), blk[2:]...)
				if err := gguf.ToFloat32(typ, tmp, 32, w[:32]); err != nil {
					panic(err)
				}
				var s int32
				for j := range 32 {
					s += int32(w[j]) * int32(xq[b*32+j])
				}
				if r.f32 {
					acc = float64(float32(acc) + float32(s)*(dw*xd[b]))
				} else {
					acc += float64(float32(s) * (dw * xd[b]))
				}
			}
			out[i] = float32(acc)
		}
	default:
		w := make([]float32, n)
		rb, _ := gguf.RowSize(typ, n)
		for i := range out {
			if err := gguf.ToFloat32(typ, raw[i*rb:(i+1)*rb], n, w); err != nil {
				panic(err)
			}
			var acc float64
			for j := range w {
				acc += float64(w[j]) * float64(x[j])
			}
			out[i] = float32(acc)
		}
	}
	return out
}

func refNorm(x, w []float32, eps float32) []float32 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	s := float32(1 / math.Sqrt(float64(float32(ss)/float32(len(x))+eps)))
	o := make([]float32, len(x))
	for i, v := range x {
		o[i] = w[i] * (s * v)
	}
	return o
}

func (r *refLlama) forward(tok, pos int) []float32 {
	c := r.c
	dim, hd, kv, hs := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize()
	eps := llamaEps(c)
	x := make([]float32, dim)
	{
		typ, raw := r.tensor("token_embd.weight")
		rb, _ := gguf.RowSize(typ, dim)
		if err := gguf.ToFloat32(typ, raw[tok*rb:(tok+1)*rb], dim, x); err != nil {
			panic(err)
		}
	}
	for l := range c.NLayers {
		p := fmt.Sprintf("blk.%d.", l)
		xn := refNorm(x, r.vec(p+"attn_norm.weight", dim), eps)
		q := r.matvec(p+"attn_q.weight", xn, dim, dim)
		k := r.matvec(p+"attn_k.weight", xn, kv, dim)
		v := r.matvec(p+"attn_v.weight", xn, kv, dim)
		if _, _, err := r.f.Tensor(p + "attn_q.bias"); err == nil {
			for i, b := range r.vec(p+"attn_q.bias", dim) {
				q[i] += b
			}
			for i, b := range r.vec(p+"attn_k.bias", kv) {
				k[i] += b
			}
			for i, b := range r.vec(p+"attn_v.bias", kv) {
				v[i] += b
			}
		}
		rot := func(a []float32, i0, i1, j int) {
			cs, sn := r.rope[(pos*hs/2+j)*2], r.rope[(pos*hs/2+j)*2+1]
			v0, v1 := a[i0], a[i1]
			a[i0] = v0*cs - v1*sn
			a[i1] = v0*sn + v1*cs
		}
		for pi := 0; pi < dim/2; pi++ {
			var i0, i1, j int
			if c.RopeNeox {
				h := pi / (hs / 2)
				j = pi % (hs / 2)
				i0, i1 = h*hs+j, h*hs+j+hs/2
			} else {
				i0, i1, j = 2*pi, 2*pi+1, (2*pi%hs)/2
			}
			rot(q, i0, i1, j)
			if i1 < kv {
				rot(k, i0, i1, j)
			}
		}
		copy(r.kc[l][pos*kv:], k)
		copy(r.vc[l][pos*kv:], v)
		att := make([]float32, dim)
		for h := range c.NHeads {
			off := (h / (c.NHeads / c.NKVHeads)) * hs
			sc := make([]float64, pos+1)
			m := math.Inf(-1)
			for t := range sc {
				var s float64
				for i := range hs {
					s += float64(q[h*hs+i]) * float64(r.kc[l][t*kv+off+i])
				}
				sc[t] = s / math.Sqrt(float64(hs))
				m = max(m, sc[t])
			}
			var sum float64
			for t := range sc {
				sc[t] = math.Exp(sc[t] - m)
				sum += sc[t]
			}
			for i := range hs {
				var a float64
				for t := range sc {
					a += sc[t] / sum * float64(r.vc[l][t*kv+off+i])
				}
				att[h*hs+i] = float32(a)
			}
		}
		o := r.matvec(p+"attn_output.weight", att, dim, dim)
		for i := range x {
			x[i] += o[i]
		}
		xn = refNorm(x, r.vec(p+"ffn_norm.weight", dim), eps)
		g := r.matvec(p+"ffn_gate.weight", xn, hd, dim)
		u := r.matvec(p+"ffn_up.weight", xn, hd, dim)
		for i := range g {
			a := g[i]
			a *= float32(1 / (1 + math.Exp(float64(-a))))
			g[i] = a * u[i]
		}
		dn := r.matvec(p+"ffn_down.weight", g, dim, hd)
		for i := range x {
			x[i] += dn[i]
		}
	}
	xn := refNorm(x, r.vec("output_norm.weight", dim), eps)
	cls := "output.weight"
	if c.SharedClassifier {
		cls = "token_embd.weight"
	}
	return r.matvec(cls, xn, c.VocabSize, dim)
}

// TestLlamaReference runs the plain-Go reference of the GPU arithmetic
// against the CPU engine on every selftest model: greedy tokens equal and
// log-probs within the selftest's bounds.
func TestLlamaReference(t *testing.T) {
	for _, tm := range llamaTestModels() {
		t.Run(tm.name, func(t *testing.T) {
			f, err := tm.file()
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.ModelFromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			ids, lps, err := m.Generate(tm.prompt, 32)
			if err != nil {
				t.Fatal(err)
			}
			r := newRefLlama(t, f)
			var logits []float32
			for pos, tok := range tm.prompt {
				logits = r.forward(tok, pos)
			}
			var diffs []float64
			for i, id := range ids {
				got := model.Argmax(logits)
				diffs = append(diffs, model.LogProb(logits, id)-lps[i])
				if got != id {
					t.Fatalf("token %d: reference %d, CPU %d", i, got, id)
				}
				if i < len(ids)-1 {
					logits = r.forward(id, len(tm.prompt)+i)
				}
			}
			maxd, median, err := tm.check(diffs)
			t.Logf("|dlogprob| max %.2g median %.2g", maxd, median)
			if err != nil {
				t.Errorf("%v: %.1e", err, diffs)
			}
		})
	}
}

// TestLlamaQuantSensitivity shows why the quantized test models get looser
// log-prob bounds: the reference against itself with float32 instead of
// float64 sums in the Q8 products (a perturbation of a few ulps) already
// drifts like the GPU against the CPU engine.
func TestLlamaQuantSensitivity(t *testing.T) {
	for _, tm := range llamaTestModels() {
		if tm.typ != gguf.TypeQ8_0 {
			continue
		}
		f, err := tm.file()
		if err != nil {
			t.Fatal(err)
		}
		a, b := newRefLlama(t, f), newRefLlama(t, f)
		b.f32 = true
		var la, lb []float32
		for pos, tok := range tm.prompt {
			la, lb = a.forward(tok, pos), b.forward(tok, pos)
		}
		var worst float64
		for i := range 32 {
			id := model.Argmax(la)
			worst = max(worst, math.Abs(model.LogProb(la, id)-model.LogProb(lb, id)))
			la, lb = a.forward(id, len(tm.prompt)+i), b.forward(id, len(tm.prompt)+i)
		}
		t.Logf("%s: float64 vs float32 sums: max |dlogprob| %.2g", tm.name, worst)
	}
}

// TestLlamaBatchRows: the batched prompt's chunk is 256 positions (at
// most the context); its attention scratch what a full chunk at the end of
// the context needs, at most 64 MiB; a chunk takes as many positions as
// fit that scratch with the stride of its last position, at least 1.
func TestLlamaBatchRows(t *testing.T) {
	long := LlamaBenchConfig(131072) // 32 heads
	for _, tc := range []struct {
		c               model.Config
		rows            int
		scratch         int64
		pos0, want, got int
	}{
		{LlamaBenchConfig(1024), 256, 32 << 20, 0, 256, 256},                   // 256 × 32 × 1024 × 4 B
		{LlamaBenchConfig(1024), 256, 32 << 20, 768, 256, 256},                 // the last chunk fits exactly
		{long, 256, 64 << 20, 0, 256, 256},                                     // early in a long context: full
		{long, 256, 64 << 20, 1 << 16, 256, 7},                                 // 7 × 32 × 65543 × 4 ≤ 64 MiB < 8 × 32 × 65544 × 4
		{long, 256, 64 << 20, 131071, 1, 1},                                    // never below 1
		{model.Config{NHeads: 4, SeqLen: 48}, 48, 48 * 4 * 48 * 4, 10, 38, 38}, // the context
	} {
		if r := llamaBatchRows(tc.c); r != tc.rows {
			t.Errorf("heads %d seq %d: %d rows, want %d", tc.c.NHeads, tc.c.SeqLen, r, tc.rows)
		}
		sc := llamaAttScratch(tc.c, tc.rows)
		if sc != tc.scratch {
			t.Errorf("heads %d seq %d: scratch %d, want %d", tc.c.NHeads, tc.c.SeqLen, sc, tc.scratch)
		}
		got := llamaChunkRows(tc.c, tc.pos0, tc.want, sc)
		if got != tc.got {
			t.Errorf("heads %d seq %d: chunk at %d of %d: %d rows, want %d", tc.c.NHeads, tc.c.SeqLen, tc.pos0, tc.want, got, tc.got)
		}
		if need := int64(got) * int64(tc.c.NHeads) * int64(tc.pos0+got) * 4; need > sc {
			t.Errorf("chunk of %d needs %d bytes of %d", got, need, sc)
		}
	}
}
