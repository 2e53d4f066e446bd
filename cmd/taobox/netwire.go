package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"taobox/chain/node"
	"taobox/chain/p2p"
	"taobox/chain/snapsync"
	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// chainNet joins a chain node to its peers: it is the node's
// node.Network (over a chain/p2p Host) and the Host's p2p.Handler (into
// the node and the snapshot exporter). The Host exists before the node
// (the node's Config needs the Network), so the node is attached after
// Open; until then gossip is ignored and requests are refused as "not
// found".
type chainNet struct {
	host  *p2p.Host
	node  atomic.Pointer[node.Node]
	snaps *snapsync.Exporter // nil: this node serves no snapshots
	log   *slog.Logger

	probes *probeServer // answers ReqProbe (netprobe.go)
	asked  probeAsked   // when askProbe last asked each peer

	takeMu sync.Mutex // one snapshot at a time

	peerWait  time.Duration // how long syncSnapshot waits for a first peer
	bootstrap int           // how many --peers were given
}

var _ node.PeerNetwork = (*chainNet)(nil)

// netConfig is what startChainNet needs.
type netConfig struct {
	Key       ed25519.PrivateKey // node key (peer id); the validator's hotkey or a fresh key
	ChainID   types.Hash
	Listen    string   // UDP host:port
	Bootstrap []string // peers to dial
	DataDir   string   // snapshots go under DataDir/snapshots
	Logger    *slog.Logger
	Probes    *probeServer  // answers ReqProbe; nil: newProbeServer() (tests pass their own clock)
	PeerWait  time.Duration // how long a snapshot sync waits for a first peer; 0: 30 s
}

// startChainNet binds the p2p host and starts it; attach the node with
// cn.attach once it is open.
func startChainNet(ctx context.Context, c netConfig) (*chainNet, error) {
	cn := &chainNet{log: c.Logger, probes: c.Probes, peerWait: c.PeerWait, bootstrap: len(c.Bootstrap)}
	if cn.peerWait == 0 {
		cn.peerWait = 30 * time.Second
	}
	if cn.probes == nil {
		cn.probes = newProbeServer()
	}
	if c.DataDir != "" {
		ex, err := snapsync.NewExporter(snapsync.ExporterConfig{
			Dir: filepath.Join(c.DataDir, "snapshots"), ChainID: c.ChainID, Logger: c.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
		cn.snaps = ex
	}
	h, err := p2p.New(p2p.Config{
		Key: c.Key, ChainID: c.ChainID, Listen: c.Listen, Bootstrap: c.Bootstrap, Logger: c.Logger,
	}, cn)
	if err != nil {
		return nil, fmt.Errorf("p2p: %w (is another node using UDP %s? pick another --p2p address)", err, c.Listen)
	}
	cn.host = h
	h.Start(ctx)
	return cn, nil
}

// attach connects the opened node: from now on gossip and requests reach
// it, and it takes a snapshot at each authority epoch boundary.
func (cn *chainNet) attach(ctx context.Context, n *node.Node, epochBlocks uint64) {
	cn.node.Store(n)
	if cn.snaps == nil || epochBlocks == 0 {
		return
	}
	blocks, cancel := n.Subscribe()
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case b, ok := <-blocks:
				if !ok {
					return
				}
				if b.Height > 0 && b.Height%epochBlocks == 0 {
					go cn.takeSnapshot(n, b.Height)
				}
			}
		}
	}()
}

// takeSnapshot exports the state at the node's head (an epoch boundary
// just committed); a later boundary's snapshot replaces older ones (the
// exporter keeps two).
func (cn *chainNet) takeSnapshot(n *node.Node, height uint64) {
	if !cn.takeMu.TryLock() {
		return // the previous one is still being written; skip this boundary
	}
	defer cn.takeMu.Unlock()
	start := time.Now()
	m, err := cn.snaps.TakeAt(n.Store(), height)
	if errors.Is(err, snapsync.ErrMovedOn) {
		cn.log.Debug("no snapshot of this epoch boundary: the next block came first", "height", height)
		return
	}
	if err != nil {
		cn.log.Warn("snapshot failed; peers cannot sync from this node until the next epoch", "height", height, "err", err)
		return
	}
	cn.log.Info("snapshot taken", "height", m.Height, "chunks", len(m.Chunks), "ms", time.Since(start).Milliseconds())
}

