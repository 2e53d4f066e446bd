//go:build cuda

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"gorgonia.org/cu"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/gpu"
	"taobox/gpu/runner"
	"taobox/model/gguf"
)

type yumaGPUBench struct {
	Shape         string  `json:"shape"`
	Subnets       int     `json:"subnets"`
	UIDs          int     `json:"uids"`
	GPUEpochsPerS float64 `json:"gpu_epochs_per_s"`
	GPUMsPerBatch float64 `json:"gpu_ms_per_batch"` // transfers and packing included
	// The same the way the node sends it (yuma.packed without the socket):
	// packed in Go memory, staged into page-locked memory by the engine.
	GPUArenaMsPerBatch float64 `json:"gpu_arena_ms_per_batch"`
	// The same the way a runner with a shared region serves it: the arena
	// uploaded from, and the outputs downloaded into, mapped regions the
	// driver page-locked in place (no staging copies); RegionsStaged is
	// what still went through the engine's buffers (0 unless the driver
	// refused to page-lock them, RegionsError).
	GPURegionsMsPerBatch float64 `json:"gpu_regions_ms_per_batch"`
	RegionsStaged        int64   `json:"regions_staged_bytes"`
	RegionsError         string  `json:"regions_error,omitempty"`
	CPUEpochsPerS        float64 `json:"cpu_epochs_per_s"`
	CPUMsPerBatch        float64 `json:"cpu_ms_per_batch"`
	CPUWorkers           int     `json:"cpu_workers"`
	Speedup              float64 `json:"speedup"`
	GPUTimings           string  `json:"gpu_timings,omitempty"`
	Error                string  `json:"error,omitempty"`
}

type benchGPUReport struct {
	Device          gpu.Info               `json:"device"`
	Driver          string                 `json:"driver"`
	Yuma            []yumaGPUBench         `json:"yuma"`
	RunnerYuma      *runnerYumaBench       `json:"runner_yuma,omitempty"`
	Boundary        *runner.Boundary       `json:"runner_boundary,omitempty"`
	BoundaryShm     *runner.Boundary       `json:"runner_boundary_shm,omitempty"`
	Llama           []gpu.LlamaBenchResult `json:"llama"`
	GPUMemUsedBytes int64                  `json:"gpu_mem_used_bytes"`
	GPUMemTotal     int64                  `json:"gpu_mem_total_bytes"`
	Errors          []string               `json:"errors,omitempty"`
	Seconds         float64                `json:"seconds"`
}

// runnerYumaBench is a Yuma batch the way a node runs it on the GPU: sent
// by this process to a taobox-cuda runner subprocess, both ops, validation,
// packing, the boundary, the kernels and the decoding included.
type runnerYumaBench struct {
	Shape              string  `json:"shape"`
	PackedMsPerBatch   float64 `json:"packed_ms_per_batch"`    // yuma.packed: the node packs and unpacks
	EpochsOpMsPerBatch float64 `json:"epochs_op_ms_per_batch"` // yuma.epochs: the runner does (the baseline)
	PackedError        string  `json:"packed_error,omitempty"`
	EpochsOpError      string  `json:"epochs_op_error,omitempty"`
}

func (rb *runnerYumaBench) String() string {
	return fmt.Sprintf("yuma %-8s through a runner process: %.3f ms/batch as yuma.packed%s, %.3f ms/batch as yuma.epochs%s",
		rb.Shape, rb.PackedMsPerBatch, errSuffix(rb.PackedError), rb.EpochsOpMsPerBatch, errSuffix(rb.EpochsOpError))
}

