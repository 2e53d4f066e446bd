//go:build cuda

package gpu

import (
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"gorgonia.org/cu"

	"taobox/model"
	"taobox/model/gguf"
)

// These need libcuda.so.1: a GPU machine's driver (go test -tags cuda -run
// Llama ./gpu/, or the test binary copied there), or scripts/fakecuda, which
// runs the kernels' CUDA text on the CPU (make cuda runs TestLlamaGPUvsCPU
// against it).

func openTestDevice(t *testing.T) *Device {
	d, err := Open(0)
	if err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestLlamaGPUvsCPU(t *testing.T) {
	d := openTestDevice(t)
	t.Logf("device %s", d.Info())
	for _, tm := range llamaTestModels() {
		rep, err := checkLlamaModel(d, tm, 32)
		if err != nil {
			t.Errorf("%s: %v", tm.name, err)
			continue
		}
		t.Logf("%s: %s", tm.name, rep)
	}
}

// TestLlamaBenchSynthetic measures decode on the Llama-3.2-1B-like shape
// (TAOBOX_BENCH_DTYPES, default "f16 q8_0"; TAOBOX_BENCH_DECODE tokens,
// default 256).
func TestLlamaBenchSynthetic(t *testing.T) {
	if os.Getenv("TAOBOX_BENCH") == "" {
		t.Skip("set TAOBOX_BENCH=1")
	}
	d := openTestDevice(t)
	decode := 256
	if s := os.Getenv("TAOBOX_BENCH_DECODE"); s != "" {
		decode, _ = strconv.Atoi(s)
	}
	dtypes := []string{"f16", "q8_0"}
	if s := os.Getenv("TAOBOX_BENCH_DTYPES"); s != "" {
		dtypes = splitFields(s)
	}
	for _, dt := range dtypes {
		r, err := BenchLlamaSynthetic(d, LlamaBenchConfig(1024), dt, decode, 128)
		if err != nil {
			t.Errorf("%s: %v", dt, err)
			continue
		}
		t.Logf("%s", r)
	}
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for _, r := range s + " " {
		if r == ' ' || r == ',' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	return out
}

// TestLlamaProfile times each kernel of a decode step on the synthetic
// 1B-like model (TAOBOX_BENCH=1), repeated back to back.
func TestLlamaProfile(t *testing.T) {
	if os.Getenv("TAOBOX_BENCH") == "" {
		t.Skip("set TAOBOX_BENCH=1")
	}
	d := openTestDevice(t)
	dt := "f16"
	if s := os.Getenv("TAOBOX_PROFILE_DTYPE"); s != "" {
		dt = s
	}
	typ, _ := ParseLlamaDType(dt)
	c := LlamaBenchConfig(1024)
	l, err := NewLlamaSynthetic(d, c, typ, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.Generate([]int{1, 2, 3}, 4); err != nil {
		t.Fatal(err)
	}
	dim, hidden, kvDim, hs := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize()
	w := &l.layers[0]
	x, xb, q, hb, hb2 := uint64(l.x), uint64(l.xb), uint64(l.q), uint64(l.hb), uint64(l.hb2)
	pos := 100
	if err := d.Do(func() error { return l.setPos(pos) }); err != nil {
		t.Fatal(err)
	}
	posp := uint64(l.posp)
	kc, vc := uint64(l.kc), uint64(l.vc)
	rb := func(name string) float64 { return float64(l.byName[name].bytes) }
	G := max(1, l.attnThreads/hs)
	q8 := isQuant(w.q.t)
	// gateUp runs the gate and up products of every layer.
	gateUp := func() error {
		for i := range l.layers {
			v := &l.layers[i]
			if err := l.product([]mvSeg{{v.gate.p, v.gate.t, hb, 0, hidden}, {v.up.p, v.up.t, hb2, 0, hidden}}, x, dim, mvOpts{normw: v.ffnNorm.p, glu: l.fuse}); err != nil {
				return err
			}
		}
		return nil
	}
	cases := []struct {
		name  string
		bytes float64
		fn    func() error
	}{
		{"prep(norm)", 0, func() error { _, err := l.prep(x, w.attnNorm.p, 0, dim, q8, pfRange{}); return err }},
		{"prep(glu)", 0, func() error { _, err := l.prep(hb, 0, hb2, hidden, q8, pfRange{}); return err }},
		{"qkv", rb("blk.0.attn_q.weight") + 2*rb("blk.0.attn_k.weight"), func() error {
			return l.product([]mvSeg{{w.q.p, w.q.t, q, w.bq, dim}, {w.k.p, w.k.t, kc, w.bk, kvDim}, {w.v.p, w.v.t, vc, w.bv, kvDim}}, x, dim, mvOpts{normw: w.attnNorm.p, kvstride: kvDim})
		}},
		{"rope", 0, func() error {
			return l.launch(l.fn.rope, "rope", (dim/2+255)/256, 256, 0, q, kc, uint64(l.rope), posp, uint64(dim), uint64(kvDim), uint64(hs), l.neox)
		}},
		{"attention@100", 0, func() error {
			return l.launch(l.fn.attention, "attention", c.NHeads, l.attnThreads, (hs+G*hs)*4, q, kc, vc, uint64(l.att), xb,
				posp, uint64(hs), uint64(kvDim), uint64(c.NHeads/c.NKVHeads), uint64(c.SeqLen), uint64(c.NHeads), 0, 0)
		}},
		{"o", rb("blk.0.attn_output.weight"), func() error {
			return l.product([]mvSeg{{w.o.p, w.o.t, x, 0, dim}}, xb, dim, mvOpts{accumulate: true})
		}},
		{"gateup", 2 * rb("blk.0.ffn_gate.weight"), func() error {
			return l.product([]mvSeg{{w.gate.p, w.gate.t, hb, 0, hidden}, {w.up.p, w.up.t, hb2, 0, hidden}}, x, dim, mvOpts{normw: w.ffnNorm.p, glu: l.fuse})
		}},
		{"down", rb("blk.0.ffn_down.weight"), func() error {
			return l.product([]mvSeg{{w.down.p, w.down.t, x, 0, dim}}, hb, hidden, mvOpts{accumulate: true})
		}},
		{"logits", rb("token_embd.weight"), func() error {
			return l.product([]mvSeg{{l.cls.p, l.cls.t, uint64(l.logits), 0, c.VocabSize}}, x, dim, mvOpts{normw: l.outNorm.p})
		}},
		{"down 16 layers", 16 * rb("blk.0.ffn_down.weight"), func() error {
			for i := range l.layers {
				if err := l.product([]mvSeg{{l.layers[i].down.p, w.down.t, x, 0, dim}}, hb, hidden, mvOpts{accumulate: true}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"gateup 16 layers", 16 * 2 * rb("blk.0.ffn_gate.weight"), gateUp},
		{"gateup16 wpr2", 16 * 2 * rb("blk.0.ffn_gate.weight"), func() error {
			l.forceWpr = 2
			defer func() { l.forceWpr = 0 }()
			return gateUp()
		}},
		{"gateup16 grid2x", 16 * 2 * rb("blk.0.ffn_gate.weight"), func() error {
			l.gridScale = 2
			defer func() { l.gridScale = 0 }()
			return gateUp()
		}},
		{"argmax", 0, func() error { return l.argmax() }},
		{"embed", 0, func() error {
			return l.launch(l.fn.embed, "embed", (dim+255)/256, 256, 0, l.emb.p, l.emb.t, uint64(l.toks), posp, x, uint64(dim))
		}},
		{"step(no logits)", float64(l.bytesPerTok) - rb("token_embd.weight"), func() error {
			return l.step(false)
		}},
		{"decode step graph", float64(l.bytesPerTok), func() error {
			return l.decodeStep() // positions 100..299
		}},
	}
	const reps = 200
	for _, k := range cases {
		var dt time.Duration
		err := d.Do(func() error {
			if err := cu.Synchronize(); err != nil {
				return err
			}
			t0 := time.Now()
			for range reps {
				if err := k.fn(); err != nil {
					return err
				}
			}
			if err := cu.Synchronize(); err != nil {
				return err
			}
			dt = time.Since(t0)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		us := float64(dt.Microseconds()) / reps
		gbs := 0.0
		if k.bytes > 0 {
			gbs = k.bytes / (us * 1e-6) / 1e9
		}
		t.Logf("%-16s %8.1f us  %7.0f GB/s", k.name, us, gbs)
	}
}

// pair loads tm on the CPU and on d.
func (tm llamaTestModel) pair(t *testing.T, d *Device) (*model.Model, *Llama) {
	t.Helper()
	f, err := tm.file()
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewLlama(d, f)
	if err != nil {
		t.Fatal(err)
	}
	return cpu, g
}

// TestLlamaFeed: Feed (the runner's llama.sample: a prompt batched, then
// one token at a time, at any position) leaves the KV cache and returns
// the logits the CPU model gives after the same tokens, batched in
// chunks or token by token, and refuses what does not fit.
func TestLlamaFeed(t *testing.T) {
	d := openTestDevice(t)
	tm := llamaTestModel{"f32-gqa-feed", model.Config{Dim: 60, HiddenDim: 150, NLayers: 2, NHeads: 6, NKVHeads: 3, VocabSize: 300, SeqLen: 96, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeF32, 14, nil, 1e-3, 0}
	cpu, g := tm.pair(t, d)
	defer g.Close()
	toks := make([]int, tm.cfg.SeqLen)
	for i := range toks {
		toks[i] = (i*53 + 3) % tm.cfg.VocabSize
	}
	saved := g.batch
	for _, b := range []int{saved, 7, 0} {
		g.batch = b
		var worst float64
		// The last feed ends at the end of the context.
		for _, span := range [][2]int{{0, 40}, {40, 41}, {41, 42}, {42, 90}, {90, tm.cfg.SeqLen}} {
			got, err := g.Feed(toks[span[0]:span[1]], span[0])
			if err != nil {
				t.Fatal(err)
			}
			var want []float32
			for p := span[0]; p < span[1]; p++ {
				if want, err = cpu.Forward(toks[p], p); err != nil {
					t.Fatal(err)
				}
			}
			for i, w := range want {
				worst = max(worst, math.Abs(float64(got[i])-float64(w)))
			}
		}
		if !(worst <= 1e-3) {
			t.Errorf("chunks of %d: max |GPU - CPU| logit %.3g after each feed, bound 1e-3", b, worst)
		}
		t.Logf("chunks of %d: max |dlogit| %.2g", b, worst)
	}
	g.batch = saved
	for _, bad := range []struct {
		toks []int
		pos  int
	}{{nil, 0}, {[]int{1, 2}, 95}, {[]int{1}, -1}, {[]int{300}, 0}} {
		if _, err := g.Feed(bad.toks, bad.pos); err == nil {
			t.Errorf("Feed(%v, %d) accepted", bad.toks, bad.pos)
		}
	}
}

// TestLlamaBenchTiny runs the benchmark's code path (the prompt token by
// token and batched, decode, the read ceiling, a validator's pass both
// ways) on a small random model:
// the figures mean nothing under fakecuda, but every step must run and
// report positive rates.
func TestLlamaBenchTiny(t *testing.T) {
	d := openTestDevice(t)
	tm := llamaTestModels()[2] // q8_0-gqa
	f, err := tm.file()
	if err != nil {
		t.Fatal(err)
	}
	r, err := BenchLlamaFile(d, f, 4, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if !(r.PromptTokPerSec > 0) || !(r.PromptSerialTokPerSec > 0) || !(r.DecodeTokPerSec > 0) || r.PromptBatch < 1 || r.PromptTokens != 20 ||
		!(r.ScoreMs > 0) || !(r.ScoreForwardMs > 0) {
		t.Fatalf("bench result %+v: want positive rates, a batch and 20 prompt tokens", r)
	}
}

// TestLlamaPromptLong: prompts longer than a matmul tile (64 positions),
// so the batched kernels run grids of several blocks per column and, with
// small chunks, many chunks: PromptLogits over 150 positions in one chunk
// against the CPU engine's Forward at every position, and Generate after a
// 140-token prompt in one chunk, in chunks of 64 and of 70, and token by token,
// each giving the CPU's greedy tokens.
func TestLlamaPromptLong(t *testing.T) {
	d := openTestDevice(t)
	for _, tm := range []llamaTestModel{
		{"f32-gqa-long", model.Config{Dim: 60, HiddenDim: 150, NLayers: 2, NHeads: 6, NKVHeads: 3, VocabSize: 300, SeqLen: 160, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeF32, 11, nil, 1e-3, 0},
		{"q4_0-long", model.Config{Dim: 64, HiddenDim: 96, NLayers: 2, NHeads: 4, NKVHeads: 2, VocabSize: 200, SeqLen: 160, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeQ4_0, 12, nil, 0.25, 0},
		// n % 8 == 0: matmul's 16-byte F16 weight loads
		{"f16-long", model.Config{Dim: 64, HiddenDim: 128, NLayers: 2, NHeads: 4, NKVHeads: 4, VocabSize: 256, SeqLen: 160, RMSEps: 1e-5, RopeBase: 10000}, gguf.TypeF16, 13, nil, 1e-3, 0},
	} {
		cpu, g := tm.pair(t, d)
		toks := make([]int, 150)
		for i := range toks {
			toks[i] = (i*37 + 5) % tm.cfg.VocabSize
		}
		all, err := g.PromptLogits(toks)
		if err != nil {
			t.Fatal(err)
		}
		bound := 1e-3
		if tm.typ == gguf.TypeQ4_0 {
			bound = 2 * tm.bound
		}
		var worst float64
		for pos, tok := range toks {
			want, err := cpu.Forward(tok, pos)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range want {
				worst = max(worst, math.Abs(float64(all[pos*len(want)+i])-float64(w)))
			}
		}
		if !(worst <= bound) {
			t.Errorf("%s: PromptLogits over 150 positions: max |GPU - CPU| logit %.3g, bound %g", tm.name, worst, bound)
		}
		wantIDs, _, err := cpu.Generate(toks[:140], 8)
		if err != nil {
			t.Fatal(err)
		}
		saved := g.batch
		for _, b := range []int{saved, 64, 70, 0} {
			g.batch = b
			ids, _, err := g.Generate(toks[:140], 8)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("%s: chunks of %d: GPU %v, CPU %v", tm.name, b, ids, wantIDs)
			}
		}
		g.batch = saved
		g.Close()
		t.Logf("%s: PromptLogits max |dlogit| %.2g over 150 positions; greedy tokens equal in chunks of %d, 64 and 70 and token by token", tm.name, worst, saved)
	}
}
