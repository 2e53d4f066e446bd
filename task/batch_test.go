package task

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"taobox/chain/types"
)

// batchEnvelopes makes n envelopes for body, signed together in one batch.
func batchEnvelopes(tb testing.TB, k ed25519.PrivateKey, m types.AccountID, body []byte, n int) []Envelope {
	tb.Helper()
	es := make([]Envelope, n)
	msgs := make([][]byte, n)
	for i := range es {
		var err error
		es[i], err = newEnvelope(k.Public().(ed25519.PublicKey), 1, m, body, time.Unix(0, 0), bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 16)),
			func([]byte) ([64]byte, Proof) { return [64]byte{}, Proof{} })
		if err != nil {
			tb.Fatal(err)
		}
		msgs[i] = es[i].SigningBytes()
	}
	sig, proofs := SignBatch(k, msgs)
	for i := range es {
		es[i].Sig, es[i].Proof = sig, proofs[i]
	}
	return es
}

// signedBytes is SignedBytes, with nil (which no test key signed) for a
// proof it refuses.
func signedBytes(m []byte, p *Proof) []byte {
	b, err := SignedBytes(m, p)
	if err != nil {
		return nil
	}
	return b
}

// Proofs built in memory that no decoder yields (too deep, an index past
// the tree) verify nothing, have no signed bytes, and encode without a
// panic.
func TestProofOutOfShape(t *testing.T) {
	k, pub := testKey(1)
	msgs := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	sig, proofs := SignBatch(k, msgs)
	for name, mutate := range map[string]func(*Proof){
		"too deep":          func(p *Proof) { p.Depth = MaxBatchDepth + 1 },
		"index past a tree": func(p *Proof) { p.Index |= 0x80 },
		"index at depth 0":  func(p *Proof) { p.Depth, p.Index = 0, 1 },
	} {
		p := proofs[0]
		mutate(&p)
		if newRootCache(4).verify(pub, msgs[0], &p, &sig) {
			t.Errorf("%s: verifies", name)
		}
		if b, err := SignedBytes(msgs[0], &p); err == nil {
			t.Errorf("%s: signed bytes %x", name, b)
		}
		e := Envelope{Proof: p}
		if _, err := DecodeEnvelope(e.Encode()); err == nil && p.Depth > 0 && p.Depth <= MaxBatchDepth {
			t.Errorf("%s: the encoding decodes", name)
		}
	}
}

// Every batch size from 1 to MaxBatch: each message verifies with its own
// proof, for a third party with crypto/ed25519 over SignedBytes and through
// the root cache; any other message, index, sibling or depth fails.
func TestSignBatch(t *testing.T) {
	k, pub := testKey(1)
	for n := 1; n <= MaxBatch; n++ {
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = fmt.Appendf(nil, "message %d of %d", i, n)
		}
		sig, proofs := SignBatch(k, msgs)
		wantDepth := 0
		for n > 1<<wantDepth {
			wantDepth++
		}
		c := newRootCache(8)
		for i, m := range msgs {
			p := proofs[i]
			if int(p.Depth) != wantDepth || int(p.Index) != i && n > 1 {
				t.Fatalf("n=%d i=%d: depth %d index %d", n, i, p.Depth, p.Index)
			}
			if !ed25519.Verify(pub[:], signedBytes(m, &p), sig[:]) {
				t.Fatalf("n=%d i=%d: crypto/ed25519 rejects", n, i)
			}
			if !c.verify(pub, m, &p, &sig) {
				t.Fatalf("n=%d i=%d: root cache rejects", n, i)
			}
			bad := func(what string, m []byte, q Proof) {
				t.Helper()
				if ed25519.Verify(pub[:], signedBytes(m, &q), sig[:]) || c.verify(pub, m, &q, &sig) {
					t.Fatalf("n=%d i=%d: %s verifies", n, i, what)
				}
			}
			bad("another message", append(append([]byte{}, m...), '!'), p)
			if n == 1 {
				continue
			}
			bad("another message's proof", m, proofs[(i+1)%n])
			q := p
			q.Index ^= 1 << (i % int(p.Depth))
			bad("another index", m, q)
			q = p
			q.Path[i%int(p.Depth)][7] ^= 4
			bad("a changed sibling", m, q)
			q = p
			q.Depth--
			bad("a shallower tree", m, q)
			if p.Depth < MaxBatchDepth {
				q = p
				q.Depth++
				bad("a deeper tree", m, q)
			}
		}
	}
	for _, n := range []int{0, MaxBatch + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%d messages: no panic", n)
				}
			}()
			SignBatch(k, make([][]byte, n))
		}()
	}
}

