//go:build cuda

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"taobox/gpu"
	"taobox/kernels"
)

func runGPUInfo(e *env, asJSON bool) error {
	infos, err := gpu.Devices()
	if err != nil {
		return err
	}
	if asJSON {
		b, err := json.MarshalIndent(infos, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "driver: CUDA %s; kernels: %s (PTX compute_80, needs sm_80+ and CUDA %s+; *_sm90: compute_90, used on sm_90+)\n",
		gpu.DriverString(gpu.DriverVersion()), strings.Join(kernels.Names(), ", "), gpu.DriverString(gpu.MinDriver))
	for _, i := range infos {
		ok := "usable"
		if i.Major < gpu.MinMajor {
			ok = "TOO OLD for the kernels"
		} else if i.Driver < gpu.MinDriver {
			ok = "driver TOO OLD for the kernels"
		}
		fmt.Fprintf(&b, "%s: %s\n", i, ok)
	}
	if len(infos) == 0 {
		b.WriteString("no CUDA devices\n")
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

// runSelftest prints each test's line to stderr as it finishes (a hung
// kernel shows where it hung) and the whole report to stdout on success.
func runSelftest(e *env, device int, only string) error {
	d, err := gpu.Open(device)
	if err != nil {
		return err
	}
	defer d.Close()
	var b strings.Builder
	line := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		fmt.Fprint(e.stderr, s)
		b.WriteString(s)
	}
	line("device %s\n", d.Info())
	var firstErr error
	ran, failed := gpu.RunSelftests(d, func(name string) bool { return strings.Contains(name, only) }, func(r gpu.SelftestResult) {
		if r.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", r.Name, r.Err)
			}
			line("FAIL %s (%v): %v\n", r.Name, r.Duration.Round(100*time.Microsecond), r.Err)
			return
		}
		line("ok   %s (%v)\n", r.Name, r.Duration.Round(100*time.Microsecond))
	})
	if ran == 0 {
		return &usageError{"--run", fmt.Sprintf("no selftest name contains %q", only)}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d selftests failed; first: %w", failed, ran, firstErr)
	}
	if err := d.Close(); err != nil {
		return err
	}
	line("PASS: %d selftests\n", ran)
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}
