package p2p

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

// PeerID is a peer's ed25519 public key, the key of its TLS certificate.
type PeerID = types.AccountID

// Status is what a node claims about its chain in Hello.
type Status struct {
	Head, Finalized uint64
	HeadHash        types.Hash
}

// Handler is the node's side of the transport. Its methods are called
// concurrently, from many goroutines (one per stream).
type Handler interface {
	// Gossip is called for each gossip message (t.IsGossip()) a peer sends,
	// after the size cap and the peer's rate limits. Returning an error
	// wrapping ErrMisbehaving bans the peer; other errors are logged at
	// debug. The handler relays what is new to it by calling Host.Broadcast
	// itself (p2p does not relay). payload is the handler's to keep.
	Gossip(from PeerID, t types.MsgType, payload []byte) error
	// Serve answers a request (t is ReqHeaders..ReqChunk; p2p answers
	// ReqHello and ReqPeers itself). At most Config.ServeConcurrency calls
	// run at once; ctx ends at the request deadline. An error wrapping
	// ErrMisbehaving bans the requester; ErrNotFound becomes StatusNotFound,
	// other errors StatusError (their text, cut to MaxErrorMsg, goes to the
	// peer). A response longer than t.MaxResponse() is not sent (StatusError
	// and an error log instead).
	Serve(ctx context.Context, from PeerID, t types.MsgType, payload []byte) ([]byte, error)
	// Status is this node's head, sent in Hello (and on each refresh).
	Status() Status
}

// Errors.
var (
	// ErrMisbehaving marks a peer's protocol violation (oversized frame, a
	// frame kind not allowed on the stream, a Handler verdict); it bans the
	// peer.
	ErrMisbehaving = errors.New("p2p: peer misbehaving")
	// ErrNotFound: the peer does not have what was requested.
	ErrNotFound = errors.New("p2p: not found")
	// ErrBanned: the peer is banned (until its ban expires).
	ErrBanned = errors.New("p2p: peer is banned")
	// ErrNoPeer: no connected peer with that id (or its Hello is not done yet).
	ErrNoPeer = errors.New("p2p: not connected to peer")
	// ErrQueueFull: the peer's send queue is full; the message was dropped.
	ErrQueueFull = errors.New("p2p: peer send queue full")
	// ErrBusy: the peer refused the request for now (rate limit, serve
	// slots); retry later or ask another peer.
	ErrBusy = errors.New("p2p: peer busy")
	// ErrRefused: the peer refused the request or the connection (wrong
	// chain, wrong version, no Hello yet).
	ErrRefused = errors.New("p2p: refused by peer")
	// ErrWrongChain: the peer's Hello names another chain (genesis hash).
	ErrWrongChain = errors.New("p2p: peer is on another chain")
	// ErrWrongVersion: the peer speaks another p2p protocol version.
	ErrWrongVersion = errors.New("p2p: peer speaks another protocol version")
	// ErrClosed: the host was closed.
	ErrClosed = errors.New("p2p: host closed")
	// ErrSelf: the address is this node.
	ErrSelf = errors.New("p2p: address is this node itself")
)

// Application error codes in CONNECTION_CLOSE.
const (
	CodeShutdown     quic.ApplicationErrorCode = 0 // orderly close
	CodeWrongChain   quic.ApplicationErrorCode = 1
	CodeWrongVersion quic.ApplicationErrorCode = 2
	CodeBanned       quic.ApplicationErrorCode = 3 // misbehaviour; the closer bans the other side
	CodeDuplicate    quic.ApplicationErrorCode = 4 // another connection between the pair is kept
	CodeSelf         quic.ApplicationErrorCode = 5
	CodeHelloFailed  quic.ApplicationErrorCode = 6 // Hello timed out or did not decode
)

// Stream error codes (RESET_STREAM / STOP_SENDING).
const (
	streamDone      quic.StreamErrorCode = 0
	streamCancelled quic.StreamErrorCode = 1
	streamDropped   quic.StreamErrorCode = 2 // rate limited
	streamUnread    quic.StreamErrorCode = 3 // the requester does not read its responses (MaxPendingPerPeer, ResponseWriteTimeout)
)

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID         PeerID
	Addr       net.Addr // the remote UDP address of the connection
	ListenAddr string   // where the peer accepts connections (remote IP + Hello's port); "" if unknown
	Inbound    bool
	Status     Status    // from the peer's latest Hello
	Since      time.Time // Config.Now at connect
	MsgsIn     uint64    // gossip messages and requests received
	MsgsOut    uint64    // gossip messages and requests sent
	BytesIn    uint64    // payload bytes received (gossip, requests, responses)
	BytesOut   uint64    // payload bytes sent
	Drops      uint64    // outgoing gossip dropped (queue full)
	Limited    uint64    // incoming messages dropped by the rate limits
}

