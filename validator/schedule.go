package validator

import "taobox/chain/state"

// When weights may be set (chain-rules.md §4, incumbent-protocol.md §3.3–3.4).
// The chain runs a transaction at some block h after the validator saw
// height H (h ≥ H+1), so "legal at the next block" means legal at H+1.

// NextWeightBlock returns the first block at which a set_weights or
// commit_weights of a neuron last updated at lastUpdate passes the rate
// limit: lastUpdate + rateLimit, or 0 (any block) if it never set weights.
// The chain checks now − LastUpdate ≥ WeightsSetRateLimit, so the result is
// the first legal block, inclusive (the SDK's own check, a strict >, waits
// one block longer).
func NextWeightBlock(lastUpdate, rateLimit uint64) uint64 {
	if lastUpdate == 0 {
		return 0
	}
	return lastUpdate + rateLimit
}

// EpochAt predicts the subnet's epoch index as the chain sees it while
// executing block b (current_epoch_with_lookahead: the epoch that runs at
// the end of b already counts), assuming epochs keep running every tempo
// blocks after the last one. A commit made in block b lands in EpochAt(b);
// it may be revealed in epoch EpochAt(b) + RevealPeriod.
//
// For a block at or before the last epoch's it returns the epoch that
// block was in, under the same assumption about the past: the epoch index
// less one for every tempo (or part of one) between b and LastEpoch.
func EpochAt(s *state.Subnet, b uint64) uint64 {
	t := s.Hyper.Tempo
	switch {
	case t == 0:
		return s.EpochIndex
	case b <= s.LastEpoch:
		back := (s.LastEpoch - b + t - 1) / t
		return s.EpochIndex - min(back, s.EpochIndex)
	}
	return s.EpochIndex + (b-s.LastEpoch)/t
}

// EpochStart returns the first block whose EpochAt is e (e > the subnet's
// EpochIndex), under the same assumption.
func EpochStart(s *state.Subnet, e uint64) uint64 {
	if e <= s.EpochIndex || s.Hyper.Tempo == 0 {
		return 0
	}
	return s.LastEpoch + (e-s.EpochIndex)*s.Hyper.Tempo
}

// Window says what the validator may do next about weights and from which
// block.
type Window struct {
	Block  uint64 // first block the action is legal at
	Action string // "set", "commit" or "reveal"
}

// NextWindow returns the next weight window of the neuron self on subnet
// mg at height: a reveal window while a commit is pending (CommitStatus),
// else the rate-limit window of a set (or, on commit-reveal subnets, a
// commit, moved past the last epochMargin blocks of an epoch). lastSubmit
// is the block of the validator's last set or commit: one that has not
// landed yet is counted as landing in the next block, so the window just
// after a submission is the rate limit's, not the next block.
func NextWindow(mg *state.Metagraph, self uint16, pending *PendingCommit, lastSubmit, height uint64) Window {
	s := &mg.Subnet
	var me state.NeuronInfo
	if int(self) < len(mg.Neurons) {
		me = mg.Neurons[self]
	}
	if s.Hyper.CommitReveal != 0 && pending != nil {
		switch phase, epoch := CommitStatus(s, &me, pending, height); phase {
		case CommitInFlight, CommitWaiting:
			return Window{Block: EpochStart(s, epoch+s.Hyper.RevealPeriod), Action: "reveal"}
		case CommitRevealable:
			return Window{Block: height + 1, Action: "reveal"}
		}
	}
	lu := me.LastUpdate
	if lastSubmit > lu {
		lu = lastSubmit + 1
	}
	w := Window{Block: max(NextWeightBlock(lu, s.Hyper.WeightsRateLimit), height+1), Action: "set"}
	if s.Hyper.CommitReveal != 0 {
		w.Action = "commit"
		if t := s.Hyper.Tempo; t > 0 && EpochAt(s, w.Block+epochMargin) != EpochAt(s, w.Block) {
			w.Block = EpochStart(s, EpochAt(s, w.Block)+1)
		}
	}
	return w
}

// CommitPhase is where a pending weights commit stands.
type CommitPhase int

const (
	// CommitInFlight: submitted, not yet in a block (LastUpdate has not
	// moved past the submission).
	CommitInFlight CommitPhase = iota
	// CommitLost: submitted commitLostAfter blocks ago or more and still
	// not in a block (it can no longer land): given up, a new commit may be
	// made.
	CommitLost
	// CommitWaiting: in a block; its reveal epoch has not begun.
	CommitWaiting
	// CommitRevealable: the chain's epoch at the next block is the commit's
	// reveal epoch.
	CommitRevealable
	// CommitExpired: the reveal epoch is over (the chain drops the commit).
	CommitExpired
)

// commitLostAfter is how many blocks after its submission a commit that
// has not landed is given up: the validity window of the validator's
// transactions (cmd/taobox's txValidity), after which it cannot land.
const commitLostAfter = 64

// CommitStatus says where pending stands at the block after height, for a
// neuron whose chain record is me, and the epoch the commit is (or, in
// flight, is predicted to be) in. The commit's block is me.LastUpdate once
// that has moved past the submission (commit_weights sets it; a reveal
// does not), so the epoch comes from the chain, not from the prediction
// made when it was submitted: a commit that landed an epoch late is
// revealed an epoch late, and one that landed on time is not revealed
// after it has expired. LandedEpoch, once recorded (RecordLanding), is
// used as it is; else a landing block after the subnet's last epoch gives
// its epoch exactly, and an older one falls back on the prediction (a
// tempo change moves LastEpoch without an epoch, so counting back from it
// can be off by one).
func CommitStatus(s *state.Subnet, me *state.NeuronInfo, pending *PendingCommit, height uint64) (CommitPhase, uint64) {
	epoch, landed := landedEpoch(s, me, pending)
	if !landed {
		if height >= pending.Submitted+commitLostAfter {
			return CommitLost, pending.Epoch
		}
		return CommitInFlight, pending.Epoch
	}
	target, now := epoch+s.Hyper.RevealPeriod, EpochAt(s, height+1)
	switch {
	case now < target:
		return CommitWaiting, epoch
	case now == target:
		return CommitRevealable, epoch
	}
	return CommitExpired, epoch
}

// RecordLanding fixes pending's landing block and epoch the first time the
// chain shows the commit landed; it reports whether it changed pending.
func RecordLanding(s *state.Subnet, me *state.NeuronInfo, pending *PendingCommit) bool {
	if pending.LandedAt != 0 {
		return false
	}
	epoch, landed := landedEpoch(s, me, pending)
	if !landed {
		return false
	}
	pending.LandedAt, pending.LandedEpoch = me.LastUpdate, epoch
	return true
}

func landedEpoch(s *state.Subnet, me *state.NeuronInfo, p *PendingCommit) (uint64, bool) {
	switch {
	case p.LandedAt != 0:
		return p.LandedEpoch, true
	case me.LastUpdate <= p.Submitted:
		return 0, false
	case me.LastUpdate > s.LastEpoch:
		return EpochAt(s, me.LastUpdate), true
	}
	return p.Epoch, true
}
