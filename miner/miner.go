// Package miner is the task server: a QUIC endpoint that authenticates
// validators' task requests against the local chain state, admits them
// cheapest check first, queues them by stake, and streams the model's
// tokens back with a signed final frame (see package task and
// docs/task-protocol.md).
//
// Serving: with Config.Model, one scheduler per miner decodes up to
// Limits.Slots answers together, one token of each per batched step
// (continuous batching, batch.go), with exactly the tokens and log-probs of
// one-at-a-time generation; with Config.Answer, one worker answers one
// request at a time. Tokens are written to the stream as each is generated,
// by a separate writer per stream, so a slow reader never stalls the model.
package miner

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

// ChainView is the miner's read access to the chain: the metagraph of a
// subnet at the node's current head.
type ChainView interface {
	Metagraph(netuid uint16) (*state.Metagraph, error)
}

// Heighter is optionally implemented by a ChainView: when it is, the miner
// refreshes its sender table whenever the height changes (and at most every
// Limits.ChainRefresh otherwise).
type Heighter interface{ Height() uint64 }

// Limits bounds what one miner accepts. Zero fields take the defaults
// given.
type Limits struct {
	// Window is how far an envelope's timestamp may be from the miner's
	// clock, either way, and how long a nonce is remembered. Default 10 s.
	Window time.Duration
	// ReplayCache is the most nonces remembered; when it is full of
	// unexpired nonces new requests get CodeBusy. Default 65536.
	ReplayCache int
	// Rate is the sustained requests per second admitted per validator
	// hotkey, with bursts of Burst. Defaults 50/s and 100.
	Rate  float64
	Burst int
	// PerHotkey is the most requests one hotkey may have queued or running
	// at once. Default 64.
	PerHotkey int
	// Queue is the most admitted requests waiting for the model. Default 256.
	Queue int
	// MinStake is the least stake (rao) a sender needs. Default 0.
	MinStake uint64
	// StreamsPerConn is QUIC's limit on concurrent streams per connection.
	// Default 256.
	StreamsPerConn int
	// MaxConns is the most QUIC connections held at once; more are closed
	// at once. Default 4096.
	MaxConns int
	// Handshakes is the rate of new QUIC connections accepted per second
	// (all sources together), with bursts of HandshakeBurst; HandshakesPerIP
	// and HandshakeBurstPerIP do the same per source (an IPv4 address or an
	// IPv6 /64). Connections over the rate are refused before any
	// cryptography. Validators keep one connection per miner, so these only
	// bite floods. Defaults 100/s, 200, 10/s, 50.
	Handshakes, HandshakesPerIP         float64
	HandshakeBurst, HandshakeBurstPerIP int
	// NoInitialFilter turns off dropping QUIC Initial packets in the
	// kernel (kfilter.go) after a refusal: every refused connection then
	// costs the miner a CONNECTION_REFUSED reply. Linux only; off
	// elsewhere.
	NoInitialFilter bool
	// ReadTimeout bounds the arrival of a whole request on a stream after
	// it opens; a stream that sends nothing is rejected with CodeTimeout
	// and its slot freed. Default 2 s.
	ReadTimeout time.Duration
	// AnswerTimeout bounds one answer from leaving the queue to the final
	// frame. Default 60 s.
	AnswerTimeout time.Duration
	// WriteTimeout bounds each write of an answer's frames (all those
	// pending when the stream's writer wakes): a write the client's flow
	// control does not let through within it (a client not reading) has
	// the stream cancelled, so unread answers do not pile up. Default 10 s.
	WriteTimeout time.Duration
	// UnservedTimeout closes a connection that has had no request admitted
	// this long after its handshake (task.CloseUnserved), so idle
	// connections kept alive by PINGs cannot hold all MaxConns. A
	// validator's connection, once a request was admitted on it, may idle
	// up to IdleTimeout. Default 10 s.
	UnservedTimeout time.Duration
	// IdleTimeout is QUIC's idle timeout. Default 30 s.
	IdleTimeout time.Duration
	// ChainRefresh is the longest a sender table is used. Default 1 s.
	ChainRefresh time.Duration
	// BadRequests is how many requests in a row one connection may have
	// refused for faults of the sender (malformed, too large, bad
	// signature, stale, replayed, …: task.Code.SenderFault)
	// before the miner closes it with task.CloseBadRequests. Default 16.
	BadRequests int
	// Slots is the most answers Config.Model generates together, decoded
	// one token each per batched step (continuous batching, batch.go); each
	// slot holds a KV cache (model.KVCacheBytes), allocated when first
	// used. 1 answers one request at a time; values above model.MaxBatch
	// count as model.MaxBatch. Unused with Config.Answer. Default 8.
	Slots int
	// SlotMemory caps the bytes of those KV caches: Slots is cut to
	// SlotMemory / model.KVCacheBytes (at least 1), so a long-context model
	// gets fewer slots instead of running out of memory under load.
	// Default 4 GiB.
	SlotMemory int64
}

