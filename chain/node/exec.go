package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// MaxClockDrift is how far in the future (by the validator's clock) a
// proposed block's TimeMs may be.
const MaxClockDrift = 30 * time.Second

// executed is a block applied to the committed state but not committed:
// what a proposer built or a validator checked, cached by block id (the
// header hash, which is also the consensus block id) so that the decision
// commits without executing again.
type executed struct {
	blk     *types.Block
	body    []byte
	hash    types.Hash // header hash: the chain's and consensus' block id
	res     *state.Result
	kvs     []store.KV
	nextSet []consensus.Validator // the set of the next height
	dropped map[types.Hash]string // mempool transactions left out (proposer only)
	stats   blockStats
}

// postState reads the committed state with a block's changes on top.
type postState struct {
	base    state.Reader
	changes map[string][]byte // nil value: deleted
}

func newPostState(base state.Reader, changes []state.Change) *postState {
	p := &postState{base: base, changes: make(map[string][]byte, len(changes))}
	for _, c := range changes {
		p.changes[string(c.Key)] = c.Value
	}
	return p
}

func (p *postState) Get(key []byte) ([]byte, bool, error) {
	if v, ok := p.changes[string(key)]; ok {
		if v == nil {
			return nil, false, nil
		}
		return append([]byte(nil), v...), true, nil
	}
	return p.base.Get(key)
}

// isEpochEnd reports whether height h is the last block of an authority
// epoch (it commits the next epoch's set).
func (n *Node) isEpochEnd(h uint64) bool { return h > 0 && h%n.epochBlocks == 0 }

// nextSetAfter returns the set of height h+1, given the state after block
// h (changes over the committed state).
func (n *Node) nextSetAfter(h uint64, changes []state.Change) ([]consensus.Validator, error) {
	if !n.isEpochEnd(h) {
		return n.curSet.Members(), nil
	}
	prev := toAuthorities(n.curSet.Members())
	next, err := state.QueryNextAuthorities(newPostState(n.store, changes), n.cfg.Genesis, prev, h)
	if err != nil {
		return nil, err
	}
	return toValidators(next), nil
}

func toAuthorities(vals []consensus.Validator) []state.Authority {
	out := make([]state.Authority, len(vals))
	for i, v := range vals {
		out[i] = state.Authority{Hotkey: v.ID, Weight: v.Stake}
	}
	return out
}

func toValidators(as []state.Authority) []consensus.Validator {
	out := make([]consensus.Validator, len(as))
	for i, a := range as {
		out[i] = consensus.Validator{ID: a.Hotkey, Stake: a.Weight}
	}
	return out
}

// buildLocked builds block head+1 from the mempool, as the proposer:
// Mempool.Select within the size caps, state.ApplyBlock (a transaction the
// evolving state rejects is dropped and the block applied again), the state
// root, the authority-set hashes and the parent's certificate; it signs the
// header with the validator key. Nothing is committed. n.consMu must be
// held.
func (n *Node) buildLocked() (*executed, error) {
	start := time.Now()
	var st blockStats
	n.mu.Lock()
	parent, parentID := n.head, n.headID
	height := parent.Height + 1
	nonce := n.nonces()
	n.pruneLocked(nonce, height)
	txs := n.pool.Select(nonce, types.MaxBlockTxs)
	n.mu.Unlock()
	txs = fitBlock(txs, len(n.lastCert))
	verified := make(map[types.Hash]bool, len(txs))
	for _, h := range txHashes(txs) {
		verified[h] = true // the mempool verified their signatures
	}
	evidence, equivocations := n.selectEvidenceLocked(height)
	st.selectT = time.Since(start)

	env := state.Env{ChainID: n.chainID, Engine: n.cfg.Engine, SigVerified: func(h types.Hash) bool { return verified[h] },
		Evidence: equivocations}
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

	t = time.Now()
	kvs := toKVs(res.Changes)
	root, err := n.store.RootAfter(kvs)
	if err != nil {
		return nil, fmt.Errorf("node: state root of block %d: %w", height, err)
	}
	st.root = time.Since(t)
	next, err := n.nextSetAfter(height, res.Changes)
	if err != nil {
		return nil, fmt.Errorf("node: next authority set at block %d: %w", height, err)
	}
	hdr := types.Header{
		Version: types.HeaderVersion, ChainID: n.chainID, Height: height,
		TimeMs: max(uint64(n.cfg.Now().UnixMilli()), parent.TimeMs), Parent: parentID,
		TxRoot:    types.TxRoot(txs),
		StateRoot: root, EventsRoot: types.EventsRoot(res.Events),
		ValSetHash: n.curSet.Hash(), NextValSetHash: consensus.ValidatorSetHash(next),
		EvidenceHash: types.EvidenceRoot(evidence),
	}
	if len(n.lastCert) > 0 {
		hdr.LastCommitHash = types.HashBytes(n.lastCert)
	}
	types.SignHeader(&hdr, n.cfg.Authority)
	blk := &types.Block{Header: hdr, LastCommit: n.lastCert, Txs: txs, Evidence: evidence}
	body := blk.Encode()
	for _, ev := range res.Events {
		switch {
		case ev.Kind == types.EvEpoch && ev.Netuid != 0:
			st.epochs++
		case ev.Kind == types.EvTxFailed:
			st.failed++
		}
	}
	st.txs, st.dropped = len(txs), len(dropped)
	return &executed{blk: blk, body: body, hash: hdr.Hash(), res: res, kvs: kvs,
		nextSet: next, dropped: dropped, stats: st}, nil
}

