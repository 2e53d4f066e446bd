// Package kernels holds taobox's CUDA kernels: the sources (*.cu) and the PTX
// that nvcc 11.8 generates from them (*.ptx, committed), embedded into every
// build. The PTX is plain text and needs no CUDA to embed; only the cuda
// build (package gpu) loads it, through the driver's JIT.
//
// Adding a kernel: write NAME.cu (extern "C" __global__ functions, 64-bit
// scalar parameters), run `make ptx`, commit both files, and register a
// known-answer test with gpu.RegisterSelftest. `make cuda` regenerates every
// *.ptx and fails if the committed one differs, so the PTX always matches its
// source and the pinned compiler (scripts/cuda-toolchain.sh).
//
// Target: -arch=compute_80 (PTX ISA 7.8): the driver JIT-compiles it for any
// GPU of compute capability 8.0 or newer (A100, H100, H200, ...) and needs a
// driver for CUDA 11.8 or newer. NAME_sm90.cu files target compute_90 (the
// same ISA, Hopper instructions allowed); the gpu package loads them only on
// devices of compute capability 9.0 or newer.
package kernels

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.ptx
var files embed.FS

// ErrNotFound is returned by PTX for a name with no embedded NAME.ptx.
var ErrNotFound = errors.New("kernels: no such PTX module")

// PTX returns the PTX text of NAME.ptx ("smoke" for smoke.ptx).
func PTX(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return "", fmt.Errorf("kernels: bad module name %q (want a file name without .ptx)", name)
	}
	b, err := files.ReadFile(name + ".ptx")
	if err != nil {
		return "", fmt.Errorf("%w: %s.ptx is not embedded (has %s; run make ptx?)", ErrNotFound, name, strings.Join(Names(), ", "))
	}
	return string(b), nil
}

// Names lists the embedded modules, sorted, without the .ptx extension.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range ents {
		if n := e.Name(); path.Ext(n) == ".ptx" {
			names = append(names, strings.TrimSuffix(n, ".ptx"))
		}
	}
	sort.Strings(names)
	return names
}
