package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"taobox/chain/types"
)

// Size limits of what CommitBlock accepts.
const (
	MaxKeySize    = 1 << 10  // a state key: 1 to 1024 bytes
	MaxValueSize  = 4 << 20  // a state value: up to 4 MiB
	MaxHeaderSize = 1 << 20  // an encoded header: 1 byte to 1 MiB
	MaxBlobSize   = 64 << 20 // an encoded body or events list: up to 64 MiB
)

// maxPrunePerCommit bounds the heights one commit prunes (see Pruning in the
// package doc).
const maxPrunePerCommit = 256

// sampleBuckets is how many random buckets Open rehashes without FullCheck.
const sampleBuckets = 64

// KV is one state write. A nil Value deletes Key; a non-nil empty Value
// stores an empty value (Get then reports it found).
type KV struct{ Key, Value []byte }

// Reader reads state. Get returns the value of key and whether it exists;
// the caller owns the returned slice.
type Reader interface {
	Get(key []byte) ([]byte, bool, error)
}

var (
	_ Reader = (*Store)(nil)
	_ Reader = (*Snapshot)(nil)
)

// BlockCommit is one block as CommitBlock writes it.
type BlockCommit struct {
	Height uint64
	Hash   types.Hash

	// Header, Body and Events are encoded by chain/types; the store keeps
	// them as opaque bytes. Header must not be empty.
	Header, Body, Events []byte

	// Changes are the block's state writes, in any order. The store sorts
	// them and, when a key appears more than once, keeps the last write.
	Changes []KV

	// EpochBoundary keeps this block's header (and hash index entry)
	// and its certificate forever; its body and events are pruned like any
	// other block's.
	EpochBoundary bool

	// Cert is the block's encoded finality certificate (chain/consensus
	// EncodeCertificate); empty stores none (genesis). It is pruned with
	// the body, except at an epoch boundary, where it is kept forever.
	Cert []byte

	// EpochData is stored as the value of the epoch-boundary marker (only
	// with EpochBoundary): the node keeps the next authority set there, so
	// the boundary's header, certificate and next set form the handoff
	// proof a syncing node follows.
	EpochData []byte
}

// Store is the chain's goleveldb store. Its methods are safe for concurrent
// use; CommitBlock calls are serialised, and reads never see part of a
// block.
type Store struct {
	dir     string
	db      *leveldb.DB
	opt     Options
	wo      *opt.WriteOptions
	buckets int
	shift   uint

	mu      sync.RWMutex // guards the fields below
	tree    []types.Hash // full Merkle tree of the committed state, see buildTree
	head    headRecord
	hasHead bool
	base    uint64
	closed  bool
	failed  error  // the write error that broke the store, if any
	version uint64 // commits since Open

	imp importState // snapshot import session and synced height (import.go)

	planMu   sync.Mutex  // guards lastPlan (RootAfter holds s.mu only for reading)
	lastPlan *cachedPlan // RootAfter's last result, for CommitBlock
}

