//go:build cuda

package gpu

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
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

// TestYumaRegions: a batch served through page-locked shared regions
// (epochsViaRegions: RunArenaTo uploading from one mapped region and
// downloading into another, leaving the arena as it is) equals the CPU
// engine's with nothing staged, and again, staged, when the driver
// refuses to page-lock the regions (FAKECUDA_REFUSE_REGISTER; on a GPU
// only the first half runs), with the refusal reported. Under fakecuda
// every copy of more than 4 KiB must also be from or to page-locked
// memory (FAKECUDA_PAGEABLE_LIMIT): a region the engine only believed
// registered fails there.
func TestYumaRegions(t *testing.T) {
	// t.Setenv also keeps this test from running in parallel with the
	// others: the llama paths copy from Go memory, which the limit fails.
	t.Setenv("FAKECUDA_PAGEABLE_LIMIT", "4096")
	d := openYumaDevice(t)
	ins := BigYumaBatch(8, 64, true)
	want, err := yuma.NewCPUEngine(0).Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	check := func(e *YumaEngine, staged bool) {
		t.Helper()
		for round := range 2 { // the second round reuses what the first registered
			got, err := e.epochsViaRegions(context.Background(), ins)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ins {
				if diff := gpuplan.Diff(&got[i], &want[i]); diff != "" {
					t.Fatalf("round %d subnet %d: %s", round, i, diff)
				}
			}
			tm := e.LastTimings()
			if staged != (tm.Staged > 0) {
				t.Fatalf("round %d: %d bytes staged, want staging %v (register error: %v)", round, tm.Staged, staged, e.HostRegionErr())
			}
			if tm.Staged > 0 && tm.Staged < tm.InBytes {
				t.Fatalf("round %d: %d bytes staged, less than the %d-byte arena", round, tm.Staged, tm.InBytes)
			}
		}
	}
	e := NewYumaEngine(d)
	defer e.Close()
	e.granule = 64 << 10 // so that the batches below grow the registrations
	check(e, false)
	if e.HostRegionErr() != nil {
		t.Fatalf("HostRegionErr = %v", e.HostRegionErr())
	}
	// A batch bigger than the first registrations grows them.
	big := BigYumaBatch(16, 256, true)
	got, err := e.epochsViaRegions(context.Background(), big)
	if err != nil {
		t.Fatal(err)
	}
	wantBig, err := yuma.NewCPUEngine(0).Epochs(context.Background(), big)
	if err != nil {
		t.Fatal(err)
	}
	for i := range big {
		if diff := gpuplan.Diff(&got[i], &wantBig[i]); diff != "" {
			t.Fatalf("16×256 subnet %d: %s", i, diff)
		}
	}
	if tm := e.LastTimings(); tm.Staged != 0 || tm.InBytes <= 16*int64(e.granule) {
		t.Fatalf("16×256: %d bytes staged of a %d-byte arena, want 0 of more than %d", tm.Staged, tm.InBytes, 16*e.granule)
	}
	if !strings.Contains(d.Info().Name, "fakecuda") {
		return
	}
	// A driver that lets the runner lock less than a batch needs: that
	// region stays as far as it was registered (smaller batches direct),
	// the bigger batch is staged, and the refusal is reported.
	c := NewYumaEngine(d)
	defer c.Close()
	c.granule = 64 << 10
	check(c, false)                                // registers a few hundred KiB of each region
	t.Setenv("FAKECUDA_REGISTER_LIMIT", "1048576") // the 16×256 arena is 2.4 MB
	if _, err := c.epochsViaRegions(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if tm := c.LastTimings(); tm.Staged == 0 || !c.RegionRefused() || c.HostRegionErr() == nil {
		t.Fatalf("a growth refused: %d bytes staged, refused %v (%v), want staging and the refusal", tm.Staged, c.RegionRefused(), c.HostRegionErr())
	}
	check(c, false) // the old prefixes were registered again
	t.Setenv("FAKECUDA_REGISTER_LIMIT", "")

	t.Setenv("FAKECUDA_REFUSE_REGISTER", "1")
	r := NewYumaEngine(d)
	defer r.Close()
	check(r, true)
	if err := r.HostRegionErr(); err == nil || !strings.Contains(err.Error(), "page-locking") {
		t.Fatalf("HostRegionErr = %v, want the refusal", err)
	}
}
