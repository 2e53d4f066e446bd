package miner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/types"
	"taobox/internal/obs"
	"taobox/task"
)

// metricsScrape GETs url/metrics with a real HTTP client and returns the samples
// by series name (labels as exposed, in name order).
func metricsScrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// metricsWait polls cond until it holds (the test's own timeout bounds it).
func metricsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The miner's collector on a process registry, scraped over HTTP while the
// real tiny model serves: counts move with served and refused tasks, the
// queue and in-flight gauges follow a blocked answer, /healthz turns 200
// once Serve accepts.
func TestMetricsScrapedOverHTTP(t *testing.T) {
	release := make(chan struct{})
	honest := ModelAnswer(tinyModel(t), nil)
	blocking := func(ctx context.Context, b task.Body, emit func(task.Token) error) error {
		if b.Seed == 99 { // the held task
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return honest(ctx, b, emit)
	}
	m, err := New(Config{Key: minerKey, Netuid: testNetuid, Chain: newFakeChain(), ModelHash: testModelHash,
		Answer: blocking, Limits: Limits{MinStake: testMinStake}})
	if err != nil {
		t.Fatal(err)
	}
	reg := obs.NewRegistry()
	reg.MustRegister(m.Collector())
	var h obs.Health
	h.Add("miner", m.Healthy)
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, &h))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()
	health := func() int {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := health(); c != http.StatusServiceUnavailable {
		t.Fatalf("healthz before Serve: %d", c)
	}
	before := metricsScrape(t, base)
	info := fmt.Sprintf(`taobox_miner_info{hotkey="%s",model_sha256="%x",netuid="%d"}`, types.SS58Encode(minerID), testModelHash, testNetuid)
	if before[info] != 1 || before["taobox_miner_tasks_served_total"] != 0 || before["taobox_miner_tokens_per_second"] != 0 {
		t.Fatalf("before serving: %v", before)
	}

	tm := serveMiner(t, m)
	if c := health(); c != http.StatusOK {
		t.Fatalf("healthz while serving: %d", c)
	}
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	b := task.Body{PromptIDs: []uint32{1, 5, 9}, MaxTokens: 6, ModelHash: testModelHash}
	if _, err := c.Query(context.Background(), tm.addr, minerID, b); err != nil {
		t.Fatal(err)
	}
	stranger := newClient(strangerKey, task.ClientOptions{})
	defer stranger.Close()
	if res, err := stranger.Query(context.Background(), tm.addr, minerID, b); err != nil || res.Reject == nil || res.Reject.Code != task.CodeUnregistered {
		t.Fatalf("an unregistered sender: %v, %+v", err, res)
	}

	// Hold one answer in the model, queue another behind it.
	held, queued := b, b
	held.Seed, queued.Seed = 99, 1
	errs := make(chan error, 2)
	go func() { _, err := c.Query(context.Background(), tm.addr, minerID, held); errs <- err }()
	metricsWait(t, "the held task in flight", func() bool { return metricsScrape(t, base)["taobox_miner_in_flight"] == 1 })
	go func() { _, err := c.Query(context.Background(), tm.addr, minerID, queued); errs <- err }()
	metricsWait(t, "the second task queued", func() bool { return metricsScrape(t, base)["taobox_miner_queue_depth"] == 1 })
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	after := metricsScrape(t, base)
	for series, want := range map[string]float64{
		"taobox_miner_tasks_served_total":                     3,
		"taobox_miner_tokens_total":                           18,
		`taobox_miner_rejects_total{code="unregistered"}`:     1,
		`taobox_miner_rejects_total{code="busy"}`:             0,
		"taobox_miner_queue_depth":                            0,
		"taobox_miner_in_flight":                              0,
		"taobox_miner_connections_total":                      2,
		"taobox_miner_streams_total":                          4,
		info:                                                  1,
		`taobox_miner_rejects_total{code="model-mismatch"}`:   0,
		`taobox_miner_rejects_total{code="shutting-down"}`:    0,
		`taobox_miner_rejects_total{code="too-many-streams"}`: 0,
	} {
		if got, ok := after[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if after["taobox_miner_tokens_per_second"] <= 0 || after["taobox_miner_answer_seconds_mean"] <= 0 {
		t.Errorf("speed gauges did not move: %v tok/s, %v s", after["taobox_miner_tokens_per_second"], after["taobox_miner_answer_seconds_mean"])
	}
	if after["go_goroutines"] <= 0 {
		t.Error("no Go collector on the process registry")
	}
	// Metrics, for tools and tests, names the same series.
	mt := m.Metrics()
	if mt[info] != 1 || mt["taobox_miner_tasks_served_total"] != 3 {
		t.Errorf("Metrics() = %v", mt)
	}
}

// serveMiner serves an already built miner on 127.0.0.1 until the test
// ends.
func serveMiner(t *testing.T, m *Miner) *testMiner {
	t.Helper()
	tm := &testMiner{Miner: m, done: make(chan error, 1)}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tm.pc = pc
	ctx, cancel := context.WithCancel(context.Background())
	tm.cancel = cancel
	go func() { tm.done <- m.Serve(ctx, tm.pc) }()
	<-m.Ready()
	tm.addr = m.Addr().String()
	t.Cleanup(func() {
		cancel()
		<-tm.done
		tm.pc.Close()
	})
	return tm
}

// BenchmarkGather is the cost of one scrape of the miner's collector
// (gathering, not the HTTP encoding).
func BenchmarkGather(b *testing.B) {
	m, err := New(Config{Key: minerKey, Netuid: testNetuid, Chain: newFakeChain(), ModelHash: testModelHash, Answer: fixedAnswer(1)})
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// /healthz fails while the miner has no chain state (every task refused,
// internal, with a message that says so) and when its state is over a
// minute old because the chain cannot be read; it holds through a brief
// outage.
func TestHealthTracksChainState(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ch := newFakeChain()
	ch.setErr(errors.New("connection refused"))
	tm := startMiner(t, Config{Chain: ch, Now: clock})
	if _, err := tm.Healthy(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("healthy without chain state: %v", err)
	}
	c := newClient(valKey, task.ClientOptions{Now: clock})
	defer c.Close()
	res, err := c.Query(context.Background(), tm.addr, minerID, body(1))
	if err != nil || res.Reject == nil || res.Reject.Code != task.CodeInternal || !strings.Contains(res.Reject.Message, "chain state") {
		t.Fatalf("a task without chain state: %v %+v", err, res)
	}
	ch.setErr(nil)
	// Within ChainRefresh of a failed read a request gets that failure
	// without another read; a health probe reads again. (Serve's start
	// warning reads once too, on its own goroutine: wait for it.)
	for deadline := time.Now().Add(5 * time.Second); ch.calls() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Serve's start check never read the chain")
		}
	}
	calls := ch.calls()
	res, err = c.Query(context.Background(), tm.addr, minerID, body(1))
	if err != nil || res.Reject == nil || res.Reject.Code != task.CodeInternal || ch.calls() != calls {
		t.Fatalf("within ChainRefresh of a failed read: %v %+v, %d more reads", err, res, ch.calls()-calls)
	}
	if state, err := tm.Healthy(); err != nil || state != "serving" {
		t.Fatalf("with chain state: %q %v", state, err)
	}
	ch.setErr(errors.New("node restarting"))
	advance(5 * time.Second)
	if _, err := tm.Healthy(); err != nil {
		t.Fatalf("5 s into an outage: %v", err)
	}
	advance(staleSenders)
	if _, err := tm.Healthy(); err == nil || !strings.Contains(err.Error(), "node restarting") {
		t.Fatalf("a minute into an outage: %v", err)
	}
}
