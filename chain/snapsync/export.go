package snapsync

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"taobox/chain/store"
	"taobox/chain/types"
)

// Defaults of ExporterConfig.
const (
	DefaultKeep       = 2
	DefaultChunkBytes = 1 << 20
	// MaxChunkBytes is the largest ChunkBytes: a chunk closes at the first
	// bucket boundary past the target, so the target leaves room below
	// types.MaxChunkResp for one more bucket.
	MaxChunkBytes = types.MaxChunkResp / 2
)

// ExporterConfig configures NewExporter.
type ExporterConfig struct {
	// Dir holds one directory per snapshot (<Dir>/<height, 20 digits>/
	// with a manifest file and chunk-NNNNNN files). Required; created if
	// missing. The node uses <datadir>/snapshots.
	Dir string

	// ChainID goes into every manifest (the genesis hash).
	ChainID types.Hash

	// Keep is how many snapshots to keep, newest first. If zero,
	// DefaultKeep (2).
	Keep int

	// ChunkBytes is the target size of a chunk: a chunk closes at the
	// first bucket boundary at or past it. If zero, DefaultChunkBytes
	// (1 MiB); at most MaxChunkBytes. Every honest exporter of a network
	// must use the same value, so their manifests agree (the default).
	ChunkBytes int

	// Logger receives one line per snapshot taken or removed. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c ExporterConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if c.Keep < 0 {
		errs = append(errs, fmt.Errorf("Keep (%d) must not be negative", c.Keep))
	}
	if c.ChunkBytes < 0 || c.ChunkBytes > MaxChunkBytes {
		errs = append(errs, fmt.Errorf("ChunkBytes (%d) must be 0 (default) to %d", c.ChunkBytes, MaxChunkBytes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("snapsync: exporter config: %w", errors.Join(errs...))
	}
	return nil
}

// Exporter takes state snapshots of a store into chunk files and serves
// them. Its methods are safe for concurrent use; Take calls are
// serialised.
type Exporter struct {
	cfg    ExporterConfig
	log    *slog.Logger
	takeMu sync.Mutex

	mu      sync.RWMutex
	heights []uint64 // ascending
}

// NewExporter opens (creating if needed) the snapshot directory, removes
// what an interrupted Take left (.tmp-* directories) and lists the
// snapshots there.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.ChunkBytes == 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	e := &Exporter{cfg: cfg, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapsync: create snapshot dir: %w", err)
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("snapsync: read snapshot dir: %w", err)
	}
	for _, ent := range ents {
		name := ent.Name()
		if strings.HasPrefix(name, ".tmp-") {
			if err := os.RemoveAll(filepath.Join(cfg.Dir, name)); err != nil {
				return nil, fmt.Errorf("snapsync: remove the leftover of an interrupted snapshot: %w", err)
			}
			continue
		}
		h, err := strconv.ParseUint(name, 10, 64)
		if err != nil || len(name) != 20 || !ent.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(cfg.Dir, name, "manifest")); err == nil {
			e.heights = append(e.heights, h)
		}
	}
	slices.Sort(e.heights)
	return e, nil
}

func (e *Exporter) snapDir(h uint64) string {
	return filepath.Join(e.cfg.Dir, fmt.Sprintf("%020d", h))
}

func chunkName(i int) string { return fmt.Sprintf("chunk-%06d", i) }

// Latest returns the height of the newest snapshot; ok is false if none.
func (e *Exporter) Latest() (height uint64, ok bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.heights) == 0 {
		return 0, false
	}
	return e.heights[len(e.heights)-1], true
}

// Heights returns the heights of the snapshots kept, ascending.
func (e *Exporter) Heights() []uint64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.heights)
}

func (e *Exporter) has(h uint64) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := slices.BinarySearch(e.heights, h)
	return ok
}

// Manifest returns the encoded manifest of the snapshot at height, or
// ErrNotFound.
func (e *Exporter) Manifest(height uint64) ([]byte, error) {
	return e.read(height, "manifest", types.MaxManifestResp)
}

