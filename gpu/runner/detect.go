package runner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BinaryName is the CUDA build of taobox, which the launcher runs as
// `taobox-cuda runner`.
const BinaryName = "taobox-cuda"

// ErrNoGPU: no usable NVIDIA GPU here, or no taobox-cuda to drive it.
var ErrNoGPU = errors.New("runner: no usable NVIDIA GPU")

// GPU is what Detect found.
type GPU struct {
	Devices []string // device nodes: /dev/nvidia0, ...
	Library string   // where libcuda.so.1 is ("ld.so.cache" when only the cache names it)
	Binary  string   // the taobox-cuda to run
}

// DetectConfig overrides where Detect looks; the zero value is the real
// system. Tests point it at temporary directories.
type DetectConfig struct {
	DevDir     string   // default /dev
	LibDirs    []string // default: LD_LIBRARY_PATH, then the usual driver directories
	LDCache    string   // default /etc/ld.so.cache
	Binary     string   // taobox-cuda to use; default: beside Executable, then PATH
	Executable string   // default os.Executable()
	Path       string   // PATH for the lookup; default $PATH
}

var defaultLibDirs = []string{
	"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
	"/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/local/cuda/lib64", "/usr/local/cuda/compat",
	"/usr/local/nvidia/lib64", "/usr/lib/wsl/lib",
}

// Detect reports whether this machine has a usable NVIDIA GPU for taobox:
// the driver's device nodes (/dev/nvidiactl and /dev/nvidiaN), its
// libcuda.so.1 where the dynamic loader finds it (LD_LIBRARY_PATH, the usual
// directories, or named in /etc/ld.so.cache; nothing is loaded), and a
// taobox-cuda binary beside the running executable or on PATH. Otherwise
// it returns an error wrapping ErrNoGPU that says what is missing and what
// to do. It starts nothing: whether the GPU works is for the runner's
// self-test to find out.
func Detect() (GPU, error) { return DetectWith(DetectConfig{}) }

// DetectWith is Detect with overrides.
func DetectWith(c DetectConfig) (GPU, error) {
	var g GPU
	dev := c.DevDir
	if dev == "" {
		dev = "/dev"
	}
	if _, err := os.Stat(filepath.Join(dev, "nvidiactl")); err != nil {
		return g, fmt.Errorf("%w: %s is missing (no NVIDIA driver loaded; nvidia-smi should list the GPU)", ErrNoGPU, filepath.Join(dev, "nvidiactl"))
	}
	nodes, _ := filepath.Glob(filepath.Join(dev, "nvidia[0-9]*"))
	if len(nodes) == 0 {
		return g, fmt.Errorf("%w: no %s device node (the driver is loaded but sees no GPU)", ErrNoGPU, filepath.Join(dev, "nvidia0"))
	}
	g.Devices = nodes

	dirs := c.LibDirs
	if dirs == nil {
		for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
		dirs = append(dirs, defaultLibDirs...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, "libcuda.so.1")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			g.Library = p
			break
		}
	}
	if g.Library == "" {
		cache := c.LDCache
		if cache == "" {
			cache = "/etc/ld.so.cache"
		}
		if b, err := os.ReadFile(cache); err == nil && bytes.Contains(b, []byte("libcuda.so.1\x00")) {
			g.Library = "ld.so.cache"
		}
	}
	if g.Library == "" {
		return g, fmt.Errorf("%w: libcuda.so.1 is not where the loader looks (LD_LIBRARY_PATH, %s, ld.so.cache); install the NVIDIA driver's user-space library (Debian: libcuda1)",
			ErrNoGPU, strings.Join(defaultLibDirs[:4], ", "))
	}

	bin, err := findBinary(c)
	if err != nil {
		return g, err
	}
	g.Binary = bin
	return g, nil
}

func findBinary(c DetectConfig) (string, error) {
	if c.Binary != "" {
		if isExecutable(c.Binary) {
			return c.Binary, nil
		}
		return "", fmt.Errorf("%w: %s is not an executable file", ErrNoGPU, c.Binary)
	}
	exe := c.Executable
	if exe == "" {
		if p, err := os.Executable(); err == nil {
			exe = p
		}
	}
	var beside string
	if exe != "" {
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		beside = filepath.Join(filepath.Dir(exe), BinaryName)
		if isExecutable(beside) {
			return beside, nil
		}
	}
	path := c.Path
	if path == "" && c.Executable == "" {
		path = os.Getenv("PATH")
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, BinaryName); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: the GPU is there but %s is not (looked beside %s and on PATH); build it with 'make cuda' and install it next to taobox",
		ErrNoGPU, BinaryName, exe)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
