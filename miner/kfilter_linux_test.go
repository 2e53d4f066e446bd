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
	"os"
	"syscall"
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
	r := &kfilterRig{t: t, recv: recv, d: newInitialDropper(recv, slog.New(slog.DiscardHandler), time.Hour)}
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
	// Exempt sources pass even while every source is held.
	r.d.exemptFrom(netip.MustParseAddr("127.0.0.2"), now.Add(time.Hour), now)
	r.d.hold(netip.Addr{}, now.Add(time.Hour), now)
	expect("all held, 127.0.0.2 exempt", b, initial, true)
	expect("all held, 127.0.0.2 exempt", a, initial, false)
	r.d.mu.Lock()
	r.d.all = time.Time{}
	r.d.installLocked(time.Now())
	r.d.mu.Unlock()
	expect("all released", b, initial, true)
	expect("all released", a, initial, false)
	// Too many sources (127.0.0.1 and 31 more fill the IPv4 list): the
	// 32nd new one drops everything instead.
	for i := range maxDropIPs {
		r.d.hold(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now.Add(time.Hour), now)
	}
	r.d.mu.Lock()
	n := count(r.d.ips, true, time.Now()) + count(r.d.ips, false, time.Now())
	r.d.mu.Unlock()
	if all, _ := r.d.dropping(time.Now()); !all || n != maxDropIPs+2*int(btoi(v6 != nil)) {
		t.Fatalf("dropping all %v, %d sources held", all, n)
	}
	r.d.close()
	for _, s := range all {
		expect("closed", s, initial, true)
	}
}

// dialFrom dials the miner at addr from source IP src with the given QUIC
// versions (nil: the default).
func dialFrom(t *testing.T, src, addr string, timeout time.Duration, versions []quic.Version) error {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Skipf("cannot bind %s: %v", src, err)
	}
	defer pc.Close()
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// X25519 alone: the ClientHello fits one Initial packet (a hybrid
	// ML-KEM key share takes two, and both would be refused).
	tlsConf := task.ClientTLS(minerID)
	tlsConf.CurvePreferences = []tls.CurveID{tls.X25519}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := tr.Dial(ctx, ua, tlsConf, &quic.Config{Versions: versions})
	if err == nil {
		c.CloseWithError(0, "")
	}
	return err
}

// A source over its handshake rate gets one CONNECTION_REFUSED, then
// silence: its next Initial packets are dropped by the kernel. Other
// sources still connect, a validator the miner served keeps its
// connection and is exempt from holds, QUIC v2 does not get past (the
// miner speaks v1 only), and after the hold the source connects again.
// When Serve returns, the socket has no filter left.
func TestRefusedSourceDroppedInKernel(t *testing.T) {
	// Burst 2 at 0.25/s: a source's third handshake is refused, and it is
	// held for burst/2/rate = 4 s, which the checks of the hold below must
	// not outlast (about 0.5 s here; a slow machine under -race may take
	// several times that).
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{HandshakesPerIP: 0.25, HandshakeBurstPerIP: 2}})
	legit := rawConn(t, tm.addr) // from 127.0.0.1: served, so exempt
	if code := rejectCode(t, exchange(t, legit, signedRequest(t, reqOpt{}))); code != task.CodeOK {
		t.Fatalf("legit request: %v", code)
	}
	const flooder = "127.0.0.2"
	for i := range 2 {
		if err := dialFrom(t, flooder, tm.addr, 5*time.Second, nil); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	var te *quic.TransportError
	if err := dialFrom(t, flooder, tm.addr, 5*time.Second, nil); !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("third connection: %v, want CONNECTION_REFUSED", err)
	}
	refused := tm.Metrics()["taobox_miner_handshakes_refused_total"]
	if err := dialFrom(t, flooder, tm.addr, 500*time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("while held: %v, want no answer at all", err)
	}
	var vn *quic.VersionNegotiationError
	if err := dialFrom(t, flooder, tm.addr, 2*time.Second, []quic.Version{quic.Version2}); !errors.As(err, &vn) {
		t.Fatalf("QUIC v2 while held: %v, want a version negotiation failure", err)
	}
	if err := dialFrom(t, "127.0.0.3", tm.addr, 5*time.Second, nil); err != nil {
		t.Fatalf("another source while 127.0.0.2 is held: %v", err)
	}
	if code := rejectCode(t, exchange(t, legit, signedRequest(t, reqOpt{}))); code != task.CodeOK {
		t.Fatalf("legit request while a source is held: %v", code)
	}
	m := tm.Metrics()
	if m[`taobox_miner_initial_drop_holds_total{scope="ip"}`] != 1 || m["taobox_miner_handshakes_refused_total"] != refused ||
		m[`taobox_miner_initial_drop_active{scope="ip"}`] != 1 {
		t.Fatalf("holds %v, refused %v then %v, sources held %v; want 1, no new refusal (dropped Initials never reach the miner), 1",
			m[`taobox_miner_initial_drop_holds_total{scope="ip"}`], refused, m["taobox_miner_handshakes_refused_total"], m[`taobox_miner_initial_drop_active{scope="ip"}`])
	}
	// Every source held: the served validator's source still connects.
	now := time.Now()
	tm.drop.hold(netip.Addr{}, now.Add(time.Hour), now)
	if err := dialFrom(t, "127.0.0.1", tm.addr, 5*time.Second, nil); err != nil {
		t.Fatalf("the exempt source while every source is held: %v", err)
	}
	if err := dialFrom(t, "127.0.0.4", tm.addr, 500*time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a new source while every source is held: %v", err)
	}
	tm.drop.mu.Lock()
	tm.drop.all = time.Time{}
	tm.drop.installLocked(time.Now())
	tm.drop.mu.Unlock()
	// After the hold (and a token's refill) the flooder connects again;
	// a dial retransmits its Initial until then.
	if err := dialFrom(t, flooder, tm.addr, 20*time.Second, nil); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
	// Serve returning leaves no filter on the socket.
	tm.drop.hold(netip.Addr{}, time.Now().Add(time.Hour), time.Now())
	tm.cancel()
	if err := <-tm.done; err != nil {
		t.Fatal(err)
	}
	tm.done <- nil // for the cleanup
	r := &kfilterRig{t: t, recv: tm.pc.(*net.UDPConn)}
	if !r.arrives(r.sender("127.0.0.5:0"), 0xc3) {
		t.Fatal("Initials dropped after Serve returned")
	}
}

