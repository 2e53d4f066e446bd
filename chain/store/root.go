package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/syndtr/goleveldb/leveldb/iterator"
	"golang.org/x/crypto/blake2b"

	"taobox/chain/types"
)

// bucketDomain starts every bucket hash's preimage; node preimages start
// with 0x01, so the two can never collide.
const bucketDomain = "taobox/store/bucket/v1"

// EmptyBucketHash is the hash of a bucket without entries.
var EmptyBucketHash = func() types.Hash {
	var hs bucketHasher
	hs.reset()
	return hs.sum()
}()

// BucketOf returns the bucket of key among buckets (a power of two): the
// first log2(buckets) bits of BLAKE2b-256(key).
func BucketOf(key []byte, buckets int) uint32 {
	return bucketOfShift(key, bucketShift(buckets))
}

func bucketShift(buckets int) uint { return 32 - uint(bits.TrailingZeros(uint(buckets))) }

func bucketOfShift(key []byte, shift uint) uint32 {
	h := blake2b.Sum256(key)
	return binary.BigEndian.Uint32(h[:4]) >> shift // a shift of 32 gives 0
}

// HashBucket returns the hash of one bucket's entries, which must be sorted
// by key, without duplicates, and carry no deletes (nil values).
func HashBucket(entries []KV) types.Hash {
	var hs bucketHasher
	hs.reset()
	for _, e := range entries {
		hs.add(e.Key, e.Value)
	}
	return hs.sum()
}

// MerkleRoot returns the root over bucket hashes (their count a power of
// two), as StateRoot defines it.
func MerkleRoot(bucketHashes []types.Hash) types.Hash {
	return buildTree(bucketHashes)[1]
}

// bucketHasher computes a bucket hash incrementally.
type bucketHasher struct {
	h   hash.Hash
	n   int
	len [4]byte
}

func (b *bucketHasher) reset() {
	if b.h == nil {
		b.h, _ = blake2b.New256(nil) // cannot fail without a key
	}
	b.h.Reset()
	b.h.Write([]byte(bucketDomain))
	b.n = 0
}

func (b *bucketHasher) add(k, v []byte) {
	binary.BigEndian.PutUint32(b.len[:], uint32(len(k)))
	b.h.Write(b.len[:])
	b.h.Write(k)
	binary.BigEndian.PutUint32(b.len[:], uint32(len(v)))
	b.h.Write(b.len[:])
	b.h.Write(v)
	b.n++
}

func (b *bucketHasher) sum() (out types.Hash) {
	b.h.Sum(out[:0])
	return out
}

func hashNode(l, r *types.Hash) types.Hash {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return blake2b.Sum256(buf[:])
}

// buildTree returns the full tree over leaves (len a power of two): index 1
// is the root, the children of i are 2i and 2i+1, the leaves sit at
// len(leaves)+bucket. Index 0 is unused.
func buildTree(leaves []types.Hash) []types.Hash {
	n := len(leaves)
	tree := make([]types.Hash, 2*n)
	copy(tree[n:], leaves)
	for i := n - 1; i >= 1; i-- {
		tree[i] = hashNode(&tree[2*i], &tree[2*i+1])
	}
	return tree
}

// change is one validated state write, placed in its bucket.
type change struct {
	bucket uint32
	key    []byte
	value  []byte // nil: delete
	seq    int    // position in the caller's list
}

// node is one updated tree entry.
type node struct {
	idx  uint32
	hash types.Hash
}

// plan is the effect of a changeset on the state and its tree, computed
// without writing anything.
type plan struct {
	changes []change // sorted by (bucket, key), one per key (the last one given)
	leaves  []leaf   // touched buckets, ascending
	nodes   []node   // updated tree entries, leaves first, root (index 1) last
	root    types.Hash
}

type leaf struct {
	bucket uint32
	hash   types.Hash
	empty  bool
}

