package miner

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

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
	serviceEWMA       atomic.Int64 // ns, mean time to answer one request
}

// Metrics returns every metric by its Prometheus name (with labels):
// taobox_miner_rejects_total{code="..."} for each rejection code, tasks
// served, tokens streamed, an info metric naming the hotkey, netuid and the
// model's SHA-256 it advertises, abandoned tasks, streams and connections
// accepted, connections refused, queue depth, open connections, and the
// mean answer time in seconds.
func (m *Miner) Metrics() map[string]float64 {
	out := map[string]float64{}
	for c := task.Code(1); int(c) < task.NumCodes; c++ {
		out[fmt.Sprintf("taobox_miner_rejects_total{code=%q}", c.String())] = float64(m.m.rejects[c].Load())
	}
	out[fmt.Sprintf("taobox_miner_info{hotkey=%q,netuid=\"%d\",model_sha256=\"%x\"}", types.SS58Encode(m.id), m.cfg.Netuid, m.cfg.ModelHash)] = 1
	out["taobox_miner_tasks_served_total"] = float64(m.m.served.Load())
	out["taobox_miner_tokens_total"] = float64(m.m.tokens.Load())
	out["taobox_miner_tasks_abandoned_total"] = float64(m.m.abandoned.Load())
	out["taobox_miner_streams_total"] = float64(m.m.streams.Load())
	out["taobox_miner_connections_total"] = float64(m.m.conns.Load())
	out["taobox_miner_connections_refused_total"] = float64(m.m.connsRefused.Load())
	out["taobox_miner_handshakes_refused_total"] = float64(m.m.handshakesRefused.Load())
	out["taobox_miner_connections_open"] = float64(m.nconns.Load())
	out["taobox_miner_queue_depth"] = float64(m.q.len())
	out["taobox_miner_replay_cache_entries"] = float64(m.replay.len())
	out["taobox_miner_answer_seconds_mean"] = float64(m.m.serviceEWMA.Load()) / 1e9
	return out
}

// Rejects returns the rejection count of one code.
func (m *Miner) Rejects(c task.Code) int64 {
	if int(c) >= task.NumCodes {
		return 0
	}
	return m.m.rejects[c].Load()
}

// ServeHTTP writes Metrics in the Prometheus text format.
func (m *Miner) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	mt := m.Metrics()
	keys := make([]string, 0, len(mt))
	for k := range mt {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, k := range keys {
		fmt.Fprintf(w, "%s %g\n", k, mt[k])
	}
}
