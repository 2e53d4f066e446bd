package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// ErrClosed is returned by the methods of a closed node.
var ErrClosed = errors.New("node: closed")

// subscriberBuffer is how many blocks a subscriber may lag before it loses
// blocks.
const subscriberBuffer = 64

// maxApplyRetries bounds how often ProduceBlock re-applies a block after
// dropping an invalid transaction; after that it keeps the valid prefix.
const maxApplyRetries = 8

// maxRunFailures is how many blocks in a row Run may fail to produce before
// it gives up and returns the error.
const maxRunFailures = 3

// BlockInfo is a committed block as subscribers see it. Receivers must not
// modify it: every subscriber gets the same slices.
type BlockInfo struct {
	Height uint64
	Hash   types.Hash
	Header types.Header
	Txs    []types.Tx
	Events []types.Event
}

// Node is a running single-authority chain node: the store, the mempool,
// block production and the local API. Its methods are safe for concurrent
// use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	chainID types.Hash
	ln      net.Listener // nil: no API

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // background work (the tx index rebuild)

	produceMu sync.Mutex // serialises ProduceBlock and Close

	mu      sync.Mutex // guards the fields below
	head    types.Header
	headID  types.Hash
	pool    *Mempool
	index   *txIndex
	subs    map[int]chan BlockInfo
	nextSub int
	running bool
	closed  bool
	stats   blockStats // of the last produced block
}

// blockStats is where the time of the last ProduceBlock went.
type blockStats struct {
	txs, failed, dropped, epochs, retries int
	selectT, apply, root, commit, total   time.Duration
}

// Open opens (or creates) the chain in cfg.DataDir. On an empty store it
// commits block 0: the genesis state, a header at height 0 with a zero
// Parent, TimeMs = Genesis.TimeMs and no transactions, signed by the
// authority and kept forever (an epoch boundary for the store). On an
// existing store it checks that the stored chain is the genesis' chain.
// With an APIAddr it binds the API listener now (Run serves it), so a busy
// port fails here.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := store.Open(cfg.DataDir, store.Options{KeepBlocks: cfg.KeepBlocks})
	if err != nil {
		return nil, fmt.Errorf("node: opening the chain store: %w", err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, store: st, chainID: cfg.Genesis.ID(),
		pool: NewMempool(cfg.MempoolMax, PerAccountMax), index: newTxIndex(cfg.KeepBlocks),
		subs: map[int]chan BlockInfo{},
	}
	if err := n.loadHead(); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.APIAddr != "" {
		ln, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("node: the API address %s: %w (is another node running? pick another port)", cfg.APIAddr, err)
		}
		n.ln = ln
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.bg.Add(1)
	go n.rebuildIndex()
	n.log.Info("node open", "data", cfg.DataDir, "chain_id", n.chainID, "height", n.head.Height,
		"hash", n.headID, "state_root", n.head.StateRoot, "api", n.APIAddr())
	return n, nil
}

// loadHead reads the head block, committing genesis on an empty store.
func (n *Node) loadHead() error {
	height, _, ok := n.store.Head()
	if !ok {
		return n.commitGenesis()
	}
	raw, ok, err := n.store.Header(height)
	if err != nil {
		return fmt.Errorf("node: reading head block %d: %w", height, err)
	}
	if !ok {
		return fmt.Errorf("node: the header of head block %d is missing from %s: %w", height, n.cfg.DataDir, store.ErrCorrupt)
	}
	h, err := types.DecodeHeader(raw)
	if err != nil {
		return fmt.Errorf("node: head block %d in %s: %w", height, n.cfg.DataDir, err)
	}
	if h.ChainID != n.chainID {
		return fmt.Errorf("node: data dir %s holds chain %s, but the genesis (%q) is chain %s: start the node with the genesis file that created this chain, or use a new data directory for a new chain",
			n.cfg.DataDir, h.ChainID, n.cfg.Genesis.ChainName, n.chainID)
	}
	if auth := types.AccountIDFromPrivateKey(n.cfg.Authority); h.Proposer != auth {
		n.log.Warn("the authority key differs from the head block's proposer", "authority", auth, "head_proposer", h.Proposer)
	}
	n.head, n.headID = *h, h.Hash()
	return nil
}

