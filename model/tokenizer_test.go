package model

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"taobox/model/gguf"
)

// Tiny vocabularies built in code; every expected id below is derived by
// hand from the rules in tokenizer.go.

func ip(v int) *int   { return &v }
func bp(v bool) *bool { return &v }

// spmTestConfig: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0xXX>, then "▁", a..z and
// a few merges, then two chat specials.
func spmTestConfig() TokenizerConfig {
	c := TokenizerConfig{Kind: "llama"}
	add := func(s string, score float32, typ int32) {
		c.Tokens = append(c.Tokens, s)
		c.Scores = append(c.Scores, score)
		c.Types = append(c.Types, typ)
	}
	add("<unk>", 0, TokenUnknown)
	add("<s>", 0, TokenControl)
	add("</s>", 0, TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, TokenByte)
	}
	add("▁", -1, TokenNormal) // 259
	for r := 'a'; r <= 'z'; r++ {
		add(string(r), -2, TokenNormal) // 260 + (r-'a')
	}
	add("ab", -4, TokenNormal)           // 286
	add("bc", -3, TokenNormal)           // 287
	add("aa", -5, TokenNormal)           // 288
	add("he", -5, TokenNormal)           // 289
	add("ll", -1, TokenNormal)           // 290
	add("llo", -2, TokenNormal)          // 291
	add("▁he", -6, TokenNormal)          // 292
	add("▁hello", -3, TokenNormal)       // 293
	add("<|im_start|>", 0, TokenControl) // 294
	add("<|im_end|>", 0, TokenControl)   // 295
	return c
}

const (
	spmSpace = 259
	spmA     = 260
)

func spmLetter(r rune) int { return spmA + int(r-'a') }

func mustTokenizer(t testing.TB, c TokenizerConfig) *Tokenizer {
	t.Helper()
	tok, err := NewTokenizer(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenizerSPMEncode(t *testing.T) {
	tok := mustTokenizer(t, spmTestConfig())
	a, b := spmLetter('a'), spmLetter('b')
	for _, tc := range []struct {
		name       string
		text       string
		addSpecial bool
		want       []int
	}{
		{"empty", "", false, nil},
		{"empty adds only BOS", "", true, []int{1}},
		{"space prefix", "a", false, []int{spmSpace, a}},
		{"BOS first", "a", true, []int{1, spmSpace, a}},
		// "bc" (-3) outscores "ab" (-4): ▁ a [bc].
		{"higher score merges first", "abc", false, []int{spmSpace, a, 287}},
		// Two "aa" bigrams tie: the leftmost merges: ▁ [aa] a.
		{"leftmost on ties", "aaa", false, []int{spmSpace, 288, a}},
		// ll, then llo, then he, then ▁he+llo = ▁hello.
		{"merge chain", "hello", false, []int{293}},
		{"spaces are ▁", "a b", false, []int{spmSpace, a, spmSpace, b}},
		{"byte fallback", "é", false, []int{spmSpace, 3 + 0xC3, 3 + 0xA9}},
		{"special tokens", "<|im_start|>a<|im_end|>", false, []int{294, spmSpace, a, 295}},
		{"text after special gets the prefix", "a<|im_end|>b", false, []int{spmSpace, a, 295, spmSpace, b}},
		{"BOS text is special", "<s>a", false, []int{1, spmSpace, a}},
		{"upper case is not in the vocab", "A", false, []int{spmSpace, 3 + 'A'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text, tc.addSpecial)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Encode(%q, %t) = %v, want %v", tc.text, tc.addSpecial, got, tc.want)
			}
		})
	}
}

