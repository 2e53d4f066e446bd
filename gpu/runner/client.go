package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"taobox/chain/yuma"
)

// ErrBroken: the connection failed earlier (a transport error, a timeout
// or a confused peer); dial again.
var ErrBroken = errors.New("runner: connection broken by an earlier error")

// ErrRequestTooLarge: a request above the frame cap was not sent; the
// connection is still good.
var ErrRequestTooLarge = errors.New("request too large for the runner protocol")

// ErrNotSent: the request was not sent (the connection stayed busy with
// another call, or the context ended first); the connection is still good.
var ErrNotSent = errors.New("runner: request not sent")

func (c *Client) maxFrame() int {
	if c.MaxFrame > 0 {
		return c.MaxFrame
	}
	return DefaultMaxFrame
}

// RemoteError is an error response: the runner ran the request and failed.
type RemoteError struct {
	Op  Op
	Msg string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("runner: %s: %s", e.Op, e.Msg) }

// notServedSuffix ends the error a runner answers an op it does not serve
// with (an older taobox-cuda than this process).
const notServedSuffix = " is not served by this runner"

// NotServed reports whether the runner does not serve the op at all: a
// missing capability, not a fault.
func (e *RemoteError) NotServed() bool { return strings.HasSuffix(e.Msg, notServedSuffix) }

// Client sends requests to a runner over one connection, one at a time.
// It is safe for concurrent use. After any transport error, a timeout or
// a context that ended during the exchange the connection is closed and
// every later call returns an error wrapping ErrBroken; a call that ends
// before its request is sent (ErrNotSent, ErrRequestTooLarge) leaves it
// good.
type Client struct {
	// MaxFrame caps the payload of a request and of a response (it should
	// match the server's); 0: DefaultMaxFrame.
	MaxFrame int
	// ShmThreshold: once AttachShm succeeded, requests of at least this
	// many bytes go through the shared region; 0: the package's
	// ShmThreshold.
	ShmThreshold int

	// sem is held by the call in flight: a lock whose wait a context and
	// a call timeout can end. It guards the fields below except conn.
	sem    chan struct{}
	conn   net.Conn
	r      *bufio.Reader
	nextID uint64
	broken error
	wbuf   []byte // request frames, reused
	rbuf   []byte // response payloads, reused (decoded into fresh memory)
	shm    *Shm   // the attached region, nil: the socket only

	shmRequests, shmResponses int // frames whose payload went through shm
}

// Dial connects to the runner listening on the unix socket path.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	return NewClient(c), nil
}

// NewClient returns a client on an open connection.
func NewClient(c net.Conn) *Client {
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10), sem: make(chan struct{}, 1)}
}

// Close closes the connection at once, ending an exchange in flight (a
// hung runner's included) without waiting for its deadline, then waits
// for that call to return: once Close returns no call reads the shared
// region any more.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.sem <- struct{}{}
	if c.broken == nil {
		c.broken = errors.New("runner: client closed")
	}
	c.unlock()
	return err
}

// callTimeoutKey carries withCallTimeout's duration.
type callTimeoutKey struct{}

// withCallTimeout returns ctx with a call timeout d for the calls made
// under it: a call waits at most d for the connection (another call may
// hold it: a model load), then returns ErrNotSent; once it holds the
// connection its exchange has d, counted from then. ctx's own end (the
// caller's cancellation or deadline) returns at once and never breaks the
// connection: before the request is sent it is ErrNotSent, after that the
// exchange goes on in the background within d and its answer is
// discarded.
func withCallTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, callTimeoutKey{}, d)
}

// lock takes sem within d (0: no bound) unless ctx ends first.
func (c *Client) lock(ctx context.Context, d time.Duration) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-expired:
		return fmt.Errorf("the connection stayed busy with another call for %v", d)
	}
}

func (c *Client) unlock() { <-c.sem }

// Call sends one request and returns the response's payload. The
// context's deadline and cancellation bound the whole call; when it ends
// before the request is sent the error wraps ErrNotSent and the
// connection stays good.
func (c *Client) Call(ctx context.Context, op Op, payload []byte) ([]byte, error) {
	var out []byte
	err := c.call(ctx, op, func(b []byte) []byte { return append(b, payload...) }, func(p []byte) error {
		out = append([]byte(nil), p...)
		return nil
	})
	return out, err
}

