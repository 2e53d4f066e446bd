package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"taobox/model/gguf"
	"taobox/task"
)

// ggufExport is GGUFExport in the tests' words.
type ggufExport = GGUFExport

// exportGGUF is ExportGGUF failing the test on error.
func exportGGUF(tb testing.TB, m *Model, o ggufExport) []byte {
	tb.Helper()
	b, err := ExportGGUF(m, o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// loadGGUFBytes writes b to a temp file and loads it with LoadGGUF.
func loadGGUFBytes(tb testing.TB, b []byte) (*Model, error) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "m.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return LoadGGUF(path)
}

// randomLlama2C writes a random v0 checkpoint and loads it (the reference).
func randomLlama2C(tb testing.TB, c Config, seed uint64) *Model {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ref.bin")
	writeRandomLlama2C(tb, path, c, seed, 0.5)
	m, err := LoadLlama2C(path)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// teacherForced returns, for each i ≥ 1, log p(seq[i] | seq[:i]).
func teacherForced(tb testing.TB, m *Model, seq []int) []float64 {
	tb.Helper()
	out := make([]float64, 0, len(seq)-1)
	for pos := 0; pos+1 < len(seq); pos++ {
		logits, err := m.Forward(seq[pos], pos)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, LogProb(logits, seq[pos+1]))
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// quantConfig: untied, GQA, every row length a multiple of 32 (Q8_0/Q4_0).
var quantConfig = Config{Dim: 64, HiddenDim: 96, NLayers: 3, NHeads: 8, NKVHeads: 2, VocabSize: 97, SeqLen: 64}

// TestGGUFF32MatchesLlama2C: an F32 GGUF export of a random untied GQA model
// generates the same greedy ids with bit-identical log-probs.
func TestGGUFF32MatchesLlama2C(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		seed uint64
	}{{"gqa48", gqaConfig, 42}, {"gqa64", quantConfig, 7}} {
		t.Run(tc.name, func(t *testing.T) {
			ref := randomLlama2C(t, tc.c, tc.seed)
			m, err := loadGGUFBytes(t, exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32}))
			if err != nil {
				t.Fatal(err)
			}
			if m.Config != ref.Config {
				t.Fatalf("config %+v, want %+v", m.Config, ref.Config)
			}
			wantIDs, wantLP, err := ref.Generate(gqaPrompt, 40)
			if err != nil {
				t.Fatal(err)
			}
			ids, lps, err := m.Generate(gqaPrompt, 40)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, wantIDs) {
				t.Fatalf("greedy ids differ:\n gguf     %v\n llama2.c %v", ids, wantIDs)
			}
			if !slices.Equal(lps, wantLP) {
				t.Fatalf("log-probs differ (max |Δ| %.3g)", maxAbsDiff(lps, wantLP))
			}
			if tc.name == "gqa48" && !slices.Equal(ids, gqaGolden) {
				t.Fatalf("greedy ids differ from run.c's golden:\n got  %v\n want %v", ids, gqaGolden)
			}
		})
	}
}

// TestGGUFTiedOutput: without output.weight the classifier is the embedding.
func TestGGUFTiedOutput(t *testing.T) {
	c := gqaConfig
	c.SharedClassifier = true
	ref := randomLlama2C(t, c, 11)
	m, err := loadGGUFBytes(t, exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32}))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Config.SharedClassifier || &m.cls.f32[0] != &m.emb.f32[0] {
		t.Fatalf("want a tied classifier, config %+v", m.Config)
	}
	wantIDs, wantLP, _ := ref.Generate(gqaPrompt, 40)
	ids, lps, err := m.Generate(gqaPrompt, 40)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, wantIDs) || !slices.Equal(lps, wantLP) {
		t.Fatalf("tied model differs:\n gguf     %v\n llama2.c %v", ids, wantIDs)
	}
}