// Open opens the store in dir, creating the directory and an empty store if
// needed, and checks its consistency (see Crash safety in the package doc).
// An empty store has no head; its first CommitBlock must be height 0.
func Open(dir string, o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	if err := clearInterruptedCreate(dir); err != nil {
		return nil, err
	}
	lo := &opt.Options{
		BlockCacheCapacity:     o.CacheMiB / 2 * opt.MiB,
		WriteBuffer:            o.CacheMiB / 4 * opt.MiB,
		Filter:                 filter.NewBloomFilter(10),
		DisableSeeksCompaction: true,
	}
	var db *leveldb.DB
	if o.Recover {
		db, err = leveldb.RecoverFile(dir, lo)
	} else {
		db, err = leveldb.OpenFile(dir, lo)
	}
	if err != nil {
		switch {
		case lerrors.IsCorrupted(err):
			return nil, fmt.Errorf("%w: data dir %s: the leveldb files are damaged (%v); retry with Options.Recover to rebuild leveldb's index from its table files, or move the directory aside and sync again", ErrCorrupt, dir, err)
		case errors.Is(err, syscall.EAGAIN):
			return nil, fmt.Errorf("store: data dir %s is in use by another process (its LOCK file is held); stop that process first", dir)
		}
		return nil, fmt.Errorf("store: open data dir %s: %w", dir, err)
	}
	s := &Store{dir: dir, db: db, opt: o, wo: &opt.WriteOptions{Sync: !o.NoSync}}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// clearInterruptedCreate removes the files of a leveldb database whose
// creation was cut short (a killed process, a full disk): goleveldb writes
// CURRENT.<n>, then renames it to CURRENT, and never deletes CURRENT after
// that, so a directory with neither CURRENT nor CURRENT.bak has never
// completed an Open, and no write to it was ever acknowledged. Such a
// directory holds only a manifest, a pending CURRENT.<n> (possibly empty),
// the LOG and LOCK; anything else (a table file, an unknown file) means it is
// not that case, and it is left alone for Open to judge.
func clearInterruptedCreate(dir string) error {
	// Hold leveldb's own lock while looking, so a process that is creating
	// the database right now is never mistaken for one that died doing it.
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("store: data dir %s: %w", dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // held by another process: Open reports it
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read data dir: %w", err)
	}
	var leftovers []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == "CURRENT" || n == "CURRENT.bak":
			return nil // created: leveldb decides
		case n == "LOCK" || n == "LOG" || n == "LOG.old":
		case strings.HasPrefix(n, "CURRENT.") || strings.HasPrefix(n, "MANIFEST-"):
			leftovers = append(leftovers, n)
		case strings.HasSuffix(n, ".log"):
			if info, err := e.Info(); err != nil || info.Size() != 0 {
				return nil // a journal with data: not a bare creation
			}
			leftovers = append(leftovers, n)
		default:
			return nil
		}
	}
	for _, n := range leftovers {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("store: data dir %s: remove %s left by an interrupted creation: %w", dir, n, err)
		}
	}
	return nil
}

// load reads the format, head and bucket cache and checks them.
func (s *Store) load() error {
	f, ok, err := s.dbGet(s.db, keyFormat)
	if err != nil {
		return err
	}
	if !ok {
		it := s.db.NewIterator(nil, nil)
		nonEmpty := it.First()
		it.Release()
		if nonEmpty {
			return fmt.Errorf("%w: data dir %s holds a leveldb database without a taobox format record; point the store at an empty or taobox directory", ErrInvalid, s.dir)
		}
		s.buckets = s.opt.Buckets
		if s.buckets == 0 {
			s.buckets = DefaultBuckets
		}
		if err := s.db.Put(keyFormat, encodeFormat(s.buckets), &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("store: data dir %s: writing the format record: %w", s.dir, err)
		}
	} else {
		if len(f) != 8 {
			return s.corrupt("the format record has %d bytes, want 8", len(f))
		}
		v, n := binary.BigEndian.Uint32(f), binary.BigEndian.Uint32(f[4:])
		switch {
		case v > formatVersion:
			return fmt.Errorf("%w: data dir %s has format version %d, this build reads version %d; run a newer taobox, or move the directory aside to start over", ErrNewerFormat, s.dir, v, formatVersion)
		case v == 0 || n == 0 || n > MaxBuckets || bits.OnesCount32(n) != 1:
			return s.corrupt("the format record (version %d, %d buckets) is invalid", v, n)
		case s.opt.Buckets != 0 && s.opt.Buckets != int(n):
			return fmt.Errorf("%w: data dir %s uses %d state buckets but Options.Buckets is %d; the count is fixed when a store is created (leave Buckets zero to use the recorded one)", ErrInvalid, s.dir, n, s.opt.Buckets)
		}
		s.buckets = int(n)
	}
	s.shift = bucketShift(s.buckets)

	hv, ok, err := s.dbGet(s.db, keyHead)
	if err != nil {
		return err
	}
	if ok {
		if s.head, ok = decodeHead(hv); !ok {
			return s.corrupt("the head record has %d bytes, want 72", len(hv))
		}
		s.hasHead = true
		bv, ok, err := s.dbGet(s.db, keyBase)
		if err != nil {
			return err
		}
		if !ok || len(bv) != 8 {
			return s.corrupt("the base record is missing or malformed")
		}
		s.base = binary.BigEndian.Uint64(bv)
	}

	leaves := make([]types.Hash, s.buckets)
	for i := range leaves {
		leaves[i] = EmptyBucketHash
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBucket}), nil)
	for it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 5 || len(v) != 32 || binary.BigEndian.Uint32(k[1:]) >= uint32(s.buckets) {
			it.Release()
			return s.corrupt("bucket cache entry %x (%d-byte value) is malformed", k, len(v))
		}
		copy(leaves[binary.BigEndian.Uint32(k[1:])][:], v)
	}
	it.Release()
	if err := it.Error(); err != nil {
		return s.readErr("reading the bucket cache", err)
	}
	s.tree = buildTree(leaves)
	return s.check()
}