// Stats are the host's counters since New.
type Stats struct {
	MsgsIn, MsgsOut   map[types.MsgType]uint64 // gossip received/sent and requests served/sent, by type
	BytesIn, BytesOut uint64                   // payload bytes
	Drops             uint64                   // outgoing gossip dropped: a peer's queue was full
	Limited           uint64                   // incoming messages dropped by a rate limit
	Bans              uint64                   // bans imposed
	Rejects           map[string]uint64        // refused connections and messages, by reason
	Dials, DialErrors uint64                   // outgoing connection attempts and failures
	Inbound, Outbound int                      // connected peers now
	// Handshakes in progress that hold no inbound slot yet: Unproven ones
	// (the source address may be spoofed) and Proven ones (a Retry token
	// proved it).
	HandshakesUnproven, HandshakesProven int
	// PendingResponseBytes are the bytes of responses being written now
	// (all peers), PeakPendingBytes the most there ever were at once; both
	// stay within Config.MaxPendingBytes (plus one response per peer).
	PendingResponseBytes, PeakPendingBytes int64
}

// counters is the lock-free part of Stats.
type counters struct {
	in, out             [256]atomic.Uint64
	bytesIn, bytesOut   atomic.Uint64
	drops, limited      atomic.Uint64
	bans, dials, dialEr atomic.Uint64
	pending, peak       atomic.Int64 // response bytes being written; the most at once
}

// Host is a node's p2p endpoint: one UDP socket and quic.Transport that
// both listens and dials, the connected peers, the ban list and the
// address book. Create it with New, then Start; Close ends it.
type Host struct {
	cfg     Config
	handler Handler
	id      PeerID
	log     *slog.Logger
	now     func() time.Time

	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	cert tls.Certificate
	qc   *quic.Config
	sem  chan struct{} // Serve slots

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	stats counters

	wgMu     sync.Mutex // guards wg.Add against Close's wg.Wait
	wg       sync.WaitGroup
	stopping bool

	hsMu sync.Mutex
	hs   bucket // inbound handshake attempts

	winMu   sync.Mutex
	winUsed int64
	winConn map[*quic.Conn]int64

	mu      sync.Mutex
	closed  bool
	started bool
	peers   map[PeerID]*peer
	bans    map[PeerID]time.Time
	perIP   map[string]int // inbound connections whose address is proven, per IP
	inbound int            // inbound connections whose address is proven

	// handshakes in progress that hold no inbound slot yet, by whether a
	// Retry token proved the source address
	hsUnproven, hsProven int
	rejects              map[string]uint64
	changed              chan struct{}         // closed and replaced when a peer becomes ready
	book                 map[PeerID]*dialEntry // learned by peer exchange
	boot                 []*dialEntry
}

// dialEntry is an address the dialler keeps trying. h.mu guards it.
type dialEntry struct {
	addr    string
	id      PeerID
	hasID   bool // id is known (given, learned, or from peer exchange)
	pinned  bool // id was given: the peer must present it
	dialing bool
	fails   int
	next    time.Time // real time of the next try
}

// maxBook caps the address book; an entry is dropped after maxBookFails
// failed dials in a row.
const (
	maxBook      = 1024
	maxBookFails = 5
)

