package node

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"taobox/chain/types"
)

// POST /v1/probe asks this node's peers whether an endpoint answers from
// outside: the body is {"host": "203.0.113.7", "port": 8091, "key":
// "<SS58 of the TLS key>"}; a peer connects back with a QUIC handshake
// (task protocol ALPN, key pinned) and the answer is a ProbeReport.
// Peers probe only the IP address this node's connection to them comes
// from (docs/p2p.md, "ReqProbe"): the endpoint must be served from the
// node's own public address. The node asks its peers through
// Config.Probe; without it (no --p2p) the verdict is "no-peers".

// Verdicts of a ProbeReport: a types.ProbeVerdict's name, or one of these.
const (
	// ProbeNoPeers: the node has no connected peer (or no network) to ask.
	ProbeNoPeers = "no-peers"
	// ProbeFailed: every peer asked failed to answer (timeouts, errors).
	ProbeFailed = "failed"
)

// ProbeTimeout bounds one POST /v1/probe: a few peers, each with its own
// connect-back timeout (3 s) and the p2p round trip.
const ProbeTimeout = 20 * time.Second

// ProbeReport is the answer to POST /v1/probe. Verdict is "reachable" or
// "unreachable" when a peer dialled the endpoint, "refused" when every
// peer asked refused to (Reason says why: the address is not the one this
// node connects from, or a rate limit), "no-peers" or "failed". Peer,
// Observed and RTTMs describe the attempt that decided the verdict.
type ProbeReport struct {
	Endpoint  string         `json:"endpoint"` // host:port asked about
	Verdict   string         `json:"verdict"`
	Reachable bool           `json:"reachable"`
	Peer      string         `json:"peer,omitempty"`     // SS58 id of the peer that answered
	Observed  string         `json:"observed,omitempty"` // this node's IP as that peer sees it
	RTTMs     float64        `json:"rtt_ms,omitempty"`   // the peer's handshake time, when reachable
	Reason    string         `json:"reason,omitempty"`   // why not reachable, what to do
	Asked     []ProbeAttempt `json:"asked,omitempty"`    // every peer asked, in order
}

// ProbeAttempt is one peer's answer (or failure) within a ProbeReport.
type ProbeAttempt struct {
	Peer     string  `json:"peer"`
	Verdict  string  `json:"verdict"` // a types.ProbeVerdict's name, or "failed"
	Observed string  `json:"observed,omitempty"`
	RTTMs    float64 `json:"rtt_ms,omitempty"`
	Reason   string  `json:"reason,omitempty"`
}

// ProbeFunc asks peers to probe q.Host:q.Port (q is valid). It returns
// within ctx's deadline; a node with no peer answers Verdict ProbeNoPeers.
type ProbeFunc func(ctx context.Context, q types.ProbeRequest) ProbeReport

// ProbeRequestJSON is the body of POST /v1/probe.
type ProbeRequestJSON struct {
	Host string          `json:"host"`
	Port uint16          `json:"port"`
	Key  types.AccountID `json:"key"` // SS58; the key the endpoint's certificate carries
}

func (n *Node) apiProbe(r *http.Request) (any, error) {
	var req ProbeRequestJSON
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, `the body must be {"host": "IP or name", "port": N, "key": "SS58 of the endpoint's TLS key"}: %v`, err)
	}
	q := types.ProbeRequest{Host: req.Host, Port: req.Port, Key: req.Key}
	if err := q.Validate(); err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if req.Key.IsZero() {
		return nil, errorf(http.StatusBadRequest, "key is required: the SS58 address of the key the endpoint's TLS certificate carries (the miner's hotkey unless it served another)")
	}
	endpoint := net.JoinHostPort(q.Host, strconv.Itoa(int(q.Port)))
	if n.cfg.Probe == nil {
		return ProbeReport{Endpoint: endpoint, Verdict: ProbeNoPeers,
			Reason: "this node has no peer-to-peer network (start it with --p2p ADDR --peers LIST), so no peer can check the endpoint from outside"}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), ProbeTimeout)
	defer cancel()
	rep := n.cfg.Probe(ctx, q)
	rep.Endpoint = endpoint
	return rep, nil
}
