package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"taobox/assets"
	"taobox/chain/yuma"
	"taobox/gpu/runner"
	"taobox/internal/syncbuf"
	"taobox/model"
	"taobox/model/gguf"
)

// TestMain doubles as a GPU runner for TestGPUThroughRunner: re-executed
// with TAOBOX_BENCH_FAKE_RUNNER=1 as `runner --socket PATH`, it serves the
// runner protocol with the CPU engine, so the whole GPU path (detect,
// process, socket, protocol) runs here without a GPU.
func TestMain(m *testing.M) {
	if os.Getenv("TAOBOX_BENCH_FAKE_RUNNER") == "1" {
		var socket string
		for i, a := range os.Args {
			if a == "--socket" && i+1 < len(os.Args) {
				socket = os.Args[i+1]
			}
		}
		s := &runner.Server{Info: "bench test runner (CPU engine)", Yuma: yuma.NewCPUEngine(1)}
		if err := runner.ServeProcess(context.Background(), socket, s, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fake runner:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func tinyModel(t *testing.T) Model {
	t.Helper()
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return Model{Name: "tiny", Type: "F32", FileBytes: int64(len(assets.TinyModel())), SeqLen: m.Config.SeqLen, Runner: m}
}

// recorder is a Progress that keeps every call.
type recorder struct{ lines []string }

func (r *recorder) Begin(i, n int, name string) {
	r.lines = append(r.lines, fmt.Sprintf("begin %d/%d %s", i, n, name))
}
func (r *recorder) Update(frac float64) {
	if frac < 0 || frac > 1 {
		r.lines = append(r.lines, fmt.Sprintf("bad fraction %v", frac))
	}
}
func (r *recorder) End(s string, err error) {
	r.lines = append(r.lines, fmt.Sprintf("end %q %v", s, err))
}

func TestRunQuickEverySection(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	r, err := Run(context.Background(), Config{Quick: true, Dir: dir, Models: []Model{tinyModel(t)}, Threads: []int{1, 2},
		Progress: rec, NoGPU: "no GPU: test", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Sections, Sections) {
		t.Errorf("sections %v, want %v", r.Sections, Sections)
	}
	// Yuma: a CPU and a GPU row per workload, the GPU ones unavailable.
	if len(r.Yuma) != 6 {
		t.Fatalf("%d yuma rows, want 6: %+v", len(r.Yuma), r.Yuma)
	}
	for i, w := range YumaWorkloads(true) {
		cpu, gpu := r.Yuma[2*i], r.Yuma[2*i+1]
		if cpu.Workload != w.Name || cpu.Engine != "cpu" || !cpu.Available || cpu.Batches != 1 || cpu.EpochsPerS <= 0 || cpu.MsPerEpoch <= 0 || cpu.Subnets != w.Subnets {
			t.Errorf("cpu row %+v", cpu)
		}
		if gpu.Workload != w.Name || gpu.Engine != "gpu" || gpu.Available || gpu.Note != "no GPU" || gpu.EpochsPerS != 0 {
			t.Errorf("gpu row %+v", gpu)
		}
	}
	if r.Machine.GPU != "no GPU: test" {
		t.Errorf("machine GPU %q", r.Machine.GPU)
	}
	if len(r.Model) != 2 || r.Model[0].Threads != 1 || r.Model[1].Threads != 2 {
		t.Fatalf("model rows %+v", r.Model)
	}
	for _, m := range r.Model {
		if m.DecodeTPS <= 0 || m.PromptTPS <= 0 || m.DecodeTokens != 16 || m.Model != "tiny" {
			t.Errorf("model row %+v", m)
		}
	}
	if q := r.QUIC; q == nil || q.RoundTrips != 20 || q.RTTP50us <= 0 || q.RTTP99us < q.RTTP50us || q.StreamBytes != 4<<20 || q.StreamMBPerS <= 0 || q.HandshakeMs <= 0 {
		t.Errorf("quic %+v", r.QUIC)
	}
	d := r.Disk
	if d == nil || d.Fsyncs != 5 || d.FsyncP50us <= 0 || d.Batches != 3 || d.BatchKeys != 3+BlockStateWrites || d.BatchesPerS <= 0 || d.BatchBytes < 100_000 {
		t.Errorf("disk %+v", d)
	}
	// The disk section cleans up after itself.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("data folder left with %v", ents)
	}
	// Steps: 6 yuma, 2 model, 1 quic, 2 disk; each begins then ends.
	want := 11
	if len(rec.lines) != 2*want || !strings.HasPrefix(rec.lines[0], fmt.Sprintf("begin 1/%d yuma 1x256 cpu", want)) {
		t.Errorf("progress:\n%s", strings.Join(rec.lines, "\n"))
	}
	// The report round-trips through its JSON form.
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeReport(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("JSON round trip differs:\n%+v\n%+v", back, r)
	}
}

func TestRunOnly(t *testing.T) {
	r, err := Run(context.Background(), Config{Quick: true, Sections: []string{SectionQUIC}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Yuma != nil || r.Model != nil || r.Disk != nil || r.QUIC == nil || !reflect.DeepEqual(r.Sections, []string{SectionQUIC}) {
		t.Errorf("--only quic ran %+v", r)
	}
}

// TestGPUThroughRunner runs the GPU rows through a real runner process
// (this test binary serving the runner protocol with the CPU engine):
// the rows are available and agree with the CPU engine; an engine that
// has fallen back to the CPU is an error, never a GPU figure.
func TestGPUThroughRunner(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := runner.Start(context.Background(), runner.Options{
		Backend: runner.BackendCUDA, Env: []string{"TAOBOX_BENCH_FAKE_RUNNER=1"},
		Detect: func() (runner.GPU, error) {
			return runner.GPU{Devices: []string{"/dev/nvidia0"}, Library: "test", Binary: exe}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r, err := Run(context.Background(), Config{Quick: true, Sections: []string{SectionYuma}, GPU: eng, GPUName: "test runner"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	for _, y := range r.Yuma {
		if !y.Available || y.EpochsPerS <= 0 || y.Error != "" {
			t.Errorf("row %+v", y)
		}
	}
	if st := eng.Stats(); st.RunnerBatches < 6 || st.CPUBatches != 0 {
		t.Errorf("runner stats %+v: want every GPU batch on the runner", st)
	}

	cpuOnly, err := runner.Start(context.Background(), runner.Options{Backend: runner.BackendCPU})
	if err != nil {
		t.Fatal(err)
	}
	defer cpuOnly.Close()
	r, err = Run(context.Background(), Config{Quick: true, Sections: []string{SectionYuma}, GPU: cpuOnly})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) != 3 || !strings.Contains(r.Errors[0], "not serving") {
		t.Errorf("a CPU-backed GPU engine gave errors %v, want one per workload", r.Errors)
	}
	for _, y := range r.Yuma {
		if y.Engine == "gpu" && (y.EpochsPerS != 0 || y.Error == "") {
			t.Errorf("gpu row from a CPU engine: %+v", y)
		}
	}
}

func TestYumaInputsSeeded(t *testing.T) {
	w := mkYuma(3, 64)
	a, b, c := w.Inputs(1), w.Inputs(1), w.Inputs(2)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different inputs")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("seeds 1 and 2 gave the same inputs")
	}
	if len(a) != 3 || a[0].N != 64 || len(a[1].Bonds) != 64 {
		t.Errorf("shape: %d subnets, N %d", len(a), a[0].N)
	}
	for _, q := range []bool{false, true} {
		for _, w := range YumaWorkloads(q) {
			if w.Name != fmt.Sprintf("%dx%d", w.Subnets, w.UIDs) || w.Validators < 1 || w.Validators > w.UIDs {
				t.Errorf("workload %+v", w)
			}
		}
	}
}

// stepClock advances by step at each reading.
func stepClock(step time.Duration) func() time.Time {
	t := time.Unix(1_700_000_000, 0)
	return func() time.Time { t = t.Add(step); return t }
}

func TestLoopStopsByClock(t *testing.T) {
	for _, tc := range []struct {
		minIters, maxIters int
		minTime            time.Duration
		want               int
	}{
		{1, 1000, 10 * time.Millisecond, 10}, // each timed call reads 1 ms
		{20, 1000, 10 * time.Millisecond, 20},
		{1, 5, time.Second, 5},
		{3, 3, 0, 3},
	} {
		c := Config{MinTime: tc.minTime, Now: stepClock(time.Millisecond), Progress: &recorder{}}
		calls := 0
		ds, err := loop(context.Background(), &c, tc.minIters, tc.maxIters, func() error { calls++; return nil })
		if err != nil || len(ds) != tc.want || calls != tc.want+1 {
			t.Errorf("%+v: %d timed, %d calls, %v; want %d timed after a warm-up", tc, len(ds), calls, err, tc.want)
		}
		for _, d := range ds {
			if d != time.Millisecond {
				t.Errorf("duration %v, want the clock's 1ms", d)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {10, 1}, {50, 5}, {90, 9}, {99, 10}, {100, 10}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string // "" valid
	}{
		{Config{Dir: "x"}, ""},
		{Config{Sections: []string{SectionYuma}}, ""},
		{Config{}, "needs Dir"},
		{Config{Dir: "x", Sections: []string{"gpu"}}, `unknown section "gpu"`},
		{Config{Dir: "x", Threads: []int{0}}, "thread count 0"},
		{Config{Dir: "x", MinTime: -1}, "negative"},
		{Config{Dir: "x", Models: []Model{{Name: "m"}}}, "model 0"},
	} {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// report returns a small valid report at t with the given CPU and GPU
// epochs/s for workload 1x256.
func report(t time.Time, quick bool, cpu, gpu float64) *Report {
	r := &Report{Schema: Schema, Time: t, Seed: 1, Quick: quick, Sections: Sections, Machine: Machine{Hostname: "h", CPUs: 2, GPU: "test"}}
	r.Yuma = []YumaResult{
		{Workload: "1x256", Subnets: 1, UIDs: 256, Engine: "cpu", Available: true, Batches: 3, EpochsPerS: cpu, MsPerEpoch: 1000 / cpu},
		{Workload: "1x256", Subnets: 1, UIDs: 256, Engine: "gpu", Available: gpu > 0, Batches: 3, EpochsPerS: gpu},
		{Workload: "128x256", Subnets: 128, UIDs: 256, Engine: "cpu", Available: true, Batches: 3, EpochsPerS: cpu * 3},
	}
	r.Model = []ModelResult{{Model: "tiny", Type: "F32", Threads: 1, DecodeTPS: 900, PromptTPS: 4000}}
	r.QUIC = &QUICResult{RoundTrips: 10, RTTP50us: 40, RTTP99us: 120, StreamMBPerS: 250}
	r.Disk = &DiskResult{Dir: "/d", Fsyncs: 5, FsyncP50us: 300, FsyncP99us: 900, Batches: 4, BatchesPerS: 150, BatchP50ms: 6, WriteMBPerS: 18}
	return r
}

func TestSaveAndLoadHistory(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i, r := range []*Report{report(t0.Add(2*time.Hour), false, 200, 0), report(t0, false, 100, 0), report(t0.Add(time.Hour), true, 150, 0)} {
		p, err := Save(dir, r)
		if err != nil {
			t.Fatal(i, err)
		}
		if filepath.Dir(p) != HistoryDir(dir) || !strings.HasSuffix(p, ".json") {
			t.Errorf("saved at %s", p)
		}
	}
	os.WriteFile(filepath.Join(HistoryDir(dir), "junk.json"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(HistoryDir(dir), "other.json"), []byte(`{"schema":"other/9","time":"2026-01-01T00:00:00Z"}`), 0o600)
	os.WriteFile(filepath.Join(HistoryDir(dir), "notes.txt"), []byte("x"), 0o600)
	runs, skipped, err := LoadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || !runs[0].Time.Equal(t0) || !runs[2].Time.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("history: %d runs, want 3 oldest first", len(runs))
	}
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want junk.json and other.json", skipped)
	}
	now := report(t0.Add(3*time.Hour), false, 400, 0)
	cmp := Comparable(now, runs, 10)
	if len(cmp) != 2 || cmp[0].Yuma[0].EpochsPerS != 100 || cmp[1].Yuma[0].EpochsPerS != 200 {
		t.Errorf("comparable: %d runs, want the 2 full runs", len(cmp))
	}
	if got := Comparable(now, runs, 1); len(got) != 1 || got[0].Yuma[0].EpochsPerS != 200 {
		t.Errorf("comparable n=1: want the newest")
	}
	if runs, _, err := LoadHistory(filepath.Join(dir, "none")); err != nil || runs != nil {
		t.Errorf("missing folder: %v %v", runs, err)
	}
}

func TestWriteTableChange(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	prev, now := report(t0, false, 100, 0), report(t0.Add(time.Hour), false, 200, 0)
	now.QUIC.RTTP50us = 20 // half the latency: +100%
	now.Yuma[1].Available, now.Yuma[1].Note = false, "no GPU: test"
	var b bytes.Buffer
	if err := WriteTable(&b, now, prev); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"change: against the run of 2026-11-01 10:00 UTC", "no GPU: test", "round trip p50", "+100%", "goleveldb Sync block batches"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "+100%"); n < 3 { // 1x256 cpu, 128x256 cpu, QUIC p50
		t.Errorf("%d +100%% changes, want 3:\n%s", n, out)
	}
}

func TestPlotPNG(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var history []Report
	for i := range 5 {
		history = append(history, *report(t0.Add(time.Duration(i)*time.Hour), false, float64(100+50*i), float64(1000*(i+1))))
	}
	for _, tc := range []struct {
		name    string
		r       *Report
		history []Report
	}{
		{"with history and GPU", report(t0.Add(24*time.Hour), false, 400, 9000), history},
		{"alone, no GPU", report(t0, true, 50, 0), nil},
		{"yuma only", &Report{Schema: Schema, Time: t0, Sections: []string{SectionYuma}, Yuma: report(t0, false, 10, 0).Yuma[:1]}, nil},
	} {
		var b bytes.Buffer
		if err := Plot(&b, tc.r, tc.history); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s := img.Bounds().Size(); s.X != PlotWidth || s.Y != PlotHeight {
			t.Errorf("%s: %v, want %dx%d", tc.name, s, PlotWidth, PlotHeight)
		}
	}
}

func TestShort(t *testing.T) {
	for v, want := range map[float64]string{1: "1", 25: "25", 1500: "1.5k", 250_000: "250k", 3e6: "3M", 0.5: "0.5", 12.345: "12.3", 2e9: "2G"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
}

func FuzzDecodeReport(f *testing.F) {
	b, _ := json.Marshal(report(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false, 10, 20))
	f.Add(b)
	f.Add([]byte(`{"schema":"taobox-bench/1"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReport(b)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded an invalid report: %v", err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeReport(out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		Metrics(r)
		WriteTable(&bytes.Buffer{}, r, r)
	})
}

func TestTextProgress(t *testing.T) {
	var plain bytes.Buffer
	p := NewTextProgress(&plain, false)
	p.Begin(1, 2, "yuma 1x256 cpu")
	p.Update(0.5)
	p.End("1 ms/epoch", nil)
	p.Begin(2, 2, "disk fsync")
	p.End("", fmt.Errorf("disk full"))
	p.Close()
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "bench: [1/2] yuma 1x256 cpu: 1 ms/epoch (") || !strings.HasPrefix(lines[1], "bench: [2/2] disk fsync: ERROR disk full (") {
		t.Errorf("plain progress:\n%s", plain.String())
	}

	var tty syncbuf.Buffer
	p = NewTextProgress(&tty, true)
	p.Begin(1, 1, "quic loopback")
	p.Update(0.25)
	p.End("ok", nil)
	p.Close()
	out := tty.String()
	if !strings.Contains(out, "\r\x1b[2K") || !strings.Contains(out, "[1/1] quic loopback") || !strings.Contains(out, "✓ [1/1] quic loopback: ok (") || !strings.HasSuffix(out, ")\n") {
		t.Errorf("tty progress: %q", out)
	}
}
