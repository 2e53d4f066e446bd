package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"taobox/model"
	"taobox/model/gguf"
)

var modelSynthCommand = &command{
	name:    "model synth",
	args:    "--shape s15M|s110M|s260K|s42M|custom --out FILE [--seed N] [--untied] [--kv-heads N] [--type f32|q8_0|q4_0]",
	summary: "write a random-weight model in a stories shape, for cross-checks and benchmarks",
	help: "Writes a model with random weights drawn from --seed (the same shape and seed\n" +
		"always give the same weights, bit for bit) as a llama.cpp-style GGUF file\n" +
		"(--type f32, f16, q8_0 or q4_0; norms stay F32), or as a llama2.c v0\n" +
		"checkpoint with --format llama2c (F32 only). Shapes are llama2.c's stories\n" +
		"models: s260K 64/172/5/8/4/512/512, s15M 288/768/6/6/6/32000/256,\n" +
		"s42M 512/1376/8/8/8/32000/1024, s110M 768/2048/12/12/12/32000/1024\n" +
		"(dim/hidden/layers/heads/kv heads/vocab/seq); --dim, --hidden, --layers,\n" +
		"--heads, --kv-heads (grouped-query attention when below --heads), --vocab\n" +
		"and --seq override them, and --shape custom needs all of them. The classifier\n" +
		"is tied to the embedding unless --untied; random tied models make greedy\n" +
		"decoding repeat the last token, so cross-checks use --untied. With 260 or\n" +
		"more tokens the GGUF carries a SentencePiece-style vocabulary llama.cpp can\n" +
		"tokenize with: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, \"▁\", then\n" +
		"lower-case letter strings, with and without a leading \"▁\", shortest first.\n" +
		"Smaller vocabularies get placeholder tokens (\"<ti>\"): feed prompts as ids.\n" +
		"An existing --out is never overwritten. Example:\n\n" +
		"  taobox model synth --shape s15M --untied --kv-heads 2 --seed 1 --out s15M-gqa.gguf",
	setup: func(fs *flag.FlagSet) func(*env) error {
		shape := fs.String("shape", "", "the model `shape`: "+strings.Join(model.SynthShapeNames(), ", ")+" or custom")
		seed := fs.Uint64("seed", 1, "seed of the weights")
		untied := fs.Bool("untied", false, "give the model its own output classifier")
		typ := fs.String("type", "f32", "GGUF matrix `type`: f32, f16, q8_0 or q4_0")
		format := fs.String("format", "gguf", "file `format`: gguf or llama2c")
		out := fs.String("out", "", "the `FILE` to write")
		var over [7]int
		names := [7]string{"dim", "hidden", "layers", "heads", "kv-heads", "vocab", "seq"}
		usage := [7]string{"embedding width", "feed-forward width", "layer count", "query heads", "key/value heads", "vocabulary size", "context length"}
		for i := range over {
			fs.IntVar(&over[i], names[i], 0, "override the shape's "+usage[i])
		}
		return func(e *env) error {
			var c model.Config
			if *shape != "custom" {
				var ok bool
				if c, ok = model.SynthShapes[*shape]; !ok {
					return &usageError{"--shape", fmt.Sprintf("%q is not one of %s, custom", *shape, strings.Join(model.SynthShapeNames(), ", "))}
				}
			}
			fields := [7]*int{&c.Dim, &c.HiddenDim, &c.NLayers, &c.NHeads, &c.NKVHeads, &c.VocabSize, &c.SeqLen}
			for i, v := range over {
				if v < 0 {
					return &usageError{"--" + names[i], fmt.Sprintf("%d must be positive", v)}
				}
				if v > 0 {
					*fields[i] = v
				}
				if *fields[i] == 0 {
					return &usageError{"--" + names[i], "required with --shape custom"}
				}
			}
			c.SharedClassifier = !*untied
			if *out == "" {
				return &usageError{"--out", "required: the file to write"}
			}
			types := map[string]gguf.GGMLType{"f32": gguf.TypeF32, "f16": gguf.TypeF16, "q8_0": gguf.TypeQ8_0, "q4_0": gguf.TypeQ4_0}
			t, ok := types[strings.ToLower(*typ)]
			if !ok {
				return &usageError{"--type", fmt.Sprintf("%q is not one of f32, f16, q8_0, q4_0", *typ)}
			}
			if *format != "gguf" && *format != "llama2c" {
				return &usageError{"--format", fmt.Sprintf("%q is not gguf or llama2c", *format)}
			}
			if *format == "llama2c" && t != gguf.TypeF32 {
				return &usageError{"--type", "llama2c checkpoints are F32 only"}
			}
			if _, err := os.Stat(*out); err == nil {
				return &usageError{"--out", fmt.Sprintf("%s exists; choose another file", *out)}
			}
			m, err := model.Synthesize(c, *seed)
			if err != nil {
				return &usageError{"--shape", err.Error()}
			}
			var b []byte
			if *format == "llama2c" {
				b = llama2cBytes(m)
			} else if b, err = model.ExportGGUF(m, model.GGUFExport{Type: t}); err != nil {
				return &usageError{"--type", err.Error()}
			} else if c.VocabSize >= synthVocabMin {
				if b, err = withSynthVocab(b, c.VocabSize); err != nil {
					return err
				}
			}
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", *out, err)
			}
			if *format == "llama2c" {
				t = gguf.TypeF32
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d bytes, %s, %d/%d/%d/%d/%d/%d/%d, tied %t, seed %d)\n", *out, len(b), t,
				c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen, c.SharedClassifier, *seed)
			return nil
		}
	},
}

