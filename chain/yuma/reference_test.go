package yuma

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomInput draws an adversarial epoch input: unsorted rows, duplicate and
// zero entries, short permit vectors, owners, thresholds, tao stake, commit
// reveal, recent registrations, inactive uids and extreme parameters.
func randomInput(r *rand.Rand, variant Variant) *Input {
	n := r.IntN(24)
	if r.IntN(8) == 0 {
		n = 40 + r.IntN(60)
	}
	cur := uint64(100 + r.IntN(400))
	in := &Input{
		Variant: variant, N: n, CurrentBlock: cur, Tempo: uint64(r.IntN(200)),
		ActivityCutoffBlocks: uint64(1 + r.IntN(300)), OwnerUID: -1,
		TaoWeight: pick(r, 0, 971_718_665_099_567_868, r.Uint64()), StakeThreshold: pick(r, 0, 0, uint64(r.IntN(2000))),
		MaxAllowedValidators: uint16(r.IntN(n + 3)), Kappa: uint16(pick(r, 32767, 65535, uint64(r.IntN(65536)))),
		BondsPenalty:       uint16(pick(r, 65535, 0, uint64(r.IntN(65536)))),
		BondsMovingAverage: pick(r, 900_000, 975_000, uint64(r.IntN(1_000_001))),
		Yuma3:              r.IntN(2) == 0, LiquidAlpha: r.IntN(2) == 0,
		AlphaSteepness:         int16(pick(r, 1000, 10, uint64(r.IntN(4000)))) - int16(r.IntN(2)*500),
		LastMechanismStepBlock: pick(r, 0, cur-uint64(r.IntN(50)), 0),
		CommitReveal:           r.IntN(3) == 0, RaoEmission: pick(r, 1_000_000_000, r.Uint64(), uint64(r.IntN(1e12))),
	}
	lo := uint16(1638 + r.IntN(40000))
	in.AlphaLow, in.AlphaHigh = lo, lo+uint16(r.IntN(int(65535-lo)))
	if n > 0 && r.IntN(3) == 0 {
		in.OwnerUID = r.IntN(n)
	}
	// Tie-prone mode: few distinct stakes and weights, so that stake sums
	// land exactly on the consensus minority and the quickselect's boundary
	// comparisons decide the result.
	ties := r.IntN(3) == 0
	for range n {
		in.LastUpdate = append(in.LastUpdate, cur-uint64(r.IntN(int(cur))))
		in.BlockAtRegistration = append(in.BlockAtRegistration, cur-uint64(r.IntN(int(cur))))
		if ties {
			in.AlphaStake = append(in.AlphaStake, uint64(1+r.IntN(3))<<uint(r.IntN(2)))
			in.TaoStake = append(in.TaoStake, 0)
			continue
		}
		in.AlphaStake = append(in.AlphaStake, pick(r, 0, uint64(r.IntN(1e6)), r.Uint64()>>uint(r.IntN(64))))
		in.TaoStake = append(in.TaoStake, pick(r, 0, 0, uint64(r.IntN(1e9))))
	}
	if ties {
		in.Kappa = []uint16{0, 16384, 21845, 32767, 32768, 43690, 49151, 65535}[r.IntN(8)]
		in.StakeThreshold = 0
	}
	np := n
	if r.IntN(4) == 0 {
		np = r.IntN(n + 1)
	}
	for range np {
		in.ValidatorPermit = append(in.ValidatorPermit, r.IntN(3) != 0)
	}
	if in.CommitReveal && r.IntN(2) == 0 {
		for range n {
			in.CommitBlocks = append(in.CommitBlocks, pick(r, NoCommit, cur-uint64(r.IntN(int(cur))), 0))
		}
	}
	weight := func() uint16 {
		if ties {
			return []uint16{0, 21845, 32768, 43690, 65535}[r.IntN(5)]
		}
		return uint16(pick(r, 65535, 0, uint64(r.IntN(65536))))
	}
	row := func(maxLen int, sorted bool) []Entry {
		var e []Entry
		if n == 0 {
			return []Entry{}
		}
		k := r.IntN(maxLen + 1)
		if sorted {
			for j := range n {
				if r.IntN(n) < k {
					e = append(e, Entry{uint16(j), weight()})
				}
			}
		} else {
			for range k {
				e = append(e, Entry{uint16(r.IntN(n)), weight()})
			}
		}
		if e == nil {
			e = []Entry{}
		}
		return e
	}
	for range n {
		in.Weights = append(in.Weights, row(n+2, r.IntN(4) != 0))
		in.Bonds = append(in.Bonds, row(n+2, r.IntN(4) != 0))
	}
	return in
}

