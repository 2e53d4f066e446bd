package dashboard

import (
	"strings"
	"testing"

	"taobox/chain/node"
)

// TestRenderPeerProbe: the connect-back check shows beside the local one,
// and an unreachable or refused verdict is a problem at the top.
func TestRenderPeerProbe(t *testing.T) {
	local := Probe{UID: 2, Addr: "203.0.113.7:8091", Reachable: true}
	for _, c := range []struct {
		name    string
		peer    *node.ProbeReport
		peerErr string
		line    string // in uid 2's lines
		problem string // among the problems; "" means none about the peer check
	}{
		{"reachable", &node.ProbeReport{Verdict: "reachable", Reachable: true, Peer: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", Observed: "203.0.113.7", RTTMs: 21.5}, "",
			"reachable from outside: peer 5Grwva…utQY connected back (QUIC handshake 21.5 ms, key pinned); peers see this machine at 203.0.113.7", ""},
		{"unreachable", &node.ProbeReport{Verdict: "unreachable", Peer: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", Reason: "no QUIC answer within 3s over UDP"}, "",
			"UNREACHABLE from outside: peer 5Grwva…utQY could not connect back: no QUIC answer", "!! uid 2 endpoint 203.0.113.7:8091 UNREACHABLE from outside (a peer tried to connect back): no QUIC answer"},
		{"refused", &node.ProbeReport{Verdict: "refused", Reason: "this node connects back only to the address your connection comes from (198.51.100.4)"}, "",
			"no peer would connect back: this node connects back only", "!! uid 2 endpoint 203.0.113.7:8091: no peer would connect back"},
		{"no peers", &node.ProbeReport{Verdict: node.ProbeNoPeers, Reason: "this node has no connected peer to ask"}, "",
			"connect-back check: no peers to ask (this node has no connected peer to ask)", ""},
		{"failed", &node.ProbeReport{Verdict: node.ProbeFailed, Reason: "deadline exceeded"}, "",
			"connect-back check failed: deadline exceeded", ""},
		{"node not asked", nil, "the node at http://x has no /v1/probe", "connect-back check by a peer: cannot ask the node: the node at http://x has no /v1/probe", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, our := testSnapshot()
			p := local
			p.Peer, p.PeerErr = c.peer, c.peerErr
			s.Probes = []Probe{p}
			out := Render(s, Options{Width: 300, Our: our})
			if !strings.Contains(out, "endpoint 203.0.113.7:8091 reachable from this machine") || !strings.Contains(out, c.line) {
				t.Fatalf("the frame lacks the local line or %q:\n%s", c.line, out)
			}
			problems := strings.Join(Alerts(s, Options{Our: our, RiskK: 1}), "\n")
			if c.problem != "" && !strings.Contains(out, c.problem) {
				t.Fatalf("no problem %q:\n%s", c.problem, out)
			}
			if c.problem == "" && strings.Contains(problems, "connect back") {
				t.Fatalf("a problem about the peer check: %s", problems)
			}
		})
	}
	s, our := testSnapshot()
	s.Probes = []Probe{local}
	if out := Render(s, Options{Width: 300, Our: our}); strings.Contains(out, "connect-back") || strings.Contains(out, "future work") {
		t.Fatalf("no peer check asked, yet a line about it:\n%s", out)
	}
}
