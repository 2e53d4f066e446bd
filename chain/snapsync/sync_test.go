package snapsync

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"taobox/chain/store"
	"taobox/chain/types"
)

// TestSyncRoundTrip exports a store of a few thousand keys in several
// chunks, syncs a fresh store from it, and checks the result: same state
// and root, the snapshot block as head and base without a body, a store
// that reopens with a full check and continues with the next block exactly
// as the source does.
func TestSyncRoundTrip(t *testing.T) {
	src := sourceStore(t, 256, 4, 1000)
	e, m := export(t, src, 16<<10)
	if len(m.Chunks) < 5 {
		t.Fatalf("only %d chunks; the test wants several", len(m.Chunks))
	}
	tr := trustedOf(t, src)
	dir := t.TempDir()
	dst := openEmpty(t, dir)
	var phases []string
	cfg := Config{Parallel: 4, OnProgress: func(p Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}}
	sources := []Source{&exportSource{id: "a", e: e}, &exportSource{id: "b", e: e}}
	if err := Sync(context.Background(), cfg, dst, tr, sources); err != nil {
		t.Fatal(err)
	}
	if want := []string{"manifest", "chunks", "verify"}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if dst.StateRoot() != tr.StateRoot || dst.Buckets() != 256 {
		t.Fatalf("root %v (%d buckets), want %v (256)", dst.StateRoot(), dst.Buckets(), tr.StateRoot)
	}
	sameState(t, src, dst)
	h, hash, ok := dst.Head()
	if !ok || h != tr.Height || hash != tr.BlockHash || dst.Base() != tr.Height {
		t.Fatalf("head %d %v base %d, want %d %v", h, hash, dst.Base(), tr.Height, tr.BlockHash)
	}
	if hdr, ok, _ := dst.Header(h); !ok || string(hdr) != string(tr.Header) {
		t.Fatalf("header of the snapshot block: %q %v", hdr, ok)
	}
	if _, ok, _ := dst.Body(h); ok {
		t.Fatal("the snapshot block has a body; it was never downloaded")
	}
	if at, ok := dst.SyncedAt(); !ok || at != h {
		t.Fatalf("SyncedAt %d %v", at, ok)
	}
	// A second Sync of the same target is a no-op.
	if err := Sync(context.Background(), cfg, dst, tr, sources); err != nil {
		t.Fatalf("sync again: %v", err)
	}
	dst.Close()

	dst, err := store.Open(dir, store.Options{FullCheck: true})
	if err != nil {
		t.Fatalf("reopen the synced store: %v", err)
	}
	defer dst.Close()
	hdr := testHeader(h + 1)
	next := store.BlockCommit{Height: h + 1, Hash: types.HashBytes(hdr), Header: hdr, Body: []byte("b"),
		Changes: []store.KV{{Key: []byte("acct/0/1"), Value: []byte("new")}, {Key: []byte("acct/1/2")}}}
	r1, err := src.CommitBlock(next)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := dst.CommitBlock(next)
	if err != nil {
		t.Fatalf("the synced store refuses the next block: %v", err)
	}
	if r1 != r2 {
		t.Fatalf("after the next block: source root %v, synced %v", r1, r2)
	}
}

