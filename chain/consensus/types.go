// Package consensus implements Tendermint BFT (Buchman/Kwon/Milosevic,
// Algorithm 1) as a pure state machine in the style of etcd raft's RawNode:
// the host feeds events (messages, fired timers, application answers) to
// Node.Step and collects the work to do from Node.Ready. The node has no
// clock, network, disk or randomness; signing goes through an injected
// Signer. See ../../../shared/specs/bft-consensus.md.
package consensus

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/bits"

	"taobox/chain/types"
)

// VoteType is the kind of a vote; the values are the sign-bytes type tags.
type VoteType uint8

const (
	Prevote   VoteType = 1
	Precommit VoteType = 2
	// proposalTag is the sign-bytes type tag of a proposal.
	proposalTag = 0x20
)

func (t VoteType) String() string {
	switch t {
	case Prevote:
		return "prevote"
	case Precommit:
		return "precommit"
	}
	return fmt.Sprintf("VoteType(%d)", uint8(t))
}

// Domain tags of the consensus sign bytes.
const (
	voteDomain     = "taobox/vote/v1"
	proposalDomain = "taobox/proposal/v1"
)

// Vote is a signed prevote or precommit. A zero BlockID is a vote for nil.
type Vote struct {
	Type      VoteType
	Height    uint64
	Round     uint32
	BlockID   types.Hash
	Validator types.AccountID
	Signature types.Signature
}

// SignBytes returns "taobox/vote/v1" ‖ chainID ‖ type ‖ height ‖ round ‖
// block hash (32 bytes, or nothing for nil). No timestamp, so re-signing is
// byte-identical.
func (v *Vote) SignBytes(chainID types.Hash) []byte {
	w := types.NewWriter(make([]byte, 0, 96))
	w.Fixed([]byte(voteDomain))
	w.Fixed(chainID[:])
	w.U8(uint8(v.Type))
	w.U64(v.Height)
	w.U32(v.Round)
	if !v.BlockID.IsZero() {
		w.Fixed(v.BlockID[:])
	}
	return w.Bytes()
}

// Proposal is a signed proposal of Block (opaque bytes, BlockID =
// Config.BlockID(Block), by default types.HashBytes(Block)) for (Height, Round); POLRound is -1 or the round of
// the polka that justifies re-proposing a valid value.
type Proposal struct {
	Height    uint64
	Round     uint32
	POLRound  int32
	BlockID   types.Hash
	Block     []byte
	Proposer  types.AccountID
	Signature types.Signature
}

// SignBytes returns "taobox/proposal/v1" ‖ chainID ‖ 0x20 ‖ height ‖ round ‖
// polRound (u32 of int32) ‖ block hash.
func (p *Proposal) SignBytes(chainID types.Hash) []byte {
	w := types.NewWriter(make([]byte, 0, 100))
	w.Fixed([]byte(proposalDomain))
	w.Fixed(chainID[:])
	w.U8(proposalTag)
	w.U64(p.Height)
	w.U32(p.Round)
	w.U32(uint32(p.POLRound))
	w.Fixed(p.BlockID[:])
	return w.Bytes()
}

// Signer signs consensus messages with the validator's key.
type Signer interface {
	ID() types.AccountID
	Sign(msg []byte) types.Signature
}

// Ed25519Signer signs with an ed25519 private key.
type Ed25519Signer struct{ Key ed25519.PrivateKey }

// ID returns the key's account.
func (s Ed25519Signer) ID() types.AccountID { return types.AccountIDFromPrivateKey(s.Key) }

// Sign signs msg.
func (s Ed25519Signer) Sign(msg []byte) (sig types.Signature) {
	copy(sig[:], ed25519.Sign(s.Key, msg))
	return sig
}

// ErrBadSignature marks a consensus message whose signature does not verify.
var ErrBadSignature = errors.New("consensus: bad signature")

// VerifyVote checks v's signature under chainID with ed25519.
func VerifyVote(chainID types.Hash, v *Vote) error {
	if !ed25519.Verify(v.Validator.PublicKey(), v.SignBytes(chainID), v.Signature[:]) {
		return fmt.Errorf("%w: %s h=%d r=%d by %x", ErrBadSignature, v.Type, v.Height, v.Round, v.Validator[:4])
	}
	return nil
}

