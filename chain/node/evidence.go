package node

import (
	"errors"
	"fmt"
	"slices"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/types"
)

// Equivocation evidence: the consensus node reports two conflicting signed
// votes (or proposals) of one validator (Ready.Evidence); the driver keeps
// the evidence in a pending pool, gossips it (MsgEvidence), and a proposer
// puts what is pending and not yet on chain into its block (Block.Evidence,
// committed to by Header.EvidenceHash, at most types.MaxBlockEvidence
// pieces). Every node verifies each piece of a block against the authority
// set of the offence's height before voting for it; state.ApplyBlock then
// records the offence once and jails the offender (chain/state evidence.go).

// Evidence window and pool caps.
const (
	// EvidenceMaxAgeEpochs is how many authority epochs back an offence may
	// lie: evidence for an epoch before the previous one is refused, since
	// the set that would verify it is no longer certain to be at hand.
	EvidenceMaxAgeEpochs = 1
	// maxPendingEvidence caps the pending pool; further pieces are dropped
	// until blocks commit some.
	maxPendingEvidence = 256
)

// Why a piece of evidence is refused.
var (
	errEvidenceTooOld = errors.New("node: evidence is outside the window")
	errEvidenceNoSet  = errors.New("node: the authority set of the evidence's epoch is not stored here")
	errEvidenceFuture = errors.New("node: evidence is for a height above the block")
)

// checkEvidenceLocked checks that e may go into block height: the offence
// is at a height in 1..height, at most EvidenceMaxAgeEpochs epochs back,
// and verifies (consensus.VerifyEvidence) against the set of its epoch
// (the current set, or the stored one of an earlier epoch). It returns
// what e proves. n.consMu must be held; height is head+1.
func (n *Node) checkEvidenceLocked(e *consensus.Evidence, height uint64) (state.Equivocation, error) {
	k := e.Key()
	if k.Height == 0 {
		return state.Equivocation{}, errors.New("node: evidence for height 0")
	}
	if k.Height > height {
		return state.Equivocation{}, fmt.Errorf("%w: an offence at height %d in block %d", errEvidenceFuture, k.Height, height)
	}
	ep, cur := n.epochOf(k.Height), n.epochOf(height)
	if cur-ep > EvidenceMaxAgeEpochs {
		return state.Equivocation{}, fmt.Errorf("%w: an offence at height %d (epoch %d) in block %d (epoch %d)", errEvidenceTooOld, k.Height, ep, height, cur)
	}
	set := n.curSet
	if ep != cur {
		var err error
		if set, err = n.setOfEpoch(ep); err != nil {
			return state.Equivocation{}, fmt.Errorf("%w: %v", errEvidenceNoSet, err)
		}
	}
	if err := consensus.VerifyEvidence(n.chainID, set, e); err != nil {
		return state.Equivocation{}, fmt.Errorf("node: evidence against %s at height %d: %w", k.Offender, k.Height, err)
	}
	return state.Equivocation{Offender: k.Offender, Height: k.Height, Round: k.Round, Type: k.Type}, nil
}

// addEvidenceLocked puts e into the pending pool; it returns its encoding
// when e is new there (so the caller gossips it). n.consMu must be held.
func (n *Node) addEvidenceLocked(e *consensus.Evidence) []byte {
	k := e.Key()
	if _, ok := n.evidence[k]; ok || len(n.evidence) >= maxPendingEvidence {
		return nil
	}
	b, err := consensus.EncodeEvidence(e)
	if err != nil {
		return nil
	}
	n.evidence[k] = b
	return b
}

// onEvidenceLocked handles the evidence the consensus node reported: it is
// logged, pooled and returned for gossip. n.consMu must be held.
func (n *Node) onEvidenceLocked(evs []consensus.Evidence) []outMsg {
	var out []outMsg
	for i := range evs {
		n.log.Warn("equivocation seen", "evidence", describeEvidence(evs[i]))
		if b := n.addEvidenceLocked(&evs[i]); b != nil {
			out = append(out, outMsg{types.MsgEvidence, b})
		}
	}
	return out
}