// Chunk returns chunk index of the snapshot at height, or ErrNotFound.
func (e *Exporter) Chunk(height uint64, index int) ([]byte, error) {
	if index < 0 || index >= store.MaxImportChunks {
		return nil, fmt.Errorf("%w: chunk %d", ErrNotFound, index)
	}
	return e.read(height, chunkName(index), types.MaxChunkResp)
}

func (e *Exporter) read(h uint64, name string, limit int) ([]byte, error) {
	if !e.has(h) {
		return nil, fmt.Errorf("%w: no snapshot at height %d", ErrNotFound, h)
	}
	b, err := os.ReadFile(filepath.Join(e.snapDir(h), name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: snapshot %d has no %s", ErrNotFound, h, name)
	case err != nil:
		return nil, fmt.Errorf("snapsync: reading snapshot %d: %w", h, err)
	case len(b) > limit:
		return nil, fmt.Errorf("snapsync: snapshot %d: %s has %d bytes, over the limit %d; remove the snapshot directory", h, name, len(b), limit)
	}
	return b, nil
}

// Take exports the state at the store's committed head: it takes a store
// snapshot, streams every bucket into chunk files of about ChunkBytes
// under a temporary directory while hashing the buckets, releases the
// store snapshot (it is held only for that one scan: about a second per
// million keys), checks that the bucket hashes give the head's state root,
// writes the manifest, fsyncs, renames the directory into place and
// removes all but the Keep newest snapshots. A snapshot of that height
// that already exists is returned as is. The node calls Take at epoch
// boundaries, from a goroutine of its own (it can take seconds).
func (e *Exporter) Take(st *store.Store) (*Manifest, error) { return e.take(st, 0, false) }

// ErrMovedOn is TakeAt's answer when the store's head is no longer the
// height asked for: a later block committed first, and a snapshot of a
// height peers do not ask for would only push out a useful one.
var ErrMovedOn = errors.New("snapsync: the store's head moved past the height to snapshot")

// TakeAt is Take for a snapshot of exactly height (an epoch boundary that
// was just committed): ErrMovedOn when the head is another height.
func (e *Exporter) TakeAt(st *store.Store, height uint64) (*Manifest, error) {
	return e.take(st, height, true)
}

func (e *Exporter) take(st *store.Store, want uint64, exact bool) (*Manifest, error) {
	e.takeMu.Lock()
	defer e.takeMu.Unlock()
	sn, err := st.Snapshot()
	if err != nil {
		return nil, err
	}
	defer sn.Release()
	height, hash, ok := sn.Head()
	if !ok {
		return nil, errors.New("snapsync: the store has no block yet; nothing to export")
	}
	if exact && height != want {
		return nil, fmt.Errorf("%w: head %d, asked for %d", ErrMovedOn, height, want)
	}
	if e.has(height) {
		sn.Release()
		b, err := e.Manifest(height)
		if err != nil {
			return nil, err
		}
		return DecodeManifest(b)
	}
	tmp, err := os.MkdirTemp(e.cfg.Dir, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("snapsync: create snapshot dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	m := &Manifest{Version: Version, ChainID: e.cfg.ChainID, Height: height, BlockHash: hash, StateRoot: sn.Root(), Buckets: uint32(st.Buckets())}
	if m.Buckets > MaxBuckets {
		return nil, fmt.Errorf("snapsync: the store has %d state buckets; snapshots support at most %d", m.Buckets, MaxBuckets)
	}
	w := chunkWriter{dir: tmp, target: e.cfg.ChunkBytes, m: m}
	w.start(0)
	if err := sn.Range(0, m.Buckets-1, w.add); err != nil {
		return nil, fmt.Errorf("snapsync: exporting the state at height %d: %w", height, err)
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	sn.Release()
	if got := store.MerkleRoot(m.BucketHashes); got != m.StateRoot {
		return nil, fmt.Errorf("snapsync: the exported state at height %d hashes to %v, the store's root is %v; run the store's Verify", height, got, m.StateRoot)
	}
	for i := range m.Chunks {
		if err := fsyncFile(filepath.Join(tmp, chunkName(i))); err != nil {
			return nil, err
		}
	}
	if err := writeFileSync(filepath.Join(tmp, "manifest"), m.Encode()); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, e.snapDir(height)); err != nil {
		return nil, fmt.Errorf("snapsync: placing snapshot %d: %w", height, err)
	}
	if err := syncDir(e.cfg.Dir); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.heights = append(e.heights, height)
	slices.Sort(e.heights)
	var drop []uint64
	if n := len(e.heights) - e.cfg.Keep; n > 0 {
		drop = slices.Clone(e.heights[:n])
		e.heights = slices.Delete(e.heights, 0, n)
	}
	e.mu.Unlock()
	e.log.Info("snapshot taken", "height", height, "root", m.StateRoot, "chunks", len(m.Chunks), "entries", w.entries, "bytes", w.bytes)
	for _, h := range drop {
		if err := os.RemoveAll(e.snapDir(h)); err != nil {
			e.log.Warn("removing an old snapshot failed", "height", h, "err", err)
		} else {
			e.log.Info("snapshot removed", "height", h)
		}
	}
	return m, nil
}

// chunkWriter builds the chunks and bucket hashes of one export as
// Snapshot.Range feeds it entries in (bucket, key) order.
type chunkWriter struct {
	dir    string
	target int
	m      *Manifest

	buf     []byte // the open chunk
	first   uint32 // its first bucket
	count   uint32 // its entries
	bucket  uint32 // the bucket being read
	offs    [][4]int
	kvs     []store.KV
	entries int64
	bytes   int64
}

func (w *chunkWriter) start(first uint32) {
	w.first, w.count = first, 0
	w.buf = appendChunkHeader(w.buf[:0], 0, 0, 0)
}

// add is the Range callback.
func (w *chunkWriter) add(bucket uint32, key, value []byte) error {
	for w.bucket < bucket {
		if err := w.endBucket(); err != nil {
			return err
		}
	}
	start := len(w.buf)
	w.buf = appendEntry(w.buf, bucket, key, value)
	k := start + 8
	v := k + len(key) + 4
	w.offs = append(w.offs, [4]int{k, len(key), v, len(value)})
	w.count++
	return nil
}

// endBucket hashes the bucket being read, closes the chunk when it reached
// the target, and moves to the next bucket.
func (w *chunkWriter) endBucket() error {
	w.kvs = w.kvs[:0]
	for _, o := range w.offs {
		w.kvs = append(w.kvs, store.KV{Key: w.buf[o[0] : o[0]+o[1]], Value: w.buf[o[2] : o[2]+o[3]]})
	}
	w.offs = w.offs[:0]
	w.m.BucketHashes = append(w.m.BucketHashes, store.HashBucket(w.kvs))
	last := w.bucket
	w.bucket++
	if len(w.buf) >= w.target || w.bucket == w.m.Buckets {
		return w.closeChunk(last)
	}
	return nil
}

func (w *chunkWriter) closeChunk(last uint32) error {
	if len(w.buf) > types.MaxChunkResp {
		return fmt.Errorf("snapsync: the chunk of buckets %d..%d has %d bytes, over the %d-byte limit (a bucket holds too much data)", w.first, last, len(w.buf), types.MaxChunkResp)
	}
	copy(w.buf, appendChunkHeader(nil, w.first, last, w.count))
	idx := len(w.m.Chunks)
	w.m.Chunks = append(w.m.Chunks, ChunkInfo{FirstBucket: w.first, LastBucket: last, Entries: w.count, Bytes: uint32(len(w.buf)), Hash: types.HashBytes(w.buf)})
	if err := os.WriteFile(filepath.Join(w.dir, chunkName(idx)), w.buf, 0o600); err != nil { // fsynced after the scan
		return fmt.Errorf("snapsync: writing chunk %d: %w", idx, err)
	}
	w.entries += int64(w.count)
	w.bytes += int64(len(w.buf))
	w.start(last + 1)
	return nil
}

// finish ends the remaining buckets (through the last one).
func (w *chunkWriter) finish() error {
	for w.bucket < w.m.Buckets {
		if err := w.endBucket(); err != nil {
			return err
		}
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("snapsync: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapsync: writing %s: %w", path, err)
	}
	return nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapsync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapsync: fsync %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snapsync: fsync %s: %w", dir, err)
	}
	return nil
}