// TestSyncByzantine mixes faulty sources among good ones: each faulty one
// is reported once, and the sync completes with the right root.
func TestSyncByzantine(t *testing.T) {
	src := sourceStore(t, 256, 3, 800)
	e, m := export(t, src, 8<<10)
	tr := trustedOf(t, src)
	flip := func(b []byte, at int) []byte {
		b = slices.Clone(b)
		b[at] ^= 1
		return b
	}
	bad := []*exportSource{
		{id: "bad-manifest", e: e, manifest: func(b []byte) []byte { return flip(b, len(b)-40) }}, // the last chunk's entry count
		{id: "bad-root", e: e, manifest: func(b []byte) []byte { return flip(b, 2+32+8+32) }},
		{id: "bad-bucket-hash", e: e, manifest: func(b []byte) []byte { return flip(b, 2+32+8+32+32+4+4+32*5) }},
		{id: "bad-value", e: e, chunk: func(_ int, b []byte) []byte { return flip(b, len(b)-1) }},
		{id: "truncated", e: e, chunk: func(_ int, b []byte) []byte { return b[:len(b)/2] }},
		{id: "oversized", e: e, chunk: func(_ int, b []byte) []byte { return make([]byte, types.MaxChunkResp+1) }},
		{id: "extra-entry", e: e, chunk: func(_ int, b []byte) []byte {
			c, err := DecodeChunk(b)
			if err != nil {
				panic(err)
			}
			c.Entries = append(c.Entries, store.ImportEntry{Bucket: c.LastBucket, Key: []byte{0xff, 0xff}, Value: []byte("x")})
			return EncodeChunk(c)
		}},
	}
	var sources []Source
	for i, b := range bad {
		sources = append(sources, b)
		if i%2 == 1 {
			sources = append(sources, &exportSource{id: "good-" + b.id, e: e})
		}
	}
	var mu sync.Mutex
	flagged := map[string]int{}
	cfg := Config{Parallel: 8, PerPeer: 1, ManifestSources: len(sources), OnBadPeer: func(id string, err error) {
		if !errors.Is(err, ErrBadChunk) && !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s reported with %v", id, err)
		}
		mu.Lock()
		flagged[id]++
		mu.Unlock()
	}}
	dst := openEmpty(t, t.TempDir())
	defer dst.Close()
	if err := Sync(context.Background(), cfg, dst, tr, sources); err != nil {
		t.Fatal(err)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root after a sync with faulty sources")
	}
	if len(m.Chunks) < len(sources) {
		t.Fatalf("%d chunks for %d sources: not every source gets asked", len(m.Chunks), len(sources))
	}
	for _, b := range bad {
		if flagged[b.id] != 1 {
			t.Errorf("source %s reported %d times, want once", b.id, flagged[b.id])
		}
	}
	for id, n := range flagged {
		if len(id) > 5 && id[:5] == "good-" {
			t.Errorf("good source %s reported %d times", id, n)
		}
	}
}

// TestSyncAllBad: with only faulty sources the sync fails with
// ErrNoSources, and with a bad manifest everywhere it never starts.
func TestSyncAllBad(t *testing.T) {
	src := sourceStore(t, 64, 2, 300)
	e, _ := export(t, src, 4<<10)
	tr := trustedOf(t, src)
	badChunk := func(id string) Source {
		return &exportSource{id: id, e: e, chunk: func(_ int, b []byte) []byte { return b[:len(b)-1] }}
	}
	badManifest := func(id string) Source {
		return &exportSource{id: id, e: e, manifest: func(b []byte) []byte { return b[:10] }}
	}
	for _, tc := range []struct {
		name    string
		sources []Source
	}{
		{"bad chunks", []Source{badChunk("x"), badChunk("y"), badChunk("z")}},
		{"bad manifests", []Source{badManifest("x"), badManifest("y"), badManifest("z"), badManifest("w")}},
		{"no sources", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openEmpty(t, t.TempDir())
			defer dst.Close()
			n := 0
			err := Sync(context.Background(), Config{OnBadPeer: func(string, error) { n++ }}, dst, tr, tc.sources)
			if !errors.Is(err, ErrNoSources) {
				t.Fatalf("got %v, want ErrNoSources", err)
			}
			if n != len(tc.sources) {
				t.Errorf("%d sources reported, want %d", n, len(tc.sources))
			}
			t.Log(err)
		})
	}
}

// TestSyncLayoutDisagreement: a source that chunks the same state
// differently is dropped without being reported; the sync completes.
func TestSyncLayoutDisagreement(t *testing.T) {
	src := sourceStore(t, 64, 2, 400)
	e1, _ := export(t, src, 4<<10)
	e2, _ := export(t, src, 9<<10)
	tr := trustedOf(t, src)
	dst := openEmpty(t, t.TempDir())
	defer dst.Close()
	other := &exportSource{id: "other", e: e2}
	sources := []Source{&exportSource{id: "a", e: e1}, &exportSource{id: "b", e: e1}, other}
	cfg := Config{ManifestSources: 1, PerPeer: 1, OnBadPeer: func(id string, err error) { t.Errorf("%s reported: %v", id, err) }}
	if err := Sync(context.Background(), cfg, dst, tr, sources); err != nil {
		t.Fatal(err)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root")
	}
	if n := len(other.fetches()); n != 1 {
		t.Errorf("the disagreeing source was asked for %d chunks, want 1 (then dropped)", n)
	}
}

