package miner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/task"
)

// streamWriter decouples the model worker from the network: the worker
// appends frames without blocking, the stream's own goroutine writes them.
type streamWriter struct {
	mu     sync.Mutex
	buf    []byte
	done   bool
	last   func() []byte // with done: makes the last frame (the signed final), off the worker
	notify chan struct{}
}

func newStreamWriter() *streamWriter { return &streamWriter{notify: make(chan struct{}, 1)} }

func (w *streamWriter) write(p []byte) {
	w.mu.Lock()
	if !w.done {
		w.buf = append(w.buf, p...)
	}
	w.mu.Unlock()
	w.signal()
}

// finish marks the response complete; later writes are dropped.
func (w *streamWriter) finish() { w.finishWith(nil) }

// finishWith is finish with a last frame that the stream's goroutine makes
// (so that signing the final frame runs in parallel, not on the worker).
func (w *streamWriter) finishWith(last func() []byte) {
	w.mu.Lock()
	if !w.done {
		w.done, w.last = true, last
	}
	w.mu.Unlock()
	w.signal()
}

func (w *streamWriter) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// run copies frames to s until finish, then closes s. It returns early if
// the stream fails or the client cancels it; gone reports that.
func (w *streamWriter) run(s *quic.Stream, cs *connState) (gone bool) {
	var out []byte
	for {
		select {
		case <-w.notify:
		case <-s.Context().Done():
			return true
		}
		w.mu.Lock()
		out, w.buf = w.buf, out[:0]
		done, last := w.done, w.last
		w.mu.Unlock()
		if done && last != nil {
			out = append(out, last()...)
		}
		if len(out) > 0 {
			if _, err := s.Write(out); err != nil {
				return true
			}
			cs.wrote()
		}
		if done {
			s.Close()
			cs.wrote()
			return false
		}
	}
}

// writeReject answers a stream with one reject frame and closes it.
func (m *Miner) writeReject(s *quic.Stream, cs *connState, a admission) {
	m.m.rejects[a.code].Add(1)
	s.CancelRead(0)
	s.SetWriteDeadline(time.Now().Add(time.Second))
	s.Write(task.AppendRejectFrame(nil, &task.Reject{Code: a.code, RetryAfterMs: a.retryMs, Message: a.msg}))
	s.Close()
	cs.wrote()
}

// serveStream reads one request, admits it, queues it and streams its
// answer.
func (m *Miner) serveStream(ctx context.Context, s *quic.Stream, cs *connState) {
	m.m.streams.Add(1)
	// Deadlines are wall-clock (the socket's), not cfg.Now.
	s.SetReadDeadline(time.Now().Add(m.cfg.Limits.ReadTimeout))
	env, body, code, err := task.ReadRequest(s)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			code = task.CodeTimeout
		}
		m.writeReject(s, cs, reject(code, "%v", err))
		return
	}
	s.CancelRead(0) // nothing more is read from this stream
	r := &request{ctx: s.Context(), w: newStreamWriter()}
	a := m.admit(env, body, m.now(), r)
	if a.code != task.CodeOK {
		m.writeReject(s, cs, a)
		return
	}
	r.queued = time.Now()
	evicted, ok := m.q.push(r)
	if !ok {
		m.release(r.hk)
		code := task.CodeBusy
		if ctx.Err() != nil {
			code = task.CodeShuttingDown
		}
		m.writeReject(s, cs, admission{code: code, retryMs: m.retryAfterMs(), msg: "queue full"})
		return
	}
	if evicted != nil {
		m.release(evicted.hk)
		m.m.rejects[task.CodeBusy].Add(1)
		evicted.reject(task.CodeBusy, m.retryAfterMs(), "displaced by a higher-stake request")
	}
	r.w.run(s, cs)
}

// worker serves queued requests one at a time until ctx ends.
func (m *Miner) worker(ctx context.Context) {
	for {
		r := m.q.pop(ctx)
		if r == nil {
			return
		}
		m.serveOne(ctx, r)
		m.release(r.hk)
	}
}

func (m *Miner) serveOne(ctx context.Context, r *request) {
	if r.ctx.Err() != nil { // the client left while it waited
		r.w.finish()
		m.m.abandoned.Add(1)
		return
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(r.ctx, m.cfg.Limits.AnswerTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()

	chain := task.NewResultChain(r.hash)
	var count uint32
	var payload, frame []byte
	emit := func(t task.Token) error {
		if err := actx.Err(); err != nil {
			return err
		}
		if count >= r.body.MaxTokens {
			return fmt.Errorf("miner: answer emitted more than %d tokens", r.body.MaxTokens)
		}
		if len(t.Top) > int(r.body.TopAlts) {
			t.Top = t.Top[:r.body.TopAlts]
		}
		payload = t.AppendEncode(payload[:0])
		if _, err := task.DecodeToken(payload); err != nil {
			return fmt.Errorf("miner: answer emitted an invalid token: %w", err)
		}
		chain.Add(payload)
		frame = task.AppendFrame(frame[:0], task.FrameToken, payload)
		r.w.write(frame)
		count++
		return nil
	}
	err := m.answer(actx, r.body, emit)
	if err == nil && count == 0 {
		err = errors.New("miner: answer emitted no tokens")
	}
	if err != nil {
		code := task.CodeInternal
		if ctx.Err() != nil {
			code = task.CodeShuttingDown
		}
		if r.ctx.Err() == nil {
			m.log.Warn("answer failed", "err", err, "tokens", count)
		}
		m.m.rejects[code].Add(1)
		r.reject(code, 0, "answer failed after "+fmt.Sprint(count)+" tokens")
		return
	}
	sum, key := chain.Sum(), m.cfg.Key
	r.w.finishWith(func() []byte {
		f := task.SignFinal(key, r.hash, count, sum)
		return task.AppendFinalFrame(nil, &f)
	})
	m.m.served.Add(1)
	m.m.tokens.Add(int64(count))
	d := time.Since(start)
	old := m.m.serviceEWMA.Load()
	if old == 0 {
		old = int64(d)
	}
	m.m.serviceEWMA.Store(old + (int64(d)-old)/8)
}