// A batch-signed envelope and final frame survive encoding; every bit
// flip in the proof fails to decode or to verify.
func TestBatchEncoding(t *testing.T) {
	k, _ := testKey(1)
	mk, m := testKey(2)
	body := sampleBodyBytes()
	es := batchEnvelopes(t, k, m, body, 6) // depth 3
	for i := range es {
		e := es[i]
		enc := e.Encode()
		if len(enc) != EnvelopeSize+1+32*3 || e.Size() != len(enc) {
			t.Fatalf("size %d", len(enc))
		}
		d, err := DecodeEnvelope(enc)
		if err != nil || d != e {
			t.Fatalf("decode: %v", err)
		}
		if err := d.Verify(); err != nil {
			t.Fatal(err)
		}
		for bit := 8 * EnvelopeSize; bit < 8*len(enc); bit++ {
			bad := append([]byte{}, enc...)
			bad[bit/8] ^= 1 << (bit % 8)
			if d, err := DecodeEnvelope(bad); err == nil && d.Verify() == nil {
				t.Fatalf("envelope %d: flip of proof bit %d still verifies", i, bit-8*EnvelopeSize)
			}
		}
	}

	req := es[0].Hash()
	toks := []Token{{ID: 5, LogProb: -0.5}}
	c := NewResultChain(req)
	c.Add(toks[0].AppendEncode(nil))
	msgs := [][]byte{FinalSigningBytes(req, 1, c.Sum()), []byte("other"), []byte("third")}
	sig, proofs := SignBatch(mk, msgs)
	f := Final{Count: 1, ResultHash: c.Sum(), Sig: sig, Proof: proofs[0]}
	if err := f.Verify(m, req, toks); err != nil {
		t.Fatal(err)
	}
	frame := AppendFinalFrame(nil, &f)
	typ, p, err := NewFrameReader(bytes.NewReader(frame)).Next()
	if err != nil || typ != FrameFinal {
		t.Fatal(typ, err)
	}
	if g, err := DecodeFinal(p); err != nil || g != f {
		t.Fatalf("decode: %v", err)
	}
	for bit := 8 * finalPayload; bit < 8*len(p); bit++ {
		bad := append([]byte{}, p...)
		bad[bit/8] ^= 1 << (bit % 8)
		if g, err := DecodeFinal(bad); err == nil && g.Verify(m, req, toks) == nil {
			t.Fatalf("final: flip of proof bit %d still verifies", bit-8*finalPayload)
		}
	}
	// The other leaves' proofs do not make this final frame verify.
	for _, q := range proofs[1:] {
		g := f
		g.Proof = q
		if g.Verify(m, req, toks) == nil {
			t.Fatal("a sibling's proof verifies")
		}
	}
}

func TestDecodeProofRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"index byte only", []byte{0}},
		{"not whole hashes", make([]byte, 1+32+5)},
		{"too deep", make([]byte, 1+32*(MaxBatchDepth+1))},
		{"index past the tree", append([]byte{2}, make([]byte, 32)...)},
		{"index past a depth-6 tree", append([]byte{64}, make([]byte, 32*6)...)},
	} {
		if _, err := DecodeProof(c.b); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// While a signature is being made, later callers queue and go out together
// in batches of at most the cap; every message verifies, and Stats counts
// each message once.
func TestBatchSignerGroupsWaiting(t *testing.T) {
	k, pub := testKey(1)
	for _, c := range []struct{ cap, n, sigs int }{{0, 100, 2}, {8, 20, 3}, {1, 5, 5}} {
		s := NewBatchSigner(k, c.cap)
		s.mu.Lock()
		s.leading = true // as if a leader were signing
		s.mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, c.n)
		for i := range c.n {
			wg.Go(func() {
				m := fmt.Appendf(nil, "m%d", i)
				sig, p := s.Sign(m)
				if !ed25519.Verify(pub[:], signedBytes(m, &p), sig[:]) {
					errs <- fmt.Errorf("message %d does not verify", i)
				}
			})
		}
		for {
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n == c.n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		s.mu.Lock()
		s.pending[0].wake <- true // the leader finished: hand on the lead
		s.mu.Unlock()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if sigs, msgs := s.Stats(); sigs != uint64(c.sigs) || msgs != uint64(c.n) {
			t.Errorf("cap %d, %d waiting: %d signatures for %d messages, want %d for %d", c.cap, c.n, sigs, msgs, c.sigs, c.n)
		}
		if s.leading || len(s.pending) != 0 {
			t.Errorf("cap %d: signer left leading=%v with %d pending", c.cap, s.leading, len(s.pending))
		}
	}
	// Idle: a lone message is signed alone, with no proof.
	s := NewBatchSigner(k, 0)
	sig, p := s.Sign([]byte("alone"))
	if p != (Proof{}) || !ed25519.Verify(pub[:], []byte("alone"), sig[:]) {
		t.Fatal("a lone message is not signed alone")
	}
}

// Many goroutines at once (run with -race): every signature verifies.
func TestBatchSignerConcurrent(t *testing.T) {
	k, pub := testKey(1)
	s := NewBatchSigner(k, 0)
	var wg sync.WaitGroup
	var failed sync.Map
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				m := fmt.Appendf(nil, "g%d m%d", g, i)
				sig, p := s.Sign(m)
				if !ed25519.Verify(pub[:], signedBytes(m, &p), sig[:]) {
					failed.Store(string(m), true)
				}
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, _ any) bool { t.Errorf("%s does not verify", k); return true })
	if sigs, msgs := s.Stats(); msgs != 800 || sigs == 0 || sigs > msgs {
		t.Fatalf("%d signatures for %d messages", sigs, msgs)
	}
}

