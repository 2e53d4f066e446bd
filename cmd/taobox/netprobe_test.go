package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/dashboard"
	"taobox/internal/syncbuf"
	"taobox/miner"
	"taobox/miner/minertest"
	"taobox/wallet"
)

// probeClock is a settable clock for the probe rate limit.
type probeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *probeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *probeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startProbeMiner serves a real miner on a loopback UDP port.
func startProbeMiner(t *testing.T) (uint16, types.AccountID) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port := minertest.Serve(t, miner.Config{Key: key, Netuid: 1, Chain: minertest.EmptyChain{}, Answer: miner.RandomAnswer(32, 1)})
	return port, types.AccountIDFromPrivateKey(key)
}

// startProbePair starts two chainNets on loopback over real QUIC, the
// asker dialling the prober, and waits until they are connected. The
// prober's probe server runs on clk with a 1 s connect-back timeout.
func startProbePair(t *testing.T, clk *probeClock) (asker, prober *chainNet) {
	t.Helper()
	asker, probers := startProbers(t, clk, 1)
	return asker, probers[0]
}

// startProbers starts n probers and an asker that dials them all.
func startProbers(t *testing.T, clk *probeClock, n int) (asker *chainNet, probers []*chainNet) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	chain := types.HashBytes([]byte("probe test chain"))
	var addrs []string
	for i := range n {
		ps := newProbeServer()
		ps.now, ps.timeout = clk.now, time.Second
		cn, err := startChainNet(ctx, netConfig{Key: devKey(fmt.Sprintf("prober-%d", i)), ChainID: chain, Listen: "127.0.0.1:0", Logger: log, Probes: ps})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cn.Close() })
		probers = append(probers, cn)
		addrs = append(addrs, cn.host.Addr().String())
	}
	asker, err := startChainNet(ctx, netConfig{Key: devKey("asker"), ChainID: chain, Listen: "127.0.0.1:0", Bootstrap: addrs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { asker.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for len(asker.host.Peers()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range probers {
		if len(asker.host.Peers()) < n || p.waitPeers(ctx, 20*time.Second) == 0 {
			t.Fatalf("the p2p hosts did not connect on loopback: the asker has %d peers of %d", len(asker.host.Peers()), n)
		}
	}
	return asker, probers
}

// TestProbeAsksAnotherPeer: a peer asked within its interval comes last,
// so a second check goes to another peer; when every peer refuses, the
// verdict is "refused" with each attempt listed.
func TestProbeAsksAnotherPeer(t *testing.T) {
	clk := &probeClock{t: time.Unix(1_700_000_000, 0)}
	asker, _ := startProbers(t, clk, 2)
	port, key := startProbeMiner(t)
	ctx := context.Background()
	q := types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: key}
	first := asker.askProbe(ctx, q)
	second := asker.askProbe(ctx, q)
	if !first.Reachable || !second.Reachable || first.Peer == second.Peer || len(second.Asked) != 1 {
		t.Fatalf("two checks in a row: %+v then %+v; want two peers, each asked once", first, second)
	}
	third := asker.askProbe(ctx, q)
	if third.Verdict != "refused" || len(third.Asked) != 2 || !strings.Contains(third.Reason, "one probe per peer") {
		t.Fatalf("both peers within their interval: %+v", third)
	}
}

// TestProbeThroughPeer asks a peer over real QUIC to connect back to a
// real miner: reachable; a wrong key or a closed port: unreachable with
// the reason; another IP or a name resolving elsewhere: refused without
// dialling; a second request within the interval: refused; the semaphore
// full: refused.
func TestProbeThroughPeer(t *testing.T) {
	clk := &probeClock{t: time.Unix(1_700_000_000, 0)}
	asker, prober := startProbePair(t, clk)
	port, key := startProbeMiner(t)
	ctx := context.Background()
	next := func() { clk.add(probeInterval) } // the next request is allowed
	proberID := prober.host.ID().String()

	rep := asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: key})
	if !rep.Reachable || rep.Verdict != "reachable" || rep.Peer != proberID || rep.Observed != "127.0.0.1" || rep.RTTMs <= 0 {
		t.Fatalf("a serving miner: %+v", rep)
	}

	// The rate limit: one probe per peer per interval, whatever it asks.
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: key})
	if rep.Reachable || rep.Verdict != "refused" || !strings.Contains(rep.Reason, "one probe per peer every") {
		t.Fatalf("a second probe within %v: %+v", probeInterval, rep)
	}
	clk.add(probeInterval - time.Second)
	if rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: key}); rep.Verdict != "refused" {
		t.Fatalf("a probe 1 s before the interval ends: %+v", rep)
	}
	next()

	var other types.AccountID
	other[0] = 9
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: other})
	if rep.Reachable || rep.Verdict != "unreachable" || !strings.Contains(rep.Reason, "another key") {
		t.Fatalf("a wrong key: %+v", rep)
	}
	next()

	closed := freeAddr(t, "udp")
	ap := netip.MustParseAddrPort(closed)
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: ap.Port(), Key: key})
	if rep.Reachable || rep.Verdict != "unreachable" || rep.Reason == "" {
		t.Fatalf("a closed port: %+v", rep)
	}
	next()

	// Another address than the asker's connection: refused, never dialled.
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.2", Port: port, Key: key})
	if rep.Reachable || rep.Verdict != "refused" || !strings.Contains(rep.Reason, "comes from (127.0.0.1)") {
		t.Fatalf("another IP: %+v", rep)
	}
	next()
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "203.0.113.7", Port: port, Key: key})
	if rep.Verdict != "refused" || !strings.Contains(rep.Reason, "203.0.113.7") {
		t.Fatalf("a public IP not ours: %+v", rep)
	}
	next()

	// A host name is resolved and compared ("localhost" is 127.0.0.1
	// and maybe ::1).
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "localhost", Port: port, Key: key})
	if !rep.Reachable {
		t.Fatalf("localhost: %+v", rep)
	}
	next()

	// The semaphore: every slot taken, the probe is refused as busy.
	for range cap(prober.probes.sem) {
		prober.probes.sem <- struct{}{}
	}
	rep = asker.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: port, Key: key})
	for range cap(prober.probes.sem) {
		<-prober.probes.sem
	}
	if rep.Verdict != "refused" || !strings.Contains(rep.Reason, "busy") {
		t.Fatalf("all slots busy: %+v", rep)
	}
}