// ErrInvalidBlock marks a proposed or received block that fails validation.
var ErrInvalidBlock = errors.New("node: invalid block")

// validateLocked executes body as block head+1 proposed by someone else and
// checks it against the chain: chain id, height, parent, timestamps
// (monotonic, at most MaxClockDrift ahead of Config.Now), the proposer's
// header signature and membership in the set, the set hashes, the parent's
// certificate (LastCommit, verified against the parent's set), the
// evidence (checkBlockEvidenceLocked; decided says the block is already
// finalized), and that applying the evidence and transactions gives the
// header's TxRoot, StateRoot and EventsRoot. Errors wrap ErrInvalidBlock.
// n.consMu must be held.
func (n *Node) validateLocked(body []byte, decided bool) (*executed, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidBlock, fmt.Sprintf(format, args...))
	}
	blk, err := wellFormed(body)
	if err != nil {
		return nil, bad("%v", err)
	}
	n.mu.Lock()
	parent, parentID := n.head, n.headID
	n.mu.Unlock()
	h := &blk.Header
	height := parent.Height + 1
	switch {
	case h.ChainID != n.chainID:
		return nil, bad("chain id %s, want %s", h.ChainID, n.chainID)
	case h.Height != height:
		return nil, bad("height %d, want %d", h.Height, height)
	case h.Parent != parentID:
		return nil, bad("block %d's parent %s is not the head %s", height, h.Parent, parentID)
	case h.TimeMs < parent.TimeMs:
		return nil, bad("block %d's time %d is before its parent's %d", height, h.TimeMs, parent.TimeMs)
	case !decided && h.TimeMs > uint64(n.cfg.Now().Add(MaxClockDrift).UnixMilli()):
		return nil, bad("block %d's time %d is more than %v ahead of this node's clock", height, h.TimeMs, MaxClockDrift)
	case n.curSet.Index(h.Proposer) < 0:
		return nil, bad("block %d's proposer %s is not an authority", height, h.Proposer)
	case h.ValSetHash != n.curSet.Hash():
		return nil, bad("block %d's authority set hash %s, want %s", height, h.ValSetHash, n.curSet.Hash())
	}
	if err := types.VerifyHeader(h); err != nil {
		return nil, bad("%v", err)
	}
	if err := n.checkLastCommit(blk, parent); err != nil {
		return nil, bad("block %d: %v", height, err)
	}
	equivocations, err := n.checkBlockEvidenceLocked(blk, decided)
	if err != nil {
		return nil, bad("block %d: %v", height, err)
	}
	env := state.Env{ChainID: n.chainID, Engine: n.cfg.Engine, Evidence: equivocations}
	res, err := state.ApplyBlock(n.ctx, n.store, env, height, blk.Txs)
	if err != nil {
		if n.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, bad("applying block %d: %v", height, err)
	}
	if got := types.EventsRoot(res.Events); got != h.EventsRoot {
		return nil, bad("block %d's events root %s, executing it gives %s", height, h.EventsRoot, got)
	}
	kvs := toKVs(res.Changes)
	root, err := n.store.RootAfter(kvs)
	if err != nil {
		return nil, fmt.Errorf("node: state root of block %d: %w", height, err)
	}
	if root != h.StateRoot {
		return nil, bad("block %d's state root %s, executing it gives %s", height, h.StateRoot, root)
	}
	next, err := n.nextSetAfter(height, res.Changes)
	if err != nil {
		return nil, fmt.Errorf("node: next authority set at block %d: %w", height, err)
	}
	if got := consensus.ValidatorSetHash(next); got != h.NextValSetHash {
		return nil, bad("block %d's next authority set hash %s, the state gives %s", height, h.NextValSetHash, got)
	}
	var st blockStats
	for _, ev := range res.Events {
		switch {
		case ev.Kind == types.EvEpoch && ev.Netuid != 0:
			st.epochs++
		case ev.Kind == types.EvTxFailed:
			st.failed++
		}
	}
	st.txs = len(blk.Txs)
	return &executed{blk: blk, body: body, hash: h.Hash(), res: res, kvs: kvs, nextSet: next, stats: st}, nil
}

