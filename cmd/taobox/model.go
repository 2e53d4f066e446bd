package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"taobox/assets"
	"taobox/model"
	"taobox/model/gguf"
)

// llama2.c checkpoints carry no tokenizer; these are the ids its
// tokenizer.bin (SentencePiece) uses.
const (
	llama2cBOS = 1
	llama2cEOS = 2
)

// alternatives is how many top alternatives `model generate --json` lists
// per generated token.
const alternatives = 5

var modelCommand = &command{
	name:    "model",
	summary: "inspect LLM checkpoints, generate tokens and score token sequences",
	help: "Runs the CPU inference engine on a model file: llama2.c version-0\n" +
		"checkpoints, or LLaMA-architecture GGUF files (F32, F16, BF16, Q8_0 and\n" +
		"Q4_0 tensors, computed in F32 today). Text prompts need the tokenizer of a\n" +
		"GGUF file (tokenizer.ggml.*: SentencePiece or GPT-2 byte-level BPE);\n" +
		"otherwise prompts are token ids. 'model convert' writes a llama2.c\n" +
		"checkpoint as GGUF.",
}

var modelConvertCommand = &command{
	name:    "model convert",
	args:    "--model FILE --out FILE.gguf [--type f32|f16|q8_0|q4_0]",
	summary: "write a model as a llama.cpp-style GGUF file",
	help: "Reads --model (a llama2.c checkpoint or a GGUF file) and writes it to --out\n" +
		"as GGUF v3 with llama.cpp's tensor names and metadata keys, the matrices in\n" +
		"--type (default f32; norms stay F32, as llama.cpp writes them). A GGUF file\n" +
		"keeps its vocabulary, name, context length, RMSNorm epsilon, RoPE base and\n" +
		"pairing (llama or qwen2) and attention biases: converted to its own type it\n" +
		"comes back byte for byte. A llama2.c checkpoint gets a placeholder\n" +
		"vocabulary (give token ids). An existing --out is never overwritten. Example:\n\n" +
		"  taobox model convert --model stories260K.bin --out stories260K-q8.gguf --type q8_0",
	setup: func(fs *flag.FlagSet) func(*env) error {
		path := fs.String("model", "", "the model `FILE` to read")
		out := fs.String("out", "", "the GGUF `FILE` to write")
		typ := fs.String("type", "f32", "matrix `type`: f32, f16, q8_0 or q4_0")
		return func(e *env) error {
			if *path == "" {
				return &usageError{"--model", "required: the model file"}
			}
			if *out == "" {
				return &usageError{"--out", "required: the GGUF file to write"}
			}
			types := map[string]gguf.GGMLType{"f32": gguf.TypeF32, "f16": gguf.TypeF16, "q8_0": gguf.TypeQ8_0, "q4_0": gguf.TypeQ4_0}
			t, ok := types[strings.ToLower(*typ)]
			if !ok {
				return &usageError{"--type", fmt.Sprintf("%q is not one of f32, f16, q8_0, q4_0", *typ)}
			}
			if _, err := os.Stat(*out); err == nil {
				return &usageError{"--out", fmt.Sprintf("%s exists; choose another file", *out)}
			}
			mf, err := loadModelFile("--model", *path)
			if err != nil {
				return err
			}
			// The file's own vocabulary goes with it (a llama2.c file has
			// none: a placeholder).
			b, err := model.ExportGGUF(mf.m, model.GGUFExport{Type: t, Tokenizer: mf.tokCfg, Name: mf.name})
			if err != nil {
				return &usageError{"--model", err.Error()}
			}
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", *out, err)
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d bytes, %s)\n", *out, len(b), t)
			return nil
		}
	},
}

