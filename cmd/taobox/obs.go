package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/node"
	"taobox/internal/obs"
)

// obsFlags are the observability flags every daemon (node, miner,
// validator, devnet) takes: where its metrics are served and how and
// where it logs. See docs/metrics.md.
type obsFlags struct {
	metrics, level, format, file *string
	maxMB                        *int64
	keep                         *int
}

// addObsFlags defines --metrics, --log-level (default defLevel),
// --log-format, --log-file, --log-max-size and --log-keep on fs.
func addObsFlags(fs *flag.FlagSet, defLevel string) *obsFlags {
	return &obsFlags{
		metrics: fs.String("metrics", "", "serve Prometheus metrics (/metrics) and health (/healthz) over HTTP on `ADDR`, such as 127.0.0.1:9100 (no authentication: keep it private)"),
		level:   logLevelFlag(fs, defLevel),
		format:  fs.String("log-format", "text", "the `FORMAT` of the logs: text (key=value) or json (one object per line)"),
		file:    fs.String("log-file", "", "write the logs to `PATH` instead of stderr, rotated by size"),
		maxMB:   fs.Int64("log-max-size", obs.DefaultLogMaxBytes>>20, "rotate --log-file when it would pass `MB` megabytes"),
		keep:    fs.Int("log-keep", obs.DefaultLogKeep, "rotated log files to keep (`N`; -1: none)"),
	}
}

// daemonObs is what a daemon observes itself with: its logger, the process
// registry, the health checks and the listener that serves both.
type daemonObs struct {
	log    *slog.Logger
	reg    *prometheus.Registry
	health *obs.Health
	srv    *obs.Server // nil without --metrics
	logs   io.Closer
}

// open parses the flags, opens the log (stderr or --log-file) and, with
// --metrics, binds and serves the metrics listener. Close it last.
func (f *obsFlags) open(e *env) (*daemonObs, error) {
	lvl, err := parseLogLevel(*f.level)
	if err != nil {
		return nil, err
	}
	if *f.format != "text" && *f.format != "json" {
		return nil, &usageError{"log-format", fmt.Sprintf("%q: want text or json", *f.format)}
	}
	if *f.maxMB <= 0 {
		return nil, &usageError{"log-max-size", fmt.Sprintf("%d: want a positive number of megabytes", *f.maxMB)}
	}
	keep := *f.keep
	if keep == 0 {
		keep = -1 // the flag's 0 means none, not the default
	}
	if keep < -1 {
		return nil, &usageError{"log-keep", fmt.Sprintf("%d: want 0 or more (-1 also keeps none)", *f.keep)}
	}
	log, logs, err := obs.NewLogger(obs.LogConfig{Level: lvl, Format: *f.format, File: *f.file, MaxBytes: *f.maxMB << 20, Keep: keep}, e.stderr)
	if err != nil {
		return nil, &usageError{"log-file", err.Error()}
	}
	o := &daemonObs{log: log, reg: obs.NewRegistry(), health: &obs.Health{}, logs: logs}
	o.reg.MustRegister(&obs.GPUDeviceCollector{}) // GPU memory and utilisation, from nvidia-smi
	if *f.metrics != "" {
		if o.srv, err = obs.Listen(*f.metrics, obs.Handler(o.reg, o.health)); err != nil {
			logs.Close()
			return nil, listenError("metrics", *f.metrics, err)
		}
		log.Info("metrics serving", "addr", o.srv.Addr(), "paths", "/metrics /healthz")
	}
	return o, nil
}

// Close stops the metrics listener and closes the log file.
func (o *daemonObs) Close() error {
	var err error
	if o.srv != nil {
		err = o.srv.Close()
	}
	return errors.Join(err, o.logs.Close())
}

// rejectStatus is the weights-status label of a submission error: the
// node's reject code when it refused the call, "error" otherwise.
func rejectStatus(err error) string {
	var re *node.RejectError
	var ae *apiError
	switch {
	case errors.As(err, &re):
		return re.Code.String()
	case errors.As(err, &ae) && ae.status >= 400 && ae.status < 500:
		return "rejected"
	}
	return "error"
}