// TestGGUFQuantizedCloseToF32 exports F16, Q8_0 and Q4_0 files, loads them
// (weights kept in their type, Q8 activations for Q8_0 and Q4_0) and
// compares, teacher-forced on the F32 greedy sequence (so a flipped argmax
// cannot derail the comparison), each token's log-prob with the F32
// model's.
//
// Bounds. The rounding step relative to a block's largest weight is 2^-11
// for F16 (per weight), 1/127 for Q8_0 and 1/8 for Q4_0 (half a step at
// most), i.e. ratios of about 1 : 16 : 256; log-probs are Lipschitz in the
// logits (|Δ log p| ≤ 2·max|Δ logit|) and through these shallow models the
// logit error grows about linearly with the weight error. Measured on this
// seed (go test -v): F16 8.1e-4, Q8_0 2.9e-2 (1.6e-2 when the weights were
// dequantized to F32; the Q8 activations add the rest), Q4_0 0.40 (uniform
// random weights fill every block evenly, so this is a pessimistic case
// for the block formats). The bounds keep 2.5-6× headroom: 5e-3, 7.5e-2
// and 1.0.
// F16 must also keep every greedy id; Q8_0 keeps the first 24 of 40 and
// Q4_0 none here (random models have near-ties), so ids are only logged.
func TestGGUFQuantizedCloseToF32(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 7)
	wantIDs, _, err := ref.Generate(gqaPrompt, 40)
	if err != nil {
		t.Fatal(err)
	}
	seq := append(slices.Clone(gqaPrompt), wantIDs...)
	refLP := teacherForced(t, ref, seq)
	for _, tc := range []struct {
		typ     gguf.GGMLType
		bound   float64
		sameIDs bool
	}{
		{gguf.TypeF16, 5e-3, true},
		{gguf.TypeQ8_0, 7.5e-2, false},
		{gguf.TypeQ4_0, 1.0, false},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			m, err := loadGGUFBytes(t, exportGGUF(t, ref, ggufExport{Type: tc.typ}))
			if err != nil {
				t.Fatal(err)
			}
			ids, _, err := m.Generate(gqaPrompt, 40)
			if err != nil {
				t.Fatal(err)
			}
			same := 0
			for same < len(ids) && ids[same] == wantIDs[same] {
				same++
			}
			lp := teacherForced(t, m, seq)
			d := maxAbsDiff(lp, refLP)
			gen := maxAbsDiff(lp[len(gqaPrompt)-1:], refLP[len(gqaPrompt)-1:])
			t.Logf("%s: greedy ids equal for %d/%d tokens; teacher-forced log-prob max |Δ| %.3g over all %d positions (%.3g over the generated ones)",
				tc.typ, same, len(ids), d, len(lp), gen)
			if tc.sameIDs && same != len(ids) {
				t.Errorf("%s greedy ids differ from F32 at token %d:\n got  %v\n want %v", tc.typ, same, ids, wantIDs)
			}
			if d > tc.bound {
				t.Errorf("%s log-prob max |Δ| %.3g exceeds the bound %.3g", tc.typ, d, tc.bound)
			}
		})
	}
}

