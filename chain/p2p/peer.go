package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

// peer is one live connection to a peer. Its loops (bidi accept, uni
// accept, send workers, a watcher) end when the connection does.
type peer struct {
	id      PeerID
	conn    *quic.Conn
	inbound bool
	since   time.Time
	sendq   chan outMsg

	ready      atomic.Bool // a Hello was validated, in either direction
	exchanging atomic.Bool // a Status refresh + peer exchange is running

	mu         sync.Mutex
	lim        limiter
	status     Status
	listenPort uint16

	msgsIn, msgsOut, bytesIn, bytesOut, drops, limited atomic.Uint64

	pending atomic.Int64 // bytes of responses to this peer being written
}

type outMsg struct {
	t       types.MsgType
	payload []byte
}

func (p *peer) isReady() bool { return p.ready.Load() }

func (p *peer) setHello(m Hello) {
	p.mu.Lock()
	p.status, p.listenPort = m.Status, m.ListenPort
	p.mu.Unlock()
	p.ready.Store(true)
}

// listenAddr is the peer's remote IP with the port from its Hello, or "".
func (p *peer) listenAddr() string {
	p.mu.Lock()
	port := p.listenPort
	p.mu.Unlock()
	ua, ok := p.conn.RemoteAddr().(*net.UDPAddr)
	if port == 0 || !ok {
		return ""
	}
	return net.JoinHostPort(ua.IP.String(), strconv.Itoa(int(port)))
}

func (p *peer) info() PeerInfo {
	p.mu.Lock()
	st := p.status
	p.mu.Unlock()
	return PeerInfo{
		ID: p.id, Addr: p.conn.RemoteAddr(), ListenAddr: p.listenAddr(), Inbound: p.inbound,
		Status: st, Since: p.since,
		MsgsIn: p.msgsIn.Load(), MsgsOut: p.msgsOut.Load(),
		BytesIn: p.bytesIn.Load(), BytesOut: p.bytesOut.Load(),
		Drops: p.drops.Load(), Limited: p.limited.Load(),
	}
}

// errDuplicate: attach kept an existing connection to the same peer.
var errDuplicate = errors.New("p2p: duplicate connection")

// dialer returns the id of the side that dialled p's connection.
func (h *Host) dialer(p *peer) PeerID {
	if p.inbound {
		return p.id
	}
	return h.id
}

// attach registers a handshaken connection as a peer and starts its loops.
// If a live connection to the same peer exists, one is kept: the one
// dialled by the lower id (both sides decide alike), or the newer one if
// both were dialled by the same side (the older is likely stale). When the
// existing one is kept, attach closes conn (CodeDuplicate) and returns the
// kept peer with errDuplicate.
func (h *Host) attach(conn *quic.Conn, inbound bool) (*peer, error) {
	id, err := peerIDFromConn(conn)
	if err != nil {
		conn.CloseWithError(CodeHelloFailed, "bad certificate")
		return nil, err
	}
	if id == h.id {
		conn.CloseWithError(CodeSelf, "connected to self")
		return nil, ErrSelf
	}
	p := &peer{
		id: id, conn: conn, inbound: inbound, since: h.now(),
		sendq: make(chan outMsg, h.cfg.SendQueue),
		lim:   newLimiter(&h.cfg, h.now()),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.CloseWithError(CodeShutdown, "shutting down")
		return nil, ErrClosed
	}
	if h.bannedLocked(id) {
		h.rejectLocked("banned")
		h.mu.Unlock()
		conn.CloseWithError(CodeBanned, "banned")
		return nil, fmt.Errorf("%w: %s", ErrBanned, id)
	}
	old := h.peers[id]
	if old != nil && old.conn.Context().Err() == nil {
		keepNew := h.dialer(old) == h.dialer(p)
		if !keepNew {
			lower := h.id
			if string(id[:]) < string(h.id[:]) {
				lower = id
			}
			keepNew = h.dialer(p) == lower
		}
		if !keepNew {
			h.mu.Unlock()
			conn.CloseWithError(CodeDuplicate, "duplicate connection")
			return old, errDuplicate
		}
	}
	h.peers[id] = p
	h.mu.Unlock()
	if old != nil {
		old.conn.CloseWithError(CodeDuplicate, "duplicate connection")
	}
	h.log.Debug("p2p: connected", "peer", id.String(), "remote", conn.RemoteAddr().String(), "inbound", inbound)

	ok := h.spawn(func() { h.watch(p) }) &&
		h.spawn(func() { h.bidiLoop(p) }) &&
		h.spawn(func() { h.uniLoop(p) })
	for i := 0; ok && i < h.cfg.SendWorkers; i++ {
		ok = h.spawn(func() { h.sendLoop(p) })
	}
	if !ok {
		conn.CloseWithError(CodeShutdown, "shutting down")
		return nil, ErrClosed
	}
	return p, nil
}

