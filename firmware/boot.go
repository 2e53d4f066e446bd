package firmware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"taobox/gpu/runner"
)

// Report is the boot report: what the box is, what it runs, and whether
// it passed its self-test. Text renders one screen; it marshals as JSON.
type Report struct {
	Version       string        `json:"version"` // of the running taobox
	Time          string        `json:"time"`
	Hardware      Hardware      `json:"hardware"`
	Backend       string        `json:"backend"` // chosen: cpu or cuda
	BackendReason string        `json:"backend_reason"`
	Firmware      FirmwareState `json:"firmware"`
	Selftest      []CheckResult `json:"selftest"`
	Passed        bool          `json:"passed"`
	Roles         []string      `json:"roles"` // "node: taobox node --data ..."
}

// FirmwareState is the slot the box boots.
type FirmwareState struct {
	Slot       string `json:"slot"` // a, b or installed
	Status     string `json:"status"`
	Version    string `json:"version,omitempty"`
	Binary     string `json:"binary"`
	RolledBack bool   `json:"rolled_back,omitempty"` // Recover rolled back at this boot
	Note       string `json:"note,omitempty"`
}

// BootOptions are the inputs of Prepare.
type BootOptions struct {
	Config    *Config
	Version   string       // of the running binary
	Installed string       // the installed binary (os.Executable)
	Logger    *slog.Logger // nil: discard
	Now       func() time.Time
	// Detect finds the GPU; nil: runner.Detect.
	Detect func() (runner.GPU, error)
	// SkipSelftest leaves the self-test out (probe and report only).
	SkipSelftest bool
	// RolledBack: the caller's own Recover already rolled back at this
	// boot (the report says so).
	RolledBack bool
}

// ErrSelftestFailed: a known-answer test failed; the roles were not started.
var ErrSelftestFailed = errors.New("firmware: self-test failed")

// Prepare runs the boot sequence up to the roles: Recover the slots,
// probe the hardware, choose the backend, run the self-test. It returns
// the report, and an error wrapping ErrSelftestFailed when a check failed
// (the report is still returned), or when backend "cuda" has no usable GPU.
// With backend auto, a GPU whose kernel test fails is not used: the
// report says cpu and why.
func Prepare(ctx context.Context, o BootOptions) (*Report, error) {
	c := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	detect := o.Detect
	if detect == nil {
		detect = runner.Detect
	}
	r := &Report{Version: o.Version, Time: now().UTC().Format(time.RFC3339)}

	slots := &Slots{Dir: c.FirmwareDir(), Installed: o.Installed, Logger: log}
	p, changed, err := slots.Recover(now())
	if err != nil {
		return r, fmt.Errorf("firmware: recover slots: %w", err)
	}
	r.Firmware = FirmwareState{Slot: orInstalled(p.Slot), Status: p.Status, Version: p.Version, Binary: slots.Binary(p), RolledBack: changed || o.RolledBack, Note: p.Note}
	if p.Slot == "" {
		r.Firmware.Version = o.Version
	}
	log.Info("boot: firmware", "slot", r.Firmware.Slot, "status", p.Status, "version", r.Firmware.Version, "rolled_back", changed)

	r.Hardware = Probe(ctx, ProbeOptions{DataDir: c.DataDir, Detect: detect})
	hw := r.Hardware
	log.Info("boot: hardware", "cpu", hw.CPU.Model, "threads", hw.CPU.Threads, "features", strings.Join(hw.CPU.Features, ","),
		"mem", bytesStr(hw.Memory.Total), "disk_free", bytesStr(hw.Disk.Free), "gpu_usable", hw.GPU.Usable, "gpu_devices", len(hw.GPU.Devices))

	gpuBin := ""
	switch {
	case c.Backend == runner.BackendCPU:
		r.Backend, r.BackendReason = runner.BackendCPU, "backend = \"cpu\" in the config"
	case hw.GPU.Usable:
		gpuBin = hw.GPU.Binary
		r.Backend, r.BackendReason = runner.BackendCUDA, "usable GPU and "+hw.GPU.Binary
	case c.Backend == runner.BackendCUDA:
		r.Backend, r.BackendReason = runner.BackendCUDA, hw.GPU.Reason
		return r, fmt.Errorf("firmware: backend = \"cuda\" but no usable GPU: %s; set backend = \"auto\" or \"cpu\"", hw.GPU.Reason)
	default:
		r.Backend, r.BackendReason = runner.BackendCPU, "no usable GPU"
	}

	if !o.SkipSelftest {
		r.Selftest = Selftest(ctx, SelftestOptions{SkipModel: c.SkipModelSelftest, GPU: gpuBin, GPUTimeout: c.SelftestTimeout.D()})
		r.Passed = true
		for _, cr := range r.Selftest {
			lvl := slog.LevelInfo
			if !cr.OK {
				lvl = slog.LevelError
				if cr.Name == "gpu/kernels" && c.Backend == runner.BackendAuto {
					// A GPU that gives wrong answers is not used; the CPU serves.
					r.Backend, r.BackendReason = runner.BackendCPU, "GPU kernel self-test failed: "+cr.Detail
					lvl = slog.LevelWarn
					log.Log(ctx, lvl, "boot: selftest", "check", cr.Name, "ok", cr.OK, "detail", cr.Detail, "ms", cr.Ms)
					continue
				}
				r.Passed = false
			}
			log.Log(ctx, lvl, "boot: selftest", "check", cr.Name, "ok", cr.OK, "skipped", cr.Skipped, "detail", cr.Detail, "ms", cr.Ms)
		}
	}
	for _, role := range RolesFromConfig(c) {
		r.Roles = append(r.Roles, role.Name+": taobox "+strings.Join(roleArgs(role, r.Backend), " "))
	}
	if !o.SkipSelftest && !r.Passed {
		return r, fmt.Errorf("%w; the roles were not started (see the report)", ErrSelftestFailed)
	}
	return r, nil
}

