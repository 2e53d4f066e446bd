package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"taobox/assets"
	"taobox/gpu/runner"
	"taobox/miner"
)

// gpuAccel is the miner's accelerator on the GPU runner: the engine's
// model sequences.
type gpuAccel struct{ e *runner.Engine }

func (a gpuAccel) Begin(ctx context.Context) miner.AccelSeq {
	if s := a.e.BeginSeq(ctx); s != nil {
		return s
	}
	return nil // not a typed nil: the miner tests for nil
}

// modelAccel has e's GPU runner load the model a miner serves (path ""
// is the embedded tiny model, written into dir for the runner to read; it
// must stay there while e runs, for restarts) and returns the accelerator,
// or nil when inference stays on the CPU: no runner (logged by
// startEngine), or a model the runner cannot take (one warning; an error
// with --backend cuda, which asked for the GPU).
func modelAccel(ctx context.Context, e *runner.Engine, backend, path, dir string, log *slog.Logger) (miner.Accelerator, error) {
	if backend == runner.BackendCPU || e.Backend() != runner.BackendCUDA {
		return nil, nil
	}
	if path == "" {
		path = filepath.Join(dir, "tiny.gguf")
		if err := os.WriteFile(path, assets.TinyModel(), 0o600); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := e.LoadModel(ctx, abs); err != nil {
		if backend == runner.BackendCUDA && !errors.Is(err, runner.ErrNoRunner) {
			return nil, err
		}
		log.Warn("the model stays on the CPU", "err", err)
		return nil, nil
	}
	return gpuAccel{e}, nil
}
