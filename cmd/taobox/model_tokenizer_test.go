package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"taobox/model"
)

// tinyVocab is a 40-token SentencePiece vocabulary for writeCheckpoint's
// model: <unk> <s> </s>, "▁", a..z, then whole words. Token special (if
// ≥ 0) is renamed <|im_end|>, a control token.
func tinyVocab(special int) model.TokenizerConfig {
	c := model.TokenizerConfig{Kind: "llama"}
	add := func(s string, score float32, typ int32) {
		c.Tokens = append(c.Tokens, s)
		c.Scores = append(c.Scores, score)
		c.Types = append(c.Types, typ)
	}
	add("<unk>", 0, model.TokenUnknown)
	add("<s>", 0, model.TokenControl)
	add("</s>", 0, model.TokenControl)
	add("▁", -1, model.TokenNormal) // 3
	for r := 'a'; r <= 'z'; r++ {
		add(string(r), -2, model.TokenNormal) // 4..29
	}
	for _, w := range []string{"▁once", "▁upon", "▁a", "▁time", "on", "ce", "up", "▁on", "▁up", "ti"} {
		add(w, -3, model.TokenNormal) // 30..39
	}
	if special >= 0 {
		c.Tokens[special], c.Types[special] = "<|im_end|>", model.TokenControl
	}
	return c
}

// writeTokenizerGGUF converts writeCheckpoint's model to GGUF with v.
func writeTokenizerGGUF(t *testing.T, ckpt string, v model.TokenizerConfig) string {
	t.Helper()
	data, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseLlama2C(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.ExportGGUF(m, model.GGUFExport{Tokenizer: &v})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tok.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestModelGenerateText: --prompt is encoded with the file's tokenizer (BOS
// first), the text is the decoded generation, generation stops at any
// end-of-generation token, and info names the tokenizer.
func TestModelGenerateText(t *testing.T) {
	ckpt, _ := writeCheckpoint(t)
	path := writeTokenizerGGUF(t, ckpt, tinyVocab(-1))

	var info map[string]any
	runJSON(t, &info, "model", "info", path, "--json")
	if info["tokenizer"] != "llama (SentencePiece), 40 tokens" || info["bos"] != 1.0 || info["eos"] != 2.0 {
		t.Errorf("info: tokenizer %v, bos %v, eos %v", info["tokenizer"], info["bos"], info["eos"])
	}
	if r := taobox(t, nil, "model", "info", path); !strings.Contains(r.stdout, "\ntokenizer ") || !strings.Contains(r.stdout, " llama (SentencePiece), 40 tokens\n") {
		t.Errorf("info: %q", r.stdout)
	}

	// "once upon a": BOS, then ▁once ▁upon ▁a (by hand: ▁on+ce, ▁up+on).
	var g generation
	runJSON(t, &g, "model", "generate", "--model", path, "--prompt", "once upon a", "--max-tokens", "10", "--ignore-eos", "--json")
	if want := []int{1, 30, 31, 32}; !slices.Equal(g.PromptIDs, want) {
		t.Fatalf("prompt ids %v, want %v", g.PromptIDs, want)
	}
	var byIDs generation
	runJSON(t, &byIDs, "model", "generate", "--model", path, "--prompt-ids", "1,30,31,32", "--max-tokens", "10", "--ignore-eos", "--json")
	if !slices.Equal(g.IDs, byIDs.IDs) || len(g.IDs) != 10 {
		t.Fatalf("--prompt generated %v, --prompt-ids %v", g.IDs, byIDs.IDs)
	}
	tok, err := model.NewTokenizer(tinyVocab(-1))
	if err != nil {
		t.Fatal(err)
	}
	// The text continues the prompt: DecodeContinuation keeps its leading
	// space.
	pieces := tok.DecodeContinuation
	if g.Text == nil || *g.Text != pieces(g.IDs) {
		t.Fatalf("text %v, want %q (the pieces, a continuation)", g.Text, pieces(g.IDs))
	}
	r := taobox(t, nil, "model", "generate", "--model", path, "--prompt", "once upon a", "--max-tokens", "10", "--ignore-eos")
	if r.code != 0 || r.stdout != *g.Text+"\n" {
		t.Fatalf("plain output: exit %d, %q, want %q", r.code, r.stdout, *g.Text+"\n")
	}

	// Rename the fourth generated token <|im_end|>: generation now stops
	// at the first end-of-generation token (it or </s>), which is kept in
	// the ids but not in the text.
	special := g.IDs[3]
	if special <= 2 {
		t.Skipf("the random model generated special id %d; pick another", special)
	}
	k := slices.IndexFunc(g.IDs, func(id int) bool { return id == special || id == 2 })
	path2 := writeTokenizerGGUF(t, ckpt, tinyVocab(special))
	var stopped generation
	runJSON(t, &stopped, "model", "generate", "--model", path2, "--prompt-ids", "1,30,31,32", "--max-tokens", "10", "--json")
	if !slices.Equal(stopped.IDs, g.IDs[:k+1]) || len(stopped.LogProbs) != k+1 || len(stopped.Top) != k+1 {
		t.Fatalf("stopped at %v (%d log-probs), want %v", stopped.IDs, len(stopped.LogProbs), g.IDs[:k+1])
	}
	if *stopped.Text != pieces(g.IDs[:k]) {
		t.Fatalf("text %q, want %q", *stopped.Text, pieces(g.IDs[:k]))
	}

	// Files without a tokenizer: a llama2.c checkpoint and a converted
	// one (ExportGGUF's placeholder vocabulary).
	conv := filepath.Join(t.TempDir(), "conv.gguf")
	if r := taobox(t, nil, "model", "convert", "--model", ckpt, "--out", conv); r.code != 0 {
		t.Fatalf("convert: %q", r.stderr)
	}
	for _, p := range []string{ckpt, conv} {
		r := taobox(t, nil, "model", "generate", "--model", p, "--prompt", "once", "--max-tokens", "3")
		if want := "taobox: model generate: --prompt: text prompts need a tokenizer; this model file has none: use --prompt-ids\n"; r.code != 2 || r.stderr != want {
			t.Errorf("%s: exit %d, stderr %q, want 2 and %q", filepath.Base(p), r.code, r.stderr, want)
		}
	}
}
