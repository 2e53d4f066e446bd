package snapsync

// Manifest encoding (all integers big-endian, chain/types codec):
//
//	u16 version (1) ‖ chainID [32] ‖ u64 height ‖ blockHash [32] ‖ stateRoot [32] ‖
//	u32 buckets ‖ u32 n ‖ n × bucketHash [32] ‖
//	u32 c ‖ c × (u32 firstBucket ‖ u32 lastBucket ‖ u32 entries ‖ u32 bytes ‖ hash [32])
//
// n must equal buckets (a power of two up to MaxBuckets); the chunks must
// cover buckets 0..buckets-1 in order, without gaps or overlaps.
//
// Design note: the manifest lists every bucket hash (2 MiB at 65,536
// buckets) rather than only their root plus a Merkle proof per chunk. One
// fetch of 2 MiB is small next to the state, and a flat list lets a chunk be
// checked with no proof at all: recompute its buckets' hashes and compare.

import (
	"errors"
	"fmt"
	"math/bits"

	"taobox/chain/store"
	"taobox/chain/types"
)

// Version is the manifest and chunk format this package writes and reads.
const Version = 1

// MaxBuckets is the largest bucket count a manifest may carry: its bucket
// hashes must fit in types.MaxManifestResp.
const MaxBuckets = 1 << 16

// Errors of manifest and chunk checks; test with errors.Is.
var (
	// ErrBadManifest: a manifest does not decode, or does not match the
	// trusted header (root, height, block hash). The source that served it
	// is faulty.
	ErrBadManifest = errors.New("snapsync: bad manifest")

	// ErrBadChunk: a chunk does not decode, or its data does not match the
	// manifest's bucket hashes. The source that served it is faulty.
	ErrBadChunk = errors.New("snapsync: bad chunk")

	// ErrLayout: a chunk holds genuine snapshot data but not the range
	// (or bytes) the manifest in use lists under its index: its source
	// exported a differently chunked manifest. Not a fault of the source;
	// the syncer stops asking it.
	ErrLayout = errors.New("snapsync: chunk laid out differently from the manifest")

	// ErrNotFound: the exporter has no such snapshot or chunk.
	ErrNotFound = errors.New("snapsync: snapshot not found")
)

// ChunkInfo describes one chunk: the buckets FirstBucket..LastBucket
// (inclusive), how many entries and bytes its encoding has, and the
// BLAKE2b-256 of that encoding.
type ChunkInfo struct {
	FirstBucket, LastBucket uint32
	Entries                 uint32
	Bytes                   uint32
	Hash                    types.Hash
}

// Manifest describes a state snapshot at one block.
type Manifest struct {
	Version      uint16
	ChainID      types.Hash
	Height       uint64
	BlockHash    types.Hash
	StateRoot    types.Hash
	Buckets      uint32
	BucketHashes []types.Hash // len == Buckets
	Chunks       []ChunkInfo
}

const chunkInfoSize = 4*4 + 32

// Encode returns the canonical encoding of m.
func (m *Manifest) Encode() []byte {
	w := types.NewWriter(make([]byte, 0, 2+32+8+32+32+4+4+32*len(m.BucketHashes)+4+chunkInfoSize*len(m.Chunks)))
	w.U16(m.Version)
	w.Fixed(m.ChainID[:])
	w.U64(m.Height)
	w.Fixed(m.BlockHash[:])
	w.Fixed(m.StateRoot[:])
	w.U32(m.Buckets)
	w.Len(len(m.BucketHashes))
	for _, h := range m.BucketHashes {
		w.Fixed(h[:])
	}
	w.Len(len(m.Chunks))
	for _, c := range m.Chunks {
		w.U32(c.FirstBucket)
		w.U32(c.LastBucket)
		w.U32(c.Entries)
		w.U32(c.Bytes)
		w.Fixed(c.Hash[:])
	}
	return w.Bytes()
}

