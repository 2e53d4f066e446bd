package node

import (
	"errors"
	"fmt"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/store"
	"taobox/chain/types"
)

// The consensus driver: it feeds chain/consensus (a pure Tendermint
// stepper) with messages, fired timers and the answers to its requests,
// and does the work each Ready asks for, in its order: commit decided
// blocks (with their certificates), persist the hard state (fsynced), then
// send messages, start timers, build proposals and validate blocks. Every
// step runs under consMu; messages leave after it is released, but always
// after the hard state that signed them is on disk.

// maxFuture bounds the messages of later heights kept for replay.
const maxFuture = 1024

type deferredTimer struct {
	height uint64 // the consensus height that asked; dropped once it is past
	at     time.Time
	f      func()
}

// outMsg is a message to broadcast once consMu is released.
type outMsg struct {
	t       types.MsgType
	payload []byte
}

// epochOf returns the authority epoch of height h ≥ 1 (heights e·E+1 …
// (e+1)·E form epoch e).
func (n *Node) epochOf(h uint64) uint64 {
	if h == 0 {
		return 0
	}
	return (h - 1) / n.epochBlocks
}

// setOfEpoch reads the authority set of epoch e: the epoch data stored
// with block e·E (the genesis set at e = 0).
func (n *Node) setOfEpoch(e uint64) (*consensus.ValidatorSet, error) {
	h := e * n.epochBlocks
	raw, ok, err := n.store.EpochData(h)
	if err != nil {
		return nil, fmt.Errorf("node: reading the authority set of epoch %d: %w", e, err)
	}
	if !ok || len(raw) == 0 {
		return nil, fmt.Errorf("node: the authority set of epoch %d (stored with block %d) is missing from %s: %w", e, h, n.cfg.DataDir, store.ErrCorrupt)
	}
	vals, err := consensus.DecodeValidators(raw)
	if err != nil {
		return nil, fmt.Errorf("node: the authority set of epoch %d: %v: %w", e, err, store.ErrCorrupt)
	}
	return consensus.NewValidatorSet(vals)
}

// loadConsensus restores the authority sets and the consensus node after
// Open: the set of head+1, the set that finalized the head, and the
// persisted hard state when it is for height head+1.
func (n *Node) loadConsensus() error {
	head := n.head.Height
	var err error
	if n.curSet, err = n.setOfEpoch(n.epochOf(head + 1)); err != nil {
		return err
	}
	n.headSet = n.curSet
	if head > 0 && n.epochOf(head) != n.epochOf(head+1) {
		// The head ends an epoch: its certificate is the previous set's. A
		// store synced from a snapshot at this boundary may lack that set;
		// then the LastCommit of the next block is checked for its block
		// only (its signatures were checked by the sync's epoch proof).
		if n.headSet, err = n.setOfEpoch(n.epochOf(head)); err != nil {
			synced, ok := n.store.SyncedAt()
			if !ok || synced != head {
				// Only a snapshot sync to this very block may lack it:
				// anything else is a damaged store, and going on would
				// skip the signature check of the next LastCommit.
				return err
			}
			n.log.Info("started from a snapshot: the next block's LastCommit is checked against its block (the epoch proof checked its signatures)", "head", head)
			n.headSet = nil
		}
	}
	if n.signer != nil {
		raw, ok, err := n.store.HardState()
		if err != nil {
			return fmt.Errorf("node: reading the consensus hard state: %w", err)
		}
		if ok {
			hs, err := consensus.DecodeHardState(raw)
			if err != nil {
				return fmt.Errorf("node: the consensus hard state in %s: %v: %w", n.cfg.DataDir, err, store.ErrCorrupt)
			}
			n.lastHS = hs
		}
	}
	return n.resetConsLocked()
}

