package store

// Snapshot import: how a new node fills an empty store from a state
// snapshot (chain/snapsync) instead of replaying every block.
//
// # Import session
//
// BeginImport binds an empty store (no head, no state) to one snapshot
// target — height, block hash, state root, the block's encoded header, the
// bucket count and the number of chunks — and records it under M import,
// with a progress bitmap (one bit per chunk) under M importbits. Each
// ImportChunk writes the chunk's state entries AND the bitmap with its bit
// set in one synced leveldb batch, so after a crash a chunk is either fully
// on disk and marked done, or absent and unmarked: the syncer reads
// Imported and fetches only the missing chunks. Open accepts a store with
// a session (its consistency check knows the state is partial) and the
// session resumes; CommitBlock and RootAfter refuse with ErrImporting.
//
// FinishImport recomputes every bucket hash over the stored state, checks
// that the Merkle root equals the session's root, and then in one batch
// writes the bucket cache, the snapshot block's header, hash index,
// certificate and epoch marker, the
// head (height, hash, root), the base (the same height), the M synced
// record, and deletes the session. The snapshot block has no body or
// events (they were never downloaded): Body and Events report it absent,
// like a pruned block, and Open's checks skip exactly that height (M
// synced). The next CommitBlock is height+1.
//
// AbortImport discards a session (the snapshot vanished from every peer,
// or a newer one is wanted): it first marks the session aborted and drops
// the bitmap in one batch, then deletes the state and bucket cache in
// batches, then the session. A crash in between leaves an aborted session
// that the next AbortImport or BeginImport finishes wiping.
//
//	M import           session: u8 version ‖ u8 flags (1 aborted, 2 epoch boundary) ‖
//	                   u64 height ‖ hash [32] ‖ root [32] ‖ u32 buckets ‖ u32 chunks ‖
//	                   u32 len ‖ header ‖ u32 len ‖ cert ‖ u32 len ‖ epoch data
//	M importbits       progress bitmap: bit i (byte i/8, bit i%8) set = chunk i imported
//	M synced           u64 height of the block the store was synced at (no body/events)

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"taobox/chain/types"
)

// MaxImportChunks bounds the chunks of one import session.
const MaxImportChunks = 1 << 20

// Errors of snapshot import (see also the package's other sentinels).
var (
	// ErrImporting: a snapshot import is in progress, so the store has no
	// head yet and refuses blocks; finish it (FinishImport) or discard it
	// (AbortImport).
	ErrImporting = errors.New("store: a snapshot import is in progress")

	// ErrNoImport: an import call was made on a store without a session.
	ErrNoImport = errors.New("store: no snapshot import in progress")

	// ErrImportTarget: BeginImport named a different snapshot than the
	// session in progress, or the store is not empty.
	ErrImportTarget = errors.New("store: the store cannot import this snapshot")

	// ErrImportRoot: after all chunks, the stored state does not hash to
	// the session's state root. The entries given to ImportChunk were not
	// what the snapshot holds; AbortImport and sync again.
	ErrImportRoot = errors.New("store: the imported state does not match the snapshot's state root")
)

var (
	keyImport     = []byte("Mimport")
	keyImportBits = []byte("Mimportbits")
	keySynced     = []byte("Msynced")
)

const (
	importVersion     = 2 // 2 added ImportTarget.Manifest; 1 still reads (Manifest zero)
	importFlagAborted = 1
	importFlagEpoch   = 2
	wipeBatchKeys     = 10000
)