func (n *Node) commitGenesis() error {
	changes, err := n.cfg.Genesis.Changes()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	kvs := toKVs(changes)
	root, err := n.store.RootAfter(kvs)
	if err != nil {
		return fmt.Errorf("node: genesis state: %w", err)
	}
	h := types.Header{Version: types.HeaderVersion, ChainID: n.chainID, TimeMs: n.cfg.Genesis.TimeMs, StateRoot: root}
	types.SignHeader(&h, n.cfg.Authority)
	blk := types.Block{Header: h}
	id := h.Hash()
	if _, err := n.store.CommitBlock(store.BlockCommit{
		Height: 0, Hash: id, Header: h.Encode(), Body: blk.Encode(), Events: types.EncodeEvents(nil),
		Changes: kvs, EpochBoundary: true,
	}); err != nil {
		return fmt.Errorf("node: committing the genesis block: %w", err)
	}
	n.head, n.headID = h, id
	n.log.Info("genesis committed", "chain", n.cfg.Genesis.ChainName, "chain_id", n.chainID, "state_root", root,
		"accounts", len(n.cfg.Genesis.Balances))
	return nil
}

func toKVs(changes []state.Change) []store.KV {
	kvs := make([]store.KV, len(changes))
	for i, c := range changes {
		kvs[i] = store.KV{Key: c.Key, Value: c.Value}
	}
	return kvs
}

// rebuildIndex indexes the transactions of the kept blocks below the head
// at Open, newest first, so GET /v1/tx finds them after a restart.
func (n *Node) rebuildIndex() {
	defer n.bg.Done()
	n.mu.Lock()
	top := n.head.Height
	n.mu.Unlock()
	lo := n.store.Base()
	if top+1 > n.cfg.KeepBlocks {
		lo = max(lo, top+1-n.cfg.KeepBlocks)
	}
	for h := top; h >= lo && h > 0; h-- {
		if n.ctx.Err() != nil {
			return
		}
		blk, evs, ok, err := n.readBlock(h)
		if err != nil || !ok {
			return // pruned meanwhile, or the store closed
		}
		hashes := txHashes(blk.Txs)
		n.mu.Lock()
		n.index.addBlock(h, hashes, evs)
		n.mu.Unlock()
	}
}

// readBlock returns the stored block and events of height h; ok is false if
// the height is pruned or above the head.
func (n *Node) readBlock(h uint64) (*types.Block, []types.Event, bool, error) {
	body, ok, err := n.store.Body(h)
	if err != nil || !ok {
		return nil, nil, false, err
	}
	blk, err := types.DecodeBlock(body)
	if err != nil {
		return nil, nil, false, fmt.Errorf("node: block %d: %w", h, err)
	}
	raw, ok, err := n.store.Events(h)
	if err != nil || !ok {
		return nil, nil, false, err
	}
	evs, err := types.DecodeEvents(raw)
	if err != nil {
		return nil, nil, false, fmt.Errorf("node: events of block %d: %w", h, err)
	}
	return blk, evs, true, nil
}

func txHashes(txs []types.Tx) []types.Hash {
	out := make([]types.Hash, len(txs))
	for i := range txs {
		out[i] = txs[i].Hash()
	}
	return out
}

// ChainID returns the chain id (the genesis hash).
func (n *Node) ChainID() types.Hash { return n.chainID }

// Head returns the height and hash of the last committed block.
func (n *Node) Head() (height uint64, hash types.Hash) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.head.Height, n.headID
}

// HeadHeader returns the header of the last committed block.
func (n *Node) HeadHeader() types.Header {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.head
}

// State returns the committed state: the store itself, so consecutive reads
// may straddle a block commit. For a consistent multi-key view take
// Store().Snapshot() (and release it).
func (n *Node) State() state.Reader { return n.store }

// Store returns the node's store. Only the node commits blocks to it.
func (n *Node) Store() *store.Store { return n.store }

// APIAddr returns the address the API listens on (with the port chosen for
// port 0), or "" without an API.
func (n *Node) APIAddr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// nonces returns a nonce lookup over the committed state, memoised.
func (n *Node) nonces() func(types.AccountID) uint64 {
	memo := map[types.AccountID]uint64{}
	return func(id types.AccountID) uint64 {
		if v, ok := memo[id]; ok {
			return v
		}
		a, err := state.QueryAccount(n.store, id)
		if err != nil {
			n.log.Error("reading an account nonce", "account", id, "err", err)
		}
		memo[id] = a.Nonce
		return a.Nonce
	}
}

