package store

import "errors"

// Errors the store returns, wrapped with details and advice; test for them
// with errors.Is.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")

	// ErrCorrupt: the data on disk breaks an invariant the store maintains
	// (damaged leveldb files, a missing head block, a bucket cache that
	// does not match the state). The message says what was found; the
	// store never repairs it silently.
	ErrCorrupt = errors.New("store: corrupt data")

	// ErrNewerFormat: the data directory was written by a newer taobox
	// whose format this build does not understand.
	ErrNewerFormat = errors.New("store: written by a newer taobox")

	// ErrHeight: a committed block's height is not the head's height + 1
	// (or 0 on an empty store).
	ErrHeight = errors.New("store: block height does not follow the head")

	// ErrTooLarge: a key, value, header, body or events blob is over its
	// size limit (MaxKeySize, MaxValueSize, MaxHeaderSize, MaxBlobSize).
	ErrTooLarge = errors.New("store: over the size limit")

	// ErrInvalid: an argument or option is invalid (empty key or header,
	// bucket count not a power of two, ...).
	ErrInvalid = errors.New("store: invalid argument")

	// ErrFailed: an earlier write failed, so the store no longer knows
	// what the disk holds; close and reopen it (Open re-checks the data).
	ErrFailed = errors.New("store: an earlier commit failed; close and reopen the store")
)
