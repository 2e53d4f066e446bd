// Package snapsync takes state snapshots of a chain store and syncs a new
// node's empty store from them (specs/chain-and-sync.md §6, "Snapshot
// format" and "Resume"; docs/sync.md has the whole picture).
//
// # Serving side
//
// An Exporter takes a snapshot of a store.Store at its committed head
// (Take): one scan of a leveldb snapshot streams every state bucket, in
// bucket order, into chunk files of about 1 MiB, while hashing each
// bucket; the Manifest lists the bucket hashes (whose Merkle root is the
// state root of the block's header) and, per chunk, its bucket range,
// entry count, size and hash. Snapshots live under one directory, two are
// kept, and Manifest/Chunk serve them to peers. Chunking is deterministic:
// exporters of the same state with the same ChunkBytes write identical
// manifests and chunks.
//
// # Syncing side
//
// Sync is given a Trusted header (the caller verified it: epoch handoff
// proofs from genesis, then the block's finality certificate) and a list
// of Sources (peers). Verification order:
//
//  1. the manifest: decoded with a size cap, its height and block hash
//     equal the trusted header's, the Merkle root of its bucket hashes
//     equals its state root, which equals the trusted root (Verify). The
//     manifest most sources agree on is used;
//  2. each chunk, on arrival: size cap, decoding (sorted, in its range),
//     each key in the bucket its hash names, each bucket of the range
//     rehashed and compared with the manifest (VerifyChunk);
//  3. after the last chunk, the store rehashes everything it holds and
//     compares the root again (store.FinishImport).
//
// A source that fails 1 or 2 is reported to Config.OnBadPeer and dropped;
// its chunk is fetched from another. Each verified chunk is written with
// its bit of the store's progress bitmap in one batch
// (store.ImportChunk), so a node killed mid-sync resumes and never fetches
// a finished chunk again.
//
// Design note: chunks are addressed by index in one manifest, not by
// bucket range. That keeps requests tiny and the bitmap simple; the cost
// is that all sources must serve the same manifest, which the
// deterministic chunking gives for honest peers (a source that chunks
// differently is dropped as disagreeing, not reported as faulty).
package snapsync