// resetConsLocked starts a consensus node at height head+1 with the
// current set (priorities restart at zero at each epoch's first height). It
// resumes the persisted hard state when that is for head+1, and otherwise
// keeps its last signed (height, round, step), so it never signs twice.
func (n *Node) resetConsLocked() error {
	h := n.head.Height + 1
	hs := consensus.HardState{Height: h, Step: consensus.StepPropose, LockedRound: -1, ValidRound: -1}
	if old := n.lastHS; old != nil {
		if old.Height == h {
			hs = *old
		} else {
			hs.SignedHeight, hs.SignedRound, hs.SignedStep = old.SignedHeight, old.SignedRound, old.SignedStep
		}
	}
	cfg := consensus.Config{
		ChainID: n.chainID, Validators: n.curSet, StartHeight: n.epochOf(h)*n.epochBlocks + 1,
		Signer:         n.signer,
		ProposeTimeout: n.cfg.ProposeTimeout, ProposeDelta: n.cfg.ProposeTimeout / 2,
		PrevoteTimeout: n.cfg.VoteTimeout, PrevoteDelta: n.cfg.VoteTimeout / 2,
		PrecommitTimeout: n.cfg.VoteTimeout, PrecommitDelta: n.cfg.VoteTimeout / 2,
		BlockID: blockID,
	}
	cons, err := consensus.NewNode(cfg, &hs)
	if err != nil {
		return fmt.Errorf("node: starting consensus at height %d: %w", h, err)
	}
	n.cons = cons
	n.pendingValue = nil
	n.aheadSince = time.Time{}
	return nil
}

// commitWait is how long the next height's proposal still waits: BlockTime
// after the last commit.
func (n *Node) commitWait() time.Duration {
	return max(0, n.cfg.BlockTime-time.Since(n.lastCommitAt))
}

// drainLocked does the work of every Ready until the consensus node has
// none, and returns the messages to broadcast. n.consMu must be held.
func (n *Node) drainLocked() []outMsg {
	var out []outMsg
	for i := 0; i < 10_000 && n.halted == nil && n.cons.HasReady(); i++ {
		rd := n.cons.Ready()
		decidedAt := uint64(0)
		reset := false
		for _, d := range rd.Decided {
			if err := n.commitDecisionLocked(d); err != nil {
				n.halted = err
				if !errors.Is(err, ErrClosed) {
					n.log.Error("consensus halted", "height", d.Height, "err", err)
				}
				n.cons.Advance(rd)
				return out
			}
			decidedAt = d.Height
			if b, err := consensus.EncodeMessage(consensus.Commit{Block: d.Block, Cert: d.Cert}); err == nil {
				out = append(out, outMsg{types.MsgBlock, b})
			}
			if n.isEpochEnd(d.Height) {
				reset = true
			}
		}
		if rd.HardState != nil && n.signer != nil {
			if err := n.store.PutHardState(consensus.EncodeHardState(rd.HardState)); err != nil {
				// Never send what is not on disk: stop signing altogether.
				n.halted = fmt.Errorf("node: persisting the consensus hard state: %w", err)
				n.log.Error("consensus halted", "err", n.halted)
				n.cons.Advance(rd)
				return out
			}
			hs := *rd.HardState
			n.lastHS = &hs
		}
		for _, m := range rd.Messages {
			var ev consensus.Event
			t := types.MsgVote
			h := uint64(0)
			if m.Proposal != nil {
				ev, t, h = *m.Proposal, types.MsgProposal, m.Proposal.Height
			} else if m.Vote != nil {
				ev, h = *m.Vote, m.Vote.Height
			} else {
				continue
			}
			if reset && h > decidedAt {
				continue // the old set's next height: the new node redoes it
			}
			if b, err := consensus.EncodeMessage(ev); err == nil {
				out = append(out, outMsg{t, b})
			}
		}
		out = append(out, n.onEvidenceLocked(rd.Evidence)...)
		if reset {
			n.cons.Advance(rd)
			if err := n.resetConsLocked(); err != nil {
				n.halted = err
				n.log.Error("consensus halted", "err", err)
				return out
			}
			n.replayFutureLocked()
			continue
		}
		for _, t := range rd.Timeouts {
			d := t.Duration
			if t.Kind == consensus.TimeoutPropose && t.Round == 0 {
				d += n.commitWait()
			}
			ev := consensus.TimeoutFired{Kind: t.Kind, Height: t.Height, Round: t.Round}
			n.afterLocked(d, func() { n.onTimeout(ev) })
		}
		for _, rv := range rd.RequestValue {
			v := rv
			n.pendingValue = &v
			d := time.Duration(0)
			if rv.Round == 0 {
				d = n.commitWait()
			}
			n.afterLocked(d, func() { n.proposeValue(v) })
		}
		var results []consensus.Event
		for _, req := range rd.Validate {
			if req.Height != n.head.Height+1 {
				continue
			}
			ok := true
			if _, cached := n.cache[req.BlockID]; !cached {
				ex, err := n.validateLocked(req.Block, false)
				switch {
				case err == nil:
					n.cache[ex.hash] = ex
				case errors.Is(err, ErrClosed):
					continue // closing: no verdict, so no vote
				default:
					ok = false
					n.log.Warn("invalid block proposed", "height", req.Height, "id", req.BlockID, "err", err)
				}
			}
			results = append(results, consensus.ValidityResult{Height: req.Height, BlockID: req.BlockID, OK: ok})
		}
		if len(rd.Fetch) > 0 {
			n.triggerCatchUp()
		}
		n.cons.Advance(rd)
		for _, ev := range results {
			if err := n.cons.Step(ev); err != nil {
				n.log.Debug("validity result refused", "err", err)
			}
		}
	}
	return out
}