// benchRunnerYuma starts a runner on o.device (this binary; only its smoke
// self-test: the full one is `selftest`'s) and times o.iters batches of
// shape s through it after a warm-up checked against the CPU engine.
func benchRunnerYuma(e *env, o benchGPUOptions, s yumaShape, epochsOp bool) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// The engine's lines (a runner failure, its last words, a batch too
	// large for a frame) go to stderr: a fallback is the measurement's
	// failure and should say why.
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	eng, err := runner.Start(e.ctx, runner.Options{
		Backend: runner.BackendCUDA, Binary: exe, EpochsOp: epochsOp, Logger: log,
		CallTimeout: 2 * time.Minute, // the warm-up JITs the Yuma PTX (the smoke self-test did not)
		Args:        []string{"--device", strconv.Itoa(o.device), "--selftest", "smoke/"},
		Detect: func() (runner.GPU, error) {
			return runner.GPU{Devices: []string{"(bench gpu's device)"}, Library: "libcuda.so.1", Binary: exe}, nil
		},
	})
	if err != nil {
		return 0, err
	}
	defer eng.Close()
	ins := gpu.BigYumaBatch(s.subnets, s.uids, false)
	got, err := eng.Epochs(e.ctx, ins)
	if err != nil {
		return 0, err
	}
	want, err := yuma.NewCPUEngine(0).Epochs(e.ctx, ins)
	if err != nil {
		return 0, err
	}
	for i := range ins {
		if d := gpuplan.Diff(&got[i], &want[i]); d != "" {
			return 0, fmt.Errorf("subnet %d differs from the CPU engine: %s", i, d)
		}
	}
	if st := eng.Stats(); st.RunnerBatches != 1 || st.CPUBatches != 0 {
		return 0, fmt.Errorf("the warm-up did not run on the runner (the lines above say why): %+v", st)
	}
	t0 := time.Now()
	for range o.iters {
		if _, err := eng.Epochs(e.ctx, ins); err != nil {
			return 0, err
		}
	}
	ms := time.Since(t0).Seconds() * 1000 / float64(o.iters)
	st := eng.Stats()
	packed := st.PackedBatches
	if epochsOp {
		packed = st.RunnerBatches - st.PackedBatches
	}
	if st.CPUBatches != 0 || st.Failures != 0 || packed != o.iters+1 {
		return 0, fmt.Errorf("not every batch ran on the runner as asked: %+v", st)
	}
	return ms, nil
}

