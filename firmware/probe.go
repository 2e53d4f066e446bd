package firmware

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/cpu"

	"taobox/gpu"
	"taobox/gpu/runner"
)

// Hardware is what the boot probe found.
type Hardware struct {
	CPU    CPUInfo    `json:"cpu"`
	Memory MemoryInfo `json:"memory"`
	Disk   DiskInfo   `json:"disk"`
	GPU    GPUInfo    `json:"gpu"`
	OS     string     `json:"os"` // GOOS/GOARCH and kernel release
}

// CPUInfo describes the processor.
type CPUInfo struct {
	Model    string   `json:"model"`
	Threads  int      `json:"threads"`
	Features []string `json:"features"` // the ones the engines use: avx2, fma, avx512f, avx512vnni, avxvnni, neon ...
}

// MemoryInfo is from /proc/meminfo, bytes.
type MemoryInfo struct {
	Total     uint64 `json:"total"`
	Available uint64 `json:"available"`
}

// DiskInfo is the filesystem holding the data directory.
type DiskInfo struct {
	Path  string `json:"path"` // the data directory, or its nearest existing parent
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"` // available to this user
}

// GPUInfo is what the runner launcher's detection found and, when
// taobox-cuda is present, its `gpu info --json`.
type GPUInfo struct {
	Usable  bool       `json:"usable"`            // Detect found driver, device, library and taobox-cuda
	Reason  string     `json:"reason,omitempty"`  // why not usable
	Nodes   []string   `json:"nodes,omitempty"`   // /dev/nvidia0 ...
	Binary  string     `json:"binary,omitempty"`  // taobox-cuda
	Driver  string     `json:"driver,omitempty"`  // NVIDIA kernel driver version (/proc/driver/nvidia/version)
	Devices []gpu.Info `json:"devices,omitempty"` // from taobox-cuda gpu info --json
}

// ProbeOptions override where Probe looks; the zero value is the real
// machine.
type ProbeOptions struct {
	DataDir string                     // default /var/lib/taobox
	Detect  func() (runner.GPU, error) // default runner.Detect
	Timeout time.Duration              // for `taobox-cuda gpu info`; default 30s
}

// Probe inspects the machine. It never fails: what it cannot read stays
// zero (and the GPU's Reason says why there is none).
func Probe(ctx context.Context, o ProbeOptions) Hardware {
	if o.DataDir == "" {
		o.DataDir = "/var/lib/taobox"
	}
	if o.Detect == nil {
		o.Detect = runner.Detect
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	h := Hardware{OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.OS += " " + strings.TrimSpace(string(b))
	}
	h.CPU = probeCPU()
	h.Memory = probeMemory()
	h.Disk = probeDisk(o.DataDir)
	h.GPU = probeGPU(ctx, o)
	return h
}

func probeCPU() CPUInfo {
	c := CPUInfo{Threads: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			k = strings.TrimSpace(k)
			if ok && (k == "model name" || k == "Model" || k == "cpu model") {
				c.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if c.Model == "" {
		c.Model = runtime.GOARCH
	}
	add := func(ok bool, name string) {
		if ok {
			c.Features = append(c.Features, name)
		}
	}
	switch runtime.GOARCH {
	case "amd64", "386":
		add(cpu.X86.HasSSE42, "sse4.2")
		add(cpu.X86.HasAVX, "avx")
		add(cpu.X86.HasAVX2, "avx2")
		add(cpu.X86.HasFMA, "fma")
		add(cpu.X86.HasBMI2, "bmi2")
		add(cpu.X86.HasAVX512F, "avx512f")
		add(cpu.X86.HasAVX512VNNI, "avx512vnni")
		add(cpu.X86.HasAVXVNNI, "avxvnni")
	case "arm64":
		add(cpu.ARM64.HasASIMD, "neon")
		add(cpu.ARM64.HasASIMDDP, "dotprod")
		add(cpu.ARM64.HasSVE, "sve")
	}
	return c
}

func probeMemory() MemoryInfo {
	var m MemoryInfo
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			m.Total = v << 10
		case "MemAvailable:":
			m.Available = v << 10
		}
	}
	return m
}

func probeDisk(dir string) DiskInfo {
	p := filepath.Clean(dir)
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	d := DiskInfo{Path: p}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err == nil {
		d.Total = st.Blocks * uint64(st.Bsize)
		d.Free = st.Bavail * uint64(st.Bsize)
	}
	return d
}

func probeGPU(ctx context.Context, o ProbeOptions) GPUInfo {
	var g GPUInfo
	if b, err := os.ReadFile("/proc/driver/nvidia/version"); err == nil {
		// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..."
		f := strings.Fields(string(b))
		for i, w := range f {
			if w == "Module" && i+1 < len(f) {
				g.Driver = f[i+1]
				break
			}
		}
	}
	det, err := o.Detect()
	if err != nil {
		g.Reason = err.Error()
		g.Nodes = det.Devices
		return g
	}
	g.Usable, g.Nodes, g.Binary = true, det.Devices, det.Binary
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, det.Binary, "gpu", "info", "--json").Output()
	if err != nil {
		g.Usable = false
		g.Reason = fmt.Sprintf("%s gpu info: %v", det.Binary, err)
		return g
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &g.Devices); err != nil {
		g.Reason = fmt.Sprintf("%s gpu info: unreadable answer: %v", det.Binary, err)
	}
	return g
}
