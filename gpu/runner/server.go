package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"taobox/chain/yuma"
)

// Handler serves one op: it gets a request's payload and returns the
// response's payload appended to out (a buffer the connection reuses; the
// payload is only read until the handler returns), or an error that goes
// back as an error response.
type Handler func(ctx context.Context, payload, out []byte) ([]byte, error)

// Server answers requests on runner connections. The zero value answers
// only OpHealth.
type Server struct {
	// Info is OpHealth's answer: what the runner is and runs on.
	Info string
	// Yuma serves OpYumaEpochs; nil: the op is refused.
	Yuma yuma.Engine
	// YumaPacked serves OpYumaPacked; nil: the op is refused.
	YumaPacked PackedEngine
	// Ops serves further ops (the inference hook: OpLlamaLoad,
	// OpLlamaForward, ...). It takes precedence over the built-in ops.
	Ops map[Op]Handler
	// MaxFrame caps a request's payload; 0: DefaultMaxFrame.
	MaxFrame int
	// Shm is the region the runner was started with (OpenShm of --shm-fd);
	// nil: shm.attach is refused and everything goes over the socket. The
	// server never unmaps it: close it after Serve returns.
	Shm *Shm
	// ShmThreshold: on the connection that attached Shm, responses of at
	// least this many bytes go through the region; 0: ShmThreshold.
	ShmThreshold int

	shmMu   sync.Mutex
	shmHeld bool // a connection owns Shm
}

func (s *Server) maxFrame() int {
	if s.MaxFrame > 0 {
		return s.MaxFrame
	}
	return DefaultMaxFrame
}

func (s *Server) shmThreshold() int {
	if s.ShmThreshold > 0 {
		return s.ShmThreshold
	}
	return ShmThreshold
}

// attachShm gives the region to one connection (see the ownership rule in
// shm.go); release undoes it.
func (s *Server) attachShm(p []byte) (release func(), err error) {
	if s.Shm == nil {
		return nil, errors.New("runner: this runner has no shared-memory region (started without --shm-fd); payloads go over the socket")
	}
	size, err := decodeAttach(p)
	if err != nil {
		return nil, err
	}
	if size != s.Shm.Size() {
		return nil, fmt.Errorf("runner: shm.attach for a %d-byte region, this runner mapped %d bytes (--shm-size)", size, s.Shm.Size())
	}
	s.shmMu.Lock()
	defer s.shmMu.Unlock()
	if s.shmHeld {
		return nil, errors.New("runner: the shared-memory region is attached to another connection; this one stays on the socket")
	}
	s.shmHeld = true
	return func() {
		s.shmMu.Lock()
		s.shmHeld = false
		s.shmMu.Unlock()
	}, nil
}

func (s *Server) handler(op Op) Handler {
	if h, ok := s.Ops[op]; ok {
		return h
	}
	switch op {
	case OpHealth:
		return func(_ context.Context, _, out []byte) ([]byte, error) { return append(out, s.Info...), nil }
	case OpYumaEpochs:
		if s.Yuma != nil {
			return s.yumaEpochs
		}
	case OpYumaPacked:
		if s.YumaPacked != nil {
			return s.yumaPacked
		}
	}
	return nil
}

func (s *Server) yumaPacked(ctx context.Context, p, out []byte) ([]byte, error) {
	l, arena, err := decodePackedRequest(p)
	if err != nil {
		return nil, err
	}
	return s.YumaPacked.RunPacked(ctx, l, arena, out)
}

func (s *Server) yumaEpochs(ctx context.Context, p, out []byte) ([]byte, error) {
	// p is stable until we return (the socket buffer is reused only for the
	// next request, the request half is ours until we answer) and the
	// inputs are not kept past the call: decode in place.
	ins, err := decodeInputs(p, true)
	if err != nil {
		return nil, err
	}
	outs, err := s.Yuma.Epochs(ctx, ins)
	if err != nil {
		return nil, err
	}
	return EncodeOutputs(out, outs), nil
}

