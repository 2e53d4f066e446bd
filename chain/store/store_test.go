package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"taobox/chain/types"
)

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
		err  string // "" when valid
	}{
		{"zero value", Options{}, ""},
		{"one bucket", Options{Buckets: 1}, ""},
		{"max buckets", Options{Buckets: MaxBuckets}, ""},
		{"not a power of two", Options{Buckets: 3}, "Buckets (3)"},
		{"negative buckets", Options{Buckets: -4}, "Buckets (-4)"},
		{"too many buckets", Options{Buckets: MaxBuckets * 2}, "power of two from 1"},
		{"negative cache", Options{CacheMiB: -1}, "CacheMiB (-1)"},
		{"every problem at once", Options{Buckets: 5, CacheMiB: -1}, "CacheMiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.opt.withDefaults()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if o.KeepBlocks != DefaultKeepBlocks || o.CacheMiB < minCacheMiB {
					t.Fatalf("defaults not applied: %+v", o)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want ErrInvalid mentioning %q", err, tc.err)
			}
		})
	}
}

func TestCommitValidation(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 16})
	big := make([]byte, MaxValueSize+1)
	for _, tc := range []struct {
		name string
		c    BlockCommit
		want error
	}{
		{"first block not genesis", testBlock(1, nil, false), ErrHeight},
		{"empty header", BlockCommit{Height: 0}, ErrInvalid},
		{"header too large", BlockCommit{Height: 0, Header: make([]byte, MaxHeaderSize+1)}, ErrTooLarge},
		{"body too large", BlockCommit{Height: 0, Header: []byte("h"), Body: make([]byte, MaxBlobSize+1)}, ErrTooLarge},
		{"empty key", testBlock(0, []KV{{Key: nil, Value: []byte("v")}}, false), ErrInvalid},
		{"key too large", testBlock(0, []KV{{Key: make([]byte, MaxKeySize+1), Value: []byte("v")}}, false), ErrTooLarge},
		{"value too large", testBlock(0, []KV{{Key: []byte("k"), Value: big}}, false), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CommitBlock(tc.c); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if _, err := s.RootAfter(tc.c.Changes); tc.want == ErrTooLarge && len(tc.c.Changes) > 0 && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("RootAfter error %v, want ErrTooLarge", err)
			}
			if _, _, ok := s.Head(); ok {
				t.Fatal("a rejected block changed the head")
			}
		})
	}
	// Limits are inclusive, and the store still works after rejections.
	edge := []KV{{Key: make([]byte, MaxKeySize), Value: make([]byte, MaxValueSize)}}
	mustCommit(t, s, testBlock(0, edge, false))
	for _, h := range []uint64{0, 2, 7} {
		if _, err := s.CommitBlock(testBlock(h, nil, false)); !errors.Is(err, ErrHeight) {
			t.Fatalf("height %d after head 0: error %v, want ErrHeight", h, err)
		}
	}
	mustCommit(t, s, testBlock(1, nil, false))
}

func TestEmptyStore(t *testing.T) {
	for _, buckets := range []int{1, 2, 16, DefaultBuckets} {
		s := openTest(t, t.TempDir(), Options{Buckets: buckets})
		if _, _, ok := s.Head(); ok {
			t.Fatal("empty store has a head")
		}
		if got, want := s.StateRoot(), refRoot(model{}, buckets); got != want {
			t.Fatalf("%d buckets: empty root %v, want %v", buckets, got, want)
		}
		if _, ok, err := s.Get([]byte("x")); ok || err != nil {
			t.Fatalf("Get on empty store: %v %v", ok, err)
		}
		if _, ok, err := s.Header(0); ok || err != nil {
			t.Fatalf("Header(0) on empty store: %v %v", ok, err)
		}
	}
}