func describeEvidence(e consensus.Evidence) string {
	if e.VoteA != nil {
		return fmt.Sprintf("%s by %s at height %d round %d: %s and %s", e.VoteA.Type, e.VoteA.Validator, e.VoteA.Height, e.VoteA.Round, e.VoteA.BlockID, e.VoteB.BlockID)
	}
	if e.ProposalA != nil {
		return fmt.Sprintf("two proposals by %s at height %d round %d", e.ProposalA.Proposer, e.ProposalA.Height, e.ProposalA.Round)
	}
	return "empty"
}

// commitDecisionLocked commits a decided block in one store batch: header,
// body, events, state changes, the certificate, and at the last block of an
// authority epoch the next set (an epoch boundary, kept forever). Then it
// updates the mempool, the tx index and the subscribers, and moves to the
// next authority set at an epoch end. n.consMu must be held.
func (n *Node) commitDecisionLocked(d consensus.Decision) error {
	start := time.Now()
	ex := n.cache[d.BlockID]
	if ex == nil {
		var err error
		if ex, err = n.validateLocked(d.Block, true); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			return fmt.Errorf("node: block %d %s was finalized by the authorities but does not execute here: %w; this node's state differs from the chain's: move its data dir aside and sync again, as a follower (without --validator) until the chain is past height %d, since the new dir has no record of what this key signed", d.Height, d.BlockID, err, d.Height)
		}
	}
	height := ex.blk.Header.Height
	if height != n.head.Height+1 || ex.hash != d.BlockID {
		return fmt.Errorf("node: decided block %d %s does not follow head %d", d.Height, d.BlockID, n.head.Height)
	}
	hdr := ex.blk.Header
	epochEnd := n.isEpochEnd(height)
	certBytes := encodeCert(&d.Cert)
	bc := store.BlockCommit{
		Height: height, Hash: ex.hash, Header: hdr.Encode(), Body: ex.body, Events: types.EncodeEvents(ex.res.Events),
		Changes: ex.kvs, Cert: certBytes, EpochBoundary: ex.stats.epochs > 0 || epochEnd,
	}
	if epochEnd {
		bc.EpochData = consensus.EncodeValidators(ex.nextSet)
	}
	t := time.Now()
	if _, err := n.store.CommitBlock(bc); err != nil {
		return fmt.Errorf("node: committing block %d: %w", height, err)
	}
	st := ex.stats
	st.commit = time.Since(t)
	n.lastCert = certBytes
	n.lastCommitAt = time.Now()
	n.lastBlock = ex.blk
	n.headSet = n.curSet
	if epochEnd {
		vs, err := consensus.NewValidatorSet(ex.nextSet)
		if err != nil {
			return fmt.Errorf("node: the authority set after block %d: %w", height, err)
		}
		if vs.Hash() != n.curSet.Hash() {
			n.log.Info("authority set changes", "after", height, "authorities", len(ex.nextSet), "set", vs.Hash())
		}
		n.curSet = vs
	}
	n.dropCommittedEvidenceLocked(ex.blk)
	n.cache = map[types.Hash]*executed{}
	n.pendingValue = nil
	n.aheadSince = time.Time{}
	keep := n.future[:0]
	for _, ev := range n.future {
		if eventHeight(ev) > height {
			keep = append(keep, ev)
		}
	}
	n.future = keep

	hashes := txHashes(ex.blk.Txs)
	info := BlockInfo{Height: height, Hash: ex.hash, Header: hdr, Txs: ex.blk.Txs, Events: ex.res.Events,
		Apply: st.apply, Root: st.root, Commit: st.commit}
	n.mu.Lock()
	n.head, n.headID = hdr, ex.hash
	n.pool.Remove(hashes...)
	for h, reason := range ex.dropped {
		if n.pool.Remove(h) > 0 {
			n.index.drop(h, reason)
		}
	}
	n.pruneLocked(n.nonces(), height+1)
	n.index.addBlock(height, hashes, ex.res.Events)
	pending := n.pool.Len()
	st.total = st.selectT + st.apply + st.root + time.Since(start)
	n.stats = st
	for _, c := range n.subs { // under n.mu, so no cancel closes c meanwhile
		select {
		case c <- info:
		default: // a slow subscriber loses this block
		}
	}
	n.mu.Unlock()

	n.log.Info("block", "height", height, "hash", ex.hash, "round", d.Round, "signers", len(d.Cert.Sigs),
		"proposer", hdr.Proposer, "txs", len(ex.blk.Txs), "failed", st.failed,
		"dropped", st.dropped, "epochs", st.epochs, "pending", pending,
		"apply_ms", ms(st.apply), "root_ms", ms(st.root), "commit_ms", ms(st.commit), "total_ms", ms(st.total))
	return nil
}