// checkLastCommit checks blk.LastCommit: empty at height 1; otherwise a
// certificate for the parent (its consensus id) verified against the
// parent's authority set, hashed into LastCommitHash.
func (n *Node) checkLastCommit(blk *types.Block, parent types.Header) error {
	h := &blk.Header
	if h.Height == 1 {
		if len(blk.LastCommit) != 0 || !h.LastCommitHash.IsZero() {
			return errors.New("block 1 must carry no parent certificate")
		}
		return nil
	}
	cert, err := decodeCert(blk.LastCommit)
	if err != nil {
		return fmt.Errorf("parent certificate: %v", err)
	}
	if cert.Height != parent.Height || cert.BlockID != n.headID {
		return fmt.Errorf("parent certificate is for block %d %s, want %d %s", cert.Height, cert.BlockID, parent.Height, n.headID)
	}
	if n.headSet == nil {
		return nil // see loadConsensus: a synced store without the previous set
	}
	if err := consensus.VerifyCertificate(n.chainID, n.headSet, &cert); err != nil {
		return fmt.Errorf("parent certificate: %v", err)
	}
	return nil
}

// wellFormed decodes body and checks that it is bound to its header: the
// transactions give TxRoot, LastCommit gives LastCommitHash and the
// evidence gives EvidenceHash (zero when empty). Then the header hash names exactly this body, which is what lets
// consensus use the header hash as the block id.
func wellFormed(body []byte) (*types.Block, error) {
	blk, err := types.DecodeBlock(body)
	if err != nil {
		return nil, err
	}
	h := &blk.Header
	if types.TxRoot(blk.Txs) != h.TxRoot {
		return nil, fmt.Errorf("block %d's tx root does not match its transactions", h.Height)
	}
	want := types.Hash{}
	if len(blk.LastCommit) > 0 {
		want = types.HashBytes(blk.LastCommit)
	}
	if h.LastCommitHash != want {
		return nil, fmt.Errorf("block %d's LastCommitHash does not match its LastCommit", h.Height)
	}
	if types.EvidenceRoot(blk.Evidence) != h.EvidenceHash {
		return nil, fmt.Errorf("block %d's EvidenceHash does not match its evidence", h.Height)
	}
	return blk, nil
}

// blockID is the consensus block id of an encoded block: its header hash
// (a short input gets a hash no header can have).
func blockID(body []byte) types.Hash {
	if h, ok := types.BlockHashOf(body); ok {
		return h
	}
	return types.HashBytes([]byte("taobox/short-block"), body)
}

func encodeCert(c *consensus.Certificate) []byte {
	w := types.NewWriter(make([]byte, 0, 48+68*len(c.Sigs)))
	consensus.EncodeCertificate(w, c)
	return w.Bytes()
}

// decodeCert decodes exactly one certificate of at most
// types.MaxCertificate bytes.
func decodeCert(b []byte) (consensus.Certificate, error) {
	if len(b) > types.MaxCertificate {
		return consensus.Certificate{}, fmt.Errorf("certificate of %d bytes, the limit is %d", len(b), types.MaxCertificate)
	}
	r := types.NewReader(b)
	c := consensus.DecodeCertificate(r)
	if err := r.Done(); err != nil {
		return consensus.Certificate{}, err
	}
	return c, nil
}

// signerID returns the account of a validator key, or zero for nil.
func signerID(k ed25519.PrivateKey) types.AccountID {
	if len(k) != ed25519.PrivateKeySize {
		return types.AccountID{}
	}
	return types.AccountIDFromPrivateKey(k)
}