// check verifies the invariants that every committed batch keeps. It runs
// in Open, before the store is shared.
func (s *Store) check() error {
	if importing, err := s.loadImport(); importing || err != nil {
		return err // a partial state under an import session (import.go)
	}
	if !s.hasHead {
		it := s.db.NewIterator(nil, nil)
		defer it.Release()
		for it.Next() {
			if it.Key()[0] != pMeta {
				return s.corrupt("there is no head record, yet key %x exists", it.Key())
			}
		}
		if err := it.Error(); err != nil {
			return s.readErr("checking an empty store", err)
		}
		return nil
	}
	h := s.head.height
	hv, ok, err := s.dbGet(s.db, heightKey(pHeader, h))
	if err != nil {
		return err
	}
	if !ok || len(hv) <= 32 || types.Hash(hv[:32]) != s.head.hash {
		return s.corrupt("the header of head block %d is missing or does not carry the head's hash", h)
	}
	for _, p := range []byte{pBody, pEvents} {
		if _, ok, err := s.dbGet(s.db, heightKey(p, h)); err != nil {
			return err
		} else if !ok && !s.bodylessLocked(h) {
			return s.corrupt("the %s of head block %d is missing", recordName(p), h)
		}
	}
	for _, p := range []byte{pHeader, pBody, pEvents, pEpoch, pCert} {
		it := s.db.NewIterator(&util.Range{Start: heightKey(p, h+1), Limit: []byte{p + 1}}, nil)
		above := it.First()
		it.Release()
		if above {
			return s.corrupt("a %s above head block %d exists", recordName(p), h)
		}
	}
	if s.base > h {
		return s.corrupt("base %d is above head %d", s.base, h)
	}
	if _, ok, err := s.dbGet(s.db, heightKey(pBody, s.base)); err != nil {
		return err
	} else if !ok && !s.bodylessLocked(s.base) {
		return s.corrupt("the body of base block %d is missing", s.base)
	}
	if s.tree[1] != s.head.root {
		return s.corrupt("the bucket cache gives state root %v, the head records %v", s.tree[1], s.head.root)
	}
	if s.opt.FullCheck {
		return s.verify(s.db, s.tree[1])
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pState}), nil)
	defer it.Release()
	var hs bucketHasher
	for i := range min(sampleBuckets, s.buckets) {
		b := i // a small store: every bucket
		if s.buckets > sampleBuckets {
			b = rand.IntN(s.buckets)
		}
		got, _, err := rehashBucket(&hs, it, uint32(b), nil)
		if err != nil {
			return s.readErr("rehashing a bucket", err)
		}
		if want := s.tree[s.buckets+b]; got != want {
			return s.corrupt("bucket %d rehashes to %v, its cached hash is %v", b, got, want)
		}
	}
	return nil
}

