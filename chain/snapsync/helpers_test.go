package snapsync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"taobox/chain/store"
	"taobox/chain/types"
)

// testChain is the chain id of the test manifests.
var testChain = types.HashBytes([]byte("snapsync test chain"))

// fillStore commits blocks 0..blocks-1 to st, each writing perBlock keys
// with pseudo-random values (a pure function of seed), overwriting and
// deleting a few earlier keys, and returns the head header.
func fillStore(t testing.TB, st *store.Store, seed uint64, blocks, perBlock int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for h := range blocks {
		var ch []store.KV
		for i := range perBlock {
			v := make([]byte, 8+rng.IntN(120))
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			ch = append(ch, store.KV{Key: fmt.Appendf(nil, "acct/%d/%d", h, i), Value: v})
		}
		if h > 0 {
			for range 20 {
				ch = append(ch, store.KV{Key: fmt.Appendf(nil, "acct/%d/%d", rng.IntN(h), rng.IntN(perBlock))}) // delete
			}
			ch = append(ch, store.KV{Key: fmt.Appendf(nil, "acct/%d/0", h-1), Value: []byte{}}) // an empty value
		}
		hdr := testHeader(uint64(h))
		if _, err := st.CommitBlock(store.BlockCommit{Height: uint64(h), Hash: types.HashBytes(hdr), Header: hdr, Body: []byte("body"), Changes: ch}); err != nil {
			t.Fatal(err)
		}
	}
}

func testHeader(h uint64) []byte { return fmt.Appendf(nil, "test header %d", h) }

// sourceStore opens a store in a temp dir and fills it.
func sourceStore(t testing.TB, buckets, blocks, perBlock int) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Buckets: buckets, NoSync: true, KeepBlocks: store.KeepAll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fillStore(t, st, 42, blocks, perBlock)
	return st
}

// trustedOf returns the Trusted of st's head, as a verified header gives it.
func trustedOf(t testing.TB, st *store.Store) Trusted {
	t.Helper()
	h, hash, ok := st.Head()
	if !ok {
		t.Fatal("empty source store")
	}
	hdr, _, err := st.Header(h)
	if err != nil {
		t.Fatal(err)
	}
	return Trusted{Height: h, BlockHash: hash, StateRoot: st.StateRoot(), Header: hdr}
}

// export takes a snapshot of st into a new exporter with chunk target cb.
func export(t testing.TB, st *store.Store, cb int) (*Exporter, *Manifest) {
	t.Helper()
	e, err := NewExporter(ExporterConfig{Dir: t.TempDir(), ChainID: testChain, ChunkBytes: cb})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Take(st)
	if err != nil {
		t.Fatal(err)
	}
	return e, m
}

// exportSource serves an Exporter as a Source, counting chunk requests and
// optionally tampering with what it serves.
type exportSource struct {
	id       string
	e        *Exporter
	manifest func([]byte) []byte         // nil: as exported
	chunk    func(int, []byte) []byte    // nil: as exported
	delay    time.Duration               // per chunk
	after    func(index int, served int) // called after serving a chunk

	mu      sync.Mutex
	fetched map[int]int
	served  int
}

func (s *exportSource) ID() string { return s.id }

func (s *exportSource) Manifest(ctx context.Context, h uint64) ([]byte, error) {
	b, err := s.e.Manifest(h)
	if err != nil || s.manifest == nil {
		return b, err
	}
	return s.manifest(b), nil
}

func (s *exportSource) Chunk(ctx context.Context, h uint64, i int) ([]byte, error) {
	s.mu.Lock()
	if s.fetched == nil {
		s.fetched = map[int]int{}
	}
	s.fetched[i]++
	s.mu.Unlock()
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b, err := s.e.Chunk(h, i)
	if err != nil {
		return nil, err
	}
	if s.chunk != nil {
		b = s.chunk(i, b)
	}
	s.mu.Lock()
	s.served++
	n := s.served
	s.mu.Unlock()
	if s.after != nil {
		s.after(i, n)
	}
	return b, nil
}

func (s *exportSource) fetches() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.fetched {
		out[k] = v
	}
	return out
}

// openEmpty opens a fresh store for a sync (bucket count adopted from the
// snapshot).
func openEmpty(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sameState fails unless a and b hold the same entries.
func sameState(t testing.TB, a, b *store.Store) {
	t.Helper()
	dump := func(st *store.Store) map[string]string {
		sn, err := st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()
		out := map[string]string{}
		if err := sn.Range(0, uint32(st.Buckets()-1), func(_ uint32, k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	da, db := dump(a), dump(b)
	if len(da) != len(db) {
		t.Fatalf("states differ: %d vs %d keys", len(da), len(db))
	}
	for k, v := range da {
		if w, ok := db[k]; !ok || w != v {
			t.Fatalf("states differ at key %q", k)
		}
	}
}
