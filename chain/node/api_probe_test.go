package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"taobox/chain/types"
)

// TestProbeAPI covers POST /v1/probe's handling: validation, the answer
// without a network ("no-peers") and the hook's request and report. The
// connect-back itself through real peers is tested in cmd/taobox
// (TestProbeThroughPeer, TestProbeAPIEndToEnd).
func TestProbeAPI(t *testing.T) {
	key, _ := testKey(7)
	body := func(v any) []byte { b, _ := json.Marshal(v); return b }
	good := body(map[string]any{"host": "203.0.113.7", "port": 8091, "key": key.String()})

	lone := serve(t, openNode(t, testConfig(t.TempDir(), testGenesis(1, 1))))
	var rep ProbeReport
	if st := lone.do("POST", "/v1/probe", good, &rep); st != http.StatusOK || rep.Verdict != ProbeNoPeers || rep.Reachable ||
		rep.Endpoint != "203.0.113.7:8091" || !strings.Contains(rep.Reason, "--p2p") {
		t.Fatalf("no network: status %d, %+v", st, rep)
	}
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"not JSON", []byte("{"), http.StatusBadRequest},
		{"unknown field", body(map[string]any{"host": "1.2.3.4", "port": 1, "key": key.String(), "x": 1}), http.StatusBadRequest},
		{"no host", body(map[string]any{"port": 1, "key": key.String()}), http.StatusBadRequest},
		{"port 0", body(map[string]any{"host": "1.2.3.4", "key": key.String()}), http.StatusBadRequest},
		{"no key", body(map[string]any{"host": "1.2.3.4", "port": 1}), http.StatusBadRequest},
		{"bad key", body(map[string]any{"host": "1.2.3.4", "port": 1, "key": "nope"}), http.StatusBadRequest},
		{"host with a path", body(map[string]any{"host": "1.2.3.4/x", "port": 1, "key": key.String()}), http.StatusBadRequest},
	} {
		var e map[string]string
		if st := lone.do("POST", "/v1/probe", c.body, &e); st != c.want || e["error"] == "" {
			t.Errorf("%s: status %d, %v; want %d with an error", c.name, st, e, c.want)
		}
	}
	if st := lone.get("/v1/probe", nil); st != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/probe: status %d", st)
	}

	var got []types.ProbeRequest
	cfg := testConfig(t.TempDir(), testGenesis(1, 1))
	cfg.Probe = func(ctx context.Context, q types.ProbeRequest) ProbeReport {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the hook got a context without a deadline")
		}
		got = append(got, q)
		return ProbeReport{Verdict: "reachable", Reachable: true, Peer: "p", Observed: "203.0.113.7", RTTMs: 3}
	}
	c := serve(t, openNode(t, cfg))
	rep = ProbeReport{}
	if st := c.do("POST", "/v1/probe", good, &rep); st != http.StatusOK || !rep.Reachable || rep.Endpoint != "203.0.113.7:8091" || rep.Observed != "203.0.113.7" {
		t.Fatalf("with a hook: status %d, %+v", st, rep)
	}
	if want := (types.ProbeRequest{Host: "203.0.113.7", Port: 8091, Key: key}); len(got) != 1 || got[0] != want {
		t.Fatalf("the hook got %+v, want [%+v]", got, want)
	}
}
