package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"golang.org/x/crypto/blake2b"

	"taobox/chain/types"
)

// model is the reference state: a map, written in order, last write wins.
type model map[string][]byte

func (m model) apply(kvs []KV) {
	for _, kv := range kvs {
		if kv.Value == nil {
			delete(m, string(kv.Key))
		} else {
			m[string(kv.Key)] = bytes.Clone(kv.Value)
		}
	}
}

// refRoot computes the state root of m straight from the definition in the
// package doc, sharing no code with the store.
func refRoot(m model, buckets int) types.Hash {
	per := make([][]string, buckets)
	for k := range m {
		h := blake2b.Sum256([]byte(k))
		top := uint64(binary.BigEndian.Uint32(h[:4]))
		b := top * uint64(buckets) >> 32 // the first log2(buckets) bits
		per[b] = append(per[b], k)
	}
	level := make([][]byte, buckets)
	for b, keys := range per {
		sort.Strings(keys)
		var buf bytes.Buffer
		buf.WriteString("taobox/store/bucket/v1")
		for _, k := range keys {
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k))))
			buf.WriteString(k)
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m[k]))))
			buf.Write(m[k])
		}
		sum := blake2b.Sum256(buf.Bytes())
		level[b] = sum[:]
	}
	for len(level) > 1 {
		next := make([][]byte, len(level)/2)
		for i := range next {
			pre := append(append([]byte{1}, level[2*i]...), level[2*i+1]...)
			sum := blake2b.Sum256(pre)
			next[i] = sum[:]
		}
		level = next
	}
	return types.Hash(level[0])
}

// randChanges returns n random writes over a keyspace of size space: puts,
// overwrites, deletes, empty values and repeated keys.
func randChanges(rng *rand.Rand, n, space int) []KV {
	kvs := make([]KV, n)
	for i := range kvs {
		k := fmt.Appendf(nil, "key-%d", rng.IntN(space))
		switch r := rng.IntN(10); {
		case r < 3:
			kvs[i] = KV{Key: k} // delete
		case r == 3:
			kvs[i] = KV{Key: k, Value: []byte{}}
		default:
			v := make([]byte, 1+rng.IntN(100))
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			kvs[i] = KV{Key: k, Value: v}
		}
	}
	return kvs
}

// testBlock is a block with the given changes and small derived records.
func testBlock(h uint64, changes []KV, epoch bool) BlockCommit {
	hdr := fmt.Appendf(nil, "header %d", h)
	return BlockCommit{
		Height:        h,
		Hash:          blake2b.Sum256(hdr),
		Header:        hdr,
		Body:          fmt.Appendf(nil, "body %d", h),
		Events:        fmt.Appendf(nil, "events %d", h),
		Changes:       changes,
		EpochBoundary: epoch,
	}
}

func openTest(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCommit(t testing.TB, s *Store, c BlockCommit) types.Hash {
	t.Helper()
	root, err := s.CommitBlock(c)
	if err != nil {
		t.Fatalf("CommitBlock(%d): %v", c.Height, err)
	}
	return root
}

// stateOf reads the whole state of s through a snapshot.
func stateOf(t testing.TB, s *Store) model {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	m := model{}
	err = snap.Range(0, uint32(s.Buckets()-1), func(b uint32, k, v []byte) error {
		if want := BucketOf(k, s.Buckets()); want != b {
			return fmt.Errorf("key %q in bucket %d, want %d", k, b, want)
		}
		m[string(k)] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameState reports the first difference between two states, or "".
func sameState(got, want model) string {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := got[k]
		if !ok {
			return fmt.Sprintf("key %q missing", k)
		}
		if !bytes.Equal(v, want[k]) {
			return fmt.Sprintf("key %q = %x, want %x", k, v, want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("extra key %q", k)
		}
	}
	return ""
}