// verify rehashes all of the state read through r and compares it with the
// cached bucket hashes and with root.
func (s *Store) verify(r dbReader, root types.Hash) error {
	leaves, _, err := hashAll(r, s.buckets, s.shift, s.dir)
	if err != nil {
		return err
	}
	it := r.NewIterator(util.BytesPrefix([]byte{pBucket}), nil)
	defer it.Release()
	cached := make([]types.Hash, s.buckets)
	for i := range cached {
		cached[i] = EmptyBucketHash
	}
	for it.Next() {
		if len(it.Key()) == 5 && len(it.Value()) == 32 {
			copy(cached[binary.BigEndian.Uint32(it.Key()[1:])%uint32(s.buckets)][:], it.Value())
		}
	}
	if err := it.Error(); err != nil {
		return s.readErr("reading the bucket cache", err)
	}
	for b := range leaves {
		if leaves[b] != cached[b] {
			return s.corrupt("bucket %d rehashes to %v, its cached hash is %v", b, leaves[b], cached[b])
		}
	}
	if got := MerkleRoot(leaves); got != root {
		return s.corrupt("the state rehashes to root %v, the committed root is %v", got, root)
	}
	return nil
}

func recordName(p byte) string {
	switch p {
	case pHeader:
		return "header"
	case pBody:
		return "body"
	case pEvents:
		return "events"
	case pEpoch:
		return "epoch marker"
	case pCert:
		return "certificate"
	}
	return string(p)
}

// corrupt builds the ErrCorrupt error for a failed consistency check.
func (s *Store) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: data dir %s: %s. The store does not repair itself: move the directory aside (keep it for a bug report) and sync again from peers or a snapshot", ErrCorrupt, s.dir, fmt.Sprintf(format, args...))
}

// readErr wraps a leveldb read or iteration error.
func (s *Store) readErr(what string, err error) error {
	switch {
	case errors.Is(err, leveldb.ErrClosed), errors.Is(err, leveldb.ErrSnapshotReleased), errors.Is(err, leveldb.ErrIterReleased):
		return ErrClosed
	case lerrors.IsCorrupted(err):
		return fmt.Errorf("%w: data dir %s: %s: %v; close the store and reopen it with Options.Recover, or move the directory aside and sync again", ErrCorrupt, s.dir, what, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// dbReader is what a leveldb DB and Snapshot both offer.
type dbReader interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	NewIterator(slice *util.Range, ro *opt.ReadOptions) iterator.Iterator
}

// dbGet reads key through r; the caller owns the result, which is non-nil
// when found.
func (s *Store) dbGet(r dbReader, key []byte) ([]byte, bool, error) {
	v, err := r.Get(key, nil)
	if err == nil {
		if v == nil {
			v = []byte{}
		}
		return v, true, nil
	}
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	return nil, false, s.readErr(fmt.Sprintf("reading key %x", key), err)
}

// Buckets returns the number of state-root buckets.
func (s *Store) Buckets() int { return s.buckets }

// Get returns the current (committed) value of a state key.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, false, fmt.Errorf("%w: state keys have 1 to %d bytes, got %d", ErrInvalid, MaxKeySize, len(key))
	}
	return s.dbGet(s.db, stateKey(bucketOfShift(key, s.shift), key))
}

// Head returns the height and hash of the last committed block; ok is false
// on an empty store.
func (s *Store) Head() (height uint64, hash types.Hash, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head.height, s.head.hash, s.hasHead
}

// StateRoot returns the root of the committed state (the root of the empty
// state on an empty store).
func (s *Store) StateRoot() types.Hash {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree[1]
}

// Base returns the lowest height whose body is still kept (0 until pruning
// starts).
func (s *Store) Base() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.base
}

// usableLocked reports why the store cannot be used, if it cannot. s.mu
// must be held.
func (s *Store) usableLocked() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("%w (%v)", ErrFailed, s.failed)
	}
	return s.importingErrLocked()
}

// planLocked computes the plan of changes over the committed state. s.mu
// must be held (read or write).
func (s *Store) planLocked(changes []KV) (*plan, error) {
	newIter := func() iterator.Iterator { return s.db.NewIterator(util.BytesPrefix([]byte{pState}), nil) }
	p, err := planChanges(changes, s.shift, newIter, s.tree)
	if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
		return nil, s.readErr("reading the state", err)
	}
	return p, err
}

