package model

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"taobox/model/gguf"
)

// TestLlamaCppVocabVectors checks Encode against llama.cpp's tokenizer test
// vectors (models/ggml-vocab-*.gguf with .gguf.inp and .gguf.out, as
// tests/test-tokenizer-0.cpp reads them: add_special and parse_special
// false). Set TAOBOX_LLAMACPP_VOCAB to a directory holding those files; the
// vocabularies are third-party data and stay out of the repository.
func TestLlamaCppVocabVectors(t *testing.T) {
	dir := os.Getenv("TAOBOX_LLAMACPP_VOCAB")
	if dir == "" {
		t.Skip("set TAOBOX_LLAMACPP_VOCAB to a directory with llama.cpp's models/ggml-vocab-*.gguf{,.inp,.out} to run")
	}
	inps, err := filepath.Glob(filepath.Join(dir, "ggml-vocab-*.gguf.inp"))
	if err != nil || len(inps) == 0 {
		t.Fatalf("no ggml-vocab-*.gguf.inp files in %s (%v)", dir, err)
	}
	sort.Strings(inps)
	ran := 0
	for _, inp := range inps {
		vocab := strings.TrimSuffix(inp, ".inp")
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(vocab), "ggml-vocab-"), ".gguf")
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Open(vocab)
			if err != nil {
				t.Skipf("vocabulary not available: %v", err)
			}
			defer f.Close()
			tok, err := TokenizerFromGGUF(f)
			if err != nil {
				t.Skipf("not supported: %v", err)
			}
			cases := readVocabCases(t, inp, vocab+".out")
			pass := 0
			for _, c := range cases {
				got := tok.encode(c.text, false, false)
				if tokEqualInts(got, c.ids) {
					pass++
					continue
				}
				t.Errorf("%q: got %v, llama.cpp %v", c.text, got, c.ids)
			}
			ran++
			t.Logf("%s (%s/%s): %d/%d cases agree", name, tok.Kind(), tok.Pre(), pass, len(cases))
		})
	}
	if ran == 0 {
		t.Skip("no vocabulary could be loaded")
	}
}

type vocabCase struct {
	text string
	ids  []int
}

// readVocabCases reads test-tokenizer-0's format: inputs separated by
// "\n__ggml_vocab_test__\n", one line of space-separated ids per input.
// Like the C++ test (a std::map), a repeated input counts once.
func readVocabCases(t *testing.T, inp, out string) []vocabCase {
	rawIn, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	rawOut, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var ins []string
	s := string(rawIn)
	for pos := 0; pos < len(s); {
		i := strings.Index(s[pos:], sep)
		if i < 0 {
			ins = append(ins, s[pos:])
			break
		}
		ins = append(ins, s[pos:pos+i])
		pos += i + len(sep)
	}
	lines := strings.Split(string(rawOut), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != len(ins) {
		t.Fatalf("%s has %d inputs but %s %d lines", inp, len(ins), out, len(lines))
	}
	seen := map[string]bool{}
	var cases []vocabCase
	for i, in := range ins {
		if seen[in] {
			continue
		}
		seen[in] = true
		var ids []int
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", out, i+1, err)
			}
			ids = append(ids, v)
		}
		cases = append(cases, vocabCase{in, ids})
	}
	return cases
}

func tokEqualInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
