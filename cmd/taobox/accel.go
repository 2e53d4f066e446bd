package main

import (
	"context"
	"errors"
	"fmt"
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

func (a gpuAccel) Ready() bool { return a.e.ModelOnGPU() }

func (a gpuAccel) Begin(ctx context.Context) miner.AccelSeq {
	if s := a.e.BeginSeq(ctx); s != nil {
		return s
	}
	return nil // not a typed nil: the miner tests for nil
}

// modelAccel has e's GPU runner load the model a miner serves (path ""
// is the embedded tiny model, written into dir for the runner to read; it
// must stay there while e runs, for restarts) and returns the accelerator,
// or nil when inference stays on the CPU: the cpu backend, no GPU (logged
// by startEngine), a model file the runner does not take (not GGUF), or
// one it refused to load (too big for its memory, a tensor type its
// kernels lack); those last two log one warning, or are an error with
// --backend cuda, which asked for the GPU. A runner that is down now (it
// failed to start and is restarting) loads the model when it comes up.
func modelAccel(ctx context.Context, e *runner.Engine, backend, path, dir string, gguf bool, log *slog.Logger) (miner.Accelerator, error) {
	if backend == runner.BackendCPU || !e.GPUDetected() {
		return nil, nil
	}
	refuse := func(err error) (miner.Accelerator, error) {
		if backend == runner.BackendCUDA {
			return nil, fmt.Errorf("--backend cuda: %w; use --backend auto (the model then runs on the CPU) or cpu", err)
		}
		log.Warn("the model runs on the CPU", "err", err)
		return nil, nil
	}
	if !gguf {
		return refuse(fmt.Errorf("the GPU runner takes GGUF models; %s is not one", path))
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
	if _, err := e.LoadModel(ctx, abs); err != nil && !errors.Is(err, runner.ErrNoRunner) {
		return refuse(err)
	}
	return gpuAccel{e}, nil
}