// Close stops the host.
func (cn *chainNet) Close() error { return cn.host.Close() }

// Broadcast implements node.Network.
func (cn *chainNet) Broadcast(t types.MsgType, payload []byte) { cn.host.Broadcast(t, payload) }

// Request implements node.Network: it asks the connected peers that claim
// the highest heads first, up to three of them, until one answers.
func (cn *chainNet) Request(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error) {
	_, b, err := cn.RequestPeer(ctx, t, payload, nil)
	return b, err
}

// RequestPeer implements node.PeerNetwork: Request, skipping the peers
// listed (by PeerID.String), and naming the peer that answered.
func (cn *chainNet) RequestPeer(ctx context.Context, t types.MsgType, payload []byte, skip []string) (string, []byte, error) {
	var peers []p2p.PeerInfo
	for _, p := range cn.host.Peers() {
		if !slices.Contains(skip, p.ID.String()) {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		return "", nil, p2p.ErrNoPeer
	}
	slices.SortStableFunc(peers, func(a, b p2p.PeerInfo) int { return cmp.Compare(b.Status.Head, a.Status.Head) })
	var errs []error
	notFound, pruned := 0, 0
	for i, p := range peers {
		if i == 3 || ctx.Err() != nil {
			break
		}
		b, err := cn.host.Request(ctx, p.ID, t, payload)
		if err == nil {
			return p.ID.String(), b, nil
		}
		// "Not found", or refused because the connection is still
		// saying hello: this peer has nothing for us now.
		if errors.Is(err, p2p.ErrNotFound) || errors.Is(err, p2p.ErrRefused) {
			notFound++
			if errors.Is(err, p2p.ErrNotFound) && isPruned(t, payload, p, err) {
				pruned++
			}
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p.ID, err))
	}
	if notFound == len(errs) && notFound > 0 {
		kind := node.ErrNotFound
		if pruned > 0 {
			kind = node.ErrPruned // a peer no longer keeps the blocks asked for: the node warns
		}
		return "", nil, fmt.Errorf("%w: %v", kind, errors.Join(errs...))
	}
	return "", nil, errors.Join(errs...)
}

// isPruned reports whether a peer's "not found" to a ReqBlocks says it
// pruned the first block asked for (node.ErrPruned's text) and its head is
// past that block. The peer's word only picks the node's warning (what to
// check); nothing is done on it.
func isPruned(t types.MsgType, payload []byte, p p2p.PeerInfo, err error) bool {
	if t != types.ReqBlocks {
		return false
	}
	q, derr := node.DecodeRangeRequest(payload)
	return derr == nil && strings.Contains(err.Error(), "is pruned here") && p.Status.Head >= max(q.From, 1)
}

// Misbehaved implements node.PeerNetwork: the peer (a PeerID.String, as
// RequestPeer names it) is banned and disconnected.
func (cn *chainNet) Misbehaved(peer string, why error) {
	id, err := types.ParseAddress(peer)
	if err != nil {
		cn.log.Error("p2p: a misbehaving peer's id does not parse", "peer", peer, "err", err)
		return
	}
	cn.host.Ban(id, why.Error())
}

// Gossip implements p2p.Handler.
func (cn *chainNet) Gossip(from p2p.PeerID, t types.MsgType, payload []byte) error {
	n := cn.node.Load()
	if n == nil {
		return nil
	}
	return toP2PErr(n.HandleGossip(from.String(), t, payload))
}

