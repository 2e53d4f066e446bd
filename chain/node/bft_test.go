package node

import (
	"os"
	"testing"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/types"
)

// TestBFTFourValidators: four validators finalize 20 blocks with identical
// hashes and state roots, certificates stored and carried by the next
// block; a transaction submitted to one node reaches every state.
func TestBFTFourValidators(t *testing.T) {
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 1)
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	n0 := tn.node(0)
	// Submitted to one node, gossiped to all: whoever proposes includes them.
	for k := range 5 {
		mustSubmit(t, tn.node(k%4), sign(0, uint64(k), 100, types.Transfer{To: id(1), Amount: tao}, n0.ChainID()))
	}
	tn.waitHeight(20, 0, 1, 2, 3)
	nodes := []*Node{tn.node(0), tn.node(1), tn.node(2), tn.node(3)}
	checkSameChain(t, 20, nodes...)
	for i, n := range nodes {
		a, err := state.QueryAccount(n.State(), id(1))
		if err != nil || a.Free != 1005*tao {
			t.Errorf("node %d: account 1 has %d rao (%v), want the transfer applied", i, a.Free, err)
		}
		ci := n.ConsensusState()
		if len(ci.Validators) != 4 || ci.SelfIndex < 0 || ci.Height < 21 {
			t.Errorf("node %d: consensus state %+v", i, ci)
		}
		if fh, fid := n.Finalized(); fh < 20 || fid.IsZero() {
			t.Errorf("node %d: finalized %d", i, fh)
		}
	}
	if _, err := n0.ProduceBlock(); err == nil {
		t.Error("ProduceBlock worked with four authorities")
	}
}

// TestBFTOneDown: with one of four validators never started, the other
// three (3/4 > 2/3) still finalize, through the rounds where the missing
// one should propose.
func TestBFTOneDown(t *testing.T) {
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 2)
	for i := range 3 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	tn.waitHeight(8, 0, 1, 2)
	checkSameChain(t, 8, tn.node(0), tn.node(1), tn.node(2))
	var later int
	for k := uint64(1); k <= 8; k++ {
		raw, _, _ := tn.node(0).Store().Cert(k)
		c, _ := decodeCert(raw)
		if c.Round > 0 {
			later++
		}
	}
	if later == 0 {
		t.Error("no block needed a second round, yet the fourth validator never proposed")
	}
}

// TestBFTTwoDownNoProgressThenHeal: with two of four validators cut off no
// block is finalized (2/4 is not more than 2/3); after healing the chain
// continues with no fork.
func TestBFTTwoDownNoProgressThenHeal(t *testing.T) {
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 3)
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	tn.waitHeight(3, 0, 1, 2, 3)
	tn.setCut(2, true)
	tn.setCut(3, true)
	time.Sleep(50 * time.Millisecond) // let a block in flight land
	h0, _ := tn.node(0).Head()
	h1, _ := tn.node(1).Head()
	stuck := max(h0, h1)
	// Several propose and vote timeouts pass: no quorum, so no block.
	time.Sleep(time.Second)
	for _, i := range []int{0, 1} {
		if h, _ := tn.node(i).Head(); h > stuck+1 {
			t.Fatalf("node %d finalized up to %d without a quorum (stuck at %d)", i, h, stuck)
		}
	}
	tn.setCut(2, false)
	tn.setCut(3, false)
	tn.waitHeight(stuck+4, 0, 1, 2, 3)
	checkSameChain(t, stuck+4, tn.node(0), tn.node(1), tn.node(2), tn.node(3))
}

// TestBFTFollowerCatchesUp: a follower (no key) that joins after 10 blocks
// fetches them with ReqBlocks, verifies and applies them, then follows.
func TestBFTFollowerCatchesUp(t *testing.T) {
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 4)
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	tn.waitHeight(10, 0, 1, 2, 3)
	f := tn.add(9, bftConfig(t, g, nil))
	if ci := f.ConsensusState(); ci.SelfIndex != -1 {
		t.Fatalf("a follower has self index %d", ci.SelfIndex)
	}
	h, _ := tn.node(0).Head()
	tn.waitHeight(h+5, 9, 0)
	checkSameChain(t, h+5, tn.node(0), f)
	if f.Store().StateRoot() == (types.Hash{}) {
		t.Fatal("follower has no state")
	}
}

// TestBFTRestartNoDoubleSign: a validator closed and reopened several
// times in the middle of rounds resumes from its persisted hard state; no
// validator ever signs two different votes for one height, round and type
// (the network records every vote), and the chain goes on.
func TestBFTRestartNoDoubleSign(t *testing.T) {
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 5)
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	for k := range 5 {
		tn.waitHeight(uint64(3+3*k), 0, 1, 2, 3)
		time.Sleep(time.Duration(7*k) * time.Millisecond) // somewhere inside a round
		tn.kill(1)
		tn.start(1)
	}
	h, _ := tn.node(0).Head()
	tn.waitHeight(h+3, 0, 1, 2, 3)
	checkSameChain(t, h+3, tn.node(0), tn.node(1), tn.node(2), tn.node(3))
	// tn.stop (cleanup) fails the test on any conflicting votes.
}

