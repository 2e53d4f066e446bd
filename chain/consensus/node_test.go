package consensus

import (
	"crypto/ed25519"
	"testing"
	"time"

	"taobox/chain/types"
)

type harness struct {
	t   *testing.T
	cfg Config
	n   *Node
	all Ready // everything returned so far, merged
}

func newHarness(t *testing.T, self byte, stakes ...uint64) *harness {
	t.Helper()
	if len(stakes) == 0 {
		stakes = []uint64{1, 1, 1, 1}
	}
	vs := mustSet(t, stakes...)
	cfg := Config{ChainID: types.Hash{9}, Validators: vs, Signer: fakeSigner{id(self)},
		ProposeTimeout: 3 * time.Second, ProposeDelta: 500 * time.Millisecond,
		PrevoteTimeout: time.Second, PrevoteDelta: 500 * time.Millisecond,
		PrecommitTimeout: time.Second, PrecommitDelta: 500 * time.Millisecond}
	n, err := NewNode(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, n: n}
	h.drain()
	return h
}

// drain takes the Ready, checks the persist-before-send rule and advances.
func (h *harness) drain() Ready {
	rd := h.n.Ready()
	for _, m := range rd.Messages {
		var ht uint64
		var r uint32
		if m.Proposal != nil {
			ht, r = m.Proposal.Height, m.Proposal.Round
		} else {
			ht, r = m.Vote.Height, m.Vote.Round
		}
		if rd.HardState == nil || rd.HardState.SignedHeight < ht || (rd.HardState.SignedHeight == ht && rd.HardState.SignedRound < r) {
			// a restart re-broadcast carries no new HardState: allowed only
			// when the message was already persisted.
			if !(rd.HardState == nil && m.Proposal == nil && m.Vote != nil) && !(rd.HardState == nil && m.Proposal != nil) {
				h.t.Fatalf("message %+v sent without a persisted sign state", m)
			}
		}
	}
	h.n.Advance(rd)
	h.all.Messages = append(h.all.Messages, rd.Messages...)
	h.all.Decided = append(h.all.Decided, rd.Decided...)
	h.all.Evidence = append(h.all.Evidence, rd.Evidence...)
	return rd
}

func (h *harness) step(evs ...Event) Ready {
	h.t.Helper()
	var out Ready
	for _, ev := range evs {
		if err := h.n.Step(ev); err != nil {
			h.t.Fatalf("step %T: %v", ev, err)
		}
		rd := h.drain()
		out.Messages = append(out.Messages, rd.Messages...)
		out.Timeouts = append(out.Timeouts, rd.Timeouts...)
		out.Decided = append(out.Decided, rd.Decided...)
		out.Evidence = append(out.Evidence, rd.Evidence...)
		out.Validate = append(out.Validate, rd.Validate...)
		out.RequestValue = append(out.RequestValue, rd.RequestValue...)
		out.Fetch = append(out.Fetch, rd.Fetch...)
		if rd.HardState != nil {
			out.HardState = rd.HardState
		}
	}
	return out
}

func bid(b []byte) types.Hash {
	if b == nil {
		return types.Hash{}
	}
	return types.HashBytes(b)
}

func (h *harness) vote(from byte, t VoteType, r uint32, blk []byte) Vote {
	ht, _, _ := h.n.Position()
	v := Vote{Type: t, Height: ht, Round: r, BlockID: bid(blk), Validator: id(from)}
	v.Signature = fakeSigner{id(from)}.Sign(v.SignBytes(h.cfg.ChainID))
	return v
}

func (h *harness) prop(from byte, r uint32, vr int32, blk []byte) Proposal {
	ht, _, _ := h.n.Position()
	p := Proposal{Height: ht, Round: r, POLRound: vr, BlockID: bid(blk), Block: blk, Proposer: id(from)}
	p.Signature = fakeSigner{id(from)}.Sign(p.SignBytes(h.cfg.ChainID))
	return p
}

func (h *harness) valid(blk []byte, ok bool) ValidityResult {
	ht, _, _ := h.n.Position()
	return ValidityResult{Height: ht, BlockID: bid(blk), OK: ok}
}

