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
	timeout time.Duration // Limits.WriteTimeout: the longest one write may block
	onDone  func()        // if set, called once by run when the response is complete or the stream gone
	mu      sync.Mutex
	buf     []byte
	done    bool
	last    func() []byte // with done: makes the last frame (the signed final), off the worker
	notify  chan struct{}
}

func newStreamWriter(timeout time.Duration) *streamWriter {
	return &streamWriter{timeout: timeout, notify: make(chan struct{}, 1)}
}

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
	ended := func() {
		if w.onDone != nil {
			w.onDone()
			w.onDone = nil
		}
	}
	defer ended()
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
		if done {
			ended() // before the final frame's signature (the signer's busy hint)
		}
		if done && last != nil {
			out = append(out, last()...)
		}
		if len(out) > 0 {
			s.SetWriteDeadline(time.Now().Add(w.timeout))
			if _, err := s.Write(out); err != nil {
				s.CancelWrite(0) // a client that takes nothing for WriteTimeout is gone
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
// A connection whose requests keep being refused for sender faults is
// closed after the reject (Miner.refused). The fault is counted before the
// reject goes out: a client that reads it and sends a good request at
// once must find it counted, or the good request's reset could come
// first and the stale count close the connection later.
func (m *Miner) writeReject(s *quic.Stream, cs *connState, a admission) {
	m.m.rejects[a.code].Add(1)
	last := !a.transport && m.refused(cs, a.code)
	s.CancelRead(0)
	s.SetWriteDeadline(time.Now().Add(time.Second))
	s.Write(task.AppendRejectFrame(nil, &task.Reject{Code: a.code, RetryAfterMs: a.retryMs, Message: a.msg}))
	s.Close()
	cs.wrote()
	if last {
		m.closeBad(cs)
	}
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
		a := reject(code, "%v", err)
		// A stream or connection the client (or this miner, stopping)
		// tore down is not a bad request: it does not count towards
		// closing the connection (Miner.refused).
		var se *quic.StreamError
		var ae *quic.ApplicationError
		a.transport = errors.As(err, &se) || errors.As(err, &ae) || ctx.Err() != nil
		m.writeReject(s, cs, a)
		return
	}
	s.CancelRead(0) // nothing more is read from this stream
	r := &request{ctx: s.Context(), w: newStreamWriter(m.cfg.Limits.WriteTimeout), batch: cs.batch}
	var a admission
	if !cs.batch && env.Proof.Depth > 0 {
		// taobox-task/1 has no batch proofs (a miner from before them
		// refuses the longer envelope as well).
		a = reject(task.CodeMalformed, "a batch-signed envelope on a %s connection", task.ALPN)
	} else {
		a = m.admit(env, body, m.now(), r)
	}
	if a.code != task.CodeOK {
		m.writeReject(s, cs, a)
		return
	}
	m.servedConn(cs)
	r.queued = time.Now()
	evicted, ok := m.q.push(r)
	if !ok {
		m.release(r)
		code := task.CodeBusy
		if ctx.Err() != nil {
			code = task.CodeShuttingDown
		}
		m.writeReject(s, cs, admission{code: code, retryMs: m.retryAfterMs(), msg: "queue full"})
		return
	}
	m.answering.Add(1)
	r.w.onDone = func() { m.answering.Add(-1) }
	if evicted != nil {
		m.release(evicted)
		m.m.rejects[task.CodeBusy].Add(1)
		evicted.reject(task.CodeBusy, m.retryAfterMs(), "displaced by a higher-stake request")
	}
	r.w.run(s, cs)
}

// worker serves queued requests until ctx ends: with the batch scheduler
// (batch.go) when the answer comes from Config.Model with more than one
// slot, otherwise one at a time through the AnswerFunc.
func (m *Miner) worker(ctx context.Context) {
	if m.parallel() > 1 {
		m.batchWorker(ctx)
		return
	}
	for {
		r := m.q.pop(ctx)
		if r == nil {
			return
		}
		if seq := m.beginAccel(ctx); seq != nil {
			m.serveAccel(ctx, r, seq)
		} else {
			m.serveOne(ctx, r)
		}
		m.release(r)
	}
}

func (m *Miner) serveOne(ctx context.Context, r *request) {
	a := m.startAnswer(ctx, r)
	if a == nil {
		return
	}
	a.end(m.answer(a.ctx, r.body, a.emit))
}

// answerRun is one request between leaving the queue and its last frame:
// what every emitted token goes through (the token checks, the result
// chain, the stream) and how the answer ends (final frame, or a reject).
type answerRun struct {
	m      *Miner
	r      *request
	wctx   context.Context // the worker's: its end means the miner is stopping
	ctx    context.Context // the answer's: ends with the client, the answer timeout or wctx
	cancel context.CancelFunc
	stop   func() bool // undoes the AfterFunc tying ctx to wctx
	start  time.Time

	chain          task.ResultChain
	count          uint32
	payload, frame []byte
}

// startAnswer starts r's answer, or finishes r and returns nil if its
// client left while it waited (counted as abandoned). The caller must
// call end on the result exactly once.
func (m *Miner) startAnswer(ctx context.Context, r *request) *answerRun {
	if r.ctx.Err() != nil { // the client left while it waited
		r.w.finish()
		m.m.abandoned.Add(1)
		return nil
	}
	a := &answerRun{m: m, r: r, wctx: ctx, start: time.Now(), chain: task.NewResultChain(r.hash)}
	a.ctx, a.cancel = context.WithTimeout(r.ctx, m.cfg.Limits.AnswerTimeout)
	a.stop = context.AfterFunc(ctx, a.cancel)
	return a
}

// emit checks and streams one token of the answer.
func (a *answerRun) emit(t task.Token) error {
	r := a.r
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if a.count >= r.body.MaxTokens {
		return fmt.Errorf("miner: answer emitted more than %d tokens", r.body.MaxTokens)
	}
	if len(t.Top) > int(r.body.TopAlts) {
		t.Top = t.Top[:r.body.TopAlts]
	}
	a.payload = t.AppendEncode(a.payload[:0])
	if _, err := task.DecodeToken(a.payload); err != nil {
		return fmt.Errorf("miner: answer emitted an invalid token: %w", err)
	}
	a.chain.Add(a.payload)
	a.frame = task.AppendFrame(a.frame[:0], task.FrameToken, a.payload)
	r.w.write(a.frame)
	a.count++
	return nil
}

// end finishes the answer: with err nil (and at least one token) a signed
// final frame, made on the stream's goroutine, and the served metrics;
// otherwise a reject frame (CodeShuttingDown when the miner is stopping,
// CodeInternal else).
func (a *answerRun) end(err error) {
	defer a.cancel()
	defer a.stop()
	m, r := a.m, a.r
	m.release(r) // before the last frame, as served
	if err == nil && a.count == 0 {
		err = errors.New("miner: answer emitted no tokens")
	}
	if err != nil {
		code := task.CodeInternal
		if a.wctx.Err() != nil {
			code = task.CodeShuttingDown
		}
		if r.ctx.Err() == nil {
			m.log.Warn("answer failed", "err", err, "tokens", a.count)
		}
		m.m.rejects[code].Add(1)
		r.reject(code, 0, "answer failed after "+fmt.Sprint(a.count)+" tokens")
		return
	}
	count, sum := a.count, a.chain.Sum()
	a.served() // before the frame: a client that has it reads the count
	r.w.finishWith(func() []byte {
		// Alone for a validator from before batch signatures.
		f := m.signer.SignFinal(r.hash, count, sum, r.batch)
		return task.AppendFinalFrame(nil, &f)
	})
}

// finalBytes is what a's final frame signs (a has emitted at least one
// token).
func (a *answerRun) finalBytes() []byte {
	return task.FinalSigningBytes(a.r.hash, a.count, a.chain.Sum())
}

// endSigned ends a successful answer with a final frame signed already
// (sig and proof over a.finalBytes(), in a batch the worker signed).
func (a *answerRun) endSigned(sig [64]byte, proof task.Proof) {
	defer a.cancel()
	defer a.stop()
	f := task.Final{Count: a.count, ResultHash: a.chain.Sum(), Sig: sig, Proof: proof}
	frame := task.AppendFinalFrame(nil, &f)
	a.m.release(a.r)
	a.served() // before the frame, as in end
	a.r.w.finishWith(func() []byte { return frame })
}

// served counts a's answer in the served metrics. It runs before the
// final frame is queued, so that whoever reads the frame finds the answer
// counted (tests and operators compare the counts with what clients got).
func (a *answerRun) served() {
	m := a.m
	count := a.count
	m.m.served.Add(1)
	m.m.tokens.Add(int64(count))
	d := time.Since(a.start)
	old := m.m.serviceEWMA.Load()
	if old == 0 {
		old = int64(d)
	}
	m.m.serviceEWMA.Store(old + (int64(d)-old)/8)
}
