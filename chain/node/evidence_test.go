package node

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/types"
)

// equivocationAt returns the first block (scanning 1..head of n) whose
// events hold an EvEquivocation against offender, or 0.
func equivocationAt(t testing.TB, n *Node, offender types.AccountID) uint64 {
	t.Helper()
	head, _ := n.Head()
	for k := uint64(1); k <= head; k++ {
		raw, ok, err := n.Store().Events(k)
		if err != nil || !ok {
			continue // pruned or racing a commit
		}
		evs, err := types.DecodeEvents(raw)
		if err != nil {
			t.Fatalf("block %d's events: %v", k, err)
		}
		for _, ev := range evs {
			if ev.Kind == types.EvEquivocation && ev.Account == offender {
				return k
			}
		}
	}
	return 0
}

// TestBFTEquivocationJailed: validator 3 of four double-votes (two signed
// prevotes for different blocks at one height and round, shown to node 0
// only). Node 0 detects it and gossips the evidence; a proposer puts it in
// a block that every node verifies and commits, with an EvEquivocation
// event visible in /v1/events; the next authority epoch's set leaves the
// offender out, and the three others keep finalizing.
func TestBFTEquivocationJailed(t *testing.T) {
	const epoch = 6
	g := bftGenesis(4, 10)
	g.AuthorityEpoch = epoch
	g.JailEpochs = 4 // room for the checks below to run inside the jail
	byz := validatorKey(3)
	byzID := types.AccountIDFromPrivateKey(byz)
	tn := newTestNet(t, 11)
	tn.byzantine = map[types.AccountID]bool{byzID: true}
	for i := range 4 {
		tn.add(i, bftConfig(t, g, validatorKey(i)))
	}
	n0 := tn.node(0)
	chain := n0.ChainID()
	signer := consensus.Ed25519Signer{Key: byz}
	var at uint64 // the block that committed the evidence
	deadline := time.Now().Add(60 * time.Second)
	for sent := 0; at == 0; sent++ {
		if time.Now().After(deadline) {
			t.Fatalf("no evidence on chain after %d double votes; node 0 at %+v", sent, n0.ConsensusState())
		}
		if sent < 20 {
			ci := n0.ConsensusState()
			for _, b := range []types.Hash{{0xb1}, {0xb2}} {
				v := consensus.Vote{Type: consensus.Prevote, Height: ci.Height, Round: ci.Round, BlockID: b, Validator: byzID}
				v.Signature = signer.Sign(v.SignBytes(chain))
				payload, _ := consensus.EncodeMessage(v)
				if err := n0.HandleGossip("byzantine", types.MsgVote, payload); err != nil {
					t.Fatalf("a signed vote was refused: %v", err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
		at = equivocationAt(t, n0, byzID)
	}
	next := (at-1)/epoch + 1 // the first epoch the offender is jailed for
	tn.waitHeight(next*epoch+2, 0, 1, 2, 3)
	nodes := []*Node{tn.node(0), tn.node(1), tn.node(2), tn.node(3)}
	checkSameChain(t, next*epoch+2, nodes...)
	for i, n := range nodes {
		if got := equivocationAt(t, n, byzID); got != at {
			t.Errorf("node %d: the equivocation is in block %d, node 0 has it in %d", i, got, at)
		}
		body, ok, err := n.Store().Body(at)
		if err != nil || !ok {
			t.Fatalf("node %d: block %d: %v", i, at, err)
		}
		blk, err := types.DecodeBlock(body)
		if err != nil || len(blk.Evidence) == 0 || blk.Header.EvidenceHash != types.EvidenceRoot(blk.Evidence) {
			t.Fatalf("node %d: block %d carries no evidence bound to its header: %v", i, at, err)
		}
		e, err := consensus.DecodeEvidence(blk.Evidence[0])
		if err != nil || e.Key().Offender != byzID || e.VoteA == nil {
			t.Fatalf("node %d: the evidence %+v does not name the double vote: %v", i, e, err)
		}
		// The record names the block of the latest offence committed: the
		// Byzantine validator may double-vote again (another round or
		// vote type) before its first evidence lands.
		if j, err := state.QueryJail(n.State(), byzID); err != nil || j < at {
			t.Errorf("node %d: jail record %d %v, want block %d or later", i, j, err, at)
		}
		raw, ok, _ := n.Store().EpochData(next * epoch)
		vals, err := consensus.DecodeValidators(raw)
		if !ok || err != nil || len(vals) != 3 {
			t.Fatalf("node %d: the set of epoch %d is %+v (%v), want the three honest validators", i, next, vals, err)
		}
		for _, v := range vals {
			if v.ID == byzID {
				t.Fatalf("node %d: the offender is in the set of epoch %d", i, next)
			}
		}
		if ci := n.ConsensusState(); len(ci.Validators) != 3 {
			t.Errorf("node %d: consensus runs with %d validators, want 3", i, len(ci.Validators))
		}
	}
	// The event as /v1/events shows it.
	req := httptest.NewRequest("GET", fmt.Sprintf("/v1/events/%d", at), nil)
	req.SetPathValue("height", fmt.Sprint(at))
	out, err := n0.apiEvents(req)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range out.([]eventJSON) {
		found = found || (ev.Kind == "equivocation" && ev.Account != nil && *ev.Account == byzID && ev.TxIndex == -1)
	}
	if !found {
		t.Fatalf("/v1/events/%d shows no equivocation: %+v", at, out)
	}
}

// doubleVote returns encoded evidence that key signed prevotes for two
// blocks at (h, r) under chain.
func doubleVote(t testing.TB, key consensus.Ed25519Signer, chain types.Hash, h uint64, r uint32) []byte {
	t.Helper()
	var vs []consensus.Vote
	for _, b := range []types.Hash{{0xe1}, {0xe2}} {
		v := consensus.Vote{Type: consensus.Prevote, Height: h, Round: r, BlockID: b, Validator: key.ID()}
		v.Signature = key.Sign(v.SignBytes(chain))
		vs = append(vs, v)
	}
	e := consensus.NewVoteEvidence(vs[0], vs[1])
	b, err := consensus.EncodeEvidence(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEvidenceSoleValidator: with validator 0 holding more than 2/3 alone
// and validator 1 a small authority, evidence against validator 1 gossiped
// to the node goes into the next block once, is not proposed again, and
// validator 1 is out of the set after the epoch ends. Gossip that is
// malformed or forged is the peer's fault; evidence this node cannot use
// yet is dropped quietly.
func TestEvidenceSoleValidator(t *testing.T) {
	g := bftGenesis(1, 100)
	small := consensus.Ed25519Signer{Key: validatorKey(1)}
	g.Authorities = append(g.Authorities, state.GenesisAuthority{Hotkey: small.ID(), Power: 1})
	g.AuthorityEpoch = 4
	cfg := bftConfig(t, g, validatorKey(0))
	n := openNode(t, cfg)
	chain := n.ChainID()
	if n.curSet.Len() != 2 {
		t.Fatalf("set of %d", n.curSet.Len())
	}
	mustProduce(t, n) // block 1
	valid := doubleVote(t, small, chain, 1, 0)
	outsider := consensus.Ed25519Signer{Key: validatorKey(7)}
	wrongChain := doubleVote(t, small, types.Hash{9}, 1, 0)
	for _, tc := range []struct {
		name    string
		payload []byte
		bad     bool
	}{
		{"malformed", []byte{1, 2, 3}, true},
		{"not an authority", doubleVote(t, outsider, chain, 1, 0), true},
		{"wrong chain", wrongChain, true},
		{"future height", doubleVote(t, small, chain, 9, 0), false},
		{"valid", valid, false},
		{"again", valid, false},
	} {
		err := n.HandleGossip("peer", types.MsgEvidence, tc.payload)
		if bad := errors.Is(err, ErrMisbehaving); bad != tc.bad || (!tc.bad && err != nil) {
			t.Errorf("%s: HandleGossip = %v, want misbehaving %v", tc.name, err, tc.bad)
		}
	}
	n.consMu.Lock()
	pending := len(n.evidence)
	n.consMu.Unlock()
	if pending != 1 {
		t.Fatalf("%d pieces pending, want the valid one", pending)
	}
	blk := mustProduce(t, n) // block 2
	if len(blk.Evidence) != 1 || string(blk.Evidence[0]) != string(valid) {
		t.Fatalf("block 2 carries %d pieces of evidence, want the valid one", len(blk.Evidence))
	}
	if at, err := state.QueryJail(n.State(), small.ID()); err != nil || at != 2 {
		t.Fatalf("jail record %d %v, want block 2", at, err)
	}
	// Offered again (a late gossip copy), it is on chain already: not proposed.
	e, _ := consensus.DecodeEvidence(valid)
	n.consMu.Lock()
	n.addEvidenceLocked(&e)
	n.consMu.Unlock()
	for k := 3; k <= 5; k++ {
		if b := mustProduce(t, n); len(b.Evidence) != 0 {
			t.Fatalf("block %d carries evidence again", k)
		}
	}
	if ci := n.ConsensusState(); len(ci.Validators) != 1 || ci.Validators[0].ID == small.ID() {
		t.Fatalf("the set of epoch 1 is %+v, want validator 0 alone", ci.Validators)
	}
	// A block's evidence: repeated, forged, or too old is refused.
	other := doubleVote(t, small, chain, 2, 1)
	n.consMu.Lock()
	defer n.consMu.Unlock()
	for _, tc := range []struct {
		name   string
		height uint64
		ev     [][]byte
		want   string
	}{
		{"repeated", 6, [][]byte{other, other}, "repeats"},
		{"forged", 6, [][]byte{wrongChain}, "bad signature"},
		{"too old", 13, [][]byte{other}, "outside the window"},
		{"ok", 6, [][]byte{other}, ""},
	} {
		b := &types.Block{Header: types.Header{Height: tc.height}, Evidence: tc.ev}
		_, err := n.checkBlockEvidenceLocked(b, true)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: checkBlockEvidenceLocked = %v, want %q", tc.name, err, tc.want)
		}
	}
}