func TestTokenizerSPMNoBytes(t *testing.T) {
	// Without byte tokens an unknown character becomes one <unk>.
	c := TokenizerConfig{Kind: "llama", Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a"},
		Types: []int32{TokenUnknown, TokenControl, TokenControl, TokenNormal, TokenNormal}}
	tok := mustTokenizer(t, c)
	if got, want := tok.Encode("aéa", false), []int{3, 4, 0, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	// Without add_space_prefix no ▁ is added.
	c.AddSpacePrefix = bp(false)
	tok = mustTokenizer(t, c)
	if got, want := tok.Encode("a a", false), []int{4, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("no prefix: Encode = %v, want %v", got, want)
	}
	if got := tok.Decode([]int{3, 4}); got != " a" {
		t.Fatalf("no prefix: Decode kept no leading space: %q", got)
	}
}

func TestTokenizerSPMDecode(t *testing.T) {
	tok := mustTokenizer(t, spmTestConfig())
	a := spmLetter('a')
	for _, tc := range []struct {
		name string
		ids  []int
		want string
	}{
		{"leading space stripped", []int{spmSpace, a}, "a"},
		{"after BOS too", []int{1, spmSpace, a}, "a"},
		{"only one space", []int{spmSpace, spmSpace, a}, " a"},
		{"inner spaces kept", []int{293, spmSpace, a}, "hello a"},
		{"bytes join", []int{spmSpace, 3 + 0xC3, 3 + 0xA9}, "é"},
		{"specials as text, prefix stripped after them", []int{294, spmSpace, a, 295}, "<|im_start|>a<|im_end|>"},
		{"EOS in the middle is text", []int{a, 2, a}, "a</s>a"},
		{"out of range skipped", []int{-1, a, 100000}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tok.Decode(tc.ids); got != tc.want {
				t.Fatalf("Decode(%v) = %q, want %q", tc.ids, got, tc.want)
			}
		})
	}
	// DecodeContinuation keeps the first leading space and the BOS.
	if got := tok.DecodeContinuation([]int{spmSpace, a, 294, spmSpace, a}); got != " a<|im_start|>a" {
		t.Errorf("DecodeContinuation = %q", got)
	}
	// A "▁" spelled in byte tokens is a space too (a vocabulary without "▁").
	if got := tok.Decode([]int{a, 3 + 0xE2, 3 + 0x96, 3 + 0x81, a}); got != "a a" {
		t.Errorf("byte-spelled ▁: Decode = %q", got)
	}
	for id, want := range map[int]string{spmSpace: " ", 293: " hello", 3 + 'A': "A", 1: "<s>", -5: "", 1 << 20: ""} {
		if got := tok.TokenText(id); got != want {
			t.Errorf("TokenText(%d) = %q, want %q", id, got, want)
		}
	}
}

// bpeTestConfig: ids 0..255 are the 256 byte runes in byte order, then the
// merges' results, then <|endoftext|> and <|im_end|>.
func bpeTestConfig(pre string) TokenizerConfig {
	b2r, _ := byteRunes()
	c := TokenizerConfig{Kind: "gpt2", Pre: pre}
	for b := 0; b < 256; b++ {
		c.Tokens = append(c.Tokens, string(b2r[b]))
	}
	c.Merges = []string{"h e", "Ġ t", "Ġt he", "l l", "e ll", "Ġ Ġ"}
	c.Tokens = append(c.Tokens, "he", "Ġt", "Ġthe", "ll", "ell", "ĠĠ") // 256..261
	c.Tokens = append(c.Tokens, "<|endoftext|>", "<|im_end|>")         // 262, 263
	c.Types = make([]int32, len(c.Tokens))
	for i := range c.Types {
		c.Types[i] = TokenNormal
	}
	c.Types[262], c.Types[263] = TokenControl, TokenControl
	c.BOS, c.EOS = ip(262), ip(262)
	return c
}

func TestTokenizerBPEEncode(t *testing.T) {
	tok := mustTokenizer(t, bpeTestConfig("gpt-2"))
	for _, tc := range []struct {
		name       string
		text       string
		addSpecial bool
		want       []int
	}{
		{"empty", "", true, nil}, // gpt-2 adds no BOS
		{"bytes", "ab", false, []int{'a', 'b'}},
		// "h e" (rank 0) before "l l" (3); then "he ll" is no merge, and
		// "e ll" (4) never applies because e is taken.
		{"rank order", "hell", false, []int{256, 259}},
		{"space joins the word", " the", false, []int{258}},
		{"words split", "the the", false, []int{'t', 256, 258}},
		{"non-ASCII bytes", "é", false, []int{0xC3, 0xA9}},
		{"special", "a<|endoftext|>b", false, []int{'a', 262, 'b'}},
		{"newline byte", "\n", false, []int{'\n'}},
		// \s+(?!\S): "  " before a letter leaves one space to the word.
		{"spaces before a word", "   t", false, []int{261, 257}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text, tc.addSpecial)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Encode(%q, %t) = %v, want %v", tc.text, tc.addSpecial, got, tc.want)
			}
		})
	}
	// The llama3 family adds BOS by default.
	l3 := mustTokenizer(t, bpeTestConfig("llama-bpe"))
	if got, want := l3.Encode("he", true), []int{262, 256}; !reflect.DeepEqual(got, want) {
		t.Fatalf("llama-bpe Encode = %v, want %v", got, want)
	}
	if got := tok.Decode([]int{'a', 262, 256, 259}); got != "a<|endoftext|>hell" {
		t.Fatalf("Decode = %q", got)
	}
	if got := tok.TokenText(258); got != " the" {
		t.Fatalf("TokenText(Ġthe) = %q", got)
	}
}