// RootAfter returns the state root that the committed state would have
// after changes (with CommitBlock's rules: any order, the last write of a
// key wins), without writing anything. The proposer puts it in the header
// of the block it then commits with the same changes; a follower compares
// it with the header before committing.
//
// RootAfter remembers its last result: a CommitBlock with equal changes
// (compared by content) and no commit in between reuses it instead of
// rehashing the touched buckets again.
func (s *Store) RootAfter(changes []KV) (types.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return types.Hash{}, err
	}
	own := cloneKVs(changes) // the plan must not alias the caller's slices
	p, err := s.planLocked(own)
	if err != nil {
		return types.Hash{}, err
	}
	s.planMu.Lock()
	s.lastPlan = &cachedPlan{version: s.version, kvs: own, plan: p}
	s.planMu.Unlock()
	return p.root, nil
}

// cachedPlan is RootAfter's last result.
type cachedPlan struct {
	version uint64 // s.version it was computed at
	kvs     []KV   // a private copy of the changes it was computed for
	plan    *plan
}

// takePlanLocked returns the cached plan if it was computed for changes at
// the current version, and clears the cache. s.mu must be held for writing.
func (s *Store) takePlanLocked(changes []KV) *plan {
	s.planMu.Lock()
	cp := s.lastPlan
	s.lastPlan = nil
	s.planMu.Unlock()
	if cp == nil || cp.version != s.version || len(cp.kvs) != len(changes) {
		return nil
	}
	for i, kv := range changes {
		c := cp.kvs[i]
		if (kv.Value == nil) != (c.Value == nil) || !bytes.Equal(kv.Key, c.Key) || !bytes.Equal(kv.Value, c.Value) {
			return nil
		}
	}
	return cp.plan
}

// cloneKVs copies kvs into one allocation, keeping nil values nil.
func cloneKVs(kvs []KV) []KV {
	n := 0
	for _, kv := range kvs {
		n += len(kv.Key) + len(kv.Value)
	}
	buf := make([]byte, 0, n)
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		k := len(buf)
		buf = append(buf, kv.Key...)
		out[i].Key = buf[k:len(buf):len(buf)]
		if kv.Value != nil {
			v := len(buf)
			buf = append(buf, kv.Value...)
			out[i].Value = buf[v:len(buf):len(buf)]
		}
	}
	return out
}

// CommitBlock writes block c in one atomic, fsynced (unless NoSync) leveldb
// batch: header, hash index, body, events, epoch marker, state changes,
// updated bucket hashes, the head record and the pruning of old blocks. It
// returns the new state root, which equals RootAfter(c.Changes) called just
// before. c.Height must be the head's height + 1, or 0 on an empty store.
// The caller may reuse c's slices once CommitBlock returns.
//
// When validation fails nothing is written and the store stays usable.
// When the write itself fails, the block may or may not be on disk; the
// store then refuses further commits (ErrFailed) until it is reopened.
func (s *Store) CommitBlock(c BlockCommit) (types.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return types.Hash{}, err
	}
	h := c.Height
	switch {
	case !s.hasHead && h != 0:
		return types.Hash{}, fmt.Errorf("%w: the store is empty, so the first block must be genesis (height 0), got %d", ErrHeight, h)
	case s.hasHead && h != s.head.height+1:
		return types.Hash{}, fmt.Errorf("%w: got block %d, the head is %d, so the next block is %d", ErrHeight, h, s.head.height, s.head.height+1)
	case len(c.Header) == 0:
		return types.Hash{}, fmt.Errorf("%w: block %d has an empty header", ErrInvalid, h)
	case len(c.Header) > MaxHeaderSize:
		return types.Hash{}, fmt.Errorf("%w: block %d: header of %d bytes, the limit is %d", ErrTooLarge, h, len(c.Header), MaxHeaderSize)
	case len(c.Body) > MaxBlobSize || len(c.Events) > MaxBlobSize || len(c.Cert) > MaxBlobSize || len(c.EpochData) > MaxBlobSize:
		return types.Hash{}, fmt.Errorf("%w: block %d: body of %d bytes or events of %d bytes, the limit is %d", ErrTooLarge, h, len(c.Body), len(c.Events), MaxBlobSize)
	}
	p := s.takePlanLocked(c.Changes)
	if p == nil {
		var err error
		if p, err = s.planLocked(c.Changes); err != nil {
			return types.Hash{}, fmt.Errorf("block %d: %w", h, err)
		}
	}

	b := new(leveldb.Batch)
	for _, ch := range p.changes {
		if ch.value == nil {
			b.Delete(stateKey(ch.bucket, ch.key))
		} else {
			b.Put(stateKey(ch.bucket, ch.key), ch.value)
		}
	}
	for _, l := range p.leaves {
		if l.empty {
			b.Delete(bucketKey(l.bucket))
		} else {
			b.Put(bucketKey(l.bucket), l.hash[:])
		}
	}
	hv := make([]byte, 0, 32+len(c.Header))
	hv = append(append(hv, c.Hash[:]...), c.Header...)
	b.Put(heightKey(pHeader, h), hv)
	b.Put(hashKey(c.Hash), encodeU64(h))
	b.Put(heightKey(pBody, h), c.Body)
	b.Put(heightKey(pEvents, h), c.Events)
	if len(c.Cert) > 0 {
		b.Put(heightKey(pCert, h), c.Cert)
	}
	if c.EpochBoundary {
		b.Put(heightKey(pEpoch, h), c.EpochData)
	}
	base, err := s.pruneLocked(b, h)
	if err != nil {
		return types.Hash{}, err
	}
	head := headRecord{height: h, hash: c.Hash, root: p.root}
	b.Put(keyHead, head.encode())
	b.Put(keyBase, encodeU64(base))

	if err := s.db.Write(b, s.wo); err != nil {
		s.failed = err
		return types.Hash{}, fmt.Errorf("store: writing block %d failed: %w; it may or may not be on disk, so close and reopen the store (Open re-checks the data)", h, err)
	}
	for _, n := range p.nodes {
		s.tree[n.idx] = n.hash
	}
	s.head, s.hasHead, s.base = head, true, base
	s.version++
	return p.root, nil
}

