package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/types"
)

// Network carries the node's messages to its peers; chain/p2p implements
// it over QUIC, tests in memory. Both methods must be safe for concurrent
// use and must not call back into the node synchronously (deliver from
// another goroutine).
type Network interface {
	// Broadcast gossips payload (a message of type t) to every peer.
	Broadcast(t types.MsgType, payload []byte)
	// Request asks one good peer and returns its answer to a request of
	// type t, at most t.MaxResponse() bytes.
	Request(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error)
}

// PeerNetwork is a Network that names the peer that answered a request
// and takes reports about peers. When the node's Network implements it,
// catch-up reports a peer whose blocks fail verification (undecodable, a
// bad or misplaced certificate, a block its certificate does not name) and
// asks another peer for the same heights, instead of stopping at the first
// liar and asking it again next time.
type PeerNetwork interface {
	Network
	// RequestPeer is Request that asks none of the peers in skip and
	// returns the id of the peer that answered (as Misbehaved takes it).
	RequestPeer(ctx context.Context, t types.MsgType, payload []byte, skip []string) (peer string, resp []byte, err error)
	// Misbehaved reports that peer sent what no honest node sends (the
	// error wraps ErrMisbehaving and says what); the transport should
	// disconnect and ban it.
	Misbehaved(peer string, why error)
}

// maxCatchUpLiars bounds the peers one catch-up reports and skips before
// it gives up (the next trigger starts afresh; reported peers are banned
// by then).
const maxCatchUpLiars = 8

// Errors of HandleGossip and ServeRequest.
var (
	// ErrMisbehaving marks input no honest peer sends: undecodable or
	// oversized messages, bad signatures, forged certificates. The
	// transport should disconnect and ban the peer.
	ErrMisbehaving = errors.New("node: peer misbehaves")
	// ErrNotFound answers a request for something this node does not hold
	// (pruned, or above its head).
	ErrNotFound = errors.New("node: not found")
	// ErrPruned (an ErrNotFound) answers a request for blocks this node
	// had but pruned (below its --keep-blocks window). A PeerNetwork
	// returns it when the peers that answered "not found" are ahead of
	// the height asked for (cmd/taobox judges by their heads), so the
	// requester knows it cannot catch up by blocks.
	ErrPruned = fmt.Errorf("%w (pruned)", ErrNotFound)
)

func misbehaving(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMisbehaving, fmt.Sprintf(format, args...))
}

// seenCap bounds the dedupe set; at the cap the older half is forgotten.
const seenCap = 1 << 16

// markSeen records a gossip message and reports whether it is new.
func (n *Node) markSeen(t types.MsgType, payload []byte) bool {
	k := types.HashBytes([]byte{byte(t)}, payload)
	n.seenMu.Lock()
	defer n.seenMu.Unlock()
	if _, ok := n.seen[k]; ok {
		return false
	}
	if _, ok := n.prevSeen[k]; ok {
		return false
	}
	if len(n.seen) >= seenCap {
		n.prevSeen, n.seen = n.seen, make(map[types.Hash]struct{}, seenCap/4)
	}
	n.seen[k] = struct{}{}
	return true
}

// sendAll broadcasts messages this node produced.
func (n *Node) sendAll(out []outMsg) {
	if n.net == nil {
		return
	}
	for _, m := range out {
		n.markSeen(m.t, m.payload)
		n.net.Broadcast(m.t, m.payload)
	}
}

func (n *Node) relay(t types.MsgType, payload []byte) {
	if n.net != nil && n.ctx.Err() == nil {
		n.net.Broadcast(t, payload)
	}
}