// New binds the UDP socket cfg.Listen and prepares the host; nothing is
// accepted until Start (the QUIC accept queue holds up to 32 handshakes).
// The caller must Close it.
func New(cfg Config, h Handler) (*Host, error) {
	if h == nil {
		return nil, errors.New("p2p: new: nil Handler")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Bootstrap = slices.Clone(cfg.Bootstrap)
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("p2p: listen address %q: %w", cfg.Listen, err)
	}
	cert, err := certificate(cfg.Key)
	if err != nil {
		return nil, err
	}
	host := &Host{
		cfg:     cfg,
		handler: h,
		id:      types.AccountIDFromPrivateKey(cfg.Key),
		log:     cfg.Logger,
		now:     cfg.Now,
		cert:    cert,
		sem:     make(chan struct{}, cfg.ServeConcurrency),
		winConn: map[*quic.Conn]int64{},
		peers:   map[PeerID]*peer{},
		bans:    map[PeerID]time.Time{},
		perIP:   map[string]int{},
		rejects: map[string]uint64{},
		book:    map[PeerID]*dialEntry{},
		changed: make(chan struct{}),
	}
	for _, b := range cfg.Bootstrap {
		id, hasID, hp, _ := ParseAddr(b) // checked by Validate
		host.boot = append(host.boot, &dialEntry{addr: hp, id: id, hasID: hasID, pinned: hasID})
	}
	host.ctx, host.cancel = context.WithCancel(context.Background())
	host.qc = quicConfig(host.allowWindow)
	srk, err := hkdf.Key(sha256.New, cfg.Key.Seed(), nil, "taobox/p2p/1 stateless reset key", 32)
	if err != nil {
		return nil, fmt.Errorf("p2p: stateless reset key: %w", err)
	}
	var key quic.StatelessResetKey
	copy(key[:], srk)

	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("p2p: listen on udp %s: %w (is the port in use?)", cfg.Listen, err)
	}
	host.udp = udp
	host.hs = newBucket(cfg.HandshakeRate, cfg.HandshakeBurst, cfg.Now())
	host.tr = &quic.Transport{
		Conn:                udp,
		StatelessResetKey:   &key,
		ConnContext:         host.connContext,
		VerifySourceAddress: host.demandRetry,
	}
	ln, err := host.tr.Listen(serverTLS(cert, host.admit, host.chargeConn), host.qc)
	if err != nil {
		host.tr.Close()
		udp.Close()
		return nil, fmt.Errorf("p2p: listen on %s: %w", cfg.Listen, err)
	}
	host.ln = ln
	return host, nil
}

// quicConfig is the transport configuration of every connection (see
// docs/p2p.md for the reasons behind each number). allow vets flow-control
// window growth (nil: always).
func quicConfig(allow func(*quic.Conn, uint64) bool) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:          5 * time.Second,
		MaxIdleTimeout:                30 * time.Second,
		KeepAlivePeriod:               10 * time.Second,
		MaxIncomingStreams:            32,
		MaxIncomingUniStreams:         128,
		MaxStreamReceiveWindow:        4 << 20,
		MaxConnectionReceiveWindow:    16 << 20,
		AllowConnectionWindowIncrease: allow,
	}
}

// ID returns this node's PeerID.
func (h *Host) ID() PeerID { return h.id }

// Addr returns the bound UDP address.
func (h *Host) Addr() net.Addr { return h.udp.LocalAddr() }

// Start runs the accept loop and the dialler (bootstrap peers, peer
// exchange, Status refresh) until ctx ends or Close. Only the first call
// has an effect.
func (h *Host) Start(ctx context.Context) {
	h.mu.Lock()
	if h.started || h.closed {
		h.mu.Unlock()
		return
	}
	h.started = true
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(h.ctx, cancel)
	h.spawn(func() { h.acceptLoop(ctx) })
	h.spawn(func() { h.dialLoop(ctx) })
}

// Close closes every connection (CodeShutdown), the listener, the transport
// and the socket, then waits for the host's goroutines. Afterwards every
// method returns ErrClosed or does nothing. Close is idempotent.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	peers := make([]*peer, 0, len(h.peers))
	for _, p := range h.peers {
		peers = append(peers, p)
	}
	h.mu.Unlock()
	h.cancel()
	h.ln.Close()
	for _, p := range peers {
		p.conn.CloseWithError(CodeShutdown, "shutting down")
	}
	err := h.tr.Close()
	if e := h.udp.Close(); err == nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	h.wgMu.Lock()
	h.stopping = true
	h.wgMu.Unlock()
	h.wg.Wait()
	if err != nil {
		return fmt.Errorf("p2p: close: %w", err)
	}
	return nil
}

// spawn runs f in a goroutine that Close waits for; after Close it does
// nothing and reports false.
func (h *Host) spawn(f func()) bool {
	h.wgMu.Lock()
	if h.stopping {
		h.wgMu.Unlock()
		return false
	}
	h.wg.Add(1)
	h.wgMu.Unlock()
	go func() {
		defer h.wg.Done()
		f()
	}()
	return true
}