// pruneLocked adds to b the deletes that committing height h makes, and
// returns the new base. s.mu must be held.
func (s *Store) pruneLocked(b *leveldb.Batch, h uint64) (uint64, error) {
	keep := s.opt.KeepBlocks
	if keep == KeepAll || h+1 <= keep {
		return s.base, nil
	}
	target := h + 1 - keep // heights below target go
	base := s.base
	for ; base < target && base < s.base+maxPrunePerCommit; base++ {
		hv, ok, err := s.dbGet(s.db, heightKey(pHeader, base))
		if err != nil {
			return 0, err
		}
		epoch, err := s.db.Has(heightKey(pEpoch, base), nil)
		if err != nil {
			return 0, s.readErr("reading an epoch marker", err)
		}
		b.Delete(heightKey(pBody, base))
		b.Delete(heightKey(pEvents, base))
		if !epoch {
			b.Delete(heightKey(pCert, base))
			b.Delete(heightKey(pHeader, base))
			if ok && len(hv) >= 32 {
				b.Delete(hashKey(types.Hash(hv[:32])))
			}
		}
	}
	return base, nil
}

func (s *Store) blockRecord(p byte, h uint64) ([]byte, bool, error) {
	return s.dbGet(s.db, heightKey(p, h))
}

// Header returns the encoded header of block h; ok is false when the block
// is above the head or pruned (epoch-boundary headers are never pruned).
func (s *Store) Header(h uint64) ([]byte, bool, error) {
	v, ok, err := s.blockRecord(pHeader, h)
	if !ok || err != nil {
		return nil, ok, err
	}
	if len(v) < 32 {
		return nil, false, s.corrupt("the header record of block %d has %d bytes", h, len(v))
	}
	return v[32:], true, nil
}

// Hash returns the hash of block h, under the same rules as Header.
func (s *Store) Hash(h uint64) (types.Hash, bool, error) {
	v, ok, err := s.blockRecord(pHeader, h)
	if !ok || err != nil {
		return types.Hash{}, ok, err
	}
	if len(v) < 32 {
		return types.Hash{}, false, s.corrupt("the header record of block %d has %d bytes", h, len(v))
	}
	return types.Hash(v[:32]), true, nil
}