// TestRootMatchesReference checks the incremental root against refRoot
// (the definition, computed from a map) after every block, and the stored
// state against the map.
func TestRootMatchesReference(t *testing.T) {
	for _, buckets := range []int{1, 2, 16, 1024, DefaultBuckets} {
		t.Run(fmt.Sprint(buckets), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(buckets), 1))
			s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: buckets})
			m := model{}
			for h := range uint64(30) {
				ch := randChanges(rng, rng.IntN(200), 300)
				m.apply(ch)
				root := mustCommit(t, s, testBlock(h, ch, false))
				if want := refRoot(m, buckets); root != want || s.StateRoot() != want {
					t.Fatalf("block %d: root %v (StateRoot %v), reference %v", h, root, s.StateRoot(), want)
				}
			}
			if d := sameState(stateOf(t, s), m); d != "" {
				t.Fatal(d)
			}
			for k, v := range m {
				got, ok, err := s.Get([]byte(k))
				if err != nil || !ok || !bytes.Equal(got, v) || got == nil {
					t.Fatalf("Get(%q) = %x %v %v, want %x", k, got, ok, err, v)
				}
			}
		})
	}
}

// TestRootOrderIndependence: the same final state reached by different
// orders, batchings and detours gives the same root.
func TestRootOrderIndependence(t *testing.T) {
	const buckets = 64
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 2))
		final := model{}
		for i := range 150 {
			final[fmt.Sprintf("k%d", i)] = fmt.Appendf(nil, "v%d-%d", i, rng.IntN(1000))
		}
		var puts []KV
		for k, v := range final {
			puts = append(puts, KV{Key: []byte(k), Value: v})
		}
		want := refRoot(final, buckets)

		// (a) one block, map order.
		a := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: buckets})
		if got := mustCommit(t, a, testBlock(0, puts, false)); got != want {
			t.Fatalf("seed %d: one block: root %v, want %v", seed, got, want)
		}

		// (b) shuffled, split over blocks, with garbage that is later
		// overwritten or deleted, and repeated keys inside a block.
		b := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: buckets})
		shuffled := slices.Clone(puts)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		var h uint64
		var blk []KV
		for i, kv := range shuffled {
			if rng.IntN(3) == 0 {
				blk = append(blk, KV{Key: kv.Key, Value: []byte("garbage")})
			}
			if rng.IntN(4) == 0 {
				blk = append(blk, KV{Key: fmt.Appendf(nil, "tmp%d", i), Value: []byte("t")})
			}
			blk = append(blk, kv)
			if rng.IntN(10) == 0 {
				mustCommit(t, b, testBlock(h, blk, false))
				h, blk = h+1, nil
			}
		}
		for i := range shuffled {
			blk = append(blk, KV{Key: fmt.Appendf(nil, "tmp%d", i)}) // delete the detours
		}
		if got := mustCommit(t, b, testBlock(h, blk, false)); got != want {
			t.Fatalf("seed %d: shuffled blocks: root %v, want %v", seed, got, want)
		}
	}
}

func TestRootAfterEqualsCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 256})
	for h := range uint64(40) {
		ch := randChanges(rng, rng.IntN(300), 500)
		before := s.StateRoot()
		after, err := s.RootAfter(ch)
		if err != nil {
			t.Fatal(err)
		}
		if s.StateRoot() != before {
			t.Fatal("RootAfter changed the state root")
		}
		if again, _ := s.RootAfter(ch); again != after {
			t.Fatal("RootAfter is not repeatable")
		}
		if got := mustCommit(t, s, testBlock(h, ch, false)); got != after {
			t.Fatalf("block %d: CommitBlock root %v, RootAfter said %v", h, got, after)
		}
	}
}

func TestDeleteRestoresRoot(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 32})
	base := []KV{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}
	r0 := mustCommit(t, s, testBlock(0, base, false))
	var add, del []KV
	for i := range 100 {
		k := fmt.Appendf(nil, "new%d", i)
		add = append(add, KV{Key: k, Value: k})
		del = append(del, KV{Key: k})
	}
	add = append(add, KV{Key: []byte("a"), Value: []byte("changed")})
	del = append(del, KV{Key: []byte("a"), Value: []byte("1")})
	if r1 := mustCommit(t, s, testBlock(1, add, false)); r1 == r0 {
		t.Fatal("adding keys did not change the root")
	}
	if r2 := mustCommit(t, s, testBlock(2, del, false)); r2 != r0 {
		t.Fatalf("deleting the added keys gives root %v, want the earlier %v", r2, r0)
	}
	// Deleting a key that does not exist changes nothing.
	if r3 := mustCommit(t, s, testBlock(3, []KV{{Key: []byte("never")}}, false)); r3 != r0 {
		t.Fatal("deleting an absent key changed the root")
	}
}