func votes(rd Ready) []Vote {
	var out []Vote
	for _, m := range rd.Messages {
		if m.Vote != nil {
			out = append(out, *m.Vote)
		}
	}
	return out
}

func (h *harness) wantVotes(rd Ready, want ...Vote) {
	h.t.Helper()
	got := votes(rd)
	if len(got) != len(want) {
		h.t.Fatalf("votes: got %d %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Round != want[i].Round || got[i].BlockID != want[i].BlockID {
			h.t.Fatalf("vote %d: got %s r=%d %x, want %s r=%d %x", i, got[i].Type, got[i].Round, got[i].BlockID[:4], want[i].Type, want[i].Round, want[i].BlockID[:4])
		}
	}
}

func (h *harness) wantPos(r uint32, s StepKind) {
	h.t.Helper()
	_, gr, gs := h.n.Position()
	if gr != r || gs != s {
		h.t.Fatalf("position r=%d step=%d, want r=%d step=%d", gr, gs, r, s)
	}
}

var (
	vA = []byte("value v")
	vB = []byte("value v'")
)

func pv(r uint32, b []byte) Vote { return Vote{Type: Prevote, Round: r, BlockID: bid(b)} }
func pc(r uint32, b []byte) Vote { return Vote{Type: Precommit, Round: r, BlockID: bid(b)} }

