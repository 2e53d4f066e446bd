package validator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/internal/obs"
)

// scrapeHTTP GETs a URL of a metrics listener with a real HTTP client: the
// status and, for /metrics, the samples by series (obs.Scrape).
func scrapeHTTP(t *testing.T, base, path string) (int, map[string]float64) {
	t.Helper()
	code, m, err := obs.Scrape(base + path)
	if err != nil {
		t.Fatal(err)
	}
	return code, m
}

// The validator's collector, fed by a driver loop like the CLI's over the
// real state machine, scraped over HTTP: rounds, per-uid tasks and scores,
// the pass ratio, the weights call and its window; /healthz follows the
// last round.
func TestMetricsScrapedOverHTTP(t *testing.T) {
	c, fn := chainNet(t, func(h *state.Hyperparams) { h.Tempo, h.WeightsRateLimit = 10, 15 }, "honest", "random", "honest")
	hk := types.AccountIDFromPrivateKey(keyN(0))
	m := NewMetrics(hk, 1)
	v, err := New(Config{
		Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash, Chain: c,
		Submit: m.CountSubmit(func(call types.Call) error { c.send(keyN(0), call); return nil }, nil),
		Client: fn, Rand: rand.New(rand.NewPCG(5, 5)), Tasks: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := obs.NewRegistry()
	reg.MustRegister(m)
	var h obs.Health
	h.Add("validator", m.Healthy)
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, &h))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()
	if code, _ := scrapeHTTP(t, base, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before a round: %d", code)
	}

	rep, err := v.Round(context.Background())
	m.ObserveRound(rep, err, v.Scores())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := scrapeHTTP(t, base, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after a good round: %d", code)
	}
	_, got := scrapeHTTP(t, base, "/metrics")
	info := fmt.Sprintf(`taobox_validator_info{hotkey="%s",netuid="1"}`, types.SS58Encode(hk))
	for series, want := range map[string]float64{
		info: 1,
		`taobox_validator_rounds_total{result="ok"}`:     1,
		`taobox_validator_rounds_total{result="error"}`:  0,
		`taobox_validator_tasks_sent_total{uid="1"}`:     1,
		`taobox_validator_tasks_sent_total{uid="2"}`:     1,
		`taobox_validator_tasks_answered_total{uid="2"}`: 1,
		`taobox_validator_tasks_passed_total{uid="1"}`:   1,
		`taobox_validator_tasks_passed_total{uid="2"}`:   0,
		`taobox_validator_tasks_passed_total{uid="3"}`:   1,
		"taobox_validator_verification_pass_ratio":       2.0 / 3,
		`taobox_validator_score{uid="2"}`:                0,
		"taobox_validator_round_seconds_count":           1,
		"taobox_validator_last_round_block":              float64(rep.Height),
	} {
		if g, ok := got[series]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, want)
		}
	}
	if got[`taobox_validator_miner_tokens_per_second{uid="1"}`] <= 0 || got[`taobox_validator_score{uid="1"}`] <= 0 || got[`taobox_validator_score{uid="3"}`] <= 0 {
		t.Errorf("honest miners' scores did not move: %v", got)
	}

	// Drive weights as the CLI does: window, maybe set, next block.
	win, err := v.NextWindow()
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveWindow(c.Height(), win)
	_, got = scrapeHTTP(t, base, "/metrics")
	left := fmt.Sprintf(`taobox_validator_weight_window_blocks{action="%s"}`, win.Action)
	if want := float64(win.Block - c.Height() - 1); win.Block <= c.Height()+1 || got[left] != want || got["taobox_validator_weight_window_block"] != float64(win.Block) {
		t.Fatalf("window %+v at height %d: %s = %v", win, c.Height(), left, got[left])
	}
	for c.Height() < win.Block+2 {
		if _, err := v.MaybeSetWeights(c.Height()); err != nil {
			t.Fatal(err)
		}
		c.block()
	}
	next, err := v.NextWindow()
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveWindow(c.Height(), next)
	_, got = scrapeHTTP(t, base, "/metrics")
	if got[`taobox_validator_weights_submissions_total{kind="set_weights",status="ok"}`] != 1 ||
		got["taobox_validator_weights_last_submit_timestamp_seconds"] <= 0 {
		t.Errorf("weights not counted: %v", got)
	}
	if got[fmt.Sprintf(`taobox_validator_weight_window_blocks{action="%s"}`, next.Action)] != float64(next.Block-c.Height()-1) {
		t.Errorf("window after the submission %+v at %d: %v", next, c.Height(), got)
	}

	// A failed round turns /healthz to 503 with the reason.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err = v.Round(ctx)
	m.ObserveRound(rep, err, v.Scores())
	if err == nil {
		t.Fatal("a cancelled round succeeded")
	}
	if code, _ := scrapeHTTP(t, base, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz after a failed round: %d", code)
	}
	if _, got = scrapeHTTP(t, base, "/metrics"); got[`taobox_validator_rounds_total{result="error"}`] != 1 {
		t.Errorf("failed round not counted")
	}
}

// CountSubmit labels refusals with the status function's word, counts
// only weights calls, and passes errors through.
func TestCountSubmitStatus(t *testing.T) {
	m := NewMetrics(types.AccountID{}, 3)
	refused := errors.New("nonce already used")
	f := m.CountSubmit(func(c types.Call) error {
		if _, ok := c.(types.RevealWeights); ok {
			return refused
		}
		return nil
	}, func(err error) string { return "nonce-used" })
	for _, c := range []types.Call{types.SetWeights{Netuid: 3}, types.RevealWeights{Netuid: 3}, types.Transfer{}} {
		if err := f(c); (err != nil) != (c.Kind() == types.KindRevealWeights) {
			t.Fatalf("%v: %v", c.Kind(), err)
		}
	}
	reg := obs.NewRegistry()
	reg.MustRegister(m)
	srv, err := obs.Listen("127.0.0.1:0", obs.Handler(reg, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, got := scrapeHTTP(t, "http://"+srv.Addr(), "/metrics")
	for series, want := range map[string]float64{
		`taobox_validator_weights_submissions_total{kind="set_weights",status="ok"}`:            1,
		`taobox_validator_weights_submissions_total{kind="reveal_weights",status="nonce-used"}`: 1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	for s := range got {
		if strings.Contains(s, "transfer") {
			t.Errorf("a transfer was counted: %s", s)
		}
	}
}