// TestProbeServerRefusesWithoutDialling checks the serving rules on the
// probe server alone: every refusal happens before any dial.
func TestProbeServerRefusesWithoutDialling(t *testing.T) {
	peer, other := types.AccountID{1}, types.AccountID{2}
	from := netip.MustParseAddr("198.51.100.4")
	for _, c := range []struct {
		name    string
		host    string
		fromIP  netip.Addr
		resolve []netip.Addr
		want    string // reason fragment; "" means dialled
	}{
		{"own IP", "198.51.100.4", from, nil, ""},
		{"own IP, IPv4-mapped IPv6", "::ffff:198.51.100.4", from, nil, ""},
		{"name resolving to own IP among others", "miner.example", from, []netip.Addr{netip.MustParseAddr("2001:db8::1"), from}, ""},
		{"another IP", "198.51.100.5", from, nil, "comes from (198.51.100.4), not to 198.51.100.5:"},
		{"name resolving elsewhere", "miner.example", from, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, "not to miner.example (192.0.2.1)"},
		{"name not resolving", "miner.example", from, nil, "does not resolve"},
		{"unknown connection", "198.51.100.4", netip.Addr{}, nil, "address is unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := newProbeServer()
			var dialled []string
			ps.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				if c.resolve == nil {
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
				return append([]netip.Addr(nil), c.resolve...), nil
			}
			ps.dial = func(ctx context.Context, host string, port uint16, key types.AccountID, timeout time.Duration) dashboard.Probe {
				dialled = append(dialled, host)
				return dashboard.Probe{Reachable: true, RTT: time.Millisecond}
			}
			res := ps.serve(context.Background(), peer, c.fromIP, &types.ProbeRequest{Host: c.host, Port: 8091, Key: other})
			if c.want == "" {
				if res.Verdict != types.ProbeReachable || len(dialled) != 1 || dialled[0] != from.String() {
					t.Fatalf("got %+v, dialled %v; want a dial of %s", res, dialled, from)
				}
				return
			}
			if res.Verdict != types.ProbeRefused || !strings.Contains(res.Reason, c.want) || len(dialled) != 0 {
				t.Fatalf("got %+v, dialled %v; want refused with %q", res, dialled, c.want)
			}
		})
	}
}