// call sends the request whose payload encode appends to its argument
// and hands the response's payload (valid only during the call) to decode.
// With a region attached, encode writes straight into the request half
// (we own it: no request is outstanding) and a big payload crosses as a
// descriptor.
func (c *Client) call(ctx context.Context, op Op, encode func([]byte) []byte, decode func([]byte) error) error {
	d, _ := ctx.Value(callTimeoutKey{}).(time.Duration)
	if err := c.lock(ctx, d); err != nil {
		return fmt.Errorf("runner: %s: %w: %w", op, ErrNotSent, err)
	}
	held := true
	defer func() {
		if held {
			c.unlock()
		}
	}()
	if c.broken != nil {
		return fmt.Errorf("%w: %v", ErrBroken, c.broken)
	}
	var viaShm bool
	var n int
	c.wbuf = append(c.wbuf[:0], make([]byte, HeaderSize)...)
	if c.shm != nil {
		half := c.shm.reqHalf()
		p := encode(half[:0])
		n = len(p)
		off, inShm := offsetIn(p, half, 0)
		switch {
		case n > c.maxFrame():
		case inShm && n >= c.shmThreshold():
			viaShm = true
			c.wbuf = appendShmRef(c.wbuf, off, n)
		default:
			c.wbuf = append(c.wbuf, p...)
		}
	} else {
		c.wbuf = encode(c.wbuf)
		n = len(c.wbuf) - HeaderSize
	}
	if max := c.maxFrame(); n > max || uint64(n) > 1<<32-1 {
		// Refused here, before the runner refuses it and the connection.
		c.wbuf = nil
		return fmt.Errorf("runner: %s: %w: request of %d bytes, cap %d", op, ErrRequestTooLarge, n, max)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("runner: %s: %w: %w", op, ErrNotSent, context.Cause(ctx))
	}
	if viaShm {
		c.shmRequests++
	}
	if d <= 0 {
		return c.finish(ctx, op, viaShm, decode, nil)
	}
	xctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), d, fmt.Errorf("no answer within %v", d))
	if ctx.Done() == nil {
		defer cancel()
		return c.finish(xctx, op, viaShm, decode, nil)
	}
	// The caller may leave before the answer: the exchange runs on its own
	// goroutine, which holds sem until it is over.
	held = false
	var claim atomic.Int32 // 1: the answer is decoded, 2: the caller left
	done := make(chan error, 1)
	go func() {
		defer c.unlock()
		defer cancel()
		done <- c.finish(xctx, op, viaShm, decode, &claim)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if claim.CompareAndSwap(0, 2) {
			return fmt.Errorf("runner: %s: %w (the runner's answer will be discarded)", op, context.Cause(ctx))
		}
		return <-done // decoding now
	}
}

// finish exchanges the request in c.wbuf and decodes the answer, unless
// claim (nil: always decode) says the caller left. An error other than a
// RemoteError breaks the connection. sem must be held.
func (c *Client) finish(ctx context.Context, op Op, viaShm bool, decode func([]byte) error, claim *atomic.Int32) error {
	resp, fromShm, err := c.exchange(ctx, op, c.wbuf, viaShm)
	if cap(c.wbuf) > keepBuf {
		c.wbuf = nil
	}
	if err == nil {
		if fromShm {
			// Never keep the mapping as the socket's read buffer: the
			// response half is the server's again after our next request.
			c.shmResponses++
		} else {
			c.rbuf = resp
		}
		if claim == nil || claim.CompareAndSwap(0, 1) {
			err = decode(resp)
		}
		if cap(c.rbuf) > keepBuf {
			c.rbuf = nil
		}
		if err != nil {
			err = fmt.Errorf("runner: %s response: %w", op, err)
		}
	}
	if err != nil {
		var re *RemoteError
		if !errors.As(err, &re) {
			c.broken = err
			c.conn.Close()
		}
		return err
	}
	return nil
}

func (c *Client) shmThreshold() int {
	if c.ShmThreshold > 0 {
		return c.ShmThreshold
	}
	return ShmThreshold
}

