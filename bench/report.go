package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"taobox/internal/fsutil"
)

// Schema names the JSON layout of a Report. It changes only when a field
// changes meaning or disappears; new fields may be added under the same
// name, and readers ignore fields they do not know.
const Schema = "taobox-bench/1"

// MaxReportBytes caps a saved report that DecodeReport reads.
const MaxReportBytes = 4 << 20

// Section names: the parts of a run, in the order Run measures them.
const (
	SectionYuma  = "yuma"
	SectionModel = "model"
	SectionQUIC  = "quic"
	SectionDisk  = "disk"
)

// Sections lists every section in run order.
var Sections = []string{SectionYuma, SectionModel, SectionQUIC, SectionDisk}

// Report is one run of the bench: what was measured, on what, and the
// figures. Its JSON form is the schema documented in docs/bench.md. A
// section that was not asked for is absent (nil); one that failed has its
// error in Errors and whatever rows it finished.
type Report struct {
	Schema   string    `json:"schema"`
	Version  string    `json:"version"` // the taobox version that ran it
	Time     time.Time `json:"time"`    // when the run started (UTC)
	Seed     uint64    `json:"seed"`    // the seed of every generated workload
	Quick    bool      `json:"quick"`   // the smaller --quick workloads: compare only with quick runs
	Machine  Machine   `json:"machine"`
	Sections []string  `json:"sections"` // the sections asked for, in run order
	Seconds  float64   `json:"seconds"`  // the run's wall time

	Yuma  []YumaResult  `json:"yuma,omitempty"`
	Model []ModelResult `json:"model,omitempty"`
	QUIC  *QUICResult   `json:"quic,omitempty"`
	Disk  *DiskResult   `json:"disk,omitempty"`

	// Errors are the steps that failed, "section: step: problem"; the run
	// goes on after each.
	Errors []string `json:"errors,omitempty"`
}

// Machine describes where a report was measured.
type Machine struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`      // runtime.NumCPU
	CPUModel string `json:"cpu_model"` // from /proc/cpuinfo; "" elsewhere
	Go       string `json:"go"`
	// GPU is the GPU the Yuma GPU rows ran on, or why there are none
	// ("no GPU: ...").
	GPU string `json:"gpu"`
}

// YumaResult is one workload on one engine.
type YumaResult struct {
	Workload string `json:"workload"` // "1x256", "1x4096", "128x256": subnets x uids
	Subnets  int    `json:"subnets"`
	UIDs     int    `json:"uids"`
	Engine   string `json:"engine"` // "cpu" or "gpu"
	// Available is false for the GPU rows of a machine without one (Note
	// is "no GPU" and Machine.GPU says why); the figures are then zero.
	Available  bool    `json:"available"`
	Workers    int     `json:"workers,omitempty"` // the CPU engine's goroutines
	Batches    int     `json:"batches"`           // timed batches
	MsPerBatch float64 `json:"ms_per_batch"`      // mean
	MsPerEpoch float64 `json:"ms_per_epoch"`      // MsPerBatch / Subnets
	EpochsPerS float64 `json:"epochs_per_s"`
	Note       string  `json:"note,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// ModelResult is one model at one thread count.
type ModelResult struct {
	Model        string  `json:"model"` // file name, or "tiny" for the embedded model
	Type         string  `json:"type"`  // the matrices' type: F32, Q8_0, ...
	FileBytes    int64   `json:"file_bytes"`
	Threads      int     `json:"threads"`
	DecodeTokens int     `json:"decode_tokens"` // per run
	PromptTokens int     `json:"prompt_tokens"` // per run
	DecodeRuns   int     `json:"decode_runs"`   // timed runs
	PromptRuns   int     `json:"prompt_runs"`
	DecodeTPS    float64 `json:"decode_tps"` // tokens/s: the timed runs' tokens over their total time
	PromptTPS    float64 `json:"prompt_tps"`
	Error        string  `json:"error,omitempty"`
}