// PendingNonce returns the nonce for the account's next new transaction:
// its committed nonce, plus one for each of its pending transactions that
// follow it without a gap.
func (n *Node) PendingNonce(id types.AccountID) (uint64, error) {
	a, err := state.QueryAccount(n.store, id)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pool.PendingNonce(id, a.Nonce), nil
}

// Submit adds tx to the mempool and returns its hash. A refusal is a
// *RejectError with a reason for users: malformed, too large, bad
// signature, expired or too far ahead, nonce already used, duplicate,
// another transaction pending with the nonce, account queue full, mempool
// full, or (for the account's next nonce) cannot pay the fee. Other errors
// are the node's (closed, storage).
func (n *Node) Submit(tx *types.Tx) (types.Hash, error) {
	if tx == nil {
		return types.Hash{}, reject(RejectMalformed, "malformed: no transaction")
	}
	if err := types.ValidateCall(tx.Call); err != nil {
		return types.Hash{}, reject(RejectMalformed, "malformed: %v", err)
	}
	enc := tx.Encode()
	if len(enc) > types.MaxTxSize {
		return types.Hash{}, reject(RejectTooLarge, "too large: %d bytes, the limit is %d", len(enc), types.MaxTxSize)
	}
	return n.submit(tx, types.HashBytes(enc))
}

// SubmitEncoded decodes a transaction (types.Tx.Encode) and submits it, as
// POST /v1/tx does.
func (n *Node) SubmitEncoded(b []byte) (types.Hash, error) {
	if len(b) > types.MaxTxSize {
		return types.Hash{}, reject(RejectTooLarge, "too large: %d bytes, the limit is %d", len(b), types.MaxTxSize)
	}
	tx, err := types.DecodeTx(b)
	if err != nil {
		return types.Hash{}, reject(RejectMalformed, "malformed: %v", err)
	}
	return n.submit(tx, types.HashBytes(b))
}

func (n *Node) submit(tx *types.Tx, hash types.Hash) (types.Hash, error) {
	n.mu.Lock()
	dup := n.pool.Has(hash)
	n.mu.Unlock()
	if dup {
		return hash, reject(RejectDuplicate, "transaction %s is already pending", hash)
	}
	if err := tx.Verify(n.chainID); err != nil {
		return hash, reject(RejectBadSignature, "bad signature: the transaction is not signed by its signer %s for chain %s (wrong key, or signed for another chain?)", tx.Signer, n.chainID)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return hash, ErrClosed
	}
	acct, err := state.QueryAccount(n.store, tx.Signer)
	if err != nil {
		return hash, fmt.Errorf("node: reading account %s: %w", tx.Signer, err)
	}
	height := n.head.Height + 1
	if tx.Nonce == acct.Nonce && tx.ValidUntil >= height && tx.ValidUntil <= height+types.MaxValidityWindow && !n.pool.Has(hash) {
		env := state.Env{ChainID: n.chainID, SigVerified: func(types.Hash) bool { return true }}
		if _, err := state.CheckTx(n.store, env, height, tx); err != nil {
			return hash, reject(RejectCannotPayFee, "cannot pay the fee: %v", err)
		}
	}
	if err := n.pool.Add(tx, hash, height, acct.Nonce); err != nil {
		return hash, err
	}
	n.log.Debug("tx admitted", "hash", hash, "signer", tx.Signer, "nonce", tx.Nonce, "kind", tx.Call.Kind(), "pending", n.pool.Len())
	return hash, nil
}

