package dashboard

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"taobox/chain/node"
	"taobox/chain/types"
)

// testSnapshot is a full subnet of 8 uids at block 1000: uid 0 is the
// owner's, uid 2 (ours, a miner) has the lowest emission among the
// non-immune, uid 4 (ours, a validator) is immune.
func testSnapshot() (*Snapshot, []Account) {
	mg := metagraph(1000,
		neuron{0, 0, 1}, neuron{1, 500, 10}, neuron{2, 20, 30}, neuron{3, 300, 40},
		neuron{4, 900, 950}, neuron{5, 40, 60}, neuron{6, 800, 70}, neuron{7, 700, 80})
	mg.Neurons[2].Axon = node.AxonInfo{Host: "203.0.113.7", Port: 8091}
	mg.Neurons[4].ValidatorPermit = true
	mg.Neurons[4].LastUpdate = 990
	mg.Neurons[4].Stake = 1234_500_000_000
	sn := &node.SubnetInfo{Netuid: 1, OwnerHotkey: acct(0), N: 8, Burn: 2 * types.RaoPerTAO, Tempo: 100, LastEpoch: 950, EpochIndex: 9,
		Hyperparams: map[string]uint64{hpImmunity: 100, hpMaxUIDs: 8, hpRateLimit: 25, hpMinBurn: 500_000, hpMaxBurn: 100 * types.RaoPerTAO, hpBurnMult: 1260, hpHalfLife: 360}}
	fin, peers, syncing := uint64(999), 4, false
	s := &Snapshot{
		Taken:   time.UnixMilli(1_700_000_002_500),
		NodeURL: "http://127.0.0.1:7744",
		Head:    &Head{Height: 1000, TimeMs: 1_700_000_000_000, FinalizedHeight: &fin, Peers: &peers, Syncing: &syncing},
		Subnets: []node.SubnetInfo{{Netuid: 0}, {Netuid: 1}}, Netuid: 1, Subnet: sn, Metagraph: mg,
		Roles: []Role{
			{Name: "node", URL: "http://127.0.0.1:7744"},
			{Name: "miner", URL: "http://127.0.0.1:9100", Health: &Health{Status: "ok", Roles: map[string]RoleHealth{"miner": {OK: true, State: "serving"}}},
				Metrics: Metrics{{Name: "taobox_miner_tasks_served_total", Value: 42}, {Name: "taobox_miner_rejects_total", Labels: `code="busy"`, Value: 3}}},
			{Name: "validator", URL: "http://127.0.0.1:9101", Err: "cannot reach http://127.0.0.1:9101/healthz: connection refused"},
		},
		Probes: []Probe{{UID: 2, Addr: "203.0.113.7:8091", Reason: "no QUIC answer within 3s over UDP"}},
	}
	return s, []Account{{Name: "me/miner", Address: acct(2)}, {Name: "me/validator", Address: acct(4)}}
}

func TestRender(t *testing.T) {
	s, our := testSnapshot()
	out := Render(s, Options{Width: 200, Our: our, RiskK: 1})
	for _, want := range []string{
		"taobox status · node http://127.0.0.1:7744 · 2023-11-14 22:13:22 UTC",
		"!! uid 2 (me/miner) is AT RISK of pruning: the next registration replaces it",
		"!! validator: cannot reach",
		"!! uid 2 endpoint 203.0.113.7:8091 UNREACHABLE: no QUIC answer",
		"height 1000 · ", "2.5 s ago · finalized 999 (lag 1) · peers 4 · synced",
		"ok: miner serving · served 42 · rejected 3",
		"subnets   0 [1]",
		"n 8/8 · tempo 100 · epoch 9, next at block 1050 (in 50)",
		"τ2.0000 now · τ2.5200 after the next registration · halves every 360 blocks without one · range τ0.0005..τ100",
		"uid 4 me/validator", "validator permit · next weights window in 15 blocks (block 1015)",
		"immune for 49 more blocks",
		"eviction risk: number 1 of 6 non-immune by emission: AT RISK, the next registration replaces it",
		"sorted by emission ↓",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the frame lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a plain frame has escape codes")
	}
	if got := strings.Count(out, "»"); got != 2 {
		t.Errorf("%d rows marked ours, want 2:\n%s", got, out)
	}
	// Rows in emission order: 4 (900), 6, 7, 1, 3, 5, 2, 0.
	var uids []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "»")); len(f) > 2 && strings.HasSuffix(f[1], "…") {
			uids = append(uids, f[0])
		}
	}
	if want := []string{"4", "6", "7", "1", "3", "5", "2", "0"}; !slices.Equal(uids, want) {
		t.Errorf("row order %v, want %v", uids, want)
	}

	colored := Render(s, Options{Width: 200, Our: our, Color: true})
	if !strings.Contains(colored, "\x1b[") || ansi.Strip(colored) == colored {
		t.Error("a colour frame has no escape codes")
	}
}

