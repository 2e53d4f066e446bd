package snapsync

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"taobox/chain/store"
	"taobox/chain/types"
)

// TestExporterKeepsNewest takes snapshots at several heights: the two
// newest are served, older ones are gone (ErrNotFound), a reopened
// exporter finds the same ones and drops a leftover temp dir, and a second
// Take at the same height returns the same manifest.
func TestExporterKeepsNewest(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Buckets: 32, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	e, err := NewExporter(ExporterConfig{Dir: dir, ChainID: testChain, ChunkBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Take(st); err == nil {
		t.Fatal("Take of an empty store succeeded")
	}
	var manifests [][]byte
	for h := range 4 {
		fillStoreFrom(t, st, uint64(h))
		m, err := e.Take(st)
		if err != nil {
			t.Fatal(err)
		}
		if m.Height != uint64(h) || m.StateRoot != st.StateRoot() || m.ChainID != testChain {
			t.Fatalf("manifest %d: height %d root %v", h, m.Height, m.StateRoot)
		}
		manifests = append(manifests, m.Encode())
	}
	if got := e.Heights(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("heights %v, want [2 3]", got)
	}
	if l, ok := e.Latest(); !ok || l != 3 {
		t.Fatalf("Latest %d %v", l, ok)
	}
	for _, h := range []uint64{0, 1, 9} {
		if _, err := e.Manifest(h); !errors.Is(err, ErrNotFound) {
			t.Fatalf("manifest %d: %v, want ErrNotFound", h, err)
		}
	}
	if _, err := e.Chunk(3, 1<<19); !errors.Is(err, ErrNotFound) {
		t.Fatalf("chunk beyond the last: %v", err)
	}
	if b, err := e.Manifest(3); err != nil || !bytes.Equal(b, manifests[3]) {
		t.Fatalf("manifest 3 served differs (%v)", err)
	}
	m, err := e.Take(st) // same head again
	if err != nil || !bytes.Equal(m.Encode(), manifests[3]) {
		t.Fatalf("second Take at the same height: %v", err)
	}

	if err := os.Mkdir(filepath.Join(dir, ".tmp-123"), 0o700); err != nil {
		t.Fatal(err)
	}
	e2, err := NewExporter(ExporterConfig{Dir: dir, ChainID: testChain, ChunkBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := e2.Heights(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("reopened: heights %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the leftover temp dir was not removed")
	}

	// Another exporter of the same state writes the same bytes.
	_, m2 := export(t, st, 1<<10)
	if !bytes.Equal(m2.Encode(), manifests[3]) {
		t.Fatal("two exports of one state differ")
	}
}

func fillStoreFrom(t *testing.T, st *store.Store, h uint64) {
	t.Helper()
	var ch []store.KV
	for i := range 100 {
		ch = append(ch, store.KV{Key: []byte{byte(h), byte(i)}, Value: bytes.Repeat([]byte{byte(i)}, 20)})
	}
	hdr := testHeader(h)
	if _, err := st.CommitBlock(store.BlockCommit{Height: h, Hash: types.HashBytes(hdr), Header: hdr, Body: []byte{}, Changes: ch}); err != nil {
		t.Fatal(err)
	}
}

func TestExporterConfigValidate(t *testing.T) {
	err := ExporterConfig{Keep: -1, ChunkBytes: MaxChunkBytes + 1}.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"Dir", "Keep", "ChunkBytes"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	if err := (Config{Parallel: -1, Timeout: -1}).Validate(); err == nil {
		t.Fatal("Config accepted negative values")
	}
}

// TestTakeAtRefusesAnotherHeight: a snapshot is only taken of the height
// asked for.
func TestTakeAtRefusesAnotherHeight(t *testing.T) {
	st := sourceStore(t, 64, 3, 20)
	h, _, _ := st.Head()
	ex, err := NewExporter(ExporterConfig{Dir: t.TempDir(), ChainID: testChain})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.TakeAt(st, h+1); !errors.Is(err, ErrMovedOn) {
		t.Fatalf("TakeAt(head+1) = %v, want ErrMovedOn", err)
	}
	if len(ex.Heights()) != 0 {
		t.Fatalf("a snapshot was written: %v", ex.Heights())
	}
	m, err := ex.TakeAt(st, h)
	if err != nil || m.Height != h {
		t.Fatalf("TakeAt(head) = %v, %v", m, err)
	}
}
