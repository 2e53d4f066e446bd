// Package udpproxy is a user-space UDP forwarder for fault tests: one
// Proxy stands on one directed link (a client that dials the proxy, an
// upstream it forwards to) and can drop, delay or block the datagrams of
// either direction. This kernel has no netem qdisc, so the process tests
// of the chain network (cmd/taobox/netfault_test.go) route QUIC through
// these proxies to make partitions and lossy links on loopback.
//
// Each distinct client address gets its own upstream socket (like a NAT
// mapping), bound to Config.UpstreamBind. The upstream therefore sees the
// client as that socket's address, never as the client's own: a node that
// learns its peers' listen addresses from their connections (chain/p2p:
// the connection's IP + the port from its Hello) then learns an address
// on the proxy's IP, where nothing listens, and cannot bypass the proxy
// by peer exchange if the proxies use another loopback IP than the nodes.
//
// Decisions to drop are drawn from a PRNG seeded by Config.Seed, so a run
// with the same seed and the same packet order drops the same packets.
// Delays use the real clock (time.AfterFunc): delayed datagrams keep their
// order only as far as the timers fire in order.
package udpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one way of a link.
type Direction int

const (
	// Forward is client → upstream.
	Forward Direction = iota
	// Back is upstream → client.
	Back
)

func (d Direction) String() string {
	if d == Forward {
		return "forward"
	}
	return "back"
}

// maxDatagram is the largest datagram forwarded: a UDP payload's maximum.
const maxDatagram = 65535

// Config sets up a Proxy. The zero value of each optional field is valid.
type Config struct {
	// Listen is the UDP host:port clients send to (required; port 0
	// picks a free one, see Proxy.Addr).
	Listen string
	// Upstream is the UDP host:port datagrams are forwarded to
	// (required).
	Upstream string
	// UpstreamBind is the local IP of the sockets towards the upstream
	// (empty: the Listen IP). Give a loopback IP other than the nodes'
	// (for example 127.0.0.2) so that the addresses nodes learn from
	// their proxied connections lead nowhere.
	UpstreamBind string
	// Seed seeds the PRNG that decides drops.
	Seed uint64
}

// Validate reports what is missing or malformed in c.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("udpproxy: Listen is required (for example 127.0.0.2:0)"))
	} else if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("udpproxy: Listen %q: %w", c.Listen, err))
	}
	if c.Upstream == "" {
		errs = append(errs, errors.New("udpproxy: Upstream is required (the host:port to forward to)"))
	} else if _, err := net.ResolveUDPAddr("udp", c.Upstream); err != nil {
		errs = append(errs, fmt.Errorf("udpproxy: Upstream %q: %w", c.Upstream, err))
	}
	if c.UpstreamBind != "" && net.ParseIP(c.UpstreamBind) == nil {
		errs = append(errs, fmt.Errorf("udpproxy: UpstreamBind %q is not an IP", c.UpstreamBind))
	}
	return errors.Join(errs...)
}

// Stats counts datagrams per direction.
type Stats struct {
	Forwarded [2]uint64 // indexed by Direction
	Dropped   [2]uint64 // by Blocked or a drop probability
	Clients   int       // client addresses seen
}

// Proxy forwards datagrams between clients and one upstream. Its switches
// (SetBlocked, SetDrop, SetDelay) may be flipped at any time from any
// goroutine; they apply to datagrams that arrive afterwards.
type Proxy struct {
	cfg      Config
	ln       *net.UDPConn
	upstream *net.UDPAddr
	bind     *net.UDPAddr

	mu      sync.Mutex
	rng     *rand.Rand
	blocked [2]bool
	drop    [2]float64
	delay   [2]time.Duration
	clients map[string]*net.UDPConn // client address → its upstream socket
	closed  bool

	forwarded, dropped [2]atomic.Uint64
	wg                 sync.WaitGroup
}