// normalize validates kvs and returns them as changes sorted by (bucket,
// key) with one entry per key: the last one in kvs wins. kvs is not
// modified.
func normalize(kvs []KV, shift uint) ([]change, error) {
	cs := make([]change, len(kvs))
	for i, kv := range kvs {
		switch {
		case len(kv.Key) == 0:
			return nil, fmt.Errorf("%w: change %d has an empty key", ErrInvalid, i)
		case len(kv.Key) > MaxKeySize:
			return nil, fmt.Errorf("%w: change %d: key of %d bytes, the limit is %d", ErrTooLarge, i, len(kv.Key), MaxKeySize)
		case len(kv.Value) > MaxValueSize:
			return nil, fmt.Errorf("%w: change %d (key %x): value of %d bytes, the limit is %d", ErrTooLarge, i, kv.Key, len(kv.Value), MaxValueSize)
		}
		cs[i] = change{bucket: bucketOfShift(kv.Key, shift), key: kv.Key, value: kv.Value, seq: i}
	}
	// A total order (ties broken by position), so the faster unstable sort
	// keeps the writes of one key in the caller's order.
	slices.SortFunc(cs, func(a, b change) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := cs[:0]
	for i := range cs {
		if i+1 < len(cs) && bytes.Equal(cs[i].key, cs[i+1].key) {
			continue // a later change of the same key wins
		}
		out = append(out, cs[i])
	}
	return out, nil
}

// parallelBuckets is the number of touched buckets from which planChanges
// rehashes on several goroutines.
const parallelBuckets = 64

// planChanges computes the plan of kvs over the state read through
// iterators from newIter (each over the S prefix) and over tree, which must
// match that state. The caller holds s.mu (read or write) so that neither
// changes meanwhile. Touched buckets are rehashed on up to GOMAXPROCS
// goroutines, each with its own iterator.
func planChanges(kvs []KV, shift uint, newIter func() iterator.Iterator, tree []types.Hash) (*plan, error) {
	cs, err := normalize(kvs, shift)
	if err != nil {
		return nil, err
	}
	p := &plan{changes: cs}
	var groups [][2]int // [i, j) ranges of cs with one bucket each
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && cs[j].bucket == cs[i].bucket {
			j++
		}
		groups = append(groups, [2]int{i, j})
		i = j
	}
	p.leaves = make([]leaf, len(groups))
	workers := 1
	if len(groups) >= parallelBuckets {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	per := (len(groups) + workers - 1) / max(workers, 1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(groups))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			it := newIter()
			defer it.Release()
			var hs bucketHasher
			for g := lo; g < hi; g++ {
				i, j := groups[g][0], groups[g][1]
				h, n, err := rehashBucket(&hs, it, cs[i].bucket, cs[i:j])
				if err != nil {
					errs[w] = err
					return
				}
				p.leaves[g] = leaf{bucket: cs[i].bucket, hash: h, empty: n == 0}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	p.nodes, p.root = updatePaths(p.leaves, tree)
	return p, nil
}

// rehashBucket hashes bucket as it is in the state read through it, with
// changes (sorted, of this bucket) applied. It returns the hash and the
// number of entries.
func rehashBucket(hs *bucketHasher, it iterator.Iterator, bucket uint32, changes []change) (types.Hash, int, error) {
	prefix := bucketPrefix(bucket)
	hs.reset()
	ok := it.Seek(prefix)
	i := 0
	for {
		have := ok && bytes.HasPrefix(it.Key(), prefix)
		if !have && i == len(changes) {
			break
		}
		if have {
			k := it.Key()[len(prefix):]
			if i == len(changes) || bytes.Compare(k, changes[i].key) < 0 {
				hs.add(k, it.Value())
				ok = it.Next()
				continue
			}
			if bytes.Equal(k, changes[i].key) {
				ok = it.Next() // replaced or deleted by the change
			}
		}
		if c := changes[i]; c.value != nil {
			hs.add(c.key, c.value)
		}
		i++
	}
	if err := it.Error(); err != nil {
		return types.Hash{}, 0, err
	}
	return hs.sum(), hs.n, nil
}

// updatePaths returns the tree entries that change when the given leaves
// (ascending) change, bottom-up, and the new root. tree is not modified.
func updatePaths(leaves []leaf, tree []types.Hash) ([]node, types.Hash) {
	n := uint32(len(tree) / 2)
	if len(leaves) == 0 {
		return nil, tree[1]
	}
	all := make([]node, 0, len(leaves)*4)
	level := make([]node, len(leaves))
	for i, l := range leaves {
		level[i] = node{idx: n + l.bucket, hash: l.hash}
	}
	all = append(all, level...)
	for level[0].idx > 1 {
		next := make([]node, 0, len(level))
		for i := 0; i < len(level); {
			cur := level[i]
			var l, r *types.Hash
			if cur.idx&1 == 0 {
				l = &level[i].hash
				if i+1 < len(level) && level[i+1].idx == cur.idx+1 {
					r = &level[i+1].hash
					i += 2
				} else {
					r = &tree[cur.idx+1]
					i++
				}
			} else {
				l, r = &tree[cur.idx-1], &level[i].hash
				i++
			}
			next = append(next, node{idx: cur.idx / 2, hash: hashNode(l, r)})
		}
		all = append(all, next...)
		level = next
	}
	return all, level[0].hash
}
