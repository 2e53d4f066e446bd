package miner

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"taobox/chain/types"
	"taobox/task"
)

// sender is what the chain says about a validator hotkey on our netuid.
type sender struct {
	stake  uint64
	permit bool
}

// senderCache holds the netuid's hotkey table, refreshed when the chain
// height changes (if the view reports one) or after ttl.
type senderCache struct {
	view   ChainView
	netuid uint16
	ttl    time.Duration

	mu      sync.RWMutex
	at      time.Time
	height  uint64
	tbl     map[types.AccountID]sender
	good    time.Time // when the table was last read
	lastErr error     // why the latest read failed; nil after a good one
}

// staleSenders is how old the sender table may grow, when the chain
// cannot be read, before the miner reports itself unhealthy: it goes on
// admitting on that table meanwhile (a node restarting, a brief outage).
const staleSenders = time.Minute

// health reports an error while the cache has no sender table (every
// request is refused, internal) or while its table is over staleSenders
// old because the chain cannot be read. It reads the chain when the table
// is due, as a lookup does, and also when there is no table and a read
// failed within ttl (lookups then answer that failure without asking: a
// miner whose subnet appears a moment after it started is healthy at the
// next probe).
func (c *senderCache) health(now time.Time) error {
	if _, _, err := c.get(now, types.AccountID{}, true); err != nil {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return fmt.Errorf("the metagraph of netuid %d cannot be read (%v): every task is refused until it can; check the miner's chain node (--node)", c.netuid, c.lastErr)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if age := now.Sub(c.good); age > staleSenders {
		return fmt.Errorf("the chain state is %v old, the chain cannot be read: %v; check the miner's chain node (--node)", age.Round(time.Second), c.lastErr)
	}
	return nil
}

func (c *senderCache) fresh(now time.Time, h uint64, hasH bool) bool {
	return c.tbl != nil && now.Sub(c.at) < c.ttl && (!hasH || h == c.height)
}

// lookup returns the sender record for id. ok is false if id is not
// registered; err is set only if there is no table at all.
func (c *senderCache) lookup(now time.Time, id types.AccountID) (sender, bool, error) {
	return c.get(now, id, false)
}

// get is lookup; with retry it reads the chain even within ttl of a
// failed read while there is no table.
func (c *senderCache) get(now time.Time, id types.AccountID, retry bool) (sender, bool, error) {
	var h uint64
	hv, hasH := c.view.(Heighter)
	if hasH {
		h = hv.Height()
	}
	c.mu.RLock()
	if c.fresh(now, h, hasH) {
		s, ok := c.tbl[id]
		c.mu.RUnlock()
		return s, ok, nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tbl == nil && c.lastErr != nil && now.Sub(c.at) < c.ttl && !retry {
		// No table and a read failed within ttl: answer that failure
		// rather than ask a dead node again for every request.
		return sender{}, false, fmt.Errorf("miner: metagraph of netuid %d: %w", c.netuid, c.lastErr)
	}
	if !c.fresh(now, h, hasH) {
		mg, err := c.view.Metagraph(c.netuid)
		c.lastErr = err
		if err != nil && c.tbl == nil {
			c.at = now
			return sender{}, false, fmt.Errorf("miner: metagraph of netuid %d: %w", c.netuid, err)
		}
		if err == nil {
			tbl := make(map[types.AccountID]sender, len(mg.Neurons))
			for _, n := range mg.Neurons {
				tbl[n.Hotkey] = sender{stake: n.Stake, permit: n.Permit}
			}
			c.tbl, c.good = tbl, now
		} // on error keep the old table (the chain may be briefly unavailable)
		c.at, c.height = now, h
	}
	s, ok := c.tbl[id]
	return s, ok, nil
}

// replayKey identifies a request for the replay cache.
type replayKey struct {
	v     types.AccountID
	nonce [16]byte
}

type replayEntry struct {
	k      replayKey
	expiry int64 // unix ms after which the envelope is stale anyway
}

// replayCache remembers nonces until their envelope would be stale. FIFO
// eviction of expired entries; never evicts a live one. Time inside it
// never goes back: an entry is expired, and an envelope stale, against the
// latest clock any caller brought (so a request whose clock was read
// before another's pruned its nonce cannot slip through). One validator
// holds at most perKey entries, so a validator over its share is refused,
// not everyone.
type replayCache struct {
	mu     sync.Mutex
	max    int
	perKey int
	m      map[replayKey]int64
	count  map[types.AccountID]int // live entries per validator
	fifo   []replayEntry
	head   int
	maxNow int64
}

// replayResult is the outcome of replayCache.add.
type replayResult int

const (
	replayAdded replayResult = iota
	replaySeen               // a live duplicate
	replayStale              // expired against the cache's clock
	replayQuota              // the validator holds its share of the cache
	replayFull               // no room at all
)

// newReplayCache returns a cache of size entries, perKey (at least 1) of
// them per validator.
func newReplayCache(size, perKey int) *replayCache {
	return &replayCache{max: size, perKey: max(1, perKey), m: make(map[replayKey]int64), count: make(map[types.AccountID]int)}
}

// replayShare is how many replay entries one validator may hold: a
// sixteenth of the cache, or, if more, what a validator staying within its
// rate limit can hold (Burst plus Rate over two windows: a nonce lives
// until its timestamp plus the window, and the timestamp may be a window
// ahead), up to the whole cache.
func replayShare(l *Limits) int {
	within := float64(l.Burst) + l.Rate*2*l.Window.Seconds()
	return max(l.ReplayCache/16, int(min(within, float64(l.ReplayCache))))
}

// add records k, valid until expiry (unix ms), at nowMs.
func (c *replayCache) add(k replayKey, expiry, nowMs int64) replayResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxNow = max(c.maxNow, nowMs)
	if e, ok := c.m[k]; ok && e >= c.maxNow {
		return replaySeen
	}
	if expiry < c.maxNow {
		return replayStale
	}
	// The full scan also runs when forgotten entries have grown the FIFO
	// past twice the cache, so it stays bounded by the cache (amortized:
	// after a scan it holds about len(c.m)).
	c.sweepLocked(c.maxNow, len(c.m) >= c.max || len(c.fifo)-c.head >= 2*c.max)
	switch {
	case len(c.m) >= c.max:
		return replayFull
	case c.count[k.v] >= c.perKey:
		return replayQuota
	}
	if _, ok := c.m[k]; !ok {
		c.count[k.v]++
	}
	c.m[k] = expiry
	c.fifo = append(c.fifo, replayEntry{k, expiry})
	return replayAdded
}

// forget drops k, added with expiry, again (its request was refused after
// it, so its nonce may come back).
func (c *replayCache) forget(k replayKey, expiry int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.m[k]; ok && x == expiry {
		c.deleteLocked(k)
	}
}

func (c *replayCache) deleteLocked(k replayKey) {
	delete(c.m, k)
	if c.count[k.v]--; c.count[k.v] <= 0 {
		delete(c.count, k.v)
	}
}

// sweepLocked drops expired entries from the front of the FIFO; with all
// it scans the whole FIFO (only when the cache is full).
func (c *replayCache) sweepLocked(nowMs int64, all bool) {
	for c.head < len(c.fifo) && c.fifo[c.head].expiry < nowMs {
		e := c.fifo[c.head]
		if x, ok := c.m[e.k]; ok && x == e.expiry {
			c.deleteLocked(e.k)
		}
		c.head++
	}
	if all {
		kept := c.fifo[:0]
		for _, e := range c.fifo[c.head:] {
			if x, ok := c.m[e.k]; !ok || x != e.expiry {
				continue // forgotten or re-added: a later entry stands for it
			}
			if e.expiry < nowMs {
				c.deleteLocked(e.k)
				continue
			}
			kept = append(kept, e)
		}
		c.fifo, c.head = kept, 0
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		c.fifo = append(c.fifo[:0], c.fifo[c.head:]...)
		c.head = 0
	}
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// hotkeyState is the rate and concurrency account of one validator.
type hotkeyState struct {
	tokens   float64
	last     time.Time
	inflight int
}

// request is one admitted task on its way through the queue and worker.
type request struct {
	env   task.Envelope
	hash  [32]byte
	body  task.Body
	stake uint64
	seq   uint64
	hk    *hotkeyState

	ctx    context.Context // ends when the client goes away
	w      *streamWriter
	queued time.Time
	batch  bool // its final frame may be batch-signed (the connection negotiated task.ALPNBatch)
}

func (r *request) reject(code task.Code, retryMs uint32, msg string) {
	r.w.write(task.AppendRejectFrame(nil, &task.Reject{Code: code, RetryAfterMs: retryMs, Message: msg}))
	r.w.finish()
}

// admission is the outcome of admit.
type admission struct {
	code      task.Code
	retryMs   uint32
	msg       string
	transport bool // the request was cut off by its stream or connection, not malformed by its sender
}

func reject(code task.Code, format string, args ...any) admission {
	return admission{code: code, msg: fmt.Sprintf(format, args...)}
}

// admit runs the admission checks, cheapest first, on a request read off a
// stream: envelope fields, chain membership, permit and stake, timestamp,
// signature, replay, body, model, rate and concurrency. On success it fills
// r (and takes one concurrency slot of the hotkey, which the caller must
// release) and returns CodeOK.
func (m *Miner) admit(env task.Envelope, bodyBytes []byte, now time.Time, r *request) admission {
	switch {
	case env.Version != task.Version:
		return reject(task.CodeBadVersion, "version %d, this miner speaks %d", env.Version, task.Version)
	case env.Netuid != m.cfg.Netuid:
		return reject(task.CodeWrongNetuid, "netuid %d, this miner serves %d", env.Netuid, m.cfg.Netuid)
	case env.Miner != m.id:
		return reject(task.CodeWrongMiner, "addressed to %s", types.SS58Encode(env.Miner))
	}
	s, ok, err := m.senders.lookup(now, env.Validator)
	switch {
	case err != nil:
		m.log.Warn("no chain state", "err", err)
		return reject(task.CodeInternal, "chain state unavailable")
	case !ok:
		return reject(task.CodeUnregistered, "%s is not registered on netuid %d", types.SS58Encode(env.Validator), m.cfg.Netuid)
	case !s.permit:
		return reject(task.CodeNoPermit, "%s has no validator permit", types.SS58Encode(env.Validator))
	case s.stake < m.cfg.Limits.MinStake:
		return reject(task.CodeLowStake, "stake %d < %d", s.stake, m.cfg.Limits.MinStake)
	}
	nowMs, win := now.UnixMilli(), m.cfg.Limits.Window.Milliseconds()
	if d := nowMs - env.TimeMs; d > win || d < -win {
		return reject(task.CodeStale, "timestamp %d ms off (window ±%d ms)", d, win)
	}
	if err := env.VerifyBody(bodyBytes); err != nil {
		return reject(task.CodeBadSignature, "body hash mismatch")
	}
	if err := env.Verify(); err != nil {
		return reject(task.CodeBadSignature, "envelope signature does not verify")
	}
	rk, rexp := replayKey{env.Validator, env.Nonce}, env.TimeMs+win
	switch m.replay.add(rk, rexp, nowMs) {
	case replaySeen:
		return reject(task.CodeReplay, "nonce already used")
	case replayStale:
		return reject(task.CodeStale, "timestamp outside the window")
	case replayQuota:
		a := reject(task.CodeRateLimited, "too many requests in the last %d ms", 2*win)
		a.retryMs = uint32(min(win, 1000))
		return a
	case replayFull:
		a := reject(task.CodeBusy, "replay cache full")
		a.retryMs = uint32(min(win, 1000))
		return a
	}
	if a := m.admitAfterReplay(env, bodyBytes, now, s, r); a.code != task.CodeOK {
		m.replay.forget(rk, rexp) // refused: its nonce holds no room
		return a
	}
	return admission{code: task.CodeOK}
}

// admitAfterReplay runs the checks after the replay cache: body, model,
// rate and concurrency.
func (m *Miner) admitAfterReplay(env task.Envelope, bodyBytes []byte, now time.Time, s sender, r *request) admission {
	body, err := task.DecodeBody(bodyBytes)
	if err != nil {
		return reject(task.CodeMalformed, "%v", err)
	}
	if body.ModelHash != m.cfg.ModelHash {
		return reject(task.CodeModelMismatch, "this miner serves model %x", m.cfg.ModelHash[:8])
	}
	if mdl := m.cfg.Model; mdl != nil {
		if len(body.PromptIDs) >= mdl.Config.SeqLen {
			return reject(task.CodeMalformed, "prompt of %d tokens does not fit the context of %d", len(body.PromptIDs), mdl.Config.SeqLen)
		}
		for _, id := range body.PromptIDs {
			if int(id) >= mdl.Config.VocabSize {
				return reject(task.CodeMalformed, "prompt token %d outside the vocabulary of %d", id, mdl.Config.VocabSize)
			}
		}
	}
	// Rate (token bucket) and concurrency per hotkey.
	l := &m.cfg.Limits
	m.mu.Lock()
	hk := m.hk[env.Validator]
	if hk == nil {
		hk = &hotkeyState{tokens: float64(l.Burst), last: now}
		m.hk[env.Validator] = hk
	}
	hk.tokens = min(float64(l.Burst), hk.tokens+now.Sub(hk.last).Seconds()*l.Rate)
	hk.last = now
	if hk.tokens < 1 {
		wait := (1 - hk.tokens) / l.Rate * 1000
		m.mu.Unlock()
		a := reject(task.CodeRateLimited, "over %g requests/s", l.Rate)
		a.retryMs = uint32(wait) + 1
		return a
	}
	if hk.inflight >= l.PerHotkey {
		m.mu.Unlock()
		a := reject(task.CodeTooManyStreams, "%d requests in flight", l.PerHotkey)
		a.retryMs = m.retryAfterMs()
		return a
	}
	hk.tokens--
	hk.inflight++
	m.mu.Unlock()
	r.env, r.hash, r.body, r.stake, r.hk = env, env.Hash(), body, s.stake, hk
	return admission{code: task.CodeOK}
}

// release gives back r's place in its hotkey's in-flight count, once:
// it clears r.hk, so a later call does nothing. It runs on the goroutine
// that holds r: its stream's before the queue, and after it whichever took
// r out (the worker, a request that displaced it, Serve stopping); and
// before r's last frame is queued, so that a client holding that frame
// finds the count down.
func (m *Miner) release(r *request) {
	if r.hk == nil {
		return
	}
	m.mu.Lock()
	r.hk.inflight--
	m.mu.Unlock()
	r.hk = nil
}

// retryAfterMs estimates when the queue will have room: its length times
// the mean service time, over the answers served at once (one on the
// accelerator; at least 10 ms).
func (m *Miner) retryAfterMs() uint32 {
	n := m.q.len() + 1
	svc := time.Duration(m.m.serviceEWMA.Load())
	par := m.parallel()
	if m.accelReady() {
		par = 1
	}
	return uint32(max(10, (time.Duration(n) * svc / time.Duration(par)).Milliseconds()))
}

// queue is a bounded priority queue: highest stake first, then arrival.
type queue struct {
	mu     sync.Mutex
	max    int
	h      reqHeap
	seq    uint64
	notify chan struct{}
	closed bool
}

func newQueue(max int) *queue { return &queue{max: max, notify: make(chan struct{}, 1)} }

type reqHeap []*request

func (h reqHeap) Len() int { return len(h) }
func (h reqHeap) Less(i, j int) bool {
	if h[i].stake != h[j].stake {
		return h[i].stake > h[j].stake
	}
	return h[i].seq < h[j].seq
}
func (h reqHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *reqHeap) Push(x any)   { *h = append(*h, x.(*request)) }
func (h *reqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// push adds r. When the queue is full, r displaces the lowest-stake (then
// newest) waiting request if it has more stake, and that one comes back as
// evicted; otherwise ok is false.
func (q *queue) push(r *request) (evicted *request, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, false
	}
	q.seq++
	r.seq = q.seq
	if len(q.h) >= q.max {
		lo := -1
		for i, x := range q.h {
			if lo < 0 || x.stake < q.h[lo].stake || (x.stake == q.h[lo].stake && x.seq > q.h[lo].seq) {
				lo = i
			}
		}
		if lo < 0 || q.h[lo].stake >= r.stake {
			return nil, false
		}
		evicted = heap.Remove(&q.h, lo).(*request)
	}
	heap.Push(&q.h, r)
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return evicted, true
}

// pop waits for the next request or the end of ctx (nil).
func (q *queue) pop(ctx context.Context) *request {
	for {
		q.mu.Lock()
		if len(q.h) > 0 {
			r := heap.Pop(&q.h).(*request)
			q.mu.Unlock()
			return r
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// drain closes the queue and returns what was waiting.
func (q *queue) drain() []*request {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	out := slices.Clone(q.h)
	q.h = nil
	return out
}