// ImportTarget is the snapshot an import session fills. The caller takes
// Height, Hash, Root and Header from a header it has verified (by its
// finality certificate); Buckets and Chunks from the snapshot's manifest,
// whose bucket hashes it checked against Root.
type ImportTarget struct {
	Height uint64
	Hash   types.Hash // the block's hash
	Root   types.Hash // the state root after the block
	Header []byte     // the block's encoded header, 1 byte to MaxHeaderSize

	// Buckets is the snapshot's bucket count. An empty store adopts it
	// (rewriting its format record) unless Options.Buckets named another.
	Buckets int

	// Chunks is the number of chunks, 1 to MaxImportChunks.
	Chunks int

	// EpochBoundary keeps the block's header forever (see BlockCommit).
	EpochBoundary bool

	// Cert (the block's finality certificate) and EpochData (with
	// EpochBoundary: the next authority set) are stored as CommitBlock
	// stores them, so the synced node can serve the handoff proof of its
	// first block. Both are optional, each at most MaxBlobSize.
	Cert, EpochData []byte

	// Manifest is the hash of the snapshot manifest whose chunk list the
	// chunk indices of ImportChunk refer to (zero: not pinned). A session
	// resumes only with the same manifest: chunks imported under one
	// chunking are never counted under another.
	Manifest types.Hash
}

func (t ImportTarget) validate() error {
	switch {
	case len(t.Header) == 0 || len(t.Header) > MaxHeaderSize:
		return fmt.Errorf("%w: import target: header of %d bytes, want 1 to %d", ErrInvalid, len(t.Header), MaxHeaderSize)
	case t.Buckets <= 0 || t.Buckets > MaxBuckets || bits.OnesCount(uint(t.Buckets)) != 1:
		return fmt.Errorf("%w: import target: %d buckets, want a power of two up to %d", ErrInvalid, t.Buckets, MaxBuckets)
	case len(t.Cert) > MaxBlobSize || len(t.EpochData) > MaxBlobSize:
		return fmt.Errorf("%w: import target: certificate of %d bytes or epoch data of %d bytes, the limit is %d", ErrTooLarge, len(t.Cert), len(t.EpochData), MaxBlobSize)
	case t.Chunks <= 0 || t.Chunks > MaxImportChunks:
		return fmt.Errorf("%w: import target: %d chunks, want 1 to %d", ErrInvalid, t.Chunks, MaxImportChunks)
	}
	return nil
}

func (t ImportTarget) equal(o ImportTarget) bool {
	return t.Height == o.Height && t.Hash == o.Hash && t.Root == o.Root && bytes.Equal(t.Header, o.Header) &&
		bytes.Equal(t.Cert, o.Cert) && bytes.Equal(t.EpochData, o.EpochData) &&
		t.Buckets == o.Buckets && t.Chunks == o.Chunks && t.EpochBoundary == o.EpochBoundary &&
		t.Manifest == o.Manifest
}

// ImportEntry is one state entry of a snapshot chunk.
type ImportEntry struct {
	Bucket     uint32
	Key, Value []byte
}

// importSession is the in-memory copy of M import and M importbits.
type importSession struct {
	target  ImportTarget
	aborted bool
	bits    []byte
	done    int
}

// importState is what the store knows about imports; guarded by s.mu.
type importState struct {
	session   *importSession // nil: none in progress
	synced    uint64         // height of the snapshot block (no body/events)
	hasSynced bool
}

func (sess *importSession) encode() []byte {
	w := types.NewWriter(nil)
	w.U8(importVersion)
	var flags uint8
	if sess.aborted {
		flags |= importFlagAborted
	}
	if sess.target.EpochBoundary {
		flags |= importFlagEpoch
	}
	w.U8(flags)
	w.U64(sess.target.Height)
	w.Fixed(sess.target.Hash[:])
	w.Fixed(sess.target.Root[:])
	w.U32(uint32(sess.target.Buckets))
	w.U32(uint32(sess.target.Chunks))
	w.VarBytes(sess.target.Header)
	w.VarBytes(sess.target.Cert)
	w.VarBytes(sess.target.EpochData)
	w.Fixed(sess.target.Manifest[:])
	return w.Bytes()
}