// ProduceBlock produces, commits and announces one block now. It takes the
// executable mempool transactions (Mempool.Select, within types.MaxBlockTxs
// and types.MaxBlockSize), applies them with state.ApplyBlock (a
// transaction the evolving state rejects is dropped from the block and the
// mempool, and the block applied again), computes the state root, signs the
// header, commits the block in one store batch (an epoch boundary when a
// subnet ran its epoch), prunes the mempool (included, stale nonces,
// expired) and notifies subscribers. Calls are serialised.
func (n *Node) ProduceBlock() (*types.Block, error) {
	n.produceMu.Lock()
	defer n.produceMu.Unlock()
	start := time.Now()
	var st blockStats

	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	parent, parentID := n.head, n.headID
	height := parent.Height + 1
	nonce := n.nonces()
	n.pruneLocked(nonce, height)
	txs := n.pool.Select(nonce, types.MaxBlockTxs)
	n.mu.Unlock()
	txs = fitBlock(txs)
	hashes := txHashes(txs)
	verified := make(map[types.Hash]bool, len(txs))
	for _, h := range hashes {
		verified[h] = true // the mempool verified their signatures
	}
	st.selectT = time.Since(start)

	env := state.Env{ChainID: n.chainID, Engine: n.cfg.Engine, SigVerified: func(h types.Hash) bool { return verified[h] }}
	dropped := map[types.Hash]string{}
	var res *state.Result
	t := time.Now()
	for {
		var err error
		res, err = state.ApplyBlock(n.ctx, n.store, env, height, txs)
		var te *state.TxError
		if errors.As(err, &te) && te.Index >= 0 && te.Index < len(txs) {
			bad := txs[te.Index]
			dropped[bad.Hash()] = fmt.Sprintf("dropped at block %d: %s", height, te.Reason)
			n.log.Debug("tx dropped", "height", height, "signer", bad.Signer, "nonce", bad.Nonce, "reason", te.Reason)
			st.retries++
			if st.retries >= maxApplyRetries {
				txs = txs[:te.Index] // the prefix before the failure applied
			} else {
				txs = withoutFrom(txs, te.Index)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("node: applying block %d: %w", height, err)
		}
		break
	}
	st.apply = time.Since(t)
	if st.retries > 0 {
		hashes = txHashes(txs)
	}

	t = time.Now()
	kvs := toKVs(res.Changes)
	root, err := n.store.RootAfter(kvs)
	if err != nil {
		return nil, fmt.Errorf("node: state root of block %d: %w", height, err)
	}
	st.root = time.Since(t)

	t = time.Now()
	hdr := types.Header{
		Version: types.HeaderVersion, ChainID: n.chainID, Height: height,
		TimeMs: max(uint64(n.cfg.Now().UnixMilli()), parent.TimeMs), Parent: parentID,
		TxRoot:    types.MerkleRoot(hashes), // = types.TxRoot(txs), without hashing again
		StateRoot: root, EventsRoot: types.EventsRoot(res.Events),
	}
	types.SignHeader(&hdr, n.cfg.Authority)
	blk := &types.Block{Header: hdr, Txs: txs}
	id := hdr.Hash()
	for _, ev := range res.Events {
		switch {
		case ev.Kind == types.EvEpoch && ev.Netuid != 0:
			st.epochs++
		case ev.Kind == types.EvTxFailed:
			st.failed++
		}
	}
	if _, err := n.store.CommitBlock(store.BlockCommit{
		Height: height, Hash: id, Header: hdr.Encode(), Body: blk.Encode(), Events: types.EncodeEvents(res.Events),
		Changes: kvs, EpochBoundary: st.epochs > 0,
	}); err != nil {
		return nil, fmt.Errorf("node: committing block %d: %w", height, err)
	}
	st.commit = time.Since(t)

	info := BlockInfo{Height: height, Hash: id, Header: hdr, Txs: txs, Events: res.Events}
	n.mu.Lock()
	n.head, n.headID = hdr, id
	n.pool.Remove(hashes...)
	for h, reason := range dropped {
		if n.pool.Remove(h) > 0 {
			n.index.drop(h, reason)
		}
	}
	n.pruneLocked(n.nonces(), height+1)
	n.index.addBlock(height, hashes, res.Events)
	pending := n.pool.Len()
	st.txs, st.dropped, st.total = len(txs), len(dropped), time.Since(start)
	n.stats = st
	for _, c := range n.subs { // under n.mu, so no cancel closes c meanwhile
		select {
		case c <- info:
		default: // a slow subscriber loses this block
		}
	}
	n.mu.Unlock()

	n.log.Info("block", "height", height, "hash", id, "txs", len(txs), "failed", st.failed,
		"dropped", len(dropped), "epochs", st.epochs, "pending", pending,
		"apply_ms", ms(st.apply), "root_ms", ms(st.root), "commit_ms", ms(st.commit), "total_ms", ms(st.total))
	return blk, nil
}

// pruneLocked prunes the mempool for a next block at height and remembers
// why. n.mu must be held.
func (n *Node) pruneLocked(nonce func(types.AccountID) uint64, height uint64) {
	stale, expired := n.pool.Prune(nonce, height)
	for _, h := range stale {
		n.index.drop(h, "dropped: another transaction used its nonce")
	}
	for _, h := range expired {
		n.index.drop(h, fmt.Sprintf("dropped: it expired (block %d is past its valid_until)", height))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fitBlock returns the longest prefix of txs whose block encoding fits
// types.MaxBlockSize. A prefix of Select's result stays executable.
func fitBlock(txs []types.Tx) []types.Tx {
	size := types.HeaderSize + 4
	for i := range txs {
		size += len(txs[i].Encode())
		if size > types.MaxBlockSize {
			return txs[:i]
		}
	}
	return txs
}

// withoutFrom returns txs without txs[i] and without the later transactions
// of the same signer (their nonces no longer follow).
func withoutFrom(txs []types.Tx, i int) []types.Tx {
	signer := txs[i].Signer
	out := make([]types.Tx, 0, len(txs)-1)
	out = append(out, txs[:i]...)
	for _, tx := range txs[i+1:] {
		if tx.Signer != signer {
			out = append(out, tx)
		}
	}
	return out
}

// Subscribe returns a channel that receives every block committed from now
// on, and a function that cancels the subscription (and closes the
// channel). The channel is buffered; a subscriber that falls behind by more
// than its buffer loses blocks rather than delaying production. Close
// closes every subscription.
func (n *Node) Subscribe() (<-chan BlockInfo, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := make(chan BlockInfo, subscriberBuffer)
	if n.closed {
		close(c)
		return c, func() {}
	}
	id := n.nextSub
	n.nextSub++
	n.subs[id] = c
	var once sync.Once
	return c, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if c, ok := n.subs[id]; ok {
				delete(n.subs, id)
				close(c)
			}
		})
	}
}