func TestEmptyValueIsNotDelete(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 4})
	r0 := mustCommit(t, s, testBlock(0, nil, false))
	r1 := mustCommit(t, s, testBlock(1, []KV{{Key: []byte("k"), Value: []byte{}}}, false))
	if r1 == r0 {
		t.Fatal("an empty value hashes like an absent key")
	}
	v, ok, err := s.Get([]byte("k"))
	if err != nil || !ok || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %v %v %v, want non-nil empty, true", v, ok, err)
	}
	if r2 := mustCommit(t, s, testBlock(2, []KV{{Key: []byte("k")}}, false)); r2 != r0 {
		t.Fatal("deleting the empty value did not restore the root")
	}
}

// TestLastWriteWins: a key written several times in one block keeps the
// last write, and the caller's slice is left as it was.
func TestLastWriteWins(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 8})
	ch := []KV{
		{Key: []byte("x"), Value: []byte("1")},
		{Key: []byte("y"), Value: []byte("keep")},
		{Key: []byte("x"), Value: []byte("2")},
		{Key: []byte("z"), Value: []byte("gone")},
		{Key: []byte("z")},
		{Key: []byte("w")},
		{Key: []byte("w"), Value: []byte("back")},
	}
	orig := slices.Clone(ch)
	mustCommit(t, s, testBlock(0, ch, false))
	if !slices.EqualFunc(ch, orig, func(a, b KV) bool { return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) }) {
		t.Fatal("CommitBlock reordered the caller's changes")
	}
	want := model{"x": []byte("2"), "y": []byte("keep"), "w": []byte("back")}
	if d := sameState(stateOf(t, s), want); d != "" {
		t.Fatal(d)
	}
	if s.StateRoot() != refRoot(want, 8) {
		t.Fatal("root differs from the reference")
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(4, 4))
	s, err := Open(dir, Options{Buckets: 128, KeepBlocks: 10})
	if err != nil {
		t.Fatal(err)
	}
	m := model{}
	for h := range uint64(25) {
		ch := randChanges(rng, 100, 400)
		m.apply(ch)
		mustCommit(t, s, testBlock(h, ch, h%7 == 0))
	}
	root := s.StateRoot()
	height, hash, _ := s.Head()
	base := s.Base()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for _, o := range []Options{{}, {Buckets: 128, FullCheck: true, KeepBlocks: 10}} {
		s := openTest(t, dir, o)
		h2, hash2, ok := s.Head()
		if !ok || h2 != height || hash2 != hash || s.StateRoot() != root || s.Base() != base {
			t.Fatalf("reopened with %+v: head %d %v root %v base %d, want %d %v %v %d", o, h2, hash2, s.StateRoot(), s.Base(), height, hash, root, base)
		}
		if d := sameState(stateOf(t, s), m); d != "" {
			t.Fatal(d)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if _, err := Open(dir, Options{Buckets: 64}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "uses 128 state buckets") {
		t.Fatalf("reopen with another bucket count: %v", err)
	}
	s = openTest(t, dir, Options{KeepBlocks: 10})
	ch := randChanges(rng, 100, 400)
	m.apply(ch)
	if got := mustCommit(t, s, testBlock(25, ch, false)); got != refRoot(m, 128) {
		t.Fatal("commit after reopen: root differs from the reference")
	}
}

// TestPruning: exactly the last KeepBlocks blocks keep header, body and
// events; epoch boundaries keep their header and hash index forever.
func TestPruning(t *testing.T) {
	for _, tc := range []struct {
		keep, blocks, epoch uint64
	}{
		{keep: 5, blocks: 31, epoch: 4},
		{keep: 1, blocks: 10, epoch: 3},
		{keep: 40, blocks: 30, epoch: 7}, // nothing pruned yet
		{keep: 30, blocks: 30, epoch: 7}, // exactly full
		{keep: KeepAll, blocks: 30, epoch: 5},
	} {
		t.Run(fmt.Sprintf("keep%d_blocks%d", tc.keep, tc.blocks), func(t *testing.T) {
			s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 4, KeepBlocks: tc.keep})
			for h := range tc.blocks {
				mustCommit(t, s, testBlock(h, []KV{{Key: fmt.Appendf(nil, "k%d", h), Value: []byte("v")}}, h%tc.epoch == 0))
			}
			checkPruned(t, s, tc.blocks-1, tc.keep, func(h uint64) bool { return h%tc.epoch == 0 })
		})
	}
}

