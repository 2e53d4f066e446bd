package miner

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"taobox/chain/types"
	"taobox/task"
)

// metrics are the miner's counters; all atomics.
type metrics struct {
	rejects           [task.NumCodes]atomic.Int64
	served            atomic.Int64
	tokens            atomic.Int64
	abandoned         atomic.Int64
	streams           atomic.Int64
	conns             atomic.Int64
	connsRefused      atomic.Int64
	handshakesRefused atomic.Int64
	connsClosedBad    atomic.Int64
	connsUnserved     atomic.Int64
	serviceEWMA       atomic.Int64 // ns, mean time to answer one request
	accelAnswers      atomic.Int64
	accelFailovers    atomic.Int64
	initialHoldsIP    atomic.Int64
	initialHoldsAll   atomic.Int64
}

// The miner's metric descriptions; docs/metrics.md lists them.
var (
	descRejects = prometheus.NewDesc("taobox_miner_rejects_total",
		"Task requests refused (or answers abandoned), by task reject code.", []string{"code"}, nil)
	descInfo = prometheus.NewDesc("taobox_miner_info",
		"The miner's hotkey, subnet and the SHA-256 of the model it serves; always 1.", []string{"hotkey", "netuid", "model_sha256"}, nil)
	descServed = prometheus.NewDesc("taobox_miner_tasks_served_total",
		"Tasks answered to the end (signed final frame).", nil, nil)
	descTokens = prometheus.NewDesc("taobox_miner_tokens_total",
		"Tokens generated and streamed in answers served.", nil, nil)
	descAbandoned = prometheus.NewDesc("taobox_miner_tasks_abandoned_total",
		"Admitted tasks whose client left before the model started.", nil, nil)
	descStreams = prometheus.NewDesc("taobox_miner_streams_total",
		"QUIC streams (task requests) accepted.", nil, nil)
	descConns = prometheus.NewDesc("taobox_miner_connections_total",
		"QUIC connections accepted.", nil, nil)
	descConnsRefused = prometheus.NewDesc("taobox_miner_connections_refused_total",
		"QUIC connections closed at once because MaxConns were open.", nil, nil)
	descHandshakesRefused = prometheus.NewDesc("taobox_miner_handshakes_refused_total",
		"QUIC handshakes refused over the handshake rate, before any cryptography.", nil, nil)
	descConnsClosedBad = prometheus.NewDesc("taobox_miner_connections_closed_bad_requests_total",
		"QUIC connections closed because their last Limits.BadRequests requests were all refused for sender faults.", nil, nil)
	descConnsUnserved = prometheus.NewDesc("taobox_miner_connections_closed_unserved_total",
		"Connections closed because no request was admitted on them within UnservedTimeout of the handshake.", nil, nil)
	descConnsOpen = prometheus.NewDesc("taobox_miner_connections_open",
		"QUIC connections open now.", nil, nil)
	descQueue = prometheus.NewDesc("taobox_miner_queue_depth",
		"Admitted tasks waiting for the model.", nil, nil)
	descInFlight = prometheus.NewDesc("taobox_miner_in_flight",
		"Admitted tasks not waiting in the queue: those the model is answering, and any between admission and the queue.", nil, nil)
	descReplay = prometheus.NewDesc("taobox_miner_replay_cache_entries",
		"Nonces remembered against replays.", nil, nil)
	descAnswer = prometheus.NewDesc("taobox_miner_answer_seconds_mean",
		"Moving average (weight 1/8) of the time from leaving the queue to the final frame.", nil, nil)
	descAccelAnswers = prometheus.NewDesc("taobox_miner_accel_answers_total",
		"Answers started on the accelerator (the GPU runner) rather than the CPU model.", nil, nil)
	descAccelFailovers = prometheus.NewDesc("taobox_miner_accel_failovers_total",
		"Answers the accelerator failed mid-way, finished on the CPU model.", nil, nil)
	descInitialHolds = prometheus.NewDesc("taobox_miner_initial_drop_holds_total",
		"Times the kernel filter started dropping QUIC Initial packets after a refused handshake: from one source (scope=ip) or from all (scope=all).", []string{"scope"}, nil)
	descInitialDropping = prometheus.NewDesc("taobox_miner_initial_drop_active",
		"What the kernel filter drops now: scope=all is 1 while every source's QUIC Initial packets are dropped; scope=ip counts the sources held.", []string{"scope"}, nil)
	descFinalSigs = prometheus.NewDesc("taobox_miner_final_signatures_total",
		"ed25519 signatures made for final frames; each covers one final frame or a batch of them (see taobox_miner_tasks_served_total for the frames).", nil, nil)
	descTokRate = prometheus.NewDesc("taobox_miner_tokens_per_second",
		"Generation speed estimate: mean tokens per served answer over taobox_miner_answer_seconds_mean; 0 before the first answer.", nil, nil)
)