func (l *Limits) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.Window, 10*time.Second)
	def(&l.ReadTimeout, 2*time.Second)
	def(&l.AnswerTimeout, 60*time.Second)
	def(&l.IdleTimeout, 30*time.Second)
	def(&l.WriteTimeout, 10*time.Second)
	def(&l.UnservedTimeout, 10*time.Second)
	def(&l.ChainRefresh, time.Second)
	defi(&l.ReplayCache, 1<<16)
	defi(&l.Burst, 100)
	defi(&l.PerHotkey, 64)
	defi(&l.Queue, 256)
	defi(&l.StreamsPerConn, 256)
	defi(&l.MaxConns, 4096)
	defi(&l.BadRequests, 16)
	if l.Rate <= 0 {
		l.Rate = 50
	}
	if l.Handshakes <= 0 {
		l.Handshakes = 100
	}
	if l.HandshakesPerIP <= 0 {
		l.HandshakesPerIP = 10
	}
	defi(&l.HandshakeBurst, 200)
	defi(&l.HandshakeBurstPerIP, 50)
}

// AnswerFunc produces the tokens for an admitted request, calling emit once
// per token in order as each is generated; emit fails when the stream is
// gone. ctx ends when the client goes away or the answer times out. It is
// called from one worker at a time.
type AnswerFunc func(ctx context.Context, body task.Body, emit func(task.Token) error) error

// Config configures a Miner.
type Config struct {
	Key       ed25519.PrivateKey // the hotkey; also the TLS certificate key
	Netuid    uint16
	Model     *model.Model // served honestly unless Answer is set
	ModelHash [32]byte     // SHA-256 of the GGUF file: requests naming another are refused
	StopIDs   []int        // token ids that end a generation (EOS); may be empty
	Chain     ChainView
	Limits    Limits
	Logger    *slog.Logger     // nil: discard
	Now       func() time.Time // nil: time.Now

	// SignBatch caps how many final frames that finish together share one
	// signature (task.BatchSigner: a lone answer is signed alone, at
	// once). 0 means task.MaxBatch; 1 signs every final frame alone.
	SignBatch int

	// Accel, when set, runs Model's forward passes on another device (the
	// GPU runner; see accel.go) one answer at a time while it can serve;
	// otherwise answers run on Model here (batched when Limits.Slots > 1).
	// An answer the accelerator fails mid-way finishes on Model.
	Accel Accelerator

	// Answer replaces honest generation. DEVNET ONLY: it exists so the
	// devnet can run cheating miners (see RandomAnswer and ModelAnswer in
	// devnet.go); a real miner leaves it nil.
	Answer AnswerFunc
}