// checkPruned checks every block record of heights 0..head against the
// pruning rule.
func checkPruned(t *testing.T, s *Store, head, keep uint64, isEpoch func(uint64) bool) {
	t.Helper()
	wantBase := uint64(0)
	if keep != KeepAll && head+1 > keep {
		wantBase = head + 1 - keep
	}
	if s.Base() != wantBase {
		t.Fatalf("Base() = %d, want %d", s.Base(), wantBase)
	}
	var epochs []uint64
	for h := uint64(0); h <= head; h++ {
		want := testBlock(h, nil, false)
		kept := h >= wantBase
		hdr, hasHdr, err1 := s.Header(h)
		body, hasBody, err2 := s.Body(h)
		ev, hasEv, err3 := s.Events(h)
		height, hasIdx, err4 := s.HeightOf(want.Hash)
		hash, hasHash, err5 := s.Hash(h)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		if hasBody != kept || hasEv != kept {
			t.Fatalf("block %d: body %v events %v, want kept=%v (base %d)", h, hasBody, hasEv, kept, wantBase)
		}
		if wantHdr := kept || isEpoch(h); hasHdr != wantHdr || hasIdx != wantHdr || hasHash != wantHdr {
			t.Fatalf("block %d: header %v index %v hash %v, want %v", h, hasHdr, hasIdx, hasHash, wantHdr)
		}
		if hasHdr && (!bytes.Equal(hdr, want.Header) || height != h || hash != want.Hash) {
			t.Fatalf("block %d: header %q height %d hash %v", h, hdr, height, hash)
		}
		if kept && (!bytes.Equal(body, want.Body) || !bytes.Equal(ev, want.Events)) {
			t.Fatalf("block %d: body %q events %q", h, body, ev)
		}
		if isEpoch(h) {
			epochs = append(epochs, h)
		}
	}
	got, err := s.EpochBoundaries(0, 1<<20)
	if err != nil || !slices.Equal(got, epochs) {
		t.Fatalf("EpochBoundaries = %v %v, want %v", got, err, epochs)
	}
	if len(epochs) > 2 {
		if got, _ := s.EpochBoundaries(epochs[1], 1); !slices.Equal(got, epochs[1:2]) {
			t.Fatalf("EpochBoundaries(%d, 1) = %v", epochs[1], got)
		}
	}
}

// TestPruneCatchUp: lowering KeepBlocks on a store with a long history
// prunes it over several commits, at most maxPrunePerCommit heights each.
func TestPruneCatchUp(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, Buckets: 2, KeepBlocks: KeepAll})
	const n = 600
	isEpoch := func(h uint64) bool { return h%50 == 0 }
	for h := range uint64(n) {
		mustCommit(t, s, testBlock(h, nil, isEpoch(h)))
	}
	s.Close()
	s = openTest(t, dir, Options{NoSync: true, KeepBlocks: 10})
	h := uint64(n)
	for ; s.Base() < h-10; h++ { // h is the next height; caught up when Base == h-10
		prev := s.Base()
		mustCommit(t, s, testBlock(h, nil, isEpoch(h)))
		if s.Base()-prev > maxPrunePerCommit {
			t.Fatalf("one commit pruned %d heights", s.Base()-prev)
		}
	}
	if h != n+3 { // 593 heights to prune, 256 per commit
		t.Fatalf("caught up after %d commits, want 3", h-n)
	}
	checkPruned(t, s, h-1, 10, isEpoch)
	if err := s.CompactPruned(); err != nil {
		t.Fatal(err)
	}
	checkPruned(t, s, h-1, 10, isEpoch)
}