// Run serves the API (if configured) and produces a block every BlockTime
// until ctx is done, then stops the API server (waiting up to 5 s for
// requests to finish; streams end at once) and returns nil. It returns an
// error if the API server fails or if maxRunFailures blocks in a row fail.
// Run may be called once; Close the node afterwards.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return errors.New("node: Run called twice")
	}
	n.running = true
	n.mu.Unlock()

	var srv *http.Server
	serveErr := make(chan error, 1)
	stopStreams := func() {}
	if n.ln != nil {
		var base context.Context
		base, stopStreams = context.WithCancel(context.Background())
		srv = n.newServer(base)
		go func() { serveErr <- srv.Serve(n.ln) }()
		n.log.Info("API listening", "addr", n.APIAddr())
	}
	shutdown := func() {
		if srv == nil {
			return
		}
		stopStreams()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}
	n.log.Info("producing blocks", "every", n.cfg.BlockTime, "authority", types.AccountIDFromPrivateKey(n.cfg.Authority))
	tick := time.NewTicker(n.cfg.BlockTime)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			shutdown()
			return nil
		case <-n.ctx.Done():
			shutdown()
			return ErrClosed
		case err := <-serveErr:
			if n.ctx.Err() != nil {
				shutdown()
				return ErrClosed // Close closed the listener
			}
			return fmt.Errorf("node: API server: %w", err)
		case <-tick.C:
			if _, err := n.ProduceBlock(); err != nil {
				if errors.Is(err, ErrClosed) {
					shutdown()
					return ErrClosed
				}
				failures++
				n.log.Error("block production failed", "err", err, "failures_in_a_row", failures)
				if failures >= maxRunFailures {
					shutdown()
					return err
				}
				continue
			}
			failures = 0
		}
	}
}

// Close stops the node: it waits for a block in production, closes the
// subscriptions, the API listener (when Run is not serving it) and the
// store. Closing twice is a no-op.
func (n *Node) Close() error {
	n.cancel()
	n.produceMu.Lock()
	defer n.produceMu.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for id, c := range n.subs {
		delete(n.subs, id)
		close(c)
	}
	n.mu.Unlock()
	if n.ln != nil {
		n.ln.Close() // Run's server may have closed it already
	}
	n.bg.Wait()
	if err := n.store.Close(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.log.Info("node closed")
	return nil
}
