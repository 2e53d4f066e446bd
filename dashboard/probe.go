package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
	"taobox/task"
)

// DefaultProbeTimeout bounds one ProbeAxon handshake.
const DefaultProbeTimeout = 3 * time.Second

// ProbeAxon dials the endpoint host:port over QUIC, as a validator would:
// TLS 1.3 with the task protocol's ALPN, accepting only a certificate that
// carries key (the key the miner registered with serve; its hotkey when
// the axon names none). It completes the handshake, closes the connection
// and reports how it went; Reason says what is wrong and what to do.
// Timeout 0 means DefaultProbeTimeout. now is the clock for At and RTT.
//
// The check runs from this machine (see the package doc): a reachable
// result proves the address, port, key and ALPN are right and the miner
// is serving, not that the port is open to the internet.
func ProbeAxon(ctx context.Context, host string, port uint16, key types.AccountID, timeout time.Duration, now func() time.Time) Probe {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	if now == nil {
		now = time.Now
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	p := Probe{Addr: addr, Private: isPrivateHost(host), At: now()}
	if host == "" || port == 0 {
		p.Reason = "no endpoint is served: validators cannot find this miner (run 'taobox tx serve --host PUBLIC_IP --port PORT')"
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := now()
	conn, err := quic.DialAddr(ctx, addr, task.ClientTLS(key), &quic.Config{
		HandshakeIdleTimeout: timeout,
		MaxIdleTimeout:       timeout,
	})
	if err != nil {
		p.Reason = probeReason(err, timeout)
		return p
	}
	p.RTT = now().Sub(start)
	p.Reachable = true
	conn.CloseWithError(0, "reachability probe")
	return p
}

// probeReason explains a failed dial in words an operator can act on.
func probeReason(err error, timeout time.Duration) string {
	msg := err.Error()
	var hte *quic.HandshakeTimeoutError
	var ite *quic.IdleTimeoutError
	var te *quic.TransportError
	switch {
	case errors.Is(err, task.ErrKeyMismatch) || strings.Contains(msg, task.ErrKeyMismatch.Error()):
		return "something answers there but with another key than the one registered: another machine or an old key behind this address; serve again from this miner"
	case strings.Contains(msg, "no_application_protocol") || strings.Contains(msg, "no application protocol"):
		return "something answers there but does not speak " + task.ALPN + ": the port belongs to another program"
	case errors.As(err, &hte), errors.As(err, &ite), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no QUIC answer within %v over UDP: the miner is down, or a firewall or a NAT without a UDP port forward blocks the port", timeout)
	case errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused:
		return "the miner refused the handshake (its handshake rate limit): try again in a minute"
	case strings.Contains(msg, "connection refused"):
		return "the port is closed on that host (ICMP port unreachable): is the miner running and listening there?"
	case strings.Contains(msg, "no such host"):
		return "the advertised host name does not resolve: serve an IP address or a name with a DNS record"
	}
	return "handshake failed: " + msg
}

// isPrivateHost reports whether host is a loopback, private, link-local or
// unspecified address (or "localhost"): nobody outside this network can
// reach an axon served there.
func isPrivateHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		(a.Is4() && a.As4()[0] == 100 && a.As4()[1]&0xc0 == 64) // 100.64.0.0/10, carrier-grade NAT
}
