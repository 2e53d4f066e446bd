package store

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"
)

// The benchmarks share one store of benchKeys() state keys (1M by default,
// TAOBOX_BENCH_KEYS overrides), built once per test binary run in a temp
// dir with NoSync, the first time a benchmark asks for it; plain `go test`
// never builds it. Keys are 33 bytes ('a' ‖ 32 hash bytes), values 64 bytes,
// as in the measurements of specs/chain-and-sync.md §2. The measured commits
// use Sync=true.

var bench struct {
	once sync.Once
	dir  string
	keys int
	next uint64 // the next fresh key index
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchKeys() int {
	if n, err := strconv.Atoi(os.Getenv("TAOBOX_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

func benchKey(i uint64) []byte {
	h := blake2b.Sum256(binary.BigEndian.AppendUint64(nil, i))
	return append([]byte{'a'}, h[:]...)
}

func benchValue(rng *rand.Rand) []byte {
	v := make([]byte, 64)
	for i := 0; i < len(v); i += 8 {
		binary.LittleEndian.PutUint64(v[i:], rng.Uint64())
	}
	return v
}

// benchStore returns the directory of the shared store, building it on
// first use.
func benchStore(b *testing.B) string {
	bench.once.Do(func() {
		bench.keys = benchKeys()
		bench.dir, bench.err = os.MkdirTemp("", "taobox-store-bench-")
		if bench.err != nil {
			return
		}
		start := time.Now()
		s, err := Open(bench.dir, Options{NoSync: true})
		if err != nil {
			bench.err = err
			return
		}
		defer s.Close()
		rng := rand.New(rand.NewPCG(1, 1))
		const perBlock = 50_000
		var h uint64
		for i := 0; i < bench.keys; h++ {
			n := min(perBlock, bench.keys-i)
			ch := make([]KV, n)
			for j := range ch {
				ch[j] = KV{Key: benchKey(uint64(i + j)), Value: benchValue(rng)}
			}
			if _, bench.err = s.CommitBlock(testBlock(h, ch, false)); bench.err != nil {
				return
			}
			i += n
		}
		bench.next = uint64(bench.keys)
		fmt.Fprintf(os.Stderr, "store bench: built a %d-key store (%d buckets) in %v\n", bench.keys, s.Buckets(), time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir
}

// blockChanges returns n changes: 90% overwrites of random existing keys,
// 10% new keys.
func blockChanges(rng *rand.Rand, n int) []KV {
	ch := make([]KV, n)
	for i := range ch {
		var k []byte
		if i%10 == 9 {
			k = benchKey(bench.next)
			bench.next++
		} else {
			k = benchKey(rng.Uint64N(uint64(bench.keys)))
		}
		ch[i] = KV{Key: k, Value: benchValue(rng)}
	}
	return ch
}

func touchedBuckets(ch []KV, buckets int) int {
	seen := map[uint32]bool{}
	for _, kv := range ch {
		seen[BucketOf(kv.Key, buckets)] = true
	}
	return len(seen)
}

// BenchmarkCommitBlock1000: CommitBlock (Sync=true) of a block of 1000
// changes on the shared 1M-key store.
func BenchmarkCommitBlock1000(b *testing.B) {
	s, err := Open(benchStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	touched := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		h, _, _ := s.Head()
		ch := blockChanges(rng, 1000)
		touched += touchedBuckets(ch, s.Buckets())
		c := testBlock(h+1, ch, false)
		c.Body = make([]byte, 100_000) // a block's worth of transactions
		b.StartTimer()
		if _, err := s.CommitBlock(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/change")
	b.ReportMetric(float64(touched)/float64(b.N), "buckets/op")
}

// BenchmarkRootAfterThenCommit1000: what every node does per block —
// RootAfter (the proposer fills the header, a follower checks it), then
// CommitBlock of the same changes, which reuses RootAfter's plan.
func BenchmarkRootAfterThenCommit1000(b *testing.B) {
	s, err := Open(benchStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 5))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		h, _, _ := s.Head()
		c := testBlock(h+1, blockChanges(rng, 1000), false)
		c.Body = make([]byte, 100_000)
		b.StartTimer()
		want, err := s.RootAfter(c.Changes)
		if err != nil {
			b.Fatal(err)
		}
		if got, err := s.CommitBlock(c); err != nil || got != want {
			b.Fatal(err)
		}
	}
}

// BenchmarkRootAfter1000: the root after 1000 changes, without writing.
func BenchmarkRootAfter1000(b *testing.B) {
	s, err := Open(benchStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ch := blockChanges(rng, 1000)
		b.StartTimer()
		if _, err := s.RootAfter(ch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/change")
}

// BenchmarkComputeRoot1M: the state root from scratch over every key (what
// FullCheck, Verify and snapshot import cost).
func BenchmarkComputeRoot1M(b *testing.B) {
	s, err := Open(benchStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	defer snap.Release()
	b.ResetTimer()
	for range b.N {
		root, err := snap.ComputeRoot()
		if err != nil {
			b.Fatal(err)
		}
		if root != snap.Root() {
			b.Fatal("recomputed root differs")
		}
	}
	b.ReportMetric(float64(bench.keys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkOpen1M: restart time (Open with the default sampled check, then
// Close) on the shared 1M-key store.
func BenchmarkOpen1M(b *testing.B) {
	dir := benchStore(b)
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkOpen1MFullCheck: restart with FullCheck (every bucket rehashed).
func BenchmarkOpen1MFullCheck(b *testing.B) {
	dir := benchStore(b)
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, Options{FullCheck: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkGet1M: a random state read on the shared store.
func BenchmarkGet1M(b *testing.B) {
	s, err := Open(benchStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = benchKey(rng.Uint64N(uint64(bench.keys)))
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := s.Get(keys[i%len(keys)]); !ok || err != nil {
			b.Fatal("key not found", err)
		}
	}
}