// Miner serves tasks. Make one with New, run it with Serve.
type Miner struct {
	cfg    Config
	id     types.AccountID
	tls    *tls.Config
	answer AnswerFunc
	log    *slog.Logger
	now    func() time.Time
	signer *task.BatchSigner // final frames

	senders senderCache
	replay  *replayCache
	q       *queue
	m       metrics

	mu      sync.Mutex
	hk      map[types.AccountID]*hotkeyState
	addr    net.Addr
	conns   map[*quic.Conn]*connState
	serving bool
	ready   chan struct{}

	hsMu  sync.Mutex
	hsAll bucket
	hsIP  map[string]*bucket

	nconns    atomic.Int64
	answering atomic.Int64 // admitted requests whose response is not complete yet
	streamWG  sync.WaitGroup
	drop      *initialDropper // nil: refusals are replies only
}

// New checks cfg and builds a Miner. It does not open sockets.
func New(cfg Config) (*Miner, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("miner: key has %d bytes, want %d", len(cfg.Key), ed25519.PrivateKeySize)
	}
	if cfg.Chain == nil {
		return nil, errors.New("miner: no chain view")
	}
	if cfg.Model == nil && cfg.Answer == nil {
		return nil, errors.New("miner: no model")
	}
	cfg.Limits.defaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tc, err := task.ServerTLS(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("miner: %w", err)
	}
	m := &Miner{
		cfg: cfg, tls: tc, log: cfg.Logger, now: cfg.Now,
		replay: newReplayCache(cfg.Limits.ReplayCache, replayShare(&cfg.Limits)),
		q:      newQueue(cfg.Limits.Queue),
		hk:     map[types.AccountID]*hotkeyState{},
		conns:  map[*quic.Conn]*connState{},
		hsIP:   map[string]*bucket{},
		ready:  make(chan struct{}),
	}
	copy(m.id[:], cfg.Key.Public().(ed25519.PublicKey))
	m.signer = task.NewBatchSigner(cfg.Key, cfg.SignBatch).WithBusy(func() bool { return m.answering.Load() > 0 })
	m.senders.view, m.senders.netuid, m.senders.ttl = cfg.Chain, cfg.Netuid, cfg.Limits.ChainRefresh
	m.answer = cfg.Answer
	if m.answer == nil {
		m.answer = ModelAnswer(cfg.Model, cfg.StopIDs)
	}
	return m, nil
}

// ID is the miner's hotkey.
func (m *Miner) ID() types.AccountID { return m.id }

// Addr is the local address Serve listens on, or nil before Serve starts.
func (m *Miner) Addr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Ready is closed once Serve is accepting connections.
func (m *Miner) Ready() <-chan struct{} { return m.ready }

