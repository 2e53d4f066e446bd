package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"taobox/gpu"
	"taobox/gpu/runner"
)

// The GPU runner: `taobox-cuda runner` serves GPU work to a parent taobox
// over a unix socket (gpu/runner, docs/gpu-runner.md); --backend picks
// where `node` and `devnet` run their Yuma epochs and where `miner` and
// `validator` run their model (the llama ops).

var runnerCommand = &command{
	name:    "runner",
	args:    "--socket PATH [--shm-fd FD --shm-size N] [--device N] [--selftest SUBSTRING]",
	summary: "serve GPU work to a parent taobox over a unix socket (taobox-cuda only; started by taobox)",
	help: "Started by taobox node, devnet, miner and validator (--backend auto or\n" +
		"cuda), not by hand: opens --device, runs every kernel's self-test, listens\n" +
		"on the unix socket PATH, writes one ready line to stdout and serves\n" +
		"requests (Yuma epochs, the model's llama ops, health; docs/gpu-runner.md)\n" +
		"until its stdin closes or its parent dies.\n" +
		"--shm-fd names the shared-memory region (a memfd) the parent passes for\n" +
		"big payloads; without it everything goes over the socket.\n" +
		"Exit status 1 when the GPU cannot be opened or a self-test fails.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		socket := fs.String("socket", "", "the unix socket `PATH` to listen on (required)")
		device := fs.Int("device", 0, "the CUDA device `ordinal`")
		only := fs.String("selftest", "", "run only the selftests whose name contains this `substring` (default: all)")
		shmFD := fs.Int("shm-fd", -1, "the inherited `descriptor` of the parent's shared-memory region (-1: none)")
		shmSize := fs.Int("shm-size", 0, "the shared-memory region's size in `bytes`")
		return func(e *env) error {
			if *socket == "" {
				return &usageError{"socket", "required (the runner is started by taobox node and devnet)"}
			}
			var shm *runner.Shm
			if *shmFD >= 0 {
				var err error
				if shm, err = runner.OpenShm(*shmFD, *shmSize); err != nil {
					return &usageError{"shm-fd", err.Error()}
				}
				// After the server is done with it (ServeProcess waits).
				defer shm.Close()
			}
			return runRunner(e, *socket, *device, *only, shm)
		}
	},
}

// backendFlag defines --backend on fs.
func backendFlag(fs *flag.FlagSet) *string {
	return fs.String("backend", runner.BackendAuto, "where Yuma epochs and the model (miner, validator) run: `auto` (the GPU runner when an NVIDIA GPU and taobox-cuda are here, else the CPU), cpu or cuda")
}

// detectGPU replaces runner.Detect in the fakerunner build (tests); nil:
// the real detection.
var detectGPU func() (runner.GPU, error)

// startEngine returns the Yuma engine for --backend: the CPU engine, or
// the GPU runner's with CPU fallback. Close it when done.
func startEngine(ctx context.Context, backend string, log *slog.Logger) (*runner.Engine, error) {
	switch backend {
	case runner.BackendAuto, runner.BackendCPU, runner.BackendCUDA:
	default:
		return nil, &usageError{"backend", fmt.Sprintf("%q: want auto, cpu or cuda", backend)}
	}
	opts := runner.Options{Backend: backend, Logger: log, Detect: detectGPU}
	if gpu.Available() {
		// taobox-cuda itself: its runner is itself, whatever its name.
		if exe, err := os.Executable(); err == nil {
			opts.Binary = exe
		}
	}
	// No GPU for --backend cuda is no malformed command line: the error
	// (saying what is missing and to use --backend cpu) exits 1.
	return runner.Start(ctx, opts)
}
