package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"taobox/assets"
)

// stories260K is the real checkpoint, a test data file outside the
// repository (never commit it); tests that need it skip without it.
const stories260K = "../../../shared/models/stories260K.bin"

// writeCheckpoint writes a llama2.c v0 checkpoint with an untied classifier
// and random weights: dim 32, hidden 64, 2 layers, 4 heads, 2 kv heads,
// vocab 40, context 24.
func writeCheckpoint(t *testing.T) (path string, params int64) {
	t.Helper()
	const dim, hidden, layers, heads, kvHeads, vocab, seq = 32, 64, 2, 4, 2, 40, 24
	kv := dim * kvHeads / heads
	params = int64(vocab*dim + layers*(2*dim+2*dim*dim+2*kv*dim+3*dim*hidden) + dim + vocab*dim)
	n := params + int64(seq*(dim/heads)) // + freq_cis_real, freq_cis_imag
	buf := make([]byte, 28+4*n)
	for i, v := range []int32{dim, hidden, layers, heads, kvHeads, -vocab, seq} {
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(v))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := int64(0); i < n; i++ {
		binary.LittleEndian.PutUint32(buf[28+4*i:], math.Float32bits(float32(r.Float64()*2-1)))
	}
	path = filepath.Join(t.TempDir(), "random.bin")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, params
}

type generation struct {
	PromptIDs []int     `json:"prompt_ids"`
	IDs       []int     `json:"ids"`
	LogProbs  []float64 `json:"logprobs"`
	Top       [][]alt   `json:"top"`
	Text      *string   `json:"text"`
	TPS       *float64  `json:"tokens_per_second"`
}

type alt struct {
	ID      int     `json:"id"`
	LogProb float64 `json:"logprob"`
}

func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := taobox(t, nil, args...)
	if r.code != 0 || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("taobox %v: exit %d, stderr %q, stdout %q", args, r.code, r.stderr, r.stdout)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("taobox %v: %v in %q", args, err, r.stdout)
	}
}

func csv(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

func TestModelInfo(t *testing.T) {
	path, params := writeCheckpoint(t)
	data, _ := os.ReadFile(path)
	sum := sha256.Sum256(data)
	var info map[string]any
	runJSON(t, &info, "model", "info", path, "--json")
	want := map[string]any{
		"file": path, "format": "llama2.c v0", "architecture": "llama", "parameters": float64(params),
		"quantization": "F32", "context_length": 24.0, "vocab_size": 40.0, "dim": 32.0, "hidden_dim": 64.0,
		"layers": 2.0, "heads": 4.0, "kv_heads": 2.0, "tied_embeddings": false, "tokenizer": "",
		"bos": 1.0, "eos": 2.0, "file_size": float64(len(data)), "sha256": hex.EncodeToString(sum[:]),
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("info %s = %v, want %v", k, info[k], v)
		}
	}
	if len(info) != len(want) {
		t.Errorf("info has %d fields, want %d: %v", len(info), len(want), info)
	}
	r := taobox(t, nil, "model", "info", path)
	for _, s := range []string{"architecture     llama", "parameters       " + strconv.FormatInt(params, 10), "sha256           " + hex.EncodeToString(sum[:])} {
		if r.code != 0 || !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("model info: exit %d, no %q in\n%s", r.code, s, r.stdout)
		}
	}
}