// DecodeManifest decodes and checks the shape of a manifest of at most
// types.MaxManifestResp bytes (see the format above). It does not check
// the manifest against a trusted root: that is Verify.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > types.MaxManifestResp {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadManifest, len(b), types.MaxManifestResp)
	}
	r := types.NewReader(b)
	m := &Manifest{}
	m.Version = r.U16("version")
	if r.Err() == nil && m.Version != Version {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrBadManifest, m.Version, Version)
	}
	r.Fixed("chain_id", m.ChainID[:])
	m.Height = r.U64("height")
	r.Fixed("block_hash", m.BlockHash[:])
	r.Fixed("state_root", m.StateRoot[:])
	m.Buckets = r.U32("buckets")
	if r.Err() == nil && (m.Buckets == 0 || m.Buckets > MaxBuckets || bits.OnesCount32(m.Buckets) != 1) {
		return nil, fmt.Errorf("%w: %d buckets, want a power of two up to %d", ErrBadManifest, m.Buckets, MaxBuckets)
	}
	n := r.Len("bucket_hashes", MaxBuckets)
	if r.Err() == nil && n != int(m.Buckets) {
		return nil, fmt.Errorf("%w: %d bucket hashes for %d buckets", ErrBadManifest, n, m.Buckets)
	}
	if r.Err() == nil && r.Remaining() < 32*n {
		r.Fail("bucket_hashes", types.ErrShort)
	}
	if r.Err() == nil {
		m.BucketHashes = make([]types.Hash, n)
		for i := range m.BucketHashes {
			r.Fixed("bucket_hash", m.BucketHashes[i][:])
		}
	}
	c := r.Len("chunks", MaxBuckets)
	if r.Err() == nil && r.Remaining() < chunkInfoSize*c {
		r.Fail("chunks", types.ErrShort)
	}
	if r.Err() == nil {
		m.Chunks = make([]ChunkInfo, c)
		for i := range m.Chunks {
			ci := &m.Chunks[i]
			ci.FirstBucket = r.U32("chunk.first_bucket")
			ci.LastBucket = r.U32("chunk.last_bucket")
			ci.Entries = r.U32("chunk.entries")
			ci.Bytes = r.U32("chunk.bytes")
			r.Fixed("chunk.hash", ci.Hash[:])
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if err := m.checkChunks(); err != nil {
		return nil, err
	}
	return m, nil
}

// checkChunks checks that the chunks cover the buckets in order and that
// each chunk's declared size is possible.
func (m *Manifest) checkChunks() error {
	if len(m.Chunks) == 0 {
		return fmt.Errorf("%w: no chunks", ErrBadManifest)
	}
	next := uint32(0)
	for i, c := range m.Chunks {
		switch {
		case c.FirstBucket != next || c.LastBucket < c.FirstBucket || c.LastBucket >= m.Buckets:
			return fmt.Errorf("%w: chunk %d covers buckets %d..%d, want a range starting at %d within %d buckets", ErrBadManifest, i, c.FirstBucket, c.LastBucket, next, m.Buckets)
		case c.Bytes < chunkHeaderSize || c.Bytes > types.MaxChunkResp:
			return fmt.Errorf("%w: chunk %d declares %d bytes, want %d to %d", ErrBadManifest, i, c.Bytes, chunkHeaderSize, types.MaxChunkResp)
		case uint64(c.Entries)*minEntrySize > uint64(c.Bytes):
			return fmt.Errorf("%w: chunk %d declares %d entries in %d bytes", ErrBadManifest, i, c.Entries, c.Bytes)
		}
		next = c.LastBucket + 1
	}
	if next != m.Buckets {
		return fmt.Errorf("%w: the chunks end at bucket %d of %d", ErrBadManifest, next, m.Buckets)
	}
	return nil
}

// Verify checks that m commits to trustedRoot: the Merkle root of its
// bucket hashes (store.MerkleRoot) equals m.StateRoot, which equals
// trustedRoot. The caller has verified trustedRoot (a header finalized by
// its certificate). m must come from DecodeManifest.
func Verify(m *Manifest, trustedRoot types.Hash) error {
	if m.StateRoot != trustedRoot {
		return fmt.Errorf("%w: state root %v, the trusted header has %v", ErrBadManifest, m.StateRoot, trustedRoot)
	}
	if got := store.MerkleRoot(m.BucketHashes); got != m.StateRoot {
		return fmt.Errorf("%w: the bucket hashes give root %v, the manifest claims %v", ErrBadManifest, got, m.StateRoot)
	}
	return nil
}
