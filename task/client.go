package task

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

// ClientOptions configures a Client. The zero value is usable.
type ClientOptions struct {
	// Transport is a shared QUIC transport to dial from. If nil, one is made
	// on PacketConn.
	Transport *quic.Transport
	// PacketConn is the UDP socket for a new transport. If nil (and
	// Transport is nil), the client listens on an ephemeral UDP port.
	PacketConn net.PacketConn
	// DialTimeout bounds a QUIC handshake. Zero means 5 s.
	DialTimeout time.Duration
	// Timeout bounds one Query from sending to the last frame, on top of
	// the caller's context. Zero means 30 s.
	Timeout time.Duration
	// IdleTimeout is QUIC's idle timeout: a silent miner (killed, cut off)
	// is detected after it. Zero means 10 s.
	IdleTimeout time.Duration
	// Now is the clock for envelope timestamps and latencies. Nil means
	// time.Now.
	Now func() time.Time
	// Rand supplies nonces. Nil means crypto/rand.
	Rand io.Reader
	// SignBatch caps how many concurrent queries' envelopes share one
	// signature (BatchSigner: a lone query is signed alone, at once). 0
	// means MaxBatch; 1 signs every envelope alone.
	SignBatch int
}

// Client is one validator's task client. It keeps one QUIC connection per
// (miner address, miner hotkey, pinned key) and opens one stream per query. It is safe
// for concurrent use.
type Client struct {
	key    ed25519.PrivateKey
	netuid uint16
	opt    ClientOptions
	signer *BatchSigner
	flying atomic.Int64 // queries in QueryWith

	mu      sync.Mutex
	tr      *quic.Transport
	ownTr   bool
	ownConn net.PacketConn // the socket the client opened itself, if any
	conns   map[connKey]*connEntry
	closed  bool
}

// connKey names a pooled connection: the address, the miner the tasks on
// it are addressed to, and the certificate key pinned. The miner is part
// of the key even when its pin is another's: a uid that registered
// another miner's address and TLS key gets its own connection, so its
// tasks (refused wrong-miner, a sender fault) cannot make that miner close
// the connection the real one's tasks use.
type connKey struct {
	addr       string
	miner, pin types.AccountID
}

type connEntry struct {
	ready chan struct{} // closed when conn/err are set
	conn  *quic.Conn
	err   error
}

// NewClient makes a client that signs with key for subnet netuid.
func NewClient(key ed25519.PrivateKey, netuid uint16, opts ClientOptions) *Client {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	c := &Client{key: key, netuid: netuid, opt: opts, tr: opts.Transport, conns: map[connKey]*connEntry{}}
	c.signer = NewBatchSigner(key, opts.SignBatch).WithBusy(func() bool { return c.flying.Load() > 1 })
	return c
}

// SignStats reports how many signatures the client made for envelopes and
// how many envelopes they covered (see BatchSigner).
func (c *Client) SignStats() (sigs, envelopes uint64) { return c.signer.Stats() }

// ErrClosed: the client was closed.
var ErrClosed = errors.New("task: client closed")

func (c *Client) transport() (*quic.Transport, error) {
	if c.tr != nil {
		return c.tr, nil
	}
	pc := c.opt.PacketConn
	if pc == nil {
		var err error
		if pc, err = net.ListenUDP("udp", &net.UDPAddr{}); err != nil {
			return nil, fmt.Errorf("task: client socket: %w", err)
		}
		c.ownConn = pc // quic.Transport.Close leaves its socket open
	}
	c.tr, c.ownTr = &quic.Transport{Conn: pc}, true
	return c.tr, nil
}

// conn returns a live connection to addr for tasks to miner whose
// certificate must carry pin, dialing once if needed; concurrent callers
// share one dial.
func (c *Client) conn(ctx context.Context, addr string, miner, pin types.AccountID) (*quic.Conn, error) {
	k := connKey{addr, miner, pin}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	e := c.conns[k]
	if e != nil {
		select {
		case <-e.ready:
			if e.err != nil || e.conn.Context().Err() != nil {
				e = nil // dead: dial again
			}
		default:
		}
	}
	if e == nil {
		tr, err := c.transport()
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		e = &connEntry{ready: make(chan struct{})}
		c.conns[k] = e
		go c.dial(tr, e, addr, pin)
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("task: dial %s: %w", addr, ctx.Err())
	}
}

func (c *Client) dial(tr *quic.Transport, e *connEntry, addr string, miner types.AccountID) {
	defer close(e.ready)
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		e.err = fmt.Errorf("task: dial %s: %w", addr, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opt.DialTimeout)
	defer cancel()
	conn, err := tr.Dial(ctx, ua, ClientTLS(miner), &quic.Config{
		MaxIdleTimeout:       c.opt.IdleTimeout,
		KeepAlivePeriod:      c.opt.IdleTimeout / 3,
		HandshakeIdleTimeout: c.opt.DialTimeout,
		MaxIncomingStreams:   -1, // the miner never opens streams
	})
	if err != nil {
		e.err = fmt.Errorf("task: dial %s: %w", addr, err)
		return
	}
	e.conn = conn
}

// Query sends body to the miner at addr whose key is miner, and reads the
// whole response. It returns an error for transport failures (dial, stream,
// a broken or truncated response, a timeout); a rejection by the miner
// comes back as Result.Reject with a nil error. Query does not check the
// final frame's signature: call Result.Verified.
func (c *Client) Query(ctx context.Context, addr string, miner types.AccountID, body Body) (*Result, error) {
	return c.QueryWith(ctx, addr, miner, body, QueryOptions{})
}

