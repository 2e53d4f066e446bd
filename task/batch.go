package task

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"taobox/internal/edsig"
)

// Batch signatures. One ed25519 signature may cover a batch of up to
// MaxBatch messages of one kind (request envelopes, or final frames) by
// signing the root of a Merkle tree over them; each message then carries
// its Proof, the path from its leaf to that root. A message signed alone
// (Proof.Depth 0) is signed directly, exactly as before batches existed.
//
// Tree: a complete binary tree of depth d = ⌈log2 n⌉ for n > 1 messages;
//
//	leaf i  = SHA-256(0x00 ‖ m_i)      m_i: the message's signing bytes
//	                                    (domain prefix included)
//	padding = 32 zero bytes            (leaves n … 2^d−1)
//	node    = SHA-256(0x01 ‖ left ‖ right)
//
// and the signed bytes are the batch domain ‖ u8 d ‖ root. The leaf and
// node prefixes keep a leaf from passing for a node; binding d in the
// signature fixes the tree's shape. A third party checks a batched
// signature with any ed25519 verifier over SignedBytes.
//
// Why: on a busy link the four signatures of a task (the validator signs
// and the miner verifies the request; the miner signs and the validator
// verifies the final frame) cost more CPU than the QUIC round trip. A
// signer that is already busy collects the messages that arrive meanwhile
// and signs them together (group commit: no added wait when idle), and a
// verifier checks each root once (rootCache).

// MaxBatchDepth bounds Proof.Depth; MaxBatch = 2^MaxBatchDepth messages
// share one signature at most.
const (
	MaxBatchDepth = 6
	MaxBatch      = 1 << MaxBatchDepth
)

// domainBatch is the prefix of a signed batch root.
const domainBatch = "taobox-task/1 batch\x00"

// Proof places a message in a signed batch. Depth 0: signed alone (Index
// 0, Path unused). Depth d ≥ 1: Index < 2^d and Path[0:d] are the
// siblings from the leaf up.
type Proof struct {
	Depth uint8
	Index uint8
	Path  [MaxBatchDepth][32]byte
}

// check reports a proof no decoder yields: a depth past MaxBatchDepth, an
// index past its tree (index 0 for depth 0). Such a proof verifies
// nothing.
func (p *Proof) check() error {
	if p.Depth > MaxBatchDepth || int(p.Index) >= 1<<p.Depth {
		return fmt.Errorf("%w: batch proof: index %d at depth %d", ErrMalformed, p.Index, p.Depth)
	}
	return nil
}

// depth is p.Depth within the Path array (a proof check refuses).
func (p *Proof) depth() int { return min(int(p.Depth), MaxBatchDepth) }

// size is the encoded size of p: nothing for depth 0, else
// u8 index | d×[32] siblings. The depth follows from the length.
func (p *Proof) size() int {
	if p.Depth == 0 {
		return 0
	}
	return 1 + 32*p.depth()
}

func (p *Proof) appendEncode(dst []byte) []byte {
	if p.Depth == 0 {
		return dst
	}
	dst = append(dst, p.Index)
	for i := range p.depth() {
		dst = append(dst, p.Path[i][:]...)
	}
	return dst
}

// Bytes is p's encoding: empty for depth 0, else u8 index | d×[32]
// siblings (as it travels after an envelope or a final frame).
func (p *Proof) Bytes() []byte { return p.appendEncode(nil) }

// DecodeProof decodes an encoded proof of exactly len(b) bytes: empty, or
// 1+32d bytes with 1 ≤ d ≤ MaxBatchDepth and index < 2^d.
func DecodeProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) == 0 {
		return p, nil
	}
	d := (len(b) - 1) / 32
	if (len(b)-1)%32 != 0 || d < 1 || d > MaxBatchDepth {
		return p, fmt.Errorf("%w: batch proof: %d bytes", ErrMalformed, len(b))
	}
	if int(b[0]) >= 1<<d {
		return p, fmt.Errorf("%w: batch proof: index %d in a tree of depth %d", ErrMalformed, b[0], d)
	}
	p.Depth, p.Index = uint8(d), b[0]
	for i := range d {
		copy(p.Path[i][:], b[1+32*i:])
	}
	return p, nil
}

