package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"taobox/assets"
	"taobox/gpu/runner"
	"taobox/model"
)

// gpuAccel is the miner's accelerator on the GPU runner: the engine's
// model sequences.
type gpuAccel struct{ e *runner.Engine }

func (a gpuAccel) Ready() bool { return a.e.ModelOnGPU() }

func (a gpuAccel) Begin(ctx context.Context) model.AccelSeq {
	if s := a.e.BeginSeq(ctx); s != nil {
		return s
	}
	return nil // not a typed nil: the miner tests for nil
}

// modelAccel has e's GPU runner load the model a miner serves (path ""
// is the embedded tiny model, written into dir for the runner to read; it
// must stay there while e runs, for restarts; sum is the file's SHA-256 in
// hex, checked before every load) and returns the accelerator,
// or nil when inference stays on the CPU: the cpu backend, no GPU (logged
// by startEngine), a model file the runner does not take (not GGUF), or
// one it refused to load (too big for its memory, a tensor type its
// kernels lack); those last two log one warning, or are an error with
// --backend cuda, which asked for the GPU. A runner that is down now (it
// failed to start and is restarting) loads the model when it comes up.
func modelAccel(ctx context.Context, e *runner.Engine, backend, path, sum, dir string, gguf bool, log *slog.Logger) (model.Accelerator, error) {
	if backend == runner.BackendCPU || !e.GPUDetected() {
		return nil, nil
	}
	refuse := func(err error) (model.Accelerator, error) {
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
	if _, err := e.LoadModel(ctx, abs, sum); err != nil && !errors.Is(err, runner.ErrNoRunner) {
		return refuse(err)
	}
	return gpuAccel{e}, nil
}

// neuronAccel starts the engine for --backend and puts the model of a
// miner or validator (--model modelFlag, loaded as mf) on its GPU runner
// (modelAccel). It returns the accelerator — nil: the model runs on the
// CPU, and the runner, which these roles need only for the model, is
// stopped — the engine, and done, which stops the engine and then removes
// the model's copy; call it when the role ends.
func neuronAccel(ctx context.Context, backend, modelFlag string, mf *modelFile, log *slog.Logger) (model.Accelerator, *runner.Engine, func(), error) {
	engine, err := startEngine(ctx, backend, log)
	if err != nil {
		return nil, nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "taobox-model-")
	if err != nil {
		engine.Close()
		return nil, nil, nil, err
	}
	done := func() {
		engine.Close()
		os.RemoveAll(tmp)
	}
	var path string
	if modelFlag != "" {
		path = mf.path
	}
	accel, err := modelAccel(ctx, engine, backend, path, mf.sha256, tmp, strings.HasPrefix(mf.format, "GGUF"), log)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	if accel == nil {
		engine.Close()
	}
	return accel, engine, done, nil
}
