package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"taobox/chain/node"
	"taobox/chain/p2p"
	"taobox/chain/types"
	"taobox/dashboard"
)

// The reachability probe over p2p (ReqProbe, docs/p2p.md): a node asks a
// peer to connect back to an endpoint it serves. The serving side is
// probeServer; the asking side is chainNet.askProbe, which the node's
// POST /v1/probe calls (node.Config.Probe).

// Limits of the serving side.
const (
	// probeInterval is how often one peer may ask us for a probe.
	probeInterval = 10 * time.Second
	// probeConcurrency bounds the probes running at once, over all peers.
	probeConcurrency = 2
	// probeResolveTimeout bounds resolving the host name of a request.
	probeResolveTimeout = 2 * time.Second
	// probePeers is how many peers askProbe asks at most.
	probePeers = 3
	// probeRequestTimeout bounds one ReqProbe round trip (resolve, the
	// connect-back handshake, the p2p round trip).
	probeRequestTimeout = probeResolveTimeout + dashboard.DefaultProbeTimeout + 3*time.Second
)

// probeServer answers ReqProbe. A node must not become a port scanner, so
// it dials only the IP address the asking peer's connection comes from
// (the requested host must resolve to it), at most once per peer per
// interval and at most concurrency at a time, each dial bounded by
// timeout. The zero value is not usable: use newProbeServer.
type probeServer struct {
	interval time.Duration
	timeout  time.Duration
	sem      chan struct{}
	now      func() time.Time
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)
	dial     func(ctx context.Context, host string, port uint16, key types.AccountID, timeout time.Duration) dashboard.Probe

	mu   sync.Mutex
	last map[p2p.PeerID]time.Time // when each peer last asked
}

func newProbeServer() *probeServer {
	return &probeServer{
		interval: probeInterval,
		timeout:  dashboard.DefaultProbeTimeout,
		sem:      make(chan struct{}, probeConcurrency),
		now:      time.Now,
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		dial: func(ctx context.Context, host string, port uint16, key types.AccountID, timeout time.Duration) dashboard.Probe {
			return dashboard.ProbeAxon(ctx, host, port, key, timeout, time.Now)
		},
		last: map[p2p.PeerID]time.Time{},
	}
}

// serve answers one probe request from peer from, whose connection comes
// from fromIP (invalid: the peer is not connected).
func (ps *probeServer) serve(ctx context.Context, from p2p.PeerID, fromIP netip.Addr, q *types.ProbeRequest) types.ProbeResult {
	refuse := func(format string, args ...any) types.ProbeResult {
		return types.ProbeResult{Verdict: types.ProbeRefused, Observed: addrString(fromIP), Reason: fmt.Sprintf(format, args...)}
	}
	if !fromIP.IsValid() {
		return refuse("your connection's address is unknown here (reconnect and ask again)")
	}
	if wait := ps.admit(from); wait > 0 {
		return refuse("one probe per peer every %v: ask again in %v or ask another peer", ps.interval, wait.Round(time.Second))
	}
	// The slot is taken before a DNS lookup (up to 2 s) or a dial (up to
	// the timeout): a crowd of new peer ids cannot hold more than
	// probeConcurrency of this node's request slots with probes.
	select {
	case ps.sem <- struct{}{}:
		defer func() { <-ps.sem }()
	default:
		return refuse("busy: %d probes are running here; ask another peer or again in a few seconds", cap(ps.sem))
	}
	target, err := ps.resolve(ctx, q.Host)
	if err != nil {
		return refuse("%v", err)
	}
	if !slices.Contains(target, fromIP) {
		what := q.Host
		if _, err := netip.ParseAddr(q.Host); err != nil {
			what = fmt.Sprintf("%s (%s)", q.Host, joinAddrs(target))
		}
		return refuse("this node connects back only to the address your connection comes from (%s), not to %s: serve the endpoint from this machine's public address, or check --serve-host",
			fromIP, what)
	}
	p := ps.dial(ctx, fromIP.String(), q.Port, q.Key, ps.timeout)
	if !p.Reachable {
		return types.ProbeResult{Verdict: types.ProbeUnreachable, Observed: fromIP.String(), Reason: p.Reason}
	}
	return types.ProbeResult{Verdict: types.ProbeReachable, Observed: fromIP.String(), RTT: p.RTT}
}

// admit records a request of peer id and returns how long it must wait
// (0: go ahead).
func (ps *probeServer) admit(id p2p.PeerID) time.Duration {
	now := ps.now()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if t, ok := ps.last[id]; ok && now.Sub(t) < ps.interval {
		return ps.interval - now.Sub(t)
	}
	if len(ps.last) >= 4096 { // forget peers that may ask again anyway
		for k, t := range ps.last {
			if now.Sub(t) >= ps.interval {
				delete(ps.last, k)
			}
		}
	}
	ps.last[id] = now
	return 0
}