// replayFutureLocked steps the kept messages of the new height (after a set
// change restarted the consensus node) and drops those below it.
func (n *Node) replayFutureLocked() {
	h := n.head.Height + 1
	keep := n.future[:0]
	var now []consensus.Event
	for _, ev := range n.future {
		switch eh := eventHeight(ev); {
		case eh == h:
			now = append(now, ev)
		case eh > h:
			keep = append(keep, ev)
		}
	}
	n.future = keep
	for _, ev := range now {
		n.cons.Step(ev)
	}
}

func eventHeight(ev consensus.Event) uint64 {
	switch e := ev.(type) {
	case consensus.Proposal:
		return e.Height
	case consensus.Vote:
		return e.Height
	case consensus.Commit:
		return e.Cert.Height
	}
	return 0
}

// afterLocked runs f after d, once Run has started the timers (before, the
// timer waits for Run). n.consMu must be held.
func (n *Node) afterLocked(d time.Duration, f func()) {
	if n.consClosed {
		return
	}
	if !n.timersOn {
		h, _, _ := n.cons.Position()
		keep := n.deferred[:0]
		for _, t := range n.deferred {
			if t.height >= h {
				keep = append(keep, t)
			}
		}
		n.deferred = append(keep, deferredTimer{height: h, at: time.Now().Add(d), f: f})
		return
	}
	id := n.nextTimer
	n.nextTimer++
	n.timers[id] = time.AfterFunc(d, func() {
		n.consMu.Lock()
		delete(n.timers, id)
		n.consMu.Unlock()
		f()
	})
}

func (n *Node) startTimers() {
	n.consMu.Lock()
	defer n.consMu.Unlock()
	n.timersOn = true
	for _, t := range n.deferred {
		n.afterLocked(max(0, time.Until(t.at)), t.f)
	}
	n.deferred = nil
}

func (n *Node) stopTimers() {
	n.consMu.Lock()
	defer n.consMu.Unlock()
	n.stopTimersLocked()
}

func (n *Node) stopTimersLocked() {
	n.timersOn = false
	for id, t := range n.timers {
		t.Stop()
		delete(n.timers, id)
	}
}

