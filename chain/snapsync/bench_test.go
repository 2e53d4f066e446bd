package snapsync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"taobox/chain/store"
	"taobox/chain/types"
)

// BenchmarkSync exports a state of TAOBOX_SYNC_BENCH_KEYS keys (default
// 100,000; set 1000000 for the 1M figure) with 32-byte keys and
// 64-byte values over the default 65,536 buckets, then syncs a fresh store
// from the exported files through two in-process sources (no network). It
// reports, per phase: export (snapshot scan, chunk files, fsync), import
// (fetch, verify, ImportChunk with one fsync per chunk) and finish
// (FinishImport's rehash of the whole state). MB are chunk bytes.
//
//	TAOBOX_SYNC_BENCH_KEYS=1000000 go test -run XXX -bench Sync -benchtime 1x ./chain/snapsync/
func BenchmarkSync(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("TAOBOX_SYNC_BENCH_KEYS")); err == nil && v > 0 {
		n = v
	}
	src, err := store.Open(b.TempDir(), store.Options{NoSync: true, KeepBlocks: store.KeepAll})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const perBlock = 20_000
	for h := 0; h*perBlock < n; h++ {
		ch := make([]store.KV, 0, perBlock)
		for i := h * perBlock; i < min((h+1)*perBlock, n); i++ {
			k := types.HashBytes(fmt.Appendf(nil, "key %d", i))
			v := make([]byte, 64)
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			ch = append(ch, store.KV{Key: k[:], Value: v})
		}
		hdr := testHeader(uint64(h))
		if _, err := src.CommitBlock(store.BlockCommit{Height: uint64(h), Hash: types.HashBytes(hdr), Header: hdr, Changes: ch}); err != nil {
			b.Fatal(err)
		}
	}
	tr := trustedOf(b, src)
	b.ResetTimer()
	var exportDur, importDur, finishDur time.Duration
	var bytes int64
	for range b.N {
		e, err := NewExporter(ExporterConfig{Dir: b.TempDir(), ChainID: testChain})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		m, err := e.Take(src)
		if err != nil {
			b.Fatal(err)
		}
		exportDur += time.Since(t0)
		bytes = 0
		for _, c := range m.Chunks {
			bytes += int64(c.Bytes)
		}
		dst, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var chunksDone time.Time
		cfg := Config{OnProgress: func(p Progress) {
			if p.Phase == "verify" {
				chunksDone = time.Now()
			}
		}}
		t1 := time.Now()
		if err := Sync(context.Background(), cfg, dst, tr, []Source{&exportSource{id: "a", e: e}, &exportSource{id: "b", e: e}}); err != nil {
			b.Fatal(err)
		}
		importDur += chunksDone.Sub(t1)
		finishDur += time.Since(chunksDone)
		if dst.StateRoot() != tr.StateRoot {
			b.Fatal("wrong root")
		}
		dst.Close()
		b.Logf("%d keys, %d chunks, %.1f MB", n, len(m.Chunks), float64(bytes)/1e6)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(float64(bytes)/1e6/per(exportDur), "export-MB/s")
	b.ReportMetric(float64(n)/per(exportDur), "export-keys/s")
	b.ReportMetric(float64(bytes)/1e6/per(importDur), "import-MB/s")
	b.ReportMetric(float64(n)/per(importDur), "import-keys/s")
	b.ReportMetric(per(finishDur), "finish-s")
	b.ReportMetric(float64(n)/per(importDur+finishDur), "sync-keys/s")
}