func TestRenderWidthAndHeight(t *testing.T) {
	s, our := testSnapshot()
	for _, w := range []int{40, 80, 133} {
		for _, color := range []bool{false, true} {
			out := Render(s, Options{Width: w, Our: our, Color: color})
			for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
				if ansi.StringWidth(l) > w {
					t.Errorf("width %d color %v: a line of %d columns: %q", w, color, ansi.StringWidth(l), l)
				}
			}
		}
	}
	full := strings.Count(Render(s, Options{Width: 200, Our: our, Keys: true}), "\n")
	for _, h := range []int{full - 3, full - 5} {
		out := Render(s, Options{Width: 200, Height: h, Our: our, Keys: true})
		if n := strings.Count(out, "\n"); n > h {
			t.Errorf("height %d: %d lines", h, n)
		}
		if strings.Count(out, "»") != 2 || !strings.Contains(out, "more uids") {
			t.Errorf("height %d: our rows or the hidden count are missing:\n%s", h, out)
		}
	}
}

func TestRenderDegraded(t *testing.T) {
	out := Render(&Snapshot{NodeURL: "http://x", HeadErr: "cannot reach the node"}, Options{})
	if !strings.Contains(out, "!! node: cannot reach the node") || !strings.Contains(out, "chain     unknown") {
		t.Errorf("no node:\n%s", out)
	}
	s, _ := testSnapshot()
	s.Head.TimeMs = uint64(s.Taken.Add(-5 * time.Minute).UnixMilli())
	s.Head.FinalizedHeight = nil
	if out := Render(s, Options{}); !strings.Contains(out, "no new block for 5 min") || !strings.Contains(out, "finality not reported") {
		t.Errorf("stalled chain:\n%s", out)
	}
	if out := Render(s, Options{}); !strings.Contains(out, "no keys given") {
		t.Errorf("no keys:\n%s", out)
	}
	if out := Render(s, Options{Our: []Account{{Address: acct(77)}}}); !strings.Contains(out, "none of your 1 keys holds a uid on subnet 1") {
		t.Errorf("keys without uids:\n%s", out)
	}
}

func TestSortNeurons(t *testing.T) {
	mg := metagraph(100, neuron{0, 5, 1}, neuron{1, 9, 1}, neuron{2, 5, 1}, neuron{3, 1, 1})
	mg.Neurons[3].LastUpdate = 99
	for _, tc := range []struct {
		col     Column
		reverse bool
		want    []uint16
	}{
		{ColEmission, false, []uint16{1, 0, 2, 3}},
		{ColEmission, true, []uint16{3, 0, 2, 1}},
		{ColUID, false, []uint16{0, 1, 2, 3}},
		{ColUID, true, []uint16{3, 2, 1, 0}},
		{ColUpdated, false, []uint16{3, 0, 1, 2}},
	} {
		var got []uint16
		for _, i := range SortNeurons(mg, tc.col, tc.reverse) {
			got = append(got, mg.Neurons[i].UID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s reverse %v: %v, want %v", tc.col, tc.reverse, got, tc.want)
		}
	}
	for c := range numColumns {
		if p, err := ParseColumn(c.String()); err != nil || p != c {
			t.Errorf("ParseColumn(%q) = %v, %v", c, p, err)
		}
	}
	if _, err := ParseColumn("rank"); err == nil {
		t.Error("ParseColumn accepted rank")
	}
	if ColUpdated.Next() != ColEmission {
		t.Error("Next does not wrap")
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{850 * time.Millisecond: "850 ms", 4200 * time.Millisecond: "4.2 s", 3 * time.Minute: "3 min", 125 * time.Minute: "2 h 5 min", -time.Second: "0 ms"} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", d, got, want)
		}
	}
	for rao, want := range map[uint64]string{0: "0", 1: "0.000000001", 1_500_000_000: "1.5"} {
		if got := formatTAO(rao); got != want {
			t.Errorf("formatTAO(%d) = %q, want %q", rao, got, want)
		}
	}
	if got := fmt.Sprint(formatNumber(3), formatNumber(0.25), formatNumber(1e20)); got != "30.251e+20" {
		t.Errorf("formatNumber: %q", got)
	}
}

