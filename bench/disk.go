package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// The disk section works in a temporary folder under the data folder,
// removed afterwards:
//
//   - fsync: FsyncBytes written at the end of one file, then fsync, over
//     and over (p50, p99 of the pair);
//   - goleveldb, opened with chain/store's options: one Sync=true batch
//     per block, each a block's records (a 256-byte header, a 16 KiB
//     body, a 4 KiB certificate) and BlockStateWrites state writes of a
//     33-byte hashed key and a 64-byte value, fresh keys every batch.

// FsyncBytes is the size of each write before an fsync.
const FsyncBytes = 4096

// BlockStateWrites is the number of state keys each block batch writes.
const BlockStateWrites = 1000

func diskSteps(c *Config, r *Report) []step {
	d := &DiskResult{Dir: c.Dir}
	var tmp string
	setup := func() error {
		if tmp != "" {
			return nil
		}
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
		var err error
		tmp, err = os.MkdirTemp(c.Dir, "bench-disk-")
		if err != nil {
			return fmt.Errorf("data folder: %w (is it writable? give another with --data)", err)
		}
		return nil
	}
	return []step{
		{"disk fsync", func(ctx context.Context) (string, error) {
			r.Disk = d
			if err := setup(); err != nil {
				d.FsyncError = err.Error()
				return "", err
			}
			err := benchFsync(ctx, c, tmp, d)
			if err != nil {
				d.FsyncError = err.Error()
				return "", err
			}
			return fmt.Sprintf("%d × %d B write+fsync: p50 %.0f µs, p99 %.0f µs", d.Fsyncs, FsyncBytes, d.FsyncP50us, d.FsyncP99us), nil
		}},
		{"disk goleveldb", func(ctx context.Context) (string, error) {
			r.Disk = d
			if err := setup(); err != nil {
				d.LevelDBError = err.Error()
				return "", err
			}
			defer os.RemoveAll(tmp)
			err := benchLevelDB(ctx, c, filepath.Join(tmp, "leveldb"), d)
			if err != nil {
				d.LevelDBError = err.Error()
				return "", err
			}
			return fmt.Sprintf("%.0f block batches/s (%d keys, %.0f KiB each; p50 %.2f ms, p99 %.2f ms), %.0f keys/s",
				d.BatchesPerS, d.BatchKeys, float64(d.BatchBytes)/1024, d.BatchP50ms, d.BatchP99ms, d.KeysPerS), nil
		}},
	}
}

func benchFsync(ctx context.Context, c *Config, dir string, d *DiskResult) error {
	name := filepath.Join(dir, "fsync")
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer os.Remove(name)
	defer f.Close()
	buf := make([]byte, FsyncBytes)
	rng := rand.New(rand.NewPCG(c.Seed, 0x6673796e63))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lo, hi := 100, 20_000
	if c.Quick {
		lo, hi = 5, 5
	}
	ds, err := loop(ctx, c, lo, hi, func() error {
		if _, err := f.Write(buf); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		return err
	}
	d.Fsyncs = len(ds)
	d.FsyncP50us, d.FsyncP99us = us(percentile(ds, 50)), us(percentile(ds, 99))
	return nil
}

// blockBatch fills b with block height's records.
func blockBatch(b *leveldb.Batch, rng *rand.Rand, height uint64) {
	b.Reset()
	rec := func(prefix byte, n int) {
		v := make([]byte, n)
		fill(rng, v)
		b.Put(binary.BigEndian.AppendUint64([]byte{prefix}, height), v)
	}
	rec('H', 256)
	rec('B', 16<<10)
	rec('C', 4<<10)
	key := make([]byte, 33)
	val := make([]byte, 64)
	key[0] = 'a'
	for range BlockStateWrites {
		fill(rng, key[1:])
		fill(rng, val)
		b.Put(key, val) // Put copies
	}
}

func fill(rng *rand.Rand, p []byte) {
	for i := 0; i < len(p); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(p[i:], w[:])
	}
}

func benchLevelDB(ctx context.Context, c *Config, dir string, d *DiskResult) (err error) {
	db, err := leveldb.OpenFile(dir, &opt.Options{
		BlockCacheCapacity:     64 * opt.MiB,
		WriteBuffer:            32 * opt.MiB,
		Filter:                 filter.NewBloomFilter(10),
		DisableSeeksCompaction: true,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6576656c6462))
	wo := &opt.WriteOptions{Sync: true}
	var b leveldb.Batch
	var height uint64
	lo, hi := 50, 20_000
	if c.Quick {
		lo, hi = 3, 3
	}
	// loop times only the Write: each batch is built before the clock
	// starts, by the previous call (or here, for the first).
	blockBatch(&b, rng, height)
	d.BatchKeys, d.BatchBytes = b.Len(), len(b.Dump())
	var ds []time.Duration
	ds, err = loopPrep(ctx, c, lo, hi, func() error {
		if err := db.Write(&b, wo); err != nil {
			return err
		}
		height++
		return nil
	}, func() { blockBatch(&b, rng, height) })
	if err != nil {
		return err
	}
	t := total(ds)
	d.Batches = len(ds)
	d.BatchP50ms, d.BatchP99ms = ms(percentile(ds, 50)), ms(percentile(ds, 99))
	if t > 0 {
		d.BatchesPerS = float64(len(ds)) / t.Seconds()
		d.KeysPerS = d.BatchesPerS * float64(d.BatchKeys)
		d.WriteMBPerS = d.BatchesPerS * float64(d.BatchBytes) / 1e6
	}
	return nil
}
