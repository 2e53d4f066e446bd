// Package yuma computes subtensor's Yuma consensus epoch bit for bit: the
// production sparse epoch (epoch_mechanism) and the dense test variant
// (epoch_dense_mechanism), Yuma 2 and Yuma 3 bonds, liquid alpha, the bonds
// penalty, commit-reveal masking, validator permits and the emission split.
//
// The package is a pure function of its inputs: no clocks, goroutines (except
// in the batch engine, whose results do not depend on them), I/O or floats.
// specs/yuma-epoch.md is the contract; the Rust line numbers in comments refer
// to subtensor commit 14bc6f9f (pallets/subtensor/src/epoch/).
package yuma

import (
	"fmt"
	"math"
)

// Variant selects which of subtensor's two epoch functions to reproduce.
type Variant uint8

const (
	// Sparse is epoch_mechanism, the function the chain runs.
	Sparse Variant = iota
	// Dense is epoch_dense_mechanism, subtensor's test-only dense variant.
	Dense
)

func (v Variant) String() string {
	if v == Dense {
		return "dense"
	}
	return "sparse"
}

// Entry is one (column, value) pair of a stored sparse row: a weight or bond
// in u16 as the chain stores it.
type Entry struct {
	UID   uint16
	Value uint16
}

// NoCommit marks a uid without an unexpired commit in Input.CommitBlocks.
const NoCommit = math.MaxUint64

// Input is everything one epoch reads from chain state (yuma-epoch.md §3).
// Per-uid slices have length N unless a field says otherwise. Sparse rows keep
// the stored order and explicit zero entries: both can change the result.
type Input struct {
	Variant Variant

	N            int    // SubnetworkN: number of uids
	CurrentBlock uint64 // block the epoch runs in
	Tempo        uint64
	// ActivityCutoffBlocks is get_activity_cutoff_blocks: a uid is inactive
	// when last_update + cutoff < current_block.
	ActivityCutoffBlocks uint64

	LastUpdate          []uint64
	BlockAtRegistration []uint64

	// Stake per uid in rao: total = alpha + tao * tao_weight (I64F64).
	AlphaStake []uint64
	TaoStake   []uint64
	// TaoWeight is the stored u64; the factor is TaoWeight / u64::MAX.
	TaoWeight      uint64
	StakeThreshold uint64

	// OwnerUID is the subnet owner's uid, or -1 when there is none.
	OwnerUID int

	// ValidatorPermit may be shorter than N: missing entries mean no permit.
	ValidatorPermit      []bool
	MaxAllowedValidators uint16

	Kappa              uint16 // consensus majority, /65535
	BondsPenalty       uint16 // β, /65535
	BondsMovingAverage uint64 // /1_000_000
	Yuma3              bool
	LiquidAlpha        bool
	AlphaLow           uint16
	AlphaHigh          uint16
	AlphaSteepness     int16

	LastMechanismStepBlock uint64

	// CommitReveal enables the commit-reveal column mask. CommitBlocks then
	// holds, per uid, the block of its earliest unexpired commit, or NoCommit.
	// It may be nil (no commits at all).
	CommitReveal bool
	CommitBlocks []uint64

	Weights [][]Entry // row i: weights set by uid i
	Bonds   [][]Entry // row i: bonds held by uid i

	RaoEmission uint64
}

// Output is what the epoch writes back (yuma-epoch.md §4 step 13), per uid.
type Output struct {
	StakeWeight    []uint16
	Consensus      []uint16
	Incentive      []uint16
	Dividends      []uint16
	ValidatorTrust []uint16

	ServerEmission    []uint64
	ValidatorEmission []uint64
	Emission          []uint64

	NewValidatorPermits []bool
	Inactive            []bool

	// NewBonds is the bond row stored for each uid. BondsWritten[i] is false
	// where the chain leaves uid i's stored row untouched (dense variant, uid
	// with neither an old nor a new permit); the sparse variant writes every row.
	NewBonds     [][]Entry
	BondsWritten []bool

	// LastTempo is the block before which registrations keep old bonds.
	LastTempo uint64

	// Raw holds the I32F32 intermediate vectors for debugging and tests.
	Raw RawTerms

	bondBuf []Entry // backing array of NewBonds, reused between epochs
}

// RawTerms are raw I32F32 vectors from inside the epoch.
type RawTerms struct {
	Stake          []int64
	ActiveStake    []int64
	Consensus      []int64
	Incentive      []int64
	Dividends      []int64
	ValidatorTrust []int64
}

// MaxUIDs bounds N so that uids fit in u16 and work stays bounded.
const MaxUIDs = 65535

// MaxDenseUIDs bounds N for the dense variant, which builds n × n matrices
// as subtensor's test-only epoch_dense does: at 4096 uids an epoch takes
// about 0.8 GB and seconds; at 65535 it would need hundreds of GB.
const MaxDenseUIDs = 4096

// FieldError says which input field is wrong and why.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks the shape of the input: lengths, uid ranges and values the
// epoch cannot accept. The chain never builds such inputs; a CLI user can.
func (in *Input) Validate() error {
	if in.N < 0 || in.N > MaxUIDs {
		return fieldErr("n", "must be in [0, %d], got %d", MaxUIDs, in.N)
	}
	n := in.N
	lens := []struct {
		name string
		got  int
	}{
		{"last_update", len(in.LastUpdate)},
		{"block_at_registration", len(in.BlockAtRegistration)},
		{"alpha_stake", len(in.AlphaStake)},
		{"tao_stake", len(in.TaoStake)},
		{"weights", len(in.Weights)},
		{"bonds", len(in.Bonds)},
	}
	for _, l := range lens {
		if l.got != n {
			return fieldErr(l.name, "has %d entries, want n = %d", l.got, n)
		}
	}
	if len(in.ValidatorPermit) > n {
		return fieldErr("validator_permit", "has %d entries, more than n = %d", len(in.ValidatorPermit), n)
	}
	if in.CommitBlocks != nil && len(in.CommitBlocks) != n {
		return fieldErr("commit_blocks", "has %d entries, want n = %d", len(in.CommitBlocks), n)
	}
	if in.OwnerUID < -1 || in.OwnerUID >= n {
		return fieldErr("owner_uid", "must be null or a uid below n = %d, got %d", n, in.OwnerUID)
	}
	if in.Variant != Sparse && in.Variant != Dense {
		return fieldErr("variant", "unknown variant %d", in.Variant)
	}
	if in.Variant == Dense && n > MaxDenseUIDs {
		return fieldErr("n", "is %d, but the dense variant (n × n matrices, test-only in subtensor) takes at most %d uids; use the sparse variant", n, MaxDenseUIDs)
	}
	for _, m := range []struct {
		name string
		rows [][]Entry
	}{{"weights", in.Weights}, {"bonds", in.Bonds}} {
		for i, row := range m.rows {
			for k, e := range row {
				if int(e.UID) >= n {
					return fieldErr(fmt.Sprintf("%s[%d][%d]", m.name, i, k), "names uid %d, but n = %d", e.UID, n)
				}
			}
		}
	}
	return nil
}
