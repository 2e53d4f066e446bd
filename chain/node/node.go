package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// ErrClosed is returned by the methods of a closed node.
var ErrClosed = errors.New("node: closed")

// subscriberBuffer is how many blocks a subscriber may lag before it loses
// blocks.
const subscriberBuffer = 64

// maxApplyRetries bounds how often a proposer re-applies a block after
// dropping an invalid transaction; after that it keeps the valid prefix.
const maxApplyRetries = 8

// BlockInfo is a committed block as subscribers see it. Receivers must not
// modify it: every subscriber gets the same slices.
type BlockInfo struct {
	Height uint64
	Hash   types.Hash
	Header types.Header
	Txs    []types.Tx
	Events []types.Event

	// Where this node's time on the block went: executing it (zero when
	// the block was executed earlier, as a proposal), computing its state
	// root, and the store commit.
	Apply, Root, Commit time.Duration
}

// Node is a running chain node: the store, the mempool, the BFT consensus
// driver (chain/consensus), gossip and requests through Config.Network, and
// the local API. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	chainID types.Hash
	ln      net.Listener // nil: no API
	net     Network      // nil: no peers

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // background work (the tx index rebuild, catch-up)

	epochBlocks uint64
	signer      consensus.Signer // nil: a follower

	// consMu guards the consensus driver: the fields below down to mu.
	// It is taken before mu, never after.
	consMu       sync.Mutex
	cons         *consensus.Node
	curSet       *consensus.ValidatorSet // the set of height head+1
	headSet      *consensus.ValidatorSet // the set that finalized the head
	lastCert     []byte                  // the head's encoded certificate (nil at genesis)
	lastHS       *consensus.HardState    // the last persisted hard state
	lastCommitAt time.Time               // local clock at the last commit
	lastBlock    *types.Block
	cache        map[types.Hash]*executed // blocks of height head+1 executed, by id
	pendingValue *consensus.ValueRequest  // the proposal the driver owes
	timers       map[int]*time.Timer
	nextTimer    int
	deferred     []deferredTimer // timers asked for before Run
	timersOn     bool
	future       []consensus.Event                // messages for height head+2 and above, replayed after a set change
	aheadSince   time.Time                        // when a message of a later height was first seen at this height
	halted       error                            // why consensus stopped (a decided block did not commit)
	evidence     map[consensus.EvidenceKey][]byte // pending equivocation evidence, encoded
	consClosed   bool

	seenMu   sync.Mutex
	seen     map[types.Hash]struct{} // gossip already handled (dedupe)
	prevSeen map[types.Hash]struct{}

	catching atomic.Bool
	missing  atomic.Uint64 // the height catch-up last found pruned at every peer asked (0: none)

	mu      sync.Mutex // guards the fields below
	head    types.Header
	headID  types.Hash
	pool    *Mempool
	index   *txIndex
	subs    map[int]chan BlockInfo
	nextSub int
	running bool
	closed  bool
	stats   blockStats // of the last committed block

	onReject atomic.Pointer[func(error)] // set by NewMetrics: counts refused local submissions
}

// blockStats is where the time of the last block went.
type blockStats struct {
	txs, failed, dropped, epochs, retries int
	selectT, apply, root, commit, total   time.Duration
}