// Serve accepts task connections on conn until ctx ends, then rejects what
// is queued with CodeShuttingDown, cancels answers in flight, closes every
// connection and returns nil. It returns an error if it cannot start. A
// Miner serves once. Serve does not close conn.
func (m *Miner) Serve(ctx context.Context, conn net.PacketConn) error {
	m.mu.Lock()
	if m.serving {
		m.mu.Unlock()
		return errors.New("miner: already served")
	}
	m.serving = true
	m.mu.Unlock()

	if !m.cfg.Limits.NoInitialFilter {
		m.drop = newInitialDropper(conn, m.log, m.allHold())
		defer m.drop.close()
	}
	tr := &quic.Transport{
		Conn: conn,
		// Ask for a Retry (address validation) once half the connection
		// budget is used, so spoofed-source floods cost one packet each.
		VerifySourceAddress: func(net.Addr) bool { return m.nconns.Load() > int64(m.cfg.Limits.MaxConns/2) },
	}
	ln, err := tr.Listen(m.tls, &quic.Config{
		// QUIC v1 only: the kernel filter knows v1's Initial packets, and
		// other versions get a version negotiation packet, no cryptography.
		Versions:              []quic.Version{quic.Version1},
		MaxIncomingStreams:    int64(m.cfg.Limits.StreamsPerConn),
		MaxIncomingUniStreams: -1,
		MaxIdleTimeout:        m.cfg.Limits.IdleTimeout,
		HandshakeIdleTimeout:  5 * time.Second,
		GetConfigForClient:    m.admitHandshake,
	})
	if err != nil {
		return fmt.Errorf("miner: listen: %w", err)
	}
	m.mu.Lock()
	m.addr = ln.Addr()
	m.mu.Unlock()
	close(m.ready)
	m.log.Info("miner serving", "addr", ln.Addr().String(), "hotkey", types.SS58Encode(m.id), "netuid", m.cfg.Netuid)
	go func() { // off the serving path: a node that drops packets answers slowly
		if err := m.senders.health(m.now()); err != nil {
			m.log.Warn("no chain state yet: /healthz says 503", "err", err)
		}
	}()
	if n := m.parallel(); n > 1 {
		m.log.Info("continuous batching", "slots", n, "kv_cache_mib_per_slot", m.cfg.Model.KVCacheBytes()>>20)
	} else if m.cfg.Answer == nil && m.cfg.Model != nil && m.cfg.Limits.Slots != 1 {
		m.log.Info("one answer at a time: a slot's KV cache does not fit Limits.SlotMemory twice", "kv_cache_mib_per_slot", m.cfg.Model.KVCacheBytes()>>20)
	}

	wctx, wcancel := context.WithCancel(context.Background())
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); m.worker(wctx) }()
	// conns counts connections until they are closed (and forgotten);
	// loops counts their stream-accepting loops, which end with ctx. The
	// two differ: a connection must stay in m.conns after its loop ends, so
	// that shutdown closes it with CONNECTION_CLOSE.
	var conns, loops sync.WaitGroup

	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			break
		}
		if m.nconns.Add(1) > int64(m.cfg.Limits.MaxConns) {
			m.nconns.Add(-1)
			m.m.connsRefused.Add(1)
			c.CloseWithError(task.CloseTooManyConns, "too many connections")
			continue
		}
		cs := &connState{conn: c, batch: task.BatchOK(c.ConnectionState().TLS.NegotiatedProtocol)}
		cs.slot.Store(true)
		m.mu.Lock()
		m.conns[c] = cs
		m.mu.Unlock()
		unserved := time.AfterFunc(m.cfg.Limits.UnservedTimeout, func() {
			if !cs.served.Load() && c.Context().Err() == nil {
				m.m.connsUnserved.Add(1)
				m.freeSlot(cs)
				c.CloseWithError(task.CloseUnserved, "no request admitted")
			}
		})
		context.AfterFunc(c.Context(), func() { unserved.Stop() })
		m.m.conns.Add(1)
		conns.Add(1)
		loops.Add(1)
		go func() {
			defer conns.Done()
			m.serveConn(ctx, c, cs)
			loops.Done()
			// The loop ends when the connection does or when Serve is
			// stopping; in the latter case the connection is still open
			// and shutdown below closes it.
			<-c.Context().Done()
			m.mu.Lock()
			delete(m.conns, c)
			m.mu.Unlock()
			m.freeSlot(cs)
		}()
	}
	// Shutdown. No stream is accepted any more once the loops are done (and
	// so streamWG.Add no longer races streamWG.Wait). Refuse what waits,
	// stop the worker (the answer in flight ends with shutting-down), let
	// the streams write their last frames, give those frames a moment to
	// reach the clients, then close every connection with CONNECTION_CLOSE
	// (tr.Close alone would drop them silently, leaving clients to their
	// idle timeout).
	loops.Wait()
	for _, r := range m.q.drain() {
		m.release(r)
		m.m.rejects[task.CodeShuttingDown].Add(1)
		r.reject(task.CodeShuttingDown, 0, "miner is stopping")
	}
	wcancel()
	<-workerDone
	flushed := make(chan struct{})
	go func() { m.streamWG.Wait(); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(time.Second):
	}
	m.mu.Lock()
	open := make(map[*quic.Conn]*connState, len(m.conns))
	for c, cs := range m.conns {
		open[c] = cs
	}
	m.mu.Unlock()
	var closing sync.WaitGroup
	for c, cs := range open {
		closing.Go(func() {
			if d := cs.grace(c); d > 0 {
				select {
				case <-time.After(d):
				case <-c.Context().Done():
				}
			}
			c.CloseWithError(task.CloseNormal, "miner stopping")
		})
	}
	closing.Wait()
	conns.Wait()
	m.streamWG.Wait() // the connections are closed: every stream ends at once
	tr.Close()
	return nil
}

