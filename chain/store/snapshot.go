package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"taobox/chain/types"
)

// Snapshot is a consistent read view of the committed state as of one
// block: later commits do not change what it reads. It pins old versions in
// leveldb (compaction cannot drop them), so release it soon — minutes, not
// hours. Its methods are safe for concurrent use.
type Snapshot struct {
	s       *Store
	snap    *leveldb.Snapshot
	head    headRecord
	hasHead bool
	root    types.Hash
	once    sync.Once
}

// Snapshot returns a read view of the committed state; call Release when
// done.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return nil, s.readErr("taking a snapshot", err)
	}
	return &Snapshot{s: s, snap: snap, head: s.head, hasHead: s.hasHead, root: s.tree[1]}, nil
}

// Get returns the value of a state key as of the snapshot.
func (sn *Snapshot) Get(key []byte) ([]byte, bool, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, false, fmt.Errorf("%w: state keys have 1 to %d bytes, got %d", ErrInvalid, MaxKeySize, len(key))
	}
	return sn.s.dbGet(sn.snap, stateKey(bucketOfShift(key, sn.s.shift), key))
}

// Head returns the block the snapshot was taken at; ok is false for a
// snapshot of an empty store.
func (sn *Snapshot) Head() (height uint64, hash types.Hash, ok bool) {
	return sn.head.height, sn.head.hash, sn.hasHead
}

// Root returns the state root as of the snapshot.
func (sn *Snapshot) Root() types.Hash { return sn.root }

// Range calls fn for every state entry of buckets first..last (inclusive),
// in bucket order and then key order, until fn returns an error, which
// Range returns. key and value are valid only during the call. Snapshot
// sync exports chunks of bucket ranges with it.
func (sn *Snapshot) Range(first, last uint32, fn func(bucket uint32, key, value []byte) error) error {
	if last >= uint32(sn.s.buckets) {
		last = uint32(sn.s.buckets) - 1
	}
	if first > last {
		return nil
	}
	it := sn.snap.NewIterator(&util.Range{Start: bucketPrefix(first), Limit: bucketPrefix(last + 1)}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	for it.Next() {
		k := it.Key()
		if err := fn(binary.BigEndian.Uint32(k[1:5]), k[5:], it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return sn.s.readErr("scanning the state", err)
	}
	return nil
}

// ComputeRoot computes the state root of the snapshot from scratch: every
// key is placed in its bucket by its hash (a misplaced key is ErrCorrupt),
// every bucket is hashed and the tree is built. It does not use the bucket
// cache; compare it with Root to check the store.
func (sn *Snapshot) ComputeRoot() (types.Hash, error) {
	leaves, _, err := hashAll(sn.snap, sn.s.buckets, sn.s.shift, sn.s.dir)
	if err != nil {
		return types.Hash{}, err
	}
	return MerkleRoot(leaves), nil
}

// Release releases the snapshot; later reads fail with ErrClosed. Releasing
// twice is a no-op.
func (sn *Snapshot) Release() { sn.once.Do(sn.snap.Release) }

// hashAll hashes every bucket of the state read through r, checking that
// each key sits in its bucket. It splits the buckets over up to GOMAXPROCS
// goroutines, each with its own iterator. It returns the bucket hashes and
// the number of keys.
func hashAll(r dbReader, buckets int, shift uint, dir string) ([]types.Hash, int, error) {
	leaves := make([]types.Hash, buckets)
	for i := range leaves {
		leaves[i] = EmptyBucketHash
	}
	workers := min(runtime.GOMAXPROCS(0), 8, max(buckets/64, 1))
	var (
		wg    sync.WaitGroup
		keys  = make([]int, workers)
		errs  = make([]error, workers)
		chunk = (buckets + workers - 1) / workers
	)
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, buckets)
		wg.Go(func() {
			keys[w], errs[w] = hashRange(r, uint32(lo), uint32(hi), hi == buckets, shift, leaves, dir)
		})
	}
	wg.Wait()
	n := 0
	for w := range workers {
		if errs[w] != nil {
			return nil, 0, errs[w]
		}
		n += keys[w]
	}
	return leaves, n, nil
}

// hashRange hashes buckets [lo, hi) into leaves[lo:hi]; with last it also
// reads keys beyond the last bucket (only corruption puts any there).
func hashRange(r dbReader, lo, hi uint32, last bool, shift uint, leaves []types.Hash, dir string) (int, error) {
	limit := bucketPrefix(hi)
	if last {
		limit = []byte{pState + 1}
	}
	it := r.NewIterator(&util.Range{Start: bucketPrefix(lo), Limit: limit}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	var hs bucketHasher
	cur, n := int64(-1), 0
	for it.Next() {
		k := it.Key()
		if len(k) < 6 {
			return 0, fmt.Errorf("%w: data dir %s: state key %x is too short", ErrCorrupt, dir, k)
		}
		b, key := binary.BigEndian.Uint32(k[1:5]), k[5:]
		if want := bucketOfShift(key, shift); want != b {
			return 0, fmt.Errorf("%w: data dir %s: state key %x is stored in bucket %d, it belongs in %d", ErrCorrupt, dir, key, b, want)
		}
		if int64(b) != cur {
			if cur >= 0 {
				leaves[cur] = hs.sum()
			}
			hs.reset()
			cur = int64(b)
		}
		hs.add(key, it.Value())
		n++
	}
	if cur >= 0 {
		leaves[cur] = hs.sum()
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("store: data dir %s: scanning the state: %w", dir, err)
	}
	return n, nil
}