func decodeSession(b []byte) (*importSession, error) {
	r := types.NewReader(b)
	sess := &importSession{}
	v := r.U8("version")
	if r.Err() == nil && (v < 1 || v > importVersion) {
		return nil, fmt.Errorf("version %d, this build reads 1 to %d", v, importVersion)
	}
	flags := r.U8("flags")
	sess.aborted = flags&importFlagAborted != 0
	sess.target.EpochBoundary = flags&importFlagEpoch != 0
	sess.target.Height = r.U64("height")
	r.Fixed("hash", sess.target.Hash[:])
	r.Fixed("root", sess.target.Root[:])
	sess.target.Buckets = int(r.U32("buckets"))
	sess.target.Chunks = int(r.U32("chunks"))
	sess.target.Header = r.VarBytes("header", MaxHeaderSize)
	sess.target.Cert = r.VarBytes("cert", MaxBlobSize)
	sess.target.EpochData = r.VarBytes("epoch data", MaxBlobSize)
	if v >= 2 {
		r.Fixed("manifest", sess.target.Manifest[:])
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	if flags&^(importFlagAborted|importFlagEpoch) != 0 {
		return nil, fmt.Errorf("unknown flags %#x", flags)
	}
	if !sess.aborted {
		if err := sess.target.validate(); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

func (sess *importSession) has(i int) bool { return sess.bits[i/8]&(1<<(i%8)) != 0 }

// loadImport reads the import records during Open. It reports true when a
// session is in progress: the store then has no head and a partial state,
// which check must not judge as a committed store.
func (s *Store) loadImport() (bool, error) {
	sv, ok, err := s.dbGet(s.db, keySynced)
	if err != nil {
		return false, err
	}
	if ok {
		if len(sv) != 8 {
			return false, s.corrupt("the synced record has %d bytes, want 8", len(sv))
		}
		s.imp.synced, s.imp.hasSynced = binary.BigEndian.Uint64(sv), true
	}
	v, ok, err := s.dbGet(s.db, keyImport)
	if err != nil || !ok {
		return false, err
	}
	sess, err := decodeSession(v)
	if err != nil {
		return false, s.corrupt("the import session record is malformed: %v", err)
	}
	if s.hasHead {
		return false, s.corrupt("an import session (snapshot at height %d) and a head (%d) both exist", sess.target.Height, s.head.height)
	}
	bv, ok, err := s.dbGet(s.db, keyImportBits)
	if err != nil {
		return false, err
	}
	switch {
	case sess.aborted:
		sess.bits = nil
	case !ok || len(bv) != (sess.target.Chunks+7)/8:
		return false, s.corrupt("the import progress bitmap is missing or has %d bytes for %d chunks", len(bv), sess.target.Chunks)
	case sess.target.Buckets != s.buckets:
		return false, s.corrupt("the import session has %d buckets, the store %d", sess.target.Buckets, s.buckets)
	default:
		sess.bits = bv
		for _, c := range bv {
			sess.done += bits.OnesCount8(c)
		}
	}
	s.imp.session = sess
	return true, nil
}

// bodylessLocked reports whether block h is the snapshot block this store
// was synced at, whose body and events were never stored. s.mu must be held
// (or the store not yet shared).
func (s *Store) bodylessLocked(h uint64) bool { return s.imp.hasSynced && s.imp.synced == h }

// importingErrLocked returns ErrImporting with advice when a session is in
// progress. s.mu must be held.
func (s *Store) importingErrLocked() error {
	if sess := s.imp.session; sess != nil {
		if sess.aborted {
			return fmt.Errorf("%w: an aborted import (snapshot at height %d) is half wiped; call AbortImport to finish wiping it", ErrImporting, sess.target.Height)
		}
		return fmt.Errorf("%w: snapshot at height %d, %d of %d chunks imported; finish the snapshot sync (or AbortImport) before committing blocks", ErrImporting, sess.target.Height, sess.done, sess.target.Chunks)
	}
	return nil
}

// openLocked reports whether the store is usable for import calls. s.mu
// must be held.
func (s *Store) openLocked() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("%w (%v)", ErrFailed, s.failed)
	}
	return nil
}

// BeginImport starts an import session for t, or resumes the one in
// progress when it is for the same target (resumed is then true, and
// Imported says which chunks are on disk). The store must be empty: no
// head and no state. A session for another target is ErrImportTarget: the
// caller decides whether to AbortImport it. An aborted session is wiped
// first. When it adopts the snapshot's bucket count, no other call may run
// concurrently (the node begins the import before it serves anything).
func (s *Store) BeginImport(t ImportTarget) (resumed bool, err error) {
	if err := t.validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		return false, err
	}
	if sess := s.imp.session; sess != nil {
		if sess.aborted {
			if err := s.wipeLocked(); err != nil {
				return false, err
			}
		} else if sess.target.equal(t) {
			return true, nil
		} else if sess.target.Height == t.Height && sess.target.Hash == t.Hash {
			return false, fmt.Errorf("%w: an import of the snapshot at height %d is in progress under another manifest or target (manifest %v, %d chunks; now %v, %d chunks); call AbortImport to discard it first", ErrImportTarget, t.Height, sess.target.Manifest, sess.target.Chunks, t.Manifest, t.Chunks)
		} else {
			return false, fmt.Errorf("%w: an import of the snapshot at height %d (block %v) is in progress, not of height %d (block %v); call AbortImport to discard it first", ErrImportTarget, sess.target.Height, sess.target.Hash, t.Height, t.Hash)
		}
	}
	if s.hasHead {
		return false, fmt.Errorf("%w: the store already holds blocks up to height %d; a snapshot imports only into an empty data dir", ErrImportTarget, s.head.height)
	}
	other := false
	for _, r := range []*util.Range{{Limit: []byte{pMeta}}, {Start: []byte{pMeta + 1}}} {
		it := s.db.NewIterator(r, nil)
		other = other || it.First()
		it.Release()
	}
	if other {
		return false, fmt.Errorf("%w: the data dir %s holds records besides metadata; a snapshot imports only into an empty data dir", ErrImportTarget, s.dir)
	}
	b := new(leveldb.Batch)
	if t.Buckets != s.buckets {
		if s.opt.Buckets != 0 {
			return false, fmt.Errorf("%w: the snapshot has %d state buckets but Options.Buckets is %d; leave Buckets zero to adopt the snapshot's", ErrImportTarget, t.Buckets, s.opt.Buckets)
		}
		b.Put(keyFormat, encodeFormat(t.Buckets))
	}
	sess := &importSession{target: t, bits: make([]byte, (t.Chunks+7)/8)}
	sess.target.Header = append([]byte{}, t.Header...)
	sess.target.Cert = append([]byte{}, t.Cert...)
	sess.target.EpochData = append([]byte{}, t.EpochData...)
	b.Put(keyImport, sess.encode())
	b.Put(keyImportBits, sess.bits)
	if err := s.db.Write(b, &opt.WriteOptions{Sync: true}); err != nil {
		s.failed = err
		return false, fmt.Errorf("store: writing the import session failed: %w; close and reopen the store", err)
	}
	if t.Buckets != s.buckets {
		s.buckets, s.shift = t.Buckets, bucketShift(t.Buckets)
		s.tree = buildTree(emptyLeaves(t.Buckets))
	}
	s.imp.session = sess
	return false, nil
}