// failingConn is a syscall.RawConn on a real socket whose next fail
// Control calls run on a descriptor that is not a socket (so their
// setsockopt fails).
type failingConn struct {
	real syscall.RawConn
	bad  uintptr
	fail int
}

func (f *failingConn) Control(fn func(fd uintptr)) error {
	if f.fail > 0 {
		f.fail--
		fn(f.bad)
		return nil
	}
	return f.real.Control(fn)
}
func (f *failingConn) Read(func(uintptr) bool) error  { return errors.New("unused") }
func (f *failingConn) Write(func(uintptr) bool) error { return errors.New("unused") }

// When the kernel refuses a program (say, socket option memory), the
// dropper leaves no filter behind — a stale drop-all would lock every new
// connection out for good — and stops filtering.
func TestInitialFilterAttachFailure(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	rc, err := recv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	fc := &failingConn{real: rc, bad: null.Fd()}
	d := &initialDropper{rc: fc, log: slog.New(slog.DiscardHandler), allHold: time.Hour, ips: map[netip.Addr]time.Time{}, exempt: map[netip.Addr]time.Time{}}
	r := &kfilterRig{t: t, recv: recv, d: d}
	a := r.sender("127.0.0.1:0")
	now := time.Now()
	d.hold(netip.Addr{}, now.Add(time.Hour), now) // every source
	if r.arrives(a, 0xc3) {
		t.Fatal("the drop-all filter is not on")
	}
	d.hold(netip.MustParseAddr("127.0.0.9"), now.Add(time.Hour), now) // no change: all are held
	// The per-source program is refused twice (the swap, then the attach
	// after a detach); the detach in between and the final one go through.
	fc.fail = 1
	d.mu.Lock()
	d.all = time.Time{}
	d.installLocked(time.Now())
	broken, installed := d.broken, d.installed
	d.mu.Unlock()
	if broken || !installed {
		t.Fatalf("a swap refused once: broken %v, installed %v (want a detach and a fresh attach)", broken, installed)
	}
	if !r.arrives(a, 0xc3) {
		t.Fatal("127.0.0.1 is still held after the per-source program replaced drop-all")
	}
	fc.fail = 2 // refused: the swap and the fresh attach
	d.mu.Lock()
	d.ips[netip.MustParseAddr("127.0.0.8")] = now.Add(time.Hour)
	d.installLocked(time.Now())
	broken, installed = d.broken, d.installed
	d.mu.Unlock()
	if !broken || installed {
		t.Fatalf("after refused attaches: broken %v, installed %v", broken, installed)
	}
	if !r.arrives(a, 0xc3) {
		t.Fatal("Initials still dropped after the dropper gave up")
	}
	if d.hold(netip.MustParseAddr("127.0.0.1"), now.Add(time.Hour), now) || !r.arrives(a, 0xc3) {
		t.Fatal("a broken dropper filters again")
	}
}
