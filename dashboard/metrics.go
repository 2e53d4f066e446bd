package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Decoder caps.
const (
	MaxMetricsBytes   = 4 << 20 // a /metrics page
	MaxMetricsSamples = 50_000  // samples kept from one page
	MaxHealthBytes    = 64 << 10
)

// Sample is one line of the Prometheus text format: a metric name, its
// label set as written between the braces (`code="busy",x="1"`; "" when
// none), and the value.
type Sample struct {
	Name   string
	Labels string
	Value  float64
}

// Metrics is one scraped /metrics page, in page order.
type Metrics []Sample

// Get returns the value of the unlabelled series name.
func (m Metrics) Get(name string) (float64, bool) {
	for _, s := range m {
		if s.Name == name && s.Labels == "" {
			return s.Value, true
		}
	}
	return 0, false
}

// Sum returns the sum of every series of name (all label sets) and whether
// there was one.
func (m Metrics) Sum(name string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range m {
		if s.Name == name {
			sum, found = sum+s.Value, true
		}
	}
	return sum, found
}

// SumLabel returns the sum of the series of name whose label set contains
// label (`status="ok"`) and whether there was one.
func (m Metrics) SumLabel(name, label string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range m {
		if s.Name == name && strings.Contains(s.Labels, label) {
			sum, found = sum+s.Value, true
		}
	}
	return sum, found
}

// ParseMetrics decodes the Prometheus text exposition format (version
// 0.0.4): comment and blank lines are skipped; every other line is
// `name[{labels}] value [timestamp]`. It keeps at most MaxMetricsSamples
// samples and refuses a page over MaxMetricsBytes or a malformed line
// (with its number).
func ParseMetrics(data []byte) (Metrics, error) {
	if len(data) > MaxMetricsBytes {
		return nil, fmt.Errorf("dashboard: metrics page of %d bytes is over the %d-byte cap", len(data), MaxMetricsBytes)
	}
	var out Metrics
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		smp, err := parseSample(s)
		if err != nil {
			return nil, fmt.Errorf("dashboard: metrics line %d: %v", n, err)
		}
		if len(out) < MaxMetricsSamples {
			out = append(out, smp)
		}
	}
	return out, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

func parseSample(s string) (Sample, error) {
	i := 0
	for i < len(s) && isNameByte(s[i], i == 0) {
		i++
	}
	if i == 0 {
		return Sample{}, fmt.Errorf("%q does not start with a metric name", clip(s))
	}
	smp := Sample{Name: s[:i]}
	rest := s[i:]
	if strings.HasPrefix(rest, "{") {
		end, err := labelsEnd(rest)
		if err != nil {
			return Sample{}, err
		}
		smp.Labels = rest[1:end]
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return Sample{}, fmt.Errorf("%q: want a value and at most a timestamp after the name", clip(s))
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return Sample{}, fmt.Errorf("%q: value %q is not a number", clip(s), clip(f[0]))
	}
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return Sample{}, fmt.Errorf("%q: timestamp %q is not an integer", clip(s), clip(f[1]))
		}
	}
	smp.Value = v
	return smp, nil
}

// labelsEnd returns the index of the '}' closing the label set that s
// starts with, skipping quoted values with backslash escapes.
func labelsEnd(s string) (int, error) {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q: unterminated label set", clip(s))
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// Health is a /healthz answer: {"status": "ok"|"unhealthy", "reason",
// "roles": {name: {"ok", "state", "error"}}} (internal/obs).
type Health struct {
	Status string                `json:"status"`
	Reason string                `json:"reason,omitempty"`
	Roles  map[string]RoleHealth `json:"roles"`
}

// RoleHealth is one check of a Health.
type RoleHealth struct {
	OK    bool   `json:"ok"`
	State string `json:"state,omitempty"`
	Error string `json:"error,omitempty"`
}

// OK reports whether the answer says healthy.
func (h *Health) OK() bool { return h.Status == "ok" }

// Summary is one short line: "ok: miner serving" or "unhealthy: reason".
func (h *Health) Summary() string {
	names := make([]string, 0, len(h.Roles))
	for n := range h.Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		r := h.Roles[n]
		switch {
		case r.Error != "":
			parts = append(parts, n+" "+r.Error)
		case r.State != "":
			parts = append(parts, n+" "+r.State)
		}
	}
	s := h.Status
	if h.Reason != "" {
		s += ": " + h.Reason
	} else if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

// ParseHealth decodes a /healthz body of at most MaxHealthBytes.
func ParseHealth(data []byte) (*Health, error) {
	if len(data) > MaxHealthBytes {
		return nil, fmt.Errorf("dashboard: health answer of %d bytes is over the %d-byte cap", len(data), MaxHealthBytes)
	}
	var h Health
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("dashboard: /healthz is not JSON of the expected shape: %v", err)
	}
	if h.Status == "" {
		return nil, fmt.Errorf("dashboard: /healthz has no status")
	}
	return &h, nil
}

// formatNumber writes a metric value compactly: integers without a
// fraction, others with 3 significant digits.
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