func emptyLeaves(n int) []types.Hash {
	leaves := make([]types.Hash, n)
	for i := range leaves {
		leaves[i] = EmptyBucketHash
	}
	return leaves
}

// Importing returns the target of the session in progress; ok is false
// when there is none (or it was aborted and awaits wiping).
func (s *Store) Importing() (t ImportTarget, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sess := s.imp.session; sess != nil && !sess.aborted {
		t = sess.target
		t.Header = append([]byte{}, t.Header...)
		t.Cert = append([]byte{}, t.Cert...)
		t.EpochData = append([]byte{}, t.EpochData...)
		return t, true
	}
	return ImportTarget{}, false
}

// Imported returns, for each chunk of the session in progress, whether it
// is on disk (nil without a session).
func (s *Store) Imported() []bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess := s.imp.session
	if sess == nil || sess.aborted {
		return nil
	}
	out := make([]bool, sess.target.Chunks)
	for i := range out {
		out[i] = sess.has(i)
	}
	return out
}

// SyncedAt returns the height the store was synced at by snapshot (the
// lowest block it ever held, without body or events); ok is false for a
// store that started from genesis or is still importing.
func (s *Store) SyncedAt() (height uint64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.imp.synced, s.imp.hasSynced
}

// ImportChunk writes chunk index of the session: entries (sorted by bucket,
// then key, without duplicates, each in its bucket, every bucket within
// first..last) and the progress bit, in one synced batch. A chunk already
// imported is left as is (nil error). The caller verifies the entries
// against the snapshot (chain/snapsync does); the store checks their shape
// and FinishImport checks the whole state against the root. The caller may
// reuse entries once ImportChunk returns.
func (s *Store) ImportChunk(index int, first, last uint32, entries []ImportEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		return err
	}
	sess := s.imp.session
	switch {
	case sess == nil:
		return ErrNoImport
	case sess.aborted:
		return s.importingErrLocked()
	case index < 0 || index >= sess.target.Chunks:
		return fmt.Errorf("%w: chunk %d, the snapshot has %d", ErrInvalid, index, sess.target.Chunks)
	case first > last || last >= uint32(s.buckets):
		return fmt.Errorf("%w: chunk %d: bucket range %d..%d of %d buckets", ErrInvalid, index, first, last, s.buckets)
	case sess.has(index):
		return nil
	}
	if err := checkEntries(entries, first, last, s.shift); err != nil {
		return fmt.Errorf("chunk %d: %w", index, err)
	}
	b := new(leveldb.Batch)
	for _, e := range entries {
		b.Put(stateKey(e.Bucket, e.Key), e.Value)
	}
	nb := append([]byte{}, sess.bits...)
	nb[index/8] |= 1 << (index % 8)
	b.Put(keyImportBits, nb)
	if err := s.db.Write(b, &opt.WriteOptions{Sync: true}); err != nil {
		s.failed = err
		return fmt.Errorf("store: writing snapshot chunk %d failed: %w; close and reopen the store, the sync resumes", index, err)
	}
	sess.bits = nb
	sess.done++
	return nil
}

