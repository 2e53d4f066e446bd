package p2p

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPeers = prometheus.NewDesc("taobox_p2p_peers",
		"Connected peers whose Hello is done, by direction (inbound, outbound).", []string{"direction"}, nil)
	descHandshakes = prometheus.NewDesc("taobox_p2p_handshakes_pending",
		"Inbound handshakes in progress that hold no inbound slot yet, by address (unproven: may be spoofed; proven: by a Retry).", []string{"address"}, nil)
	descRejects = prometheus.NewDesc("taobox_p2p_rejects_total",
		"Refused connections, messages and responses, by reason (docs/p2p.md).", []string{"reason"}, nil)
	descBans = prometheus.NewDesc("taobox_p2p_bans_total",
		"Peers banned.", nil, nil)
	descBytes = prometheus.NewDesc("taobox_p2p_payload_bytes_total",
		"Payload bytes of gossip, requests and responses, by direction (in, out).", []string{"direction"}, nil)
	descPending = prometheus.NewDesc("taobox_p2p_response_bytes_pending",
		"Bytes of responses being written to peers now (held until the peers read them).", nil, nil)
)

// Collector returns the host's counters (Stats) as a Prometheus collector
// that reads them at each scrape; register it once on the process
// registry. The series are listed in docs/p2p.md ("Metrics").
func (h *Host) Collector() prometheus.Collector { return (*collector)(h) }

type collector Host

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeers, descHandshakes, descRejects, descBans, descBytes, descPending} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := (*Host)(c).Stats()
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(s.Inbound), "inbound")
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(s.Outbound), "outbound")
	ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.GaugeValue, float64(s.HandshakesUnproven), "unproven")
	ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.GaugeValue, float64(s.HandshakesProven), "proven")
	for _, r := range slices.Sorted(maps.Keys(s.Rejects)) {
		ch <- prometheus.MustNewConstMetric(descRejects, prometheus.CounterValue, float64(s.Rejects[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descBans, prometheus.CounterValue, float64(s.Bans))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.BytesOut), "out")
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.PendingResponseBytes))
}