// Connect dials addr ("host:port" or "id@host:port"), completes the Hello
// exchange and returns the peer's id. If the peer is already connected it
// returns at once. Connect is not limited by MaxOutbound.
func (h *Host) Connect(ctx context.Context, addr string) (PeerID, error) {
	id, hasID, hp, err := ParseAddr(addr)
	if err != nil {
		return PeerID{}, err
	}
	var want *PeerID
	if hasID {
		if id == h.id {
			return id, fmt.Errorf("p2p: connect %s: %w", addr, ErrSelf)
		}
		if h.banned(id) {
			return id, fmt.Errorf("p2p: connect %s: %w", addr, ErrBanned)
		}
		if p := h.peer(id); p != nil && p.isReady() {
			return id, nil
		}
		want = &id
	}
	return h.dial(ctx, hp, want)
}

func (h *Host) dial(ctx context.Context, hostport string, want *PeerID) (PeerID, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return PeerID{}, ErrClosed
	}
	h.stats.dials.Add(1)
	ua, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		h.stats.dialEr.Add(1)
		return PeerID{}, fmt.Errorf("p2p: dial %s: %w", hostport, err)
	}
	var verr atomic.Pointer[error]
	conf := clientTLS(h.cert, want, h.admit, &verr)
	dctx, cancel := context.WithTimeout(ctx, 2*h.qc.HandshakeIdleTimeout)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	conn, err := h.tr.Dial(dctx, ua, conf, h.qc)
	if err != nil {
		h.stats.dialEr.Add(1)
		if e := verr.Load(); e != nil {
			err = *e
		}
		return PeerID{}, fmt.Errorf("p2p: dial %s: %w", hostport, err)
	}
	p, err := h.attach(conn, false)
	if errors.Is(err, errDuplicate) {
		err = h.waitReady(ctx, p.id) // an existing connection was kept
	} else if err == nil {
		err = h.hello(ctx, p)
		var ae *quic.ApplicationError
		if errors.As(err, &ae) && ae.ErrorCode == CodeDuplicate {
			// A crossing connection between the pair won (closed by
			// either side): wait for its Hello.
			err = h.waitReady(ctx, p.id)
		}
	}
	if err != nil {
		h.stats.dialEr.Add(1)
		return PeerID{}, fmt.Errorf("p2p: dial %s: %w", hostport, err)
	}
	return p.id, nil
}

// markReady records a validated Hello of p and wakes waitReady.
func (h *Host) markReady(p *peer, m Hello) {
	p.setHello(m)
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// waitReady waits until a peer with id is connected and its Hello is done,
// for at most RequestTimeout.
func (h *Host) waitReady(ctx context.Context, id PeerID) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	for {
		h.mu.Lock()
		p, ch, closed := h.peers[id], h.changed, h.closed
		h.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case p != nil && p.isReady():
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("p2p: waiting for the connection to %s: %w", id, ctx.Err())
		case <-h.ctx.Done():
			return ErrClosed
		}
	}
}

// admit is the TLS-time check of a peer's id: not us, not banned.
func (h *Host) admit(id PeerID) error {
	if id == h.id {
		h.reject("self")
		return ErrSelf
	}
	if h.banned(id) {
		h.reject("banned")
		return fmt.Errorf("%w: %s", ErrBanned, id)
	}
	return nil
}

// inSlot is one inbound connection's admission state. connContext creates
// it (stored in the connection's context), charge moves it from the
// handshake pool to an inbound slot once the client proved its address,
// release undoes whichever it holds when the connection ends. h.mu guards
// state.
type inSlot struct {
	ip       string
	loop     bool // loopback: exempt from MaxPerIP
	verified bool // the address was proven by a Retry (or NEW_TOKEN) token
	state    slotState
}

type slotState uint8

const (
	slotHandshaking slotState = iota // in the handshake pool, no inbound slot
	slotCharged                      // holds an inbound slot (and a per-IP one)
	slotReleased
)

type slotKey struct{}

