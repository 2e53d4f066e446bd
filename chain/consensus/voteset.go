package consensus

import (
	"errors"
	"fmt"

	"taobox/chain/types"
)

// MaxVotesPerValidator bounds the distinct votes kept per validator in one
// VoteSet (the first plus conflicting ones).
const MaxVotesPerValidator = 8

// VoteSet collects the votes of one (height, round, type). It keeps each
// validator's first vote and up to MaxVotesPerValidator-1 conflicting votes
// (the first conflict is reported as evidence). The "any" tally counts each validator once; the per-block
// tally counts a validator once for each block it signed (the paper's
// message log), so an equivocator cannot hide a quorum from one node.
type VoteSet struct {
	Height uint64
	Round  uint32
	Type   VoteType
	vals   *ValidatorSet
	first  map[int]Vote
	extra  map[int][]Vote
	any    uint64
	by     map[types.Hash]uint64
}

// NewVoteSet returns an empty vote set for (height, round, typ) over vals.
func NewVoteSet(height uint64, round uint32, typ VoteType, vals *ValidatorSet) *VoteSet {
	return &VoteSet{Height: height, Round: round, Type: typ, vals: vals,
		first: map[int]Vote{}, extra: map[int][]Vote{}, by: map[types.Hash]uint64{}}
}

// ErrNotValidator marks a message from outside the validator set.
var ErrNotValidator = errors.New("consensus: sender is not a validator")

// Add adds v (whose signature the caller has checked). added reports whether
// it changed a tally; ev is set the first time v's validator equivocates.
func (s *VoteSet) Add(v Vote) (added bool, ev *Evidence, err error) {
	if v.Height != s.Height || v.Round != s.Round || v.Type != s.Type {
		return false, nil, fmt.Errorf("consensus: vote %s h=%d r=%d in set %s h=%d r=%d", v.Type, v.Height, v.Round, s.Type, s.Height, s.Round)
	}
	i := s.vals.Index(v.Validator)
	if i < 0 {
		return false, nil, ErrNotValidator
	}
	stake := s.vals.At(i).Stake
	f, ok := s.first[i]
	switch {
	case !ok:
		s.first[i] = v
		s.any += stake
		s.by[v.BlockID] += stake
		return true, nil, nil
	case f.BlockID == v.BlockID:
		return false, nil, nil
	}
	ex := s.extra[i]
	for _, o := range ex {
		if o.BlockID == v.BlockID {
			return false, nil, nil
		}
	}
	if len(ex) >= MaxVotesPerValidator-1 {
		return false, nil, nil // bounded
	}
	s.extra[i] = append(ex, v)
	s.by[v.BlockID] += stake
	if len(ex) > 0 {
		return true, nil, nil // evidence already reported
	}
	e := newVoteEvidence(f, v)
	return true, &e, nil
}

// TwoThirdsAny reports votes (any blocks, nil included) from more than 2/3.
func (s *VoteSet) TwoThirdsAny() bool { return s != nil && TwoThirds(s.any, s.vals.Total()) }

// TwoThirdsFor reports votes for id (zero = nil) from more than 2/3.
func (s *VoteSet) TwoThirdsFor(id types.Hash) bool {
	return s != nil && TwoThirds(s.by[id], s.vals.Total())
}

// Quorums returns the non-nil ids with more than 2/3 of the stake.
func (s *VoteSet) Quorums() []types.Hash {
	if s == nil {
		return nil
	}
	var out []types.Hash
	for id, st := range s.by {
		if !id.IsZero() && TwoThirds(st, s.vals.Total()) {
			out = append(out, id)
		}
	}
	return out // at most one unless > 1/3 equivocated
}

// Certificate returns the precommits for id as a certificate.
func (s *VoteSet) Certificate(id types.Hash) Certificate {
	c := Certificate{Height: s.Height, Round: s.Round, BlockID: id}
	for i := 0; i < s.vals.Len(); i++ {
		if v, ok := s.first[i]; ok && v.BlockID == id {
			c.Sigs = append(c.Sigs, CommitSig{Index: i, Signature: v.Signature})
			continue
		}
		for _, v := range s.extra[i] {
			if v.BlockID == id {
				c.Sigs = append(c.Sigs, CommitSig{Index: i, Signature: v.Signature})
			}
		}
	}
	return c
}