// onTimeout delivers a fired timer; a timer of the current round also
// re-broadcasts what this validator signed in it, so a peer that lost a
// message gets it again.
func (n *Node) onTimeout(ev consensus.TimeoutFired) {
	n.consMu.Lock()
	if n.consClosed || n.halted != nil {
		n.consMu.Unlock()
		return
	}
	var out []outMsg
	if h, r, _ := n.cons.Position(); h == ev.Height && r == ev.Round {
		out = n.ownMessagesLocked()
	}
	n.cons.Step(ev)
	out = append(out, n.drainLocked()...)
	n.consMu.Unlock()
	n.sendAll(out)
}

// ownMessagesLocked returns what this validator signed in the current
// round (from the persisted hard state), to send again. n.consMu must be
// held.
func (n *Node) ownMessagesLocked() []outMsg {
	h, r, _ := n.cons.Position()
	hs := n.lastHS
	if hs == nil || hs.SignedHeight != h || hs.SignedRound != r {
		return nil
	}
	var out []outMsg
	if p := hs.Proposal; p != nil && p.Height == h && p.Round == r {
		if b, err := consensus.EncodeMessage(*p); err == nil {
			out = append(out, outMsg{types.MsgProposal, b})
		}
	}
	for _, v := range []*consensus.Vote{hs.Prevote, hs.Precommit} {
		if v != nil && v.Height == h && v.Round == r {
			if b, err := consensus.EncodeMessage(*v); err == nil {
				out = append(out, outMsg{types.MsgVote, b})
			}
		}
	}
	return out
}

// regossip sends this validator's messages of the current round again, so
// peers that lost them (a cut link, a restart) converge: without it a round
// whose votes were lost waits forever, since Tendermint's vote timeouts
// start only once votes from more than 2/3 arrived. Run calls it every
// VoteTimeout; peers drop the copies they already have. A peer a height
// behind sees these messages and catches up through ReqBlocks.
func (n *Node) regossip() {
	n.consMu.Lock()
	if n.consClosed || n.halted != nil {
		n.consMu.Unlock()
		return
	}
	out := n.ownMessagesLocked()
	n.consMu.Unlock()
	if n.net == nil || len(out) == 0 {
		return
	}
	for _, m := range out {
		n.net.Broadcast(m.t, m.payload)
	}
}

// proposeValue answers the consensus node's request for a block: it builds
// block head+1 from the mempool and proposes it.
func (n *Node) proposeValue(rv consensus.ValueRequest) {
	n.consMu.Lock()
	_, out, err := n.proposeLocked(rv)
	n.consMu.Unlock()
	if err != nil && !errors.Is(err, errNoProposal) {
		n.log.Error("building a block failed", "height", rv.Height, "round", rv.Round, "err", err)
	}
	n.sendAll(out)
}

var errNoProposal = errors.New("node: no proposal is due")

func (n *Node) proposeLocked(rv consensus.ValueRequest) (*executed, []outMsg, error) {
	if n.consClosed {
		return nil, nil, ErrClosed
	}
	if n.halted != nil {
		return nil, nil, n.halted
	}
	pv := n.pendingValue
	if pv == nil || *pv != rv {
		return nil, nil, errNoProposal
	}
	if h, r, step := n.cons.Position(); h != rv.Height || r != rv.Round || step != consensus.StepPropose {
		n.pendingValue = nil
		return nil, nil, errNoProposal
	}
	n.pendingValue = nil
	ex, err := n.buildLocked()
	if err != nil {
		return nil, nil, err
	}
	n.cache[ex.hash] = ex
	if err := n.cons.Step(consensus.ValueReady{Height: rv.Height, Round: rv.Round, Block: ex.body}); err != nil {
		return nil, nil, err
	}
	return ex, n.drainLocked(), nil
}