// HandleGossip handles a gossip message from peer from: a transaction
// (into the mempool), a proposal or vote (into consensus, after its
// signature is checked), or a finalized block with its certificate (checked
// against the authority set, executed and committed; a block above head+1
// starts a catch-up through ReqBlocks). What is new and valid is relayed to
// the peers; duplicates and stale messages are dropped quietly. An error
// wrapping ErrMisbehaving means the peer sent something no honest node
// sends; other errors are not the peer's fault.
func (n *Node) HandleGossip(from string, t types.MsgType, payload []byte) error {
	if !t.IsGossip() {
		return misbehaving("%s sent a %s as gossip", from, t)
	}
	if len(payload) > t.MaxMessage() {
		return misbehaving("%s sent a %s of %d bytes, the limit is %d", from, t, len(payload), t.MaxMessage())
	}
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	if !n.markSeen(t, payload) {
		return nil
	}
	switch t {
	case types.MsgTx:
		_, err := n.submitEncoded(payload)
		var re *RejectError
		switch {
		case err == nil:
			n.relay(t, payload)
			return nil
		case errors.As(err, &re):
			switch re.Code {
			case RejectMalformed, RejectTooLarge, RejectBadSignature:
				return misbehaving("%s sent a transaction: %v", from, err)
			}
			return nil // stale, duplicate, full: not the peer's fault
		default:
			return err
		}
	case types.MsgProposal, types.MsgVote:
		ev, err := consensus.DecodeMessage(payload)
		if err != nil {
			return misbehaving("%s sent a %s: %v", from, t, err)
		}
		return n.handleConsensus(from, t, ev, payload)
	case types.MsgBlock:
		ev, err := consensus.DecodeMessage(payload)
		c, ok := ev.(consensus.Commit)
		if err != nil || !ok {
			return misbehaving("%s sent a block message that is not a block with its certificate: %v", from, err)
		}
		relayed, err := n.handleFinalized(c)
		if err == nil && relayed {
			n.relay(t, payload)
		}
		return err
	case types.MsgEvidence:
		return n.handleEvidence(from, payload)
	}
	return misbehaving("%s sent an unknown gossip type %s", from, t)
}

func (n *Node) handleConsensus(from string, t types.MsgType, ev consensus.Event, payload []byte) error {
	var height uint64
	switch e := ev.(type) {
	case consensus.Proposal:
		if t != types.MsgProposal {
			return misbehaving("%s sent a proposal as a %s", from, t)
		}
		if blockID(e.Block) != e.BlockID {
			return misbehaving("%s sent a proposal whose block id is not its block's header hash", from)
		}
		if _, err := wellFormed(e.Block); err != nil {
			return misbehaving("%s sent a proposal with a malformed block: %v", from, err)
		}
		if err := consensus.VerifyProposalSig(n.chainID, &e); err != nil {
			return misbehaving("%s: %v", from, err)
		}
		height = e.Height
	case consensus.Vote:
		if t != types.MsgVote {
			return misbehaving("%s sent a vote as a %s", from, t)
		}
		if err := consensus.VerifyVote(n.chainID, &e); err != nil {
			return misbehaving("%s: %v", from, err)
		}
		height = e.Height
	default:
		return misbehaving("%s sent a %T as a %s", from, ev, t)
	}
	n.consMu.Lock()
	if n.consClosed {
		n.consMu.Unlock()
		return ErrClosed
	}
	h, _, _ := n.cons.Position()
	switch {
	case height < h:
		n.consMu.Unlock()
		return nil // stale
	case height > h:
		// Only the next height's messages are kept and relayed, and only
		// from members of the current set when that height is in the
		// same authority epoch: a key from outside, or far-future
		// heights, cannot fill memory or the network. Proposals (up to
		// a block each) are kept at most maxFutureProposals.
		next := height == h+1
		member := n.epochOf(height) != n.epochOf(h) || n.curSet.Index(signerOf(ev)) >= 0
		if next && member && len(n.future) < maxFuture && (!isProposal(ev) || n.futureProposals() < maxFutureProposals) {
			n.future = append(n.future, ev)
		}
		behind := height > h+1
		if !behind {
			if n.aheadSince.IsZero() {
				n.aheadSince = time.Now()
			} else if time.Since(n.aheadSince) > n.cfg.VoteTimeout {
				behind = true // peers moved on and no block reached us
			}
		}
		var out []outMsg
		var err error
		if next && member {
			out, err = n.stepLocked(ev) // the stepper keeps the next height's messages
		}
		n.consMu.Unlock()
		n.sendAll(out)
		if behind {
			n.triggerCatchUp()
		}
		if next && member {
			n.relay(t, payload)
		}
		if err != nil && !errors.Is(err, consensus.ErrNotValidator) {
			return err
		}
		return nil
	}
	out, err := n.stepLocked(ev)
	n.consMu.Unlock()
	n.sendAll(out)
	if err != nil {
		if errors.Is(err, consensus.ErrNotValidator) {
			return fmt.Errorf("node: %s relayed a message from outside the authority set: %w", from, err)
		}
		return err
	}
	n.relay(t, payload)
	return nil
}