// TestGGUFModelErrors: each inconsistency is refused with an error naming
// the offending tensor or key.
func TestGGUFModelErrors(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 3)
	for _, tc := range []struct {
		name string
		o    ggufExport
		want []string
	}{
		{"missing tensor", ggufExport{skip: "blk.2.ffn_up.weight"}, []string{`"blk.2.ffn_up.weight"`, "missing"}},
		{"missing embedding", ggufExport{skip: "token_embd.weight"}, []string{`"token_embd.weight"`}},
		{"missing norm", ggufExport{skip: "output_norm.weight"}, []string{`"output_norm.weight"`}},
		{"wrong shape", ggufExport{badShape: "blk.1.attn_k.weight"}, []string{`"blk.1.attn_k.weight"`, "[16 64]", "[64 16]"}},
		{"wrong shape ffn_down", ggufExport{badShape: "blk.0.ffn_down.weight"}, []string{`"blk.0.ffn_down.weight"`, "[64 96]", "[96 64]"}},
		{"unknown architecture", ggufExport{arch: "mamba"}, []string{`"mamba"`, "general.architecture"}},
		{"vocab mismatch", ggufExport{nTokens: 96}, []string{"tokenizer.ggml.tokens", "96", "97"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Type = gguf.TypeF32
			_, err := loadGGUFBytes(t, exportGGUF(t, ref, tc.o))
			if err == nil {
				t.Fatal("loaded without error")
			}
			t.Log(err)
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}

}

// TestGGUFHyperParameters: the RMSNorm epsilon and the RoPE base come from
// the file (and change the logits); qwen2 selects the NEOX pairing.
func TestGGUFHyperParameters(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 3)
	base := exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32})
	refLP := teacherForced(t, ref, gqaPrompt)
	for _, tc := range []struct {
		key  string
		val  any
		want func(c Config) bool
	}{
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-3), func(c Config) bool { return c.RMSEps == 1e-3 }},
		{"llama.rope.freq_base", float32(500000), func(c Config) bool { return c.RopeBase == 500000 }},
		{"general.architecture", "qwen2", func(c Config) bool { return c.RopeNeox }},
	} {
		b := rewriteGGUF(t, base, func(kv *gguf.KV) {
			if kv.Key == tc.key {
				kv.Value = tc.val
			}
			if s, ok := tc.val.(string); ok && strings.HasPrefix(kv.Key, "llama.") {
				kv.Key = s + strings.TrimPrefix(kv.Key, "llama")
			}
		})
		m, err := loadGGUFBytes(t, b)
		if err != nil {
			t.Fatalf("%s = %v: %v", tc.key, tc.val, err)
		}
		if !tc.want(m.Config) {
			t.Fatalf("%s = %v: config %+v", tc.key, tc.val, m.Config)
		}
		lp := teacherForced(t, m, gqaPrompt)
		if d := maxAbsDiff(lp, refLP); d == 0 {
			t.Errorf("%s = %v: log-probs unchanged", tc.key, tc.val)
		} else {
			t.Logf("%s = %v: log-probs move by up to %.3g", tc.key, tc.val, d)
		}
	}
}

// rewriteGGUF returns the GGUF file base with edit applied to each
// metadata entry, the tensors as they were, then those each of more adds.
func rewriteGGUF(tb testing.TB, base []byte, edit func(kv *gguf.KV), more ...func(w *gguf.Writer)) []byte {
	tb.Helper()
	f, err := gguf.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	w := gguf.NewWriter()
	for i := range f.Metadata {
		kv := &f.Metadata[i]
		edit(kv)
		if err := w.AddKV(kv.Key, kv.Type, kv.Value); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range f.Tensors {
		info, raw, err := f.Tensor(f.Tensors[i].Name)
		if err != nil {
			tb.Fatal(err)
		}
		if err := w.AddTensor(info.Name, info.Type, info.Dims, raw); err != nil {
			tb.Fatal(err)
		}
	}
	for _, add := range more {
		add(w)
	}
	b, err := w.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// addBiases returns a rewriteGGUF hook that adds qwen2-style attention
// biases (blk.N.attn_{q,k,v}.bias, F32) for c's layers, value val(layer,
// j); skipQ leaves the q biases out.
func addBiases(tb testing.TB, c Config, val func(l, j int) float32, skipQ bool) func(w *gguf.Writer) {
	return func(w *gguf.Writer) {
		for l := range c.NLayers {
			for _, b := range []struct {
				name string
				n    int
			}{{"attn_q", c.Dim}, {"attn_k", c.KVDim()}, {"attn_v", c.KVDim()}} {
				if skipQ && b.name == "attn_q" {
					continue
				}
				raw := make([]byte, 4*b.n)
				for j := range b.n {
					binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(val(l, j)))
				}
				if err := w.AddTensor(fmt.Sprintf("blk.%d.%s.bias", l, b.name), gguf.TypeF32, []uint64{uint64(b.n)}, raw); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
}

// TestGGUFContextCapped: a file's context_length beyond MaxContext (Llama
// 3's 131,072) is capped, so the KV cache is sized for what a task can
// use; the log-probs are the uncapped model's; and MaxContext covers the
// task protocol's longest prompt and answer, so miners and validators
// agree on every task whatever the file says.
func TestGGUFContextCapped(t *testing.T) {
	if MaxContext < task.MaxPromptTokens+task.MaxGenTokens {
		t.Fatalf("MaxContext %d < the task protocol's %d prompt + %d answer tokens", MaxContext, task.MaxPromptTokens, task.MaxGenTokens)
	}
	ref := randomLlama2C(t, quantConfig, 3)
	base := exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32})
	for _, ctx := range []uint32{131072, MaxContext + 1, MaxContext, uint32(quantConfig.SeqLen)} {
		b := rewriteGGUF(t, base, func(kv *gguf.KV) {
			if kv.Key == "llama.context_length" {
				kv.Value = ctx
			}
		})
		m, err := loadGGUFBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(int(ctx), MaxContext); m.Config.SeqLen != want {
			t.Fatalf("context_length %d: SeqLen %d, want %d", ctx, m.Config.SeqLen, want)
		}
		if d := maxAbsDiff(teacherForced(t, m, gqaPrompt), teacherForced(t, ref, gqaPrompt)); d != 0 {
			t.Fatalf("context_length %d: log-probs move by %g", ctx, d)
		}
		// The cap is the engines': the file's own context survives export.
		if m.Config.DeclaredSeqLen() != int(ctx) {
			t.Fatalf("context_length %d: declared %d", ctx, m.Config.DeclaredSeqLen())
		}
		again, err := loadGGUFBytes(t, exportGGUF(t, m, ggufExport{Type: gguf.TypeF32}))
		if err != nil {
			t.Fatal(err)
		}
		if again.Config != m.Config {
			t.Fatalf("context_length %d: re-exported config %+v, want %+v", ctx, again.Config, m.Config)
		}
		again.Close()
		m.Close()
	}
}

// TestGGUFStories260K converts the real stories260K checkpoint to GGUF (F32,
// tied) and requires the same greedy ids and log-probs as the llama2.c path.
func TestGGUFStories260K(t *testing.T) {
	ref := loadStories260K(t)
	b := exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32})
	m, err := loadGGUFBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config != ref.Config {
		t.Fatalf("config %+v, want %+v", m.Config, ref.Config)
	}
	ids, lps, err := m.Generate(stories260KPrompt, len(stories260KGolden))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, stories260KGolden) {
		t.Fatalf("greedy ids differ from run.c:\n got  %v\n want %v", ids, stories260KGolden)
	}
	_, wantLP, _ := ref.Generate(stories260KPrompt, len(stories260KGolden))
	if !slices.Equal(lps, wantLP) {
		t.Fatalf("log-probs differ from the llama2.c loader (max |Δ| %.3g)", maxAbsDiff(lps, wantLP))
	}
}

