// Package store keeps the chain on disk in goleveldb: recent blocks (header,
// body, events), the epoch-boundary headers forever, the current state, and
// the state root that commits to that state (specs/chain-and-sync.md §2, §6).
//
// The chain state machine (chain/state) is pure: it never touches the disk.
// It hands the store one changeset per block, and the store writes the whole
// block — header, body, events, state changes, the updated bucket hashes, the
// head pointer and the pruning deletes — in one atomic goleveldb batch
// (CommitBlock). The interface is deliberately narrow, as in pebble or the
// etcd raft Storage: state reads (Get, Snapshot), the root (StateRoot,
// RootAfter), one write (CommitBlock) and block reads (Header, Body, Events).
//
// # State root
//
// The state is a set of (key, value) pairs of opaque bytes. Its commitment
// is a bucketed Merkle tree with a fixed number of buckets B (a power of
// two, 65,536 by default, fixed when the store is created):
//
//	bucket(k)  = the first log2(B) bits of BLAKE2b-256(k), big-endian
//	bucketHash = BLAKE2b-256("taobox/store/bucket/v1" ‖ for each (k, v) of the bucket
//	             in increasing byte order of k: u32 len(k) ‖ k ‖ u32 len(v) ‖ v)
//	node(l, r) = BLAKE2b-256(0x01 ‖ l ‖ r)
//	root       = the binary Merkle root over the B bucket hashes in bucket order
//	             (with B = 1 the root is the one bucket hash)
//
// An empty bucket hashes to the constant EmptyBucketHash (the formula over
// no entries). The root depends only on the set of pairs: not on the order
// or batching of the writes that produced it. BucketOf, HashBucket and
// MerkleRoot compute these pieces without a Store, for snapshot sync.
//
// The store keeps the whole tree (2·B hashes, 4 MiB for 65,536 buckets) in
// memory, rebuilt at Open from the bucket hashes cached on disk under the R
// prefix, so a restart does not rehash the state. Per block only the touched
// buckets are rehashed — one prefix scan of the bucket merged with the
// block's changes — and only their paths to the root are recomputed.
//
// What a block costs: its changes are sorted and deduplicated, every
// touched bucket is read back with one seek plus a scan and rehashed (on all
// cores when many buckets are touched), about log2(B) node hashes are
// recomputed per touched bucket, and the batch is written and fsynced. With
// a million keys a bucket holds ~15 entries; on a 2-core VM 1000 changes
// take ~10 ms to plan and ~20 ms to commit (see bench_test.go). A bucket's rehash reads all of its bytes: a
// multi-MiB value makes every later write to its bucket cost that much
// hashing, so the state machine should keep values small; MaxValueSize is
// a ceiling, not a target. RootAfter followed by CommitBlock of the same
// changes (what every node does) plans only once.
//
// # Key layout
//
// One prefix byte per kind of record; heights are u64 big-endian so that
// iteration order is height order.
//
//	M format           u32 format version ‖ u32 bucket count
//	M head             u64 height ‖ block hash [32] ‖ state root [32]
//	M base             u64 lowest height whose body is kept
//	H height           block hash [32] ‖ header bytes
//	h hash             u64 height
//	B height           body bytes
//	V height           events bytes
//	C height           finality certificate bytes (pruned with the body, except
//	                   at an epoch boundary)
//	E height           marks an epoch boundary (its header and certificate are
//	                   kept forever); value: BlockCommit.EpochData (the node's
//	                   next authority set), possibly empty
//	M hardstate        the consensus hard state (PutHardState)
//	M import           a snapshot import session; M importbits its progress
//	                   bitmap; M synced the height synced at (see Snapshot import)
//	S bucket key       state value; bucket is u32 big-endian for every B, so a
//	                   bucket's keys are contiguous and a rehash is one prefix scan
//	R bucket           cached bucket hash [32]; absent for an empty bucket
//
// The block hash is stored in front of the header because the store does not
// decode headers: pruning needs it to delete the h index entry. Adapted from
// §6 of the spec: undo logs (U) are not needed since BFT finality is
// instant (no block is ever reverted); E is keyed by height rather than epoch number, because the store does
// not know the tempo.
//
// # Crash safety
//
// Every CommitBlock is one leveldb batch. goleveldb writes a batch as one
// journal record (or, for a batch larger than the write buffer, as one
// transaction committed by one manifest record), and recovery drops a torn
// record at the end of the journal, so after a crash the disk holds the
// state before the batch or after it, never part of it. With Sync (the
// default) the journal is fsynced before CommitBlock returns, so a
// committed block also survives power loss; a kill -9 loses nothing even
// with NoSync, because the page cache survives the process. The in-memory
// tree is updated only after the write succeeded; if a write fails, the
// store refuses further commits until it is reopened.
//
// Open re-checks what the batch guarantees: the head's header, body and
// events are present and carry the head's hash; no block above the head
// exists; the tree rebuilt from the R cache has the root recorded with the
// head; and a sample of buckets (all of them with Options.FullCheck) rehash
// to their cached hashes. When a check fails Open refuses with ErrCorrupt
// and says what to do; it never repairs silently. TestCrashKill9 kills a
// real importing process with SIGKILL at random moments and checks all of
// this against an in-memory replay of the same blocks.
//
// # Snapshot import
//
// A new node fills an empty store from a state snapshot instead of
// replaying blocks (chain/snapsync drives it; import.go has the details).
// BeginImport records the target (height, block hash, state root, header,
// bucket count, chunk count); each ImportChunk writes one chunk's entries
// together with its bit of the progress bitmap in one fsynced batch, so a
// killed node resumes without fetching a finished chunk again; FinishImport
// rehashes the whole state, checks the root, and makes the snapshot block
// head and base (header kept, body and events never stored, like a pruned
// block). While a session is open, Open accepts the partial state and
// CommitBlock refuses with ErrImporting; AbortImport wipes it.
//
// # Pruning
//
// Committing height h with KeepBlocks = N deletes the header, hash index,
// body and events of every height below h+1-N (normally just h-N), except
// that an epoch boundary keeps its header and hash index forever; the
// deletes are in the same batch, and Base advances. A store that falls behind
// (KeepBlocks lowered between runs) catches up by at most 256 heights per
// commit, so no single batch grows without bound. CompactPruned reclaims the
// space of the deleted ranges; the node calls it rarely (daily).
package store