// ProduceBlock makes the next block now, without waiting for BlockTime:
// the node proposes block head+1 (Mempool.Select within types.MaxBlockTxs
// and types.MaxBlockSize; a transaction the evolving state rejects is
// dropped from the block and the mempool, and the block applied again),
// votes for it and, holding more than 2/3 of the authority stake alone,
// finalizes and commits it in one store batch with its certificate, then
// prunes the mempool and notifies subscribers. It is for a lone validator
// (tests, benchmarks, a single-authority devnet); with several authorities
// blocks come from Run. Calls are serialised with consensus.
func (n *Node) ProduceBlock() (*types.Block, error) {
	n.consMu.Lock()
	if n.consClosed {
		n.consMu.Unlock()
		return nil, ErrClosed
	}
	if n.halted != nil {
		err := n.halted
		n.consMu.Unlock()
		return nil, err
	}
	if !n.soleValidatorLocked() {
		n.consMu.Unlock()
		return nil, fmt.Errorf("node: ProduceBlock needs a validator key that holds more than 2/3 of the authority stake alone; with %d authorities blocks come from Run", n.curSet.Len())
	}
	h, r, step := n.cons.Position()
	pv := n.pendingValue
	if pv == nil || pv.Height != h || pv.Round != r || step != consensus.StepPropose {
		n.consMu.Unlock()
		return nil, fmt.Errorf("node: no proposal is due at height %d round %d (step %d); try again", h, r, step)
	}
	ex, out, err := n.proposeLocked(*pv)
	committed := err == nil && n.head.Height == ex.blk.Header.Height
	if err == nil && !committed {
		err = fmt.Errorf("node: block %d was proposed but not finalized", h)
	}
	if err == nil && n.halted != nil {
		err = n.halted
	}
	n.consMu.Unlock()
	n.sendAll(out)
	if err != nil {
		return nil, err
	}
	return ex.blk, nil
}

// soleValidatorLocked reports whether this node's key alone holds more than
// 2/3 of the current set's stake. n.consMu must be held.
func (n *Node) soleValidatorLocked() bool {
	if n.signer == nil {
		return false
	}
	i := n.curSet.Index(n.signer.ID())
	return i >= 0 && consensus.TwoThirds(n.curSet.At(i).Stake, n.curSet.Total())
}

// stepLocked feeds ev to the consensus node and does the resulting work.
// n.consMu must be held.
func (n *Node) stepLocked(ev consensus.Event) ([]outMsg, error) {
	if n.consClosed {
		return nil, ErrClosed
	}
	if n.halted != nil {
		return nil, n.halted
	}
	err := n.cons.Step(ev)
	return n.drainLocked(), err
}

// Finalized returns the last final block: the head, since BFT finality is
// instant (a block is committed only with its certificate).
func (n *Node) Finalized() (height uint64, hash types.Hash) { return n.Head() }

// ValidatorInfo is one member of the authority set.
type ValidatorInfo struct {
	ID    types.AccountID
	Power uint64
}

// ConsensusInfo is a snapshot of the consensus driver, for dashboards and
// metrics.
type ConsensusInfo struct {
	Height        uint64 // the height being decided (head+1)
	Round         uint32
	Step          string // "propose", "prevote" or "precommit"
	Epoch         uint64 // the authority epoch of Height
	Validators    []ValidatorInfo
	Proposer      types.AccountID // of the current round
	SelfIndex     int             // this node's index in Validators; -1 for a follower
	LastBlockTime time.Time       // the head's TimeMs
	Halted        string          // why consensus stopped; "" while it runs
}

// ConsensusState returns a snapshot of the consensus driver.
func (n *Node) ConsensusState() ConsensusInfo {
	n.consMu.Lock()
	defer n.consMu.Unlock()
	h, r, step := n.cons.Position()
	ci := ConsensusInfo{Height: h, Round: r, Epoch: n.epochOf(h), Proposer: n.cons.Proposer(r), SelfIndex: -1}
	switch step {
	case consensus.StepPropose:
		ci.Step = "propose"
	case consensus.StepPrevote:
		ci.Step = "prevote"
	case consensus.StepPrecommit:
		ci.Step = "precommit"
	}
	for i := 0; i < n.curSet.Len(); i++ {
		v := n.curSet.At(i)
		ci.Validators = append(ci.Validators, ValidatorInfo{ID: v.ID, Power: v.Stake})
	}
	if n.signer != nil {
		ci.SelfIndex = n.curSet.Index(n.signer.ID())
	}
	n.mu.Lock()
	ci.LastBlockTime = time.UnixMilli(int64(n.head.TimeMs))
	n.mu.Unlock()
	if n.halted != nil {
		ci.Halted = n.halted.Error()
	}
	return ci
}
