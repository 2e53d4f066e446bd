package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/types"
)

// MetricsOptions configures NewMetrics. Zero values take the defaults
// given; a nil hook leaves its series out (nothing is exported that is not
// measured).
type MetricsOptions struct {
	// BlockTime is the expected interval between blocks (Config.BlockTime);
	// /healthz fails when the head is older than StallBlocks of them.
	// Default DefaultBlockTime.
	BlockTime time.Duration
	// StallBlocks is how many block times the head may age before the node
	// is unhealthy. Default 5.
	StallBlocks int
	// Now is the clock for the head's age. Default time.Now.
	Now func() time.Time
	// Peers returns the number of connected peers (taobox_node_peers).
	Peers func() float64
	// SyncProgress returns the state sync progress from 0 to 1
	// (taobox_node_sync_progress_ratio); 1 once following the tip.
	SyncProgress func() float64
	// MempoolSize returns the pending transactions (taobox_node_mempool_txs).
	// Default: the node's PendingTxs.
	MempoolSize func() float64
}

// Metrics is the node's Prometheus collector: head and finality, block
// contents (from Subscribe), consensus position (ConsensusState), block
// timings and transaction refusals (fed through ObserveBlockTimes and
// CountReject), and the hooks of MetricsOptions. It reads the node only
// through its exported methods. Register it once on the process registry
// and run Follow. docs/metrics.md lists the series.
type Metrics struct {
	n    *Node
	opts MetricsOptions

	blocks      prometheus.Counter
	txs         prometheus.Histogram
	failedTxs   prometheus.Counter
	epochs      prometheus.Counter
	apply, root prometheus.Histogram
	commit      prometheus.Histogram
	rejects     *prometheus.CounterVec
	own         []prometheus.Collector
}

var (
	descHeight    = prometheus.NewDesc("taobox_node_height", "Height of the last committed block.", nil, nil)
	descFinalized = prometheus.NewDesc("taobox_node_finalized_height", "Height of the last final block.", nil, nil)
	descLag       = prometheus.NewDesc("taobox_node_finality_lag_blocks", "Committed blocks not yet final (0 with instant BFT finality).", nil, nil)
	descHeadTime  = prometheus.NewDesc("taobox_node_head_timestamp_seconds", "Unix time in the head block's header.", nil, nil)
	descHeadAge   = prometheus.NewDesc("taobox_node_head_age_seconds", "Seconds since the head block's timestamp.", nil, nil)
	descRound     = prometheus.NewDesc("taobox_node_consensus_round", "Consensus round at the height being decided (0: decided in the first round).", nil, nil)
	descVals      = prometheus.NewDesc("taobox_node_consensus_validators", "Validators in the authority set of the height being decided.", nil, nil)
	descSelf      = prometheus.NewDesc("taobox_node_consensus_is_validator", "1 when this node is in the authority set, 0 for a follower.", nil, nil)
	descHalted    = prometheus.NewDesc("taobox_node_consensus_halted", "1 when consensus stopped on an error (see the logs), 0 while it runs.", nil, nil)
	descPeers     = prometheus.NewDesc("taobox_node_peers", "Connected peers.", nil, nil)
	descSync      = prometheus.NewDesc("taobox_node_sync_progress_ratio", "State sync progress, 0 to 1; 1 when following the tip.", nil, nil)
	descMempool   = prometheus.NewDesc("taobox_node_mempool_txs", "Transactions pending in the mempool.", nil, nil)
)