func TestSnapshot(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 16})
	m := model{}
	rng := rand.New(rand.NewPCG(5, 5))
	ch := randChanges(rng, 200, 100)
	m.apply(ch)
	mustCommit(t, s, testBlock(0, ch, false))
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	root := s.StateRoot()
	mustCommit(t, s, testBlock(1, randChanges(rng, 200, 100), false))
	if h, _, ok := snap.Head(); !ok || h != 0 || snap.Root() != root {
		t.Fatalf("snapshot head %d root %v, want 0 %v", h, snap.Root(), root)
	}
	for k, v := range m {
		got, ok, err := snap.Get([]byte(k))
		if err != nil || !ok || !bytes.Equal(got, v) {
			t.Fatalf("snapshot Get(%q) = %x %v %v, want %x", k, got, ok, err, v)
		}
	}
	if got, err := snap.ComputeRoot(); err != nil || got != root {
		t.Fatalf("ComputeRoot = %v %v, want %v", got, err, root)
	}
	// Range over a bucket window sees exactly those buckets, in order.
	var seen []uint32
	if err := snap.Range(3, 5, func(b uint32, k, v []byte) error { seen = append(seen, b); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(seen) || len(seen) == 0 || seen[0] < 3 || seen[len(seen)-1] > 5 {
		t.Fatalf("Range(3, 5) visited buckets %v", seen)
	}
	stop := errors.New("stop")
	if err := snap.Range(0, 99, func(uint32, []byte, []byte) error { return stop }); err != stop {
		t.Fatalf("Range did not return fn's error: %v", err)
	}
	snap.Release()
	snap.Release()
	if _, _, err := snap.Get([]byte("key-1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Release: %v, want ErrClosed", err)
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	mustCommit(t, s, testBlock(0, nil, false))
	s.Close()
	if _, _, err := s.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := s.CommitBlock(testBlock(1, nil, false)); !errors.Is(err, ErrClosed) {
		t.Fatalf("CommitBlock: %v", err)
	}
	if _, err := s.RootAfter(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("RootAfter: %v", err)
	}
	if _, err := s.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, _, err := s.Header(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Header: %v", err)
	}
}

func TestDirInUse(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{NoSync: true})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open of a dir in use: %v", err)
	}
}