// resolve returns the addresses of host (an IP literal or a DNS name),
// IPv4-mapped IPv6 addresses unmapped.
func (ps *probeServer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeResolveTimeout)
	defer cancel()
	as, err := ps.lookup(ctx, host)
	if err != nil || len(as) == 0 {
		return nil, fmt.Errorf("the host name %q does not resolve here (%v): serve an IP address or a name with a DNS record", host, err)
	}
	for i := range as {
		as[i] = as[i].Unmap().WithZone("")
	}
	return as, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// peerIP returns the IP address of the connection to peer id, unmapped;
// invalid when the peer is not connected.
func (cn *chainNet) peerIP(id p2p.PeerID) netip.Addr {
	for _, p := range cn.host.Peers() {
		if p.ID != id {
			continue
		}
		if ua, ok := p.Addr.(*net.UDPAddr); ok {
			return ua.AddrPort().Addr().Unmap().WithZone("")
		}
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			return ap.Addr().Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// serveProbe answers a ReqProbe from a peer.
func (cn *chainNet) serveProbe(ctx context.Context, from p2p.PeerID, payload []byte) ([]byte, error) {
	q, err := types.DecodeProbeRequest(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", p2p.ErrMisbehaving, err)
	}
	res := cn.probes.serve(ctx, from, cn.peerIP(from), q)
	if cn.log != nil {
		cn.log.Info("probe: connected back to a peer's endpoint", "peer", from, "host", q.Host, "port", q.Port,
			"verdict", res.Verdict.String(), "reason", res.Reason)
	}
	return res.Encode(), nil
}

// probeAsked remembers when this node last asked each peer for a probe,
// so that askProbe asks the peers whose rate limit (probeInterval) has
// passed first. The zero value is ready to use.
type probeAsked struct {
	mu   sync.Mutex
	last map[p2p.PeerID]time.Time
}

// recent reports, for each of peers, whether it was asked within
// probeInterval before now.
func (pa *probeAsked) recent(now time.Time, peers []p2p.PeerInfo) map[p2p.PeerID]bool {
	pa.mu.Lock()
	defer pa.mu.Unlock()
	out := map[p2p.PeerID]bool{}
	for _, p := range peers {
		if t, ok := pa.last[p.ID]; ok && now.Sub(t) < probeInterval {
			out[p.ID] = true
		}
	}
	return out
}

func (pa *probeAsked) mark(id p2p.PeerID, now time.Time) {
	pa.mu.Lock()
	defer pa.mu.Unlock()
	if pa.last == nil || len(pa.last) >= 4096 {
		pa.last = map[p2p.PeerID]time.Time{}
	}
	pa.last[id] = now
}

// askProbe asks up to probePeers connected peers to connect back to q, in
// this order: those not asked within probeInterval first, then outbound
// ones (those this node dialled) first, in random order within each
// group; it stops at the first that dials (reachable or unreachable). It
// is node.Config.Probe.
func (cn *chainNet) askProbe(ctx context.Context, q types.ProbeRequest) node.ProbeReport {
	peers := cn.host.Peers()
	if len(peers) == 0 {
		return node.ProbeReport{Verdict: node.ProbeNoPeers,
			Reason: "this node has no connected peer to ask: check --peers and that the p2p port is open, then ask again"}
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	recent := cn.asked.recent(time.Now(), peers)
	slices.SortStableFunc(peers, func(a, b p2p.PeerInfo) int {
		return cmp.Or(cmp.Compare(boolInt(recent[a.ID]), boolInt(recent[b.ID])), cmp.Compare(boolInt(a.Inbound), boolInt(b.Inbound)))
	})
	payload := q.Encode()
	var rep node.ProbeReport
	for _, p := range peers[:min(len(peers), probePeers)] {
		if ctx.Err() != nil {
			break
		}
		a := node.ProbeAttempt{Peer: p.ID.String()}
		cn.asked.mark(p.ID, time.Now())
		rctx, cancel := context.WithTimeout(ctx, probeRequestTimeout)
		b, err := cn.host.Request(rctx, p.ID, types.ReqProbe, payload)
		cancel()
		var res *types.ProbeResult
		if err == nil {
			res, err = types.DecodeProbeResult(b)
		}
		if err != nil {
			a.Verdict, a.Reason = node.ProbeFailed, err.Error()
			if errors.Is(err, p2p.ErrNotFound) || errors.Is(err, p2p.ErrRefused) {
				a.Reason = "the peer does not serve probes (an older version?): " + err.Error()
			}
			rep.Asked = append(rep.Asked, a)
			continue
		}
		a.Verdict, a.Observed, a.Reason = res.Verdict.String(), res.Observed, res.Reason
		a.RTTMs = float64(res.RTT.Microseconds()) / 1000
		rep.Asked = append(rep.Asked, a)
		if res.Verdict != types.ProbeRefused {
			break
		}
	}
	// The verdict: the last attempt that dialled, else the last refusal,
	// else the last failure.
	rank := func(v string) int {
		switch v {
		case types.ProbeReachable.String(), types.ProbeUnreachable.String():
			return 2
		case types.ProbeRefused.String():
			return 1
		}
		return 0
	}
	if len(rep.Asked) == 0 {
		rep.Verdict, rep.Reason = node.ProbeFailed, fmt.Sprintf("no peer was asked: %v", ctx.Err())
		return rep
	}
	best := rep.Asked[0]
	for _, a := range rep.Asked[1:] {
		if rank(a.Verdict) >= rank(best.Verdict) {
			best = a
		}
	}
	rep.Verdict, rep.Peer, rep.Observed, rep.RTTMs, rep.Reason = best.Verdict, best.Peer, best.Observed, best.RTTMs, best.Reason
	rep.Reachable = best.Verdict == types.ProbeReachable.String()
	return rep
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// probe asks the node (POST /v1/probe) to have a peer connect back to
// host:port and check its TLS key. The node may take node.ProbeTimeout.
func (c *apiClient) probe(ctx context.Context, host string, port uint16, key types.AccountID) (*node.ProbeReport, error) {
	slow := &apiClient{base: c.base, hc: &http.Client{Timeout: node.ProbeTimeout + 5*time.Second}}
	var rep node.ProbeReport
	err := slow.do(ctx, http.MethodPost, "/v1/probe", node.ProbeRequestJSON{Host: host, Port: port, Key: key}, &rep)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return nil, fmt.Errorf("the node at %s has no /v1/probe (an older version): upgrade it to check reachability from outside", c.base)
	}
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// reachabilityWarning returns the loud, multi-line warning a miner prints
// when the connect-back check of its published endpoint failed, and ""
// when the endpoint was reachable or no peer could be asked (then note
// says so in one line).
func reachabilityWarning(rep *node.ProbeReport) (warning, note string) {
	switch rep.Verdict {
	case types.ProbeReachable.String():
		return "", fmt.Sprintf("endpoint %s is reachable from outside: peer %s connected back (QUIC handshake %.1f ms, key checked)", rep.Endpoint, shortID(rep.Peer), rep.RTTMs)
	case node.ProbeNoPeers:
		return "", fmt.Sprintf("endpoint %s: no peer to ask for a connect-back check (%s)", rep.Endpoint, rep.Reason)
	}
	var b strings.Builder
	bar := strings.Repeat("!", 72)
	fmt.Fprintf(&b, "%s\n", bar)
	switch rep.Verdict {
	case types.ProbeUnreachable.String():
		fmt.Fprintf(&b, "!! WARNING: your miner endpoint %s is NOT REACHABLE from outside.\n", rep.Endpoint)
		fmt.Fprintf(&b, "!! Peer %s tried to connect back and failed:\n!!   %s\n", shortID(rep.Peer), rep.Reason)
	case types.ProbeRefused.String():
		fmt.Fprintf(&b, "!! WARNING: no peer would check your miner endpoint %s from outside:\n!!   %s\n", rep.Endpoint, rep.Reason)
	default:
		fmt.Fprintf(&b, "!! WARNING: the connect-back check of your miner endpoint %s failed:\n!!   %s\n", rep.Endpoint, rep.Reason)
	}
	if rep.Observed != "" {
		fmt.Fprintf(&b, "!! Peers see this machine at %s.\n", rep.Observed)
	}
	port := "PORT"
	if _, p, err := net.SplitHostPort(rep.Endpoint); err == nil {
		port = p
	}
	b.WriteString("!! Validators cannot send you tasks until this is fixed, so you earn nothing. Check:\n" +
		"!!   - port forwarding: the router must forward UDP port " + port + " (not only TCP) to this machine;\n" +
		"!!   - the firewall: allow inbound UDP on it (ufw allow " + port + "/udp, or your cloud's security group);\n" +
		"!!   - --serve-host: it must be this machine's public IP address (or a DNS name of it), as peers see it;\n" +
		"!!   - NAT: behind carrier-grade NAT (100.64.0.0/10) or a double NAT no port forward works: ask for a public IP.\n" +
		"!! The miner keeps serving; run 'taobox status' to check again.\n")
	b.WriteString(bar + "\n")
	return b.String(), ""
}

// shortID cuts an SS58 id for display.
func shortID(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}