// NewMetrics returns the collector of n.
func NewMetrics(n *Node, o MetricsOptions) *Metrics {
	if o.BlockTime <= 0 {
		o.BlockTime = DefaultBlockTime
	}
	if o.StallBlocks <= 0 {
		o.StallBlocks = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MempoolSize == nil {
		o.MempoolSize = func() float64 { return float64(n.PendingTxs()) }
	}
	secs := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}) // 0.5 ms .. 16 s
	}
	m := &Metrics{n: n, opts: o,
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "taobox_node_blocks_total",
			Help: "Blocks committed since the process started."}),
		txs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "taobox_node_block_txs",
			Help: "Transactions per committed block.", Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}}),
		failedTxs: prometheus.NewCounter(prometheus.CounterOpts{Name: "taobox_node_txs_failed_total",
			Help: "Transactions included in a block whose call failed (TxFailed events; the fee is still paid)."}),
		epochs: prometheus.NewCounter(prometheus.CounterOpts{Name: "taobox_node_subnet_epochs_total",
			Help: "Subnet Yuma epochs run in committed blocks."}),
		apply:  secs("taobox_node_block_apply_seconds", "Time to apply a block's transactions to the state."),
		root:   secs("taobox_node_block_root_seconds", "Time to compute a block's state root."),
		commit: secs("taobox_node_block_commit_seconds", "Time to write a block to the store (one batch)."),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_node_tx_rejections_total",
			Help: "Transactions refused by the mempool, by reject code."}, []string{"code"}),
	}
	// blocks first: ObserveBlock counts a block last.
	m.own = []prometheus.Collector{m.blocks, m.txs, m.failedTxs, m.epochs, m.apply, m.root, m.commit, m.rejects}
	count := func(err error) { m.CountReject(err) }
	n.onReject.Store(&count) // refusals of Submit and POST /v1/tx
	for c := RejectMalformed; c <= RejectCannotPayFee; c++ {
		m.rejects.WithLabelValues(c.String())
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.own {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{descHeight, descFinalized, descLag, descHeadTime, descHeadAge, descRound, descVals, descSelf, descHalted} {
		ch <- d
	}
	if m.opts.Peers != nil {
		ch <- descPeers
	}
	if m.opts.SyncProgress != nil {
		ch <- descSync
	}
	if m.opts.MempoolSize != nil {
		ch <- descMempool
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.own {
		c.Collect(ch)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	hdr := m.n.HeadHeader()
	fin, _ := m.n.Finalized()
	gauge(descHeight, float64(hdr.Height))
	gauge(descFinalized, float64(fin))
	gauge(descLag, float64(hdr.Height-min(fin, hdr.Height)))
	gauge(descHeadTime, float64(hdr.TimeMs)/1000)
	gauge(descHeadAge, m.headAge(hdr).Seconds())
	cs := m.n.ConsensusState()
	gauge(descRound, float64(cs.Round))
	gauge(descVals, float64(len(cs.Validators)))
	gauge(descSelf, b2f(cs.SelfIndex >= 0))
	gauge(descHalted, b2f(cs.Halted != ""))
	if m.opts.Peers != nil {
		gauge(descPeers, m.opts.Peers())
	}
	if m.opts.SyncProgress != nil {
		gauge(descSync, m.opts.SyncProgress())
	}
	if m.opts.MempoolSize != nil {
		gauge(descMempool, m.opts.MempoolSize())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) headAge(hdr types.Header) time.Duration {
	return max(0, m.opts.Now().Sub(time.UnixMilli(int64(hdr.TimeMs))))
}

// Follow counts the committed blocks (transactions, failed transactions,
// subnet epochs) from the node's block stream until ctx ends or the node
// closes. Run it in its own goroutine. A block the stream drops (a slow
// subscriber) is not counted.
func (m *Metrics) Follow(ctx context.Context) {
	blocks, cancel := m.n.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case b, ok := <-blocks:
			if !ok {
				return
			}
			m.ObserveBlock(b)
		}
	}
}

// ObserveBlock counts one committed block (Follow calls it). The block
// count moves last and Collect reads it first, so a scrape that counts a
// block also holds that block's other series.
func (m *Metrics) ObserveBlock(b BlockInfo) {
	defer m.blocks.Inc()
	m.txs.Observe(float64(len(b.Txs)))
	if b.Root > 0 || b.Commit > 0 {
		m.ObserveBlockTimes(b.Apply, b.Root, b.Commit)
	}
	for _, ev := range b.Events {
		switch {
		case ev.Kind == types.EvTxFailed:
			m.failedTxs.Inc()
		case ev.Kind == types.EvEpoch && ev.Netuid != 0:
			m.epochs.Inc()
		}
	}
}

// ObserveBlockTimes records where the time of one block went; ObserveBlock
// calls it with the BlockInfo's timings.
func (m *Metrics) ObserveBlockTimes(apply, root, commit time.Duration) {
	m.apply.Observe(apply.Seconds())
	m.root.Observe(root.Seconds())
	m.commit.Observe(commit.Seconds())
}

// CountReject counts err when it is a mempool refusal (*RejectError), by
// its code, and reports whether it was one. Call it with Submit's error.
func (m *Metrics) CountReject(err error) bool {
	var re *RejectError
	if !errors.As(err, &re) {
		return false
	}
	m.rejects.WithLabelValues(re.Code.String()).Inc()
	return true
}

// Healthy is the node's /healthz check: healthy while consensus runs and
// the head is younger than StallBlocks block times.
func (m *Metrics) Healthy() (string, error) {
	hdr := m.n.HeadHeader()
	state := fmt.Sprintf("head %d", hdr.Height)
	if cs := m.n.ConsensusState(); cs.Halted != "" {
		return state, fmt.Errorf("consensus halted: %s", cs.Halted)
	}
	limit := time.Duration(m.opts.StallBlocks) * m.opts.BlockTime
	if age := m.headAge(hdr); age > limit {
		return state, fmt.Errorf("head %d is %v old, more than %d block times of %v: blocks are not being made or received (check the authorities and peers)",
			hdr.Height, age.Round(time.Millisecond), m.opts.StallBlocks, m.opts.BlockTime)
	}
	return state, nil
}
