package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"taobox/chain/types"
	"taobox/internal/obs"
)

// metricsGet GETs a URL of a metrics listener with a real HTTP client: the
// status and, for /metrics, the samples by series (obs.Scrape).
func metricsGet(t *testing.T, base, path string) (int, map[string]float64) {
	t.Helper()
	code, m, err := obs.Scrape(base + path)
	if err != nil {
		t.Fatal(err)
	}
	return code, m
}

// The node's collector on a process registry, scraped over HTTP around
// real blocks: height, block contents, refusals by code, the hooks, and
// /healthz turning 503 when the head stops advancing.
func TestMetricsScrapedOverHTTP(t *testing.T) {
	n := openNode(t, testConfig(t.TempDir(), testGenesis(4, 100*tao)))
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	m := NewMetrics(n, MetricsOptions{BlockTime: 12 * time.Second, StallBlocks: 3, Now: clock,
		Peers: func() float64 { return 2 }})
	reg := obs.NewRegistry()
	reg.MustRegister(m)
	var h obs.Health
	h.Add("node", m.Healthy)
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, &h))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); m.Follow(ctx) }()
	defer func() { cancel(); <-followed }()

	_, got := metricsGet(t, base, "/metrics")
	if got["taobox_node_height"] != 0 || got["taobox_node_blocks_total"] != 0 || got["taobox_node_peers"] != 2 {
		t.Fatalf("at genesis: %v", got)
	}
	if _, ok := got["taobox_node_sync_progress_ratio"]; ok {
		t.Error("sync progress exported without its hook")
	}

	chain := n.ChainID()
	mustSubmit(t, n, sign(0, 0, 10, types.Transfer{To: id(1), Amount: tao}, chain))
	mustSubmit(t, n, sign(1, 0, 10, types.Transfer{To: id(2), Amount: tao}, chain))
	dup := sign(0, 0, 10, types.Transfer{To: id(1), Amount: tao}, chain)
	_, err = n.Submit(&dup) // counted by the node's hook, once
	if re := (*RejectError)(nil); !errors.As(err, &re) || re.Code != RejectDuplicate {
		t.Fatalf("a duplicate: %v", err)
	}
	if m.CountReject(fmt.Errorf("not a refusal")) {
		t.Fatal("CountReject counted a plain error")
	}
	mustProduce(t, n)
	mustProduce(t, n)

	// Follow counts from the block stream: wait until it has seen both.
	for {
		if _, got = metricsGet(t, base, "/metrics"); got["taobox_node_blocks_total"] == 2 {
			break
		}
		if t.Context().Err() != nil {
			t.Fatalf("Follow never counted 2 blocks: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hdr := n.HeadHeader()
	for series, want := range map[string]float64{
		"taobox_node_height":                                 2,
		"taobox_node_finalized_height":                       2,
		"taobox_node_finality_lag_blocks":                    0,
		"taobox_node_block_txs_sum":                          2,
		"taobox_node_block_txs_count":                        2,
		`taobox_node_block_txs_bucket{le="0"}`:               1,
		`taobox_node_tx_rejections_total{code="duplicate"}`:  1,
		`taobox_node_tx_rejections_total{code="nonce_used"}`: 0,
		"taobox_node_block_apply_seconds_count":              2, // one per block, from its BlockInfo
		"taobox_node_head_timestamp_seconds":                 float64(hdr.TimeMs) / 1000,
		"taobox_node_consensus_halted":                       0,
	} {
		if g, ok := got[series]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, want)
		}
	}

	// /healthz: fresh head 200, a head older than 3 block times 503.
	setNow(time.UnixMilli(int64(hdr.TimeMs)).Add(time.Second))
	if code, _ := metricsGet(t, base, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with a fresh head: %d", code)
	}
	setNow(time.UnixMilli(int64(hdr.TimeMs)).Add(37 * time.Second))
	if code, _ := metricsGet(t, base, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with a stale head: %d", code)
	}
	if _, got = metricsGet(t, base, "/metrics"); got["taobox_node_head_age_seconds"] != 37 {
		t.Errorf("head age %v, want 37", got["taobox_node_head_age_seconds"])
	}
}