// The root cache: a verdict is per signature (a bad signature over a root
// never hides the good one, nor the reverse), concurrent lookups of one
// root verify once, and the cache holds at most its size.
func TestRootCache(t *testing.T) {
	k, pub := testKey(1)
	msgs := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	sig, proofs := SignBatch(k, msgs)
	bad := sig
	bad[3] ^= 1
	c := newRootCache(2)
	for i, want := range []bool{true, false, true, false, false, true} {
		s := sig
		if !want {
			s = bad
		}
		if got := c.verify(pub, msgs[i%4], &proofs[i%4], &s); got != want {
			t.Fatalf("step %d: %v, want %v", i, got, want)
		}
	}
	// Other roots evict the oldest; the cache never exceeds its size.
	for n := 2; n <= 5; n++ {
		ms := make([][]byte, n)
		for i := range ms {
			ms[i] = fmt.Appendf(nil, "%d/%d", i, n)
		}
		s, ps := SignBatch(k, ms)
		if !c.verify(pub, ms[0], &ps[0], &s) {
			t.Fatal("fresh root rejected")
		}
		if len(c.m) > 2 || len(c.order) > 2 {
			t.Fatalf("cache holds %d entries (%d in order)", len(c.m), len(c.order))
		}
	}
	// Single flight: 32 concurrent checks of one root's leaves, one entry.
	c = newRootCache(16)
	var wg sync.WaitGroup
	res := make([]bool, 32)
	for i := range res {
		wg.Go(func() { res[i] = c.verify(pub, msgs[i%4], &proofs[i%4], &sig) })
	}
	wg.Wait()
	for i, ok := range res {
		if !ok {
			t.Fatalf("check %d failed", i)
		}
	}
	if len(c.m) != 1 || c.checks.Load() != 1 {
		t.Fatalf("%d entries and %d signature checks for one root", len(c.m), c.checks.Load())
	}
	// A key of small order verifies nothing, batched or not.
	var zero [32]byte
	if c.verify(zero, msgs[0], &proofs[0], &sig) {
		t.Fatal("zero key accepted")
	}
}

// BenchmarkBatchCrypto is the signature cost per message when n messages
// share one signature: signing the batch, and verifying every message
// through a fresh root cache (the first verifies, the rest hash). n = 1 is
// the unbatched cost.
func BenchmarkBatchCrypto(b *testing.B) {
	k, pub := testKey(1)
	body := sampleBodyBytes()
	_, m := testKey(2)
	for _, n := range []int{1, 4, 16, 64} {
		es := batchEnvelopes(b, k, m, body, n)
		msgs := make([][]byte, n)
		for i := range es {
			msgs[i] = es[i].SigningBytes()
		}
		b.Run(fmt.Sprintf("sign/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				SignBatch(k, msgs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
		b.Run(fmt.Sprintf("verify/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				c := newRootCache(4)
				for i := range es {
					if !c.verify(pub, msgs[i], &es[i].Proof, &es[i].Sig) {
						b.Fatal("rejected")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