func TestTokenizerIgnoreMerges(t *testing.T) {
	// "ab" is a token but no merge builds it: byte-level BPE gives a, b;
	// llama3's ignore_merges takes the whole word.
	c := bpeTestConfig("gpt-2")
	c.Tokens = append(c.Tokens, "ab")
	c.Types = append(c.Types, TokenNormal)
	ab := len(c.Tokens) - 1
	if got, want := mustTokenizer(t, c).Encode("ab", false), []int{'a', 'b'}; !reflect.DeepEqual(got, want) {
		t.Fatalf("gpt-2: %v, want %v", got, want)
	}
	c.Pre = "llama3"
	if got, want := mustTokenizer(t, c).Encode("ab", false), []int{ab}; !reflect.DeepEqual(got, want) {
		t.Fatalf("llama3: %v, want %v", got, want)
	}
}

func TestPreTokenizers(t *testing.T) {
	for _, tc := range []struct {
		pre, text string
		want      []string
	}{
		{"gpt-2", "Hello world", []string{"Hello", " world"}},
		{"gpt-2", "I'm  here!!\n", []string{"I", "'m", " ", " here", "!!", "\n"}},
		{"gpt-2", "a   ", []string{"a", "   "}},
		{"gpt-2", "abc123 45", []string{"abc", "123", " 45"}},
		{"gpt-2", "I'M", []string{"I", "'", "M"}}, // case-sensitive contractions
		{"llama3", "I'M", []string{"I", "'M"}},
		{"llama3", "12345", []string{"123", "45"}},
		{"llama3", "  x", []string{" ", " x"}},
		{"llama3", "a\n\nb", []string{"a", "\n\n", "b"}},
		{"llama3", "!!\n\nx", []string{"!!\n\n", "x"}},
		{"llama3", ",x", []string{",x"}},
		{"qwen2", "12345", []string{"1", "2", "3", "4", "5"}},
		{"default", "a,b 1234", []string{"a", ",", "b", " ", "123", "4"}},
		{"smollm", "ab12", []string{"ab", "1", "2"}},
		{"gpt-4o", "HelloWorld", []string{"Hello", "World"}},
		{"gpt-4o", "HELLO there", []string{"HELLO", " there"}},
		{"gpt-4o", "don't", []string{"don't"}},
		{"gpt-4o", "I'm", []string{"I'm"}},
		{"gpt-4o", "x1234", []string{"x", "123", "4"}},
		{"gpt-4o", "a//\n", []string{"a", "//\n"}},
		{"gpt-2", "a\xffb", []string{"a", "\xff", "b"}}, // invalid byte: a symbol of its own
	} {
		split, _, _, ok := preTokenizer(tc.pre)
		if !ok {
			t.Fatalf("pre-tokenizer %q unknown", tc.pre)
		}
		if got := split(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s split %q = %q, want %q", tc.pre, tc.text, got, tc.want)
		}
	}
}

