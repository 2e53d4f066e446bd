package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"taobox/model"
	"taobox/model/gguf"
)

func TestModelSynth(t *testing.T) {
	dir := t.TempDir()
	g := filepath.Join(dir, "m.gguf")
	args := []string{"model", "synth", "--shape", "s260K", "--untied", "--seed", "9", "--vocab", "400", "--kv-heads", "2"}
	r := taobox(t, nil, append(args, "--out", g)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote "+g) {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The file holds exactly model.Synthesize's weights, and the vocabulary
	// llama.cpp needs to tokenize.
	f, err := gguf.Open(g)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	c := model.SynthShapes["s260K"]
	c.VocabSize, c.NKVHeads, c.SharedClassifier = 400, 2, false
	want, err := model.Synthesize(c, 9)
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(got.Config, want.Config) {
		t.Fatalf("config %+v, want %+v", got.Config, want.Config)
	}
	sameLogits(t, "gguf", got, want)
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(toks) != 400 || toks[1] != "<s>" || toks[3+'a'] != "<0x61>" || toks[259] != "\u2581" || toks[260] != "a" || toks[261] != "\u2581a" {
		t.Errorf("tokens: %v (%d), %v", err, len(toks), toks[:min(len(toks), 8)])
	}
	seen := map[string]bool{}
	for _, s := range toks {
		if seen[s] {
			t.Errorf("token %q repeated", s)
		}
		seen[s] = true
	}

	// llama2.c format: the same weights through the llama2.c reader.
	l2c := filepath.Join(dir, "m.bin")
	if r := taobox(t, nil, append(args, "--format", "llama2c", "--out", l2c)...); r.code != 0 {
		t.Fatalf("llama2c: exit %d: %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(l2c)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := model.ParseLlama2C(data)
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(m2.Config, want.Config) {
		t.Errorf("llama2c file: config %+v, want %+v", m2.Config, want.Config)
	}
	sameLogits(t, "llama2c", m2, want)

	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--shape", "s1B", "--out", filepath.Join(dir, "x")}, "--shape"},
		{[]string{"--shape", "custom", "--dim", "64", "--out", filepath.Join(dir, "x")}, "--hidden"},
		{[]string{"--shape", "s260K"}, "--out"},
		{[]string{"--shape", "s260K", "--out", g}, "--out"}, // exists
		{[]string{"--shape", "s260K", "--type", "q5_k", "--out", filepath.Join(dir, "x")}, "--type"},
		{[]string{"--shape", "s260K", "--type", "q8_0", "--out", filepath.Join(dir, "x")}, "--type"}, // 172 columns
		{[]string{"--shape", "s260K", "--format", "llama2c", "--type", "q8_0", "--out", filepath.Join(dir, "x")}, "--type"},
		{[]string{"--shape", "s260K", "--heads", "7", "--out", filepath.Join(dir, "x")}, "--shape"},
		{[]string{"--shape", "s260K", "--dim", "-1", "--out", filepath.Join(dir, "x")}, "--dim"},
	} {
		r := taobox(t, nil, append([]string{"model", "synth"}, tc.args...)...)
		prefix := "taobox: model synth: " + tc.field + ": "
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, prefix) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line starting %q", tc.args, r.code, r.stderr, prefix)
		}
	}
}

func sameShape(a, b model.Config) bool {
	return a.Dim == b.Dim && a.HiddenDim == b.HiddenDim && a.NLayers == b.NLayers && a.NHeads == b.NHeads &&
		a.NKVHeads == b.NKVHeads && a.VocabSize == b.VocabSize && a.SeqLen == b.SeqLen && a.SharedClassifier == b.SharedClassifier
}

// sameLogits checks that two F32 models compute the same logits, bit for
// bit, for a few tokens (fresh KV caches: both start at position 0).
func sameLogits(t *testing.T, what string, got, want *model.Model) {
	t.Helper()
	for pos, tok := range []int{1, 77, 399} {
		a, err := got.Forward(tok, pos)
		if err != nil {
			t.Fatal(err)
		}
		a = append([]float32(nil), a...)
		b, err := want.Forward(tok, pos)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			if a[i] != b[i] {
				t.Fatalf("%s: position %d: logit %d is %v, Synthesize's model gives %v", what, pos, i, a[i], b[i])
			}
		}
	}
}
