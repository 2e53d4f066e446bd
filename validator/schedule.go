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
func EpochAt(s *state.Subnet, b uint64) uint64 {
	t := s.Hyper.Tempo
	if t == 0 || b <= s.LastEpoch {
		return s.EpochIndex
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
// mg: a reveal window when a commit is pending, else the rate-limit window
// of a set (or, on commit-reveal subnets, a commit).
func NextWindow(mg *state.Metagraph, self uint16, pending *PendingCommit) Window {
	s := &mg.Subnet
	if s.Hyper.CommitReveal != 0 && pending != nil {
		return Window{Block: EpochStart(s, pending.Epoch+s.Hyper.RevealPeriod), Action: "reveal"}
	}
	var last uint64
	if int(self) < len(mg.Neurons) {
		last = mg.Neurons[self].LastUpdate
	}
	w := Window{Block: NextWeightBlock(last, s.Hyper.WeightsRateLimit), Action: "set"}
	if s.Hyper.CommitReveal != 0 {
		w.Action = "commit"
	}
	return w
}
