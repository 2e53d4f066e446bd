package state

import (
	"strings"
	"testing"

	"taobox/chain/types"
)

// TestRejections covers the rejections of every call not exercised by the
// per-call tests, each against a state where only that check fails.
func TestRejections(t *testing.T) {
	g := testGenesis(8, 100_000*tao)
	g.Params.StakeThreshold = 10 * tao
	h := newHarness(t, g)
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})              // subnet 1, owner 0
	h.mustRun(2, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10)})   // uid 1, coldkey 2
	h.mustRun(3, types.BurnedRegister{Netuid: 1, Hotkey: h.id(11)})   // uid 2, coldkey 3
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 100 * tao}) // enough for the threshold
	h.advance(12)                                                     // an epoch: uid 1 gets a permit

	cases := []struct {
		name   string
		signer int
		call   types.Call
		want   string
	}{
		// set_weights
		{"weights: no subnet", 10, types.SetWeights{Netuid: 9, UIDs: []uint16{2}, Weights: []uint16{1}}, "does not exist"},
		{"weights: below stake threshold", 11, types.SetWeights{Netuid: 1, UIDs: []uint16{1}, Weights: []uint16{1}}, "below the"},
		// commit_weights
		{"commit: no subnet", 10, types.CommitWeights{Netuid: 9}, "does not exist"},
		{"commit: commit-reveal off", 10, types.CommitWeights{Netuid: 1}, "does not use commit-reveal"},
		// reveal_weights
		{"reveal: no subnet", 10, types.RevealWeights{Netuid: 9}, "does not exist"},
		{"reveal: commit-reveal off", 10, types.RevealWeights{Netuid: 1}, "does not use commit-reveal"},
		// set_root_weights
		{"root: not the owner", 3, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}}, "only the owner"},
		{"root: no stake", 3, types.SetRootWeights{Hotkey: h.id(11), Netuids: []uint16{1}, Weights: []uint16{1}}, "root weights need stake"},
		{"root: unknown subnet", 2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{7}, Weights: []uint16{1}}, "does not exist"},
		{"root: the root network", 2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{0}, Weights: []uint16{1}}, "does not exist"},
		{"root: duplicate subnet", 2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1, 1}, Weights: []uint16{1, 1}}, "twice"},
		// burned_register
		{"register: burn unaffordable after the fee", 7, types.BurnedRegister{Netuid: 1, Hotkey: h.id(17)}, "insufficient balance for the registration burn"},
		// vote
		{"vote: unknown proposal", 2, types.Vote{Proposal: 42, Aye: true}, "does not exist"},
		// set_hyperparam
		{"hyperparam: max validators above max uids", 0, types.SetHyperparam{Netuid: 1, Param: types.ParamMaxAllowedValidators, Value: 300}, "max_allowed_validators"},
		{"hyperparam: reveal period", 0, types.SetHyperparam{Netuid: 1, Param: types.ParamRevealPeriod, Value: 0}, "reveal_period"},
		{"hyperparam: activity cutoff", 0, types.SetHyperparam{Netuid: 1, Param: types.ParamActivityCutoff, Value: 10}, "activity_cutoff"},
	}
	// Account 7 keeps just enough for the fee.
	h.mustRun(7, types.Transfer{To: h.id(6), Amount: h.free(7) - 2*h.globals().Params.TransferFee})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { h.mustFail(tc.signer, tc.call, tc.want) })
	}

	// Commit-reveal paths that need it switched on.
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	h.advance(2)
	h.mustFail(40, types.CommitWeights{Netuid: 1}, "not registered")
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte("a"))})
	h.mustFail(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte("b"))}, "commit rate limit")
	for i := range 9 {
		h.advance(2)
		h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte{byte(i)})})
	}
	// Older commits have expired by now, so this one is accepted;
	// TestCommitQueueLimit checks the 10-commit limit where none expires.
	h.advance(2)
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte("z"))})
	// An expired commit cannot be revealed.
	uids, ws, salt := []uint16{2}, []uint16{1}, []byte("s")
	h.advance(2)
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.CommitHash(h.id(10), 1, uids, ws, salt, 0)})
	h.advance(40) // four epochs: far past the one-epoch reveal period
	h.mustFail(10, types.RevealWeights{Netuid: 1, UIDs: uids, Weights: ws, Salt: salt}, "expired")

	// Root weights: twice in one block.
	tx1 := h.tx(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	tx2 := h.tx(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{2}})
	tx2.Nonce++
	tx2.Sign(h.keys[h.id(2)], h.env.ChainID)
	if err := h.block(tx1, tx2); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, ev := range h.events {
		if ev.Kind == types.EvTxFailed && contains(ev.Error, "already set in this block") {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("the second root weights of a block must fail, events %v", h.events)
	}

	// Too many open proposals.
	g2 := testGenesis(16, 100_000*tao)
	h2 := newHarness(t, g2)
	h2.mustRun(0, types.RegisterNetwork{Hotkey: h2.id(1)})
	for i := range 11 {
		h2.mustRun(i, types.AddStake{Hotkey: h2.id(1), Amount: 10 * tao})
	}
	for i := range 10 {
		h2.mustRun(i, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalStakeThreshold, Value: uint64(i)}})
	}
	h2.mustFail(10, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalStakeThreshold, Value: 1}}, "proposals are open")
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