// watch removes p from the peer table when its connection ends.
func (h *Host) watch(p *peer) {
	<-p.conn.Context().Done()
	h.mu.Lock()
	if h.peers[p.id] == p {
		delete(h.peers, p.id)
	}
	h.mu.Unlock()
	h.log.Debug("p2p: disconnected", "peer", p.id.String(), "cause", context.Cause(p.conn.Context()))
}

// hello sends our Hello to p and validates the answer; on failure it closes
// the connection.
func (h *Host) hello(ctx context.Context, p *peer) error {
	resp, err := h.request(ctx, p, types.ReqHello, h.helloMsg().Encode())
	if err != nil {
		msg := "hello failed: " + err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		p.conn.CloseWithError(CodeHelloFailed, msg)
		return fmt.Errorf("p2p: hello to %s: %w", p.id, explainClose(err))
	}
	m, err := DecodeHello(resp)
	if err != nil {
		p.conn.CloseWithError(CodeHelloFailed, "malformed hello")
		return fmt.Errorf("p2p: hello from %s: %w", p.id, err)
	}
	if code, err := h.checkHello(m); err != nil {
		h.refuse(p, code, err, 0)
		return fmt.Errorf("p2p: hello from %s: %w", p.id, err)
	}
	h.markReady(p, m)
	return nil
}

// refuse logs and counts a Hello mismatch, then closes the connection
// with code (after delay, if positive, so that a refusal response can
// arrive first). The log line says what to fix.
func (h *Host) refuse(p *peer, code quic.ApplicationErrorCode, err error, delay time.Duration) {
	reason := "wrong-version"
	if code == CodeWrongChain {
		reason = "wrong-chain"
	}
	h.reject(reason)
	h.log.Warn("p2p: peer refused", "peer", p.id.String(), "remote", p.conn.RemoteAddr().String(), "err", err)
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	if delay <= 0 {
		p.conn.CloseWithError(code, msg)
		return
	}
	time.AfterFunc(delay, func() { p.conn.CloseWithError(code, msg) })
}

// explainClose turns "the peer closed the connection with code X" into our
// sentinel errors.
func explainClose(err error) error {
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || !ae.Remote {
		return err
	}
	switch ae.ErrorCode {
	case CodeWrongChain:
		return fmt.Errorf("%w: peer closed the connection: %s", ErrWrongChain, ae.ErrorMessage)
	case CodeWrongVersion:
		return fmt.Errorf("%w: peer closed the connection: %s", ErrWrongVersion, ae.ErrorMessage)
	case CodeBanned:
		return fmt.Errorf("%w: peer banned us: %s", ErrRefused, ae.ErrorMessage)
	case CodeHelloFailed:
		return fmt.Errorf("%w: peer closed the connection: %s", ErrRefused, ae.ErrorMessage)
	}
	return err
}

