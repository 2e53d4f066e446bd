package bench

import (
	"fmt"
	"strings"
)

// Panels group the Metrics of a report by what they measure, one chart
// each in Plot.
const (
	PanelYuma    = "Yuma epochs/s"
	PanelModel   = "Model tokens/s"
	PanelLatency = "Latency µs"
	PanelRate    = "Throughput"
)

// Panels lists the panels in plot order.
var Panels = []string{PanelYuma, PanelModel, PanelLatency, PanelRate}

// Metric is one figure of a report, flattened for comparison: Panel and
// Label say what it is, Series which engine ran it ("CPU" or "GPU").
type Metric struct {
	Panel, Label, Series string
	Unit                 string
	Value                float64
	HigherBetter         bool
}

func (m Metric) key() string { return m.Panel + "|" + m.Label + "|" + m.Series }

func modelLabel(m ModelResult, test string) string {
	name := strings.TrimSuffix(m.Model, ".gguf")
	return fmt.Sprintf("%s %s t%d", name, test, m.Threads)
}

// Metrics returns the figures of r that measured something (positive
// values; failed and unavailable rows are left out), in table order.
func Metrics(r *Report) []Metric {
	var out []Metric
	add := func(panel, label, series, unit string, v float64, higher bool) {
		if v > 0 {
			out = append(out, Metric{panel, label, series, unit, v, higher})
		}
	}
	for _, y := range r.Yuma {
		if y.Available && y.Error == "" {
			add(PanelYuma, y.Workload, strings.ToUpper(y.Engine), "epochs/s", y.EpochsPerS, true)
		}
	}
	for _, m := range r.Model {
		if m.Error == "" {
			add(PanelModel, modelLabel(m, "decode"), "CPU", "tok/s", m.DecodeTPS, true)
			add(PanelModel, modelLabel(m, "prompt"), "CPU", "tok/s", m.PromptTPS, true)
		}
	}
	if q := r.QUIC; q != nil && q.Error == "" {
		add(PanelLatency, "QUIC RTT p50", "CPU", "µs", q.RTTP50us, false)
		add(PanelLatency, "QUIC RTT p99", "CPU", "µs", q.RTTP99us, false)
	}
	if d := r.Disk; d != nil {
		if d.FsyncError == "" {
			add(PanelLatency, "fsync p50", "CPU", "µs", d.FsyncP50us, false)
			add(PanelLatency, "fsync p99", "CPU", "µs", d.FsyncP99us, false)
		}
		if d.LevelDBError == "" {
			add(PanelLatency, "leveldb commit p50", "CPU", "µs", d.BatchP50ms*1000, false)
		}
	}
	if q := r.QUIC; q != nil && q.Error == "" {
		add(PanelRate, "QUIC stream MB/s", "CPU", "MB/s", q.StreamMBPerS, true)
	}
	if d := r.Disk; d != nil && d.LevelDBError == "" {
		add(PanelRate, "leveldb block batches/s", "CPU", "batches/s", d.BatchesPerS, true)
		add(PanelRate, "leveldb MB/s", "CPU", "MB/s", d.WriteMBPerS, true)
	}
	return out
}