// QueryOptions adjust one QueryWith.
type QueryOptions struct {
	// FirstFrame, if positive, bounds the wait for the first frame (the
	// miner's queue and prompt time), within the query's Timeout.
	FirstFrame time.Duration
	// OnToken, if set, is called with each token as its frame arrives,
	// before the next is read; an error from it abandons the query and
	// QueryWith returns that error.
	OnToken func(Token) error
	// TLSKey is the key the miner's certificate must have: the one it
	// registered with serve (Axon.TLSKey). Zero means its hotkey, which is
	// what taobox miners use and register. Final frames are checked
	// against the hotkey either way.
	TLSKey types.AccountID
}

// QueryWith is Query with per-query options: a first-frame deadline and a
// callback that streams tokens on as they arrive (an OpenAI-style
// endpoint, for one).
func (c *Client) QueryWith(ctx context.Context, addr string, miner types.AccountID, body Body, o QueryOptions) (*Result, error) {
	if err := body.Validate(); err != nil {
		return nil, fmt.Errorf("task: query: %w", err)
	}
	if len(c.key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("task: query: private key has %d bytes", len(c.key))
	}
	c.flying.Add(1)
	defer c.flying.Add(-1)
	bb := body.Encode()
	ctx, cancelTimeout := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var first *time.Timer // stopped by the first frame
	if o.FirstFrame > 0 {
		first = time.AfterFunc(o.FirstFrame, func() { cancel(fmt.Errorf("no answer within %v", o.FirstFrame)) })
		defer first.Stop()
	}

	pin := miner
	if !o.TLSKey.IsZero() {
		pin = o.TLSKey
	}
	var s *quic.Stream
	var conn *quic.Conn
	for attempt := 0; ; attempt++ {
		var err error
		conn, err = c.conn(ctx, addr, miner, pin)
		if err != nil {
			return nil, c.ctxErr(ctx, err)
		}
		s, err = conn.OpenStreamSync(ctx)
		if err == nil {
			break
		}
		if attempt > 0 || ctx.Err() != nil {
			return nil, c.ctxErr(ctx, fmt.Errorf("task: query %s: open stream: %w", addr, err))
		}
		// The cached connection died: drop it and dial once more.
		c.mu.Lock()
		if e := c.conns[connKey{addr, miner, pin}]; e != nil && e.conn == conn {
			delete(c.conns, connKey{addr, miner, pin})
		}
		c.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(0)
		s.CancelWrite(0)
	})
	defer stop()

	// A miner from before batch signatures gets envelopes signed alone.
	sign := c.signer.Sign
	if !BatchOK(conn.ConnectionState().TLS.NegotiatedProtocol) {
		sign = c.signer.SignAlone
	}
	env, err := newEnvelope(c.key.Public().(ed25519.PublicKey), c.netuid, miner, bb, c.opt.Now(), c.opt.Rand, sign)
	if err != nil {
		s.CancelWrite(0)
		s.CancelRead(0)
		return nil, err
	}
	req := AppendRequest(make([]byte, 0, 2+env.Size()+4+len(bb)), &env, bb)
	res := &Result{Request: env.Hash()}
	start := c.opt.Now()
	if _, err := s.Write(req); err != nil {
		return nil, c.ctxErr(ctx, fmt.Errorf("task: query %s: write: %w", addr, err))
	}
	s.Close() // our send side is done; the response keeps flowing
	fr := NewFrameReader(s)
	for {
		typ, p, err := fr.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.CancelRead(0)
			return nil, c.ctxErr(ctx, fmt.Errorf("task: query %s: response ended after %d tokens without a final frame: %w", addr, len(res.Tokens), err))
		}
		if first != nil {
			first.Stop()
		}
		now := c.opt.Now()
		if res.FirstToken == 0 {
			res.FirstToken = now.Sub(start)
		}
		res.Total = now.Sub(start)
		switch typ {
		case FrameToken:
			t, err := DecodeToken(p)
			if err != nil {
				s.CancelRead(0)
				return nil, fmt.Errorf("task: query %s: %w", addr, err)
			}
			if uint32(len(res.Tokens)) >= body.MaxTokens || len(t.Top) > int(body.TopAlts) {
				s.CancelRead(0)
				return nil, fmt.Errorf("task: query %s: %w: more tokens or alternatives than asked for", addr, ErrMalformed)
			}
			res.Tokens = append(res.Tokens, t)
			if o.OnToken != nil {
				if err := o.OnToken(t); err != nil {
					s.CancelRead(0)
					return nil, err
				}
			}
		case FrameFinal:
			f, err := DecodeFinal(p)
			if err != nil {
				s.CancelRead(0)
				return nil, fmt.Errorf("task: query %s: %w", addr, err)
			}
			res.Final = &f
			s.CancelRead(0) // nothing may follow
			return res, nil
		case FrameReject:
			r, err := DecodeReject(p)
			if err != nil {
				s.CancelRead(0)
				return nil, fmt.Errorf("task: query %s: %w", addr, err)
			}
			res.Reject = &r
			s.CancelRead(0)
			return res, nil
		}
	}
}

// ctxErr adds why ctx ended (its cause: a deadline, a first-frame timeout,
// a cancel) to err.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// Close closes every connection and the transport the client made. Queries
// in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[connKey]*connEntry{}
	tr, own, conn := c.tr, c.ownTr, c.ownConn
	c.ownTr, c.ownConn = false, nil // a second Close closes nothing again
	c.mu.Unlock()
	for _, e := range conns {
		<-e.ready
		if e.conn != nil {
			e.conn.CloseWithError(0, "client closed")
		}
	}
	var err error
	if own && tr != nil {
		err = tr.Close()
	}
	if conn != nil {
		err = errors.Join(err, conn.Close())
	}
	return err
}
