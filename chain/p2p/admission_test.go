package p2p

import (
	"context"
	"crypto/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

// deafConn sends through a real UDP socket but never receives anything: a
// QUIC client on it behaves exactly like one sending Initial packets with
// a spoofed source address (the server's answers go nowhere). It has only
// net.PacketConn's methods, so quic-go cannot bypass ReadFrom.
type deafConn struct {
	pc   *net.UDPConn
	done chan struct{}
	once sync.Once
}

func (c *deafConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.done
	return 0, nil, net.ErrClosed
}
func (c *deafConn) WriteTo(p []byte, a net.Addr) (int, error) { return c.pc.WriteTo(p, a) }
func (c *deafConn) LocalAddr() net.Addr                       { return c.pc.LocalAddr() }
func (c *deafConn) SetDeadline(time.Time) error               { return nil }
func (c *deafConn) SetReadDeadline(time.Time) error           { return nil }
func (c *deafConn) SetWriteDeadline(time.Time) error          { return nil }
func (c *deafConn) SetReadBuffer(n int) error                 { return c.pc.SetReadBuffer(n) }
func (c *deafConn) SetWriteBuffer(n int) error                { return c.pc.SetWriteBuffer(n) }
func (c *deafConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.pc.Close()
}

// spoof starts a QUIC handshake to h from a source that never answers,
// until the test ends.
func spoof(t *testing.T, h *Host) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dc := &deafConn{pc: pc, done: make(chan struct{})}
	tr := &quic.Transport{Conn: dc}
	_, key, _ := types.GenerateKey(rand.Reader)
	cert, err := certificate(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var verr atomic.Pointer[error]
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Dial(ctx, h.Addr(), clientTLS(cert, nil, func(PeerID) error { return nil }, &verr), quicConfig(nil))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		dc.Close() // ends the transport's read loop first: Close waits for it
		tr.Close()
	})
}

// Handshakes from spoofed sources do not hold inbound slots: with
// MaxInbound 1 and three of them pending, a real peer still connects, and
// only then is the table full.
func TestSpoofedSourcesHoldNoInboundSlot(t *testing.T) {
	b, _ := newHost(t, func(c *Config) { c.MaxInbound = 1 })
	a, _ := newHost(t, nil)
	c, _ := newHost(t, nil)
	for range 3 {
		spoof(t, b)
	}
	waitFor(t, "three spoofed handshakes pending", func() bool { return b.Stats().HandshakesUnproven == 3 })
	connect(t, a, b)
	if _, err := c.Connect(ctx20(t), addrOf(b)); err == nil {
		t.Fatal("a second real inbound connection was accepted with MaxInbound 1")
	}
	st := b.Stats()
	if st.Rejects["inbound-full"] == 0 || st.Inbound != 1 {
		t.Errorf("inbound %d, rejects %v; want 1 and inbound-full counted", st.Inbound, st.Rejects)
	}
}

// A flood of spoofed Initials fills at most half of the unproven handshake
// pool; after that every new attempt must answer a Retry, which spoofers
// cannot, and a real peer that does connects.
func TestSpoofedFloodDemandsRetry(t *testing.T) {
	b, _ := newHost(t, func(c *Config) { c.MaxHandshaking = 4 })
	a, _ := newHost(t, nil)
	for range 2 {
		spoof(t, b)
	}
	waitFor(t, "two spoofed handshakes pending", func() bool { return b.Stats().HandshakesUnproven == 2 })
	for range 3 {
		spoof(t, b)
	}
	waitFor(t, "Retry demanded of the next spoofers", func() bool { return b.Stats().Rejects["retry"] >= 3 })
	if n := b.Stats().HandshakesUnproven; n != 2 {
		t.Fatalf("%d unproven handshakes under pressure, want 2 (new ones must Retry)", n)
	}
	connect(t, a, b) // answers the Retry: a proven handshake
	if st := b.Stats(); st.Inbound != 1 || st.HandshakesUnproven != 2 {
		t.Errorf("inbound %d, unproven handshakes %d; want 1 and 2", st.Inbound, st.HandshakesUnproven)
	}
}
