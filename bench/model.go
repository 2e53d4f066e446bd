package bench

import (
	"context"
	"fmt"
	"time"
)

// ModelRunner is what the model section needs of a loaded model;
// *model.Model implements it (BenchDecode: n tokens generated greedily
// from position 0; BenchPrompt: n fixed tokens through the batched
// prefill; both return tokens per second).
type ModelRunner interface {
	BenchDecode(n int) (float64, error)
	BenchPrompt(n int) (float64, error)
	SetThreads(n int)
}

// Model is one model to measure.
type Model struct {
	Name      string // file name, or "tiny" for the embedded model
	Type      string // the matrices' type: F32, Q8_0, ...
	FileBytes int64
	SeqLen    int // the context; decode and prompt runs are capped to it (0: no cap)
	Runner    ModelRunner
}

// modelShape returns the tokens per decode and prompt run, 128 and 64 as
// `taobox bench model` does by default (16 and 16 with quick), capped to
// the context.
func modelShape(c *Config, m Model) (decode, prompt int) {
	decode, prompt = 128, 64
	if c.Quick {
		decode, prompt = 16, 16
	}
	if m.SeqLen > 0 {
		decode, prompt = min(decode, m.SeqLen), min(prompt, m.SeqLen)
	}
	return decode, prompt
}

func modelSteps(c *Config, r *Report) []step {
	var steps []step
	for _, m := range c.Models {
		for _, t := range c.Threads {
			steps = append(steps, step{fmt.Sprintf("model %s %d thread(s)", m.Name, t), func(ctx context.Context) (string, error) {
				row, err := benchModel(ctx, c, m, t)
				if err != nil {
					row.Error = err.Error()
				}
				r.Model = append(r.Model, row)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("decode %.1f tok/s, prompt %.1f tok/s (%d and %d runs)", row.DecodeTPS, row.PromptTPS, row.DecodeRuns, row.PromptRuns), nil
			}})
		}
	}
	return steps
}

// benchModel times m at t threads: decode runs (one untimed warm-up,
// then at least 3 and MinTime/2; quick: 1), then prompt runs likewise;
// each rate is the tokens of the timed runs over their total time.
func benchModel(ctx context.Context, c *Config, m Model, t int) (ModelResult, error) {
	decode, prompt := modelShape(c, m)
	row := ModelResult{Model: m.Name, Type: m.Type, FileBytes: m.FileBytes, Threads: t, DecodeTokens: decode, PromptTokens: prompt}
	m.Runner.SetThreads(t)
	defer m.Runner.SetThreads(1) // stop the helper goroutines
	lo, hi := 3, 100_000
	if c.Quick {
		lo, hi = 1, 1
	}
	half := *c
	half.MinTime = c.MinTime / 2
	ds, err := loop(ctx, &half, lo, hi, func() error { _, err := m.Runner.BenchDecode(decode); return err })
	if err != nil {
		return row, fmt.Errorf("decode: %w", err)
	}
	row.DecodeRuns = len(ds)
	row.DecodeTPS = rate(decode*len(ds), total(ds))
	ds, err = loop(ctx, &half, lo, hi, func() error { _, err := m.Runner.BenchPrompt(prompt); return err })
	if err != nil {
		return row, fmt.Errorf("prompt: %w", err)
	}
	row.PromptRuns = len(ds)
	row.PromptTPS = rate(prompt*len(ds), total(ds))
	return row, nil
}

// rate is n per second over d; 0 for no time (a clock too coarse to see
// the work), which the report shows as not measured.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