// handleFinalized checks a finalized block of height head+1 against the
// current authority set and commits it (through the consensus node, which
// decides it on the certificate once the block validates). A block above
// head+1 starts a catch-up. It reports whether the block was new here.
func (n *Node) handleFinalized(c consensus.Commit) (bool, error) {
	n.consMu.Lock()
	if n.consClosed {
		n.consMu.Unlock()
		return false, ErrClosed
	}
	h, _, _ := n.cons.Position()
	switch {
	case c.Cert.Height < h:
		n.consMu.Unlock()
		return false, nil
	case c.Cert.Height > h:
		n.consMu.Unlock()
		n.triggerCatchUp()
		return false, nil
	}
	if blockID(c.Block) != c.Cert.BlockID {
		n.consMu.Unlock()
		return false, misbehaving("a finalized block whose certificate names another block")
	}
	if _, err := wellFormed(c.Block); err != nil {
		n.consMu.Unlock()
		return false, misbehaving("a finalized block is malformed: %v", err)
	}
	if err := consensus.VerifyCertificate(n.chainID, n.curSet, &c.Cert); err != nil {
		n.consMu.Unlock()
		return false, misbehaving("the certificate of block %d: %v", c.Cert.Height, err)
	}
	// The authorities finalized it: judge it again as decided (no clock
	// check, evidence of an older epoch accepted on the certificate), so
	// an earlier "invalid" verdict of ours on its proposal (a slow
	// clock, a set this node lacks) does not leave the node stuck.
	var out []outMsg
	if _, cached := n.cache[c.Cert.BlockID]; !cached {
		if ex, verr := n.validateLocked(c.Block, true); verr == nil {
			n.cache[ex.hash] = ex
			o, err := n.stepLocked(consensus.ValidityResult{Height: c.Cert.Height, BlockID: c.Cert.BlockID, OK: true})
			out = append(out, o...)
			if err != nil {
				n.consMu.Unlock()
				n.sendAll(out)
				return false, err
			}
		}
	}
	o, err := n.stepLocked(c)
	out = append(out, o...)
	committed := n.head.Height >= c.Cert.Height
	halted := n.halted
	n.consMu.Unlock()
	n.sendAll(out)
	if err != nil {
		return false, err
	}
	if !committed {
		if halted != nil {
			return false, halted
		}
		return false, fmt.Errorf("node: finalized block %d did not commit", c.Cert.Height)
	}
	return true, nil
}

// triggerCatchUp starts fetching finalized blocks from peers (ReqBlocks
// from head+1) unless a catch-up is already running.
func (n *Node) triggerCatchUp() {
	if n.net == nil || n.ctx.Err() != nil || !n.catching.CompareAndSwap(false, true) {
		return
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		defer n.catching.Store(false)
		n.catchUp()
	}()
}