// exchange sends frame (header space included; viaShm: its payload is a
// descriptor) and returns the response's payload, which aliases the
// response half when fromShm.
func (c *Client) exchange(ctx context.Context, op Op, frame []byte, viaShm bool) (payload []byte, fromShm bool, err error) {
	dl, _ := ctx.Deadline()
	c.conn.SetDeadline(dl)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		expireConn(c.conn)
		close(fired)
	})
	defer func() {
		if !stop() {
			// ctx ended meanwhile: its past deadline must land before the
			// next call sets its own.
			<-fired
		}
	}()
	c.nextID++
	id := c.nextID
	n := len(frame) - HeaderSize
	putHeader(frame, Frame{Kind: KindRequest, Op: op, ID: id, Shm: viaShm}, n)
	if _, err := c.conn.Write(frame); err != nil {
		if ctx.Err() == nil {
			if msg, ok := c.refusal(); ok {
				// The runner refused the frame and closed before it read
				// all of it.
				return nil, false, fmt.Errorf("runner: %s: the runner refused the request: %s", op, msg)
			}
		}
		return nil, false, c.ctxErr(ctx, op, err)
	}
	f, err := ReadFrameInto(c.r, c.MaxFrame, c.rbuf)
	if err != nil {
		return nil, false, c.ctxErr(ctx, op, err)
	}
	if f.Shm {
		if c.shm == nil {
			return nil, false, fmt.Errorf("runner: %s: %w: a shared-memory response on a connection without a region", op, ErrBadFrame)
		}
		if f.Payload, err = c.shm.payload(f.Payload, true, c.maxFrame()); err != nil {
			return nil, false, fmt.Errorf("runner: %s: %w", op, err)
		}
	}
	if f.Kind == KindError {
		if f.ID != id {
			// An error about the connection itself (bad frame).
			return nil, false, fmt.Errorf("runner: %s: the runner refused the request: %s", op, f.Payload)
		}
		return nil, false, &RemoteError{Op: op, Msg: string(f.Payload)}
	}
	if f.Kind != KindResponse || f.ID != id || f.Op != op {
		return nil, false, fmt.Errorf("%w: response kind %d op %s id %d to request %s id %d", ErrBadFrame, f.Kind, f.Op, f.ID, op, id)
	}
	return f.Payload, f.Shm, nil
}

// expireConn ends the exchange on c when its context ends; a variable for
// tests.
var expireConn = func(c net.Conn) { c.SetDeadline(time.Unix(1, 0)) }

// refusal reads, after a failed write, the error response with which the
// runner refused the request before it closed, if there is one.
func (c *Client) refusal() (string, bool) {
	c.conn.SetReadDeadline(time.Now().Add(time.Second))
	f, err := ReadFrame(c.r, c.maxFrame())
	if err != nil || f.Kind != KindError {
		return "", false
	}
	return string(f.Payload), true
}

// AttachShm asks the runner to take s (the region it was started with,
// --shm-fd) for this connection's big payloads. An error response (a
// runner without a region, or one whose region another connection holds)
// is a RemoteError and leaves the connection on the socket, still good.
// s must stay mapped until the client is closed.
func (c *Client) AttachShm(ctx context.Context, s *Shm) error {
	err := c.call(ctx, OpShmAttach, func(b []byte) []byte { return encodeAttach(b, s.Size()) }, func(p []byte) error {
		if len(p) != 0 {
			return fmt.Errorf("%w: shm.attach response of %d bytes, want 0", ErrBadPayload, len(p))
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.sem <- struct{}{}
	c.shm = s
	c.unlock()
	return nil
}

// ShmFrames returns how many requests (sent, answered or not) and
// responses of this client went through the shared region.
func (c *Client) ShmFrames() (requests, responses int) {
	c.sem <- struct{}{}
	defer c.unlock()
	return c.shmRequests, c.shmResponses
}

func (c *Client) ctxErr(ctx context.Context, op Op, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("runner: %s: %w", op, context.Cause(ctx))
	}
	return fmt.Errorf("runner: %s: %w", op, err)
}

// Health returns the runner's description.
func (c *Client) Health(ctx context.Context) (string, error) {
	var s string
	err := c.call(ctx, OpHealth, func(b []byte) []byte { return b }, func(p []byte) error {
		s = string(p)
		return nil
	})
	return s, err
}

// Epochs runs a Yuma batch on the runner.
func (c *Client) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	var outs []yuma.Output
	err := c.call(ctx, OpYumaEpochs, func(b []byte) []byte { return EncodeInputs(b, ins) }, func(p []byte) error {
		var err error
		if outs, err = DecodeOutputs(p); err != nil {
			return err
		}
		if len(outs) != len(ins) {
			return fmt.Errorf("%w: %d outputs for %d inputs", ErrBadPayload, len(outs), len(ins))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}
