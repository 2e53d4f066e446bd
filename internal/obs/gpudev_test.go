package obs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestParseNvidiaSMI(t *testing.T) {
	devs, err := ParseNvidiaSMI([]byte("0, NVIDIA H100 80GB HBM3, 1024, 81559, 37\n1, NVIDIA H100 80GB HBM3, 0, 81559, 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []GPUDevice{
		{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemUsed: 1024 << 20, MemTotal: 81559 << 20, Util: 0.37},
		{Index: 1, Name: "NVIDIA H100 80GB HBM3", MemUsed: 0, MemTotal: 81559 << 20, Util: 0},
	}
	if len(devs) != len(want) {
		t.Fatalf("%d devices, want %d", len(devs), len(want))
	}
	for i := range want {
		if devs[i] != want[i] {
			t.Errorf("device %d: %+v, want %+v", i, devs[i], want[i])
		}
	}
	for _, bad := range []string{
		"0, X, [N/A], 81559, 3",
		"0, X, 10, 5, 3", // used > total
		"0, X, 1, 2, 101",
		"0, X, 1, 2",
		"-1, X, 1, 2, 3",
		"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
	} {
		if _, err := ParseNvidiaSMI([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	f.Add([]byte("0, NVIDIA H100, 1024, 81559, 37\n"))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		devs, err := ParseNvidiaSMI(b)
		for _, d := range devs {
			if err == nil && (d.MemUsed > d.MemTotal || d.Util < 0 || d.Util > 1) {
				t.Fatalf("accepted %+v", d)
			}
		}
	})
}

// TestGPUDeviceCollector runs a stand-in nvidia-smi (a script printing
// what the real one prints) and scrapes the collector; a sample serves
// for MaxAge, and without the tool only taobox_gpu_devices 0 is left.
func TestGPUDeviceCollector(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "nvidia-smi")
	count := filepath.Join(dir, "runs")
	body := "#!/bin/sh\necho run >> " + count + "\necho '0, NVIDIA H100 80GB HBM3, 2048, 81559, 50'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c := &GPUDeviceCollector{Command: script, MaxAge: 10 * time.Second, Now: func() time.Time { return now }}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	want := `
# HELP taobox_gpu_devices NVIDIA GPUs that nvidia-smi lists (0 without a driver).
# TYPE taobox_gpu_devices gauge
taobox_gpu_devices 1
# HELP taobox_gpu_memory_used_bytes GPU memory in use, all processes, from nvidia-smi.
# TYPE taobox_gpu_memory_used_bytes gauge
taobox_gpu_memory_used_bytes{gpu="0",name="NVIDIA H100 80GB HBM3"} 2.147483648e+09
# HELP taobox_gpu_utilization_ratio Share of the driver's last sample period in which a kernel ran (nvidia-smi utilization.gpu / 100).
# TYPE taobox_gpu_utilization_ratio gauge
taobox_gpu_utilization_ratio{gpu="0",name="NVIDIA H100 80GB HBM3"} 0.5
`
	for range 3 {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taobox_gpu_devices", "taobox_gpu_memory_used_bytes", "taobox_gpu_utilization_ratio"); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() int { b, _ := os.ReadFile(count); return strings.Count(string(b), "run") }
	if n := runs(); n != 1 {
		t.Fatalf("nvidia-smi ran %d times for 3 scrapes within MaxAge, want 1", n)
	}
	now = now.Add(11 * time.Second)
	testutil.GatherAndCount(reg)
	if n := runs(); n != 2 {
		t.Fatalf("nvidia-smi ran %d times after MaxAge, want 2", n)
	}

	none := &GPUDeviceCollector{Command: filepath.Join(dir, "missing")}
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(none)
	if err := testutil.GatherAndCompare(reg2, strings.NewReader("# HELP taobox_gpu_devices NVIDIA GPUs that nvidia-smi lists (0 without a driver).\n# TYPE taobox_gpu_devices gauge\ntaobox_gpu_devices 0\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := none.Sample(); err == nil {
		t.Fatal("a missing nvidia-smi is not an error")
	}
}
