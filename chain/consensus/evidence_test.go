package consensus

import (
	"crypto/ed25519"
	"reflect"
	"strings"
	"testing"

	"taobox/chain/types"
)

func evidenceFixture() (chain types.Hash, s Ed25519Signer, vs *ValidatorSet, vote func(t VoteType, h uint64, r uint32, b types.Hash) Vote, prop func(h uint64, r uint32, b types.Hash) Proposal) {
	s = Ed25519Signer{ed25519.NewKeyFromSeed(make([]byte, 32))}
	vs, _ = NewValidatorSet([]Validator{{ID: s.ID(), Stake: 1}, {ID: id(9), Stake: 1}})
	chain = types.Hash{5}
	vote = func(t VoteType, h uint64, r uint32, b types.Hash) Vote {
		v := Vote{Type: t, Height: h, Round: r, BlockID: b, Validator: s.ID()}
		v.Signature = s.Sign(v.SignBytes(chain))
		return v
	}
	prop = func(h uint64, r uint32, b types.Hash) Proposal {
		p := Proposal{Height: h, Round: r, POLRound: -1, BlockID: b, Proposer: s.ID(), Block: []byte("block")}
		p.Signature = s.Sign(p.SignBytes(chain))
		return p
	}
	return
}

// TestVerifyEvidenceTable: what VerifyEvidence accepts and refuses, and
// that every accepted piece survives the codec and names its offence.
func TestVerifyEvidenceTable(t *testing.T) {
	chain, s, vs, vote, prop := evidenceFixture()
	a, b := types.Hash{1}, types.Hash{2}
	other := Ed25519Signer{ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))}
	outsider := Vote{Type: Prevote, Height: 3, Round: 0, BlockID: a, Validator: other.ID()}
	outsider.Signature = other.Sign(outsider.SignBytes(chain))
	outsider2 := outsider
	outsider2.BlockID = b
	outsider2.Signature = other.Sign(outsider2.SignBytes(chain))
	badSig := vote(Prevote, 3, 0, b)
	badSig.Signature[0] ^= 1
	votes := func(x, y Vote) Evidence { return Evidence{VoteA: &x, VoteB: &y} }
	props := func(x, y Proposal) Evidence { return Evidence{ProposalA: &x, ProposalB: &y} }
	for _, tc := range []struct {
		name    string
		chainID types.Hash
		e       Evidence
		want    string // "" accepts
	}{
		{"prevotes", chain, NewVoteEvidence(vote(Prevote, 3, 0, b), vote(Prevote, 3, 0, a)), ""},
		{"precommits, nil and a block", chain, NewVoteEvidence(vote(Precommit, 3, 2, a), vote(Precommit, 3, 2, types.Hash{})), ""},
		{"proposals", chain, NewProposalEvidence(prop(3, 1, b), prop(3, 1, a)), ""},
		{"wrong chain", types.Hash{6}, NewVoteEvidence(vote(Prevote, 3, 0, b), vote(Prevote, 3, 0, a)), "bad signature"},
		{"not an authority", chain, NewVoteEvidence(outsider, outsider2), "not a validator"},
		{"different heights", chain, votes(vote(Prevote, 3, 0, a), vote(Prevote, 4, 0, b)), "one height"},
		{"different rounds", chain, votes(vote(Prevote, 3, 0, a), vote(Prevote, 3, 1, b)), "one height"},
		{"different types", chain, votes(vote(Prevote, 3, 0, a), vote(Precommit, 3, 0, b)), "one height"},
		{"proposals at different rounds", chain, props(prop(3, 0, a), prop(3, 1, b)), "one height"},
		{"same vote twice", chain, votes(vote(Prevote, 3, 0, a), vote(Prevote, 3, 0, a)), "canonical order"},
		{"swapped", chain, votes(vote(Prevote, 3, 0, b), vote(Prevote, 3, 0, a)), "canonical order"},
		{"swapped proposals", chain, props(prop(3, 0, b), prop(3, 0, a)), "canonical order"},
		{"forged signature", chain, votes(vote(Prevote, 3, 0, a), badSig), "bad signature"},
		{"empty", chain, Evidence{}, "empty"},
	} {
		err := VerifyEvidence(tc.chainID, vs, &tc.e)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
				continue
			}
			enc, err := EncodeEvidence(&tc.e)
			if err != nil || len(enc) > types.MaxEvidenceMsg {
				t.Fatalf("%s: encode: %v (%d bytes)", tc.name, err, len(enc))
			}
			got, err := DecodeEvidence(enc)
			if err != nil || !reflect.DeepEqual(got, tc.e) {
				t.Errorf("%s: round trip: %v\n got %+v\nwant %+v", tc.name, err, got, tc.e)
			}
			if k := got.Key(); k.Offender != s.ID() || k.Height != 3 || k == (EvidenceKey{}) {
				t.Errorf("%s: key %+v", tc.name, k)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: VerifyEvidence = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := EncodeEvidence(&Evidence{}); err == nil {
		t.Error("empty evidence encoded")
	}
}

func TestDecodeEvidenceRejects(t *testing.T) {
	_, _, _, vote, _ := evidenceFixture()
	e := NewVoteEvidence(vote(Prevote, 3, 0, types.Hash{2}), vote(Prevote, 3, 0, types.Hash{1}))
	enc, _ := EncodeEvidence(&e)
	badType := append([]byte{}, enc...)
	badType[1] = 9
	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"empty", "empty", nil},
		{"kind", "unknown evidence kind", append([]byte{7}, enc[1:]...)},
		{"vote type", "unknown vote type", badType},
		{"short", "decode evidence", enc[:len(enc)-1]},
		{"trailing", "decode evidence", append(append([]byte{}, enc...), 0)},
		{"over cap", "limit", make([]byte, types.MaxEvidenceMsg+1)},
	} {
		if _, err := DecodeEvidence(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeEvidence = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// FuzzDecodeEvidence: the decoder never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeEvidence(f *testing.F) {
	_, _, _, vote, prop := evidenceFixture()
	ve := NewVoteEvidence(vote(Prevote, 3, 0, types.Hash{2}), vote(Prevote, 3, 0, types.Hash{1}))
	pe := NewProposalEvidence(prop(3, 0, types.Hash{2}), prop(3, 0, types.Hash{1}))
	for _, e := range []Evidence{ve, pe} {
		b, _ := EncodeEvidence(&e)
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvidence(b)
		if err != nil {
			return
		}
		again, err := EncodeEvidence(&e)
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
