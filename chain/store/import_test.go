package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"taobox/chain/types"
)

// importFixture builds a state of n keys over buckets, split into chunks
// of consecutive bucket ranges, as a snapshot would carry it.
type importFixture struct {
	buckets int
	root    types.Hash
	chunks  []importChunk
}

type importChunk struct {
	first, last uint32
	entries     []ImportEntry
}

func newImportFixture(buckets, n, chunks int) importFixture {
	m := model{}
	for i := range n {
		m[fmt.Sprintf("key/%d", i)] = fmt.Appendf(nil, "value %d", i*i)
	}
	byBucket := make([][]ImportEntry, buckets)
	for k, v := range m {
		b := BucketOf([]byte(k), buckets)
		byBucket[b] = append(byBucket[b], ImportEntry{Bucket: b, Key: []byte(k), Value: v})
	}
	f := importFixture{buckets: buckets, root: refRoot(m, buckets)}
	per := buckets / chunks
	for c := range chunks {
		ic := importChunk{first: uint32(c * per), last: uint32((c+1)*per - 1)}
		if c == chunks-1 {
			ic.last = uint32(buckets - 1)
		}
		for b := ic.first; b <= ic.last; b++ {
			es := byBucket[b]
			slices.SortFunc(es, func(x, y ImportEntry) int { return bytes.Compare(x.Key, y.Key) })
			ic.entries = append(ic.entries, es...)
		}
		f.chunks = append(f.chunks, ic)
	}
	return f
}

func (f importFixture) target(h uint64) ImportTarget {
	hdr := fmt.Appendf(nil, "snapshot header %d", h)
	return ImportTarget{Height: h, Hash: types.HashBytes(hdr), Root: f.root, Header: hdr, Buckets: f.buckets,
		Chunks: len(f.chunks), EpochBoundary: true, Cert: []byte("cert"), EpochData: []byte("next set")}
}