func TestTokenizerSpecialsAndEOG(t *testing.T) {
	tok := mustTokenizer(t, spmTestConfig())
	if tok.BOS() != 1 || tok.EOS() != 2 || tok.VocabSize() != 296 || tok.Kind() != "llama" || !tok.AddsBOS() {
		t.Fatalf("BOS %d EOS %d size %d kind %s adds BOS %t", tok.BOS(), tok.EOS(), tok.VocabSize(), tok.Kind(), tok.AddsBOS())
	}
	for id, want := range map[int]bool{2: true, 295: true, 294: false, 1: false, spmSpace: false, -1: false} {
		if got := tok.IsEOG(id); got != want {
			t.Errorf("IsEOG(%d) = %t, want %t", id, got, want)
		}
	}
	// Longest special first: "<|im_end|>" is not cut by a shorter "<|im".
	c := spmTestConfig()
	c.Tokens = append(c.Tokens, "<|im")
	c.Scores = append(c.Scores, 0)
	c.Types = append(c.Types, TokenUserDefined)
	tok = mustTokenizer(t, c)
	if got, want := tok.Encode("<|im_end|><|im", false), []int{295, 296}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	// parse_special=false (llama.cpp's test mode) still matches
	// user-defined tokens but not control tokens.
	if got := tok.encode("<|im", false, false); !reflect.DeepEqual(got, []int{296}) {
		t.Fatalf("user-defined without parse_special: %v", got)
	}
	if got := tok.encode("<s>", false, false); reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("control token matched without parse_special: %v", got)
	}
	// add_eos, and absent BOS/EOS.
	c = spmTestConfig()
	c.AddEOS, c.AddBOS = bp(true), bp(false)
	tok = mustTokenizer(t, c)
	if got, want := tok.Encode("a", true), []int{spmSpace, spmLetter('a'), 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("add_eos: %v, want %v", got, want)
	}
	if got := tok.Decode([]int{spmSpace, spmLetter('a'), 2}); got != "a" {
		t.Fatalf("Decode drops the trailing EOS it adds: %q", got)
	}
	c = TokenizerConfig{Kind: "gpt2", Tokens: []string{"a"}, Merges: []string{}}
	tok = mustTokenizer(t, c)
	if tok.BOS() != -1 || tok.EOS() != -1 || tok.AddsBOS() {
		t.Fatalf("one-token gpt2: BOS %d EOS %d adds %t, want -1 -1 false", tok.BOS(), tok.EOS(), tok.AddsBOS())
	}
}

func TestNewTokenizerErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(c *TokenizerConfig)
		want string
	}{
		{"no tokens", func(c *TokenizerConfig) { c.Tokens = nil }, "tokenizer.ggml.tokens is empty"},
		{"scores", func(c *TokenizerConfig) { c.Scores = c.Scores[1:] }, "tokenizer.ggml.scores has 295 entries, want 296"},
		{"types", func(c *TokenizerConfig) { c.Types = c.Types[1:] }, "tokenizer.ggml.token_type has 295 entries, want 296"},
		{"kind", func(c *TokenizerConfig) { c.Kind = "bert" }, `"bert" is not supported`},
		{"pre", func(c *TokenizerConfig) { c.Kind, c.Pre, c.Merges = "gpt2", "klingon", []string{} }, `tokenizer.ggml.pre "klingon" is not supported`},
		{"merges", func(c *TokenizerConfig) { c.Kind, c.Pre = "gpt2", "gpt-2" }, "tokenizer.ggml.merges is missing"},
	} {
		c := spmTestConfig()
		tc.mod(&c)
		_, err := NewTokenizer(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// writeTokenizerGGUF writes c's metadata as ExportGGUF does and parses it.
func writeTokenizerGGUF(t testing.TB, c *TokenizerConfig) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	if c != nil {
		if err := addTokenizerKVs(w, c); err != nil {
			t.Fatal(err)
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTokenizerFromGGUF(t *testing.T) {
	for _, c := range []TokenizerConfig{spmTestConfig(), bpeTestConfig("llama-bpe")} {
		c.AddEOS = bp(true)
		f := writeTokenizerGGUF(t, &c)
		got, err := TokenizerFromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		want := mustTokenizer(t, c)
		for _, s := range []string{"hello the world", "<|im_end|>aé", ""} {
			if g, w := got.Encode(s, true), want.Encode(s, true); !reflect.DeepEqual(g, w) {
				t.Errorf("%s: Encode(%q) from GGUF = %v, from config %v", c.Kind, s, g, w)
			}
		}
		if got.BOS() != want.BOS() || got.EOS() != want.EOS() || got.VocabSize() != want.VocabSize() {
			t.Errorf("%s: specials differ", c.Kind)
		}
	}
	if _, err := TokenizerFromGGUF(writeTokenizerGGUF(t, nil)); !errors.Is(err, ErrNoTokenizer) {
		t.Fatalf("no metadata: err = %v, want ErrNoTokenizer", err)
	}
	none := TokenizerConfig{Kind: "none", Tokens: []string{"<t0>"}}
	if _, err := TokenizerFromGGUF(writeTokenizerGGUF(t, &none)); !errors.Is(err, ErrNoTokenizer) {
		t.Fatalf("model none: err = %v, want ErrNoTokenizer", err)
	}
	// A wrongly typed key is reported by name.
	w := gguf.NewWriter()
	w.AddString("tokenizer.ggml.model", "llama")
	w.AddArray("tokenizer.ggml.tokens", []string{"a"})
	w.AddString("tokenizer.ggml.bos_token_id", "1")
	b, _ := w.Bytes()
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TokenizerFromGGUF(f); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.bos_token_id") {
		t.Fatalf("bad bos type: err = %v", err)
	}
}

// FuzzTokenizerRoundTrip checks Decode(Encode(s, true)) == s (the rule in
// tokenizer.go) for both tiny vocabularies, and that every id is in range.
func FuzzTokenizerRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "hello world", "  the\n\n", "<|im_start|>hi<|im_end|>", "é日本🦙", "a<s>b", "I'm 12345!!", "\t\r\n x"} {
		f.Add(s)
	}
	spm := mustTokenizer(f, spmTestConfig())
	noSpace := spmTestConfig() // "▁" only as byte tokens, like a word-level vocabulary
	noSpace.Tokens[spmSpace], noSpace.Types[spmSpace] = "<unused0>", TokenUnused
	others := []*Tokenizer{
		mustTokenizer(f, noSpace),
		mustTokenizer(f, bpeTestConfig("gpt-2")),
		mustTokenizer(f, bpeTestConfig("llama3")),
		mustTokenizer(f, bpeTestConfig("qwen2")),
		mustTokenizer(f, bpeTestConfig("default")),
		mustTokenizer(f, bpeTestConfig("gpt-4o")),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range append([]*Tokenizer{spm}, others...) {
			ids := tok.Encode(s, true)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("%s/%s: id %d out of range", tok.Kind(), tok.Pre(), id)
				}
			}
			if tok.Kind() == "llama" && strings.Contains(s, "▁") {
				continue // outside the round-trip rule: ▁ reads back as a space
			}
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s/%s: Decode(Encode(%q)) = %q (ids %v)", tok.Kind(), tok.Pre(), s, got, ids)
			}
		}
	})
}

