package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteTable writes r as plain-text tables, one per section, and with
// prev (an earlier comparable run, or nil) a column of this run's change
// against it ("+12%" is better, whatever the unit's direction).
func WriteTable(w io.Writer, r *Report, prev *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "taobox bench %s, %s, seed %d%s: %s/%s, %d CPUs (%s), %s\n",
		r.Version, r.Time.Format("2006-01-02 15:04 UTC"), r.Seed, map[bool]string{true: " (quick)"}[r.Quick],
		r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, orDash(r.Machine.CPUModel), r.Machine.GPU)
	if prev != nil {
		on := ""
		if prev.Machine.Hostname != r.Machine.Hostname {
			on = " on " + prev.Machine.Hostname
		}
		fmt.Fprintf(&b, "change: against the run of %s%s (+ is better)\n", prev.Time.Format("2006-01-02 15:04 UTC"), on)
	}
	old := map[string]float64{}
	if prev != nil {
		for _, m := range Metrics(prev) {
			old[m.key()] = m.Value
		}
	}
	change := func(m Metric) string {
		o, ok := old[m.key()]
		if !ok || o <= 0 || m.Value <= 0 {
			return "-"
		}
		ratio := m.Value / o
		if !m.HigherBetter {
			ratio = o / m.Value
		}
		pct := math.Round((ratio - 1) * 100)
		if pct == 0 {
			return "0%"
		}
		return fmt.Sprintf("%+.0f%%", pct)
	}
	byKey := map[string]Metric{}
	for _, m := range Metrics(r) {
		byKey[m.key()] = m
	}
	chg := func(panel, label, series string) string {
		if m, ok := byKey[panel+"|"+label+"|"+series]; ok {
			return change(m)
		}
		return "-"
	}

	if len(r.Yuma) > 0 {
		b.WriteString("\nYuma epochs\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tENGINE\tBATCHES\tms/batch\tms/epoch\tepochs/s\tCHANGE\tNOTE")
		for _, y := range r.Yuma {
			note := y.Note
			if y.Error != "" {
				note = "ERROR " + y.Error
			}
			if !y.Available || y.Batches == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t%s\n", y.Workload, y.Engine, note)
				continue
			}
			if y.Workers > 0 && note == "" {
				note = fmt.Sprintf("%d workers", y.Workers)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.4f\t%.0f\t%s\t%s\n", y.Workload, y.Engine, y.Batches, y.MsPerBatch, y.MsPerEpoch, y.EpochsPerS,
				chg(PanelYuma, y.Workload, strings.ToUpper(y.Engine)), note)
		}
		tw.Flush()
	}
	if len(r.Model) > 0 {
		b.WriteString("\nModel (CPU)\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tTYPE\tMiB\tTHREADS\tdecode tok/s\tprompt tok/s\tCHANGE decode\tCHANGE prompt\tNOTE")
		for _, m := range r.Model {
			note := ""
			if m.Error != "" {
				note = "ERROR " + m.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%d\t%.1f\t%.1f\t%s\t%s\t%s\n", m.Model, m.Type, float64(m.FileBytes)/(1<<20), m.Threads, m.DecodeTPS, m.PromptTPS,
				chg(PanelModel, modelLabel(m, "decode"), "CPU"), chg(PanelModel, modelLabel(m, "prompt"), "CPU"), note)
		}
		tw.Flush()
	}
	if q := r.QUIC; q != nil {
		b.WriteString("\nQUIC on loopback\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIGURE\tVALUE\tCHANGE")
		fmt.Fprintf(tw, "handshake\t%.2f ms\t-\n", q.HandshakeMs)
		fmt.Fprintf(tw, "round trip p50 (%d B, %d timed)\t%.0f µs\t%s\n", q.RoundTripBytes, q.RoundTrips, q.RTTP50us, chg(PanelLatency, "QUIC RTT p50", "CPU"))
		fmt.Fprintf(tw, "round trip p99\t%.0f µs\t%s\n", q.RTTP99us, chg(PanelLatency, "QUIC RTT p99", "CPU"))
		fmt.Fprintf(tw, "one stream (%.0f MB sent)\t%.0f MB/s\t%s\n", float64(q.StreamBytes)/1e6, q.StreamMBPerS, chg(PanelRate, "QUIC stream MB/s", "CPU"))
		if q.Error != "" {
			fmt.Fprintf(tw, "ERROR\t%s\t\n", q.Error)
		}
		tw.Flush()
	}
	if d := r.Disk; d != nil {
		fmt.Fprintf(&b, "\nDisk (%s)\n", d.Dir)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIGURE\tVALUE\tCHANGE")
		if d.FsyncError != "" {
			fmt.Fprintf(tw, "fsync\tERROR %s\t\n", d.FsyncError)
		} else {
			fmt.Fprintf(tw, "fsync p50 (%d B write + fsync, %d timed)\t%.0f µs\t%s\n", FsyncBytes, d.Fsyncs, d.FsyncP50us, chg(PanelLatency, "fsync p50", "CPU"))
			fmt.Fprintf(tw, "fsync p99\t%.0f µs\t%s\n", d.FsyncP99us, chg(PanelLatency, "fsync p99", "CPU"))
		}
		if d.LevelDBError != "" {
			fmt.Fprintf(tw, "goleveldb\tERROR %s\t\n", d.LevelDBError)
		} else {
			fmt.Fprintf(tw, "goleveldb Sync block batches (%d keys, %.0f KiB, %d timed)\t%.0f /s\t%s\n", d.BatchKeys, float64(d.BatchBytes)/1024, d.Batches, d.BatchesPerS, chg(PanelRate, "leveldb block batches/s", "CPU"))
			fmt.Fprintf(tw, "  commit p50 / p99\t%.2f / %.2f ms\t%s\n", d.BatchP50ms, d.BatchP99ms, chg(PanelLatency, "leveldb commit p50", "CPU"))
			fmt.Fprintf(tw, "  keys, payload\t%.0f keys/s, %.1f MB/s\t-\n", d.KeysPerS, d.WriteMBPerS)
		}
		tw.Flush()
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "ERROR %s\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
