package consensus

import (
	"bytes"
	"errors"
	"fmt"

	"taobox/chain/types"
)

// Wire limits.
const (
	MaxBlockBytes = 8 << 20 // opaque block inside a proposal or commit
	MaxCertSigs   = 1024
)

// Message kinds on the wire (first byte of EncodeMessage).
const (
	wireProposal = 1
	wireVote     = 2
	wireCommit   = 3
)

func writeVote(w *types.Writer, v *Vote) {
	w.U8(uint8(v.Type))
	w.U64(v.Height)
	w.U32(v.Round)
	w.Fixed(v.BlockID[:])
	w.Fixed(v.Validator[:])
	w.Fixed(v.Signature[:])
}

func readVote(r *types.Reader) (v Vote) {
	v.Type = VoteType(r.U8("vote type"))
	v.Height = r.U64("vote height")
	v.Round = r.U32("vote round")
	r.Fixed("vote block", v.BlockID[:])
	r.Fixed("vote validator", v.Validator[:])
	r.Fixed("vote signature", v.Signature[:])
	if r.Err() == nil && v.Type != Prevote && v.Type != Precommit {
		r.Fail("vote type", fmt.Errorf("unknown vote type %d", v.Type))
	}
	return v
}

// EncodeCertificate appends c to w: height u64, round u32, block 32,
// count u32, then (index u32, signature 64) each.
func EncodeCertificate(w *types.Writer, c *Certificate) {
	w.U64(c.Height)
	w.U32(c.Round)
	w.Fixed(c.BlockID[:])
	w.Len(len(c.Sigs))
	for _, s := range c.Sigs {
		w.U32(uint32(s.Index))
		w.Fixed(s.Signature[:])
	}
}

// DecodeCertificate reads what EncodeCertificate wrote.
func DecodeCertificate(r *types.Reader) (c Certificate) {
	c.Height = r.U64("cert height")
	c.Round = r.U32("cert round")
	r.Fixed("cert block", c.BlockID[:])
	n := r.Len("cert sigs", MaxCertSigs)
	for i := 0; i < n && r.Err() == nil; i++ {
		var s CommitSig
		s.Index = int(r.U32("cert index"))
		r.Fixed("cert signature", s.Signature[:])
		c.Sigs = append(c.Sigs, s)
	}
	return c
}

// EncodeMessage encodes a Proposal, Vote or Commit for the network.
func EncodeMessage(ev Event) ([]byte, error) {
	w := types.NewWriter(make([]byte, 0, 256))
	switch e := ev.(type) {
	case Proposal:
		w.U8(wireProposal)
		w.U64(e.Height)
		w.U32(e.Round)
		w.U32(uint32(e.POLRound))
		w.Fixed(e.BlockID[:])
		w.VarBytes(e.Block)
		w.Fixed(e.Proposer[:])
		w.Fixed(e.Signature[:])
	case Vote:
		w.U8(wireVote)
		writeVote(w, &e)
	case Commit:
		w.U8(wireCommit)
		w.VarBytes(e.Block)
		EncodeCertificate(w, &e.Cert)
	default:
		return nil, fmt.Errorf("consensus: cannot encode %T", ev)
	}
	return w.Bytes(), nil
}