// connState is what the miner keeps per open connection.
type connState struct {
	conn      *quic.Conn
	lastWrite atomic.Int64 // time of the last stream write (sinceStart), 0: none
	faults    atomic.Int64 // requests refused for sender faults since the last admitted one
	exempted  atomic.Int64 // when its source was last made exempt from Initial holds (sinceStart), 0: never
	served    atomic.Bool  // a request was admitted on it
	slot      atomic.Bool  // it holds one of Limits.MaxConns (freeSlot)
	batch     bool         // it negotiated task.ALPNBatch: final frames may be batch-signed
}

// exemptTime is how long a source that sent an admitted request stays
// exempt from the kernel's Initial holds (kfilter.go).
const exemptTime = 10 * time.Minute

// servedConn records that a request of the connection was admitted: the
// fault count restarts, and the connection's source is exempt from the
// kernel's Initial holds for exemptTime, renewed by admitted requests
// every exemptTime/2 (a validator may keep one connection for hours).
func (m *Miner) servedConn(cs *connState) {
	cs.faults.Store(0)
	cs.served.Store(true)
	last, now := cs.exempted.Load(), sinceStart()
	if (last == 0 || now-time.Duration(last) >= exemptTime/2) && cs.exempted.CompareAndSwap(last, int64(max(now, 1))) {
		if ua, ok := cs.conn.RemoteAddr().(*net.UDPAddr); ok {
			wall := time.Now()
			m.drop.exemptFrom(ua.AddrPort().Addr().Unmap(), wall.Add(exemptTime), wall)
		}
	}
}

// refused records that a request of the connection was refused with code
// and reports whether that makes Limits.BadRequests sender faults in a row
// (task.Code.SenderFault): the caller then closes the connection with
// closeBad (task.CloseBadRequests) once the reject is written. A
// forged or broken client thus costs the miner a bounded amount of work
// per connection, and a new connection costs it a handshake, which is
// rate-limited per source IP.
func (m *Miner) refused(cs *connState, code task.Code) bool {
	return code.SenderFault() && cs.faults.Add(1) == int64(m.cfg.Limits.BadRequests)
}

// closeBad closes cs for too many bad requests (after refused said so).
func (m *Miner) closeBad(cs *connState) {
	m.m.connsClosedBad.Add(1)
	m.freeSlot(cs)
	cs.conn.CloseWithError(task.CloseBadRequests, "too many bad requests")
}

// freeSlot gives cs's connection slot back, once: before the miner
// closes the connection itself, so that a client told of the close can
// connect again at once, or when the connection has ended.
func (m *Miner) freeSlot(cs *connState) {
	if cs.slot.CompareAndSwap(true, false) {
		m.nconns.Add(-1)
	}
}

var epoch = time.Now() // monotonic base for connState times

func sinceStart() time.Duration { return time.Since(epoch) }

// wrote records that a stream of the connection just handed data to QUIC.
func (cs *connState) wrote() { cs.lastWrite.Store(int64(sinceStart())) }

// grace is how long to wait before closing c so that what its streams last
// wrote reaches the client: QUIC drops unsent stream data when the
// connection closes, and the client's streams stop returning buffered data
// once it has processed the CONNECTION_CLOSE. quic-go has no way to wait
// for the data to be acknowledged, so the grace covers one probe timeout
// (srtt + 4 rttvar + the 25 ms default max ack delay, i.e. a retransmission
// of a lost packet) plus the trip, with a floor of closeGraceMin for
// scheduling on a loaded host, capped at closeGraceMax. It counts from the
// last write; a connection that wrote nothing recently is closed at once.
func (cs *connState) grace(c *quic.Conn) time.Duration {
	last := cs.lastWrite.Load()
	if last == 0 {
		return 0
	}
	st := c.ConnectionStats()
	g := 2*st.SmoothedRTT + 4*st.MeanDeviation + 25*time.Millisecond
	g = min(max(g, closeGraceMin), closeGraceMax)
	return time.Duration(last) + g - sinceStart()
}

