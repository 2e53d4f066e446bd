package validator

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/types"
)

// Metrics is a validator's Prometheus collector. The driver that runs
// Round and MaybeSetWeights feeds it (ObserveRound, ObserveWindow, and the
// Submit wrapper CountSubmit); it does not call the chain itself, so a
// scrape never waits on the node. Register it once on the process
// registry. Its methods are safe for concurrent use. docs/metrics.md lists
// the series.
type Metrics struct {
	info         prometheus.Gauge
	rounds       *prometheus.CounterVec // result: ok, error
	roundSeconds prometheus.Histogram
	lastRound    prometheus.Gauge
	sent         *prometheus.CounterVec // uid
	answered     *prometheus.CounterVec // uid
	passed       *prometheus.CounterVec // uid
	passRatio    prometheus.Gauge
	score        *prometheus.GaugeVec   // uid
	speed        *prometheus.GaugeVec   // uid
	weights      *prometheus.CounterVec // kind, status
	lastSubmit   prometheus.Gauge
	window       *prometheus.GaugeVec // action
	windowBlock  prometheus.Gauge
	all          []prometheus.Collector

	mu      sync.Mutex // guards the fields below, and Reset-then-Set of the vectors against Collect
	nrounds uint64     // rounds observed
	last    uint64     // the last round's number
	lastErr error      // of the last round
}

// NewMetrics returns the collector of the validator hotkey on netuid.
func NewMetrics(hotkey types.AccountID, netuid uint16) *Metrics {
	uid := []string{"uid"}
	m := &Metrics{
		info: prometheus.NewGauge(prometheus.GaugeOpts{Name: "taobox_validator_info",
			Help:        "The validator's hotkey and subnet; always 1.",
			ConstLabels: prometheus.Labels{"hotkey": types.SS58Encode(hotkey), "netuid": strconv.Itoa(int(netuid))}}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_validator_rounds_total",
			Help: "Task rounds run, by result: ok, or error (metagraph unavailable, cancelled, scores not saved)."}, []string{"result"}),
		roundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "taobox_validator_round_seconds",
			Help: "Time of one round: querying every miner, verifying, scoring, saving.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		lastRound: prometheus.NewGauge(prometheus.GaugeOpts{Name: "taobox_validator_last_round_block",
			Help: "The chain height at the start of the last successful round."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_validator_tasks_sent_total",
			Help: "Tasks sent, by miner uid."}, uid),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_validator_tasks_answered_total",
			Help: "Tasks that came back with at least one token, by miner uid."}, uid),
		passed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_validator_tasks_passed_total",
			Help: "Tasks whose answer verified (signature, chain, teacher-forced log-probs), by miner uid."}, uid),
		passRatio: prometheus.NewGauge(prometheus.GaugeOpts{Name: "taobox_validator_verification_pass_ratio",
			Help: "Of the last round's tasks, the fraction whose answer verified (0 when no task was sent)."}),
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "taobox_validator_score",
			Help: "The moving-average score per uid after the last round (the weights follow it)."}, uid),
		speed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "taobox_validator_miner_tokens_per_second",
			Help: "Tokens per second each miner served in the last round (tokens over the sum of response times)."}, uid),
		weights: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taobox_validator_weights_submissions_total",
			Help: "Weights calls submitted, by kind (set_weights, commit_weights, reveal_weights) and status: ok (queued by the node) or why not."},
			[]string{"kind", "status"}),
		lastSubmit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "taobox_validator_weights_last_submit_timestamp_seconds",
			Help: "Unix time of the last weights call the node accepted."}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "taobox_validator_weight_window_blocks",
			Help: "Blocks until the next weight window opens (0: open now), with the action it allows: set, commit or reveal."}, []string{"action"}),
		windowBlock: prometheus.NewGauge(prometheus.GaugeOpts{Name: "taobox_validator_weight_window_block",
			Help: "The first block of the next weight window."}),
	}
	m.info.Set(1)
	m.all = []prometheus.Collector{m.info, m.rounds, m.roundSeconds, m.lastRound, m.sent, m.answered, m.passed,
		m.passRatio, m.score, m.speed, m.weights, m.lastSubmit, m.window, m.windowBlock}
	for _, r := range []string{"ok", "error"} {
		m.rounds.WithLabelValues(r)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// ObserveRound records what Round returned, and scores, the per-uid
// records after it (Validator.Scores).
func (m *Metrics) ObserveRound(rep RoundReport, err error, scores []Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nrounds++
	m.lastErr = err
	if err == nil {
		m.last = rep.Round
	}
	if err != nil {
		m.rounds.WithLabelValues("error").Inc()
		return
	}
	m.rounds.WithLabelValues("ok").Inc()
	m.roundSeconds.Observe(rep.Duration.Seconds())
	m.lastRound.Set(float64(rep.Height))
	var tasks, passed int
	m.speed.Reset()
	for _, r := range rep.Miners {
		u := strconv.Itoa(int(r.UID))
		m.sent.WithLabelValues(u).Add(float64(r.Tasks))
		m.answered.WithLabelValues(u).Add(float64(r.Answered))
		m.passed.WithLabelValues(u).Add(float64(r.Passed))
		m.speed.WithLabelValues(u).Set(r.TokensPerSec)
		tasks += r.Tasks
		passed += r.Passed
	}
	if tasks > 0 {
		m.passRatio.Set(float64(passed) / float64(tasks))
	} else {
		m.passRatio.Set(0)
	}
	m.score.Reset()
	for _, r := range scores {
		m.score.WithLabelValues(strconv.Itoa(int(r.UID))).Set(r.Score)
	}
}

// ObserveWindow records the next weight window w (Validator.NextWindow) as
// seen at chain height.
func (m *Metrics) ObserveWindow(height uint64, w Window) {
	m.mu.Lock()
	defer m.mu.Unlock()
	left := 0.0
	if w.Block > height+1 {
		left = float64(w.Block - height - 1) // the next block is height+1
	}
	m.window.Reset()
	m.window.WithLabelValues(w.Action).Set(left)
	m.windowBlock.Set(float64(w.Block))
}

// CountSubmit wraps the Config.Submit function f so that every weights
// call it sends (set, commit, reveal) is counted by kind and status:
// status(err), "ok" for nil. A nil status labels every error "error";
// give one that maps the node's refusals to their codes (a small, fixed set
// of values: label values must not carry free text). Other calls pass
// through uncounted.
func (m *Metrics) CountSubmit(f func(types.Call) error, status func(error) string) func(types.Call) error {
	return func(c types.Call) error {
		err := f(c)
		switch c.Kind() {
		case types.KindSetWeights, types.KindCommitWeights, types.KindRevealWeights:
		default:
			return err
		}
		st := "ok"
		if err != nil {
			st = "error"
			if status != nil {
				st = status(err)
			}
		}
		m.weights.WithLabelValues(c.Kind().String(), st).Inc()
		if err == nil {
			m.lastSubmit.Set(float64(time.Now().UnixNano()) / 1e9)
		}
		return err
	}
}

// Healthy is the validator's /healthz check: healthy once a round has
// finished and while the last one succeeded.
func (m *Metrics) Healthy() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.nrounds == 0:
		return "starting", errors.New("no round finished yet")
	case m.lastErr != nil:
		return "round failed", fmt.Errorf("the last round failed: %v", m.lastErr)
	}
	return fmt.Sprintf("round %d ok", m.last), nil
}
