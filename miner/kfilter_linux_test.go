//go:build linux

package miner

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/task"
)

// kfilterRig is a receiving socket with a dropper and senders bound to
// given source addresses.
type kfilterRig struct {
	t    *testing.T
	recv *net.UDPConn
	d    *initialDropper
	seq  byte
}

func (r *kfilterRig) sender(src string) *net.UDPConn {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src)))
	if err != nil {
		r.t.Skipf("cannot bind %s: %v", src, err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// arrives sends first (a datagram starting with the byte first) from s,
// then a short-header marker, and reports whether first arrived before the
// marker (loopback keeps one sender's order).
func (r *kfilterRig) arrives(s *net.UDPConn, first byte) bool {
	r.t.Helper()
	r.seq++
	to := r.recv.LocalAddr().(*net.UDPAddr)
	if s.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
		to = &net.UDPAddr{IP: net.IPv6loopback, Port: to.Port}
	} else {
		to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to.Port}
	}
	pkt := append([]byte{first, 0, 0, 0, 1, r.seq}, bytes.Repeat([]byte{0}, 100)...)
	marker := []byte{0x40, 0xee, r.seq}
	if _, err := s.WriteTo(pkt, to); err != nil {
		r.t.Fatal(err)
	}
	if _, err := s.WriteTo(marker, to); err != nil {
		r.t.Fatal(err)
	}
	got := false
	buf := make([]byte, 2048)
	r.recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := r.recv.ReadFrom(buf)
		if err != nil {
			r.t.Fatalf("the marker never arrived: %v", err)
		}
		switch {
		case n == len(marker) && bytes.Equal(buf[:n], marker):
			return got
		case n == len(pkt) && bytes.Equal(buf[:n], pkt):
			got = true
		}
	}
}

// The filter on a real socket: Initial packets (first byte 0xc0–0xcf) from
// held sources, or from all, are dropped by the kernel; Handshake, 0-RTT
// and short-header packets always pass; holds expire.
func TestInitialFilterOnSocket(t *testing.T) {
	recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	dual := err == nil
	if !dual {
		recv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
		if err != nil {
			t.Fatal(err)
		}
	}
	defer recv.Close()
	r := &kfilterRig{t: t, recv: recv, d: newInitialDropper(recv, slog.New(slog.DiscardHandler))}
	if r.d == nil {
		t.Fatal("no dropper for a UDP socket")
	}
	a := r.sender("127.0.0.1:0")
	b := r.sender("127.0.0.2:0")
	var v6 *net.UDPConn
	if dual {
		v6 = r.sender("[::1]:0")
	}
	all := []*net.UDPConn{a, b}
	if v6 != nil {
		all = append(all, v6)
	}
	const initial, initial2, handshake, zeroRTT, short = 0xc3, 0xcf, 0xe1, 0xd0, 0x41
	expect := func(what string, s *net.UDPConn, first byte, want bool) {
		t.Helper()
		if got := r.arrives(s, first); got != want {
			t.Fatalf("%s: packet %#x from %v arrived %v, want %v", what, first, s.LocalAddr(), got, want)
		}
	}
	for _, s := range all {
		expect("no filter", s, initial, true)
	}
	now := time.Now()
	if !r.d.hold(netip.MustParseAddr("127.0.0.1"), now.Add(time.Hour), now) {
		t.Fatal("a new source did not change the filter")
	}
	if r.d.hold(netip.MustParseAddr("127.0.0.1"), now.Add(2*time.Hour), now) {
		t.Fatal("extending a hold reinstalled the filter")
	}
	expect("127.0.0.1 held", a, initial, false)
	expect("127.0.0.1 held", a, initial2, false)
	for _, first := range []byte{handshake, zeroRTT, short} {
		expect("127.0.0.1 held", a, first, true)
	}
	expect("127.0.0.1 held", b, initial, true)
	if v6 != nil {
		expect("127.0.0.1 held", v6, initial, true)
		r.d.hold(netip.MustParseAddr("::1"), now.Add(time.Hour), now)
		r.d.hold(netip.MustParseAddr("2001:db8::7"), now.Add(time.Hour), now)
		expect("::1 held", v6, initial, false)
		expect("::1 held", v6, short, true)
		expect("::1 held", b, initial, true)
	}
	// Every source, briefly; then only the held ones again.
	r.d.hold(netip.Addr{}, time.Now().Add(300*time.Millisecond), time.Now())
	if all, _ := r.d.dropping(time.Now()); !all {
		t.Fatal("not dropping everything")
	}
	expect("all held", b, initial, false)
	expect("all held", b, handshake, true)
	for deadline := time.Now().Add(10 * time.Second); !r.arrives(b, initial); {
		if time.Now().After(deadline) {
			t.Fatal("the hold on all sources never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("all expired", a, initial, false)
	// Too many sources (127.0.0.1 and 63 more fill the IPv4 list): the
	// 64th new one drops everything instead.
	for i := range maxDropIPs {
		r.d.hold(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now.Add(time.Hour), now)
	}
	if all, n := r.d.dropping(time.Now()); !all || n != maxDropIPs+2*btoi(v6 != nil) {
		t.Fatalf("dropping all %v, %d sources", all, n)
	}
	r.d.close()
	for _, s := range all {
		expect("closed", s, initial, true)
	}
}

// A source over its handshake rate gets one CONNECTION_REFUSED, then
// silence: its next Initial packets are dropped by the kernel, while its
// established connection keeps working; after the hold it connects again.
func TestRefusedSourceDroppedInKernel(t *testing.T) {
	// Burst 2 at 0.5/s: the third handshake is refused, and the source is
	// held for burst/2/rate = 2 s.
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{HandshakesPerIP: 0.5, HandshakeBurstPerIP: 2}})
	legit := rawConn(t, tm.addr)
	if code := rejectCode(t, exchange(t, legit, signedRequest(t, reqOpt{}))); code != task.CodeOK {
		t.Fatalf("legit request: %v", code)
	}
	// X25519 alone: the ClientHello fits one Initial packet (a hybrid
	// ML-KEM key share takes two, and both would be refused).
	tlsConf := task.ClientTLS(minerID)
	tlsConf.CurvePreferences = []tls.CurveID{tls.X25519}
	dial := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := quic.DialAddr(ctx, tm.addr, tlsConf, &quic.Config{})
		if err == nil {
			c.CloseWithError(0, "")
		}
		return err
	}
	if err := dial(5 * time.Second); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	var te *quic.TransportError
	if err := dial(5 * time.Second); !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("third connection: %v, want CONNECTION_REFUSED", err)
	}
	if err := dial(500 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while held: %v, want no answer at all", err)
	}
	if code := rejectCode(t, exchange(t, legit, signedRequest(t, reqOpt{}))); code != task.CodeOK {
		t.Fatalf("legit request while its source is held: %v", code)
	}
	m := tm.Metrics()
	if m[`taobox_miner_initial_drop_holds_total{scope="ip"}`] != 1 || m["taobox_miner_handshakes_refused_total"] != 1 {
		t.Fatalf("holds %v, refused %v; want 1 and 1 (dropped Initials never reach the miner)",
			m[`taobox_miner_initial_drop_holds_total{scope="ip"}`], m["taobox_miner_handshakes_refused_total"])
	}
	// After the hold (and a token's refill) the source connects again;
	// a dial retransmits its Initial until then.
	if err := dial(20 * time.Second); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
}