// catchUp requests blocks from head+1 in batches of MaxBlocksPerReq and
// commits each after checking its certificate (following authority-set
// changes at epoch ends), until a peer has nothing newer. With a
// PeerNetwork, a peer whose answer fails verification is skipped and the
// heights not committed are asked of another peer. A fault the bytes prove
// by themselves (undecodable, a certificate for another height, a block
// its certificate does not name: errSelfEvident) is reported at once
// (Misbehaved). A block that fails this node's own checks (a certificate
// its authority set did not sign, a malformed block) is reported only once
// another peer's block at that height has verified and committed: if this
// node's view of the authority set were wrong, every peer would fail the
// same way, and banning them all would cut the node off.
func (n *Node) catchUp() {
	pn, _ := n.net.(PeerNetwork)
	var liars []string
	type suspect struct {
		peer   string
		height uint64
		err    error
	}
	var suspects []suspect
	for n.ctx.Err() == nil {
		from, _ := n.Head()
		from++
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		req := RangeRequest{From: from, Count: types.MaxBlocksPerReq}.Encode()
		var peer string
		var resp []byte
		var err error
		if pn != nil {
			peer, resp, err = pn.RequestPeer(ctx, types.ReqBlocks, req, liars)
		} else {
			resp, err = n.net.Request(ctx, types.ReqBlocks, req)
		}
		cancel()
		if err != nil {
			if errors.Is(err, ErrPruned) {
				// The peers asked are ahead and no longer keep the next
				// block. Said once per height; the stall warning
				// repeats it.
				if n.missing.Swap(from) != from {
					n.log.Warn(missingMsg, "missing", from, "head", from-1, "err", err)
				}
			}
			n.log.Debug("catch-up request failed", "from", from, "err", err)
			return
		}
		count, err := n.applyBlocks(from, resp)
		if count > 0 {
			n.missing.Store(0)
			n.log.Info("caught up", "from", from, "blocks", count)
			head, _ := n.Head()
			kept := suspects[:0]
			for _, s := range suspects {
				if s.height <= head { // another peer's block at its height verified
					pn.Misbehaved(s.peer, s.err)
					n.log.Warn("catch-up: reported a peer whose block failed verification where another peer's verified", "peer", s.peer, "height", s.height, "err", s.err)
					continue
				}
				kept = append(kept, s)
			}
			suspects = kept
		}
		if errors.Is(err, ErrMisbehaving) && pn != nil && peer != "" {
			liars = append(liars, peer)
			if errors.Is(err, errSelfEvident) {
				pn.Misbehaved(peer, err)
				n.log.Warn("catch-up: a peer served a bad blocks answer; reported it, asking another peer", "peer", peer, "from", from+uint64(count), "err", err)
			} else {
				suspects = append(suspects, suspect{peer, from + uint64(count), err})
				n.log.Warn("catch-up: a peer's block failed verification; asking another peer", "peer", peer, "height", from+uint64(count), "err", err)
			}
			if len(liars) >= maxCatchUpLiars {
				return
			}
			continue
		}
		if err != nil {
			n.log.Warn("catch-up stopped", "peer", peer, "from", from+uint64(count), "err", err)
			return
		}
		if count < types.MaxBlocksPerReq {
			return
		}
	}
}

// missingMsg is the warning of a node whose peers no longer keep its next
// block (catch-up's "not found"; the peers' answers in err say which
// blocks they keep).
const missingMsg = "catch-up: the peers do not have this node's next block: they pruned it (--keep-blocks), so this node, behind their window, cannot catch up by blocks; " +
	"point it at a peer with a larger --keep-blocks (--peers), or stop it, move its data dir aside and start it again with --peers to sync a snapshot (docs/sync.md, which says when a validator may)"

// errSelfEvident marks a catch-up answer whose fault its bytes prove
// alone, whatever the receiver's state (it wraps ErrMisbehaving too).
var errSelfEvident = errors.New("self-evident")

// applyBlocks commits the blocks of a ReqBlocks answer for heights from,
// from+1, … and returns how many it took (committed, or already committed
// by consensus meanwhile). An answer no honest peer
// sends is an error wrapping ErrMisbehaving, and also errSelfEvident when
// the bytes alone prove it (undecodable, a certificate that does not decode
// or is for another height, a block its certificate does not name); a
// certificate the authority set did not sign or a malformed block wraps
// ErrMisbehaving only. The blocks before the bad one stay committed.
func (n *Node) applyBlocks(from uint64, resp []byte) (int, error) {
	evident := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w", errSelfEvident, misbehaving(format, args...))
	}
	bs, err := DecodeBlocksResponse(resp)
	if err != nil {
		return 0, evident("a blocks response from height %d: %v", from, err)
	}
	for i, b := range bs {
		want := from + uint64(i)
		cert, err := decodeCert(b.Cert)
		if err != nil {
			return i, evident("the certificate of block %d: %v", want, err)
		}
		if cert.Height != want {
			return i, evident("block %d of a blocks response carries the certificate of height %d (blocks out of order or misplaced)", want, cert.Height)
		}
		if blockID(b.Block) != cert.BlockID {
			return i, evident("block %d of a blocks response is not the block its certificate names", want)
		}
		if _, err := n.handleFinalized(consensus.Commit{Block: b.Block, Cert: cert}); err != nil {
			return i, fmt.Errorf("block %d: %w", want, err)
		}
	}
	return len(bs), nil
}

