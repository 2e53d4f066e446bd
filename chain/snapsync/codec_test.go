package snapsync

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"taobox/chain/store"
	"taobox/chain/types"
)

// testManifest is a small valid manifest over buckets with no entries.
func testManifest(buckets uint32, chunks int) *Manifest {
	m := &Manifest{Version: Version, ChainID: testChain, Height: 7, BlockHash: types.HashBytes([]byte("b")), Buckets: buckets}
	for range buckets {
		m.BucketHashes = append(m.BucketHashes, store.EmptyBucketHash)
	}
	m.StateRoot = store.MerkleRoot(m.BucketHashes)
	per := buckets / uint32(chunks)
	for i := range chunks {
		c := &Chunk{FirstBucket: uint32(i) * per, LastBucket: uint32(i+1)*per - 1}
		if i == chunks-1 {
			c.LastBucket = buckets - 1
		}
		b := EncodeChunk(c)
		m.Chunks = append(m.Chunks, ChunkInfo{FirstBucket: c.FirstBucket, LastBucket: c.LastBucket, Bytes: uint32(len(b)), Hash: types.HashBytes(b)})
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest(16, 3)
	b := m.Encode()
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), b) {
		t.Fatal("decode then encode changed the bytes")
	}
	if err := Verify(got, m.StateRoot); err != nil {
		t.Fatal(err)
	}
}

// TestManifestRejects lists the manifests DecodeManifest or Verify refuse.
func TestManifestRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *Manifest)
		raw    func(b []byte) []byte
		verify bool // the failure is Verify's, not the decoder's
	}{
		{name: "version", mutate: func(m *Manifest) { m.Version = 2 }},
		{name: "zero buckets", mutate: func(m *Manifest) { m.Buckets = 0 }},
		{name: "buckets not a power of two", mutate: func(m *Manifest) { m.Buckets = 12 }},
		{name: "hash count differs", mutate: func(m *Manifest) { m.BucketHashes = m.BucketHashes[:8] }},
		{name: "no chunks", mutate: func(m *Manifest) { m.Chunks = nil }},
		{name: "gap", mutate: func(m *Manifest) { m.Chunks[1].FirstBucket++ }},
		{name: "overlap", mutate: func(m *Manifest) { m.Chunks[1].FirstBucket-- }},
		{name: "short cover", mutate: func(m *Manifest) { m.Chunks[2].LastBucket-- }},
		{name: "beyond buckets", mutate: func(m *Manifest) { m.Chunks[2].LastBucket = 16 }},
		{name: "chunk too big", mutate: func(m *Manifest) { m.Chunks[0].Bytes = types.MaxChunkResp + 1 }},
		{name: "entries cannot fit", mutate: func(m *Manifest) { m.Chunks[0].Entries = 1 << 20 }},
		{name: "trailing byte", raw: func(b []byte) []byte { return append(b, 0) }},
		{name: "truncated", raw: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "huge count", raw: func(b []byte) []byte { b[2+32+8+32+32+4] = 0xff; return b }},
		{name: "oversized", raw: func(b []byte) []byte { return append(b, make([]byte, types.MaxManifestResp)...) }},
		{name: "wrong root", mutate: func(m *Manifest) { m.StateRoot[0] ^= 1 }, verify: true},
		{name: "wrong bucket hash", mutate: func(m *Manifest) { m.BucketHashes[3][0] ^= 1 }, verify: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest(16, 3)
			root := m.StateRoot
			if tc.mutate != nil {
				tc.mutate(m)
			}
			b := m.Encode()
			if tc.raw != nil {
				b = tc.raw(b)
			}
			got, err := DecodeManifest(b)
			if tc.verify {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				err = Verify(got, root)
			}
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("got %v, want ErrBadManifest", err)
			}
		})
	}
}

