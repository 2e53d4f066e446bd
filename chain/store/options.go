package store

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Defaults and limits of Options.
const (
	DefaultBuckets    = 65536
	MaxBuckets        = 1 << 24
	DefaultKeepBlocks = 7200 // 24 h of 12 s blocks
	DefaultCacheMiB   = 128
	minCacheMiB       = 8

	// KeepAll as Options.KeepBlocks disables pruning (an archive node).
	KeepAll = math.MaxUint64
)

// Options configures Open. The zero value is a valid production
// configuration.
type Options struct {
	// Buckets is the number of state-root buckets, a power of two from 1 to
	// MaxBuckets. It is fixed when the store is created and recorded on
	// disk. If zero, a new store uses DefaultBuckets and an existing store
	// uses its recorded count; a non-zero value that differs from the
	// recorded count is an error.
	Buckets int

	// KeepBlocks is how many recent blocks keep their header, body and
	// events: committing height h prunes heights ≤ h-KeepBlocks, except
	// that epoch-boundary headers are kept forever. If zero,
	// DefaultKeepBlocks (7200, 24 hours) is used; KeepAll keeps everything.
	KeepBlocks uint64

	// NoSync writes commits without fsync. A process crash still loses
	// nothing, a power loss may lose the last blocks. For tests and bulk
	// imports only; by default every CommitBlock is fsynced.
	NoSync bool

	// CacheMiB is the memory for goleveldb in MiB: half block cache, a
	// quarter for each of the two memtables (geth's split). If zero,
	// DefaultCacheMiB (128) is used; values below 8 are raised to 8.
	CacheMiB int

	// FullCheck makes Open rehash every bucket of the state and compare it
	// with the cached bucket hashes (about a second per million keys),
	// instead of a random sample of 64 buckets.
	FullCheck bool

	// Recover runs goleveldb's RecoverFile (rebuild the manifest from the
	// table files) before opening. Use it only when Open reported that the
	// leveldb files themselves are damaged; Open's consistency checks
	// still decide whether the result is usable.
	Recover bool
}

// withDefaults fills zero fields and validates the result, reporting every
// problem at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Buckets < 0 || o.Buckets > MaxBuckets || (o.Buckets > 0 && bits.OnesCount(uint(o.Buckets)) != 1) {
		errs = append(errs, fmt.Errorf("Buckets (%d) must be a power of two from 1 to %d, or 0 for the default", o.Buckets, MaxBuckets))
	}
	if o.CacheMiB < 0 {
		errs = append(errs, fmt.Errorf("CacheMiB (%d) must not be negative", o.CacheMiB))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%w: options: %w", ErrInvalid, errors.Join(errs...))
	}
	if o.KeepBlocks == 0 {
		o.KeepBlocks = DefaultKeepBlocks
	}
	if o.CacheMiB == 0 {
		o.CacheMiB = DefaultCacheMiB
	}
	if o.CacheMiB < minCacheMiB {
		o.CacheMiB = minCacheMiB
	}
	return o, nil
}