// roleArgs adds --backend to a node role that does not set it.
func roleArgs(r Role, backend string) []string {
	args := slices.Clone(r.Args)
	if len(args) > 0 && args[0] == KindNode && backend != "" && !slices.ContainsFunc(args, func(a string) bool {
		return a == "--backend" || a == "-backend" || strings.HasPrefix(a, "--backend=") || strings.HasPrefix(a, "-backend=")
	}) {
		args = append(args, "--backend", backend)
	}
	return args
}

// Supervisor returns the supervisor of the config's roles, running binary
// (the current slot's) with the backend the report chose.
func NewSupervisor(c *Config, binary, backend string, log *slog.Logger) *Supervisor {
	roles := RolesFromConfig(c)
	for i := range roles {
		roles[i].Args = roleArgs(roles[i], backend)
	}
	s := c.Supervisor
	return &Supervisor{Binary: binary, Roles: roles, MinBackoff: s.MinBackoff.D(), MaxBackoff: s.MaxBackoff.D(),
		StableAfter: s.StableAfter.D(), ProbeInterval: s.ProbeInterval.D(), StopTimeout: s.StopTimeout.D(), Logger: log}
}

// Text renders the report on one screen.
func (r *Report) Text() string {
	var b strings.Builder
	ok := "PASSED"
	if !r.Passed {
		ok = "FAILED"
	}
	if len(r.Selftest) == 0 {
		ok = "not run"
	}
	hw := r.Hardware
	fmt.Fprintf(&b, "taobox %s boot report, %s\n", r.Version, r.Time)
	fmt.Fprintf(&b, "  firmware  slot %s (%s), version %s\n            %s\n", r.Firmware.Slot, r.Firmware.Status, r.Firmware.Version, r.Firmware.Binary)
	if r.Firmware.RolledBack {
		fmt.Fprintf(&b, "            ROLLED BACK: %s\n", r.Firmware.Note)
	} else if r.Firmware.Note != "" {
		fmt.Fprintf(&b, "            last rollback: %s\n", r.Firmware.Note)
	}
	b.WriteString(hw.Text())
	fmt.Fprintf(&b, "  backend   %s (%s)\n", r.Backend, r.BackendReason)
	fmt.Fprintf(&b, "  selftest  %s\n", ok)
	for _, c := range r.Selftest {
		mark := "ok  "
		switch {
		case c.Skipped:
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "    %s %-15s %8.1f ms  %s\n", mark, c.Name, c.Ms, c.Detail)
	}
	if len(r.Roles) == 0 {
		b.WriteString("  roles     none configured\n")
	}
	for _, role := range r.Roles {
		fmt.Fprintf(&b, "  role      %s\n", role)
	}
	return b.String()
}

// Text renders the hardware as the report's lines (os, cpu, memory, disk,
// gpu), each ending in a newline.
func (hw Hardware) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  os        %s\n", hw.OS)
	fmt.Fprintf(&b, "  cpu       %s, %d threads, %s\n", hw.CPU.Model, hw.CPU.Threads, strings.Join(hw.CPU.Features, " "))
	fmt.Fprintf(&b, "  memory    %s total, %s available\n", bytesStr(hw.Memory.Total), bytesStr(hw.Memory.Available))
	fmt.Fprintf(&b, "  disk      %s free of %s (%s)\n", bytesStr(hw.Disk.Free), bytesStr(hw.Disk.Total), hw.Disk.Path)
	switch {
	case len(hw.GPU.Devices) > 0:
		for _, d := range hw.GPU.Devices {
			fmt.Fprintf(&b, "  gpu       %s (kernel driver %s)\n", d, orDash(hw.GPU.Driver))
		}
	case hw.GPU.Usable:
		fmt.Fprintf(&b, "  gpu       %s via %s (kernel driver %s)\n", strings.Join(hw.GPU.Nodes, " "), hw.GPU.Binary, orDash(hw.GPU.Driver))
	default:
		fmt.Fprintf(&b, "  gpu       none usable: %s\n", hw.GPU.Reason)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func bytesStr(v uint64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
	default:
		return fmt.Sprintf("%d B", v)
	}
}
