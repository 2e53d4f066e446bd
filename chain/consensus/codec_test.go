package consensus

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"testing"

	"taobox/chain/types"
)

func TestMessageRoundTrip(t *testing.T) {
	blk := []byte("block")
	msgs := []Event{
		Proposal{Height: 3, Round: 2, POLRound: -1, BlockID: types.HashBytes(blk), Block: blk, Proposer: id(1), Signature: types.Signature{9}},
		Proposal{Height: 3, Round: 2, POLRound: 1, BlockID: types.HashBytes(blk), Block: blk, Proposer: id(1)},
		Vote{Type: Precommit, Height: 7, Round: 1, BlockID: types.Hash{3}, Validator: id(2), Signature: types.Signature{4}},
		Vote{Type: Prevote, Height: 7, Round: 0, Validator: id(2)},
		Commit{Block: blk, Cert: Certificate{Height: 1, Round: 0, BlockID: types.Hash{1}, Sigs: []CommitSig{{Index: 0}, {Index: 2, Signature: types.Signature{5}}}}},
	}
	for _, m := range msgs {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %+v -> %+v", m, got)
		}
		if _, err := DecodeMessage(append(b, 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
		if _, err := DecodeMessage(b[:len(b)-1]); err == nil {
			t.Fatal("short message accepted")
		}
	}
}

func TestSignBytesDomains(t *testing.T) {
	v := Vote{Type: Prevote, Height: 1, Round: 0, BlockID: types.Hash{1}}
	p := Proposal{Height: 1, Round: 0, POLRound: -1, BlockID: types.Hash{1}}
	c1, c2 := types.Hash{1}, types.Hash{2}
	if string(v.SignBytes(c1)) == string(v.SignBytes(c2)) {
		t.Error("chain id not in vote sign bytes")
	}
	pc := v
	pc.Type = Precommit
	if string(v.SignBytes(c1)) == string(pc.SignBytes(c1)) || string(v.SignBytes(c1)) == string(p.SignBytes(c1)) {
		t.Error("types share sign bytes")
	}
	nilv := v
	nilv.BlockID = types.Hash{}
	if len(nilv.SignBytes(c1)) != len(v.SignBytes(c1))-32 {
		t.Error("nil vote should sign no block hash")
	}
}

func TestVerifyEvidence(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	s := Ed25519Signer{k}
	vs, _ := NewValidatorSet([]Validator{{ID: s.ID(), Stake: 1}, {ID: id(9), Stake: 1}})
	chain := types.Hash{5}
	mk := func(b types.Hash) Vote {
		v := Vote{Type: Prevote, Height: 2, Round: 1, BlockID: b, Validator: s.ID()}
		v.Signature = s.Sign(v.SignBytes(chain))
		return v
	}
	e := newVoteEvidence(mk(types.Hash{7}), mk(types.Hash{}))
	if err := VerifyEvidence(chain, vs, &e); err != nil {
		t.Fatal(err)
	}
	sw := Evidence{VoteA: e.VoteB, VoteB: e.VoteA}
	if VerifyEvidence(chain, vs, &sw) == nil {
		t.Error("swapped pair accepted")
	}
	if VerifyEvidence(types.Hash{6}, vs, &e) == nil {
		t.Error("wrong chain accepted")
	}
	same := Evidence{VoteA: e.VoteA, VoteB: e.VoteA}
	if VerifyEvidence(chain, vs, &same) == nil {
		t.Error("identical votes accepted")
	}
}

func TestHardStateRoundTrip(t *testing.T) {
	h := newHarness(t, 'A')
	rd := h.step(ValueReady{Height: 1, Round: 0, Block: vA})
	h.step(h.vote('B', Prevote, 0, vA), h.vote('C', Prevote, 0, vA))
	hs := h.n.Ready().HardState
	if hs == nil {
		hs = rd.HardState
	}
	full := h.n.hardState()
	for _, s := range []*HardState{rd.HardState, &full, {LockedRound: -1, ValidRound: -1}} {
		got, err := DecodeHardState(EncodeHardState(s))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip\n%+v\n%+v", s, got)
		}
	}
	if full.Precommit == nil || full.LockedRound != 0 {
		t.Fatal("test state has no lock")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	blk := []byte("b")
	for _, m := range []Event{
		Proposal{Height: 1, POLRound: -1, BlockID: types.HashBytes(blk), Block: blk},
		Vote{Type: Prevote, Height: 1},
		Commit{Block: blk, Cert: Certificate{Sigs: []CommitSig{{Index: 1}}}},
	} {
		b, _ := EncodeMessage(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeMessage(b)
		if err != nil {
			return
		}
		b2, err := EncodeMessage(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := DecodeMessage(b2)
		if err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func TestValidatorsCodecAndHash(t *testing.T) {
	vals := []Validator{{ID: types.AccountID{2}, Stake: 5}, {ID: types.AccountID{1}, Stake: 5}, {ID: types.AccountID{3}, Stake: 9}}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeValidators(EncodeValidators(vs.Members()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != (types.AccountID{3}) || got[1].ID != (types.AccountID{1}) || got[2].Stake != 5 {
		t.Fatalf("round trip = %+v", got)
	}
	// The hash ignores input order and priorities, but not stakes or members.
	vs.IncrementProposerPriority(3)
	if vs.Hash() != ValidatorSetHash(vals) {
		t.Error("hash depends on order or priorities")
	}
	changed := append([]Validator(nil), vals...)
	changed[0].Stake++
	if ValidatorSetHash(changed) == vs.Hash() {
		t.Error("hash ignores a stake")
	}
	if ValidatorSetHash(vals[:2]) == vs.Hash() {
		t.Error("hash ignores a member")
	}
}

func FuzzDecodeValidators(f *testing.F) {
	f.Add(EncodeValidators([]Validator{{ID: types.AccountID{1}, Stake: 7}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := DecodeValidators(b)
		if err != nil {
			return
		}
		if enc := EncodeValidators(vals); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical: %x -> %x", b, enc)
		}
	})
}

// TestCertificateFitsItsCap: a certificate of the largest authority set
// stays under types.MaxCertificate, the cap blocks and messages read it
// with.
func TestCertificateFitsItsCap(t *testing.T) {
	c := Certificate{Height: 1 << 40, Round: 1 << 30}
	for i := range MaxCertSigs {
		c.Sigs = append(c.Sigs, CommitSig{Index: i})
	}
	w := types.NewWriter(nil)
	EncodeCertificate(w, &c)
	if n := len(w.Bytes()); n > types.MaxCertificate {
		t.Fatalf("a certificate of %d signers is %d bytes, over MaxCertificate %d", MaxCertSigs, n, types.MaxCertificate)
	}
}