// ServeRequest answers a peer's request: ReqHeaders and ReqBlocks (a
// RangeRequest of heights; blocks come with their certificates, up to
// types.MaxBlocksRespBytes) and ReqEpochProof (a RangeRequest of authority
// epochs, see wire.go). ErrNotFound when the first item asked for is not
// held; an undecodable request wraps ErrMisbehaving.
func (n *Node) ServeRequest(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error) {
	if !t.IsRequest() || len(payload) > t.MaxMessage() {
		return nil, misbehaving("a %s request of %d bytes", t, len(payload))
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	switch t {
	case types.ReqHeaders, types.ReqBlocks, types.ReqEpochProof:
	default:
		return nil, fmt.Errorf("%w: this node does not serve %s requests", ErrNotFound, t)
	}
	q, err := DecodeRangeRequest(payload)
	if err != nil {
		return nil, misbehaving("%v", err)
	}
	if q.Count == 0 {
		return nil, misbehaving("a %s request for 0 items", t)
	}
	head, _ := n.Head()
	switch t {
	case types.ReqHeaders:
		var hs [][]byte
		for h := q.From; h <= head && len(hs) < int(min(q.Count, types.MaxHeadersPerReq)) && ctx.Err() == nil; h++ {
			raw, ok, err := n.store.Header(h)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			hs = append(hs, raw)
		}
		if len(hs) == 0 {
			return nil, fmt.Errorf("%w: header %d", ErrNotFound, q.From)
		}
		return EncodeHeadersResponse(hs), nil
	case types.ReqBlocks:
		var bs []BlockWithCert
		size := 4
		for h := max(q.From, 1); h <= head && len(bs) < int(min(q.Count, types.MaxBlocksPerReq)) && ctx.Err() == nil; h++ {
			body, ok, err := n.store.Body(h)
			if err != nil {
				return nil, err
			}
			cert, ok2, err := n.store.Cert(h)
			if err != nil {
				return nil, err
			}
			if !ok || !ok2 {
				break
			}
			if len(bs) > 0 && size+8+len(body)+len(cert) > types.MaxBlocksRespBytes {
				break
			}
			size += 8 + len(body) + len(cert)
			bs = append(bs, BlockWithCert{Block: body, Cert: cert})
		}
		if len(bs) == 0 {
			if q.From <= head {
				// Below the head and not held: pruned (or before the
				// snapshot this node synced). Say what is kept: a
				// requester behind this window cannot catch up by
				// blocks, and logs this answer.
				low := n.store.Base()
				if at, synced := n.store.SyncedAt(); synced && at == low {
					low++ // the snapshot block has no body
				}
				return nil, fmt.Errorf("%w: block %d is pruned here (this node keeps blocks %d to %d)", ErrPruned, q.From, low, head)
			}
			return nil, fmt.Errorf("%w: block %d (this node's head is %d)", ErrNotFound, q.From, head)
		}
		return EncodeBlocksResponse(bs), nil
	}
	// ReqEpochProof
	var fs []EpochFragment
	size := 4
	for e := max(q.From, 1); e*n.epochBlocks <= head && len(fs) < int(min(q.Count, maxEpochFragments)) && ctx.Err() == nil; e++ {
		h := e * n.epochBlocks
		hdr, ok, err := n.store.Header(h)
		if err != nil {
			return nil, err
		}
		cert, ok2, err := n.store.Cert(h)
		if err != nil {
			return nil, err
		}
		set, ok3, err := n.store.EpochData(h)
		if err != nil {
			return nil, err
		}
		if !ok || !ok2 || !ok3 {
			break
		}
		f := EpochFragment{Header: hdr, Cert: cert, NextSet: set}
		if size+12+len(hdr)+len(cert)+len(set) > types.MaxEpochProof {
			break
		}
		size += 12 + len(hdr) + len(cert) + len(set)
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("%w: epoch %d's handoff", ErrNotFound, q.From)
	}
	return EncodeEpochProof(fs), nil
}

// maxFutureProposals bounds the next height's proposals kept in n.future.
const maxFutureProposals = 8

// futureProposals counts the proposals in n.future. n.consMu must be held.
func (n *Node) futureProposals() int {
	c := 0
	for _, ev := range n.future {
		if isProposal(ev) {
			c++
		}
	}
	return c
}

func isProposal(ev consensus.Event) bool {
	_, ok := ev.(consensus.Proposal)
	return ok
}

// signerOf returns who signed a proposal or vote.
func signerOf(ev consensus.Event) types.AccountID {
	switch e := ev.(type) {
	case consensus.Proposal:
		return e.Proposer
	case consensus.Vote:
		return e.Validator
	}
	return types.AccountID{}
}
