package dashboard

import (
	"math"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	page := `# HELP taobox_miner_tasks_served_total Tasks answered.
# TYPE taobox_miner_tasks_served_total counter
taobox_miner_tasks_served_total 12

taobox_miner_rejects_total{code="busy"} 3
taobox_miner_rejects_total{code="odd \"}\" label",x="1"} 4 1700000000000
taobox_miner_answer_seconds_mean 0.25
go_goroutines +Inf
up NaN`
	m, err := ParseMetrics([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 6 {
		t.Fatalf("%d samples: %+v", len(m), m)
	}
	if v, ok := m.Get("taobox_miner_tasks_served_total"); !ok || v != 12 {
		t.Errorf("served = %v, %v", v, ok)
	}
	if _, ok := m.Get("taobox_miner_rejects_total"); ok {
		t.Error("Get found a labelled series")
	}
	if v, ok := m.Sum("taobox_miner_rejects_total"); !ok || v != 7 {
		t.Errorf("rejects sum = %v, %v", v, ok)
	}
	if m[2].Labels != `code="odd \"}\" label",x="1"` {
		t.Errorf("labels %q", m[2].Labels)
	}
	if v, _ := m.Get("go_goroutines"); !math.IsInf(v, 1) {
		t.Errorf("+Inf parsed as %v", v)
	}

	for _, bad := range []string{
		"{x=\"1\"} 3",           // no name
		"name{x=\"1\" 3",        // unterminated labels
		"name",                  // no value
		"name one",              // value not a number
		"name 1 2 3",            // too many fields
		"name 1 later",          // timestamp not an integer
		"9name 1",               // name starts with a digit
		"name{x=\"unclosed} 1 ", // quote never closed
	} {
		if _, err := ParseMetrics([]byte("ok 1\n" + bad + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: err %v, want one naming line 2", bad, err)
		}
	}
	if _, err := ParseMetrics(make([]byte, MaxMetricsBytes+1)); err == nil {
		t.Error("an oversized page was accepted")
	}
	var many strings.Builder
	for range MaxMetricsSamples + 10 {
		many.WriteString("a 1\n")
	}
	if m, err := ParseMetrics([]byte(many.String())); err != nil || len(m) != MaxMetricsSamples {
		t.Errorf("%d samples kept, err %v; want the cap %d", len(m), err, MaxMetricsSamples)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("a 1\nb{c=\"d\"} 2 3\n# x\n"))
	f.Add([]byte("x{y=\"\\\"}\"} NaN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetrics(data)
		if err != nil {
			return
		}
		if len(m) > MaxMetricsSamples {
			t.Fatalf("%d samples over the cap", len(m))
		}
		for _, s := range m {
			if s.Name == "" || strings.ContainsAny(s.Name, " {}\n") {
				t.Fatalf("bad name %q", s.Name)
			}
			labelValue(s.Labels, "action") // must not panic
		}
	})
}

func TestParseHealth(t *testing.T) {
	h, err := ParseHealth([]byte(`{"status":"unhealthy","reason":"miner: no model","roles":{"miner":{"ok":false,"error":"no model"},"node":{"ok":true,"state":"head 12"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.OK() || h.Summary() != "unhealthy: miner: no model" {
		t.Errorf("OK %v, Summary %q", h.OK(), h.Summary())
	}
	h, err = ParseHealth([]byte(`{"status":"ok","roles":{"validator":{"ok":true,"state":"round 3"},"miner":{"ok":true,"state":"serving"}}}`))
	if err != nil || !h.OK() || h.Summary() != "ok: miner serving, validator round 3" {
		t.Errorf("healthy: %+v %v, Summary %q", h, err, h.Summary())
	}
	for _, bad := range []string{`{"roles":{}}`, `[1]`, `{"status":`, strings.Repeat(" ", MaxHealthBytes+1)} {
		if _, err := ParseHealth([]byte(bad)); err == nil {
			t.Errorf("%.20q accepted", bad)
		}
	}
}

func FuzzParseHealth(f *testing.F) {
	f.Add([]byte(`{"status":"ok","roles":{"miner":{"ok":true,"state":"serving"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHealth(data)
		if err != nil {
			return
		}
		if h.Status == "" {
			t.Fatal("accepted a report without a status")
		}
		_ = h.Summary()
	})
}