// connContext runs on a new inbound connection's first packet, before the
// handshake. It charges no inbound slot: the source address may be spoofed.
// It only bounds the handshakes in progress (Config.MaxHandshaking, one
// pool for unproven addresses and one for addresses a Retry proved, so
// spoofed packets cannot crowd out proven ones) and attaches the slot that
// charge fills once the address is proven.
func (h *Host) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	s := &inSlot{verified: ci.AddrVerified}
	if ua, ok := ci.RemoteAddr.(*net.UDPAddr); ok {
		s.ip, s.loop = ua.IP.String(), ua.IP.IsLoopback()
	}
	h.mu.Lock()
	pool := &h.hsUnproven
	if s.verified {
		pool = &h.hsProven
	}
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, ErrClosed
	case *pool >= h.cfg.MaxHandshaking:
		h.rejectLocked("handshakes-full")
		h.mu.Unlock()
		return nil, fmt.Errorf("p2p: %d handshakes in progress, the maximum", h.cfg.MaxHandshaking)
	}
	*pool++
	h.mu.Unlock()
	context.AfterFunc(ctx, func() { h.release(s) })
	return context.WithValue(ctx, slotKey{}, s), nil
}

// charge takes an inbound slot for a connection whose client has proven
// its source address: it is called when the client's certificate arrives
// in the TLS handshake, which the client can only send after reading our
// Handshake packets at that address (RFC 9000 §8.1). A full table (MaxInbound,
// or MaxPerIP for a non-loopback IP) fails the handshake.
func (h *Host) charge(s *inSlot) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case s.state != slotHandshaking:
		return errors.New("p2p: inbound connection already admitted or closed")
	case h.closed:
		return ErrClosed
	case h.inbound >= h.cfg.MaxInbound:
		h.rejectLocked("inbound-full")
		return fmt.Errorf("p2p: %d inbound connections, the maximum", h.cfg.MaxInbound)
	case !s.loop && h.perIP[s.ip] >= h.cfg.MaxPerIP:
		h.rejectLocked("per-ip")
		return fmt.Errorf("p2p: %d inbound connections from %s, the maximum", h.cfg.MaxPerIP, s.ip)
	}
	h.leavePoolLocked(s)
	s.state = slotCharged
	h.inbound++
	h.perIP[s.ip]++
	return nil
}

// chargeConn charges the slot connContext attached to an inbound
// connection's context; without one it refuses (fail closed).
func (h *Host) chargeConn(ctx context.Context) error {
	var s *inSlot
	if ctx != nil {
		s, _ = ctx.Value(slotKey{}).(*inSlot)
	}
	if s == nil {
		return errors.New("p2p: inbound handshake without an admission slot")
	}
	return h.charge(s)
}

// release frees what s holds when its connection ends.
func (h *Host) release(s *inSlot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch s.state {
	case slotHandshaking:
		h.leavePoolLocked(s)
	case slotCharged:
		h.inbound--
		if h.perIP[s.ip]--; h.perIP[s.ip] <= 0 {
			delete(h.perIP, s.ip)
		}
	}
	s.state = slotReleased
}

func (h *Host) leavePoolLocked(s *inSlot) {
	if s.verified {
		h.hsProven--
	} else {
		h.hsUnproven--
	}
}

// demandRetry reports whether a new connection attempt must first prove
// its source address (QUIC Retry): when attempts exceed HandshakeRate, or
// when half of the unproven handshake pool is in use (a flood of spoofed
// Initials: from then on only proven addresses start handshakes).
func (h *Host) demandRetry(net.Addr) bool {
	h.mu.Lock()
	pressure := h.hsUnproven >= max(1, h.cfg.MaxHandshaking/2)
	h.mu.Unlock()
	if !pressure {
		h.hsMu.Lock()
		ok := h.hs.take(1, h.now())
		h.hsMu.Unlock()
		if ok {
			return false
		}
	}
	h.reject("retry")
	return true
}

// allowWindow grants flow-control window growth against the global budget;
// a connection's grants return to the budget when it closes.
func (h *Host) allowWindow(c *quic.Conn, delta uint64) bool {
	h.winMu.Lock()
	defer h.winMu.Unlock()
	if h.winUsed+int64(delta) > h.cfg.WindowBudget {
		return false
	}
	if _, ok := h.winConn[c]; !ok {
		context.AfterFunc(c.Context(), func() {
			h.winMu.Lock()
			h.winUsed -= h.winConn[c]
			delete(h.winConn, c)
			h.winMu.Unlock()
		})
	}
	h.winUsed += int64(delta)
	h.winConn[c] += int64(delta)
	return true
}