// request runs one request on a new bidirectional stream of p.
func (h *Host) request(ctx context.Context, p *peer, t types.MsgType, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	s, err := p.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("p2p: %s request to %s: open stream: %w", t, p.id, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelWrite(streamCancelled)
		s.CancelRead(streamCancelled)
	})
	defer stop()
	defer s.CancelRead(streamDone) // we read exactly one frame; release the stream

	if err := writeFrame(s, byte(t), payload); err != nil {
		return nil, fmt.Errorf("p2p: %s request to %s: send: %w", t, p.id, err)
	}
	s.Close()
	h.stats.out[t].Add(1)
	h.stats.bytesOut.Add(uint64(len(payload)))
	p.msgsOut.Add(1)
	p.bytesOut.Add(uint64(len(payload)))

	status, n, err := readHeader(s)
	if err != nil {
		return nil, fmt.Errorf("p2p: %s request to %s: %w", t, p.id, ctxErr(ctx, err))
	}
	max := MaxErrorMsg
	if status == StatusOK {
		max = t.MaxResponse()
	}
	if err := checkCap(status, n, max); err != nil {
		h.Ban(p.id, fmt.Sprintf("%s response: %v", t, err))
		return nil, fmt.Errorf("p2p: %s request to %s: response: %w", t, p.id, err)
	}
	body, err := readPayload(s, n)
	if err != nil {
		return nil, fmt.Errorf("p2p: %s request to %s: %w", t, p.id, ctxErr(ctx, err))
	}
	h.stats.bytesIn.Add(uint64(n))
	p.bytesIn.Add(uint64(n))
	switch status {
	case StatusOK:
		return body, nil
	case StatusNotFound:
		return nil, fmt.Errorf("%w: %s request to %s: %q", ErrNotFound, t, p.id, body)
	case StatusBusy:
		return nil, fmt.Errorf("%w: %s request to %s: %q", ErrBusy, t, p.id, body)
	case StatusRefused:
		return nil, fmt.Errorf("%w: %s request to %s: %q", ErrRefused, t, p.id, body)
	}
	return nil, fmt.Errorf("p2p: %s request to %s failed (status %d): %q", t, p.id, status, body)
}