// VerifyProposal checks p's signature and that BlockID is the hash of Block
// (types.HashBytes; see VerifyProposalSig for hosts with another BlockID).
func VerifyProposal(chainID types.Hash, p *Proposal) error {
	if types.HashBytes(p.Block) != p.BlockID {
		return fmt.Errorf("consensus: proposal h=%d r=%d: block id is not the hash of the block", p.Height, p.Round)
	}
	if !ed25519.Verify(p.Proposer.PublicKey(), p.SignBytes(chainID), p.Signature[:]) {
		return fmt.Errorf("%w: proposal h=%d r=%d by %x", ErrBadSignature, p.Height, p.Round, p.Proposer[:4])
	}
	return nil
}

// VerifyProposalSig checks only p's signature (the host checks that
// BlockID names Block).
func VerifyProposalSig(chainID types.Hash, p *Proposal) error {
	if !ed25519.Verify(p.Proposer.PublicKey(), p.SignBytes(chainID), p.Signature[:]) {
		return fmt.Errorf("%w: proposal h=%d r=%d by %x", ErrBadSignature, p.Height, p.Round, p.Proposer[:4])
	}
	return nil
}

// Evidence is proof that one validator signed two different votes of the
// same type at the same height and round (VoteA.BlockID < VoteB.BlockID),
// or two different proposals (ProposalA/ProposalB set instead).
type Evidence struct {
	VoteA, VoteB         *Vote
	ProposalA, ProposalB *Proposal
}

func newVoteEvidence(a, b Vote) Evidence {
	if bytes.Compare(a.BlockID[:], b.BlockID[:]) > 0 {
		a, b = b, a
	}
	return Evidence{VoteA: &a, VoteB: &b}
}

func newProposalEvidence(a, b Proposal) Evidence {
	if bytes.Compare(a.BlockID[:], b.BlockID[:]) > 0 {
		a, b = b, a
	}
	return Evidence{ProposalA: &a, ProposalB: &b}
}

// CommitSig is one precommit signature of a certificate.
type CommitSig struct {
	Index     int // index in the ValidatorSet
	Signature types.Signature
}

// Certificate holds precommits of one round for one block from more than
// 2/3 of the stake of the height's validator set.
type Certificate struct {
	Height  uint64
	Round   uint32
	BlockID types.Hash
	Sigs    []CommitSig
}

// VerifyCertificate checks every signature of c (not stopping at quorum),
// that each index is in range and used once, and that the signers hold more
// than 2/3 of vs's stake.
func VerifyCertificate(chainID types.Hash, vs *ValidatorSet, c *Certificate) error {
	if c.BlockID.IsZero() {
		return errors.New("consensus: certificate for nil")
	}
	seen := make(map[int]bool, len(c.Sigs))
	var sum uint64
	for _, s := range c.Sigs {
		if s.Index < 0 || s.Index >= vs.Len() {
			return fmt.Errorf("consensus: certificate index %d out of range", s.Index)
		}
		if seen[s.Index] {
			return fmt.Errorf("consensus: certificate index %d used twice", s.Index)
		}
		seen[s.Index] = true
		val := vs.At(s.Index)
		v := Vote{Type: Precommit, Height: c.Height, Round: c.Round, BlockID: c.BlockID, Validator: val.ID, Signature: s.Signature}
		if err := VerifyVote(chainID, &v); err != nil {
			return err
		}
		sum += val.Stake
	}
	if !TwoThirds(sum, vs.Total()) {
		return fmt.Errorf("consensus: certificate has %d of %d stake, need more than 2/3", sum, vs.Total())
	}
	return nil
}

// TwoThirds reports 3·s > 2·total, exactly (128-bit products).
func TwoThirds(s, total uint64) bool { return gt128(3, s, 2, total) }

// OneThird reports 3·s > total, exactly.
func OneThird(s, total uint64) bool { return gt128(3, s, 1, total) }

func gt128(a, x, b, y uint64) bool {
	h1, l1 := bits.Mul64(a, x)
	h2, l2 := bits.Mul64(b, y)
	return h1 > h2 || (h1 == h2 && l1 > l2)
}