// rawDB opens the leveldb of a closed store directly, to damage it.
func rawDB(t *testing.T, dir string) *leveldb.DB {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestOpenDetectsDamage(t *testing.T) {
	// A small healthy store: 16 buckets, so the 64-bucket sample at Open
	// covers every bucket.
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := Open(dir, Options{NoSync: true, Buckets: 16, KeepBlocks: 3})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(6, 6))
		for h := range uint64(6) {
			mustCommit(t, s, testBlock(h, randChanges(rng, 50, 100), false))
		}
		s.Close()
		return dir
	}
	someStateKey := func(db *leveldb.DB) []byte {
		it := db.NewIterator(nil, nil)
		defer it.Release()
		for it.Next() {
			if it.Key()[0] == pState {
				return bytes.Clone(it.Key())
			}
		}
		panic("no state key")
	}
	for _, tc := range []struct {
		name   string
		damage func(db *leveldb.DB)
		want   error
		msg    string
	}{
		{"head body missing", func(db *leveldb.DB) { db.Delete(heightKey(pBody, 5), nil) }, ErrCorrupt, "body of head block 5 is missing"},
		{"head header missing", func(db *leveldb.DB) { db.Delete(heightKey(pHeader, 5), nil) }, ErrCorrupt, "header of head block 5"},
		{"block above head", func(db *leveldb.DB) { db.Put(heightKey(pHeader, 6), make([]byte, 40), nil) }, ErrCorrupt, "above head block 5"},
		{"bucket cache tampered", func(db *leveldb.DB) { db.Put(bucketKey(3), make([]byte, 32), nil) }, ErrCorrupt, "bucket cache gives state root"},
		{"state value tampered", func(db *leveldb.DB) { db.Put(someStateKey(db), []byte("evil"), nil) }, ErrCorrupt, "rehashes to"},
		{"state key deleted", func(db *leveldb.DB) { db.Delete(someStateKey(db), nil) }, ErrCorrupt, "rehashes to"},
		{"head record malformed", func(db *leveldb.DB) { db.Put(keyHead, []byte("x"), nil) }, ErrCorrupt, "head record"},
		{"head lost", func(db *leveldb.DB) { db.Delete(keyHead, nil) }, ErrCorrupt, "no head record"},
		{"newer format", func(db *leveldb.DB) {
			db.Put(keyFormat, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, formatVersion+1), 16), nil)
		}, ErrNewerFormat, "run a newer taobox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			db := rawDB(t, dir)
			tc.damage(db)
			db.Close()
			_, err := Open(dir, Options{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open: %v\nwant %v mentioning %q", err, tc.want, tc.msg)
			}
			if errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "move the directory aside") {
				t.Fatalf("corruption error gives no advice: %v", err)
			}
		})
	}

	t.Run("misplaced key found by FullCheck", func(t *testing.T) {
		dir := build(t)
		db := rawDB(t, dir)
		k := someStateKey(db)
		v, _ := db.Get(k, nil)
		b := binary.BigEndian.Uint32(k[1:5])
		// Move the entry to another bucket and make the bucket caches and
		// the head's root agree with the moved state, so that only the
		// placement check can notice.
		other := (b + 1) % 16
		db.Delete(k, nil)
		db.Put(stateKey(other, k[5:]), v, nil)
		leaves := make([]types.Hash, 16)
		for bk := range leaves {
			var kvs []KV
			it := db.NewIterator(util.BytesPrefix(bucketPrefix(uint32(bk))), nil)
			for it.Next() {
				kvs = append(kvs, KV{Key: bytes.Clone(it.Key()[5:]), Value: bytes.Clone(it.Value())})
			}
			it.Release()
			leaves[bk] = HashBucket(kvs)
			db.Put(bucketKey(uint32(bk)), leaves[bk][:], nil)
		}
		hv, _ := db.Get(keyHead, nil)
		head, _ := decodeHead(hv)
		head.root = MerkleRoot(leaves)
		db.Put(keyHead, head.encode(), nil)
		db.Close()

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("sampled Open should not see a consistently misplaced key: %v", err)
		}
		if err := s.Verify(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "belongs in") {
			t.Fatalf("Verify: %v, want ErrCorrupt for the misplaced key", err)
		}
		s.Close()
		if _, err = Open(dir, Options{FullCheck: true}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "belongs in") {
			t.Fatalf("FullCheck Open: %v, want ErrCorrupt for the misplaced key", err)
		}
	})

	t.Run("foreign leveldb", func(t *testing.T) {
		dir := t.TempDir()
		db := rawDB(t, dir)
		db.Put([]byte("hello"), []byte("world"), nil)
		db.Close()
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "without a taobox format record") {
			t.Fatalf("Open of a foreign leveldb: %v", err)
		}
	})
}

// TestConcurrentUse runs readers (Get, RootAfter, Snapshot) beside a
// committer; with -race it checks the locking.
func TestConcurrentUse(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 64})
	mustCommit(t, s, testBlock(0, nil, false))
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, _, err := s.Get(fmt.Appendf(nil, "key-%d", rng.IntN(100))); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.RootAfter(randChanges(rng, 10, 100)); err != nil {
					t.Error(err)
					return
				}
				snap, err := s.Snapshot()
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := snap.ComputeRoot(); err != nil || got != snap.Root() {
					t.Errorf("snapshot root %v, recomputed %v %v", snap.Root(), got, err)
				}
				snap.Release()
			}
		})
	}
	rng := rand.New(rand.NewPCG(8, 8))
	m := model{}
	for h := uint64(1); h < 60; h++ {
		ch := randChanges(rng, 50, 100)
		m.apply(ch)
		mustCommit(t, s, testBlock(h, ch, false))
	}
	close(done)
	wg.Wait()
	if s.StateRoot() != refRoot(m, 64) {
		t.Fatal("root differs from the reference")
	}
}