// TestBFTEpochChange: stake delegated to a zero-power candidate makes it
// an authority at the next epoch boundary, replacing the lightest one;
// every node follows the new set, the chain needs the newcomer's votes to
// go on, and the boundary's header, certificate and next set prove the
// handoff (ReqEpochProof, VerifyEpochProof).
func TestBFTEpochChange(t *testing.T) {
	const epoch = 8
	g := bftGenesis(4, 50*tao)
	g.AuthorityEpoch = epoch
	g.MaxAuthorities = 4
	newcomer := types.AccountIDFromPrivateKey(validatorKey(4))
	g.Authorities = append(g.Authorities, state.GenesisAuthority{Hotkey: newcomer})
	tn := newTestNet(t, 6)
	for i := range 5 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	n0 := tn.node(0)
	if ci := tn.node(4).ConsensusState(); ci.SelfIndex != -1 || len(ci.Validators) != 4 {
		t.Fatalf("the candidate starts in the set: %+v", ci)
	}
	chain := n0.ChainID()
	mustSubmit(t, n0, sign(0, 0, 100, types.RegisterNetwork{Hotkey: newcomer}, chain))
	mustSubmit(t, n0, sign(0, 1, 100, types.AddStake{Hotkey: newcomer, Amount: 100 * tao}, chain))
	tn.waitHeight(2*epoch+4, 0, 1, 2, 3, 4)
	all := []*Node{tn.node(0), tn.node(1), tn.node(2), tn.node(3), tn.node(4)}
	checkSameChain(t, 2*epoch+4, all...)
	for i, n := range all {
		ci := n.ConsensusState()
		in := false
		for _, v := range ci.Validators {
			in = in || v.ID == newcomer
		}
		if !in || len(ci.Validators) != 4 {
			t.Fatalf("node %d: the newcomer is not in the set %+v", i, ci.Validators)
		}
	}
	if ci := tn.node(4).ConsensusState(); ci.SelfIndex < 0 {
		t.Fatal("the newcomer does not see itself as an authority")
	}
	// The newcomer holds 40% of the new set's weight: every block after
	// the change carries its precommit or could not have been finalized.
	raw, _, _ := n0.Store().EpochData(epoch)
	vals, _ := consensus.DecodeValidators(raw)
	vs, _ := consensus.NewValidatorSet(vals)
	if vs.Index(newcomer) < 0 {
		t.Fatalf("the set after block %d lacks the newcomer: %+v", epoch, vals)
	}
	// The handoff proof from genesis to the current set.
	resp, err := tn.node(2).ServeRequest(t.Context(), types.ReqEpochProof, RangeRequest{From: 1, Count: 10}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	fs, err := DecodeEpochProof(resp)
	if err != nil || len(fs) != 2 {
		t.Fatalf("epoch proof: %d fragments, %v", len(fs), err)
	}
	got, err := VerifyEpochProof(chain, epoch, 1, toValidators(state.GenesisSet(g)), fs)
	if err != nil {
		t.Fatal(err)
	}
	if consensus.ValidatorSetHash(got) != vs.Hash() {
		t.Fatal("the epoch proof does not end at the current set")
	}
	// A tampered proof is refused.
	fs[0].NextSet = consensus.EncodeValidators(toValidators(state.GenesisSet(g)))
	if _, err := VerifyEpochProof(chain, epoch, 1, toValidators(state.GenesisSet(g)), fs); err == nil {
		t.Fatal("a tampered epoch proof verified")
	}
}

// TestBFTLossyNetwork: 10% of deliveries dropped and delays up to 20 ms,
// with a validator restarted now and then; the chain still finalizes the
// same blocks everywhere with no double signing. TAOBOX_LONG=1 runs it for
// 200 blocks.
func TestBFTLossyNetwork(t *testing.T) {
	blocks, restarts := uint64(12), 1
	if os.Getenv("TAOBOX_LONG") == "1" {
		blocks, restarts = 200, 10
	}
	g := bftGenesis(4, 10)
	tn := newTestNet(t, 8)
	tn.dropP, tn.maxDelay = 0.1, 20*time.Millisecond
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	tn.add(9, bftConfig(t, g, nil))
	for k := range restarts {
		tn.waitHeight(uint64(k+1)*blocks/uint64(restarts+1), 0, 1, 2, 3)
		tn.kill(k % 4)
		tn.start(k % 4)
	}
	tn.waitHeight(blocks, 0, 1, 2, 3, 9)
	checkSameChain(t, blocks, tn.node(0), tn.node(1), tn.node(2), tn.node(3), tn.node(9))
}
