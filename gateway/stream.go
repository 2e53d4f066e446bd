package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
	"taobox/task"
)

// minerClient sends tasks to miners over QUIC like task.Client, but hands
// each token to a callback as its frame arrives, so the HTTP side can
// stream it on. It keeps one connection per (address, miner key).
//
// Design note: task.Client.Query collects the whole answer, which suits
// the validator's scoring but not a chat stream; a QueryStream there would
// let this file shrink to a call.
type minerClient struct {
	key    ed25519.PrivateKey
	netuid uint16
	now    func() time.Time
	rnd    io.Reader
	dial   time.Duration
	idle   time.Duration

	mu     sync.Mutex
	tr     *quic.Transport
	conns  map[minerKey]*minerConn
	closed bool
}

type minerKey struct {
	addr  string
	miner types.AccountID
}

type minerConn struct {
	ready chan struct{}
	conn  *quic.Conn
	err   error
}

func (c *minerClient) transport() (*quic.Transport, error) {
	if c.tr != nil {
		return c.tr, nil
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("gateway: task client socket: %w", err)
	}
	c.tr = &quic.Transport{Conn: pc}
	return c.tr, nil
}

func (c *minerClient) conn(ctx context.Context, addr string, miner types.AccountID) (*quic.Conn, error) {
	k := minerKey{addr, miner}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, task.ErrClosed
	}
	e := c.conns[k]
	if e != nil {
		select {
		case <-e.ready:
			if e.err != nil || e.conn.Context().Err() != nil {
				e = nil
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
		e = &minerConn{ready: make(chan struct{})}
		c.conns[k] = e
		go func() {
			defer close(e.ready)
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				e.err = fmt.Errorf("dial %s: %w", addr, err)
				return
			}
			dctx, cancel := context.WithTimeout(context.Background(), c.dial)
			defer cancel()
			e.conn, e.err = tr.Dial(dctx, ua, task.ClientTLS(miner), &quic.Config{
				MaxIdleTimeout: c.idle, KeepAlivePeriod: c.idle / 3, HandshakeIdleTimeout: c.dial, MaxIncomingStreams: -1,
			})
			if e.err != nil {
				e.err = fmt.Errorf("dial %s: %w", addr, e.err)
			}
		}()
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
	}
}

func (c *minerClient) drop(addr string, miner types.AccountID, conn *quic.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.conns[minerKey{addr, miner}]; e != nil && e.conn == conn {
		delete(c.conns, minerKey{addr, miner})
	}
}

// query sends body to the miner and calls onToken for each token frame as
// it arrives (an error from onToken abandons the query). It returns the
// whole result, as task.Client.Query would: a reject in Result.Reject with
// a nil error, transport failures as errors. firstFrame bounds the wait
// for the first frame (the miner's queue and prompt), ctx the whole query.
func (c *minerClient) query(ctx context.Context, addr string, miner types.AccountID, body task.Body, firstFrame time.Duration, onToken func(task.Token) error) (*task.Result, error) {
	bb := body.Encode()
	env, err := task.NewEnvelope(c.key, c.netuid, miner, bb, c.now(), c.rnd)
	if err != nil {
		return nil, err
	}
	req := task.AppendRequest(make([]byte, 0, 2+task.EnvelopeSize+4+len(bb)), &env, bb)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	first := time.AfterFunc(firstFrame, func() { cancel(fmt.Errorf("no answer within %v", firstFrame)) })
	defer first.Stop()

	var s *quic.Stream
	for attempt := 0; ; attempt++ {
		conn, err := c.conn(ctx, addr, miner)
		if err != nil {
			return nil, causeErr(ctx, err)
		}
		if s, err = conn.OpenStreamSync(ctx); err == nil {
			break
		}
		if attempt > 0 || ctx.Err() != nil {
			return nil, causeErr(ctx, fmt.Errorf("open stream to %s: %w", addr, err))
		}
		c.drop(addr, miner, conn) // the cached connection died: dial once more
	}
	stop := context.AfterFunc(ctx, func() { s.CancelRead(0); s.CancelWrite(0) })
	defer stop()
	start := c.now()
	if _, err := s.Write(req); err != nil {
		return nil, causeErr(ctx, fmt.Errorf("write to %s: %w", addr, err))
	}
	s.Close()
	res := &task.Result{Request: env.Hash()}
	fr := task.NewFrameReader(s)
	for {
		typ, p, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			s.CancelRead(0)
			return nil, causeErr(ctx, fmt.Errorf("%s: answer ended after %d tokens without a final frame: %w", addr, len(res.Tokens), err))
		}
		first.Stop()
		now := c.now()
		if res.FirstToken == 0 {
			res.FirstToken = now.Sub(start)
		}
		res.Total = now.Sub(start)
		switch typ {
		case task.FrameToken:
			t, err := task.DecodeToken(p)
			if err == nil && (uint32(len(res.Tokens)) >= body.MaxTokens || len(t.Top) > int(body.TopAlts)) {
				err = fmt.Errorf("%w: more tokens or alternatives than asked for", task.ErrMalformed)
			}
			if err != nil {
				s.CancelRead(0)
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			res.Tokens = append(res.Tokens, t)
			if err := onToken(t); err != nil {
				s.CancelRead(0)
				return nil, err
			}
		case task.FrameFinal:
			f, err := task.DecodeFinal(p)
			s.CancelRead(0)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			res.Final = &f
			return res, nil
		case task.FrameReject:
			r, err := task.DecodeReject(p)
			s.CancelRead(0)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			res.Reject = &r
			return res, nil
		}
	}
}

func causeErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
		return fmt.Errorf("%w (%v)", err, c)
	}
	return err
}

func (c *minerClient) close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[minerKey]*minerConn{}
	tr := c.tr
	c.mu.Unlock()
	for _, e := range conns {
		<-e.ready
		if e.conn != nil {
			e.conn.CloseWithError(0, "gateway closed")
		}
	}
	if tr != nil {
		err := tr.Close()
		tr.Conn.Close()
		return err
	}
	return nil
}
