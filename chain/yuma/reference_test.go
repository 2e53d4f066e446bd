package yuma

import (
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"testing"
)

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
		in := RandomInput(r, Sparse, 0)
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
		in := RandomInput(r, Sparse, 0)
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

// TestIndexedMedianPath runs the column-index weighted median (the path of
// subnets whose n × k score matrix would pass maxDenseScores) on every input:
// the vectors' sparse epochs must still match the port bit for bit, and
// adversarial inputs (duplicate uids in a row included) the reference. Both
// paths share one workspace, alternating, so stale buffers would show.
func TestIndexedMedianPath(t *testing.T) {
	saved := maxDenseScores
	defer func() { maxDenseScores = saved }()
	var ws Workspace
	var out Output
	for _, rec := range loadEpochVectors(t) {
		for _, ep := range rec.Epochs {
			in, err := DecodeInput(ep.InputState)
			if err != nil {
				t.Fatal(err)
			}
			maxDenseScores = 0
			if err := ws.Epoch(in, &out); err != nil {
				t.Fatal(err)
			}
			comparePort(t, in, &out, &ep.Port)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for c := range 600 {
		in := RandomInput(r, Sparse, 0)
		maxDenseScores = []int{0, saved}[c%2]
		if err := ws.Epoch(in, &out); err != nil {
			t.Fatalf("case %d: %v", c, err)
		}
		if want := referenceSparse(in); !sameOutput(&out, want) {
			t.Fatalf("case %d (n=%d, maxDenseScores %d): engine and reference differ", c, in.N, maxDenseScores)
		}
	}
}

// TestLargeSubnetMemory: a 65535-uid subnet in which every uid holds stake,
// a permit and a weight runs in bounded memory; the dense n × k score matrix
// alone would need 34 GB. Only with TAOBOX_LONG=1 (it takes a minute).
func TestLargeSubnetMemory(t *testing.T) {
	if os.Getenv("TAOBOX_LONG") == "" {
		t.Skip("TAOBOX_LONG=1 runs it")
	}
	const n = MaxUIDs
	in := Input{N: n, LastUpdate: make([]uint64, n), BlockAtRegistration: make([]uint64, n),
		AlphaStake: make([]uint64, n), TaoStake: make([]uint64, n), OwnerUID: -1,
		MaxAllowedValidators: 64, Kappa: 32767, BondsPenalty: 65535, BondsMovingAverage: 900_000,
		Weights: make([][]Entry, n), Bonds: make([][]Entry, n), RaoEmission: 1_000_000_000}
	in.ValidatorPermit = make([]bool, n)
	in.CurrentBlock, in.ActivityCutoffBlocks = 2, 10
	for i := range n {
		in.LastUpdate[i] = 1 // after registration at block 0: weights count
		in.AlphaStake[i] = 1
		in.ValidatorPermit[i] = true
		in.Weights[i] = []Entry{{uint16((i + 1) % n), 65535}}
	}
	out, err := Epoch(&in)
	if err != nil {
		t.Fatal(err)
	}
	// Every uid is weighted by one uid holding 1/n of the stake, far below
	// kappa, so consensus is 0 everywhere; the point is that it finishes.
	for j, c := range out.Consensus {
		if c != 0 {
			t.Fatalf("consensus[%d] = %d, want 0", j, c)
		}
	}
}