// QUICResult is the loopback QUIC figures.
type QUICResult struct {
	HandshakeMs    float64 `json:"handshake_ms"`     // first connection, TLS 1.3 with ed25519 certificates
	RoundTripBytes int     `json:"round_trip_bytes"` // request and response size
	RoundTrips     int     `json:"round_trips"`      // timed request/response round trips on one stream
	RTTP50us       float64 `json:"rtt_p50_us"`
	RTTP99us       float64 `json:"rtt_p99_us"`
	StreamBytes    int64   `json:"stream_bytes"`    // sent on one stream for the throughput figure
	StreamMBPerS   float64 `json:"stream_mb_per_s"` // 10^6 bytes per second, until the server acknowledged the last byte
	Error          string  `json:"error,omitempty"`
}

// DiskResult is the data folder's figures.
type DiskResult struct {
	Dir        string  `json:"dir"`    // the folder measured (a temporary folder under it was used)
	Fsyncs     int     `json:"fsyncs"` // timed 4 KiB write+fsync pairs
	FsyncP50us float64 `json:"fsync_p50_us"`
	FsyncP99us float64 `json:"fsync_p99_us"`
	// goleveldb: Batches Sync=true batches of BatchKeys keys, BatchBytes
	// bytes each (a block's header, body, certificate and state writes).
	Batches      int     `json:"batches"`
	BatchKeys    int     `json:"batch_keys"`
	BatchBytes   int     `json:"batch_bytes"`
	BatchesPerS  float64 `json:"batches_per_s"`
	BatchP50ms   float64 `json:"batch_p50_ms"`
	BatchP99ms   float64 `json:"batch_p99_ms"`
	KeysPerS     float64 `json:"keys_per_s"`
	WriteMBPerS  float64 `json:"write_mb_per_s"`
	FsyncError   string  `json:"fsync_error,omitempty"`
	LevelDBError string  `json:"leveldb_error,omitempty"`
}

// Validate reports whether r is a report this package can compare: the
// schema it knows, a time, and every section it names known.
func (r *Report) Validate() error {
	var errs []error
	if r.Schema != Schema {
		errs = append(errs, fmt.Errorf("schema %q, want %q", r.Schema, Schema))
	}
	if r.Time.IsZero() {
		errs = append(errs, errors.New("time is missing"))
	}
	for _, s := range r.Sections {
		if !slices.Contains(Sections, s) {
			errs = append(errs, fmt.Errorf("unknown section %q", s))
		}
	}
	return errors.Join(errs...)
}

// DecodeReport parses a saved report (at most MaxReportBytes) and
// validates it.
func DecodeReport(b []byte) (*Report, error) {
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("bench: report of %d bytes exceeds the %d-byte cap", len(b), MaxReportBytes)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: report: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("bench: report: %w", err)
	}
	return &r, nil
}

// WriteJSON writes r as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// HistoryDir is where Save keeps reports: <data>/bench.
func HistoryDir(data string) string { return filepath.Join(data, "bench") }

// fileTime is the layout of a saved report's name, in UTC.
const fileTime = "20060102T150405.000Z"

// Save writes r to HistoryDir(data)/<time>.json, creating the folder, and
// returns the path. It writes a temporary file and renames it, so a
// crash leaves no half report.
func Save(data string, r *Report) (string, error) {
	dir := HistoryDir(data)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("bench: save: %w (give another data folder with --data, or --no-save)", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.Time.UTC().Format(fileTime)+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("bench: save: %w (give another data folder with --data, or --no-save)", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("bench: save: %w", err)
	}
	return path, nil
}

// LoadHistory reads every report saved under HistoryDir(data), oldest
// first. Files that are not reports are skipped and named in skipped with
// the reason; a missing folder is an empty history.
func LoadHistory(data string) (runs []Report, skipped []string, err error) {
	dir := HistoryDir(data)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bench: history: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := fsutil.ReadCapped(p, MaxReportBytes)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		r, err := DecodeReport(b)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		runs = append(runs, *r)
	}
	slices.SortStableFunc(runs, func(a, b Report) int { return a.Time.Compare(b.Time) })
	return runs, skipped, nil
}

// Comparable returns the runs of history that can be compared with r:
// the same Quick setting and seed, measured before r, newest last, at
// most n of them.
func Comparable(r *Report, history []Report, n int) []Report {
	var out []Report
	for _, h := range history {
		if h.Quick == r.Quick && h.Seed == r.Seed && h.Time.Before(r.Time) {
			out = append(out, h)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