// Serve implements p2p.Handler: snapshot requests go to the exporter,
// probes to the probe server, chain requests to the node.
func (cn *chainNet) Serve(ctx context.Context, from p2p.PeerID, t types.MsgType, payload []byte) ([]byte, error) {
	switch t {
	case types.ReqProbe:
		return cn.serveProbe(ctx, from, payload)
	case types.ReqManifest, types.ReqChunk:
		if cn.snaps == nil {
			return nil, fmt.Errorf("%w: this node keeps no snapshots", p2p.ErrNotFound)
		}
		b, err := cn.snaps.Serve(t, payload)
		switch {
		case err == nil:
			return b, nil
		case errors.Is(err, snapsync.ErrNotFound):
			return nil, fmt.Errorf("%w: %v", p2p.ErrNotFound, err)
		case isDecodeErr(err):
			return nil, fmt.Errorf("%w: %v", p2p.ErrMisbehaving, err)
		}
		return nil, err
	}
	n := cn.node.Load()
	if n == nil {
		return nil, fmt.Errorf("%w: the node is starting", p2p.ErrNotFound)
	}
	b, err := n.ServeRequest(ctx, t, payload)
	return b, toP2PErr(err)
}

// Status implements p2p.Handler.
func (cn *chainNet) Status() p2p.Status {
	n := cn.node.Load()
	if n == nil {
		return p2p.Status{}
	}
	h, hash := n.Head()
	f, _ := n.Finalized()
	return p2p.Status{Head: h, Finalized: f, HeadHash: hash}
}

// toP2PErr maps the node's error kinds onto the transport's.
func toP2PErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, node.ErrMisbehaving):
		return fmt.Errorf("%w: %v", p2p.ErrMisbehaving, err)
	case errors.Is(err, node.ErrNotFound):
		return fmt.Errorf("%w: %v", p2p.ErrNotFound, err)
	}
	return err
}