// DecodeMessage decodes what EncodeMessage wrote; it rejects trailing bytes.
func DecodeMessage(b []byte) (Event, error) {
	if len(b) == 0 {
		return nil, errors.New("consensus: empty message")
	}
	r := types.NewReader(b[1:])
	var ev Event
	switch b[0] {
	case wireProposal:
		var p Proposal
		p.Height = r.U64("proposal height")
		p.Round = r.U32("proposal round")
		p.POLRound = int32(r.U32("proposal pol round"))
		r.Fixed("proposal block id", p.BlockID[:])
		p.Block = r.VarBytes("proposal block", MaxBlockBytes)
		r.Fixed("proposal proposer", p.Proposer[:])
		r.Fixed("proposal signature", p.Signature[:])
		ev = p
	case wireVote:
		ev = readVote(r)
	case wireCommit:
		var c Commit
		c.Block = r.VarBytes("commit block", MaxBlockBytes)
		c.Cert = DecodeCertificate(r)
		ev = c
	default:
		return nil, fmt.Errorf("consensus: unknown message kind %d", b[0])
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return ev, nil
}

// VerifyEvidence checks duplicate-vote evidence against the validator set
// of its height (spec §5): same validator, height, round and type,
// different blocks in canonical order, a member of vs, both signatures
// valid under chainID.
func VerifyEvidence(chainID types.Hash, vs *ValidatorSet, e *Evidence) error {
	a, b := e.VoteA, e.VoteB
	if a == nil || b == nil {
		pa, pb := e.ProposalA, e.ProposalB
		if pa == nil || pb == nil {
			return errors.New("consensus: empty evidence")
		}
		if pa.Proposer != pb.Proposer || pa.Height != pb.Height || pa.Round != pb.Round {
			return errors.New("consensus: proposals are not from one proposer at one height and round")
		}
		if bytes.Compare(pa.BlockID[:], pb.BlockID[:]) >= 0 {
			return errors.New("consensus: proposal evidence not in canonical order")
		}
		if vs.Index(pa.Proposer) < 0 {
			return ErrNotValidator
		}
		for _, p := range []*Proposal{pa, pb} {
			if err := VerifyProposalSig(chainID, p); err != nil { // the signature covers BlockID; the block bytes are not needed
				return err
			}
		}
		return nil
	}
	if a.Validator != b.Validator || a.Height != b.Height || a.Round != b.Round || a.Type != b.Type {
		return errors.New("consensus: votes are not from one validator at one height, round and type")
	}
	if bytes.Compare(a.BlockID[:], b.BlockID[:]) >= 0 {
		return errors.New("consensus: vote evidence not in canonical order (or not conflicting)")
	}
	if vs.Index(a.Validator) < 0 {
		return ErrNotValidator
	}
	if err := VerifyVote(chainID, a); err != nil {
		return err
	}
	return VerifyVote(chainID, b)
}

// EncodeHardState encodes hs for the host's durable store (one write,
// fsynced before the Ready's messages are sent).
func EncodeHardState(hs *HardState) []byte {
	w := types.NewWriter(make([]byte, 0, 512))
	w.U8(1) // version
	w.U64(hs.Height)
	w.U32(hs.Round)
	w.U8(uint8(hs.Step))
	w.U32(uint32(hs.LockedRound))
	w.VarBytes(hs.LockedBlock)
	w.U32(uint32(hs.ValidRound))
	w.VarBytes(hs.ValidBlock)
	w.U64(hs.SignedHeight)
	w.U32(hs.SignedRound)
	w.U8(uint8(hs.SignedStep))
	w.Bool(hs.Proposal != nil)
	if hs.Proposal != nil {
		b, _ := EncodeMessage(*hs.Proposal)
		w.VarBytes(b)
	}
	for _, v := range []*Vote{hs.Prevote, hs.Precommit} {
		w.Bool(v != nil)
		if v != nil {
			writeVote(w, v)
		}
	}
	return w.Bytes()
}

// DecodeHardState reads what EncodeHardState wrote.
func DecodeHardState(b []byte) (*HardState, error) {
	r := types.NewReader(b)
	if v := r.U8("hard state version"); r.Err() == nil && v != 1 {
		return nil, fmt.Errorf("consensus: hard state version %d", v)
	}
	hs := &HardState{}
	hs.Height = r.U64("height")
	hs.Round = r.U32("round")
	hs.Step = StepKind(r.U8("step"))
	hs.LockedRound = int32(r.U32("locked round"))
	hs.LockedBlock = r.VarBytes("locked block", MaxBlockBytes)
	hs.ValidRound = int32(r.U32("valid round"))
	hs.ValidBlock = r.VarBytes("valid block", MaxBlockBytes)
	hs.SignedHeight = r.U64("signed height")
	hs.SignedRound = r.U32("signed round")
	hs.SignedStep = StepKind(r.U8("signed step"))
	if r.Bool("has proposal") {
		pb := r.VarBytes("proposal", MaxBlockBytes+256)
		if r.Err() == nil {
			ev, err := DecodeMessage(pb)
			p, ok := ev.(Proposal)
			if err != nil || !ok {
				return nil, fmt.Errorf("consensus: hard state proposal: %v", err)
			}
			hs.Proposal = &p
		}
	}
	if r.Bool("has prevote") {
		v := readVote(r)
		hs.Prevote = &v
	}
	if r.Bool("has precommit") {
		v := readVote(r)
		hs.Precommit = &v
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	if len(hs.LockedBlock) == 0 {
		hs.LockedBlock = nil
	}
	if len(hs.ValidBlock) == 0 {
		hs.ValidBlock = nil
	}
	return hs, nil
}
