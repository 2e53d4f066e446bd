package snapsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"taobox/chain/store"
	"taobox/chain/types"
)

// ErrNoSources: no source is left that can serve the snapshot (all were
// faulty, unreachable or serve another snapshot). The error lists why each
// one was dropped; retry with other peers, or with a newer snapshot after
// store.AbortImport.
var ErrNoSources = errors.New("snapsync: no source left to sync from")

// Source is one peer that serves snapshots; the node adapts chain/p2p to
// it, tests use an Exporter. Calls may run concurrently (up to
// Config.PerPeer at a time) and must honour ctx. A returned error means
// the request failed (unreachable, no such snapshot, timeout); bytes that
// arrive are judged by Sync, not by the source.
type Source interface {
	ID() string
	Manifest(ctx context.Context, height uint64) ([]byte, error)
	Chunk(ctx context.Context, height uint64, index int) ([]byte, error)
}

// Trusted is what the caller has verified before a sync: the header of the
// snapshot block, checked against its finality certificate (chain/consensus)
// along the chain of epoch handoff proofs. Sync trusts it completely.
type Trusted struct {
	Height    uint64
	BlockHash types.Hash
	StateRoot types.Hash
	Header    []byte // the encoded header; stored as the synced store's first block

	// Optional, stored with the block (see store.ImportTarget).
	EpochBoundary   bool
	Cert, EpochData []byte
}

// Progress is reported through Config.OnProgress. Phase is "manifest",
// "chunks" or "verify"; Done and Total count chunks (Done includes chunks
// imported before a restart); Bytes counts chunk bytes downloaded by this
// call; Peers is the number of sources still in use.
type Progress struct {
	Phase       string
	Done, Total int
	Bytes       int64
	Peers       int
}

// Defaults of Config.
const (
	DefaultParallel        = 8
	DefaultPerPeer         = 2
	DefaultTimeout         = 15 * time.Second
	DefaultManifestSources = 3
	// maxSourceErrors is how many failed requests in a row drop a source
	// (without calling it faulty).
	maxSourceErrors = 3
)