// isDecodeErr reports whether err comes from decoding malformed bytes.
func isDecodeErr(err error) bool {
	for _, e := range []error{types.ErrShort, types.ErrTooLong, types.ErrTrailing, types.ErrNonCanon, types.ErrBadFormat} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// waitPeers waits until the host has at least one peer, or d has passed.
func (cn *chainNet) waitPeers(ctx context.Context, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		if n := len(cn.host.Peers()); n > 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sources returns one snapshot source per connected peer.
func (cn *chainNet) sources() []snapsync.Source {
	var out []snapsync.Source
	for _, p := range cn.host.Peers() {
		id := p.ID
		out = append(out, snapsync.PeerSource(id.String(), func(ctx context.Context, t types.MsgType, b []byte) ([]byte, error) {
			return cn.host.Request(ctx, id, t, b)
		}))
	}
	return out
}

// syncSnapshot brings an empty store in dir to a recent epoch boundary by
// snapshot sync from the peers (DESIGN: "a sync"), or finishes one a
// killed process left half done: epoch handoff proofs from the genesis →
// the newest proven boundary that a peer holds a snapshot of → its chunks
// from all peers, verified against the proven state root and imported
// with the progress marker in one batch each → the store's head is that
// block. The node opened on dir afterwards fetches the blocks after it.
// A store that already has a chain is left alone, even when the peers
// pruned its next block (it was down past their --keep-blocks): the node
// then warns and says what to do (docs/sync.md), as moving its chain aside
// on the peers' word would let lying peers make a validator throw away
// its chain and its voting record. An empty store is left empty when the
// peers answer but none can serve a proven snapshot (the node then
// replays every block from the genesis). When no peer answers at all, a
// genesis authority (founder) starts the chain from its genesis; any other
// node gets an error and the store stays empty, so that the next start,
// with the peers fixed, can still sync a snapshot (a genesis block
// committed now would rule that out and leave a replay of every block,
// which peers that pruned their bodies cannot serve). The only genesis
// authority started without --peers starts at once: there is nobody to
// wait for. progress is set from 0 to 1 as chunks arrive.
func (cn *chainNet) syncSnapshot(ctx context.Context, dir string, g *state.Genesis, keep uint64, key ed25519.PrivateKey, progress *atomic.Uint64) error {
	log := cn.log
	founder := isFounder(g, key)
	setProgress := func(f float64) { progress.Store(math.Float64bits(f)) }
	st, err := store.Open(dir, store.Options{KeepBlocks: keep})
	if err != nil {
		return err
	}
	defer st.Close()
	var points []node.SyncPoint
	if t, ok := st.Importing(); ok {
		h, err := types.DecodeHeader(t.Header)
		if err != nil {
			return fmt.Errorf("the snapshot import in %s: %w", dir, err)
		}
		log.Info("resuming the snapshot sync a stopped process began", "height", t.Height, "chunks_done", countTrue(st.Imported()), "chunks", t.Chunks)
		points = []node.SyncPoint{{Height: t.Height, Hash: t.Hash, Header: *h, Encoded: t.Header, Cert: t.Cert, NextSet: t.EpochData}}
	} else if _, _, ok := st.Head(); ok {
		setProgress(1)
		return nil // a chain is here already: the node continues it
	}
	if len(points) == 0 {
		if founder && cn.bootstrap == 0 && soleAuthority(g, key) {
			log.Info("no --peers and this key is the genesis' only authority: starting the chain from the genesis block without waiting for peers")
			return nil
		}
		log.Info("waiting for peers before a snapshot sync", "up_to", cn.peerWait, "peers", cn.bootstrap)
	}
	if cn.waitPeers(ctx, cn.peerWait) == 0 {
		if len(points) > 0 {
			return fmt.Errorf("no peer answered within %v; the half-done snapshot sync resumes at the next start (check --peers and the network)", cn.peerWait)
		}
		if !founder {
			return fmt.Errorf("no peer answered within %v: nothing was written, so the next start syncs from scratch (check --peers and that the peers are up)", cn.peerWait)
		}
		log.Warn("no peer answered: this genesis authority starts the chain from the genesis block (check --peers)", "waited", cn.peerWait)
		return nil
	}
	resumed := len(points) > 0
	var lastErr error
	// Peers that are starting too answer with errors: keep asking for a
	// while. A snapshot can vanish while it downloads (peers keep two
	// epochs' worth): prove again, and a newer boundary is tried.
	for round := 0; round < 3 && ctx.Err() == nil; round++ {
		if !resumed {
			if points, err = cn.proveEpochs(ctx, g, 30*time.Second); err != nil {
				log.Warn("sync: the peers did not prove the authority handoffs; replaying blocks from the genesis instead", "err", err)
				return abortImport(st)
			}
			if len(points) == 0 {
				log.Info("sync: the chain has not finished its first authority epoch; replaying blocks from the genesis")
				return abortImport(st)
			}
			log.Info("sync: authority handoffs proven", "epochs", len(points), "newest", points[len(points)-1].Height)
		}
		resumed = false
		done, last, err := cn.trySnapshots(ctx, st, points, setProgress)
		if done || err != nil {
			return err
		}
		lastErr = last
	}
	log.Warn("sync: no peer serves a snapshot of a proven boundary; replaying blocks from the genesis", "err", lastErr)
	return abortImport(st)
}

// abortImport drops a half-done snapshot import, so that the node can
// start from the genesis instead (a store with an import refuses blocks).
func abortImport(st *store.Store) error {
	if _, ok := st.Importing(); ok {
		return st.AbortImport()
	}
	return nil
}

// proveEpochs asks the peers for the epoch handoff proof until one
// verifies, for up to wait (peers that start at the same time answer
// "starting" or "hello first" for a moment).
func (cn *chainNet) proveEpochs(ctx context.Context, g *state.Genesis, wait time.Duration) ([]node.SyncPoint, error) {
	cn.log.Info("sync: proving the authority handoffs from the genesis")
	deadline := time.Now().Add(wait)
	for {
		points, err := node.ProveEpochs(ctx, cn, g)
		if err == nil || len(points) > 0 {
			return points, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		cn.log.Debug("sync: epoch proof not available yet; asking again", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// trySnapshots syncs the state of the newest of points that a peer holds
// a snapshot of (at most the three newest are tried). done reports a
// finished import; otherwise last is why the newest tried failed, and err
// a failure that ends the sync (the context, the store).
func (cn *chainNet) trySnapshots(ctx context.Context, st *store.Store, points []node.SyncPoint, setProgress func(float64)) (done bool, last, err error) {
	log := cn.log
	for i := len(points) - 1; i >= 0 && i >= len(points)-3; i-- {
		p := points[i]
		trusted := snapsync.Trusted{
			Height: p.Height, BlockHash: p.Hash, StateRoot: p.Header.StateRoot, Header: p.Encoded,
			EpochBoundary: true, Cert: p.Cert, EpochData: p.NextSet,
		}
		if cur, ok := st.Importing(); ok && cur.Height != p.Height {
			// A half-done import of another boundary: this one replaces it.
			log.Info("sync: this snapshot replaces the half-done import of another boundary; its chunks are dropped",
				"height", p.Height, "was", cur.Height, "chunks_dropped", countTrue(st.Imported()), "chunks", cur.Chunks)
			if err := st.AbortImport(); err != nil {
				return false, nil, err
			}
		}
		start := time.Now()
		var lastPct int
		err := snapsync.Sync(ctx, snapsync.Config{
			Logger: log,
			OnProgress: func(pr snapsync.Progress) {
				if pr.Total > 0 {
					setProgress(float64(pr.Done) / float64(pr.Total))
					if pct := pr.Done * 100 / pr.Total; pct/10 != lastPct/10 || pr.Done == pr.Total {
						lastPct = pct
						log.Info("sync: snapshot", "phase", pr.Phase, "progress", progressBar(pct), "chunks", fmt.Sprintf("%d/%d", pr.Done, pr.Total),
							"percent", pct, "mb", fmt.Sprintf("%.1f", float64(pr.Bytes)/1e6), "peers", pr.Peers)
					}
				}
			},
			OnBadPeer: func(id string, err error) {
				if pid, perr := types.ParseAddress(id); perr == nil {
					cn.host.Ban(pid, err.Error())
				}
				log.Warn("sync: a peer served bad snapshot data; banned", "peer", id, "err", err)
			},
		}, st, trusted, cn.sources())
		if err == nil {
			setProgress(1)
			log.Info("sync: snapshot imported", "height", p.Height, "state_root", p.Header.StateRoot, "s", time.Since(start).Seconds())
			return true, nil, nil
		}
		last = err
		if ctx.Err() != nil {
			return false, nil, ctx.Err()
		}
		if errors.Is(err, snapsync.ErrNoSources) && countTrue(st.Imported()) > 0 {
			// The peers stopped serving it (busy, or it rotated out) after
			// part of it arrived: the next round proves again and resumes
			// it if it is still the newest; a newer one replaces it.
			cur, _ := st.Importing()
			log.Warn("sync: no peer serves this snapshot now; proving the newest boundary again: the import resumes if it is still this one, else a newer snapshot replaces it",
				"height", p.Height, "chunks_done", countTrue(st.Imported()), "chunks", cur.Chunks, "err", err)
			return false, err, nil
		}
		log.Warn("sync: no usable snapshot at this boundary; trying an older one", "height", p.Height, "err", err)
	}
	return false, last, nil
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// progressBar draws pct (0–100) as a 20-character bar for log lines.
func progressBar(pct int) string {
	n := min(max(pct, 0), 100) / 5
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + "]"
}

// soleAuthority reports whether key is the genesis' only authority (or g
// lists none): nobody else can have made a block of this chain.
func soleAuthority(g *state.Genesis, key ed25519.PrivateKey) bool {
	if key == nil {
		return false
	}
	id := types.AccountIDFromPrivateKey(key)
	for _, a := range g.Authorities {
		if a.Hotkey != id {
			return false
		}
	}
	return true
}

// isFounder reports whether key is one of g's initial authorities (or g
// lists none, which makes the node's key the only one): a node that may
// start the chain from its genesis block without peers.
func isFounder(g *state.Genesis, key ed25519.PrivateKey) bool {
	if key == nil {
		return false
	}
	if len(g.Authorities) == 0 {
		return true
	}
	id := types.AccountIDFromPrivateKey(key)
	for _, a := range g.Authorities {
		if a.Hotkey == id {
			return true
		}
	}
	return false
}
