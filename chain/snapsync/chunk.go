package snapsync

// Chunk encoding (big-endian):
//
//	u16 version (1) ‖ u32 firstBucket ‖ u32 lastBucket ‖ u32 count ‖
//	count × (u32 bucket ‖ u32 len(key) ‖ key ‖ u32 len(value) ‖ value)
//
// The entries are every state entry of buckets firstBucket..lastBucket, in
// increasing (bucket, key) order, so a chunk's bytes are a pure function of
// the state and its range: honest exporters of one state produce identical
// chunks and manifests.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"taobox/chain/store"
	"taobox/chain/types"
)

const (
	chunkHeaderSize = 2 + 4 + 4 + 4
	minEntrySize    = 4 + 4 + 1 + 4 // bucket, key length, one key byte, value length
)

// Chunk is a decoded chunk. Entries alias the bytes it was decoded from.
type Chunk struct {
	FirstBucket, LastBucket uint32
	Entries                 []store.ImportEntry
}

// appendChunkHeader appends a chunk header with count entries.
func appendChunkHeader(b []byte, first, last, count uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint32(b, first)
	b = binary.BigEndian.AppendUint32(b, last)
	return binary.BigEndian.AppendUint32(b, count)
}

// appendEntry appends one entry's encoding.
func appendEntry(b []byte, bucket uint32, key, value []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, bucket)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// EncodeChunk returns the encoding of c (entries in (bucket, key) order,
// as DecodeChunk requires).
func EncodeChunk(c *Chunk) []byte {
	b := appendChunkHeader(nil, c.FirstBucket, c.LastBucket, uint32(len(c.Entries)))
	for _, e := range c.Entries {
		b = appendEntry(b, e.Bucket, e.Key, e.Value)
	}
	return b
}

// DecodeChunk decodes a chunk of at most types.MaxChunkResp bytes and
// checks its shape: version, range, every entry's bucket within the range,
// key and value sizes within the store's limits, strictly increasing
// (bucket, key) order, no trailing bytes. It does not check that keys sit
// in their buckets or match any hash: that is VerifyChunk. The entries
// alias b.
func DecodeChunk(b []byte) (*Chunk, error) {
	bad := func(format string, args ...any) (*Chunk, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadChunk, fmt.Sprintf(format, args...))
	}
	if len(b) > types.MaxChunkResp {
		return bad("%d bytes, the limit is %d", len(b), types.MaxChunkResp)
	}
	if len(b) < chunkHeaderSize {
		return bad("%d bytes, shorter than the header", len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != Version {
		return bad("version %d, this build reads %d", v, Version)
	}
	c := &Chunk{FirstBucket: binary.BigEndian.Uint32(b[2:]), LastBucket: binary.BigEndian.Uint32(b[6:])}
	n := binary.BigEndian.Uint32(b[10:])
	if c.FirstBucket > c.LastBucket {
		return bad("bucket range %d..%d", c.FirstBucket, c.LastBucket)
	}
	rest := b[chunkHeaderSize:]
	if uint64(n)*minEntrySize > uint64(len(rest)) {
		return bad("%d entries cannot fit in %d bytes", n, len(rest))
	}
	c.Entries = make([]store.ImportEntry, n)
	field := func(max int) ([]byte, bool) {
		if len(rest) < 4 {
			return nil, false
		}
		l := binary.BigEndian.Uint32(rest)
		if uint64(l) > uint64(max) || uint64(l) > uint64(len(rest)-4) {
			return nil, false
		}
		v := rest[4 : 4+l : 4+l]
		rest = rest[4+l:]
		return v, true
	}
	for i := range n {
		if len(rest) < 4 {
			return bad("entry %d: input ends early", i)
		}
		e := &c.Entries[i]
		e.Bucket = binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		var ok bool
		if e.Key, ok = field(store.MaxKeySize); !ok || len(e.Key) == 0 {
			return bad("entry %d: key missing, short or over %d bytes", i, store.MaxKeySize)
		}
		if e.Value, ok = field(store.MaxValueSize); !ok {
			return bad("entry %d: value short or over %d bytes", i, store.MaxValueSize)
		}
		if e.Bucket < c.FirstBucket || e.Bucket > c.LastBucket {
			return bad("entry %d: bucket %d outside %d..%d", i, e.Bucket, c.FirstBucket, c.LastBucket)
		}
		if i > 0 {
			p := &c.Entries[i-1]
			if p.Bucket > e.Bucket || p.Bucket == e.Bucket && bytes.Compare(p.Key, e.Key) >= 0 {
				return bad("entry %d is not after entry %d in (bucket, key) order", i, i-1)
			}
		}
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return c, nil
}

// VerifyChunk checks chunk index of manifest m and returns its entries
// (aliasing b), ready for store.ImportChunk. Order: the size cap, decoding
// (DecodeChunk), every key in its bucket (store.BucketOf), then every
// bucket of the chunk's own range rehashed (store.HashBucket) and compared
// with m.BucketHashes — the part of m that Verify authenticated. Any
// failure so far is ErrBadChunk: the data is not the snapshot's. Last, the
// chunk's range, entry count, size and hash are compared with
// m.Chunks[index]; a chunk that is genuine but laid out differently (its
// source exported another manifest) is ErrLayout.
func VerifyChunk(m *Manifest, index int, b []byte) ([]store.ImportEntry, error) {
	if index < 0 || index >= len(m.Chunks) {
		return nil, fmt.Errorf("snapsync: chunk %d of a manifest with %d chunks", index, len(m.Chunks))
	}
	c, err := DecodeChunk(b)
	if err != nil {
		return nil, err
	}
	if c.LastBucket >= m.Buckets {
		return nil, fmt.Errorf("%w: bucket range %d..%d beyond the manifest's %d buckets", ErrBadChunk, c.FirstBucket, c.LastBucket, m.Buckets)
	}
	kvs := make([]store.KV, 0, 64)
	i := 0
	for bucket := c.FirstBucket; ; bucket++ {
		kvs = kvs[:0]
		for ; i < len(c.Entries) && c.Entries[i].Bucket == bucket; i++ {
			e := &c.Entries[i]
			if store.BucketOf(e.Key, int(m.Buckets)) != bucket {
				return nil, fmt.Errorf("%w: key %x is not in bucket %d", ErrBadChunk, e.Key, bucket)
			}
			kvs = append(kvs, store.KV{Key: e.Key, Value: e.Value})
		}
		if got := store.HashBucket(kvs); got != m.BucketHashes[bucket] {
			return nil, fmt.Errorf("%w: bucket %d hashes to %v, the manifest has %v", ErrBadChunk, bucket, got, m.BucketHashes[bucket])
		}
		if bucket == c.LastBucket {
			break
		}
	}
	info := m.Chunks[index]
	if c.FirstBucket != info.FirstBucket || c.LastBucket != info.LastBucket || uint32(len(c.Entries)) != info.Entries ||
		uint32(len(b)) != info.Bytes || types.HashBytes(b) != info.Hash {
		return nil, fmt.Errorf("%w: chunk %d holds buckets %d..%d (%d entries, %d bytes); the manifest's chunk %d has %d..%d (%d entries, %d bytes)",
			ErrLayout, index, c.FirstBucket, c.LastBucket, len(c.Entries), len(b), index, info.FirstBucket, info.LastBucket, info.Entries, info.Bytes)
	}
	return c.Entries, nil
}
