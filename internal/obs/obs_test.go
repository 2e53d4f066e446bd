package obs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/gpu/runner"
	"taobox/internal/obs"
)

// get fetches url with a real HTTP client and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Scrape returns the value of the sample line that starts with series
// (name and labels exactly as exposed), or fails.
func Scrape(t *testing.T, body, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			var v float64
			if _, err := fmt.Sscan(val, &v); err != nil {
				t.Fatalf("%s: value %q: %v", series, val, err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in:\n%s", series, body)
	return 0
}

func TestServerMetricsAndHealthz(t *testing.T) {
	reg := obs.NewRegistry()
	served := prometheus.NewCounter(prometheus.CounterOpts{Name: "taobox_test_served_total", Help: "test"})
	reg.MustRegister(served)
	var h obs.Health
	var serving atomic.Bool
	h.Add("miner", func() (string, error) {
		if !serving.Load() {
			return "starting", errors.New("not serving yet")
		}
		return "serving", nil
	})
	h.Add("node", func() (string, error) { return "head 7", nil })
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, &h))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if v := Scrape(t, body, "taobox_test_served_total"); v != 0 {
		t.Fatalf("served = %v before any", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("no %s from the Go/process collectors", name)
		}
	}
	served.Add(3)
	if _, body = get(t, base+"/metrics"); Scrape(t, body, "taobox_test_served_total") != 3 {
		t.Fatalf("served did not move:\n%s", body)
	}

	// 503 with the reason, then 200 once the role is healthy.
	code, body = get(t, base+"/healthz")
	var rep obs.HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("healthz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || rep.Status != "unhealthy" || rep.Reason != "miner: not serving yet" ||
		rep.Roles["miner"].OK || !rep.Roles["node"].OK || rep.Roles["node"].State != "head 7" {
		t.Fatalf("healthz = %d %+v", code, rep)
	}
	serving.Store(true)
	code, body = get(t, base+"/healthz")
	rep = obs.HealthReport{}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || rep.Status != "ok" || rep.Reason != "" || rep.Roles["miner"].State != "serving" {
		t.Fatalf("healthz = %d %+v", code, rep)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the server still answers after Close")
	}
}

func TestListenBusyPort(t *testing.T) {
	a, err := obs.Listen("127.0.0.1:0", obs.Handler(obs.NewRegistry(), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := obs.Listen(a.Addr(), obs.Handler(obs.NewRegistry(), nil)); err == nil {
		t.Fatal("a second listener on a busy port")
	}
}

func TestGPUCollectorCPUEngine(t *testing.T) {
	e, err := runner.Start(context.Background(), runner.Options{Backend: runner.BackendCPU})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(obs.GPUCollector(e))
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, body := get(t, "http://"+srv.Addr()+"/metrics")
	if Scrape(t, body, `taobox_gpu_backend_info{backend="cpu"}`) != 1 || Scrape(t, body, "taobox_gpu_runner_up") != 0 {
		t.Fatalf("a CPU engine:\n%s", body)
	}
	Scrape(t, body, `taobox_gpu_epoch_batches_total{engine="cpu"}`)
}

func TestRotatingFileKeepsN(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "taobox.log")
	const max, keep = 100, 3
	rf, err := obs.OpenRotating(path, max, keep)
	if err != nil {
		t.Fatal(err)
	}
	// 40 lines of 30 bytes: 3 lines a file (90 bytes, the 4th would pass
	// 100), so 14 files' worth, of which the live one and 3 rotated stay.
	for i := range 40 {
		line := fmt.Sprintf("line %03d %s\n", i, strings.Repeat("x", 20))
		if n, err := rf.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	live := read(path)
	if !strings.HasPrefix(live, "line 039") || len(live) > max {
		t.Fatalf("live file %q", live)
	}
	// .1 is the newest rotated file, .3 the oldest kept; each holds whole
	// lines under the limit, in order.
	want := []string{"line 036", "line 033", "line 030"}
	for k := 1; k <= keep; k++ {
		got := read(fmt.Sprintf("%s.%d", path, k))
		if len(got) > max || !strings.HasPrefix(got, want[k-1]) || strings.Count(got, "\n") != 3 {
			t.Errorf("%s.%d = %q, want 3 lines from %s", path, k, got, want[k-1])
		}
	}
	if _, err := os.Stat(fmt.Sprintf("%s.%d", path, keep+1)); !os.IsNotExist(err) {
		t.Errorf("%s.%d kept: %v", path, keep+1, err)
	}
	// Reopening appends to the live file.
	rf, err = obs.OpenRotating(path, max, keep)
	if err != nil {
		t.Fatal(err)
	}
	rf.Write([]byte("again\n"))
	rf.Close()
	if got := read(path); got != live+"again\n" {
		t.Errorf("reopened file %q", got)
	}
}

func TestRotatingFileOversizedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	rf, err := obs.OpenRotating(path, 10, -1) // keep none
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	big := strings.Repeat("y", 25) + "\n"
	for _, w := range []string{"abc\n", big, "d\n"} {
		if _, err := rf.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if string(b) != "d\n" {
		t.Fatalf("live file %q", b)
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Fatalf("keep -1 left %s.1", path)
	}
}

func TestNewLoggerJSONFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	log, closer, err := obs.NewLogger(obs.LogConfig{Level: slog.LevelDebug, Format: "json", File: path, MaxBytes: 1024, Keep: 2}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		log.Debug("block", "height", i, "hash", strings.Repeat("ab", 16))
	}
	closer.Close()
	n := 0
	for _, p := range []string{path + ".2", path + ".1", path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", p, sc.Text(), err)
			}
			if rec["msg"] != "block" || rec["level"] != "DEBUG" {
				t.Fatalf("record %v", rec)
			}
			n++
		}
		f.Close()
	}
	if n == 0 || n >= 50 {
		t.Fatalf("%d records in the kept files, want some but not all 50 (the oldest rotated away)", n)
	}
}

func TestNewLoggerLevelAndText(t *testing.T) {
	var b strings.Builder
	lvl, err := obs.ParseLevel("WARN")
	if err != nil {
		t.Fatal(err)
	}
	log, _, err := obs.NewLogger(obs.LogConfig{Level: lvl}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=WARN msg=shown k=1") {
		t.Fatalf("text log %q", got)
	}
}

func TestLogConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    obs.LogConfig
		want string // "" valid
	}{
		{obs.LogConfig{}, ""},
		{obs.LogConfig{Format: "json", File: "x.log", MaxBytes: 10, Keep: -1}, ""},
		{obs.LogConfig{Format: "xml"}, `log format "xml"`},
		{obs.LogConfig{MaxBytes: -1}, "max size -1"},
		{obs.LogConfig{File: "dir/"}, "is a directory"},
	} {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if _, err := obs.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) passed")
	}
}

func TestParseSamples(t *testing.T) {
	got, err := obs.ParseSamples(strings.NewReader("# HELP x y\n# TYPE x gauge\nx 1.5\ny{a=\"b c\"} 2\n\nz_total 3e+09\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"x": 1.5, `y{a="b c"}`: 2, "z_total": 3e9}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, bad := range []string{"novalue\n", "x abc\n"} {
		if _, err := obs.ParseSamples(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
