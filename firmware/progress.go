package firmware

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ProgressProbe reads a role's progress: a number that grows while the role
// does its work (a node's height, a miner's served tasks). The watchdog
// restarts a role whose number stops changing for its StallAfter.
type ProgressProbe interface {
	Progress(ctx context.Context) (uint64, error)
}

// maxProbeBody caps what a probe reads from an endpoint.
const maxProbeBody = 4 << 20

var probeClient = &http.Client{Timeout: 5 * time.Second}

// HeadProbe reads the height from a node's GET /v1/head.
type HeadProbe struct {
	URL string // the node API's base URL, such as http://127.0.0.1:7744
}

// Progress returns the head height.
func (h HeadProbe) Progress(ctx context.Context) (uint64, error) {
	body, err := probeGet(ctx, strings.TrimSuffix(h.URL, "/")+"/v1/head")
	if err != nil {
		return 0, err
	}
	var head struct {
		Height *uint64 `json:"height"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.Height == nil {
		return 0, fmt.Errorf("head probe: %s/v1/head did not answer {\"height\": N}", h.URL)
	}
	return *head.Height, nil
}

// MetricsProbe reads a counter from a Prometheus text endpoint; the values
// of every series of that metric (all label sets) are summed.
type MetricsProbe struct {
	URL    string // http://127.0.0.1:9100/metrics
	Metric string // taobox_miner_tasks_served_total
}

// Progress returns the counter's value, truncated to an integer.
func (m MetricsProbe) Progress(ctx context.Context) (uint64, error) {
	body, err := probeGet(ctx, m.URL)
	if err != nil {
		return 0, err
	}
	v, found := ParseMetric(body, m.Metric)
	if !found {
		return 0, fmt.Errorf("metrics probe: %s has no metric %s", m.URL, m.Metric)
	}
	return v, nil
}

// ParseMetric sums the samples of metric in Prometheus text exposition
// format (lines `name{labels} value`); false if there are none. Negative,
// NaN and infinite values count as zero.
func ParseMetric(body []byte, metric string) (uint64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = line[j+1:]
			}
		}
		if name != metric {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			v = 0
		}
		sum += v
		found = true
	}
	if sum > math.MaxUint64/2 {
		sum = math.MaxUint64 / 2
	}
	return uint64(sum), found
}

func probeGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("probe %s: status %s", u, resp.Status)
	}
	return body, nil
}

// probeFor returns the probe of a role config (nil for "none").
func probeFor(r RoleConfig) ProgressProbe {
	switch r.Progress {
	case ProgressHead:
		return HeadProbe{URL: r.ProgressURL}
	case ProgressMetrics:
		return MetricsProbe{URL: r.ProgressURL, Metric: r.Metric}
	}
	return nil
}
