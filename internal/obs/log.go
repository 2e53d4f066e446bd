package obs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Log defaults.
const (
	DefaultLogMaxBytes = 64 << 20 // rotate a log file when it would pass 64 MiB
	DefaultLogKeep     = 5        // rotated log files kept
)

// LogConfig configures NewLogger. The zero value logs text at info level
// to the fallback writer.
type LogConfig struct {
	// Level is the least level logged (slog.LevelDebug, Info, Warn, Error).
	Level slog.Level
	// Format is "text" (logfmt-style key=value; the default when "") or
	// "json" (one JSON object per line).
	Format string
	// File is the log file, appended to; "" logs to the fallback writer
	// (stderr). When it would grow past MaxBytes it is rotated: FILE.1 is
	// the newest rotated file, FILE.<Keep> the oldest kept.
	File string
	// MaxBytes is the size at which File is rotated. If zero,
	// DefaultLogMaxBytes (64 MiB).
	MaxBytes int64
	// Keep is how many rotated files are kept. If zero, DefaultLogKeep (5);
	// negative keeps none (the file is started afresh at MaxBytes).
	Keep int
}

// ParseLevel parses debug, info, warn or error (any case; also the slog
// forms such as "info+2").
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Validate reports every problem of c.
func (c *LogConfig) Validate() error {
	var errs []error
	switch c.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log format %q: want text or json", c.Format))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("log max size %d: must not be negative", c.MaxBytes))
	}
	if c.File != "" && strings.HasSuffix(c.File, string(filepath.Separator)) {
		errs = append(errs, fmt.Errorf("log file %q is a directory: name a file", c.File))
	}
	return errors.Join(errs...)
}

// NewLogger returns the logger of c, writing to fallback when c.File is
// "". The closer closes the log file (a no-op without one); call it last.
func NewLogger(c LogConfig, fallback io.Writer) (*slog.Logger, io.Closer, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	w, closer := fallback, io.Closer(nopCloser{})
	if c.File != "" {
		rf, err := OpenRotating(c.File, c.MaxBytes, c.Keep)
		if err != nil {
			return nil, nil, err
		}
		w, closer = rf, rf
	}
	opts := &slog.HandlerOptions{Level: c.Level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h), closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// RotatingFile is an io.Writer appending to a file that it rotates by
// size: when a write would take the file past its limit, FILE.(k) is
// renamed FILE.(k+1) for k from Keep-1 down to 1, FILE becomes FILE.1 (the
// oldest beyond Keep is removed) and a new FILE is started. A write is
// never split between two files, so a log record (one Write per record in
// slog's handlers) stays whole; a single write larger than the limit goes
// alone into a fresh file. It is safe for concurrent use.
type RotatingFile struct {
	path string
	max  int64
	keep int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (appending) or creates path, creating its directory
// if needed. maxBytes 0 and keep 0 take DefaultLogMaxBytes and
// DefaultLogKeep; keep < 0 keeps no rotated file.
func OpenRotating(path string, maxBytes int64, keep int) (*RotatingFile, error) {
	if maxBytes == 0 {
		maxBytes = DefaultLogMaxBytes
	}
	if maxBytes < 0 {
		return nil, fmt.Errorf("log file %s: max size %d must be positive", path, maxBytes)
	}
	if keep == 0 {
		keep = DefaultLogKeep
	}
	keep = max(keep, 0)
	r := &RotatingFile{path: path, max: maxBytes, keep: keep}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	if err := r.openLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) openLocked() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("log file: %w (check the --log-file path and its permissions)", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// rotated is the name of the k-th rotated file (1: the newest).
func (r *RotatingFile) rotated(k int) string { return fmt.Sprintf("%s.%d", r.path, k) }

// rotateLocked closes the file, shifts the rotated ones and opens a new one.
func (r *RotatingFile) rotateLocked() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("log file %s: closing for rotation: %w", r.path, err)
	}
	r.f = nil
	if r.keep == 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log file %s: %w", r.path, err)
		}
		return r.openLocked()
	}
	os.Remove(r.rotated(r.keep)) // the oldest goes
	for k := r.keep - 1; k >= 1; k-- {
		if err := os.Rename(r.rotated(k), r.rotated(k+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log file %s: rotating: %w", r.path, err)
		}
	}
	if err := os.Rename(r.path, r.rotated(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log file %s: rotating: %w", r.path, err)
	}
	return r.openLocked()
}

// Write appends p, rotating first when the file is not empty and p would
// take it past the limit.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		// a failed rotation left no file: try again
		if err := r.openLocked(); err != nil {
			return 0, err
		}
	}
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the file. Later writes reopen it.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