// ctxErr prefers the context's error (a deadline says more than "stream
// reset").
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// writeFrame writes the header and the payload (two writes, no copy).
func writeFrame(w interface{ Write([]byte) (int, error) }, kind byte, payload []byte) error {
	var hdr [FrameHeaderSize]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

// enqueue queues a gossip message to p without blocking.
func (h *Host) enqueue(p *peer, t types.MsgType, payload []byte) bool {
	select {
	case p.sendq <- outMsg{t, payload}:
		return true
	default:
		p.drops.Add(1)
		h.stats.drops.Add(1)
		return false
	}
}

// sendLoop writes queued gossip, one unidirectional stream per message.
func (h *Host) sendLoop(p *peer) {
	done := p.conn.Context().Done()
	for {
		select {
		case <-done:
			return
		case m := <-p.sendq:
			h.writeGossip(p, m)
		}
	}
}

func (h *Host) writeGossip(p *peer, m outMsg) {
	ctx, cancel := context.WithTimeout(p.conn.Context(), h.cfg.RequestTimeout)
	defer cancel()
	s, err := p.conn.OpenUniStreamSync(ctx)
	if err != nil {
		h.log.Debug("p2p: gossip: open stream", "peer", p.id.String(), "err", err)
		return
	}
	s.SetWriteDeadline(time.Now().Add(h.cfg.RequestTimeout))
	if err := writeFrame(s, byte(m.t), m.payload); err != nil {
		s.CancelWrite(streamCancelled)
		h.log.Debug("p2p: gossip: write", "peer", p.id.String(), "type", m.t.String(), "err", err)
		return
	}
	s.Close()
	h.stats.out[m.t].Add(1)
	h.stats.bytesOut.Add(uint64(len(m.payload)))
	p.msgsOut.Add(1)
	p.bytesOut.Add(uint64(len(m.payload)))
}

// uniLoop accepts p's gossip streams.
func (h *Host) uniLoop(p *peer) {
	ctx := p.conn.Context()
	for {
		s, err := p.conn.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		if !h.spawn(func() { h.handleGossip(p, s) }) {
			return
		}
	}
}

// bidiLoop accepts p's request streams.
func (h *Host) bidiLoop(p *peer) {
	ctx := p.conn.Context()
	for {
		s, err := p.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		if !h.spawn(func() { h.handleRequest(p, s) }) {
			return
		}
	}
}

// admitMsg charges a message to p's buckets (gossip or request) and reports
// whether to handle it; a drop is counted, sustained abuse bans p.
func (h *Host) admitMsg(p *peer, gossip bool, n int) bool {
	p.mu.Lock()
	b := &p.lim.requests
	if gossip {
		b = &p.lim.gossip
	}
	v := p.lim.admit(b, n, h.now())
	p.mu.Unlock()
	if v == allow {
		return true
	}
	// Counted before a ban, so that whoever sees the ban sees its drop.
	p.limited.Add(1)
	h.stats.limited.Add(1)
	if v == abuse {
		h.Ban(p.id, "sustained traffic over the rate limits")
	}
	return false
}

// handleGossip reads one gossip frame and hands it to the Handler.
func (h *Host) handleGossip(p *peer, s *quic.ReceiveStream) {
	defer s.CancelRead(streamDone)
	s.SetReadDeadline(time.Now().Add(h.cfg.RequestTimeout))
	kind, n, err := readHeader(s)
	if err != nil {
		return
	}
	t := types.MsgType(kind)
	max := -1
	if t.IsGossip() {
		max = t.MaxMessage()
	}
	if err := checkCap(kind, n, max); err != nil {
		h.Ban(p.id, fmt.Sprintf("gossip stream: %v", err))
		return
	}
	if !p.isReady() {
		h.reject("gossip-before-hello")
		return
	}
	if !h.admitMsg(p, true, n) {
		s.CancelRead(streamDropped)
		return
	}
	payload, err := readPayload(s, n)
	if err != nil {
		h.log.Debug("p2p: gossip: read", "peer", p.id.String(), "type", t.String(), "err", err)
		return
	}
	h.stats.in[t].Add(1)
	h.stats.bytesIn.Add(uint64(n))
	p.msgsIn.Add(1)
	p.bytesIn.Add(uint64(n))
	if err := h.handler.Gossip(p.id, t, payload); err != nil {
		if errors.Is(err, ErrMisbehaving) {
			h.Ban(p.id, fmt.Sprintf("%s: %v", t, err))
			return
		}
		h.log.Debug("p2p: gossip rejected by handler", "peer", p.id.String(), "type", t.String(), "err", err)
	}
}

// The frame kinds reserved for requests: chain/types numbers them from 16
// up, and later protocol revisions add types in this range.
const (
	firstRequestKind = 16
	lastRequestKind  = 63
)

// handleRequest reads one request frame, answers it and closes the stream.
func (h *Host) handleRequest(p *peer, s *quic.Stream) {
	defer s.CancelRead(streamDone)
	s.SetDeadline(time.Now().Add(h.cfg.RequestTimeout))
	kind, n, err := readHeader(s)
	if err != nil {
		s.CancelWrite(streamCancelled)
		return
	}
	t := types.MsgType(kind)
	max := -1
	if t.IsRequest() {
		max = t.MaxMessage()
	} else if kind >= firstRequestKind && kind <= lastRequestKind && n <= types.MaxRequestMsg {
		// A request type of a newer protocol revision: answer "not
		// found" (the asker tries another peer), never ban for it; it
		// still costs the peer a request token.
		if !h.admitMsg(p, false, n) {
			h.respond(s, StatusBusy, "rate limited")
			return
		}
		if _, err := readPayload(s, n); err == nil {
			h.reject("unknown-request-type")
			h.respond(s, StatusNotFound, fmt.Sprintf("unsupported request type %d (this node speaks protocol version %d)", kind, ProtocolVersion))
		}
		return
	}
	if err := checkCap(kind, n, max); err != nil {
		h.Ban(p.id, fmt.Sprintf("request stream: %v", err))
		return
	}
	if t != types.ReqHello && !p.isReady() {
		h.reject("request-before-hello")
		if h.admitMsg(p, false, n) { // refusals cost a token too: no free spinning
			h.respond(s, StatusRefused, "send hello first")
		}
		return
	}
	if !h.admitMsg(p, false, n) {
		h.respond(s, StatusBusy, "rate limited")
		return
	}
	payload, err := readPayload(s, n)
	if err != nil {
		s.CancelWrite(streamCancelled)
		return
	}
	h.stats.in[t].Add(1)
	h.stats.bytesIn.Add(uint64(n))
	p.msgsIn.Add(1)
	p.bytesIn.Add(uint64(n))

	switch t {
	case types.ReqHello:
		h.serveHello(p, s, payload)
		return
	case types.ReqPeers:
		h.respondSmall(p, s, StatusOK, EncodePeers(h.goodPeers(p.id)))
		return
	}
	if p.pending.Load() >= h.cfg.MaxPendingPerPeer || h.stats.pending.Load() >= h.cfg.MaxPendingBytes {
		// The peer has not read what it asked for before (or the host
		// holds its cap of unsent responses): make nothing more for it.
		h.dropResponse(p, s, "response-unread")
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.RequestTimeout)
	defer cancel()
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		h.respond(s, StatusBusy, "no serve slot")
		return
	}
	resp, err := h.handler.Serve(ctx, p.id, t, payload)
	<-h.sem
	switch {
	case errors.Is(err, ErrMisbehaving):
		h.Ban(p.id, fmt.Sprintf("%s request: %v", t, err))
	case errors.Is(err, ErrNotFound):
		h.respond(s, StatusNotFound, err.Error())
	case err != nil:
		h.respond(s, StatusError, err.Error())
	case len(resp) > t.MaxResponse():
		h.log.Error("p2p: handler response over the cap, not sent", "type", t.String(), "bytes", len(resp), "cap", t.MaxResponse())
		h.respond(s, StatusError, "response too large")
	default:
		h.respondBytes(p, s, StatusOK, resp)
	}
}