func (h *Host) reject(reason string) {
	h.mu.Lock()
	h.rejectLocked(reason)
	h.mu.Unlock()
}

// rejectLocked counts a refusal. h.mu must be held.
func (h *Host) rejectLocked(reason string) { h.rejects[reason]++ }

// banned reports whether id is banned now.
func (h *Host) banned(id PeerID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bannedLocked(id)
}

// bannedLocked: h.mu must be held. Expired bans are removed.
func (h *Host) bannedLocked(id PeerID) bool {
	until, ok := h.bans[id]
	if !ok {
		return false
	}
	if !h.now().Before(until) {
		delete(h.bans, id)
		return false
	}
	return true
}

// Ban disconnects the peer (CodeBanned) and refuses it, inbound and
// outbound, for Config.BanDuration from Config.Now. Banning an unconnected
// id only records the ban; banning a banned id extends the ban (counted and
// logged once).
func (h *Host) Ban(id PeerID, reason string) {
	if id == h.id {
		return
	}
	until := h.now().Add(h.cfg.BanDuration)
	h.mu.Lock()
	again := h.bannedLocked(id)
	h.bans[id] = until
	p := h.peers[id]
	h.mu.Unlock()
	if !again { // several streams of one peer may trip at once: count one ban
		h.stats.bans.Add(1)
		h.log.Warn("p2p: banned peer", "peer", id.String(), "reason", reason, "until", until)
	}
	if p != nil {
		if len(reason) > 200 {
			reason = reason[:200]
		}
		p.conn.CloseWithError(CodeBanned, "banned: "+reason)
	}
}

// peer returns the connected peer with id, or nil.
func (h *Host) peer(id PeerID) *peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[id]
}

// readyPeers returns the peers whose Hello is done, except those listed.
func (h *Host) readyPeers(except []PeerID) []*peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*peer, 0, len(h.peers))
	for id, p := range h.peers {
		if p.isReady() && !slices.Contains(except, id) {
			out = append(out, p)
		}
	}
	return out
}

// Broadcast queues a gossip message to every connected peer except those
// listed. It never blocks: a peer whose send queue is full misses the
// message (counted in Stats.Drops and PeerInfo.Drops). A request type or an
// oversized payload is a programming error: it is logged and dropped. The
// queues share payload: the caller must not modify it afterwards.
func (h *Host) Broadcast(t types.MsgType, payload []byte, except ...PeerID) {
	if err := checkGossip(t, payload); err != nil {
		h.log.Error("p2p: broadcast dropped", "err", err)
		return
	}
	for _, p := range h.readyPeers(except) {
		h.enqueue(p, t, payload)
	}
}

// Send queues a gossip message to one peer without blocking. It returns
// ErrNoPeer if the peer is not connected and ErrQueueFull if its queue is
// full. The caller must not modify payload afterwards.
func (h *Host) Send(to PeerID, t types.MsgType, payload []byte) error {
	if err := checkGossip(t, payload); err != nil {
		return err
	}
	p := h.peer(to)
	if p == nil || !p.isReady() {
		return fmt.Errorf("p2p: send %s to %s: %w", t, to, ErrNoPeer)
	}
	if !h.enqueue(p, t, payload) {
		return fmt.Errorf("p2p: send %s to %s: %w", t, to, ErrQueueFull)
	}
	return nil
}

func checkGossip(t types.MsgType, payload []byte) error {
	if !t.IsGossip() {
		return fmt.Errorf("p2p: %s is not a gossip type (use Request)", t)
	}
	if len(payload) > t.MaxMessage() {
		return fmt.Errorf("p2p: %s of %d bytes exceeds its cap %d", t, len(payload), t.MaxMessage())
	}
	return nil
}