const (
	closeGraceMin = 100 * time.Millisecond
	closeGraceMax = time.Second
)

// admitHandshake refuses a new connection over the global or per-IP
// handshake rate, before the server does any cryptography for it, and has
// the kernel drop that source's (or, over the global rate, everyone's)
// next Initial packets for a while (kfilter.go): until the source's
// bucket has refilled half its burst, or the global one a quarter.
func (m *Miner) admitHandshake(info *quic.ClientInfo) (*quic.Config, error) {
	l := &m.cfg.Limits
	ip := info.RemoteAddr.String()
	var addr netip.Addr
	if ua, ok := info.RemoteAddr.(*net.UDPAddr); ok {
		addr = ua.AddrPort().Addr().Unmap()
		ip = sourceKey(addr).String() // an IPv6 source is its /64
	}
	now := time.Now() // network limits run on the wall clock
	m.hsMu.Lock()
	defer m.hsMu.Unlock()
	b := m.hsIP[ip]
	if b == nil {
		if len(m.hsIP) >= 1<<16 { // forget idle sources
			for k, v := range m.hsIP {
				if now.Sub(v.last) > time.Minute {
					delete(m.hsIP, k)
				}
			}
		}
		b = &bucket{tokens: float64(l.HandshakeBurstPerIP), last: now}
		m.hsIP[ip] = b
	}
	if !b.peek(now, l.HandshakesPerIP, l.HandshakeBurstPerIP) {
		m.m.handshakesRefused.Add(1)
		if addr.IsValid() {
			hold := holdFor(float64(l.HandshakeBurstPerIP)/2/l.HandshakesPerIP, 100*time.Millisecond, 10*time.Second)
			if m.drop.hold(addr, now.Add(hold), now) {
				m.m.initialHoldsIP.Add(1)
			}
		}
		return nil, errors.New("miner: handshake rate exceeded for this source")
	}
	if !m.hsAll.peek(now, l.Handshakes, l.HandshakeBurst) {
		m.m.handshakesRefused.Add(1)
		if m.drop.hold(netip.Addr{}, now.Add(m.allHold()), now) {
			m.m.initialHoldsAll.Add(1)
		}
		return nil, errors.New("miner: handshake rate exceeded")
	}
	b.tokens--
	m.hsAll.tokens--
	return nil, nil
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
	init   bool
}

// peek refills the bucket to now and reports whether a token is there
// (the caller takes it by decrementing tokens).
func (b *bucket) peek(now time.Time, rate float64, burst int) bool {
	if !b.init {
		b.tokens, b.last, b.init = float64(burst), now, true
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	return b.tokens >= 1
}

// serveConn accepts the streams of one connection until it closes or ctx
// ends.
func (m *Miner) serveConn(ctx context.Context, c *quic.Conn, cs *connState) {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		m.streamWG.Add(1)
		go func() {
			defer m.streamWG.Done()
			m.serveStream(ctx, s, cs)
		}()
	}
}

// allHold is how long every source's Initials are dropped once the global
// handshake rate is spent: a quarter of the global burst's refill.
func (m *Miner) allHold() time.Duration {
	l := &m.cfg.Limits
	return holdFor(float64(l.HandshakeBurst)/4/l.Handshakes, 50*time.Millisecond, 2*time.Second)
}

// holdFor is secs seconds clamped to [lo, hi].
func holdFor(secs float64, lo, hi time.Duration) time.Duration {
	return min(max(time.Duration(secs*float64(time.Second)), lo), hi)
}
