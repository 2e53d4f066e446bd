package main

import (
	"os"
	"strings"
	"testing"
)

func TestBackendFlag(t *testing.T) {
	r := taobox(t, nil, "devnet", "--backend", "gpu")
	if r.code != 2 || !strings.Contains(r.stderr, "want auto, cpu or cuda") || r.stdout != "" {
		t.Fatalf("--backend gpu: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat("/dev/nvidiactl"); os.IsNotExist(err) {
		// A missing GPU is no malformed command line: exit 1, not 2.
		for _, args := range [][]string{{"devnet", "--backend", "cuda", "--epochs", "1"}, {"bench", "--backend", "cuda", "--no-save"}} {
			r = taobox(t, nil, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "no usable NVIDIA GPU") || !strings.Contains(r.stderr, "--backend cpu") ||
				strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Fatalf("taobox %v without a GPU: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	}
	for _, b := range []string{"cpu", "auto"} {
		r = taobox(t, nil, "devnet", "--backend", b, "--epochs", "1", "--block-time", "20ms", "--json")
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, `"blocks"`) {
			t.Fatalf("--backend %s: exit %d, stderr %q", b, r.code, r.stderr)
		}
	}
}

// TestRunnerNeedsCUDA: the GPU commands of the plain taobox exit 1 (not 2,
// which is for malformed command lines) and say to use taobox-cuda.
func TestRunnerNeedsCUDA(t *testing.T) {
	for _, args := range [][]string{{"runner", "--socket", "/nonexistent/s"}, {"bench", "gpu"}, {"yuma", "check"}, {"gpu", "info"}} {
		r := taobox(t, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "use taobox-cuda") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("taobox %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := taobox(t, nil, "runner"); r.code != 2 || !strings.Contains(r.stderr, "socket: required") {
		t.Errorf("runner without --socket: exit %d, stderr %q", r.code, r.stderr)
	}
}