// Open opens (or creates) the chain in cfg.DataDir. On an empty store it
// commits block 0: the genesis state, an unsigned header at height 0 with a
// zero Parent, TimeMs = Genesis.TimeMs, no transactions and NextValSetHash
// committing the genesis authority set, kept forever as an epoch boundary
// whose epoch data is that set. Every node of a chain thus has the same
// block 0. On an existing store it checks that the stored chain is the
// genesis' chain, restores the authority sets and the persisted consensus
// hard state (so a restarted validator never signs twice). With an APIAddr
// it binds the API listener first (Run serves it), so a busy port fails
// here before anything is written to the data dir.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var ln net.Listener
	if cfg.APIAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			return nil, fmt.Errorf("node: the API address %s: %w (is another node running? pick another port)", cfg.APIAddr, err)
		}
	}
	st, err := store.Open(cfg.DataDir, store.Options{KeepBlocks: cfg.KeepBlocks})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("node: opening the chain store: %w", err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, store: st, chainID: cfg.Genesis.ID(), net: cfg.Network,
		pool: NewMempool(cfg.MempoolMax, PerAccountMax), index: newTxIndex(cfg.KeepBlocks),
		subs: map[int]chan BlockInfo{}, epochBlocks: cfg.Genesis.EpochBlocks(),
		cache: map[types.Hash]*executed{}, evidence: map[consensus.EvidenceKey][]byte{}, timers: map[int]*time.Timer{}, seen: map[types.Hash]struct{}{},
		lastCommitAt: time.Now(),
	}
	if cfg.Authority != nil {
		n.signer = consensus.Ed25519Signer{Key: cfg.Authority}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.ln = ln
	fail := func(err error) (*Node, error) {
		n.cancel()
		st.Close()
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	if err := n.loadHead(); err != nil {
		return fail(err)
	}
	if err := n.loadConsensus(); err != nil {
		return fail(err)
	}
	n.bg.Add(1)
	go n.rebuildIndex()
	n.consMu.Lock()
	out := n.drainLocked() // the restored node re-sends what it signed in its round
	n.consMu.Unlock()
	n.sendAll(out)
	n.log.Info("node open", "data", cfg.DataDir, "chain_id", n.chainID, "height", n.head.Height,
		"hash", n.headID, "state_root", n.head.StateRoot, "api", n.APIAddr(),
		"validator", n.signer != nil, "authorities", n.curSet.Len())
	return n, nil
}

// genesisSet returns the authority set of the first epoch: the genesis
// authorities, or for a legacy genesis the node's own key alone.
func (n *Node) genesisSet() []consensus.Validator {
	if len(n.cfg.Genesis.Authorities) == 0 {
		return []consensus.Validator{{ID: signerID(n.cfg.Authority), Stake: 1}}
	}
	return toValidators(state.GenesisSet(n.cfg.Genesis))
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
	n.head, n.headID = *h, h.Hash()
	if height > 0 {
		cert, ok, err := n.store.Cert(height)
		if err != nil || !ok {
			return fmt.Errorf("node: the certificate of head block %d is missing from %s (%v): %w", height, n.cfg.DataDir, err, store.ErrCorrupt)
		}
		n.lastCert = cert
		if body, ok, err := n.store.Body(height); err == nil && ok {
			n.lastBlock, _ = types.DecodeBlock(body)
		}
	}
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
	set := n.genesisSet()
	h := types.Header{Version: types.HeaderVersion, ChainID: n.chainID, TimeMs: n.cfg.Genesis.TimeMs, StateRoot: root,
		NextValSetHash: consensus.ValidatorSetHash(set)}
	blk := types.Block{Header: h}
	id := h.Hash()
	if _, err := n.store.CommitBlock(store.BlockCommit{
		Height: 0, Hash: id, Header: h.Encode(), Body: blk.Encode(), Events: types.EncodeEvents(nil),
		Changes: kvs, EpochBoundary: true, EpochData: consensus.EncodeValidators(set),
	}); err != nil {
		return fmt.Errorf("node: committing the genesis block: %w", err)
	}
	n.head, n.headID = h, id
	n.log.Info("genesis committed", "chain", n.cfg.Genesis.ChainName, "chain_id", n.chainID, "state_root", root,
		"accounts", len(n.cfg.Genesis.Balances), "authorities", len(set))
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

// PendingTxs returns how many transactions wait in the mempool.
func (n *Node) PendingTxs() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pool.Len()
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

// Submit adds tx to the mempool, gossips it to the peers, and returns its
// hash. A refusal is a
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
	h, err := n.submit(tx, types.HashBytes(enc))
	if err == nil {
		n.gossipTx(enc)
	} else {
		n.observeReject(err)
	}
	return h, err
}

// observeReject hands a refusal of a local submission (Submit, the API) to
// the metrics, if any; transactions from gossip are not counted.
func (n *Node) observeReject(err error) {
	if f := n.onReject.Load(); f != nil {
		(*f)(err)
	}
}

// SubmitEncoded decodes a transaction (types.Tx.Encode) and submits it, as
// POST /v1/tx does. Like Submit, an admitted transaction is gossiped to the
// peers (MsgTx) so that whoever proposes next can include it.
func (n *Node) SubmitEncoded(b []byte) (types.Hash, error) {
	h, err := n.submitEncoded(b)
	if err == nil {
		n.gossipTx(b)
	} else {
		n.observeReject(err)
	}
	return h, err
}

// gossipTx sends an admitted local transaction to the peers.
func (n *Node) gossipTx(enc []byte) {
	if n.net != nil {
		n.markSeen(types.MsgTx, enc)
		n.net.Broadcast(types.MsgTx, enc)
	}
}

func (n *Node) submitEncoded(b []byte) (types.Hash, error) {
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

// fitBlock returns the longest prefix of txs whose block encoding (with a
// LastCommit of lastCommit bytes, and room for a full evidence section)
// fits types.MaxBlockSize. A prefix of Select's result stays executable.
func fitBlock(txs []types.Tx, lastCommit int) []types.Tx {
	size := types.HeaderSize + 8 + lastCommit + types.MaxEvidenceBytes
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

// Run serves the API (if configured) and drives consensus — it starts the
// timers: proposals every BlockTime, round timeouts — until ctx is done,
// then stops the timers and the API server (waiting up to 5 s for requests
// to finish; streams end at once) and returns nil. It returns an error if
// the API server fails or consensus halts (a decided block that does not
// commit here). Run may be called once; Close the node afterwards. Without
// Run a lone validator still makes blocks through ProduceBlock.
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
		n.stopTimers()
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
	n.startTimers()
	n.consMu.Lock()
	alone := n.soleValidatorLocked()
	n.consMu.Unlock()
	if n.net == nil && !alone {
		n.log.Warn("no network and this key does not hold more than 2/3 of the authority stake: no block can be finalized; configure peers")
	}
	role := "follower" // no key: it follows what the authorities finalize
	attrs := []any{"block_time", n.cfg.BlockTime}
	if n.cfg.Authority != nil {
		key := signerID(n.cfg.Authority)
		attrs = append(attrs, "key", key)
		n.consMu.Lock()
		in := n.curSet.Index(key) >= 0
		n.consMu.Unlock()
		role = "authority"
		if !in {
			role = "validator key outside the authority set"
			n.log.Warn("this node's --validator key is not in the current authority set, so it votes on nothing: it follows the chain like any peer until an authority epoch elects it (stake to it, or check the key)",
				"key", key)
		}
	}
	n.log.Info("consensus running", append(attrs, "role", role, "authorities", n.ConsensusState().Validators)...)
	check := time.NewTicker(time.Second)
	defer check.Stop()
	gossip := time.NewTicker(n.cfg.VoteTimeout)
	defer gossip.Stop()
	// A stall is logged after 5 block times without a new head, then
	// after twice as long each time (at most every 10 minutes), until a
	// block comes.
	lastH, _ := n.Head()
	lastChange, warnAfter := time.Now(), n.cfg.StallWarn
	for {
		select {
		case <-gossip.C:
			n.regossip()
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
			n.stopTimers()
			return fmt.Errorf("node: API server: %w", err)
		case <-check.C:
			n.consMu.Lock()
			err := n.halted
			n.consMu.Unlock()
			if err != nil {
				shutdown()
				return err
			}
			if h, _ := n.Head(); h != lastH {
				lastH, lastChange, warnAfter = h, time.Now(), n.cfg.StallWarn
			} else if stall := time.Since(lastChange); warnAfter > 0 && stall >= warnAfter {
				warnAfter = stall + min(stall, 10*time.Minute)
				if m := n.missing.Load(); m == h+1 {
					n.log.Warn("no new block: "+missingMsg, "for", stall.Round(time.Second), "head", h, "missing", m)
					continue
				}
				ci := n.ConsensusState()
				n.log.Warn("no new block: a block needs the votes of more than 2/3 of the authority power; check that the other validators are up and that this node reaches its peers",
					"for", stall.Round(time.Second), "head", h, "height", ci.Height, "round", ci.Round, "step", ci.Step, "authorities", len(ci.Validators))
			}
		}
	}
}

// Close stops the node: it stops consensus (waiting for a block being
// built or committed), closes the subscriptions, the API listener (when Run
// is not serving it) and the store. Closing twice is a no-op.
func (n *Node) Close() error {
	n.cancel()
	n.consMu.Lock()
	n.consClosed = true
	n.stopTimersLocked()
	n.consMu.Unlock()
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