func TestScenarios(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"01 happy path", func(t *testing.T) {
			h := newHarness(t, 'A')
			rd := h.step(ValueReady{Height: 1, Round: 0, Block: vA})
			if len(rd.Messages) < 2 || rd.Messages[0].Proposal == nil {
				t.Fatalf("want proposal then prevote, got %+v", rd.Messages)
			}
			if rd.HardState == nil || rd.HardState.SignedStep != StepPrevote {
				t.Fatalf("hard state %+v", rd.HardState)
			}
			h.wantVotes(rd, pv(0, vA))
			rd = h.step(h.vote('B', Prevote, 0, vA), h.vote('C', Prevote, 0, vA))
			h.wantVotes(rd, pc(0, vA))
			if lr, l := h.n.Locked(); lr != 0 || l != bid(vA) {
				t.Fatal("not locked")
			}
			rd = h.step(h.vote('B', Precommit, 0, vA), h.vote('C', Precommit, 0, vA))
			if len(rd.Decided) != 1 || rd.Decided[0].BlockID != bid(vA) || len(rd.Decided[0].Cert.Sigs) != 3 {
				t.Fatalf("decided %+v", rd.Decided)
			}
			if ht, r, s := h.n.Position(); ht != 2 || r != 0 || s != StepPropose {
				t.Fatal("not at next height")
			}
		}},
		{"02 proposer crashed", func(t *testing.T) {
			h := newHarness(t, 'B')
			rd := h.step(TimeoutFired{TimeoutPropose, 1, 0})
			h.wantVotes(rd, pv(0, nil))
			rd = h.step(h.vote('C', Prevote, 0, nil), h.vote('D', Prevote, 0, nil))
			h.wantVotes(rd, pc(0, nil))
			rd = h.step(h.vote('C', Precommit, 0, nil), h.vote('D', Precommit, 0, nil))
			if len(rd.Timeouts) != 1 || rd.Timeouts[0].Kind != TimeoutPrecommit || rd.Timeouts[0].Duration != time.Second {
				t.Fatalf("timeouts %+v", rd.Timeouts)
			}
			rd = h.step(TimeoutFired{TimeoutPrecommit, 1, 0})
			if len(rd.RequestValue) != 1 || rd.RequestValue[0].Round != 1 {
				t.Fatalf("B should be asked for a value in r1: %+v", rd)
			}
			if rd.Timeouts[0].Kind != TimeoutPropose || rd.Timeouts[0].Duration != 3500*time.Millisecond {
				t.Fatalf("r1 propose timeout %+v", rd.Timeouts)
			}
		}},
		{"03 invalid proposal", func(t *testing.T) {
			h := newHarness(t, 'B')
			rd := h.step(h.prop('A', 0, -1, vA))
			if len(rd.Validate) != 1 {
				t.Fatal("no validation request")
			}
			h.wantVotes(h.step(h.valid(vA, false)), pv(0, nil))
			if lr, _ := h.n.Locked(); lr != -1 {
				t.Fatal("locked")
			}
		}},
		{"04 validity after T1", func(t *testing.T) {
			h := newHarness(t, 'B')
			h.step(h.prop('A', 0, -1, vA))
			h.wantVotes(h.step(TimeoutFired{TimeoutPropose, 1, 0}), pv(0, nil))
			h.wantVotes(h.step(h.valid(vA, true)))
		}},
		{"05 late proposal with polka", func(t *testing.T) {
			h := newHarness(t, 'B')
			h.wantVotes(h.step(TimeoutFired{TimeoutPropose, 1, 0}), pv(0, nil))
			h.step(h.vote('A', Prevote, 0, vA), h.vote('C', Prevote, 0, vA), h.vote('D', Prevote, 0, vA))
			rd := h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			h.wantVotes(rd, pc(0, vA))
			rd = h.step(h.vote('A', Precommit, 0, vA), h.vote('C', Precommit, 0, vA))
			if len(rd.Decided) != 1 {
				t.Fatal("no decision")
			}
		}},
		{"06 lock then change lock", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.wantVotes(h.step(h.prop('A', 0, -1, vA), h.valid(vA, true)), pv(0, vA))
			h.wantVotes(h.step(h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, vA)), pc(0, vA))
			h.step(h.vote('A', Precommit, 0, nil), h.vote('B', Precommit, 0, nil), h.vote('C', Precommit, 0, nil))
			h.step(TimeoutFired{TimeoutPrecommit, 1, 0})
			h.wantPos(1, StepPropose)
			h.wantVotes(h.step(h.prop('B', 1, -1, vB), h.valid(vB, true)), pv(1, nil))
			h.wantVotes(h.step(h.vote('A', Prevote, 1, vB), h.vote('B', Prevote, 1, vB), h.vote('C', Prevote, 1, vB)), pc(1, vB))
			if lr, l := h.n.Locked(); lr != 1 || l != bid(vB) {
				t.Fatalf("lock %d %x", lr, l[:4])
			}
			rd := h.step(h.vote('A', Precommit, 1, vB), h.vote('B', Precommit, 1, vB))
			if len(rd.Decided) != 1 || rd.Decided[0].BlockID != bid(vB) {
				t.Fatal("v' not decided")
			}
		}},
		{"12 split precommits then re-proposal", func(t *testing.T) {
			h := newHarness(t, 'B') // B proposes r1
			h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			h.wantVotes(h.step(h.vote('A', Prevote, 0, vA), h.vote('C', Prevote, 0, vA)), pc(0, vA))
			rd := h.step(h.vote('A', Precommit, 0, vA), h.vote('C', Precommit, 0, nil), h.vote('D', Precommit, 0, nil))
			if len(rd.Decided) != 0 {
				t.Fatal("decided on 2 of 4")
			}
			rd = h.step(TimeoutFired{TimeoutPrecommit, 1, 0})
			var p *Proposal
			for _, m := range rd.Messages {
				if m.Proposal != nil {
					p = m.Proposal
				}
			}
			if p == nil || p.POLRound != 0 || p.BlockID != bid(vA) {
				t.Fatalf("want re-proposal (v,0), got %+v", p)
			}
			h.wantVotes(rd, pv(1, vA))
		}},
		{"07 unlock via R2", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			h.wantVotes(h.step(h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, vA)), pc(0, vA))
			h.step(h.vote('A', Prevote, 1, vB), h.vote('B', Prevote, 1, vB), h.vote('C', Prevote, 1, vB))
			h.wantPos(1, StepPropose) // R8 jumped to r1
			rd := h.step(h.vote('A', Prevote, 2, vB), h.prop('C', 2, 1, vB))
			h.wantPos(2, StepPropose)
			h.wantVotes(rd) // validity pending
			h.wantVotes(h.step(h.valid(vB, true)), pv(2, vB))
		}},
		{"08 R2 refusal and locked value", func(t *testing.T) {
			for _, lockedOnVB := range []bool{false, true} {
				h := newHarness(t, 'D')
				lockV := vA
				if lockedOnVB {
					lockV = vB
				}
				// lock at r2 on lockV (proposer of r2 is C)
				h.step(h.vote('A', Prevote, 2, lockV), h.vote('B', Prevote, 2, lockV))
				h.step(h.prop('C', 2, -1, lockV), h.valid(lockV, true))
				h.step(h.vote('C', Prevote, 2, lockV))
				if lr, _ := h.n.Locked(); lr != 2 {
					t.Fatalf("lockedRound %d", lr)
				}
				// r1 polka for vB, then r4 proposal (vB, vr=1) from A
				h.step(h.vote('A', Prevote, 1, vB), h.vote('B', Prevote, 1, vB), h.vote('C', Prevote, 1, vB))
				h.step(h.vote('A', Precommit, 4, nil), h.vote('B', Precommit, 4, nil))
				h.wantPos(4, StepPropose)
				want := pv(4, nil)
				if lockedOnVB {
					want = pv(4, vB)
				}
				h.wantVotes(h.step(h.prop('A', 4, 1, vB), h.valid(vB, true)), want)
			}
		}},
		{"09 R2 waits for POL prevotes", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.vote('A', Precommit, 1, nil), h.vote('C', Precommit, 1, nil))
			h.wantPos(1, StepPropose)
			h.wantVotes(h.step(h.prop('B', 1, 0, vA), h.valid(vA, true)))
			h.wantVotes(h.step(h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, vA)))
			h.wantVotes(h.step(h.vote('C', Prevote, 0, vA)), pv(1, vA))
			// and when T1 fires first: nil
			h2 := newHarness(t, 'D')
			h2.step(h2.vote('A', Precommit, 1, nil), h2.vote('C', Precommit, 1, nil))
			h2.step(h2.prop('B', 1, 0, vA), h2.valid(vA, true))
			h2.wantVotes(h2.step(TimeoutFired{TimeoutPropose, 1, 1}), pv(1, nil))
		}},
		{"10 re-proposal of the valid value", func(t *testing.T) {
			h := newHarness(t, 'B')
			h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			h.step(h.vote('A', Prevote, 0, vA), h.vote('C', Prevote, 0, vA))
			if vr, v := h.n.ValidValue(); vr != 0 || v != bid(vA) {
				t.Fatal("validValue not set")
			}
			rd := h.step(h.vote('C', Prevote, 1, nil), h.vote('D', Prevote, 1, nil))
			if len(rd.RequestValue) != 0 {
				t.Fatal("getValue called for a re-proposal")
			}
			var p *Proposal
			for _, m := range rd.Messages {
				if m.Proposal != nil {
					p = m.Proposal
				}
			}
			if p == nil || p.Round != 1 || p.POLRound != 0 || p.BlockID != bid(vA) {
				t.Fatalf("re-proposal %+v", p)
			}
		}},
		{"11 split prevotes", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.wantVotes(h.step(h.prop('A', 0, -1, vA), h.valid(vA, true)), pv(0, vA))
			rd := h.step(h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, nil), h.vote('C', Prevote, 0, nil))
			h.wantVotes(rd)
			if len(rd.Timeouts) != 1 || rd.Timeouts[0].Kind != TimeoutPrevote {
				t.Fatalf("want one prevote timeout, got %+v", rd.Timeouts)
			}
			h.wantVotes(h.step(TimeoutFired{TimeoutPrevote, 1, 0}), pc(0, nil))
			if lr, _ := h.n.Locked(); lr != -1 {
				t.Fatal("locked")
			}
		}},
		{"13/14 equivocation evidence", func(t *testing.T) {
			h := newHarness(t, 'D')
			rd := h.step(h.prop('A', 0, -1, vA), h.prop('A', 0, -1, vB), h.prop('A', 0, -1, vB))
			if len(rd.Evidence) != 1 || rd.Evidence[0].ProposalA == nil {
				t.Fatalf("proposal evidence %+v", rd.Evidence)
			}
			rd = h.step(h.vote('C', Prevote, 0, vA), h.vote('C', Prevote, 0, nil), h.vote('C', Prevote, 0, nil), h.vote('C', Prevote, 0, vA))
			if len(rd.Evidence) != 1 {
				t.Fatalf("vote evidence %+v", rd.Evidence)
			}
			e := rd.Evidence[0]
			if !(e.VoteA.BlockID.IsZero() && e.VoteB.BlockID == bid(vA)) {
				t.Fatal("evidence not in canonical order")
			}
			// the any-tally counts C once: D(own) + C = 2 of 4, no R3 timer
			rd = h.step(h.valid(vA, true))
			for _, to := range rd.Timeouts {
				if to.Kind == TimeoutPrevote {
					t.Fatal("equivocator counted twice in the any tally")
				}
			}
		}},
		{"21 round skip on f+1", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.vote('A', Prevote, 5, nil))
			h.wantPos(0, StepPropose)
			h.step(h.vote('B', Prevote, 5, nil))
			h.wantPos(5, StepPropose)
			w := newHarness(t, 'A', 40, 30, 20, 10)
			w.step(w.vote('D', Prevote, 3, nil))
			w.wantPos(0, StepPropose)
			w.step(w.vote('C', Prevote, 3, nil), w.vote('B', Prevote, 3, nil))
			w.wantPos(3, StepPropose)
		}},
		{"22 huge round dropped", func(t *testing.T) {
			h := newHarness(t, 'D')
			if err := h.n.Step(h.vote('A', Prevote, 1e9, nil)); err == nil {
				t.Fatal("accepted")
			}
			h.n.Step(h.vote('B', Prevote, 1e9, nil))
			h.wantPos(0, StepPropose)
			if len(h.n.prevotes) != 0 {
				t.Fatal("buffered")
			}
		}},
		{"23 R7 for another round", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.vote('A', Precommit, 2, nil), h.vote('B', Precommit, 2, nil))
			h.wantPos(2, StepPropose)
			rd := h.step(h.prop('B', 1, -1, vA), h.valid(vA, true),
				h.vote('A', Precommit, 1, vA), h.vote('B', Precommit, 1, vA), h.vote('C', Precommit, 1, vA))
			if len(rd.Decided) != 1 || rd.Decided[0].Round != 1 {
				t.Fatalf("decided %+v", rd.Decided)
			}
		}},
		{"24 decide by id", func(t *testing.T) {
			h := newHarness(t, 'D')
			rd := h.step(h.vote('A', Precommit, 0, vA), h.vote('B', Precommit, 0, vA), h.vote('C', Precommit, 0, vA))
			if len(rd.Fetch) != 1 || rd.Fetch[0].BlockID != bid(vA) {
				t.Fatalf("fetch %+v", rd.Fetch)
			}
			rd = h.step(BlockFetched{Height: 1, BlockID: bid(vA), Block: vA})
			if len(rd.Decided) != 0 || len(rd.Validate) != 1 {
				t.Fatal("decided before validity")
			}
			if rd = h.step(h.valid(vA, true)); len(rd.Decided) != 1 {
				t.Fatal("no decision")
			}
		}},
		{"25 restart after persisting a prevote", func(t *testing.T) {
			h := newHarness(t, 'D')
			rd := h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			hs := rd.HardState
			n2, err := NewNode(h.cfg, hs) // the prevote was never sent
			if err != nil {
				t.Fatal(err)
			}
			h.n = n2
			rd2 := h.drain()
			if vs := votes(rd2); len(vs) != 1 || vs[0] != votes(rd)[0] {
				t.Fatalf("re-broadcast %+v", vs)
			}
			h.wantVotes(h.step(TimeoutFired{TimeoutPropose, 1, 0}))
		}},
		{"26 restart keeps the lock", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.prop('A', 0, -1, vA), h.valid(vA, true))
			rd := h.step(h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, vA))
			n2, err := NewNode(h.cfg, rd.HardState)
			if err != nil {
				t.Fatal(err)
			}
			h.n = n2
			h.drain()
			h.step(h.vote('A', Precommit, 1, nil), h.vote('B', Precommit, 1, nil))
			h.wantVotes(h.step(h.prop('B', 1, -1, vB), h.valid(vB, true)), pv(1, nil))
		}},
		{"27 proposer restart", func(t *testing.T) {
			h := newHarness(t, 'A')
			rd := h.step(ValueReady{Height: 1, Round: 0, Block: vA})
			n2, err := NewNode(h.cfg, rd.HardState)
			if err != nil {
				t.Fatal(err)
			}
			h.n = n2
			rd2 := h.drain()
			if len(rd2.RequestValue) != 0 || len(rd2.Messages) == 0 || rd2.Messages[0].Proposal == nil || rd2.Messages[0].Proposal.BlockID != bid(vA) {
				t.Fatalf("restart ready %+v", rd2)
			}
		}},
		{"29 stale timeouts", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.step(h.vote('A', Precommit, 1, nil), h.vote('B', Precommit, 1, nil))
			h.wantVotes(h.step(TimeoutFired{TimeoutPropose, 1, 0}, TimeoutFired{TimeoutPrevote, 1, 0}, TimeoutFired{TimeoutPrecommit, 1, 0}))
			h.wantPos(1, StepPropose)
			rd := h.step(h.vote('C', Precommit, 1, nil))
			rd2 := h.step(h.vote('C', Precommit, 1, nil), h.vote('D', Precommit, 1, vA))
			if len(rd.Timeouts)+len(rd2.Timeouts) != 1 {
				t.Fatalf("R6 timers %d", len(rd.Timeouts)+len(rd2.Timeouts))
			}
		}},
		{"34 validity pending", func(t *testing.T) {
			h := newHarness(t, 'D')
			h.wantVotes(h.step(TimeoutFired{TimeoutPropose, 1, 0}), pv(0, nil))
			h.wantVotes(h.step(h.prop('A', 0, -1, vA), h.vote('A', Prevote, 0, vA), h.vote('B', Prevote, 0, vA), h.vote('C', Prevote, 0, vA)))
			h.wantVotes(h.step(h.valid(vA, true)), pc(0, vA))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// Scenario 30 (partly): certificates with real ed25519 keys.
func TestCertificate(t *testing.T) {
	var vals []Validator
	var keys []ed25519.PrivateKey
	for i := 0; i < 4; i++ {
		seed := make([]byte, 32)
		seed[0] = byte(i + 1)
		k := ed25519.NewKeyFromSeed(seed)
		keys = append(keys, k)
		vals = append(vals, Validator{ID: types.AccountIDFromPrivateKey(k), Stake: 1})
	}
	vs, _ := NewValidatorSet(vals)
	chain := types.Hash{1}
	blk := types.HashBytes([]byte("b"))
	sig := func(i int, c types.Hash) types.Signature {
		v := Vote{Type: Precommit, Height: 5, Round: 1, BlockID: blk, Validator: vs.At(i).ID}
		for _, k := range keys {
			if types.AccountIDFromPrivateKey(k) == v.Validator {
				return Ed25519Signer{k}.Sign(v.SignBytes(c))
			}
		}
		panic("no key")
	}
	mk := func(idx ...int) *Certificate {
		c := &Certificate{Height: 5, Round: 1, BlockID: blk}
		for _, i := range idx {
			c.Sigs = append(c.Sigs, CommitSig{Index: i, Signature: sig(i, chain)})
		}
		return c
	}
	if err := VerifyCertificate(chain, vs, mk(0, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if VerifyCertificate(chain, vs, mk(0, 1)) == nil {
		t.Error("2 of 4 accepted")
	}
	if VerifyCertificate(chain, vs, mk(0, 1, 1)) == nil {
		t.Error("duplicate index accepted")
	}
	c7 := mk(0, 1, 2)
	c7.Sigs[2].Index = 7
	if VerifyCertificate(chain, vs, c7) == nil {
		t.Error("index out of range accepted")
	}
	c := mk(0, 1, 2)
	c.Sigs[2].Signature = sig(2, types.Hash{2}) // other chain
	if VerifyCertificate(chain, vs, c) == nil {
		t.Error("signature for another chain accepted")
	}
	w := mustSet(t, 40, 30, 20, 10)
	if TwoThirds(40+20+6, w.Total()) || !TwoThirds(67, w.Total()) {
		t.Error("W quorum")
	}
}
