package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// tinyModel writes a small random GGUF model with `model synth` and returns
// its path.
func tinyModel(t *testing.T, typ string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny-"+typ+".gguf")
	r := taobox(t, nil, "model", "synth", "--shape", "custom", "--dim", "64", "--hidden", "128", "--layers", "2",
		"--heads", "4", "--kv-heads", "2", "--vocab", "300", "--seq", "256", "--untied", "--seed", "3", "--type", typ, "--out", path)
	if r.code != 0 {
		t.Fatalf("model synth: exit %d: %s", r.code, r.stderr)
	}
	return path
}

type benchJSON struct {
	Decode, Prompt, Reps int
	Results              []benchResult
}

func TestBenchModel(t *testing.T) {
	f32, q8 := tinyModel(t, "f32"), tinyModel(t, "q8_0")
	r := taobox(t, nil, "bench", "model", "--model", f32+","+q8, "--threads", "1,2", "--decode", "8", "--prompt", "4", "--reps", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "MODEL ") {
		t.Fatalf("want a header and 4 rows (2 models × 2 thread counts), got:\n%s", r.stdout)
	}
	for i, want := range []struct{ file, typ, threads string }{
		{"tiny-f32.gguf", "F32", "1"}, {"tiny-f32.gguf", "F32", "2"}, {"tiny-q8_0.gguf", "Q8_0", "1"}, {"tiny-q8_0.gguf", "Q8_0", "2"},
	} {
		f := strings.Fields(lines[i+1])
		// model, type, MiB, threads, decode ± sd (3 fields), prompt ± sd (3), llama.cpp ×2 ("-"), RSS, ×FILE, HWM
		if len(f) != 15 || f[0] != want.file || f[1] != want.typ || f[3] != want.threads || f[10] != "-" || f[11] != "-" {
			t.Errorf("row %d: %q, want %s %s with %s threads and no llama.cpp figures", i, lines[i+1], want.file, want.typ, want.threads)
		}
	}
	if n := strings.Count(r.stderr, "bench: "); runtime.GOOS == "linux" && n != 10 { // load, per model: loaded, 2 thread counts, memory; load
		t.Errorf("want 10 progress lines on stderr, got %d:\n%s", n, r.stderr)
	}

	r = taobox(t, nil, "bench", "model", "--model", f32, "--model", q8, "--decode", "8", "--prompt", "0", "--reps", "1", "--json")
	if r.code != 0 {
		t.Fatalf("--json: exit %d: %s", r.code, r.stderr)
	}
	var out benchJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	if out.Decode != 8 || out.Reps != 1 || len(out.Results) != 2 {
		t.Fatalf("--json: %+v", out)
	}
	for _, res := range out.Results {
		if res.DecodeTPS <= 0 || res.PromptTPS != 0 || res.Threads != 1 || res.LlamaDecodeTPS != nil || res.FileBytes <= 0 {
			t.Errorf("--json result %+v", res)
		}
		// The RSS delta of a tiny model may be 0 (its pages reuse freed
		// memory); the high-water mark is always there on Linux.
		if runtime.GOOS == "linux" && (res.RSSBytes < 0 || res.HWMBytes <= 0 || res.HWMBytes < res.RSSBytes) {
			t.Errorf("--json result %+v: want resident memory figures on Linux", res)
		}
	}
}

// TestBenchModelErrors: malformed command lines exit 2 with one line on
// stderr and nothing on stdout.
func TestBenchModelErrors(t *testing.T) {
	model := tinyModel(t, "f32")
	missing := filepath.Join(t.TempDir(), "missing.gguf")
	junk := filepath.Join(t.TempDir(), "junk.bin")
	if err := os.WriteFile(junk, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--model", missing}, "--model"},
		{[]string{"--model", model + "," + missing}, "--model"},
		{[]string{}, "--model"},
		{[]string{"--model", model, "--threads", "1,0"}, "--threads"},
		{[]string{"--model", model, "--threads", "x"}, "--threads"},
		{[]string{"--model", model, "--decode", "0"}, "--decode"},
		{[]string{"--model", model, "--decode", "257"}, "--decode"}, // context is 256
		{[]string{"--model", model, "--prompt", "-1"}, "--prompt"},
		{[]string{"--model", model, "--prompt", "300"}, "--prompt"},
		{[]string{"--model", model + "," + junk}, "--model"},
		{[]string{"--model", model, "--reps", "0"}, "--reps"},
		{[]string{"--model", model, "--llama-bench", filepath.Join(t.TempDir(), "no-llama-bench")}, "--llama-bench"},
	} {
		r := taobox(t, nil, append([]string{"bench", "model"}, tc.args...)...)
		prefix := "taobox: bench model: " + tc.field + ": "
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, prefix) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line starting %q", tc.args, r.code, r.stdout, r.stderr, prefix)
		}
	}
}