// serveHello answers a peer's Hello with ours, or refuses it (and closes the
// connection a moment later, after the refusal had a chance to arrive).
func (h *Host) serveHello(p *peer, s *quic.Stream, payload []byte) {
	m, err := DecodeHello(payload)
	if err != nil && m.Version == ProtocolVersion {
		h.Ban(p.id, fmt.Sprintf("hello: %v", err))
		return
	}
	if code, err := h.checkHello(m); err != nil {
		h.respond(s, StatusRefused, err.Error())
		h.refuse(p, code, err, time.Second)
		return
	}
	h.markReady(p, m)
	h.respondSmall(p, s, StatusOK, h.helloMsg().Encode())
}

// respondSmall writes one of p2p's own small answers (Hello, peers: a few
// KiB at most, rate limited like every request) outside the pending caps,
// so that a peer at its cap is not disconnected by a refused Hello.
func (h *Host) respondSmall(p *peer, s *quic.Stream, status byte, b []byte) {
	if err := writeFrame(s, status, b); err != nil {
		s.CancelWrite(streamCancelled)
		return
	}
	s.Close()
	h.stats.bytesOut.Add(uint64(len(b)))
	p.bytesOut.Add(uint64(len(b)))
}

// reserve counts n response bytes as pending to p and the host, unless
// that goes over MaxPendingPerPeer or MaxPendingBytes (a lone response to
// a peer always fits its own cap).
func (h *Host) reserve(p *peer, n int64) bool {
	for {
		cur := p.pending.Load()
		if cur > 0 && cur+n > h.cfg.MaxPendingPerPeer {
			return false
		}
		if p.pending.CompareAndSwap(cur, cur+n) {
			break
		}
	}
	total := h.stats.pending.Add(n)
	if total > h.cfg.MaxPendingBytes && total > n {
		h.unreserve(p, n)
		return false
	}
	for {
		pk := h.stats.peak.Load()
		if total <= pk || h.stats.peak.CompareAndSwap(pk, total) {
			return true
		}
	}
}

func (h *Host) unreserve(p *peer, n int64) {
	p.pending.Add(-n)
	h.stats.pending.Add(-n)
}

// dropResponse cancels a response stream (streamUnread) and counts why.
func (h *Host) dropResponse(p *peer, s *quic.Stream, reason string) {
	s.CancelWrite(streamUnread)
	h.reject(reason)
	h.log.Debug("p2p: response cancelled: the peer is not reading its responses", "peer", p.id.String(), "reason", reason)
}

// respond writes a non-OK response with a message cut to MaxErrorMsg.
func (h *Host) respond(s *quic.Stream, status byte, msg string) {
	if len(msg) > MaxErrorMsg {
		msg = msg[:MaxErrorMsg]
	}
	if writeFrame(s, status, []byte(msg)) == nil {
		s.Close()
	}
}

// respondBytes writes a Handler's response and counts its bytes. The bytes count
// as pending to p (and the host) until the write ends; a response over
// the caps is not sent, and one whose write outlasts
// ResponseWriteTimeout is cancelled: either way the stream is reset
// with streamUnread and counted.
func (h *Host) respondBytes(p *peer, s *quic.Stream, status byte, b []byte) {
	n := int64(len(b))
	if !h.reserve(p, n) {
		h.dropResponse(p, s, "response-unread")
		return
	}
	defer h.unreserve(p, n)
	s.SetWriteDeadline(time.Now().Add(h.cfg.ResponseWriteTimeout))
	if err := writeFrame(s, status, b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.dropResponse(p, s, "response-timeout")
			return
		}
		s.CancelWrite(streamCancelled)
		return
	}
	s.Close()
	h.stats.bytesOut.Add(uint64(len(b)))
	p.bytesOut.Add(uint64(len(b)))
}
