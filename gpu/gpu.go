// Package gpu runs taobox's CUDA kernels (package kernels) on an NVIDIA GPU
// through the CUDA driver API (gorgonia.org/cu).
//
// Only files with the build constraint `cuda` import cgo or gorgonia.org/cu;
// this file and the other untagged ones are pure Go and build everywhere, so
// `go build ./...` and `go test ./...` need no CUDA. The cuda build adds
// Device (a context owned by one goroutine on a locked OS thread, a module
// cache and a device-memory pool) and the selftest registry.
//
// A binary built with -tags cuda cannot fall back to the CPU: gorgonia.org/cu
// calls cuInit in its package init and exits the process (status 1) when
// that fails, and the dynamic loader refuses to start it (status 127) where
// libcuda.so.1 is missing. So the plain taobox never links this package's
// cuda files; GPU work runs in a separate taobox-cuda process.
//
// Build: `make cuda` (see scripts/cuda-toolchain.sh and
// ../shared/specs/cuda-build.md).
package gpu

import (
	"errors"
	"fmt"
)

// Info describes one CUDA device.
type Info struct {
	Name         string // "NVIDIA H100 80GB HBM3"
	Major, Minor int    // compute capability: 9, 0 for sm_90
	TotalMem     int64  // bytes of device memory
	SMs          int    // streaming multiprocessors
	Driver       int    // driver API version: 12040 for CUDA 12.4
	Ordinal      int    // device number, as CUDA (and nvidia-smi by default) counts
}

// String is one line: `0: NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.2 GiB, driver CUDA 12.4`.
func (i Info) String() string {
	return fmt.Sprintf("%d: %s, sm_%d%d, %d SMs, %.1f GiB, driver CUDA %s",
		i.Ordinal, i.Name, i.Major, i.Minor, i.SMs, float64(i.TotalMem)/(1<<30), DriverString(i.Driver))
}

// DriverString formats a driver API version: 12040 -> "12.4".
func DriverString(v int) string {
	if v <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// Requirements of the embedded PTX (kernels: nvcc 11.8, -arch=compute_80).
const (
	MinDriver = 11080 // driver API version: PTX ISA 7.8 needs CUDA 11.8 or newer
	MinMajor  = 8     // compute capability 8.0 (Ampere) or newer
)

// Error classes: every error from Open, Module and Buffer that has one of
// these causes wraps it, so errors.Is tells the runner what happened.
var (
	// ErrNoCUDA: this binary was built without the cuda tag.
	ErrNoCUDA = errors.New("gpu: built without the cuda tag (use taobox-cuda, built by make cuda)")
	// ErrNoDevice: the driver loaded but reports no usable CUDA device.
	ErrNoDevice = errors.New("gpu: no CUDA device")
	// ErrDriverTooOld: the driver is older than MinDriver.
	ErrDriverTooOld = errors.New("gpu: NVIDIA driver too old")
	// ErrUnsupportedDevice: compute capability below MinMajor.
	ErrUnsupportedDevice = errors.New("gpu: GPU too old")
	// ErrOutOfMemory: a device allocation (or the context) did not fit.
	ErrOutOfMemory = errors.New("gpu: out of device memory")
	// ErrPTXRejected: the driver's JIT refused an embedded PTX module.
	ErrPTXRejected = errors.New("gpu: PTX rejected by the driver")
	// ErrClosed: the Device was closed.
	ErrClosed = errors.New("gpu: device closed")
	// ErrNotInDo: Module or Buffer was called outside Device.Do.
	ErrNotInDo = errors.New("gpu: must be called inside Device.Do")
)

// Available reports whether this binary was built with CUDA support (the
// cuda tag). It does not check for a GPU: a cuda binary only gets this far
// when the driver initialised.
func Available() bool { return cudaBuilt }
