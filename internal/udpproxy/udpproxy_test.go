package udpproxy

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// echo is an upstream that answers every datagram with "echo:" + it and
// records the source addresses it saw.
type echo struct {
	conn  *net.UDPConn
	froms chan string
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{conn: c, froms: make(chan string, 1024)}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			select {
			case e.froms <- from.String():
			default:
			}
			c.WriteToUDP(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return e
}

func newProxy(t *testing.T, upstream string, bind string) *Proxy {
	t.Helper()
	p, err := New(Config{Listen: "127.0.0.1:0", Upstream: upstream, UpstreamBind: bind, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialProxy(t *testing.T, p *Proxy) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and returns its answer, or "" if none came within
// wait (a datagram that was dropped never comes). Late answers to earlier
// messages (retries) are skipped.
func roundTrip(t *testing.T, c *net.UDPConn, msg string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return ""
		}
		if a := string(buf[:n]); a == "echo:"+msg {
			return a
		}
	}
}

// waitAnswer retries msg until an answer comes (loopback UDP may lose a
// datagram under load); it fails the test after 50 tries.
func waitAnswer(t *testing.T, c *net.UDPConn, msg string) string {
	t.Helper()
	for range 50 {
		if a := roundTrip(t, c, msg, 200*time.Millisecond); a != "" {
			return a
		}
	}
	t.Fatalf("no answer to %q through the proxy", msg)
	return ""
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" valid, else a substring of the error
	}{
		{Config{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:9"}, ""},
		{Config{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:9", UpstreamBind: "127.0.0.2"}, ""},
		{Config{Upstream: "127.0.0.1:9"}, "Listen is required"},
		{Config{Listen: "127.0.0.1:0"}, "Upstream is required"},
		{Config{Listen: "127.0.0.1:0", Upstream: "nohost:x"}, "Upstream \"nohost:x\""},
		{Config{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:9", UpstreamBind: "localhost"}, "not an IP"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

// TestForwardAndSwitches drives one client through the proxy and flips
// each switch: forwarding both ways, Blocked (both directions, then one),
// drop probability 1 and 0, and that the counters add up.
func TestForwardAndSwitches(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.conn.LocalAddr().String(), "")
	c := dialProxy(t, p)

	if got := waitAnswer(t, c, "a"); got != "echo:a" {
		t.Fatalf("answer %q, want echo:a", got)
	}
	p.SetBlocked(true)
	for i := range 5 {
		if got := roundTrip(t, c, fmt.Sprint("blocked", i), 50*time.Millisecond); got != "" {
			t.Fatalf("a blocked link answered %q", got)
		}
	}
	p.SetBlocked(false)
	if got := waitAnswer(t, c, "b"); got != "echo:b" {
		t.Fatalf("after unblocking: %q", got)
	}

	// One direction: the request reaches the upstream, the answer does not.
	p.SetBlockedDir(Back, true)
	drain(e.froms)
	if got := roundTrip(t, c, "half", 100*time.Millisecond); got != "" {
		t.Fatalf("back direction blocked, yet answered %q", got)
	}
	select {
	case <-e.froms:
	case <-time.After(10 * time.Second):
		t.Fatal("the forward direction stopped too")
	}
	p.SetBlockedDir(Back, false)

	p.SetDrop(Forward, 1)
	for range 5 {
		if got := roundTrip(t, c, "dropped", 50*time.Millisecond); got != "" {
			t.Fatalf("drop 1 answered %q", got)
		}
	}
	p.SetDrop(Forward, 0)
	if got := waitAnswer(t, c, "c"); got != "echo:c" {
		t.Fatalf("after drop 0: %q", got)
	}

	s := p.Stats()
	if s.Dropped[Forward] < 10 || s.Dropped[Back] < 1 || s.Forwarded[Forward] < 4 || s.Forwarded[Back] < 3 || s.Clients != 1 {
		t.Errorf("stats %+v: want ≥ 10 forward drops, ≥ 1 back drop, ≥ 4 forwarded, ≥ 3 back, 1 client", s)
	}
}

func drain(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestDropFraction checks that a drop probability drops about that share
// of datagrams, and that the same seed drops the same ones.
func TestDropFraction(t *testing.T) {
	decisions := func(seed uint64) []bool {
		p, err := New(Config{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:9", Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.SetDrop(Forward, 0.3)
		out := make([]bool, 2000)
		for i := range out {
			out[i], _ = p.decide(Forward)
		}
		return out
	}
	a, b := decisions(7), decisions(7)
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 decided differently at datagram %d", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 500 || n > 700 { // 600 expected; ±100 is > 4 standard deviations
		t.Errorf("dropped %d of 2000 at p=0.3", n)
	}
}

// TestDelay checks that a delayed datagram does not arrive before its
// delay (a lower bound only: a loaded machine may deliver it later).
func TestDelay(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.conn.LocalAddr().String(), "")
	c := dialProxy(t, p)
	waitAnswer(t, c, "warm")
	const d = 150 * time.Millisecond
	p.SetDelay(Forward, d)
	start := time.Now()
	if got := roundTrip(t, c, "slow", 10*time.Second); got != "echo:slow" {
		t.Fatalf("delayed answer %q", got)
	}
	if el := time.Since(start); el < d {
		t.Errorf("a datagram delayed by %v came back after %v", d, el)
	}
}

// TestUpstreamBind checks that the upstream sees the client as a socket
// on UpstreamBind, and that each client address gets its own socket.
func TestUpstreamBind(t *testing.T) {
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}); err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	} else {
		c.Close()
	}
	e := newEcho(t)
	p := newProxy(t, e.conn.LocalAddr().String(), "127.0.0.2")
	c1, c2 := dialProxy(t, p), dialProxy(t, p)
	seen := map[string]bool{}
	for _, c := range []*net.UDPConn{c1, c2} {
		drain(e.froms)
		if got := waitAnswer(t, c, "x"); !bytes.Equal([]byte(got), []byte("echo:x")) {
			t.Fatalf("answer %q", got)
		}
		from := <-e.froms
		if !strings.HasPrefix(from, "127.0.0.2:") {
			t.Errorf("upstream saw %s, want 127.0.0.2:*", from)
		}
		seen[from] = true
	}
	if len(seen) != 2 || p.Stats().Clients != 2 {
		t.Errorf("two clients shared an upstream socket: %v, stats %+v", seen, p.Stats())
	}
}

func TestCloseIdempotent(t *testing.T) {
	p, err := New(Config{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if drop, _ := p.decide(Forward); !drop {
		t.Error("a closed proxy still forwards")
	}
}
