package consensus

import (
	"errors"
	"fmt"

	"taobox/chain/types"
)

// Evidence encoding (all integers big-endian), at most types.MaxEvidenceMsg
// bytes:
//
//	Evidence = 1 (votes)     ‖ VoteA ‖ VoteB
//	         | 2 (proposals) ‖ ProposalA ‖ ProposalB
//	Vote     = type u8 ‖ height u64 ‖ round u32 ‖ block[32] ‖ validator[32] ‖ sig[64]
//	Proposal = height u64 ‖ round u32 ‖ polRound u32 ‖ block id[32] ‖
//	           proposer[32] ‖ sig[64]
//
// A proposal is carried without its block: the signature covers the block
// id, which is all the evidence needs.
const (
	evidenceVotes     = 1
	evidenceProposals = 2
)

// EvidenceKey names what a piece of evidence proves: the offender, height,
// round and message type (Prevote, Precommit, or 0x20 for a proposal). Each
// key is committed on chain at most once, so a swapped or re-signed pair is
// not a second offence.
type EvidenceKey struct {
	Offender types.AccountID
	Height   uint64
	Round    uint32
	Type     uint8
}

// ProposalEvidenceType is EvidenceKey.Type for conflicting proposals.
const ProposalEvidenceType = proposalTag

// Key returns what e proves; the zero key for empty evidence.
func (e *Evidence) Key() EvidenceKey {
	switch {
	case e.VoteA != nil:
		return EvidenceKey{Offender: e.VoteA.Validator, Height: e.VoteA.Height, Round: e.VoteA.Round, Type: uint8(e.VoteA.Type)}
	case e.ProposalA != nil:
		return EvidenceKey{Offender: e.ProposalA.Proposer, Height: e.ProposalA.Height, Round: e.ProposalA.Round, Type: proposalTag}
	}
	return EvidenceKey{}
}

func writeEvidenceProposal(w *types.Writer, p *Proposal) {
	w.U64(p.Height)
	w.U32(p.Round)
	w.U32(uint32(p.POLRound))
	w.Fixed(p.BlockID[:])
	w.Fixed(p.Proposer[:])
	w.Fixed(p.Signature[:])
}

func readEvidenceProposal(r *types.Reader) (p Proposal) {
	p.Height = r.U64("proposal height")
	p.Round = r.U32("proposal round")
	p.POLRound = int32(r.U32("proposal pol round"))
	r.Fixed("proposal block id", p.BlockID[:])
	r.Fixed("proposal proposer", p.Proposer[:])
	r.Fixed("proposal signature", p.Signature[:])
	return p
}

// EncodeEvidence returns the canonical encoding of e (see above). It
// fails for evidence with neither two votes nor two proposals.
func EncodeEvidence(e *Evidence) ([]byte, error) {
	w := types.NewWriter(make([]byte, 0, 1+2*(1+8+4+32+32+64)))
	switch {
	case e.VoteA != nil && e.VoteB != nil:
		w.U8(evidenceVotes)
		writeVote(w, e.VoteA)
		writeVote(w, e.VoteB)
	case e.ProposalA != nil && e.ProposalB != nil:
		w.U8(evidenceProposals)
		writeEvidenceProposal(w, e.ProposalA)
		writeEvidenceProposal(w, e.ProposalB)
	default:
		return nil, errors.New("consensus: cannot encode empty evidence")
	}
	return w.Bytes(), nil
}

// DecodeEvidence decodes what EncodeEvidence wrote, from exactly b (at
// most types.MaxEvidenceMsg bytes). It checks the form only; VerifyEvidence
// checks what the evidence proves.
func DecodeEvidence(b []byte) (Evidence, error) {
	if len(b) > types.MaxEvidenceMsg {
		return Evidence{}, fmt.Errorf("consensus: evidence of %d bytes, the limit is %d", len(b), types.MaxEvidenceMsg)
	}
	if len(b) == 0 {
		return Evidence{}, errors.New("consensus: empty evidence")
	}
	r := types.NewReader(b[1:])
	var e Evidence
	switch b[0] {
	case evidenceVotes:
		a, c := readVote(r), readVote(r)
		e.VoteA, e.VoteB = &a, &c
	case evidenceProposals:
		a, c := readEvidenceProposal(r), readEvidenceProposal(r)
		e.ProposalA, e.ProposalB = &a, &c
	default:
		return Evidence{}, fmt.Errorf("consensus: unknown evidence kind %d", b[0])
	}
	if err := r.Done(); err != nil {
		return Evidence{}, fmt.Errorf("consensus: decode evidence: %w", err)
	}
	return e, nil
}

// NewVoteEvidence returns evidence of two conflicting votes, in canonical
// order (the smaller block id first). It checks nothing; see VerifyEvidence.
func NewVoteEvidence(a, b Vote) Evidence { return newVoteEvidence(a, b) }

// NewProposalEvidence returns evidence of two conflicting proposals, in
// canonical order, without their blocks. It checks nothing.
func NewProposalEvidence(a, b Proposal) Evidence {
	a.Block, b.Block = nil, nil
	return newProposalEvidence(a, b)
}