func TestExportedRootPieces(t *testing.T) {
	m := model{"a": []byte("1"), "b": []byte("22"), "c": {}}
	const buckets = 4
	per := make([][]KV, buckets)
	for _, k := range []string{"a", "b", "c"} {
		b := BucketOf([]byte(k), buckets)
		per[b] = append(per[b], KV{Key: []byte(k), Value: m[k]})
	}
	leaves := make([]types.Hash, buckets)
	for b := range per {
		leaves[b] = HashBucket(per[b])
	}
	if got, want := MerkleRoot(leaves), refRoot(m, buckets); got != want {
		t.Fatalf("MerkleRoot(HashBucket...) = %v, want %v", got, want)
	}
	if HashBucket(nil) != EmptyBucketHash {
		t.Fatal("HashBucket(nil) != EmptyBucketHash")
	}
	if BucketOf([]byte("anything"), 1) != 0 {
		t.Fatal("one bucket: BucketOf != 0")
	}
}

// TestPlanCache: CommitBlock reuses RootAfter's plan only for equal
// changes at the same version, and never aliases the caller's slices.
func TestPlanCache(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, Buckets: 16})
	m := model{}
	commit := func(h uint64, ch []KV) {
		t.Helper()
		m.apply(ch)
		if got, want := mustCommit(t, s, testBlock(h, ch, false)), refRoot(m, 16); got != want {
			t.Fatalf("block %d: root %v, reference %v", h, got, want)
		}
	}
	kv := func(k, v string) KV { return KV{Key: []byte(k), Value: []byte(v)} }

	// The caller mutates its changes after RootAfter: the new content counts.
	ch := []KV{kv("a", "1"), kv("b", "2")}
	if _, err := s.RootAfter(ch); err != nil {
		t.Fatal(err)
	}
	ch[0].Value[0] = '9'
	commit(0, ch)

	// Different changes: planned afresh.
	if _, err := s.RootAfter([]KV{kv("c", "3")}); err != nil {
		t.Fatal(err)
	}
	commit(1, []KV{kv("d", "4")})

	// The same changes after another commit: planned afresh.
	same := []KV{kv("e", "5")}
	if _, err := s.RootAfter(same); err != nil {
		t.Fatal(err)
	}
	commit(2, []KV{kv("e", "other")})
	commit(3, same)

	// A delete versus an empty value is a difference.
	if _, err := s.RootAfter([]KV{{Key: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	commit(4, []KV{{Key: []byte("a"), Value: []byte{}}})
}

// TestInterruptedCreate: a process killed while goleveldb creates the
// database leaves a manifest and an empty or partial CURRENT.<n> but no
// CURRENT; nothing was ever acknowledged, so Open starts afresh. A CURRENT
// that exists but is damaged is a different matter and stays an error.
func TestInterruptedCreate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		wantErr bool
	}{
		{"empty pending CURRENT", map[string]string{"MANIFEST-000000": "x", "CURRENT.0": "", "LOG": "l"}, false},
		{"partial pending CURRENT", map[string]string{"MANIFEST-000000": "x", "CURRENT.0": "MANIF"}, false},
		{"manifest only", map[string]string{"MANIFEST-000000": "x", "000001.log": ""}, false},
		{"damaged CURRENT", map[string]string{"MANIFEST-000000": "x", "CURRENT": "MANIF"}, true},
		{"table file without CURRENT", map[string]string{"MANIFEST-000000": "x", "CURRENT.0": "", "000005.ldb": "t"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(dir, Options{NoSync: true, Buckets: 16})
			if tc.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded on a damaged directory")
				}
				for n := range tc.files {
					if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
						t.Fatalf("Open removed %s from a directory it refused: %v", n, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Open after an interrupted creation: %v", err)
			}
			defer s.Close()
			if _, _, ok := s.Head(); ok {
				t.Fatal("fresh store has a head")
			}
			mustCommit(t, s, testBlock(0, randChanges(rand.New(rand.NewPCG(1, 1)), 5, 10), false))
		})
	}
}