var modelInfoCommand = &command{
	name:    "model info",
	args:    "[FILE] [--json]",
	minArgs: 0, maxArgs: 1,
	summary: "show a model file's architecture, size, quantization and SHA-256",
	help: "Prints the architecture, shape (dim, layers, heads, kv heads, vocabulary,\n" +
		"context length), parameter count, whether the output classifier is tied\n" +
		"to the token embedding, the quantization and the file's SHA-256. Without\n" +
		"FILE it describes the embedded tiny model (see 'taobox help model train-tiny').",
	setup: func(fs *flag.FlagSet) func(*env) error {
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env) error {
			path := ""
			if len(e.args) > 0 {
				path = e.args[0]
			}
			mf, err := loadModelFile("file", path)
			if err != nil {
				return err
			}
			info := mf.info()
			var b bytes.Buffer
			if *asJSON {
				if err := writeJSONLine(&b, info); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "file\t%s\n", info.File)
				fmt.Fprintf(tw, "format\t%s\n", info.Format)
				fmt.Fprintf(tw, "architecture\t%s\n", info.Architecture)
				fmt.Fprintf(tw, "parameters\t%d\n", info.Parameters)
				fmt.Fprintf(tw, "quantization\t%s\n", info.Quantization)
				fmt.Fprintf(tw, "context length\t%d\n", info.ContextLength)
				if info.ContextUsed > 0 {
					fmt.Fprintf(tw, "context used\t%d (no task needs more: prompt + answer ≤ %d)\n", info.ContextUsed, model.MaxContext)
				}
				fmt.Fprintf(tw, "vocab size\t%d\n", info.VocabSize)
				fmt.Fprintf(tw, "dim\t%d\n", info.Dim)
				fmt.Fprintf(tw, "hidden dim\t%d\n", info.HiddenDim)
				fmt.Fprintf(tw, "layers\t%d\n", info.Layers)
				fmt.Fprintf(tw, "heads\t%d\n", info.Heads)
				fmt.Fprintf(tw, "kv heads\t%d\n", info.KVHeads)
				fmt.Fprintf(tw, "tied embeddings\t%t\n", info.TiedEmbeddings)
				fmt.Fprintf(tw, "tokenizer\t%s\n", orNone(info.Tokenizer))
				fmt.Fprintf(tw, "file size\t%d\n", info.FileSize)
				fmt.Fprintf(tw, "sha256\t%s\n", info.SHA256)
				tw.Flush()
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

var modelGenerateCommand = &command{
	name:    "model generate",
	args:    "[--model FILE] (--prompt TEXT | --prompt-ids 1,2,3) --max-tokens N [flags] [--json]",
	summary: "generate tokens from a prompt, with per-token log-probs",
	help: "Feeds the prompt from position 0 and generates up to --max-tokens tokens,\n" +
		"stopping after the end-of-sequence token (id 2 for llama2.c files; with a\n" +
		"tokenizer, any end-of-generation token such as </s> or <|im_end|>; it is\n" +
		"included in the ids) unless --ignore-eos, or at the end of the context.\n" +
		"--prompt TEXT is encoded with the file's tokenizer, BOS added as its\n" +
		"metadata says; --prompt-ids are fed exactly as given (no BOS added).\n" +
		"--temperature 0, the default, is greedy (the lowest id on a tie);\n" +
		"otherwise the token is drawn from softmax(logits/T) cut to --top-k ids,\n" +
		"then to the top-p nucleus, with a PCG seeded by --seed: the same seed\n" +
		"gives the same tokens. Each token's log-prob is the natural log-softmax\n" +
		"of the unmodified logits, what 'taobox model score' recomputes. Without\n" +
		"--json it prints the generated text (the ids, comma-separated, when the\n" +
		"file has no tokenizer). --json prints one object: prompt_ids, ids,\n" +
		"logprobs, top (the 5 most probable ids per generated position, {\"id\",\n" +
		"\"logprob\"}), text (the generated tokens' text, which continues the\n" +
		"prompt, less a final end-of-generation token; \"\" without a tokenizer)\n" +
		"and tokens_per_second (generated tokens over the wall time of prompt and\n" +
		"generation). Example:\n\n" +
		"  taobox model generate --model stories260K.bin --prompt-ids 1,403,407 --max-tokens 20 --json",
	setup: func(fs *flag.FlagSet) func(*env) error {
		path := fs.String("model", "", "the model `FILE` (default: the embedded tiny model)")
		prompt := fs.String("prompt", "", "a text prompt (needs a tokenizer in the model file; BOS added as its metadata says)")
		promptIDs := fs.String("prompt-ids", "", "the prompt as comma-separated token `ids`, fed as given")
		maxTokens := fs.Int("max-tokens", -1, "the most tokens to generate (required)")
		temp := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
		topK := fs.Int("top-k", 0, "sample among the K most probable ids only (0: all)")
		topP := fs.Float64("top-p", 1, "sample within the smallest set of ids whose probability reaches P (1: all)")
		seed := fs.Uint64("seed", 0, "seed of the sampler's random generator")
		threads := fs.Int("threads", 1, "worker `threads` for the matrix products (results never depend on it)")
		ignoreEOS := fs.Bool("ignore-eos", false, "do not stop at the end-of-sequence token")
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env) error {
			if *maxTokens < 0 {
				return &usageError{"--max-tokens", "required: the most tokens to generate, ≥ 0"}
			}
			if *threads < 1 {
				return &usageError{"--threads", fmt.Sprintf("%d must be ≥ 1", *threads)}
			}
			s := model.Sampler{Temperature: *temp, TopK: *topK, TopP: *topP, Seed: *seed}
			if err := s.Validate(); err != nil {
				flagName := "--temperature"
				switch {
				case strings.HasPrefix(err.Error(), "top-k"):
					flagName = "--top-k"
				case strings.HasPrefix(err.Error(), "top-p"):
					flagName = "--top-p"
				}
				return &usageError{flagName, err.Error()}
			}
			if (*prompt == "") == (*promptIDs == "") {
				return &usageError{"prompt", "give exactly one of --prompt and --prompt-ids"}
			}
			mf, err := loadModelFile("--model", *path)
			if err != nil {
				return err
			}
			mf.m.SetThreads(*threads)
			var ids []int
			promptFlag := "--prompt-ids"
			if *prompt != "" {
				promptFlag = "--prompt"
				if mf.tok == nil {
					msg := "text prompts need a tokenizer; this model file has none: use --prompt-ids"
					if mf.tokErr != nil && !errors.Is(mf.tokErr, model.ErrNoTokenizer) {
						msg = fmt.Sprintf("this model file's tokenizer cannot be used (%v): use --prompt-ids", mf.tokErr)
					}
					return &usageError{"--prompt", msg}
				}
				if ids = mf.tok.Encode(*prompt, true); len(ids) == 0 {
					return &usageError{"--prompt", "the text encodes to no tokens and the model adds no BOS: give some text"}
				}
			} else if ids, err = parseIDs("--prompt-ids", *promptIDs, mf.m.Config.VocabSize); err != nil {
				return err
			}
			if len(ids) > mf.m.Config.SeqLen {
				return &usageError{promptFlag, fmt.Sprintf("%d ids exceed the model's context of %d", len(ids), mf.m.Config.SeqLen)}
			}
			eos := llama2cEOS
			if mf.tok != nil {
				eos = mf.tok.EOS()
			}
			if *ignoreEOS {
				eos = -1
			}
			start := time.Now()
			g, err := mf.m.GenerateSampled(ids, model.GenerateOptions{Sampler: s, MaxTokens: *maxTokens, EOS: eos, Alternatives: alternatives})
			if err != nil {
				return err
			}
			elapsed := time.Since(start).Seconds()
			text := ""
			if mf.tok != nil {
				// Generation stops at EOS only; cut at the first other
				// end-of-generation token (the ids before it are the same).
				n := len(g.IDs)
				for i, id := range g.IDs {
					if !*ignoreEOS && mf.tok.IsEOG(id) {
						g.IDs, g.LogProbs, n = g.IDs[:i+1], g.LogProbs[:i+1], i
						if g.Top != nil {
							g.Top = g.Top[:i+1]
						}
						break
					}
				}
				text = mf.tok.DecodeContinuation(g.IDs[:n]) // continues the prompt: its leading space stays
			}
			var b bytes.Buffer
			if *asJSON {
				tps := 0.0
				if elapsed > 0 {
					tps = float64(len(g.IDs)) / elapsed
				}
				top := g.Top
				if top == nil {
					top = [][]model.Alt{}
				}
				if err := writeJSONLine(&b, struct {
					PromptIDs       []int         `json:"prompt_ids"`
					IDs             []int         `json:"ids"`
					LogProbs        []float64     `json:"logprobs"`
					Top             [][]model.Alt `json:"top"`
					Text            string        `json:"text"`
					TokensPerSecond float64       `json:"tokens_per_second"`
				}{ids, g.IDs, g.LogProbs, top, text, tps}); err != nil {
					return err
				}
			} else if mf.tok != nil {
				b.WriteString(text)
				b.WriteByte('\n')
			} else {
				b.WriteString(joinIDs(g.IDs))
				b.WriteByte('\n')
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

var modelScoreCommand = &command{
	name:    "model score",
	args:    "--model FILE --ids 1,2,3,… --from K [--json]",
	summary: "teacher-forced log-probs of token ids, as a validator checks a miner",
	help: "Prints the log-prob (natural log) of each of ids[K:] given all the ids\n" +
		"before it (K ≥ 1), computed as 'taobox model generate' computes the\n" +
		"log-probs it reports, bit for bit. Without --json it prints one line per\n" +
		"scored token (its index, id and log-prob) and their sum; --json prints\n" +
		"{\"ids\", \"from\", \"logprobs\", \"sum\"}. Example:\n\n" +
		"  taobox model score --model stories260K.bin --ids 1,403,407,473,473 --from 3 --json",
	setup: func(fs *flag.FlagSet) func(*env) error {
		path := fs.String("model", "", "the model `FILE`")
		idsFlag := fs.String("ids", "", "comma-separated token `ids`")
		from := fs.Int("from", 0, "index of the first id to score (≥ 1)")
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env) error {
			if *path == "" {
				return &usageError{"--model", "required: the model file"}
			}
			if *idsFlag == "" {
				return &usageError{"--ids", "required: comma-separated token ids"}
			}
			mf, err := loadModelFile("--model", *path)
			if err != nil {
				return err
			}
			ids, err := parseIDs("--ids", *idsFlag, mf.m.Config.VocabSize)
			if err != nil {
				return err
			}
			if *from < 1 || *from > len(ids) {
				return &usageError{"--from", fmt.Sprintf("%d must be in [1, %d] (the number of ids)", *from, len(ids))}
			}
			if len(ids) > mf.m.Config.SeqLen+1 {
				return &usageError{"--ids", fmt.Sprintf("%d ids exceed the model's context of %d (+1)", len(ids), mf.m.Config.SeqLen)}
			}
			lps, err := mf.m.Score(ids, *from)
			if err != nil {
				return err
			}
			var sum float64
			for _, lp := range lps {
				sum += lp
			}
			var b bytes.Buffer
			if *asJSON {
				if err := writeJSONLine(&b, struct {
					IDs      []int     `json:"ids"`
					From     int       `json:"from"`
					LogProbs []float64 `json:"logprobs"`
					Sum      float64   `json:"sum"`
				}{ids, *from, lps, sum}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "INDEX\tID\tLOGPROB\n")
				for i, lp := range lps {
					fmt.Fprintf(tw, "%d\t%d\t%s\n", *from+i, ids[*from+i], strconv.FormatFloat(lp, 'g', -1, 64))
				}
				fmt.Fprintf(tw, "sum\t\t%s\n", strconv.FormatFloat(sum, 'g', -1, 64))
				tw.Flush()
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// modelFile is a loaded model and what `model info` reports about its file.
type modelFile struct {
	path   string
	quant  string // the type the file stores its matrices in
	format string
	size   int64
	sha256 string
	m      *model.Model
	tok    *model.Tokenizer       // nil when the file has none
	tokCfg *model.TokenizerConfig // its metadata, written back by model convert
	name   string                 // general.name, written back by model convert
	tokErr error                  // why tok is nil
}

// loadModelFile reads a model file, or the embedded tiny model when path is
// ""; every failure is a usage error naming field (the flag or argument that
// gave the path).
func loadModelFile(field, path string) (*modelFile, error) {
	var data []byte
	if path == "" {
		data, path = assets.TinyModel(), assets.TinyName
	} else {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, &usageError{field, err.Error()}
		}
	}
	sum := sha256.Sum256(data)
	mf := &modelFile{path: path, size: int64(len(data)), sha256: hex.EncodeToString(sum[:])}
	if bytes.HasPrefix(data, []byte("GGUF")) {
		f, err := gguf.Parse(data)
		if err != nil {
			return nil, &usageError{field, fmt.Sprintf("%s: %v", path, err)}
		}
		m, err := model.ModelFromGGUF(f)
		if err != nil {
			return nil, &usageError{field, fmt.Sprintf("%s: %v", path, err)}
		}
		mf.format, mf.m, mf.quant = fmt.Sprintf("GGUF v%d", f.Version), m, ggufQuant(f)
		mf.name, _ = f.String("general.name")
		if tc, err := model.TokenizerConfigFromGGUF(f); err == nil {
			mf.tokCfg = &tc
			mf.tok, mf.tokErr = model.NewTokenizer(tc)
		} else {
			mf.tokErr = err
		}
		return mf, nil
	}
	m, err := model.ParseLlama2C(data)
	if err != nil {
		return nil, &usageError{field, fmt.Sprintf("%s: not a llama2.c checkpoint: %v", path, err)}
	}
	mf.format, mf.m, mf.quant = "llama2.c v0", m, "F32"
	return mf, nil
}

// ggufQuant names the type of a GGUF file's matrices (that of the first
// attention query weight, which llama.cpp quantizes like the others).
func ggufQuant(f *gguf.File) string {
	for _, t := range f.Tensors {
		if strings.HasSuffix(t.Name, "attn_q.weight") {
			return t.Type.String()
		}
	}
	return "F32"
}

type modelInfo struct {
	File           string `json:"file"`
	Format         string `json:"format"`
	Architecture   string `json:"architecture"`
	Parameters     int64  `json:"parameters"`
	Quantization   string `json:"quantization"`
	ContextLength  int    `json:"context_length"`         // as the file declares
	ContextUsed    int    `json:"context_used,omitempty"` // set when the engines cap it (model.MaxContext)
	VocabSize      int    `json:"vocab_size"`
	Dim            int    `json:"dim"`
	HiddenDim      int    `json:"hidden_dim"`
	Layers         int    `json:"layers"`
	Heads          int    `json:"heads"`
	KVHeads        int    `json:"kv_heads"`
	TiedEmbeddings bool   `json:"tied_embeddings"`
	Tokenizer      string `json:"tokenizer"`
	BOS            int    `json:"bos"`
	EOS            int    `json:"eos"`
	FileSize       int64  `json:"file_size"`
	SHA256         string `json:"sha256"`
}

func (mf *modelFile) info() modelInfo {
	c := mf.m.Config
	params := mf.m.ParamCount() // GGUF models keep no F32 Weights
	bos, eos := llama2cBOS, llama2cEOS
	if mf.tok != nil {
		bos, eos = mf.tok.BOS(), mf.tok.EOS()
	}
	info := modelInfo{
		File: mf.path, Format: mf.format, Architecture: "llama", Parameters: params,
		Quantization: mf.quant, ContextLength: c.DeclaredSeqLen(), VocabSize: c.VocabSize,
		Dim: c.Dim, HiddenDim: c.HiddenDim, Layers: c.NLayers, Heads: c.NHeads, KVHeads: c.NKVHeads,
		TiedEmbeddings: c.SharedClassifier, Tokenizer: tokenizerName(mf.tok), BOS: bos, EOS: eos,
		FileSize: mf.size, SHA256: mf.sha256,
	}
	if c.FileSeqLen > 0 {
		info.ContextUsed = c.SeqLen
	}
	return info
}

// parseIDs parses comma-separated token ids below vocab.
func parseIDs(field, s string, vocab int) ([]int, error) {
	parts := strings.Split(s, ",")
	ids := make([]int, 0, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, &usageError{field, fmt.Sprintf("element %d, %q, is not a token id (a number)", i, p)}
		}
		if v < 0 || v >= vocab {
			return nil, &usageError{field, fmt.Sprintf("element %d, id %d, is outside the vocabulary [0,%d)", i, v, vocab)}
		}
		ids = append(ids, v)
	}
	return ids, nil
}

func joinIDs(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(id))
	}
	return b.String()
}

// tokenizerName describes t for `model info` ("" when nil).
func tokenizerName(t *model.Tokenizer) string {
	switch {
	case t == nil:
		return ""
	case t.Kind() == "llama":
		return fmt.Sprintf("llama (SentencePiece), %d tokens", t.VocabSize())
	}
	pre := t.Pre()
	if pre == "" {
		pre = "default"
	}
	return fmt.Sprintf("%s (byte-level BPE, pre-tokenizer %s), %d tokens", t.Kind(), pre, t.VocabSize())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// writeJSONLine writes v as one line of JSON. It fails only for a
// non-finite number (a log-prob of a model whose logits overflowed).
func writeJSONLine(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding the result: %v", err)
	}
	return nil
}