func runBenchGPU(e *env, o benchGPUOptions) error {
	start := time.Now()
	d, err := gpu.Open(o.device)
	if err != nil {
		return err
	}
	defer d.Close()
	r := &benchGPUReport{Device: d.Info(), Driver: gpu.DriverString(gpu.DriverVersion()), Yuma: []yumaGPUBench{}, Llama: []gpu.LlamaBenchResult{}}
	progress := func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
	progress("device %s", r.Device)
	memSample := func() {
		d.Do(func() error {
			free, total, err := cu.MemInfo()
			if err == nil {
				r.GPUMemTotal = total
				r.GPUMemUsedBytes = max(r.GPUMemUsedBytes, total-free)
			}
			return nil
		})
	}
	memSample()

	shapes := o.shapes
	if o.noYuma {
		shapes = nil
	}
	for _, s := range shapes {
		y := yumaGPUBench{Shape: s.name, Subnets: s.subnets, UIDs: s.uids}
		y.GPUEpochsPerS, y.GPUMsPerBatch, err = gpu.BenchYuma(d, s.subnets, s.uids, o.iters)
		if err != nil {
			y.Error = err.Error()
			r.Errors = append(r.Errors, fmt.Sprintf("yuma %s: %v", s.name, err))
		} else if t, err := gpu.BenchYumaTimings(d, s.subnets, s.uids); err == nil {
			y.GPUTimings = fmt.Sprintf("%+v", t)
		}
		if y.Error == "" {
			if y.GPUArenaMsPerBatch, err = gpu.BenchYumaArena(d, s.subnets, s.uids, o.iters); err != nil {
				y.Error = err.Error()
				r.Errors = append(r.Errors, fmt.Sprintf("yuma %s (arena): %v", s.name, err))
			}
		}
		if y.Error == "" {
			var regErr error
			if y.GPURegionsMsPerBatch, y.RegionsStaged, regErr, err = gpu.BenchYumaRegions(d, s.subnets, s.uids, o.iters); err != nil {
				y.Error = err.Error()
				r.Errors = append(r.Errors, fmt.Sprintf("yuma %s (regions): %v", s.name, err))
			}
			if regErr != nil {
				y.RegionsError = regErr.Error()
			}
		}
		memSample()
		// The CPU baseline on the same batch, in the same run.
		ins := gpu.BigYumaBatch(s.subnets, s.uids, false)
		cpu := yuma.NewCPUEngine(0)
		y.CPUWorkers = cpu.Workers()
		if _, err := cpu.Epochs(context.Background(), ins); err == nil {
			n := max(1, min(o.iters, 5))
			t0 := time.Now()
			for range n {
				cpu.Epochs(context.Background(), ins)
			}
			el := time.Since(t0)
			y.CPUMsPerBatch = el.Seconds() * 1000 / float64(n)
			y.CPUEpochsPerS = float64(s.subnets*n) / el.Seconds()
		}
		if y.GPUMsPerBatch > 0 {
			y.Speedup = y.CPUMsPerBatch / y.GPUMsPerBatch
		}
		progress("yuma %s: GPU %.3f ms/batch (%.0f epochs/s; packed by the node %.3f ms, through page-locked regions %.3f ms), CPU %.2f ms/batch (%.0f epochs/s, %d workers)%s",
			s.name, y.GPUMsPerBatch, y.GPUEpochsPerS, y.GPUArenaMsPerBatch, y.GPURegionsMsPerBatch, y.CPUMsPerBatch, y.CPUEpochsPerS, y.CPUWorkers, errSuffix(y.Error+y.RegionsError))
		r.Yuma = append(r.Yuma, y)
	}

	if len(shapes) > 0 {
		s := shapes[0]
		rb := &runnerYumaBench{Shape: s.name}
		var err error
		if rb.PackedMsPerBatch, err = benchRunnerYuma(e, o, s, false); err != nil {
			rb.PackedError = err.Error()
			r.Errors = append(r.Errors, fmt.Sprintf("yuma %s through the runner (yuma.packed): %v", s.name, err))
		}
		if rb.EpochsOpMsPerBatch, err = benchRunnerYuma(e, o, s, true); err != nil {
			rb.EpochsOpError = err.Error()
			r.Errors = append(r.Errors, fmt.Sprintf("yuma %s through the runner (yuma.epochs): %v", s.name, err))
		}
		r.RunnerYuma = rb
		progress("%s", rb)
		memSample()
	}

	if len(shapes) > 0 {
		boundaryBatch := gpu.BigYumaBatch(shapes[0].subnets, shapes[0].uids, false)
		if b, err := runner.MeasureBoundary(boundaryBatch, max(3, o.iters/2)); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("runner boundary: %v", err))
		} else {
			r.Boundary = &b
			progress("runner boundary (socket): %s", b)
		}
		if b, err := runner.MeasureBoundaryShm(boundaryBatch, max(3, o.iters/2)); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("runner boundary over shared memory: %v", err))
		} else {
			r.BoundaryShm = &b
			progress("runner boundary (shared memory): %s", b)
		}
	}

	llama := func(name string, f func() (gpu.LlamaBenchResult, error)) {
		res, err := f()
		memSample()
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("llama %s: %v", name, err))
			progress("llama %s: %v", name, err)
			return
		}
		r.Llama = append(r.Llama, res)
		progress("%s", res)
	}
	if !o.noLlama {
		c := gpu.LlamaBenchConfig(max(512, o.decode+o.prompt))
		llama("synthetic 1B f16", func() (gpu.LlamaBenchResult, error) {
			return gpu.BenchLlamaSynthetic(d, c, "f16", o.decode, o.prompt)
		})
	}
	if o.model != "" {
		llama(o.model, func() (gpu.LlamaBenchResult, error) {
			f, err := gguf.Open(o.model)
			if err != nil {
				return gpu.LlamaBenchResult{}, err
			}
			defer f.Close()
			res, err := gpu.BenchLlamaFile(d, f, o.decode, o.prompt)
			res.Model = o.model
			return res, err
		})
	}
	r.Seconds = time.Since(start).Seconds()

	var out bytes.Buffer
	if o.asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
	} else {
		fmt.Fprintf(&out, "device %s (driver CUDA %s)\n", r.Device, r.Driver)
		for _, y := range r.Yuma {
			fmt.Fprintf(&out, "yuma %-8s GPU %8.3f ms/batch %10.0f epochs/s (packed as the node does: %.3f ms staged, %.3f ms through page-locked regions) | CPU %8.2f ms/batch %8.0f epochs/s (%d workers) | ×%.1f%s\n",
				y.Shape, y.GPUMsPerBatch, y.GPUEpochsPerS, y.GPUArenaMsPerBatch, y.GPURegionsMsPerBatch, y.CPUMsPerBatch, y.CPUEpochsPerS, y.CPUWorkers, y.Speedup, errSuffix(y.Error+y.RegionsError))
		}
		if rb := r.RunnerYuma; rb != nil {
			fmt.Fprintf(&out, "%s\n", rb)
		}
		if r.BoundaryShm != nil {
			fmt.Fprintf(&out, "runner boundary (shared memory): %s\n", r.BoundaryShm)
		}
		if r.Boundary != nil {
			fmt.Fprintf(&out, "runner boundary (socket): %s\n", r.Boundary)
		}
		for _, l := range r.Llama {
			fmt.Fprintf(&out, "%s\n", l)
		}
		fmt.Fprintf(&out, "GPU memory used: %.2f GiB of %.1f GiB (highest seen)\n", float64(r.GPUMemUsedBytes)/(1<<30), float64(r.GPUMemTotal)/(1<<30))
		for _, e := range r.Errors {
			fmt.Fprintf(&out, "ERROR %s\n", e)
		}
	}
	if _, err := e.stdout.Write(out.Bytes()); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%d benchmarks failed; first: %s", len(r.Errors), r.Errors[0])
	}
	return nil
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " ERROR " + s
}