// pick returns a with probability 1/3, b with 1/3, else c.
func pick(r *rand.Rand, a, b, c uint64) uint64 {
	switch r.IntN(3) {
	case 0:
		return a
	case 1:
		return b
	}
	return c
}

// TestSparseMatchesReference compares the fast engine with the literal
// reference on thousands of adversarial inputs, reusing one workspace and
// one output throughout so that stale state would show.
func TestSparseMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ws Workspace
	var out Output
	cases := 3000
	if testing.Short() {
		cases = 500
	}
	for c := range cases {
		in := randomInput(r, Sparse)
		if err := ws.Epoch(in, &out); err != nil {
			t.Fatalf("case %d: %v", c, err)
		}
		want := referenceSparse(in)
		if !sameOutput(&out, want) {
			t.Fatalf("case %d (n=%d yuma3=%v liquid=%v): engine and reference differ\n got %+v\nwant %+v", c, in.N, in.Yuma3, in.LiquidAlpha, out, *want)
		}
	}
}

// TestDenseAgreesWithSparseOnPlainInputs checks the metamorphic relation of
// yuma-epoch.md §6: on inputs without the features where the variants differ
// (owner, commit reveal, recent registrations, zero weight entries, liquid
// alpha), both variants give the same incentive, dividends and emission.
func TestDenseAgreesWithSparseOnPlainInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for c := range 400 {
		in := randomInput(r, Sparse)
		in.OwnerUID, in.CommitReveal, in.LiquidAlpha, in.LastMechanismStepBlock = -1, false, false, 0
		in.Tempo = 0
		for i := range in.N {
			in.BlockAtRegistration[i] = 0
			in.Weights[i] = sortedPositive(in.Weights[i])
			in.Bonds[i] = nil
		}
		in.Bonds = make([][]Entry, in.N)
		sparse, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		in.Variant = Dense
		dense, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sparse.Incentive, dense.Incentive) || !reflect.DeepEqual(sparse.Dividends, dense.Dividends) ||
			!reflect.DeepEqual(sparse.Emission, dense.Emission) || !reflect.DeepEqual(sparse.Consensus, dense.Consensus) {
			t.Fatalf("case %d: sparse and dense differ\nsparse %+v\ndense  %+v", c, sparse, dense)
		}
	}
}

// sortedPositive keeps the last value per column, drops zeros, sorts by column.
func sortedPositive(row []Entry) []Entry {
	last := map[uint16]uint16{}
	for _, e := range row {
		last[e.UID] = e.Value
	}
	out := []Entry{}
	for j, v := range last {
		if v > 0 {
			out = append(out, Entry{j, v})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return int(a.UID) - int(b.UID) })
	return out
}

// sameOutput compares every field; nil and empty slices count as equal.
func sameOutput(a, b *Output) bool {
	rows := func(x, y [][]Entry) bool {
		return slices.EqualFunc(x, y, func(p, q []Entry) bool { return slices.Equal(p, q) })
	}
	return slices.Equal(a.StakeWeight, b.StakeWeight) && slices.Equal(a.Consensus, b.Consensus) &&
		slices.Equal(a.Incentive, b.Incentive) && slices.Equal(a.Dividends, b.Dividends) &&
		slices.Equal(a.ValidatorTrust, b.ValidatorTrust) && slices.Equal(a.ServerEmission, b.ServerEmission) &&
		slices.Equal(a.ValidatorEmission, b.ValidatorEmission) && slices.Equal(a.Emission, b.Emission) &&
		slices.Equal(a.NewValidatorPermits, b.NewValidatorPermits) && slices.Equal(a.Inactive, b.Inactive) &&
		a.LastTempo == b.LastTempo && slices.Equal(a.BondsWritten, b.BondsWritten) && rows(a.NewBonds, b.NewBonds) &&
		slices.Equal(a.Raw.Stake, b.Raw.Stake) && slices.Equal(a.Raw.ActiveStake, b.Raw.ActiveStake) &&
		slices.Equal(a.Raw.Consensus, b.Raw.Consensus) && slices.Equal(a.Raw.Incentive, b.Raw.Incentive) &&
		slices.Equal(a.Raw.Dividends, b.Raw.Dividends) && slices.Equal(a.Raw.ValidatorTrust, b.Raw.ValidatorTrust)
}