// checkEntries checks the shape ImportChunk requires.
func checkEntries(entries []ImportEntry, first, last uint32, shift uint) error {
	for i, e := range entries {
		switch {
		case len(e.Key) == 0 || len(e.Key) > MaxKeySize:
			return fmt.Errorf("%w: entry %d: key of %d bytes, want 1 to %d", ErrInvalid, i, len(e.Key), MaxKeySize)
		case e.Value == nil || len(e.Value) > MaxValueSize:
			return fmt.Errorf("%w: entry %d (key %x): value missing or over %d bytes", ErrInvalid, i, e.Key, MaxValueSize)
		case e.Bucket < first || e.Bucket > last:
			return fmt.Errorf("%w: entry %d: bucket %d outside the chunk's range %d..%d", ErrInvalid, i, e.Bucket, first, last)
		case bucketOfShift(e.Key, shift) != e.Bucket:
			return fmt.Errorf("%w: entry %d: key %x is not in bucket %d", ErrInvalid, i, e.Key, e.Bucket)
		}
		if i > 0 {
			p := entries[i-1]
			if p.Bucket > e.Bucket || p.Bucket == e.Bucket && bytes.Compare(p.Key, e.Key) >= 0 {
				return fmt.Errorf("%w: entry %d is not after entry %d in (bucket, key) order", ErrInvalid, i, i-1)
			}
		}
	}
	return nil
}