// Collector returns the miner's metrics as a Prometheus collector that
// reads the miner's counters at each scrape. Register it once on the
// process registry (in the one-process devnet, through
// prometheus.WrapRegistererWith with a label that tells miners apart).
func (m *Miner) Collector() prometheus.Collector { return (*minerCollector)(m) }

type minerCollector Miner

func (c *minerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRejects, descInfo, descServed, descTokens, descAbandoned, descStreams,
		descConns, descConnsRefused, descHandshakesRefused, descConnsClosedBad, descConnsUnserved, descConnsOpen, descQueue, descInFlight, descReplay, descAnswer, descTokRate, descAccelAnswers, descAccelFailovers, descInitialHolds, descInitialDropping, descFinalSigs} {
		ch <- d
	}
}

func (c *minerCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Miner)(c)
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for code := task.Code(1); int(code) < task.NumCodes; code++ {
		counter(descRejects, m.m.rejects[code].Load(), code.String())
	}
	gauge(descInfo, 1, types.SS58Encode(m.id), fmt.Sprint(m.cfg.Netuid), fmt.Sprintf("%x", m.cfg.ModelHash))
	served, tokens := m.m.served.Load(), m.m.tokens.Load()
	counter(descServed, served)
	counter(descTokens, tokens)
	sigs, _ := m.signer.Stats()
	counter(descFinalSigs, int64(sigs))
	counter(descAbandoned, m.m.abandoned.Load())
	counter(descAccelAnswers, m.m.accelAnswers.Load())
	counter(descAccelFailovers, m.m.accelFailovers.Load())
	counter(descInitialHolds, m.m.initialHoldsIP.Load(), "ip")
	counter(descInitialHolds, m.m.initialHoldsAll.Load(), "all")
	all, sources := m.drop.dropping(time.Now())
	gauge(descInitialDropping, btof(all), "all")
	gauge(descInitialDropping, float64(sources), "ip")
	counter(descStreams, m.m.streams.Load())
	counter(descConns, m.m.conns.Load())
	counter(descConnsRefused, m.m.connsRefused.Load())
	counter(descHandshakesRefused, m.m.handshakesRefused.Load())
	counter(descConnsClosedBad, m.m.connsClosedBad.Load())
	counter(descConnsUnserved, m.m.connsUnserved.Load())
	gauge(descConnsOpen, float64(m.nconns.Load()))
	queued := m.q.len()
	gauge(descQueue, float64(queued))
	gauge(descInFlight, float64(max(0, m.admitted()-queued)))
	gauge(descReplay, float64(m.replay.len()))
	svc := float64(m.m.serviceEWMA.Load()) / 1e9
	gauge(descAnswer, svc)
	rate := 0.0
	if served > 0 && svc > 0 {
		rate = float64(tokens) / float64(served) / svc
	}
	gauge(descTokRate, rate)
}

// admitted is the number of admitted requests not yet released: queued or
// being answered.
func (m *Miner) admitted() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, hk := range m.hk {
		n += hk.inflight
	}
	return n
}

// Healthy is the miner's /healthz check: "serving" once Serve accepts
// connections and the miner holds the chain state it admits requests
// with; an error before Serve, and while it has no chain state or only one
// over a minute old (senderCache.health).
func (m *Miner) Healthy() (string, error) {
	select {
	case <-m.ready:
	default:
		return "starting", errors.New("not serving yet")
	}
	if err := m.senders.health(m.now()); err != nil {
		return "no chain state", err
	}
	return "serving", nil
}

// registry is a registry of the miner's collector alone (Metrics and
// ServeHTTP use it).
func (m *Miner) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	return reg
}

// Metrics returns every metric of Collector by its Prometheus series name,
// labels in name order: taobox_miner_rejects_total{code="..."} for each
// rejection code, taobox_miner_info{hotkey=...,model_sha256=...,netuid=...}
// and the rest (docs/metrics.md). It is for tests and tools; daemons
// register Collector instead.
func (m *Miner) Metrics() map[string]float64 {
	mfs, err := m.registry().Gather()
	if err != nil {
		panic(fmt.Sprintf("miner: gathering the miner's own metrics: %v", err)) // a bug in Collect
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			name := mf.GetName()
			if lp := mt.GetLabel(); len(lp) > 0 {
				var b strings.Builder
				for i, l := range lp {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
				}
				name += "{" + b.String() + "}"
			}
			switch {
			case mt.Counter != nil:
				out[name] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				out[name] = mt.Gauge.GetValue()
			}
		}
	}
	return out
}

// Rejects returns the rejection count of one code.
func (m *Miner) Rejects(c task.Code) int64 {
	if int(c) >= task.NumCodes {
		return 0
	}
	return m.m.rejects[c].Load()
}

// ServeHTTP writes the miner's metrics (Collector alone, without the Go
// and process metrics) in the Prometheus exposition format.
func (m *Miner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.registry(), promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func btof(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