// llama2cBytes encodes m as a llama2.c version-0 checkpoint (run.c's
// format): the 7-int header (a negative vocabulary size when the classifier
// is untied), the weights in run.c's order, the unused RoPE tables as
// zeros, then the classifier when untied.
func llama2cBytes(m *model.Model) []byte {
	c, w := m.Config, m.Weights
	var b bytes.Buffer
	vocab := int32(c.VocabSize)
	if !c.SharedClassifier {
		vocab = -vocab
	}
	for _, v := range []int32{int32(c.Dim), int32(c.HiddenDim), int32(c.NLayers), int32(c.NHeads), int32(c.NKVHeads), vocab, int32(c.SeqLen)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	put := func(s []float32) {
		buf := make([]byte, 4*len(s))
		for i, x := range s {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		b.Write(buf)
	}
	for _, s := range [][]float32{w.TokenEmbedding, w.RMSAtt, w.WQ, w.WK, w.WV, w.WO, w.RMSFFN, w.W1, w.W2, w.W3, w.RMSFinal} {
		put(s)
	}
	put(make([]float32, c.SeqLen*c.HeadSize())) // freq_cis_real and freq_cis_imag
	if !c.SharedClassifier {
		put(w.WCls)
	}
	return b.Bytes()
}

// llama.cpp's token types (tokenizer.ggml.token_type values).
const (
	ggufTokNormal  = 1
	ggufTokUnknown = 2
	ggufTokControl = 3
	ggufTokByte    = 6
)

// synthVocabMin is the smallest vocabulary that holds synthVocab's special
// and byte tokens and "▁".
const synthVocabMin = 3 + 256 + 1

// synthVocab is a SentencePiece-style ("llama") vocabulary of n ≥
// synthVocabMin tokens that llama.cpp tokenizes without error: <unk>, <s>,
// </s> (ids 0, 1, 2, as in LLaMA), the byte tokens <0x00>..<0xFF> (ids
// 3..258), "▁", then every lower-case string of length 1, 2, ..., each
// followed by its "▁"-prefixed twin, until n tokens. Every piece's prefix is
// also a piece, so SentencePiece's pairwise merges reach each of them; the
// scores prefer lower ids.
func synthVocab(n int) (toks []string, scores []float32, types []int32) {
	toks = append(toks, "<unk>", "<s>", "</s>")
	types = append(types, ggufTokUnknown, ggufTokControl, ggufTokControl)
	for b := 0; b < 256; b++ {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
		types = append(types, ggufTokByte)
	}
	toks = append(toks, "\u2581")
	types = append(types, ggufTokNormal)
	word := []byte{}
	for len(toks) < n {
		// Next lower-case word in shortlex order: a..z, aa..zz, aaa...
		i := len(word) - 1
		for i >= 0 && word[i] == 'z' {
			word[i] = 'a'
			i--
		}
		if i < 0 {
			word = append([]byte{'a'}, word...)
		} else {
			word[i]++
		}
		for _, p := range []string{string(word), "\u2581" + string(word)} {
			if len(toks) < n {
				toks = append(toks, p)
				types = append(types, ggufTokNormal)
			}
		}
	}
	scores = make([]float32, n)
	for i := range scores {
		scores[i] = -float32(i)
	}
	return toks, scores, types
}

// withSynthVocab rewrites the GGUF file b with synthVocab(n) in place of
// its tokenizer.* metadata; every other key and every tensor is copied.
func withSynthVocab(b []byte, n int) ([]byte, error) {
	f, err := gguf.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("re-reading the exported file: %w", err)
	}
	w := gguf.NewWriter()
	for _, kv := range f.Metadata {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			w.AddKV(kv.Key, kv.Type, kv.Value)
		}
	}
	toks, scores, types := synthVocab(n)
	w.AddString("tokenizer.ggml.model", "llama")
	w.AddArray("tokenizer.ggml.tokens", toks)
	w.AddArray("tokenizer.ggml.scores", scores)
	w.AddArray("tokenizer.ggml.token_type", types)
	w.AddUint32("tokenizer.ggml.unknown_token_id", 0)
	w.AddUint32("tokenizer.ggml.bos_token_id", 1)
	w.AddUint32("tokenizer.ggml.eos_token_id", 2)
	w.AddBool("tokenizer.ggml.add_bos_token", true)
	w.AddBool("tokenizer.ggml.add_eos_token", false)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		raw, err := f.TensorData(t)
		if err != nil {
			return nil, fmt.Errorf("re-reading the exported file: %w", err)
		}
		w.AddTensor(t.Name, t.Type, t.Dims, raw)
	}
	return w.Bytes()
}