// fakeLlamaBench writes a shell script standing in for llama-bench.
func fakeLlamaBench(t *testing.T, body string) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil || runtime.GOOS == "windows" {
		t.Skip("no POSIX shell for a fake llama-bench")
	}
	path := filepath.Join(t.TempDir(), "llama-bench")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBenchModelLlamaBenchOutput(t *testing.T) {
	model := tinyModel(t, "f32")
	// Checks its arguments as bench model must pass them, then answers
	// like llama-bench -o json (fields trimmed).
	fake := fakeLlamaBench(t, `[ "$*" = "-m `+model+` -t 1,2 -n 8 -r 1 -o json -p 4" ] || { echo "unexpected args: $*" >&2; exit 3; }
cat <<'J'
[{"n_threads":1,"n_prompt":4,"n_gen":0,"avg_ts":111.5,"stddev_ts":1.5},{"n_threads":1,"n_prompt":0,"n_gen":8,"avg_ts":22.25,"stddev_ts":0.25},
 {"n_threads":2,"n_prompt":4,"n_gen":0,"avg_ts":333.5,"stddev_ts":3.5},{"n_threads":2,"n_prompt":0,"n_gen":8,"avg_ts":44.75,"stddev_ts":0.75}]
J
`)
	r := taobox(t, nil, "bench", "model", "--model", model, "--threads", "1,2", "--decode", "8", "--prompt", "4", "--reps", "1", "--llama-bench", fake, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out benchJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	want := map[int][4]float64{1: {22.25, 0.25, 111.5, 1.5}, 2: {44.75, 0.75, 333.5, 3.5}}
	if len(out.Results) != 2 {
		t.Fatalf("%d results, want 2", len(out.Results))
	}
	for _, res := range out.Results {
		w := want[res.Threads]
		if res.LlamaDecodeTPS == nil || res.LlamaDecodeSD == nil || res.LlamaPromptTPS == nil || res.LlamaPromptSD == nil ||
			*res.LlamaDecodeTPS != w[0] || *res.LlamaDecodeSD != w[1] || *res.LlamaPromptTPS != w[2] || *res.LlamaPromptSD != w[3] {
			t.Errorf("threads %d: llama.cpp figures %+v, want %v", res.Threads, res, w)
		}
	}

	r = taobox(t, nil, "bench", "model", "--model", model, "--threads", "1,2", "--decode", "8", "--prompt", "4", "--reps", "1", "--llama-bench", fake)
	if lines := strings.Split(r.stdout, "\n"); r.code != 0 || len(lines) != 4 || !strings.Contains(lines[1], " 111.5 ± 1.5 ") || !strings.Contains(lines[2], " 333.5 ± 3.5 ") {
		t.Errorf("table with llama.cpp figures: exit %d, stdout:\n%s", r.code, r.stdout)
	}

	failing := fakeLlamaBench(t, "echo 'error: failed to load model' >&2; exit 1\n")
	r = taobox(t, nil, "bench", "model", "--model", model, "--decode", "8", "--reps", "1", "--llama-bench", failing)
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "taobox: ") != 1 || !strings.Contains(r.stderr, "failed to load model") {
		t.Errorf("failing llama-bench: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestBenchModelRealLlamaBench runs the real llama-bench (TAOBOX_LLAMA_BENCH,
// or llama-bench on PATH) on a synthesized model.
func TestBenchModelRealLlamaBench(t *testing.T) {
	lb := os.Getenv("TAOBOX_LLAMA_BENCH")
	if lb == "" {
		var err error
		if lb, err = exec.LookPath("llama-bench"); err != nil {
			t.Skip("llama-bench not found: set TAOBOX_LLAMA_BENCH or put it on PATH")
		}
	}
	model := tinyModel(t, "q8_0")
	r := taobox(t, nil, "bench", "model", "--model", model, "--decode", "8", "--prompt", "4", "--reps", "1", "--llama-bench", lb, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out benchJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 || out.Results[0].LlamaDecodeTPS == nil || *out.Results[0].LlamaDecodeTPS <= 0 || out.Results[0].LlamaPromptTPS == nil {
		t.Errorf("results %+v: want llama.cpp figures", out.Results)
	}
}