// Config configures Sync. The zero value is valid.
type Config struct {
	// Parallel is the number of chunk requests in flight over all
	// sources. If zero, DefaultParallel (8).
	Parallel int

	// PerPeer is the number of chunk requests in flight to one source.
	// If zero, DefaultPerPeer (2).
	PerPeer int

	// Timeout bounds each request. If zero, DefaultTimeout (15 s).
	Timeout time.Duration

	// ManifestSources is how many sources are asked for the manifest at
	// once; the manifest most of them agree on is used. If zero,
	// DefaultManifestSources (3).
	ManifestSources int

	// Logger receives the sync's log lines. If nil, nothing is logged.
	Logger *slog.Logger

	// OnProgress, if set, is called after each phase change and chunk,
	// from one goroutine.
	OnProgress func(Progress)

	// OnBadPeer, if set, is called once for each source that served a
	// bad manifest or chunk (err wraps ErrBadManifest or ErrBadChunk);
	// the node bans it. Sync itself stops using it.
	OnBadPeer func(id string, err error)
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Parallel < 0 {
		errs = append(errs, fmt.Errorf("Parallel (%d) must not be negative", c.Parallel))
	}
	if c.PerPeer < 0 {
		errs = append(errs, fmt.Errorf("PerPeer (%d) must not be negative", c.PerPeer))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout (%v) must not be negative", c.Timeout))
	}
	if c.ManifestSources < 0 {
		errs = append(errs, fmt.Errorf("ManifestSources (%d) must not be negative", c.ManifestSources))
	}
	if len(errs) > 0 {
		return fmt.Errorf("snapsync: config: %w", errors.Join(errs...))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.PerPeer == 0 {
		c.PerPeer = DefaultPerPeer
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ManifestSources == 0 {
		c.ManifestSources = DefaultManifestSources
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// peer is the syncer's view of one source.
type peer struct {
	src      Source
	inflight int
	errs     int    // failed requests in a row
	dropped  string // why it is no longer used; "" while in use
}

// syncer holds one Sync call's state; only the dispatching goroutine
// touches it.
type syncer struct {
	cfg     Config
	st      *store.Store
	trusted Trusted
	peers   []*peer
	next    int // round-robin start for pick
	bytes   int64
	pinned  types.Hash // the manifest a half-done import began with (zero: none)
}

// Sync fills the empty store st with the state at trusted (see the
// package doc): it fetches and verifies the manifest, begins (or resumes)
// the store's import session, downloads the chunks not yet imported from
// sources in parallel, verifies and imports each on arrival, and finishes
// the import (recomputing the root). A source that serves bad data is
// reported to OnBadPeer and dropped; its chunk is retried elsewhere. If st
// already finished an import of trusted, Sync returns nil at once.
//
// When ctx ends, Sync waits for its requests in flight to stop and returns
// ctx's error; every chunk imported so far stays, and the next Sync resumes.
// An import session in st for another snapshot is an error wrapping
// store.ErrImportTarget: the caller decides whether to store.AbortImport it.
// A session for the same block pins its manifest (store.ImportTarget's
// Manifest): Sync prefers a source that serves it, and if none in the
// manifest round does, it aborts the session and starts afresh.
func Sync(ctx context.Context, cfg Config, st *store.Store, trusted Trusted, sources []Source) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if len(trusted.Header) == 0 {
		return errors.New("snapsync: the trusted header is empty")
	}
	if h, _, ok := st.Head(); ok {
		if at, synced := st.SyncedAt(); synced && at == trusted.Height {
			// Already synced at this height; its header may be pruned since.
			if got, kept, err := st.Hash(at); err == nil && (!kept || got == trusted.BlockHash) {
				return nil
			}
		}
		return fmt.Errorf("%w: the store already holds blocks up to %d; snapshot sync needs an empty data dir", store.ErrImportTarget, h)
	}
	s := &syncer{cfg: cfg, st: st, trusted: trusted}
	for _, src := range sources {
		s.peers = append(s.peers, &peer{src: src})
	}
	// A half-done import of this block pins the manifest its chunk
	// indices refer to: prefer a source serving that one.
	cur, importing := st.Importing()
	sameBlock := importing && cur.Height == trusted.Height && cur.Hash == trusted.BlockHash
	if sameBlock {
		s.pinned = cur.Manifest
	}
	s.progress("manifest", 0, 0)
	m, mhash, err := s.manifest(ctx)
	if err != nil {
		return err
	}
	target := store.ImportTarget{
		Height: trusted.Height, Hash: trusted.BlockHash, Root: trusted.StateRoot, Header: trusted.Header,
		Buckets: int(m.Buckets), Chunks: len(m.Chunks),
		EpochBoundary: trusted.EpochBoundary, Cert: trusted.Cert, EpochData: trusted.EpochData,
		Manifest: mhash,
	}
	if sameBlock && (cur.Manifest != mhash || cur.Chunks != target.Chunks || cur.Buckets != target.Buckets) {
		// No source serves the manifest the import began with (the
		// network's exporters chunk differently now): what was imported
		// cannot be matched to these chunks, so the import starts afresh.
		cfg.Logger.Warn("snapshot sync: no source serves the manifest the half-done import began with; starting it afresh",
			"height", trusted.Height, "was", cur.Manifest, "now", mhash)
		if err := st.AbortImport(); err != nil {
			return fmt.Errorf("snapsync: %w", err)
		}
	}
	resumed, err := st.BeginImport(target)
	if err != nil {
		return fmt.Errorf("snapsync: %w", err)
	}
	imported := st.Imported()
	var pending []int
	for i, ok := range imported {
		if !ok {
			pending = append(pending, i)
		}
	}
	cfg.Logger.Info("snapshot sync", "height", trusted.Height, "root", trusted.StateRoot, "chunks", len(m.Chunks),
		"missing", len(pending), "resumed", resumed, "sources", s.usable())
	if err := s.chunks(ctx, m, pending); err != nil {
		return err
	}
	s.progress("verify", len(m.Chunks), len(m.Chunks))
	if err := st.FinishImport(); err != nil {
		return fmt.Errorf("snapsync: finishing the import: %w", err)
	}
	cfg.Logger.Info("snapshot sync done", "height", trusted.Height, "bytes", s.bytes)
	return nil
}

func (s *syncer) usable() int {
	n := 0
	for _, p := range s.peers {
		if p.dropped == "" {
			n++
		}
	}
	return n
}

func (s *syncer) progress(phase string, done, total int) {
	if s.cfg.OnProgress != nil {
		s.cfg.OnProgress(Progress{Phase: phase, Done: done, Total: total, Bytes: s.bytes, Peers: s.usable()})
	}
}

// drop stops using p; bad marks a faulty source for OnBadPeer.
func (s *syncer) drop(p *peer, err error, bad bool) {
	if p.dropped != "" {
		return
	}
	p.dropped = err.Error()
	s.cfg.Logger.Warn("snapshot source dropped", "peer", p.src.ID(), "faulty", bad, "err", err)
	if bad && s.cfg.OnBadPeer != nil {
		s.cfg.OnBadPeer(p.src.ID(), err)
	}
}

func (s *syncer) noSources(what string) error {
	var why []string
	for _, p := range s.peers {
		r := p.dropped
		if r == "" {
			r = "not asked"
		}
		why = append(why, p.src.ID()+": "+r)
	}
	return fmt.Errorf("%w: %s from %d sources (%s)", ErrNoSources, what, len(s.peers), strings.Join(why, "; "))
}

// manifest asks sources for the manifest, ManifestSources at a time, until
// a round yields at least one that verifies; of those it takes the one
// most sources served (ties: the first source's). Sources that served a
// bad manifest are reported and dropped; sources that served another
// valid manifest are dropped as disagreeing.
func (s *syncer) manifest(ctx context.Context) (*Manifest, types.Hash, error) {
	type answer struct {
		p   *peer
		b   []byte
		m   *Manifest
		err error
	}
	for start := 0; start < len(s.peers); start += s.cfg.ManifestSources {
		round := s.peers[start:min(start+s.cfg.ManifestSources, len(s.peers))]
		answers := make(chan answer, len(round))
		for _, p := range round {
			go func() {
				rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
				defer cancel()
				b, err := p.src.Manifest(rctx, s.trusted.Height)
				a := answer{p: p, b: b, err: err}
				if err == nil {
					a.m, a.err = s.checkManifest(b)
				}
				answers <- a
			}()
		}
		var good []answer
		for range round {
			a := <-answers
			switch {
			case a.err == nil:
				good = append(good, a)
			case errors.Is(a.err, ErrBadManifest):
				s.drop(a.p, a.err, true)
			default:
				a.p.errs++
				s.cfg.Logger.Info("manifest request failed", "peer", a.p.src.ID(), "err", a.err)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, types.Hash{}, err
		}
		if len(good) == 0 {
			continue
		}
		hashes := make([]types.Hash, len(good)) // each manifest hashed once
		votes := map[types.Hash]int{}
		best := -1
		for i, a := range good {
			hashes[i] = types.HashBytes(a.b)
			votes[hashes[i]]++
			if best < 0 || votes[hashes[i]] > votes[hashes[best]] {
				best = i
			}
		}
		if i := slices.Index(hashes, s.pinned); !s.pinned.IsZero() && i >= 0 {
			best = i // the pinned manifest wins over the majority
		}
		chosen := hashes[best]
		for i, a := range good {
			if hashes[i] != chosen {
				s.drop(a.p, fmt.Errorf("serves another valid manifest (chunked differently) than the majority"), false)
			}
		}
		s.cfg.Logger.Info("manifest verified", "height", good[best].m.Height, "chunks", len(good[best].m.Chunks), "agree", votes[chosen], "of", len(good))
		return good[best].m, chosen, nil
	}
	for _, p := range s.peers {
		if p.dropped == "" {
			p.dropped = "no manifest"
		}
	}
	return nil, types.Hash{}, s.noSources(fmt.Sprintf("no verifiable manifest for height %d", s.trusted.Height))
}

// checkManifest decodes b and checks it against the trusted header.
func (s *syncer) checkManifest(b []byte) (*Manifest, error) {
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, err
	}
	t := s.trusted
	if m.Height != t.Height || m.BlockHash != t.BlockHash {
		return nil, fmt.Errorf("%w: it is for block %d (%v), the trusted header is block %d (%v)", ErrBadManifest, m.Height, m.BlockHash, t.Height, t.BlockHash)
	}
	if err := Verify(m, t.StateRoot); err != nil {
		return nil, err
	}
	return m, nil
}

// result is one chunk request's outcome.
type result struct {
	p     *peer
	index int
	n     int   // bytes downloaded
	err   error // nil: imported
	fatal bool  // the store failed: stop
}

// chunks downloads, verifies and imports the pending chunks.
func (s *syncer) chunks(ctx context.Context, m *Manifest, pending []int) error {
	total := len(m.Chunks)
	done := total - len(pending)
	s.progress("chunks", done, total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result)
	inflight := 0
	var fatal error
	for {
		for fatal == nil && ctx.Err() == nil && inflight < s.cfg.Parallel && len(pending) > 0 {
			p := s.pick()
			if p == nil {
				break
			}
			idx := pending[0]
			pending = pending[1:]
			p.inflight++
			inflight++
			go func() { results <- s.fetch(ctx, m, p, idx) }()
		}
		if inflight == 0 {
			switch {
			case fatal != nil:
				return fatal
			case ctx.Err() != nil:
				return ctx.Err()
			case len(pending) == 0:
				return nil
			}
			return s.noSources(fmt.Sprintf("%d of %d chunks missing", len(pending), total))
		}
		r := <-results
		inflight--
		r.p.inflight--
		switch {
		case r.err == nil:
			done++
			s.bytes += int64(r.n)
			r.p.errs = 0
			s.progress("chunks", done, total)
			continue
		case r.fatal:
			if fatal == nil {
				fatal = r.err
				cancel()
			}
		case errors.Is(r.err, ErrBadChunk):
			s.drop(r.p, r.err, true)
		case errors.Is(r.err, ErrLayout):
			s.drop(r.p, r.err, false)
		case ctx.Err() != nil:
		default:
			r.p.errs++
			s.cfg.Logger.Info("chunk request failed", "peer", r.p.src.ID(), "chunk", r.index, "err", r.err)
			if r.p.errs >= maxSourceErrors {
				s.drop(r.p, fmt.Errorf("%d requests in a row failed, the last: %w", r.p.errs, r.err), false)
			}
		}
		pending = append(pending, r.index) // retried, by another source if one is free
	}
}

// pick returns the usable source with the fewest requests in flight
// (below PerPeer), starting the search after the last one picked.
func (s *syncer) pick() *peer {
	var best *peer
	bi := 0
	for k := range s.peers {
		i := (s.next + k) % len(s.peers)
		p := s.peers[i]
		if p.dropped != "" || p.inflight >= s.cfg.PerPeer {
			continue
		}
		if best == nil || p.inflight < best.inflight || p.inflight == best.inflight && p.errs < best.errs {
			best, bi = p, i
		}
	}
	if best != nil {
		s.next = bi + 1
	}
	return best
}

// fetch downloads chunk idx from p, verifies it and imports it.
func (s *syncer) fetch(ctx context.Context, m *Manifest, p *peer, idx int) result {
	r := result{p: p, index: idx}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	b, err := p.src.Chunk(rctx, m.Height, idx)
	cancel()
	if err != nil {
		r.err = fmt.Errorf("chunk %d: %w", idx, err)
		return r
	}
	r.n = len(b)
	entries, err := VerifyChunk(m, idx, b)
	if err != nil {
		r.err = fmt.Errorf("chunk %d from %s: %w", idx, p.src.ID(), err)
		return r
	}
	info := m.Chunks[idx]
	if err := s.st.ImportChunk(idx, info.FirstBucket, info.LastBucket, entries); err != nil {
		r.err, r.fatal = fmt.Errorf("snapsync: importing chunk %d: %w", idx, err), true
	}
	return r
}