// HeightOf returns the height of the block with hash, if its header is kept.
func (s *Store) HeightOf(hash types.Hash) (uint64, bool, error) {
	v, ok, err := s.dbGet(s.db, hashKey(hash))
	if !ok || err != nil {
		return 0, ok, err
	}
	if len(v) != 8 {
		return 0, false, s.corrupt("the hash index entry of %v has %d bytes", hash, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Body returns the encoded body of block h; ok is false when the block is
// above the head or below Base.
func (s *Store) Body(h uint64) ([]byte, bool, error) { return s.blockRecord(pBody, h) }

// Events returns the encoded events of block h, under the same rules as Body.
func (s *Store) Events(h uint64) ([]byte, bool, error) { return s.blockRecord(pEvents, h) }

// Cert returns the encoded finality certificate of block h; ok is false
// when none was stored, the block is above the head, or it was pruned with
// the body (an epoch boundary's certificate is kept forever).
func (s *Store) Cert(h uint64) ([]byte, bool, error) { return s.blockRecord(pCert, h) }

// EpochData returns the value stored with the epoch-boundary marker of
// block h (BlockCommit.EpochData); ok is false when h is not an epoch
// boundary. The value may be empty.
func (s *Store) EpochData(h uint64) ([]byte, bool, error) { return s.blockRecord(pEpoch, h) }

// PutHardState stores the consensus hard state b (opaque bytes, at most
// MaxBlobSize) in one fsynced write, whatever Options.NoSync says: a
// validator must persist it before any message it signed leaves.
func (s *Store) PutHardState(b []byte) error {
	if len(b) > MaxBlobSize {
		return fmt.Errorf("%w: hard state of %d bytes, the limit is %d", ErrTooLarge, len(b), MaxBlobSize)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if err := s.db.Put(keyHardState, b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("store: writing the consensus hard state: %w", err)
	}
	return nil
}

// HardState returns what PutHardState stored last; ok is false if nothing.
func (s *Store) HardState() ([]byte, bool, error) { return s.dbGet(s.db, keyHardState) }

// EpochBoundaries returns up to max heights, ascending from from, of blocks
// committed with EpochBoundary (their headers are kept forever).
func (s *Store) EpochBoundaries(from uint64, max int) ([]uint64, error) {
	it := s.db.NewIterator(&util.Range{Start: heightKey(pEpoch, from), Limit: []byte{pEpoch + 1}}, nil)
	defer it.Release()
	var out []uint64
	for len(out) < max && it.Next() {
		if len(it.Key()) != 9 {
			return nil, s.corrupt("epoch marker key %x is malformed", it.Key())
		}
		out = append(out, binary.BigEndian.Uint64(it.Key()[1:]))
	}
	if err := it.Error(); err != nil {
		return nil, s.readErr("listing epoch boundaries", err)
	}
	return out, nil
}

// CompactPruned compacts the key ranges that pruning deleted from, so their
// tombstones stop costing space and scan time. It can take seconds; the node
// calls it rarely (daily), concurrently with everything else.
func (s *Store) CompactPruned() error {
	base := s.Base()
	for _, r := range []util.Range{
		{Start: heightKey(pHeader, 0), Limit: heightKey(pHeader, base)},
		{Start: heightKey(pBody, 0), Limit: heightKey(pBody, base)},
		{Start: heightKey(pEvents, 0), Limit: heightKey(pEvents, base)},
		{Start: heightKey(pCert, 0), Limit: heightKey(pCert, base)},
		*util.BytesPrefix([]byte{pHashIdx}),
	} {
		if err := s.db.CompactRange(r); err != nil {
			return s.readErr("compacting pruned ranges", err)
		}
	}
	return nil
}

// Verify rehashes the whole committed state (about a second per million
// keys) and checks it against the cached bucket hashes and the state root.
// It reads a snapshot, so commits continue meanwhile. A failure is
// ErrCorrupt.
func (s *Store) Verify() error {
	snap, err := s.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Release()
	return s.verify(snap.snap, snap.root)
}

// Close closes the store. Release snapshots first. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close data dir %s: %w", s.dir, err)
	}
	return nil
}