// checkGenerateScore generates with args and checks the output's shape and
// that `model score` gives back the same log-probs, bit for bit.
func checkGenerateScore(t *testing.T, path string, prompt []int, args ...string) generation {
	t.Helper()
	var g generation
	runJSON(t, &g, append([]string{"model", "generate", "--model", path, "--prompt-ids", csv(prompt), "--json"}, args...)...)
	if !slices.Equal(g.PromptIDs, prompt) || len(g.LogProbs) != len(g.IDs) || len(g.Top) != len(g.IDs) || g.Text == nil || *g.Text != "" || g.TPS == nil {
		t.Fatalf("generate %v: %+v", args, g)
	}
	for i, top := range g.Top {
		sorted := true
		for j := 1; j < len(top); j++ {
			a, b := top[j-1], top[j]
			sorted = sorted && (a.LogProb > b.LogProb || a.LogProb == b.LogProb && a.ID < b.ID)
		}
		if len(top) != 5 || !sorted || g.LogProbs[i] > top[0].LogProb || g.LogProbs[i] > 0 {
			t.Fatalf("position %d: top %v, logprob %v", i, top, g.LogProbs[i])
		}
	}
	if len(g.IDs) == 0 {
		return g
	}
	var s struct {
		IDs      []int     `json:"ids"`
		From     int       `json:"from"`
		LogProbs []float64 `json:"logprobs"`
		Sum      float64   `json:"sum"`
	}
	all := append(slices.Clone(prompt), g.IDs...)
	runJSON(t, &s, "model", "score", "--model", path, "--ids", csv(all), "--from", strconv.Itoa(len(prompt)), "--json")
	if !slices.Equal(s.LogProbs, g.LogProbs) || s.From != len(prompt) || !slices.Equal(s.IDs, all) {
		t.Fatalf("score %v\ngenerate %v", s.LogProbs, g.LogProbs)
	}
	return g
}

func TestModelGenerateScore(t *testing.T) {
	path, _ := writeCheckpoint(t)
	prompt := []int{1, 7, 33}
	g := checkGenerateScore(t, path, prompt, "--max-tokens", "10", "--ignore-eos")
	if len(g.IDs) != 10 {
		t.Fatalf("greedy --ignore-eos: %d tokens, want 10", len(g.IDs))
	}
	for i, top := range g.Top {
		if top[0].ID != g.IDs[i] || top[0].LogProb != g.LogProbs[i] {
			t.Fatalf("greedy position %d: id %d, top %v", i, g.IDs[i], top)
		}
	}
	r := taobox(t, nil, "model", "generate", "--model", path, "--prompt-ids", csv(prompt), "--max-tokens", "10", "--ignore-eos")
	if r.code != 0 || r.stdout != csv(g.IDs)+"\n" {
		t.Fatalf("plain output %q, want %q", r.stdout, csv(g.IDs))
	}
	// The end of the context stops generation: 24 positions, 3 prompt ids.
	if g := checkGenerateScore(t, path, prompt, "--max-tokens", "100", "--ignore-eos"); len(g.IDs) != 24-3+1 {
		t.Fatalf("at the context end: %d tokens", len(g.IDs))
	}
	sampled := []string{"--max-tokens", "15", "--ignore-eos", "--temperature", "1.5", "--top-k", "30", "--top-p", "0.95", "--seed", "9"}
	a := checkGenerateScore(t, path, prompt, sampled...)
	b := checkGenerateScore(t, path, prompt, sampled...)
	if !slices.Equal(a.IDs, b.IDs) {
		t.Fatalf("same seed: %v then %v", a.IDs, b.IDs)
	}
	c := checkGenerateScore(t, path, prompt, append(sampled, "--seed", "10")...)
	if slices.Equal(a.IDs, c.IDs) {
		t.Errorf("seeds 9 and 10 gave the same %v", a.IDs)
	}
	// Without --ignore-eos, generation ends at the first EOS (2).
	stopped := 0
	for seed := range 20 {
		g := checkGenerateScore(t, path, prompt, "--max-tokens", "20", "--temperature", "3", "--seed", strconv.Itoa(seed))
		if i := slices.Index(g.IDs, 2); i >= 0 && i != len(g.IDs)-1 {
			t.Fatalf("seed %d: EOS at %d of %v", seed, i, g.IDs)
		} else if i >= 0 {
			stopped++
		}
	}
	if stopped == 0 {
		t.Error("no seed of 20 ended at EOS: the check above tested nothing")
	}
	var z generation
	runJSON(t, &z, "model", "generate", "--model", path, "--prompt-ids", "5", "--max-tokens", "0", "--json")
	if z.IDs == nil || len(z.IDs) != 0 || z.Top == nil {
		t.Fatalf("--max-tokens 0: %+v", z)
	}
}

