//go:build cuda

package main

import (
	"fmt"
	"time"

	"taobox/gpu"
)

func runYumaCheck(e *env, device, batches int, seed uint64, big bool) error {
	if batches < 0 {
		return &usageError{"--batches", "must be >= 0"}
	}
	d, err := gpu.Open(device)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(e.stderr, "device %s\n", d.Info())
	start := time.Now()
	rep, err := gpu.CheckYuma(d, batches, seed, big, func(s string) { fmt.Fprintln(e.stderr, s) })
	if err != nil {
		return err
	}
	for _, m := range rep.Mismatches {
		fmt.Fprintf(e.stdout, "MISMATCH %s\n", m)
	}
	fmt.Fprintf(e.stdout, "yuma check: %d vector epochs, %d batches (seed %d), %d epochs compared, %d mismatches vs CPU (%v)\n",
		rep.Vectors, rep.Batches, seed, rep.Epochs, len(rep.Mismatches), time.Since(start).Round(time.Millisecond))
	if len(rep.Mismatches) > 0 {
		return fmt.Errorf("yuma check: %d of %d epochs differ between GPU and CPU", len(rep.Mismatches), rep.Epochs)
	}
	return nil
}