// Request sends a request to a connected peer and returns the response
// payload. The whole exchange is bounded by ctx and Config.RequestTimeout.
// The response is read through a limit of t.MaxResponse(); a longer one
// bans the peer (ErrMisbehaving). A peer's StatusNotFound returns an error
// wrapping ErrNotFound, StatusBusy ErrBusy, StatusRefused ErrRefused.
func (h *Host) Request(ctx context.Context, to PeerID, t types.MsgType, payload []byte) ([]byte, error) {
	if !t.IsRequest() {
		return nil, fmt.Errorf("p2p: %s is not a request type (use Broadcast or Send)", t)
	}
	if len(payload) > t.MaxMessage() {
		return nil, fmt.Errorf("p2p: %s request of %d bytes exceeds its cap %d", t, len(payload), t.MaxMessage())
	}
	p := h.peer(to)
	if p == nil || !p.isReady() {
		return nil, fmt.Errorf("p2p: %s request to %s: %w", t, to, ErrNoPeer)
	}
	return h.request(ctx, p, t, payload)
}

// Peers lists the connected peers whose Hello is done.
func (h *Host) Peers() []PeerInfo {
	ps := h.readyPeers(nil)
	out := make([]PeerInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return slices.Compare(a.ID[:], b.ID[:]) })
	return out
}

// Stats returns a snapshot of the counters.
func (h *Host) Stats() Stats {
	s := Stats{
		MsgsIn:     map[types.MsgType]uint64{},
		MsgsOut:    map[types.MsgType]uint64{},
		BytesIn:    h.stats.bytesIn.Load(),
		BytesOut:   h.stats.bytesOut.Load(),
		Drops:      h.stats.drops.Load(),
		Limited:    h.stats.limited.Load(),
		Bans:       h.stats.bans.Load(),
		Dials:      h.stats.dials.Load(),
		DialErrors: h.stats.dialEr.Load(),
		Rejects:    map[string]uint64{},

		PendingResponseBytes: h.stats.pending.Load(),
		PeakPendingBytes:     h.stats.peak.Load(),
	}
	for i := range h.stats.in {
		if v := h.stats.in[i].Load(); v > 0 {
			s.MsgsIn[types.MsgType(i)] = v
		}
		if v := h.stats.out[i].Load(); v > 0 {
			s.MsgsOut[types.MsgType(i)] = v
		}
	}
	h.mu.Lock()
	for k, v := range h.rejects {
		s.Rejects[k] = v
	}
	s.HandshakesUnproven, s.HandshakesProven = h.hsUnproven, h.hsProven
	for _, p := range h.peers {
		if !p.isReady() {
			continue
		}
		if p.inbound {
			s.Inbound++
		} else {
			s.Outbound++
		}
	}
	h.mu.Unlock()
	return s
}

// acceptLoop accepts inbound connections until ctx ends.
func (h *Host) acceptLoop(ctx context.Context) {
	for {
		conn, err := h.ln.Accept(ctx)
		if err != nil {
			return
		}
		if !h.spawn(func() {
			p, err := h.attach(conn, true)
			if err != nil {
				h.log.Debug("p2p: inbound connection dropped", "remote", conn.RemoteAddr().String(), "err", err)
				return
			}
			if err := h.hello(h.ctx, p); err != nil {
				h.log.Debug("p2p: inbound hello failed", "peer", p.id.String(), "err", err)
			}
		}) {
			conn.CloseWithError(CodeShutdown, "shutting down")
		}
	}
}