func TestExportGGUFTokenizer(t *testing.T) {
	vocab := spmTestConfig()
	c := Config{Dim: 16, HiddenDim: 24, NLayers: 1, NHeads: 2, NKVHeads: 2, VocabSize: len(vocab.Tokens), SeqLen: 8}
	m := randomLlama2C(t, c, 3)
	vocab.AddSpacePrefix = bp(true)
	b := exportGGUF(t, m, GGUFExport{Tokenizer: &vocab})
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := TokenizerFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.Encode("hello<|im_end|>", true), []int{1, 293, 295}; !reflect.DeepEqual(got, want) {
		t.Fatalf("exported tokenizer: Encode = %v, want %v", got, want)
	}
	if _, err := ModelFromGGUF(f); err != nil {
		t.Fatalf("the model no longer loads: %v", err)
	}
	// Without a tokenizer: the placeholder, which is no tokenizer.
	f, err = gguf.Parse(exportGGUF(t, m, GGUFExport{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TokenizerFromGGUF(f); !errors.Is(err, ErrNoTokenizer) {
		t.Fatalf("placeholder: err = %v, want ErrNoTokenizer", err)
	}
	// A vocabulary of the wrong size, or a broken one, is refused.
	short := spmTestConfig()
	short.Tokens, short.Scores, short.Types = short.Tokens[:10], short.Scores[:10], short.Types[:10]
	if _, err := ExportGGUF(m, GGUFExport{Tokenizer: &short}); err == nil || !strings.Contains(err.Error(), "10 tokens") {
		t.Fatalf("short vocabulary: err = %v", err)
	}
	bad := spmTestConfig()
	bad.Scores = bad.Scores[1:]
	if _, err := ExportGGUF(m, GGUFExport{Tokenizer: &bad}); err == nil || !strings.Contains(err.Error(), "tokenizer.ggml.scores") {
		t.Fatalf("bad scores: err = %v", err)
	}
}
