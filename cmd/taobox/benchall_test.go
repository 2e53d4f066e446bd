package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"taobox/bench"
)

func savedRuns(t *testing.T, data string) int {
	t.Helper()
	ents, err := os.ReadDir(bench.HistoryDir(data))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

func TestBenchAllQuick(t *testing.T) {
	data := t.TempDir()
	plotFile := filepath.Join(t.TempDir(), "bench.png")
	q8 := tinyModel(t, "q8_0")
	r := taobox(t, nil, "bench", "--quick", "--json", "--data", data, "--plot", plotFile, "--threads", "1", "--backend", "cpu", "--model", q8)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	if rep.Schema != bench.Schema || !rep.Quick || rep.Seed != 1 || len(rep.Errors) > 0 {
		t.Errorf("report header %+v", rep)
	}
	if strings.Join(rep.Sections, ",") != "yuma,model,quic,disk" {
		t.Errorf("sections %v", rep.Sections)
	}
	if len(rep.Yuma) != 6 || rep.Yuma[0].EpochsPerS <= 0 || rep.Yuma[1].Available || rep.Machine.GPU != "no GPU (--backend cpu)" {
		t.Errorf("yuma rows %+v, machine GPU %q", rep.Yuma, rep.Machine.GPU)
	}
	if len(rep.Model) != 2 || rep.Model[0].Model != "tiny" || rep.Model[0].DecodeTPS <= 0 || rep.Model[0].Type != "F32" ||
		rep.Model[1].Model != "tiny-q8_0.gguf" || rep.Model[1].Type != "Q8_0" || rep.Model[1].PromptTPS <= 0 {
		t.Errorf("model rows %+v", rep.Model)
	}
	if rep.QUIC == nil || rep.QUIC.RTTP50us <= 0 || rep.QUIC.StreamMBPerS <= 0 {
		t.Errorf("quic %+v", rep.QUIC)
	}
	if rep.Disk == nil || rep.Disk.FsyncP50us <= 0 || rep.Disk.BatchesPerS <= 0 || rep.Disk.Dir != data {
		t.Errorf("disk %+v", rep.Disk)
	}
	if n := strings.Count(r.stderr, "bench: ["); n != 11 { // 6 yuma, 2 models, 1 quic, 2 disk
		t.Errorf("%d progress lines, want 11:\n%s", n, r.stderr)
	}
	if savedRuns(t, data) != 1 || !strings.Contains(r.stderr, "bench: saved "+bench.HistoryDir(data)) {
		t.Errorf("want one saved run, stderr:\n%s", r.stderr)
	}
	f, err := os.Open(plotFile)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("--plot: %v", err)
	}
	if s := img.Bounds().Size(); s.X != bench.PlotWidth || s.Y != bench.PlotHeight {
		t.Errorf("--plot: %v pixels", s)
	}

	// A second run compares itself with the first, in the table and the
	// plot; --no-save keeps the history as it was.
	r = taobox(t, nil, "bench", "--quick", "--data", data, "--only", "yuma,quic", "--backend", "cpu", "--no-save", "--plot", plotFile)
	if r.code != 0 {
		t.Fatalf("second run: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"change: against the run of", "Yuma epochs", "QUIC on loopback", "no GPU"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Disk (") || strings.Contains(r.stdout, "Model (") {
		t.Errorf("--only yuma,quic printed other sections:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "(this run and 1 earlier)") || savedRuns(t, data) != 1 {
		t.Errorf("second run: stderr\n%s", r.stderr)
	}
}

func TestBenchAllUsage(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--only", "yuma,gpu"}, `--only: "gpu" is not a section`},
		{[]string{"--plot", "x.jpg"}, "--plot"},
		{[]string{"--seed", "0"}, "--seed"},
		{[]string{"--threads", "0"}, "--threads"},
		{[]string{"--only", "quic", "--model", "m.gguf"}, "--model"},
		{[]string{"--model", filepath.Join(data, "missing.gguf")}, "--model"},
		{[]string{"--backend", "tpu"}, "backend"},
	} {
		r := taobox(t, nil, append([]string{"bench", "--quick", "--data", data}, tc.args...)...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and one line with %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	if savedRuns(t, data) != 0 {
		t.Error("a usage error saved a run")
	}
	r := taobox(t, nil, "bench", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "bench model") || !strings.Contains(r.stdout, "bench gpu") || !strings.Contains(r.stdout, "--plot") {
		t.Errorf("bench --help: %d\n%s", r.code, r.stdout)
	}
}