func leafHash(msg []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(msg)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(l, r *[32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// root is the batch root p proves for a message with signing bytes msg.
func (p *Proof) root(msg []byte) [32]byte {
	h := leafHash(msg)
	for i := range p.depth() {
		if p.Index>>i&1 == 0 {
			h = nodeHash(&h, &p.Path[i])
		} else {
			h = nodeHash(&p.Path[i], &h)
		}
	}
	return h
}

// SignedBytes is what the signature of a message with signing bytes msg
// and proof p is over: msg itself for depth 0, else the batch domain,
// u8 depth and the root p proves for msg. A proof no decoder yields (see
// DecodeProof) is an error.
func SignedBytes(msg []byte, p *Proof) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Depth == 0 {
		return msg, nil
	}
	return rootBytes(p.Depth, p.root(msg)), nil
}

func rootBytes(depth uint8, root [32]byte) []byte {
	b := make([]byte, 0, len(domainBatch)+1+32)
	b = append(append(b, domainBatch...), depth)
	return append(b, root[:]...)
}

// SignBatch signs msgs (1 ≤ len ≤ MaxBatch: it panics otherwise), each the
// signing bytes of one message, with one signature and returns each
// message's proof. A single message is signed alone (depth 0).
func SignBatch(key ed25519.PrivateKey, msgs [][]byte) ([64]byte, []Proof) {
	if len(msgs) < 1 || len(msgs) > MaxBatch {
		panic(fmt.Sprintf("task: sign batch: %d messages, want 1..%d", len(msgs), MaxBatch))
	}
	proofs := make([]Proof, len(msgs))
	if len(msgs) == 1 {
		return edsig.Sign(key, msgs[0]), proofs
	}
	d := 0
	for 1<<d < len(msgs) {
		d++
	}
	level := make([][32]byte, 1<<d) // padding leaves stay zero
	for i, m := range msgs {
		level[i] = leafHash(m)
		proofs[i].Depth, proofs[i].Index = uint8(d), uint8(i)
	}
	for l := 0; l < d; l++ {
		for i := range proofs {
			proofs[i].Path[l] = level[(i>>l)^1]
		}
		next := level[:len(level)/2]
		for j := range next {
			next[j] = nodeHash(&level[2*j], &level[2*j+1])
		}
		level = next
	}
	return edsig.Sign(key, rootBytes(uint8(d), level[0])), proofs
}

// BatchSigner signs messages for many goroutines with one key, batching
// the messages that arrive while a signature is being made (group commit).
// When idle, a message is signed alone at once, so a lone caller sees no
// added latency and its signature has depth 0. It is safe for concurrent
// use; the zero value is not usable (NewBatchSigner).
//
// Group commit alone gathers little on a busy link (the other callers are
// mostly still on their way to Sign when a signature starts), so a signer
// that has reason to expect company first lets the goroutines that are
// runnable at that moment run (runtime.Gosched, again while that brings
// more): others already waiting, or the owner's busy hint (WithBusy: a
// client with several queries in flight, a miner with several answers).
// A yield can wait a whole time slice when long-running goroutines hold
// every core (a CPU model), so yieldStrikes yields in a row that took
// longer than yieldSlow and brought nobody turn yielding off for
// yieldOff. (A long yield that brought others is the busy link it is meant
// for: the goroutines it let run did their own work; a single slow one is
// noise on a busy machine.)
type BatchSigner struct {
	key  ed25519.PrivateKey
	max  int
	busy func() bool // nil: no hint
	now  func() time.Time
	off  atomic.Int64 // yielding is off until this time (Unix ns)

	mu      sync.Mutex
	leading bool // a leader is gathering or signing a batch
	pending []*signReq
	strikes int // slow yields that brought nobody, in a row

	sigs, msgs atomic.Uint64
}

// Stats reports how many signatures s made and how many messages they
// covered.
func (s *BatchSigner) Stats() (sigs, msgs uint64) { return s.sigs.Load(), s.msgs.Load() }

type signReq struct {
	msg   []byte
	sig   [64]byte
	proof Proof
	wake  chan bool // true: lead the next batch; false: signed
}

// NewBatchSigner signs with key, at most batch messages a signature: 1
// signs each alone, 0 or less means MaxBatch, more is clamped to MaxBatch.
func NewBatchSigner(key ed25519.PrivateKey, batch int) *BatchSigner {
	if batch <= 0 {
		batch = MaxBatch
	}
	return &BatchSigner{key: key, max: min(MaxBatch, batch), now: time.Now}
}

// WithBusy sets the hint that more callers are likely soon (see
// BatchSigner) and returns s. Call it before the first Sign.
func (s *BatchSigner) WithBusy(busy func() bool) *BatchSigner {
	s.busy = busy
	return s
}

// Yielding: yieldStrikes in a row that take longer than yieldSlow and
// bring nobody turn it off for yieldOff.
const (
	yieldSlow    = 200 * time.Microsecond
	yieldStrikes = 3
	yieldOff     = 10 * time.Second
)

// SignAll signs msgs (any number), which the caller holds all at once (a
// miner's step that completed several answers), in batches of at most the
// signer's cap, without waiting for other callers. It returns each
// message's signature and proof.
func (s *BatchSigner) SignAll(msgs [][]byte) ([][64]byte, []Proof) {
	sigs, proofs := make([][64]byte, len(msgs)), make([]Proof, len(msgs))
	for i := 0; i < len(msgs); i += s.max {
		j := min(i+s.max, len(msgs))
		sig, ps := SignBatch(s.key, msgs[i:j])
		for k := i; k < j; k++ {
			sigs[k], proofs[k] = sig, ps[k-i]
		}
		s.sigs.Add(1)
		s.msgs.Add(uint64(j - i))
	}
	return sigs, proofs
}

// SignAlone signs msg by itself, at once (depth 0: a peer that does not
// take batch proofs), counted in Stats like the rest.
func (s *BatchSigner) SignAlone(msg []byte) ([64]byte, Proof) {
	s.sigs.Add(1)
	s.msgs.Add(1)
	return edsig.Sign(s.key, msg), Proof{}
}

// Sign signs msg (its signing bytes, domain prefix included) and returns
// the signature and msg's proof in the batch it went out in. It blocks
// while an earlier batch is being signed.
func (s *BatchSigner) Sign(msg []byte) ([64]byte, Proof) {
	if !s.lead() {
		return s.signQueued(msg)
	}
	// Alone, with no reason to wait for company: sign at once (those who
	// come meanwhile queue for the next signature). This path keeps its
	// stack small: the caller's goroutine is often new, and the curve
	// arithmetic grows its stack.
	s.sigs.Add(1)
	s.msgs.Add(1)
	sig := edsig.Sign(s.key, msg)
	s.mu.Lock()
	s.handOn()
	s.mu.Unlock()
	return sig, Proof{}
}

// lead takes the lead when nobody has it and nothing suggests company
// soon.
func (s *BatchSigner) lead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading || s.max > 1 && s.busy != nil && s.busy() {
		return false
	}
	s.leading = true
	return true
}

// signQueued is Sign when msg may go out in a batch: it queues msg, and
// either waits for the leader's signature or leads the next batch.
func (s *BatchSigner) signQueued(msg []byte) ([64]byte, Proof) {
	r := &signReq{msg: msg, wake: make(chan bool, 1)}
	s.mu.Lock()
	s.pending = append(s.pending, r)
	if s.leading {
		s.mu.Unlock()
		if !<-r.wake {
			return r.sig, r.proof
		}
		s.mu.Lock() // r leads: it is pending[0]
	}
	s.leading = true
	if s.max > 1 && (len(s.pending) > 1 || s.busy != nil && s.busy()) {
		if t0 := s.now(); t0.UnixNano() >= s.off.Load() {
			had := len(s.pending)
			for seen := 0; len(s.pending) > seen && len(s.pending) < s.max; {
				seen = len(s.pending)
				s.mu.Unlock()
				runtime.Gosched()
				s.mu.Lock()
			}
			switch t1 := s.now(); {
			case len(s.pending) > had:
				s.strikes = 0
			case t1.Sub(t0) > yieldSlow:
				if s.strikes++; s.strikes >= yieldStrikes {
					s.strikes = 0
					s.off.Store(t1.Add(yieldOff).UnixNano())
				}
			}
		}
	}
	n := min(len(s.pending), s.max)
	batch := s.pending[:n:n]
	s.pending = append([]*signReq(nil), s.pending[n:]...)
	s.mu.Unlock()

	msgs := make([][]byte, len(batch))
	for i, q := range batch {
		msgs[i] = q.msg
	}
	sig, proofs := SignBatch(s.key, msgs)
	s.sigs.Add(1)
	s.msgs.Add(uint64(len(msgs)))
	for i, q := range batch {
		q.sig, q.proof = sig, proofs[i]
		if q != r {
			q.wake <- false
		}
	}

	s.mu.Lock()
	s.handOn()
	s.mu.Unlock()
	return r.sig, r.proof
}

// handOn ends a leader's turn: the first waiting caller leads next, or
// nobody leads. s.mu is held.
func (s *BatchSigner) handOn() {
	if len(s.pending) > 0 {
		s.pending[0].wake <- true // leading stays set
	} else {
		s.leading = false
	}
}

// rootCache remembers batch roots whose signature verified (or failed), so
// that the other messages of a batch cost a few hashes instead of an
// ed25519 verification. Concurrent lookups of one root wait for the first
// (single flight): a batch's messages tend to arrive together. Entries are
// keyed by signer, depth and root and hold the signature they were checked
// with; another signature over the same root is checked on its own. It
// holds at most max entries, dropping the oldest.
type rootCache struct {
	max int

	mu    sync.Mutex
	m     map[rootKey]*rootEntry
	order []rootKey // insertion order, a ring of max
	next  int

	checks atomic.Uint64 // ed25519 verifications made
}

type rootKey struct {
	pub   [32]byte
	depth uint8
	root  [32]byte
}

type rootEntry struct {
	sig  [64]byte
	done chan struct{} // closed once ok is set
	ok   bool
}

func newRootCache(n int) *rootCache {
	n = max(n, 1)
	return &rootCache{max: n, m: make(map[rootKey]*rootEntry), order: make([]rootKey, 0, n)}
}

// batchRoots is the package-level cache behind Envelope.Verify and
// Final.Verify: 4096 roots × ~170 B.
var batchRoots = newRootCache(4096)

// verify reports whether sig is pub's signature over msg with proof p.
func (c *rootCache) verify(pub [32]byte, msg []byte, p *Proof, sig *[64]byte) bool {
	if p.check() != nil {
		return false
	}
	if p.Depth == 0 {
		return edsig.Verify(pub, msg, sig)
	}
	k := rootKey{pub, p.Depth, p.root(msg)}
	c.mu.Lock()
	if e := c.m[k]; e != nil && e.sig == *sig {
		c.mu.Unlock()
		<-e.done
		return e.ok
	}
	e := &rootEntry{sig: *sig, done: make(chan struct{})}
	c.insert(k, e)
	c.mu.Unlock()
	c.checks.Add(1)
	e.ok = edsig.Verify(pub, rootBytes(k.depth, k.root), sig)
	close(e.done)
	return e.ok
}

// insert stores e under k (replacing an entry with another signature),
// evicting the oldest key when full. c.mu is held.
func (c *rootCache) insert(k rootKey, e *rootEntry) {
	if _, ok := c.m[k]; !ok {
		if len(c.order) < c.max {
			c.order = append(c.order, k)
		} else {
			delete(c.m, c.order[c.next])
			c.order[c.next] = k
			c.next = (c.next + 1) % c.max
		}
	}
	c.m[k] = e
}