// handleEvidence takes gossiped evidence: malformed or forged evidence is
// the peer's fault; evidence this node cannot check (outside the window,
// or a set it lacks) is dropped quietly; new valid evidence is pooled and
// relayed.
func (n *Node) handleEvidence(from string, payload []byte) error {
	e, err := consensus.DecodeEvidence(payload)
	if err != nil {
		return misbehaving("%s sent evidence: %v", from, err)
	}
	n.consMu.Lock()
	if n.consClosed {
		n.consMu.Unlock()
		return ErrClosed
	}
	n.mu.Lock()
	next := n.head.Height + 1
	n.mu.Unlock()
	_, err = n.checkEvidenceLocked(&e, next)
	var fresh []byte
	if err == nil {
		fresh = n.addEvidenceLocked(&e)
	}
	n.consMu.Unlock()
	switch {
	case errors.Is(err, errEvidenceTooOld), errors.Is(err, errEvidenceNoSet), errors.Is(err, errEvidenceFuture):
		n.log.Debug("evidence dropped", "from", from, "err", err) // not provably the peer's fault
		return nil
	case err != nil:
		return misbehaving("%s sent evidence: %v", from, err)
	}
	if fresh != nil {
		n.log.Info("equivocation evidence received", "from", from, "evidence", describeEvidence(e))
		n.relay(types.MsgEvidence, payload)
	}
	return nil
}

// selectEvidenceLocked returns the pending evidence block height can
// carry: in key order, checked again, not yet on chain (by the committed
// state), at most types.MaxBlockEvidence. It drops from the pool what can
// never go on chain any more. n.consMu must be held.
func (n *Node) selectEvidenceLocked(height uint64) ([][]byte, []state.Equivocation) {
	keys := make([]consensus.EvidenceKey, 0, len(n.evidence))
	for k := range n.evidence {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareEvidenceKeys)
	var raw [][]byte
	var eqs []state.Equivocation
	for _, k := range keys {
		if len(raw) >= types.MaxBlockEvidence {
			break
		}
		b := n.evidence[k]
		e, err := consensus.DecodeEvidence(b)
		if err != nil {
			delete(n.evidence, k)
			continue
		}
		eq, err := n.checkEvidenceLocked(&e, height)
		if err != nil {
			delete(n.evidence, k)
			continue
		}
		at, err := state.QueryEquivocation(n.store, eq)
		if err != nil {
			continue // a read error: try again with the next block
		}
		if at != 0 {
			delete(n.evidence, k)
			continue
		}
		raw, eqs = append(raw, b), append(eqs, eq)
	}
	return raw, eqs
}

// checkBlockEvidenceLocked verifies the evidence of block height (decoded
// by types.DecodeBlock, so within its caps) and returns what it proves, for
// state.ApplyBlock. A decided block (finalized by the authorities) whose
// evidence is of an epoch whose set this node lacks (a store synced from a
// snapshot) is taken on the certificate's word. n.consMu must be held.
func (n *Node) checkBlockEvidenceLocked(blk *types.Block, decided bool) ([]state.Equivocation, error) {
	var eqs []state.Equivocation
	seen := map[consensus.EvidenceKey]bool{}
	for i, b := range blk.Evidence {
		e, err := consensus.DecodeEvidence(b)
		if err != nil {
			return nil, fmt.Errorf("evidence %d: %v", i, err)
		}
		k := e.Key()
		if seen[k] {
			return nil, fmt.Errorf("evidence %d repeats an offence of the block", i)
		}
		seen[k] = true
		eq, err := n.checkEvidenceLocked(&e, blk.Header.Height)
		if err != nil {
			if !(decided && errors.Is(err, errEvidenceNoSet)) {
				return nil, fmt.Errorf("evidence %d: %v", i, err)
			}
			eq = state.Equivocation{Offender: k.Offender, Height: k.Height, Round: k.Round, Type: k.Type}
		}
		eqs = append(eqs, eq)
	}
	return eqs, nil
}

// dropCommittedEvidenceLocked removes a committed block's evidence from the
// pending pool. n.consMu must be held.
func (n *Node) dropCommittedEvidenceLocked(blk *types.Block) {
	for _, b := range blk.Evidence {
		if e, err := consensus.DecodeEvidence(b); err == nil {
			delete(n.evidence, e.Key())
		}
	}
}

func compareEvidenceKeys(a, b consensus.EvidenceKey) int {
	switch {
	case a.Height != b.Height:
		return cmpU64(a.Height, b.Height)
	case a.Round != b.Round:
		return cmpU64(uint64(a.Round), uint64(b.Round))
	case a.Type != b.Type:
		return cmpU64(uint64(a.Type), uint64(b.Type))
	}
	return slices.Compare(a.Offender[:], b.Offender[:])
}
