// Package obs is what every taobox daemon (node, miner, validator, devnet)
// uses to be observed: one Prometheus registry per process, an HTTP
// listener that serves /metrics and /healthz, and log/slog loggers with a
// level, a text or JSON format, and an optional log file rotated by size.
//
// The roles own their metrics (chain/node, miner and validator each have a
// metrics.go with a prometheus.Collector over their own counters); this
// package only assembles them. docs/metrics.md lists every metric name.
//
// Design note: there is no global state. NewRegistry returns a fresh
// registry (never prometheus.DefaultRegisterer), so that tests and the
// one-process devnet can run several roles side by side, each registering
// through prometheus.WrapRegistererWith when names would collide.
package obs
