//go:build !cuda

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"taobox/model/train"
)

var modelTrainTinyCommand = &command{
	name:    "model train-tiny",
	args:    "[--out FILE] [--steps N] [--threads N] [--seed N] [--force]",
	summary: "train the embedded tiny model (assets/tiny.gguf) from scratch",
	help: "Trains taobox's own tiny LLaMA (dim 128, 4 layers, 4 heads, SwiGLU 192,\n" +
		"context 128, tied embeddings, vocabulary of the story grammar) on stories\n" +
		"from a procedural grammar, with gorgonia's automatic differentiation and\n" +
		"Adam, and writes it to --out as an F32 GGUF file with its SentencePiece-\n" +
		"style vocabulary. Progress (step, loss, tokens/s, ETA) goes to stderr\n" +
		"every 25 steps; at the end it prints the held-out loss, the greedy story\n" +
		"from \"once upon a time\" and the file's SHA-256. The same --seed, --steps\n" +
		"and machine give the same file bit for bit, for every --threads (each\n" +
		"matrix product splits its work by output blocks). The defaults reproduce\n" +
		"assets/tiny.gguf: 11.5 minutes on the project's 2-core VM while others\n" +
		"shared it. An existing --out is not overwritten without --force. Example:\n\n" +
		"  taobox model train-tiny --out tiny.gguf",
	setup: func(fs *flag.FlagSet) func(*env) error {
		def := train.TinyConfig()
		out := fs.String("out", "tiny.gguf", "the GGUF `FILE` to write")
		steps := fs.Int("steps", def.Steps, "optimizer steps")
		threads := fs.Int("threads", runtime.NumCPU(), "worker `threads` (GOMAXPROCS; results do not depend on it)")
		seed := fs.Uint64("seed", def.Seed, "seed of the weights, the stories and the batch order")
		force := fs.Bool("force", false, "overwrite an existing --out")
		return func(e *env) error {
			if *steps < 1 {
				return &usageError{"--steps", fmt.Sprintf("%d must be ≥ 1", *steps)}
			}
			if *threads < 1 {
				return &usageError{"--threads", fmt.Sprintf("%d must be ≥ 1", *threads)}
			}
			if _, err := os.Stat(*out); err == nil && !*force {
				return &usageError{"--out", fmt.Sprintf("%s exists; choose another file or give --force", *out)}
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(*threads))
			c := def
			c.Steps, c.Seed, c.Warmup = *steps, *seed, 0 // warm-up: the default share of --steps
			c = c.WithDefaults()
			report := func(p train.Progress) {
				if p.Step%25 == 0 || p.Step == 1 || p.Step == p.Steps {
					fmt.Fprintf(e.stderr, "step %4d/%d  loss %.4f  lr %.5f  %5.0f tok/s  elapsed %s  ETA %s\n",
						p.Step, p.Steps, p.Loss, p.LR, p.TokensPerSec, p.Elapsed.Round(time.Second), p.ETA.Round(time.Second))
				}
			}
			fmt.Fprintf(e.stderr, "training %+v on %d threads\n", c, *threads)
			start := time.Now()
			t, err := train.Train(e.ctx, c, report)
			if err != nil {
				return err
			}
			defer t.Close()
			held, err := t.Loss(t.HeldOutBatch())
			if err != nil {
				return err
			}
			b, err := t.GGUF()
			if err != nil {
				return err
			}
			m, err := t.Model()
			if err != nil {
				return err
			}
			text, _, err := train.Greedy(m, t.Vocab, "once upon a time", 120)
			if err != nil {
				return err
			}
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", *out, err)
			}
			sum := sha256.Sum256(b)
			_, err = fmt.Fprintf(e.stdout, "wrote %s (%d bytes, sha256 %s) in %s\nheld-out loss %.4f\ngreedy: %s\n",
				*out, len(b), hex.EncodeToString(sum[:]), time.Since(start).Round(time.Second), held, text)
			return err
		}
	},
}