// FinishImport completes the session: every chunk must be imported; it
// rehashes the whole stored state (about a second per million keys),
// checks the root against the session's (ErrImportRoot otherwise, and the
// session stays), then makes the snapshot block the head and base in one
// synced batch (see the file comment) and ends the session.
func (s *Store) FinishImport() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		return err
	}
	sess := s.imp.session
	switch {
	case sess == nil:
		return ErrNoImport
	case sess.aborted:
		return s.importingErrLocked()
	case sess.done != sess.target.Chunks:
		return fmt.Errorf("%w: %d of %d chunks imported; import the rest first", ErrInvalid, sess.done, sess.target.Chunks)
	}
	t := sess.target
	leaves, _, err := hashAll(s.db, s.buckets, s.shift, s.dir)
	if err != nil {
		return err
	}
	tree := buildTree(leaves)
	if tree[1] != t.Root {
		return fmt.Errorf("%w: the stored state hashes to %v, the snapshot at height %d has %v; call AbortImport and sync again", ErrImportRoot, tree[1], t.Height, t.Root)
	}
	b := new(leveldb.Batch)
	for i, l := range leaves {
		if l != EmptyBucketHash {
			b.Put(bucketKey(uint32(i)), l[:])
		}
	}
	hv := make([]byte, 0, 32+len(t.Header))
	hv = append(append(hv, t.Hash[:]...), t.Header...)
	b.Put(heightKey(pHeader, t.Height), hv)
	b.Put(hashKey(t.Hash), encodeU64(t.Height))
	if len(t.Cert) > 0 {
		b.Put(heightKey(pCert, t.Height), t.Cert)
	}
	if t.EpochBoundary {
		b.Put(heightKey(pEpoch, t.Height), t.EpochData)
	}
	head := headRecord{height: t.Height, hash: t.Hash, root: t.Root}
	b.Put(keyHead, head.encode())
	b.Put(keyBase, encodeU64(t.Height))
	b.Put(keySynced, encodeU64(t.Height))
	b.Delete(keyImport)
	b.Delete(keyImportBits)
	if err := s.db.Write(b, &opt.WriteOptions{Sync: true}); err != nil {
		s.failed = err
		return fmt.Errorf("store: writing the end of the snapshot import failed: %w; close and reopen the store", err)
	}
	s.tree = tree
	s.head, s.hasHead, s.base = head, true, t.Height
	s.imp = importState{synced: t.Height, hasSynced: true}
	s.version++
	return nil
}

// AbortImport discards the session in progress and the state imported so
// far, leaving an empty store (see the file comment for crash safety).
// Without a session it does nothing.
func (s *Store) AbortImport() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		return err
	}
	if s.imp.session == nil {
		return nil
	}
	return s.wipeLocked()
}

// wipeLocked marks the session aborted, deletes the state and bucket cache
// in batches, then the session. s.mu must be held.
func (s *Store) wipeLocked() error {
	sess := s.imp.session
	fail := func(err error) error {
		s.failed = err
		return fmt.Errorf("store: wiping an aborted import failed: %w; close and reopen the store, then call AbortImport again", err)
	}
	if !sess.aborted {
		sess.aborted = true
		b := new(leveldb.Batch)
		b.Put(keyImport, sess.encode())
		b.Delete(keyImportBits)
		if err := s.db.Write(b, &opt.WriteOptions{Sync: true}); err != nil {
			return fail(err)
		}
		sess.bits, sess.done = nil, 0
	}
	for _, p := range []byte{pState, pBucket} {
		for {
			it := s.db.NewIterator(util.BytesPrefix([]byte{p}), nil)
			b := new(leveldb.Batch)
			for b.Len() < wipeBatchKeys && it.Next() {
				b.Delete(append([]byte{}, it.Key()...))
			}
			it.Release()
			if err := it.Error(); err != nil {
				return s.readErr("scanning the state to wipe", err)
			}
			if b.Len() == 0 {
				break
			}
			if err := s.db.Write(b, nil); err != nil {
				return fail(err)
			}
		}
	}
	if err := s.db.Delete(keyImport, &opt.WriteOptions{Sync: true}); err != nil {
		return fail(err)
	}
	s.imp.session = nil
	s.tree = buildTree(emptyLeaves(s.buckets))
	return nil
}