func TestChunkRejects(t *testing.T) {
	good := &Chunk{FirstBucket: 2, LastBucket: 5, Entries: []store.ImportEntry{
		{Bucket: 2, Key: []byte("a"), Value: []byte("1")},
		{Bucket: 2, Key: []byte("b"), Value: []byte{}},
		{Bucket: 4, Key: []byte("a"), Value: []byte("3")},
	}}
	b := EncodeChunk(good)
	c, err := DecodeChunk(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(EncodeChunk(c), b) {
		t.Fatal("round trip changed the bytes")
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *Chunk)
		raw    func(b []byte) []byte
	}{
		{name: "range reversed", mutate: func(c *Chunk) { c.FirstBucket = 6 }},
		{name: "bucket outside", mutate: func(c *Chunk) { c.Entries[2].Bucket = 6 }},
		{name: "unsorted", mutate: func(c *Chunk) { c.Entries[0], c.Entries[1] = c.Entries[1], c.Entries[0] }},
		{name: "duplicate", mutate: func(c *Chunk) { c.Entries[1].Key = []byte("a") }},
		{name: "empty key", mutate: func(c *Chunk) { c.Entries[0].Key = nil }},
		{name: "long key", mutate: func(c *Chunk) { c.Entries[0].Key = make([]byte, store.MaxKeySize+1) }},
		{name: "version", raw: func(b []byte) []byte { b[1] = 9; return b }},
		{name: "count too big", raw: func(b []byte) []byte { b[13]++; return b }},
		{name: "count huge", raw: func(b []byte) []byte { b[10] = 0xff; return b }},
		{name: "trailing", raw: func(b []byte) []byte { return append(b, 1) }},
		{name: "truncated", raw: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "short", raw: func(b []byte) []byte { return b[:5] }},
		{name: "oversized", raw: func(b []byte) []byte { return append(b, make([]byte, types.MaxChunkResp)...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Chunk{FirstBucket: good.FirstBucket, LastBucket: good.LastBucket, Entries: slices.Clone(good.Entries)}
			if tc.mutate != nil {
				tc.mutate(c)
			}
			b := EncodeChunk(c)
			if tc.raw != nil {
				b = tc.raw(b)
			}
			if _, err := DecodeChunk(b); !errors.Is(err, ErrBadChunk) {
				t.Fatalf("got %v, want ErrBadChunk", err)
			}
		})
	}
}

// TestVerifyChunk checks a real export's chunks, and that a key moved to
// another bucket of the chunk (bucket hashes recomputed by the attacker
// cannot match) is caught.
func TestVerifyChunk(t *testing.T) {
	src := sourceStore(t, 16, 1, 200)
	e, m := export(t, src, 2<<10)
	for i := range m.Chunks {
		b, err := e.Chunk(m.Height, i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyChunk(m, i, b); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if i > 0 {
			if _, err := VerifyChunk(m, i-1, b); !errors.Is(err, ErrBadChunk) && !errors.Is(err, ErrLayout) {
				t.Fatalf("chunk %d as %d: %v", i, i-1, err)
			}
		}
	}
	b, _ := e.Chunk(m.Height, 0)
	c, _ := DecodeChunk(b)
	if c.FirstBucket == c.LastBucket {
		t.Skip("chunk 0 has one bucket")
	}
	c.Entries[0].Bucket++ // misplace the first key, keep the order
	slices.SortStableFunc(c.Entries, func(a, b store.ImportEntry) int { return int(a.Bucket) - int(b.Bucket) })
	if _, err := VerifyChunk(m, 0, EncodeChunk(c)); !errors.Is(err, ErrBadChunk) {
		t.Fatalf("misplaced key: %v", err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(testManifest(4, 2).Encode())
	f.Add(testManifest(16, 3).Encode())
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("a decoded manifest re-encodes differently")
		}
		_ = Verify(m, m.StateRoot) // must not panic
	})
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(EncodeChunk(&Chunk{FirstBucket: 0, LastBucket: 3, Entries: []store.ImportEntry{{Bucket: 1, Key: []byte("k"), Value: []byte("v")}}}))
	f.Add(EncodeChunk(&Chunk{}))
	m := testManifest(4, 2)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChunk(b)
		if err != nil {
			if !errors.Is(err, ErrBadChunk) {
				t.Fatalf("error %v does not wrap ErrBadChunk", err)
			}
			return
		}
		if !bytes.Equal(EncodeChunk(c), b) {
			t.Fatal("a decoded chunk re-encodes differently")
		}
		if _, err := VerifyChunk(m, 0, b); err != nil && !errors.Is(err, ErrBadChunk) && !errors.Is(err, ErrLayout) {
			t.Fatalf("VerifyChunk: %v", err)
		}
	})
}
