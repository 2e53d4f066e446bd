package types

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The reachability probe (ReqProbe): a node asks a peer to connect back to
// an endpoint it serves (a miner's task endpoint) and to say whether a QUIC
// handshake with the task protocol's ALPN and the endpoint's registered key
// succeeded. The peer probes only the IP address the asking connection
// comes from, so a node cannot be used to scan other hosts
// (docs/p2p.md, "ReqProbe").
//
// ProbeRequest: [host: u32 len + bytes, ≤ MaxHostLen][port u16][key 32]
// ProbeResult:  [verdict u8][rtt_us u32][observed: u32 len + bytes, ≤ MaxProbeObserved]
//               [reason: u32 len + bytes, ≤ MaxProbeReason]
//
// Design note: the request names the host rather than leaving it implied
// by the connection so that the server can refuse, with a reason, an
// endpoint that the asker did not publish from its own address (the usual
// mistake: --serve-host names another machine or an old address), and the
// result carries the address the server saw so that the operator learns
// the public IP a NAT gives them.

// Probe message caps, in bytes.
const (
	MaxProbeReason   = 512
	MaxProbeObserved = 64 // an IPv6 literal with a zone fits
	MaxProbeRequest  = 4 + MaxHostLen + 2 + 32
	MaxProbeResult   = 1 + 4 + 4 + MaxProbeObserved + 4 + MaxProbeReason
)

// ProbeRequest is the body of ReqProbe.
type ProbeRequest struct {
	Host string    // host name or IP literal as published (types.Serve.Host)
	Port uint16    // UDP port of the endpoint
	Key  AccountID // the ed25519 key the endpoint's TLS certificate must carry
}

// ProbeVerdict is a probe's outcome.
type ProbeVerdict uint8

// Verdicts. The numbers are part of the wire protocol.
const (
	ProbeReachable   ProbeVerdict = 1 // the handshake completed with the right key and ALPN
	ProbeUnreachable ProbeVerdict = 2 // the peer dialled and failed; Reason says how
	ProbeRefused     ProbeVerdict = 3 // the peer did not dial (wrong address, rate limit, busy)
)

func (v ProbeVerdict) String() string {
	switch v {
	case ProbeReachable:
		return "reachable"
	case ProbeUnreachable:
		return "unreachable"
	case ProbeRefused:
		return "refused"
	}
	return fmt.Sprintf("verdict-%d", uint8(v))
}

// ProbeResult is the response to ReqProbe.
type ProbeResult struct {
	Verdict  ProbeVerdict
	RTT      time.Duration // handshake time when reachable, in whole microseconds on the wire
	Observed string        // the asker's IP address as the prober sees it
	Reason   string        // why unreachable or refused, and what to do
}

// ErrBadProbe marks a probe request or result that is well formed bytes but
// not a valid value (empty host, port 0, unknown verdict).
var ErrBadProbe = errors.New("invalid probe message")

// Validate reports whether q names a dialable endpoint.
func (q *ProbeRequest) Validate() error {
	switch {
	case q.Host == "" || strings.ContainsAny(q.Host, " \t\r\n/") || len(q.Host) > MaxHostLen:
		return fmt.Errorf("%w: host %q (want an IP address or a DNS name of at most %d bytes)", ErrBadProbe, q.Host, MaxHostLen)
	case q.Port == 0:
		return fmt.Errorf("%w: port 0", ErrBadProbe)
	}
	return nil
}

// Encode returns the canonical encoding of q.
func (q *ProbeRequest) Encode() []byte {
	w := NewWriter(make([]byte, 0, 4+len(q.Host)+2+32))
	w.String(q.Host)
	w.U16(q.Port)
	w.Fixed(q.Key[:])
	return w.Bytes()
}

// DecodeProbeRequest decodes and validates a ProbeRequest; b may be at most
// MaxProbeRequest bytes.
func DecodeProbeRequest(b []byte) (*ProbeRequest, error) {
	if len(b) > MaxProbeRequest {
		return nil, fmt.Errorf("probe request: %w: %d bytes > %d", ErrTooLong, len(b), MaxProbeRequest)
	}
	r := NewReader(b)
	q := &ProbeRequest{Host: r.String("host", MaxHostLen), Port: r.U16("port")}
	r.Fixed("key", q.Key[:])
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("probe request: %w", err)
	}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("probe request: %w", err)
	}
	return q, nil
}

// Encode returns the canonical encoding of p. RTT is cut to whole
// microseconds and clamped to the u32 range (71 minutes); Observed and
// Reason are cut to their caps, so any value encodes to a decodable
// message.
func (p *ProbeResult) Encode() []byte {
	us := min(max(p.RTT.Microseconds(), 0), 1<<32-1)
	w := NewWriter(make([]byte, 0, 13+len(p.Observed)+len(p.Reason)))
	w.U8(uint8(p.Verdict))
	w.U32(uint32(us))
	w.String(probeCut(p.Observed, MaxProbeObserved))
	w.String(probeCut(p.Reason, MaxProbeReason))
	return w.Bytes()
}

// DecodeProbeResult decodes a ProbeResult; b may be at most MaxProbeResult
// bytes and the verdict must be one of the three known.
func DecodeProbeResult(b []byte) (*ProbeResult, error) {
	if len(b) > MaxProbeResult {
		return nil, fmt.Errorf("probe result: %w: %d bytes > %d", ErrTooLong, len(b), MaxProbeResult)
	}
	r := NewReader(b)
	p := &ProbeResult{Verdict: ProbeVerdict(r.U8("verdict"))}
	p.RTT = time.Duration(r.U32("rtt")) * time.Microsecond
	p.Observed = r.String("observed", MaxProbeObserved)
	p.Reason = r.String("reason", MaxProbeReason)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("probe result: %w", err)
	}
	if p.Verdict < ProbeReachable || p.Verdict > ProbeRefused {
		return nil, fmt.Errorf("probe result: %w: verdict %d", ErrBadProbe, p.Verdict)
	}
	return p, nil
}

// probeCut returns s cut to at most n bytes (possibly inside a UTF-8 sequence;
// the reader prints what it gets).
func probeCut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