// TestProbeNoPeers: a node without peers says so instead of failing.
func TestProbeNoPeers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cn, err := startChainNet(ctx, netConfig{Key: devKey("lonely"), ChainID: types.Hash{1}, Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	rep := cn.askProbe(ctx, types.ProbeRequest{Host: "127.0.0.1", Port: 1, Key: types.AccountID{1}})
	if rep.Verdict != node.ProbeNoPeers || rep.Reachable || rep.Reason == "" {
		t.Fatalf("no peers: %+v", rep)
	}
	if w, note := reachabilityWarning(&rep); w != "" || !strings.Contains(note, "no peer to ask") {
		t.Fatalf("no peers is a state, not a warning: %q / %q", w, note)
	}
}

func TestReachabilityWarning(t *testing.T) {
	for _, c := range []struct {
		rep  node.ProbeReport
		loud bool
		want []string
	}{
		{node.ProbeReport{Endpoint: "203.0.113.7:8091", Verdict: "reachable", Reachable: true, Peer: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", RTTMs: 12.5},
			false, []string{"reachable from outside", "12.5 ms"}},
		{node.ProbeReport{Endpoint: "203.0.113.7:8091", Verdict: "unreachable", Peer: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", Observed: "198.51.100.4", Reason: "no QUIC answer within 3s"},
			true, []string{"NOT REACHABLE", "no QUIC answer", "198.51.100.4", "UDP port 8091", "ufw allow 8091/udp", "--serve-host", "NAT", "keeps serving"}},
		{node.ProbeReport{Endpoint: "10.0.0.2:8091", Verdict: "refused", Reason: "connects back only to the address your connection comes from"},
			true, []string{"no peer would check", "connects back only", "--serve-host"}},
		{node.ProbeReport{Endpoint: "10.0.0.2:8091", Verdict: "failed", Reason: "timeout"},
			true, []string{"check", "failed", "timeout"}},
	} {
		w, note := reachabilityWarning(&c.rep)
		if (w != "") != c.loud {
			t.Errorf("%s: warning %q, note %q", c.rep.Verdict, w, note)
			continue
		}
		text := w + note
		for _, s := range c.want {
			if !strings.Contains(text, s) {
				t.Errorf("%s: %q lacks %q", c.rep.Verdict, text, s)
			}
		}
		if c.loud && strings.Count(w, "\n") < 5 {
			t.Errorf("%s: the warning is not loud (multi-line): %q", c.rep.Verdict, w)
		}
	}
}

// startProbeNode runs a node (API on loopback, 50 ms blocks) whose
// POST /v1/probe asks the peers of asker, and funds the given accounts.
func startProbeNode(t *testing.T, asker *chainNet, fund ...types.AccountID) string {
	t.Helper()
	var bal []state.GenesisBalance
	for _, a := range fund {
		bal = append(bal, state.GenesisBalance{Account: a, Free: 1000 * types.RaoPerTAO})
	}
	n, err := node.Open(node.Config{
		DataDir: t.TempDir(), Genesis: devnetGenesis("probe", 1, bal), Authority: devKey("authority"),
		BlockTime: 50 * time.Millisecond, APIAddr: "127.0.0.1:0", Probe: asker.askProbe,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	return "http://" + n.APIAddr()
}

// TestProbeAPIEndToEnd goes through the node's POST /v1/probe, the p2p
// request to a peer over QUIC and the peer's connect-back to a real miner.
func TestProbeAPIEndToEnd(t *testing.T) {
	clk := &probeClock{t: time.Unix(1_700_000_000, 0)}
	asker, _ := startProbePair(t, clk)
	port, key := startProbeMiner(t)
	c, err := newClient(startProbeNode(t, asker))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := c.probe(ctx, "127.0.0.1", port, key)
	if err != nil || !rep.Reachable || rep.Endpoint != joinHostPort("127.0.0.1", port) || len(rep.Asked) != 1 {
		t.Fatalf("through the API: %+v, %v", rep, err)
	}
	clk.add(probeInterval)
	rep, err = c.probe(ctx, "127.0.0.2", port, key)
	if err != nil || rep.Verdict != "refused" || !strings.Contains(rep.Reason, "127.0.0.1") {
		t.Fatalf("another IP through the API: %+v, %v", rep, err)
	}
}

// TestMinerWarnsWhenUnreachable runs 'taobox miner --serve-host' against
// a node with a peer: an endpoint published where nothing listens gets
// the loud warning on stderr (and the miner keeps serving); a reachable
// one gets one line saying so.
func TestMinerWarnsWhenUnreachable(t *testing.T) {
	if pc, err := net.ListenPacket("udp", "127.0.0.2:0"); err != nil {
		t.Skipf("this system has no 127.0.0.2 to listen on (%v)", err)
	} else {
		pc.Close()
	}
	clk := &probeClock{t: time.Unix(1_700_000_000, 0)}
	asker, _ := startProbePair(t, clk)
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"owner", "m1"} {
		if _, err := wallet.CreateHotkey(dir, "alice", h); err != nil {
			t.Fatal(err)
		}
	}
	url := startProbeNode(t, asker, alice.ColdkeyAddress())
	if r := taobox(t, nil, "tx", "register-network", "--hotkey", "owner", "--wallets", dir, "--wallet", "alice", "--node", url); r.code != 0 {
		t.Fatalf("register-network: exit %d, stderr %q", r.code, r.stderr)
	}
	// run starts the miner and returns its stderr once it holds want (or
	// the miner exited, or a minute passed), then stops it.
	run := func(listen, want string) (stderr string, alive bool) {
		cmd := exec.Command(taoboxBin, "miner", "--wallets", dir, "--wallet", "alice", "--hotkey", "m1", "--netuid", "1",
			"--node", url, "--listen", listen, "--register", "10", "--serve-host", "127.0.0.1", "--log-level", "warn")
		var out, errb syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(errb.String(), want) && time.Now().Before(deadline) {
			select {
			case <-exited:
				return errb.String(), false
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-exited:
		default:
			alive = true
		}
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return errb.String(), alive
	}
	// Listening on 127.0.0.2 but publishing 127.0.0.1: the peer dials
	// 127.0.0.1:port, where nothing answers.
	stderr, alive := run("127.0.0.2:0", "keeps serving")
	for _, s := range []string{"NOT REACHABLE", "UDP", "--serve-host", "NAT", "Peers see this machine at 127.0.0.1"} {
		if !strings.Contains(stderr, s) {
			t.Fatalf("no loud warning with %q: stderr %q", s, stderr)
		}
	}
	if !alive {
		t.Fatalf("the miner stopped after the warning: stderr %q", stderr)
	}
	t.Logf("the miner's stderr:\n%s", stderr)
	clk.add(probeInterval)
	stderr, _ = run("127.0.0.1:0", "reachable from outside")
	if !strings.Contains(stderr, "reachable from outside") || strings.Contains(stderr, "NOT REACHABLE") {
		t.Fatalf("a reachable endpoint: stderr %q", stderr)
	}
}