func TestRenderRoleMetrics(t *testing.T) {
	s, our := testSnapshot()
	s.Head.FinalizedHeight, s.Head.Peers, s.Head.Syncing = nil, nil, nil
	page := `taobox_node_height 1000
taobox_node_finalized_height 998
taobox_node_peers 5
taobox_node_sync_progress_ratio 0.5
taobox_node_consensus_halted 1
`
	nm, err := ParseMetrics([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := ParseMetrics([]byte(`taobox_validator_rounds_total{result="ok"} 7
taobox_validator_rounds_total{result="error"} 1
taobox_validator_verification_pass_ratio 0.75
taobox_validator_weights_submissions_total{kind="set_weights",status="ok"} 3
taobox_validator_weights_submissions_total{kind="set_weights",status="rate limited"} 1
taobox_validator_weight_window_blocks{action="set"} 4
`))
	if err != nil {
		t.Fatal(err)
	}
	s.Roles[0].Metrics = nm
	s.Roles[2] = Role{Name: "validator", URL: "http://v", Metrics: vm}
	out := Render(s, Options{Width: 250, Our: our})
	for _, want := range []string{
		"finalized 998 (lag 2, node metrics) · peers 5 · syncing (50.0%)",
		"!! node: consensus HALTED",
		"height 1000 · finalized 998 · peers 5 · sync 50% · consensus HALTED",
		"validator up (no /healthz) · rounds 8 · last round pass 75% · weights ok 3, refused 1 · weight window in 4 blocks (set)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the frame lacks %q:\n%s", want, out)
		}
	}
	if got := highlights("gateway", Metrics{{Name: "taobox_gateway_thing", Value: 2}, {Name: "taobox_miner_x", Value: 1}, {Name: "go_goroutines", Value: 9}}); !slices.Equal(got, []string{"thing 2"}) {
		t.Errorf("fallback highlights %v", got)
	}
	// A miner on the GPU under a flood.
	miner := Metrics{{Name: "taobox_miner_tasks_served_total", Value: 40}, {Name: "taobox_miner_accel_answers_total", Value: 38},
		{Name: "taobox_miner_accel_failovers_total", Value: 1}, {Name: "taobox_miner_initial_drop_active", Labels: `scope="all"`, Value: 0},
		{Name: "taobox_miner_initial_drop_active", Labels: `scope="ip"`, Value: 3}}
	if got, want := highlights("miner", miner), []string{"served 40", "on the GPU 38", "GPU failovers 1", "flood: dropping 3 sources"}; !slices.Equal(got, want) {
		t.Errorf("miner highlights %q, want %q", got, want)
	}
	miner[3].Value = 1
	if got := highlights("miner", miner); !slices.Contains(got, "flood: dropping new connections") || slices.Contains(got, "flood: dropping 3 sources") {
		t.Errorf("miner highlights while dropping every source: %q", got)
	}
	// A page shared by roles (the devnet's): each role shows its own.
	shared := append(append(Metrics{}, nm...), vm...)
	if got := highlights("miner", shared); len(got) != 0 {
		t.Errorf("a miner's highlights from node and validator metrics: %v", got)
	}
	for labels, want := range map[string]string{`action="set"`: "set", `a="1",action="commit"`: "commit", `x="a\"b",action="q\"x"`: `q"x`, `other="1"`: "", ``: ""} {
		if got := labelValue(labels, "action"); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", labels, got, want)
		}
	}
}