// TestGGUFBF16: a BF16 matrix is dequantized to F32 at load (exactly), and
// the other matrices alias the file's bytes.
func TestGGUFBF16(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 3)
	f, err := gguf.Parse(exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32}))
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter()
	for _, kv := range f.Metadata {
		if err := w.AddKV(kv.Key, kv.Type, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	const name = "blk.1.attn_q.weight"
	var orig []float32
	for i := range f.Tensors {
		info, raw, err := f.Tensor(f.Tensors[i].Name)
		if err != nil {
			t.Fatal(err)
		}
		typ := info.Type
		if info.Name == name {
			orig = make([]float32, len(raw)/4)
			if err := gguf.ToFloat32(gguf.TypeF32, raw, len(orig), orig); err != nil {
				t.Fatal(err)
			}
			raw = make([]byte, 2*len(orig))
			for j, x := range orig {
				binary.LittleEndian.PutUint16(raw[2*j:], gguf.Float32ToBF16(x))
			}
			typ = gguf.TypeBF16
		}
		if err := w.AddTensor(info.Name, typ, info.Dims, raw); err != nil {
			t.Fatal(err)
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ModelFromGGUF(g)
	if err != nil {
		t.Fatal(err)
	}
	q := m.layers[1].wq
	if q.typ != gguf.TypeF32 || len(q.f32) != len(orig) {
		t.Fatalf("BF16 matrix kept as %s with %d values", q.typ, len(q.f32))
	}
	for j, x := range orig {
		if want := gguf.BF16ToFloat32(gguf.Float32ToBF16(x)); q.f32[j] != want {
			t.Fatalf("element %d: %v, want %v", j, q.f32[j], want)
		}
	}
	_, raw, _ := g.Tensor("blk.1.attn_k.weight")
	if k := m.layers[1].wk; &k.f32[0] != &bytesToF32(raw)[0] {
		t.Error("F32 matrix is a copy, not a view of the file's bytes")
	}
}

// TestGGUFAttentionBiases: qwen2-style attn_{q,k,v}.bias tensors are added
// after the products: zero biases change nothing, others change the
// log-probs, and a k bias without a q bias is refused.
func TestGGUFAttentionBiases(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 3)
	base := exportGGUF(t, ref, ggufExport{Type: gguf.TypeQ8_0})
	c := ref.Config
	build := func(val float32, skipQ bool) []byte {
		return rewriteGGUF(t, base, func(*gguf.KV) {}, addBiases(t, c, func(_, j int) float32 { return val * float32(j%7-3) }, skipQ))
	}
	plain, err := loadGGUFBytes(t, base)
	if err != nil {
		t.Fatal(err)
	}
	want := teacherForced(t, plain, gqaPrompt)
	zero, err := loadGGUFBytes(t, build(0, false))
	if err != nil {
		t.Fatal(err)
	}
	if zero.layers[0].bq == nil {
		t.Fatal("biases not loaded")
	}
	if got := teacherForced(t, zero, gqaPrompt); !slices.Equal(got, want) {
		t.Fatalf("zero biases change the log-probs by %.3g", maxAbsDiff(got, want))
	}
	some, err := loadGGUFBytes(t, build(0.1, false))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(teacherForced(t, some, gqaPrompt), want); d == 0 {
		t.Fatal("biases of ±0.3 leave the log-probs unchanged")
	}
	if _, err := loadGGUFBytes(t, build(0.1, true)); err == nil || !strings.Contains(err.Error(), "attn_k.bias") {
		t.Fatalf("k bias without q bias: error %v", err)
	}
}

// TestGGUFExportFaithful: a file with non-default hyper-parameters (RMSNorm
// epsilon, RoPE base), qwen2's NEOX pairing and attention biases, and a
// real vocabulary, exported as F32 and loaded again, is the same model:
// the same Config, biases and vocabulary, bit-equal log-probs (what model
// convert relies on).
func TestGGUFExportFaithful(t *testing.T) {
	ref := randomLlama2C(t, quantConfig, 4)
	c := ref.Config
	tc := TokenizerConfig{Kind: "llama", Tokens: make([]string, c.VocabSize)}
	for i := range tc.Tokens {
		tc.Tokens[i] = fmt.Sprintf("tok%d", i)
	}
	base := exportGGUF(t, ref, ggufExport{Type: gguf.TypeF32, Tokenizer: &tc})
	file := rewriteGGUF(t, base, func(kv *gguf.KV) {
		switch kv.Key {
		case "general.architecture":
			kv.Value = "qwen2"
		case "llama.attention.layer_norm_rms_epsilon":
			kv.Value = float32(1e-6)
		case "llama.rope.freq_base":
			kv.Value = float32(500000)
		}
		kv.Key = strings.Replace(kv.Key, "llama.", "qwen2.", 1)
	}, addBiases(t, c, func(l, j int) float32 { return 0.05 * float32((j+l)%5-2) }, false))
	m, err := loadGGUFBytes(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Config.RopeNeox || m.Config.RMSEps != 1e-6 || m.Config.RopeBase != 500000 || m.layers[0].bq == nil {
		t.Fatalf("the test file did not load as meant: %+v", m.Config)
	}
	pf, err := gguf.Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := TokenizerConfigFromGGUF(pf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ExportGGUF(m, GGUFExport{Type: gguf.TypeF32, Tokenizer: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadGGUFBytes(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if again.Config != m.Config {
		t.Fatalf("config %+v, want %+v", again.Config, m.Config)
	}
	for l := range m.layers {
		if !slices.Equal(again.layers[l].bq, m.layers[l].bq) || !slices.Equal(again.layers[l].bk, m.layers[l].bk) || !slices.Equal(again.layers[l].bv, m.layers[l].bv) {
			t.Fatalf("layer %d: biases differ", l)
		}
	}
	if d := maxAbsDiff(teacherForced(t, again, gqaPrompt), teacherForced(t, m, gqaPrompt)); d != 0 {
		t.Fatalf("log-probs move by %g", d)
	}
	of, err := gguf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := TokenizerFromGGUF(of)
	if err != nil || tok.VocabSize() != c.VocabSize || tok.Token(7) != "tok7" {
		t.Fatalf("vocabulary not written back: %v", err)
	}
}