// New binds the listening socket and starts forwarding. Close stops it.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	la, _ := net.ResolveUDPAddr("udp", cfg.Listen)
	up, _ := net.ResolveUDPAddr("udp", cfg.Upstream)
	bindIP := la.IP
	if cfg.UpstreamBind != "" {
		bindIP = net.ParseIP(cfg.UpstreamBind)
	}
	ln, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("udpproxy: listen on %s: %w", cfg.Listen, err)
	}
	p := &Proxy{
		cfg: cfg, ln: ln, upstream: up, bind: &net.UDPAddr{IP: bindIP},
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x7564707072)),
		clients: map[string]*net.UDPConn{},
	}
	p.wg.Add(1)
	go p.readClients()
	return p, nil
}

// Addr is the address clients send to.
func (p *Proxy) Addr() *net.UDPAddr { return p.ln.LocalAddr().(*net.UDPAddr) }

// SetBlocked drops every datagram in both directions while on: the link
// is cut (a partition), and restored when switched off.
func (p *Proxy) SetBlocked(on bool) {
	p.mu.Lock()
	p.blocked = [2]bool{on, on}
	p.mu.Unlock()
}

// SetBlockedDir cuts (on) or restores one direction only.
func (p *Proxy) SetBlockedDir(d Direction, on bool) {
	p.mu.Lock()
	p.blocked[d] = on
	p.mu.Unlock()
}

// SetDrop drops each datagram of direction d with probability prob
// (clamped to [0, 1]).
func (p *Proxy) SetDrop(d Direction, prob float64) {
	p.mu.Lock()
	p.drop[d] = min(max(prob, 0), 1)
	p.mu.Unlock()
}

// SetDelay holds each datagram of direction d for delay before sending it
// on (0: at once).
func (p *Proxy) SetDelay(d Direction, delay time.Duration) {
	p.mu.Lock()
	p.delay[d] = max(delay, 0)
	p.mu.Unlock()
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	n := len(p.clients)
	p.mu.Unlock()
	var s Stats
	for d := range 2 {
		s.Forwarded[d], s.Dropped[d] = p.forwarded[d].Load(), p.dropped[d].Load()
	}
	s.Clients = n
	return s
}

// Close stops forwarding and closes every socket; datagrams still held
// by a delay are dropped. It waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for _, c := range p.clients {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// decide says what happens to a datagram of direction d now: dropped, or
// sent after delay.
func (p *Proxy) decide(d Direction) (drop bool, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.blocked[d] {
		return true, 0
	}
	if p.drop[d] > 0 && p.rng.Float64() < p.drop[d] {
		return true, 0
	}
	return false, p.delay[d]
}

// pass sends b with send unless the switches drop it.
func (p *Proxy) pass(d Direction, b []byte, send func([]byte)) {
	drop, delay := p.decide(d)
	if drop {
		p.dropped[d].Add(1)
		return
	}
	p.forwarded[d].Add(1)
	if delay == 0 {
		send(b)
		return
	}
	held := append([]byte(nil), b...)
	time.AfterFunc(delay, func() { send(held) })
}

// readClients forwards client datagrams upstream, opening an upstream
// socket for each new client address.
func (p *Proxy) readClients() {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			if p.isClosed() {
				return
			}
			continue // a transient error (ICMP unreachable on some systems)
		}
		up := p.client(from)
		if up == nil {
			continue
		}
		p.pass(Forward, buf[:n], func(b []byte) { up.Write(b) })
	}
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// client returns the upstream socket of a client address, creating it
// (and its reader) on first use; nil once closed or if it cannot bind.
func (p *Proxy) client(from *net.UDPAddr) *net.UDPConn {
	key := from.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if c := p.clients[key]; c != nil {
		return c
	}
	c, err := net.DialUDP("udp", p.bind, p.upstream)
	if err != nil {
		return nil
	}
	p.clients[key] = c
	to := *from
	p.wg.Add(1)
	go p.readUpstream(c, &to)
	return c
}

// readUpstream forwards what the upstream sends to one client's socket
// back to that client.
func (p *Proxy) readUpstream(c *net.UDPConn, to *net.UDPAddr) {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if p.isClosed() {
				return
			}
			continue // ICMP port unreachable while the upstream is down
		}
		p.pass(Back, buf[:n], func(b []byte) { p.ln.WriteToUDP(b, to) })
	}
}