// TestImportLifecycle: a fresh store adopts the snapshot's bucket count,
// refuses blocks while importing, reopens mid-import with its progress,
// finishes with the snapshot block as head and base (no body), passes a
// full check, continues with the next block and prunes past the snapshot.
func TestImportLifecycle(t *testing.T) {
	f := newImportFixture(64, 500, 5)
	dir := t.TempDir()
	s, err := Open(dir, Options{KeepBlocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	tg := f.target(100)
	if resumed, err := s.BeginImport(tg); err != nil || resumed {
		t.Fatalf("BeginImport: %v %v", resumed, err)
	}
	if s.Buckets() != 64 {
		t.Fatalf("buckets %d, want the snapshot's 64", s.Buckets())
	}
	for _, i := range []int{3, 0} {
		c := f.chunks[i]
		if err := s.ImportChunk(i, c.first, c.last, c.entries); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishImport(); err == nil {
		t.Fatal("FinishImport with chunks missing succeeded")
	}
	if _, err := s.CommitBlock(BlockCommit{Height: 0, Header: []byte("g")}); !errors.Is(err, ErrImporting) {
		t.Fatalf("CommitBlock while importing: %v, want ErrImporting", err)
	}
	if _, err := s.RootAfter(nil); !errors.Is(err, ErrImporting) {
		t.Fatalf("RootAfter while importing: %v", err)
	}
	s.Close()

	s, err = Open(dir, Options{KeepBlocks: 3})
	if err != nil {
		t.Fatalf("reopen mid-import: %v", err)
	}
	if got := s.Imported(); !slices.Equal(got, []bool{true, false, false, true, false}) {
		t.Fatalf("Imported after reopen: %v", got)
	}
	if got, ok := s.Importing(); !ok || !got.equal(tg) {
		t.Fatalf("Importing: %+v %v", got, ok)
	}
	if resumed, err := s.BeginImport(tg); err != nil || !resumed {
		t.Fatalf("BeginImport of the same target: %v %v", resumed, err)
	}
	other := tg
	other.Height++
	if _, err := s.BeginImport(other); !errors.Is(err, ErrImportTarget) {
		t.Fatalf("BeginImport of another target: %v", err)
	}
	for i, c := range f.chunks {
		if err := s.ImportChunk(i, c.first, c.last, c.entries); err != nil { // 0 and 3 again: no-ops
			t.Fatal(err)
		}
	}
	if err := s.FinishImport(); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		h, hash, ok := s.Head()
		if !ok || h != 100 || hash != tg.Hash || s.Base() != 100 || s.StateRoot() != f.root {
			t.Fatalf("head %d %v base %d root %v", h, hash, s.Base(), s.StateRoot())
		}
		if hdr, ok, _ := s.Header(100); !ok || !bytes.Equal(hdr, tg.Header) {
			t.Fatal("snapshot header missing")
		}
		if c, ok, _ := s.Cert(100); !ok || string(c) != "cert" {
			t.Fatal("snapshot certificate missing")
		}
		if d, ok, _ := s.EpochData(100); !ok || string(d) != "next set" {
			t.Fatal("epoch data missing")
		}
		if _, ok, _ := s.Body(100); ok {
			t.Fatal("the snapshot block has a body")
		}
		if at, ok := s.SyncedAt(); !ok || at != 100 {
			t.Fatalf("SyncedAt %d %v", at, ok)
		}
		if _, ok := s.Importing(); ok || s.Imported() != nil {
			t.Fatal("the session is still there")
		}
	}
	check(s)
	s.Close()
	s, err = Open(dir, Options{FullCheck: true, KeepBlocks: 3})
	if err != nil {
		t.Fatalf("reopen after the import: %v", err)
	}
	defer s.Close()
	check(s)
	for h := uint64(101); h <= 105; h++ {
		hdr := fmt.Appendf(nil, "h%d", h)
		if _, err := s.CommitBlock(BlockCommit{Height: h, Hash: types.HashBytes(hdr), Header: hdr, Body: []byte("b"),
			Changes: []KV{{Key: fmt.Appendf(nil, "new/%d", h), Value: []byte("v")}}}); err != nil {
			t.Fatalf("block %d after the import: %v", h, err)
		}
	}
	if s.Base() != 103 {
		t.Fatalf("base %d after pruning, want 103", s.Base())
	}
	if _, ok, _ := s.Header(100); !ok {
		t.Fatal("the epoch-boundary snapshot header was pruned")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestImportRejects: shapes ImportChunk refuses, a wrong root at the end,
// and a store that is not empty.
func TestImportRejects(t *testing.T) {
	f := newImportFixture(16, 100, 2)
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.ImportChunk(0, 0, 7, nil); !errors.Is(err, ErrNoImport) {
		t.Fatalf("ImportChunk without a session: %v", err)
	}
	tg := f.target(5)
	tg.Root[0] ^= 1 // the entries will not match it
	if _, err := s.BeginImport(tg); err != nil {
		t.Fatal(err)
	}
	c := f.chunks[0]
	misplaced := slices.Clone(c.entries)
	misplaced[0].Bucket = (misplaced[0].Bucket + 1) % 8
	unsorted := slices.Clone(c.entries)
	unsorted[0], unsorted[1] = unsorted[1], unsorted[0]
	for _, tc := range []struct {
		name        string
		index       int
		first, last uint32
		entries     []ImportEntry
	}{
		{"index", 2, c.first, c.last, c.entries},
		{"range", 0, 9, 8, c.entries},
		{"beyond buckets", 0, 0, 16, c.entries},
		{"outside range", 0, 0, 2, c.entries},
		{"misplaced", 0, c.first, c.last, misplaced},
		{"unsorted", 0, c.first, c.last, unsorted},
		{"nil value", 0, c.first, c.last, []ImportEntry{{Bucket: BucketOf([]byte("k"), 16), Key: []byte("k")}}},
	} {
		if err := s.ImportChunk(tc.index, tc.first, tc.last, tc.entries); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	for i, c := range f.chunks {
		if err := s.ImportChunk(i, c.first, c.last, c.entries); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishImport(); !errors.Is(err, ErrImportRoot) {
		t.Fatalf("FinishImport with a wrong root: %v", err)
	}
	if err := s.AbortImport(); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := s.Get(f.chunks[0].entries[0].Key); ok {
		t.Fatalf("state survived AbortImport: %q", v)
	}

	// A store with blocks refuses an import.
	hdr := []byte("genesis")
	if _, err := s.CommitBlock(BlockCommit{Height: 0, Hash: types.HashBytes(hdr), Header: hdr}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginImport(f.target(5)); !errors.Is(err, ErrImportTarget) {
		t.Fatalf("BeginImport on a store with blocks: %v", err)
	}
}

// TestImportAbortCrash simulates a crash in the middle of AbortImport: the
// session is marked aborted but the state is still there. Open accepts it,
// the store refuses blocks, and BeginImport of a new target wipes first.
func TestImportAbortCrash(t *testing.T) {
	f := newImportFixture(16, 200, 2)
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginImport(f.target(1)); err != nil {
		t.Fatal(err)
	}
	c := f.chunks[0]
	if err := s.ImportChunk(0, c.first, c.last, c.entries); err != nil {
		t.Fatal(err)
	}
	// The first step of wipeLocked only, as a crash right after it leaves it.
	sess := s.imp.session
	sess.aborted = true
	if err := s.db.Put(keyImport, sess.encode(), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete(keyImportBits, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen with an aborted session: %v", err)
	}
	defer s.Close()
	if _, ok := s.Importing(); ok {
		t.Fatal("an aborted session reported as importing")
	}
	if _, err := s.CommitBlock(BlockCommit{Height: 0, Header: []byte("g")}); !errors.Is(err, ErrImporting) {
		t.Fatalf("CommitBlock: %v", err)
	}
	g := newImportFixture(32, 50, 1)
	if _, err := s.BeginImport(g.target(9)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(c.entries[0].Key); ok {
		t.Fatal("the aborted import's state survived")
	}
	if err := s.ImportChunk(0, 0, 31, g.chunks[0].entries); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishImport(); err != nil {
		t.Fatal(err)
	}
	if s.StateRoot() != g.root || s.Buckets() != 32 {
		t.Fatal("wrong state after the second import")
	}
}

func FuzzDecodeSession(f *testing.F) {
	fx := newImportFixture(4, 3, 1)
	f.Add((&importSession{target: fx.target(3)}).encode())
	f.Add((&importSession{target: fx.target(3), aborted: true}).encode())
	v2 := (&importSession{target: fx.target(3)}).encode()
	f.Add(append([]byte{1}, v2[1:len(v2)-32]...)) // version 1: no manifest
	f.Fuzz(func(t *testing.T, b []byte) {
		sess, err := decodeSession(b)
		if err != nil {
			return
		}
		enc := sess.encode()
		if b[0] == importVersion && !bytes.Equal(enc, b) {
			t.Fatal("a decoded session re-encodes differently")
		}
		// An older version reads, and is written in the current one.
		again, err := decodeSession(enc)
		if err != nil || !again.target.equal(sess.target) || again.aborted != sess.aborted {
			t.Fatalf("a decoded session does not survive its re-encoding: %v", err)
		}
	})
}

// TestImportPinsManifest: a session resumes only with the manifest it
// started with, across a reopen; one of the older format (version 1, no
// manifest) still reads, unpinned.
func TestImportPinsManifest(t *testing.T) {
	f := newImportFixture(16, 100, 2)
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg := f.target(5)
	tg.Manifest = types.HashBytes([]byte("manifest A"))
	if _, err := s.BeginImport(tg); err != nil {
		t.Fatal(err)
	}
	c := f.chunks[0]
	if err := s.ImportChunk(0, c.first, c.last, c.entries); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cur, ok := s.Importing(); !ok || cur.Manifest != tg.Manifest {
		t.Fatalf("after reopen: importing %v, manifest %v; want %v", ok, cur.Manifest, tg.Manifest)
	}
	other := tg
	other.Manifest = types.HashBytes([]byte("manifest B"))
	if _, err := s.BeginImport(other); !errors.Is(err, ErrImportTarget) {
		t.Fatalf("BeginImport with another manifest: %v, want ErrImportTarget", err)
	}
	if resumed, err := s.BeginImport(tg); err != nil || !resumed {
		t.Fatalf("BeginImport with the same manifest: resumed %v, %v", resumed, err)
	}

	sess := &importSession{target: tg}
	v2 := sess.encode()
	got, err := decodeSession(v2)
	if err != nil || got.target.Manifest != tg.Manifest {
		t.Fatalf("version 2 round trip: %v, %v", got, err)
	}
	v1 := append([]byte{1}, v2[1:len(v2)-32]...)
	got, err = decodeSession(v1)
	if err != nil || !got.target.Manifest.IsZero() || got.target.Height != tg.Height {
		t.Fatalf("version 1 session: %+v, %v; want it read with no manifest", got, err)
	}
	if _, err := decodeSession(append([]byte{3}, v2[1:]...)); err == nil {
		t.Fatal("version 3 read")
	}
}
