//go:build cuda

package gpu

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// openYumaDevice opens device 0, skipping without a usable driver (a GPU's,
// or scripts/fakecuda's, which runs yuma.cu's text on the CPU).
func openYumaDevice(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Skipf("no usable CUDA device: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestYumaGPU: CheckYuma (every vector and random batches, GPU against the
// CPU engine bit for bit; 200 batches on a GPU, 20 under fakecuda, or
// TAOBOX_YUMA_BATCHES).
func TestYumaGPU(t *testing.T) {
	d := openYumaDevice(t)
	batches := 200
	if strings.Contains(d.Info().Name, "fakecuda") {
		batches = 20 // about 0.4 s a batch on the CPU
	}
	if v, err := strconv.Atoi(os.Getenv("TAOBOX_YUMA_BATCHES")); err == nil {
		batches = v
	}
	seed := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv("TAOBOX_YUMA_SEED"), 10, 64); err == nil {
		seed = v
	}
	rep, err := CheckYuma(d, batches, seed, true, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range rep.Mismatches {
		if i < 20 {
			t.Errorf("mismatch: %s", m)
		}
	}
	t.Logf("%s: %d vector epochs, %d batches, %d epochs, %d mismatches", d.Info().Name, rep.Vectors, rep.Batches, rep.Epochs, len(rep.Mismatches))
}

// TestYumaBench (TAOBOX_BENCH=1): 128×256 and one 4096-uid subnet.
func TestYumaBench(t *testing.T) {
	if os.Getenv("TAOBOX_BENCH") == "" {
		t.Skip("set TAOBOX_BENCH=1")
	}
	d := openYumaDevice(t)
	for _, c := range []struct{ s, n, iters int }{{128, 256, 50}, {1, 4096, 20}} {
		eps, ms, err := BenchYuma(d, c.s, c.n, c.iters)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := BenchYumaTimings(d, c.s, c.n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d×%d: %.3f ms/batch, %.0f epochs/s (pack %v, device %v, unpack %v; in %d B, out %d B)",
			c.s, c.n, ms, eps, tm.Pack, tm.Device, tm.Unpack, tm.InBytes, tm.OutBytes)
		for _, st := range tm.Steps {
			t.Logf("  %-16s %v", st.Name, st.Time)
		}
	}
}