func TestModelStories260K(t *testing.T) {
	if _, err := os.Stat(stories260K); err != nil {
		t.Skipf("skipping: %s not present (test data outside the repository): %v", stories260K, err)
	}
	// Greedy ids from llama2.c's run.c (see model/llama_test.go).
	want := []int{473, 473, 473, 473, 473, 473, 473, 483, 339, 260, 403, 305, 299, 302, 310, 1, 407, 465, 465, 465}
	g := checkGenerateScore(t, stories260K, []int{1, 403, 407, 261, 378}, "--max-tokens", "20")
	if !slices.Equal(g.IDs, want) {
		t.Fatalf("greedy %v\nrun.c  %v", g.IDs, want)
	}
	if math.Abs(g.LogProbs[0]-(-4.78501777318)) > 1e-5 {
		t.Errorf("first logprob %v, run.c -4.78501777318", g.LogProbs[0])
	}
	var info map[string]any
	runJSON(t, &info, "model", "info", stories260K, "--json")
	if info["parameters"] != 260032.0 || info["tied_embeddings"] != true || info["vocab_size"] != 512.0 || info["context_length"] != 512.0 {
		t.Errorf("info %v", info)
	}
}

func TestModelErrors(t *testing.T) {
	path, _ := writeCheckpoint(t)
	bad := filepath.Join(t.TempDir(), "bad.bin")
	os.WriteFile(bad, []byte("not a model at all, just some bytes"), 0o644)
	gguf := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(gguf, []byte("GGUF\x03\x00\x00\x00"), 0o644)
	gen := func(args ...string) []string { return append([]string{"model", "generate", "--model", path}, args...) }
	score := func(args ...string) []string { return append([]string{"model", "score", "--model", path}, args...) }
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"model", "info", path, path}, "taobox: model info: args: "},
		{[]string{"model", "info", "/nonexistent/m.bin"}, "taobox: model info: file: "},
		{[]string{"model", "info", bad}, "taobox: model info: file: "},
		{[]string{"model", "info", gguf}, "taobox: model info: file: "},
		{[]string{"model", "frob"}, "taobox: model: command: "},
		{[]string{"model", "generate", "--prompt-ids", "99999", "--max-tokens", "3"}, "taobox: model generate: --prompt-ids: "},
		{gen("--prompt-ids", "1"), "taobox: model generate: --max-tokens: "},
		{gen("--max-tokens", "3"), "taobox: model generate: prompt: "},
		{gen("--prompt", "hi", "--prompt-ids", "1", "--max-tokens", "3"), "taobox: model generate: prompt: "},
		{gen("--prompt", "Once upon a time", "--max-tokens", "3"), "taobox: model generate: --prompt: text prompts need a tokenizer; this model file has none: use --prompt-ids"},
		{gen("--prompt-ids", "1,x", "--max-tokens", "3"), "taobox: model generate: --prompt-ids: "},
		{gen("--prompt-ids", "1,40", "--max-tokens", "3"), "taobox: model generate: --prompt-ids: "},
		{gen("--prompt-ids", "-1", "--max-tokens", "3"), "taobox: model generate: --prompt-ids: "},
		{gen("--prompt-ids", csv(make([]int, 25)), "--max-tokens", "3"), "taobox: model generate: --prompt-ids: "},
		{gen("--prompt-ids", "1", "--max-tokens", "3", "--temperature", "-1"), "taobox: model generate: --temperature: "},
		{gen("--prompt-ids", "1", "--max-tokens", "3", "--top-k", "-1"), "taobox: model generate: --top-k: "},
		{gen("--prompt-ids", "1", "--max-tokens", "3", "--top-p", "1.5"), "taobox: model generate: --top-p: "},
		{gen("--prompt-ids", "1", "--max-tokens", "3", "--threads", "0"), "taobox: model generate: --threads: "},
		{gen("--prompt-ids", "1", "--max-tokens", "many"), "taobox: model generate: flags: "},
		{[]string{"model", "generate", "--model", bad, "--prompt-ids", "1", "--max-tokens", "3"}, "taobox: model generate: --model: "},
		{score("--from", "1"), "taobox: model score: --ids: "},
		{score("--ids", "1,2,3"), "taobox: model score: --from: "},
		{score("--ids", "1,2,3", "--from", "4"), "taobox: model score: --from: "},
		{score("--ids", "1,2,99", "--from", "1"), "taobox: model score: --ids: "},
		{score("--ids", csv(make([]int, 26)), "--from", "1"), "taobox: model score: --ids: "},
		{[]string{"model", "score", "--ids", "1,2", "--from", "1"}, "taobox: model score: --model: "},
	}
	for _, tc := range tests {
		r := taobox(t, nil, tc.args...)
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("taobox %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// TestModelConvertGGUF: a checkpoint converted to F32 GGUF generates the
// same ids and log-probs as the original; Q8_0 loads and reports its type;
// an existing --out is refused.
func TestModelConvertGGUF(t *testing.T) {
	path, _ := writeCheckpoint(t)
	dir := t.TempDir()
	f32 := filepath.Join(dir, "m.gguf")
	q8 := filepath.Join(dir, "m-q8.gguf")
	for _, c := range []struct{ out, typ string }{{f32, "f32"}, {q8, "q8_0"}} {
		r := taobox(t, nil, "model", "convert", "--model", path, "--out", c.out, "--type", c.typ)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote ") {
			t.Fatalf("convert %s: exit %d, %q %q", c.typ, r.code, r.stdout, r.stderr)
		}
	}
	prompt := []int{1, 5, 9}
	want := checkGenerateScore(t, path, prompt, "--max-tokens", "12", "--ignore-eos")
	got := checkGenerateScore(t, f32, prompt, "--max-tokens", "12", "--ignore-eos")
	if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.LogProbs, want.LogProbs) {
		t.Fatalf("F32 GGUF differs from the checkpoint:\n got %v %v\nwant %v %v", got.IDs, got.LogProbs, want.IDs, want.LogProbs)
	}
	checkGenerateScore(t, q8, prompt, "--max-tokens", "12", "--ignore-eos")
	var info struct {
		Format       string `json:"format"`
		Quantization string `json:"quantization"`
	}
	r := taobox(t, nil, "model", "info", q8, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Format != "GGUF v3" || info.Quantization != "Q8_0" {
		t.Fatalf("info: %+v (%v) %q", info, err, r.stdout)
	}
	r = taobox(t, nil, "model", "convert", "--model", path, "--out", f32)
	if r.code != 2 || !strings.Contains(r.stderr, "exists") || r.stdout != "" {
		t.Fatalf("overwrite: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = taobox(t, nil, "model", "convert", "--model", path, "--out", filepath.Join(dir, "x.gguf"), "--type", "q5_k")
	if r.code != 2 || !strings.Contains(r.stderr, "--type") {
		t.Fatalf("bad type: exit %d, %q", r.code, r.stderr)
	}
	// A GGUF file converted to its own type comes back byte for byte: the
	// vocabulary, the name, the context and the hyper-parameters are the
	// file's (the embedded tiny model: F32, a SentencePiece vocabulary).
	tiny := filepath.Join(dir, "tiny.gguf")
	if err := os.WriteFile(tiny, assets.TinyModel(), 0o644); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "tiny-again.gguf")
	if r := taobox(t, nil, "model", "convert", "--model", tiny, "--out", again); r.code != 0 {
		t.Fatalf("convert the tiny model: exit %d, %q", r.code, r.stderr)
	}
	if b, err := os.ReadFile(again); err != nil || !bytes.Equal(b, assets.TinyModel()) {
		t.Fatalf("the tiny model converted to F32 is not the same file (%d bytes, want %d; %v)", len(b), len(assets.TinyModel()), err)
	}
}

// TestModelThreadsSameOutput: --threads changes nothing in the output.
func TestModelThreadsSameOutput(t *testing.T) {
	path, _ := writeCheckpoint(t)
	one := checkGenerateScore(t, path, []int{1, 2}, "--max-tokens", "16", "--ignore-eos", "--threads", "1")
	two := checkGenerateScore(t, path, []int{1, 2}, "--max-tokens", "16", "--ignore-eos", "--threads", "2")
	if !slices.Equal(one.IDs, two.IDs) || !slices.Equal(one.LogProbs, two.LogProbs) {
		t.Fatalf("threads 1 and 2 differ:\n%v %v\n%v %v", one.IDs, one.LogProbs, two.IDs, two.LogProbs)
	}
}