// TestSyncResume cancels a sync midway, reopens the store and syncs again:
// the second sync fetches exactly the chunks the first did not import,
// each once.
func TestSyncResume(t *testing.T) {
	src := sourceStore(t, 256, 3, 1000)
	e, m := export(t, src, 8<<10)
	tr := trustedOf(t, src)
	dir := t.TempDir()
	dst := openEmpty(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	first := &exportSource{id: "a", e: e, after: func(_, served int) {
		if served == len(m.Chunks)/3 {
			cancel()
		}
	}}
	err := Sync(ctx, Config{Parallel: 3, PerPeer: 3}, dst, tr, []Source{first})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first sync: %v, want context.Canceled", err)
	}
	if _, err := dst.CommitBlock(store.BlockCommit{Height: 0, Header: []byte("h")}); !errors.Is(err, store.ErrImporting) {
		t.Fatalf("CommitBlock during an import: %v, want ErrImporting", err)
	}
	dst.Close()

	dst, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("reopen mid-import: %v", err)
	}
	defer dst.Close()
	imported := dst.Imported()
	var missing []int
	for i, ok := range imported {
		if !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 || len(missing) == len(m.Chunks) {
		t.Fatalf("%d of %d chunks missing after the cancel; the test wants a partial import", len(missing), len(m.Chunks))
	}
	second := &exportSource{id: "b", e: e}
	if err := Sync(context.Background(), Config{}, dst, tr, []Source{second}); err != nil {
		t.Fatal(err)
	}
	got := second.fetches()
	for _, i := range missing {
		if got[i] != 1 {
			t.Errorf("missing chunk %d fetched %d times, want once", i, got[i])
		}
		delete(got, i)
	}
	if len(got) != 0 {
		t.Errorf("chunks imported before the restart were fetched again: %v", got)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root after resume")
	}
	t.Logf("%d chunks, %d imported before the cancel", len(m.Chunks), len(m.Chunks)-len(missing))
}

// cancelledImport syncs dst from e until a third of its chunks are in, then
// cancels: a half-done import pinned to e's manifest.
func cancelledImport(t *testing.T, dst *store.Store, tr Trusted, e *Exporter, chunks int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &exportSource{id: "first", e: e, after: func(_, served int) {
		if served == chunks/3 {
			cancel()
		}
	}}
	if err := Sync(ctx, Config{Parallel: 1, PerPeer: 1}, dst, tr, []Source{first}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first sync: %v, want context.Canceled", err)
	}
}

// TestSyncResumeOtherManifest: a half-done import resumed when no source
// serves the manifest it began with (the exporters chunk differently
// now) starts afresh under the new manifest instead of counting chunks of
// one chunking under another, and ends at the trusted root.
func TestSyncResumeOtherManifest(t *testing.T) {
	src := sourceStore(t, 256, 3, 1000)
	e1, m1 := export(t, src, 8<<10)
	e2, m2 := export(t, src, 5<<10)
	tr := trustedOf(t, src)
	dst := openEmpty(t, t.TempDir())
	defer dst.Close()
	cancelledImport(t, dst, tr, e1, len(m1.Chunks))
	second := &exportSource{id: "second", e: e2}
	if err := Sync(context.Background(), Config{}, dst, tr, []Source{second}); err != nil {
		t.Fatalf("sync under another manifest: %v", err)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root")
	}
	if got := second.fetches(); len(got) != len(m2.Chunks) {
		t.Errorf("fetched %d of the new manifest's %d chunks, want all (a fresh start)", len(got), len(m2.Chunks))
	}
}

// TestSyncResumePrefersPinned: when sources disagree on the manifest, a
// half-done import resumes with the one it began with, fetching only the
// chunks it misses.
func TestSyncResumePrefersPinned(t *testing.T) {
	src := sourceStore(t, 256, 3, 1000)
	e1, m1 := export(t, src, 8<<10)
	e2, _ := export(t, src, 5<<10)
	tr := trustedOf(t, src)
	dst := openEmpty(t, t.TempDir())
	defer dst.Close()
	cancelledImport(t, dst, tr, e1, len(m1.Chunks))
	missing := 0
	for _, ok := range dst.Imported() {
		if !ok {
			missing++
		}
	}
	// The other chunking has the majority of the manifest round.
	others := []*exportSource{{id: "b1", e: e2}, {id: "b2", e: e2}}
	pinned := &exportSource{id: "a", e: e1}
	sources := []Source{others[0], others[1], pinned}
	if err := Sync(context.Background(), Config{ManifestSources: 3}, dst, tr, sources); err != nil {
		t.Fatal(err)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root")
	}
	if n := len(pinned.fetches()); n != missing {
		t.Errorf("the pinned manifest's source served %d chunks, want the %d missing ones", n, missing)
	}
	for _, o := range others {
		if n := len(o.fetches()); n > 1 {
			t.Errorf("%s (another chunking) served %d chunks", o.id, n)
		}
	}
}
