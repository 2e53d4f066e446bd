package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"

	"taobox/chain/types"
)

// MaxTotalStake is the largest total stake a ValidatorSet accepts
// (CometBFT's MaxTotalVotingPower), so priorities fit in int64.
const MaxTotalStake = math.MaxInt64 / 8

// Validator is a member of the authority set.
type Validator struct {
	ID       types.AccountID
	Stake    uint64
	Priority int64 // proposer priority
}

// ValidatorSet is sorted by stake descending, then ID ascending.
type ValidatorSet struct {
	vals  []Validator
	index map[types.AccountID]int
	total uint64
	// proposer is the index chosen by the last increment.
	proposer int
}

// NewValidatorSet builds a set with all priorities zero. Stakes must be
// positive, IDs distinct, and the total at most MaxTotalStake.
func NewValidatorSet(vals []Validator) (*ValidatorSet, error) {
	if len(vals) == 0 {
		return nil, errors.New("consensus: empty validator set")
	}
	vs := &ValidatorSet{vals: make([]Validator, len(vals)), index: make(map[types.AccountID]int, len(vals))}
	copy(vs.vals, vals)
	for _, v := range vs.vals {
		if v.Stake == 0 {
			return nil, fmt.Errorf("consensus: validator %x has zero stake", v.ID[:4])
		}
		if v.Stake > MaxTotalStake || vs.total+v.Stake > MaxTotalStake {
			return nil, fmt.Errorf("consensus: total stake above %d", int64(MaxTotalStake))
		}
		vs.total += v.Stake
	}
	sort.Slice(vs.vals, func(i, j int) bool {
		a, b := vs.vals[i], vs.vals[j]
		if a.Stake != b.Stake {
			return a.Stake > b.Stake
		}
		return bytes.Compare(a.ID[:], b.ID[:]) < 0
	})
	for i, v := range vs.vals {
		if _, dup := vs.index[v.ID]; dup {
			return nil, fmt.Errorf("consensus: validator %x listed twice", v.ID[:4])
		}
		vs.index[v.ID] = i
	}
	return vs, nil
}

// Len returns the number of validators.
func (vs *ValidatorSet) Len() int { return len(vs.vals) }

// At returns validator i.
func (vs *ValidatorSet) At(i int) Validator { return vs.vals[i] }

// Total returns the total stake.
func (vs *ValidatorSet) Total() uint64 { return vs.total }

// Index returns id's index, or -1.
func (vs *ValidatorSet) Index(id types.AccountID) int {
	if i, ok := vs.index[id]; ok {
		return i
	}
	return -1
}

// Copy returns a deep copy (the index map is shared; it is never mutated).
func (vs *ValidatorSet) Copy() *ValidatorSet {
	c := *vs
	c.vals = append([]Validator(nil), vs.vals...)
	return &c
}

// Proposer returns the validator chosen by the last
// IncrementProposerPriority (validator 0 before any increment).
func (vs *ValidatorSet) Proposer() Validator { return vs.vals[vs.proposer] }

func better(a, b Validator) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// IncrementProposerPriority is CometBFT's algorithm (spec §4): rescale the
// spread to 2·total, center on the Euclidean mean, then times times add each
// stake and subtract the total from the maximum. Arithmetic saturates.
func (vs *ValidatorSet) IncrementProposerPriority(times int) {
	if times <= 0 {
		return
	}
	diffMax := 2 * int64(vs.total)
	lo, hi := vs.vals[0].Priority, vs.vals[0].Priority
	for _, v := range vs.vals {
		lo, hi = min(lo, v.Priority), max(hi, v.Priority)
	}
	if diff := subSat(hi, lo); diff > diffMax {
		ratio := (diff + diffMax - 1) / diffMax
		for i := range vs.vals {
			vs.vals[i].Priority /= ratio
		}
	}
	sum := new(big.Int)
	for _, v := range vs.vals {
		sum.Add(sum, big.NewInt(v.Priority))
	}
	avg := sum.Div(sum, big.NewInt(int64(len(vs.vals)))) // Euclidean
	a := avg.Int64()
	for i := range vs.vals {
		vs.vals[i].Priority = subSat(vs.vals[i].Priority, a)
	}
	for t := 0; t < times; t++ {
		j := 0
		for i := range vs.vals {
			vs.vals[i].Priority = addSat(vs.vals[i].Priority, int64(vs.vals[i].Stake))
			if i > 0 && better(vs.vals[i], vs.vals[j]) {
				j = i
			}
		}
		vs.vals[j].Priority = subSat(vs.vals[j].Priority, int64(vs.total))
		vs.proposer = j
	}
}

func addSat(a, b int64) int64 {
	c := a + b
	if b > 0 && c < a {
		return math.MaxInt64
	}
	if b < 0 && c > a {
		return math.MinInt64
	}
	return c
}

func subSat(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return addSat(a, -b)
}

// MaxValidators caps the validators an encoded set may hold.
const MaxValidators = 1024

// Hash returns ValidatorSetHash of vs's members.
func (vs *ValidatorSet) Hash() types.Hash { return ValidatorSetHash(vs.vals) }

// ValidatorSetHash returns HashBytes of "taobox/valset/v1" ‖ the members in
// the set's order (stake descending, then ID ascending; priorities are not
// part of it): count u32, then (ID 32, stake u64) each. A header's
// ValSetHash and NextValSetHash commit to it.
func ValidatorSetHash(vals []Validator) types.Hash {
	return types.HashBytes([]byte("taobox/valset/v1"), EncodeValidators(sortedMembers(vals)))
}

func sortedMembers(vals []Validator) []Validator {
	out := make([]Validator, len(vals))
	for i, v := range vals {
		out[i] = Validator{ID: v.ID, Stake: v.Stake}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Stake != b.Stake {
			return a.Stake > b.Stake
		}
		return bytes.Compare(a.ID[:], b.ID[:]) < 0
	})
	return out
}

// Members returns the validators (ID and stake, priorities zeroed) in the
// set's order.
func (vs *ValidatorSet) Members() []Validator { return sortedMembers(vs.vals) }

// EncodeValidators encodes vals in the given order (count u32, then ID 32 ‖
// stake u64 each); priorities are left out.
func EncodeValidators(vals []Validator) []byte {
	w := types.NewWriter(make([]byte, 0, 4+40*len(vals)))
	w.Len(len(vals))
	for _, v := range vals {
		w.Fixed(v.ID[:])
		w.U64(v.Stake)
	}
	return w.Bytes()
}

// DecodeValidators reads what EncodeValidators wrote (at most
// MaxValidators, nothing trailing). It checks no set rules: build a set
// with NewValidatorSet.
func DecodeValidators(b []byte) ([]Validator, error) {
	r := types.NewReader(b)
	n := r.Len("validators", MaxValidators)
	out := make([]Validator, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var v Validator
		r.Fixed("validator id", v.ID[:])
		v.Stake = r.U64("validator stake")
		out = append(out, v)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("consensus: decode validators: %w", err)
	}
	return out, nil
}