// ServeConn answers the requests on c, one at a time, until c fails or
// ctx ends. A malformed frame ends the connection (after an error response
// when the header could be read). It closes c. Once c attached s.Shm, big
// requests are read from its request half and big responses written to its
// response half (the ownership rule in shm.go).
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReaderSize(c, 64<<10)
	var in, out []byte // reused between requests
	var shm *Shm       // the region, once this connection attached it
	for {
		f, err := ReadFrameInto(r, s.MaxFrame, in)
		if err == nil {
			in = f.Payload // the socket's buffer, never the mapping
			if f.Shm {
				if shm == nil {
					err = fmt.Errorf("%w: a shared-memory request on a connection that did not attach the region", ErrBadFrame)
				} else {
					f.Payload, err = shm.payload(f.Payload, false, s.maxFrame())
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrBadFrame) || errors.Is(err, ErrFrameTooLarge) {
				WriteFrame(c, Frame{Kind: KindError, Payload: []byte(err.Error())})
				drainRefused(c, r)
			}
			return err
		}
		resp := Frame{Kind: KindResponse, Op: f.Op, ID: f.ID}
		h := s.handler(f.Op)
		switch {
		case f.Kind != KindRequest:
			resp.Kind, resp.Payload = KindError, []byte(fmt.Sprintf("runner: frame kind %d where a request was expected", f.Kind))
		case f.Op == OpShmAttach && shm == nil:
			release, err := s.attachShm(f.Payload)
			if err != nil {
				resp.Kind, resp.Payload = KindError, []byte(err.Error())
				break
			}
			defer release()
			shm = s.Shm
		case f.Op == OpShmAttach:
			// Attached already: nothing changes.
		case h == nil:
			resp.Kind, resp.Payload = KindError, []byte(fmt.Sprintf("runner: op %s%s", f.Op, notServedSuffix))
		default:
			buf := out[:0]
			if shm != nil {
				// The response half is ours until we answer.
				buf = shm.respHalf()[:0]
			}
			p, err := h(ctx, f.Payload, buf)
			switch {
			case err != nil:
				resp.Kind, p = KindError, []byte(err.Error())
			case shm != nil:
				base, _ := halfBounds(shm.Size(), true)
				if off, ok := offsetIn(p, shm.respHalf(), int(base)); ok && len(p) >= s.shmThreshold() {
					resp.Shm, p = true, appendShmRef(nil, off, len(p))
				}
			default:
				out = p
			}
			resp.Payload = p
		}
		// The response half is written; only now does its descriptor go out.
		if err := WriteFrame(c, resp); err != nil {
			return err
		}
		if cap(in) > keepBuf {
			in = nil
		}
		if cap(out) > keepBuf {
			out = nil
		}
	}
}

// Bounds of drainRefused.
const (
	drainBytes = 64 << 20
	drainTime  = 2 * time.Second
)

// drainRefused ends a connection whose frame was refused: the refusal is
// written; the client may still be writing the frame's payload, and
// closing under it would fail its write (a broken pipe) before it reads
// why. So the write side is shut and up to drainBytes read and dropped for
// up to drainTime (the client closes once it read the refusal). The
// client reads the refusal after a failed write too.
func drainRefused(c net.Conn, r io.Reader) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(drainTime))
	io.CopyN(io.Discard, r, drainBytes)
}

// Serve accepts connections on ln and serves each in its own goroutine
// until ctx ends; then it closes ln and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

// keepBuf: larger buffers are not kept between requests.
const keepBuf = 256 << 20

// ReadyPrefix starts the line a runner writes to its stdout once it
// listens and its self-test passed; the rest of the line is Server.Info.
const ReadyPrefix = "taobox-runner ready v1 "

// ServeProcess is the body of `taobox-cuda runner --socket PATH`, after the
// GPU was opened and its self-test passed: it listens on the unix socket
// PATH, writes the ready line to ready, and serves until ctx ends or stdin
// reaches EOF or fails (the parent closed it or died: the second signal
// beside the parent-death signal the launcher sets). It removes the socket.
func ServeProcess(ctx context.Context, socket string, s *Server, stdin io.Reader, ready io.Writer) error {
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer os.Remove(socket)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdin != nil {
		go func() {
			io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	if _, err := fmt.Fprintf(ready, "%s%s\n", ReadyPrefix, s.Info); err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ctx, ln)
}