// dialLoop keeps bootstrap peers connected, fills outbound slots from the
// address book and, every PexInterval, asks each peer for its peers and
// refreshes its Status.
func (h *Host) dialLoop(ctx context.Context) {
	tick := time.NewTicker(h.cfg.DialInterval)
	defer tick.Stop()
	var lastPex time.Time
	for {
		h.dialTick(ctx)
		if time.Since(lastPex) >= h.cfg.PexInterval {
			lastPex = time.Now()
			h.exchange(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// connectedLocked reports whether e's peer is connected. h.mu must be held.
func (h *Host) connectedLocked(e *dialEntry) bool {
	if e.hasID {
		return h.peers[e.id] != nil
	}
	return false
}

func (h *Host) dialTick(ctx context.Context) {
	now := time.Now()
	var jobs []*dialEntry
	h.mu.Lock()
	for _, e := range h.boot {
		if e.dialing || now.Before(e.next) || h.connectedLocked(e) || (e.hasID && h.bannedLocked(e.id)) {
			continue
		}
		e.dialing = true
		jobs = append(jobs, e)
	}
	out := 0
	for _, p := range h.peers {
		if !p.inbound {
			out++
		}
	}
	for _, e := range h.book {
		if e.dialing {
			out++
		}
	}
	for id, e := range h.book {
		if out >= h.cfg.MaxOutbound {
			break
		}
		if e.dialing || now.Before(e.next) || h.peers[id] != nil || h.bannedLocked(id) {
			continue
		}
		e.dialing = true
		out++
		jobs = append(jobs, e)
	}
	h.mu.Unlock()
	for _, e := range jobs {
		var want *PeerID
		if e.hasID {
			id := e.id
			want = &id
		}
		addr := e.addr
		if !h.spawn(func() {
			id, err := h.dial(ctx, addr, want)
			h.mu.Lock()
			defer h.mu.Unlock()
			e.dialing = false
			if err != nil {
				e.fails++
				if !slices.Contains(h.boot, e) && e.fails >= maxBookFails && h.book[e.id] == e {
					delete(h.book, e.id) // learned addresses that keep failing make room
				}
				back := h.cfg.DialBackoff << min(e.fails-1, 20)
				e.next = time.Now().Add(min(back, h.cfg.DialBackoffMax))
				h.log.Debug("p2p: dial failed", "addr", addr, "fails", e.fails, "err", err)
				return
			}
			e.fails, e.next = 0, time.Time{}
			if !e.hasID {
				e.id, e.hasID = id, true
			}
		}) {
			return
		}
	}
}

// exchange asks every ready peer for its peers (merged into the address
// book) and refreshes its Status with a Hello.
func (h *Host) exchange(ctx context.Context) {
	for _, p := range h.readyPeers(nil) {
		if !p.exchanging.CompareAndSwap(false, true) {
			continue // the previous round with p is still running
		}
		h.spawn(func() {
			defer p.exchanging.Store(false)
			if err := h.hello(ctx, p); err != nil {
				h.log.Debug("p2p: status refresh failed", "peer", p.id.String(), "err", err)
				return
			}
			resp, err := h.request(ctx, p, types.ReqPeers, nil)
			if err != nil {
				h.log.Debug("p2p: peer exchange failed", "peer", p.id.String(), "err", err)
				return
			}
			addrs, err := DecodePeers(resp)
			if err != nil {
				h.Ban(p.id, err.Error())
				return
			}
			h.learn(addrs)
		})
	}
}

// learn adds the new ids of a peer-exchange answer to the address book (up
// to maxBook); the address of an id already known stays as it is.
func (h *Host) learn(addrs []PeerAddr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range addrs {
		if a.ID == h.id {
			continue
		}
		if h.book[a.ID] != nil {
			// Known already: peer exchange never rewrites an address, or
			// one peer could point us away from an honest one (eclipse).
			continue
		}
		if len(h.book) >= maxBook {
			continue
		}
		h.book[a.ID] = &dialEntry{addr: a.Addr, id: a.ID, hasID: true}
	}
}

// goodPeers returns the listen addresses of ready peers (other than
// except) for a ReqPeers response.
func (h *Host) goodPeers(except PeerID) []PeerAddr {
	var out []PeerAddr
	for _, p := range h.readyPeers([]PeerID{except}) {
		if a := p.listenAddr(); a != "" {
			out = append(out, PeerAddr{ID: p.id, Addr: a})
		}
		if len(out) == MaxPeersPerResponse {
			break
		}
	}
	return out
}

// helloMsg is this node's Hello now.
func (h *Host) helloMsg() Hello {
	port := 0
	if ua, ok := h.udp.LocalAddr().(*net.UDPAddr); ok {
		port = ua.Port
	}
	return Hello{Version: ProtocolVersion, ChainID: h.cfg.ChainID, ListenPort: uint16(port), Status: h.handler.Status()}
}

// checkHello compares a peer's Hello with ours; it returns the close code
// and an error saying what differs.
func (h *Host) checkHello(m Hello) (quic.ApplicationErrorCode, error) {
	if m.Version != ProtocolVersion {
		return CodeWrongVersion, fmt.Errorf("%w: peer speaks version %d, we speak %d (upgrade the older node)", ErrWrongVersion, m.Version, ProtocolVersion)
	}
	if m.ChainID != h.cfg.ChainID {
		return CodeWrongChain, fmt.Errorf("%w: peer's genesis is %s, ours is %s (check the peer address or the genesis)", ErrWrongChain, m.ChainID, h.cfg.ChainID)
	}
	return 0, nil
}
