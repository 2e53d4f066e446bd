package consensus

import (
	"math"
	"testing"

	"taobox/chain/types"
)

func id(b byte) types.AccountID { return types.AccountID{b} }

func mustSet(t testing.TB, stakes ...uint64) *ValidatorSet {
	t.Helper()
	var vals []Validator
	for i, s := range stakes {
		vals = append(vals, Validator{ID: id(byte('A' + i)), Stake: s})
	}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func sequence(vs *ValidatorSet, k int) string {
	vs = vs.Copy()
	var out []byte
	for i := 0; i < k; i++ {
		vs.IncrementProposerPriority(1)
		out = append(out, vs.Proposer().ID[0])
	}
	return string(out)
}

func TestProposerVectors(t *testing.T) {
	for _, tc := range []struct {
		stakes []uint64
		want   string
	}{
		{[]uint64{1, 3}, "BABBBABB"},
		{[]uint64{40, 30, 20, 10}, "ABCABDACBAABCABDACBA"},
		{[]uint64{1, 1, 1, 1}, "ABCDABCD"},
	} {
		if got := sequence(mustSet(t, tc.stakes...), len(tc.want)); got != tc.want {
			t.Errorf("stakes %v: got %s, want %s", tc.stakes, got, tc.want)
		}
	}
	// Priorities after steps 1, 5 and 10 of the W vector (spec §4).
	vs := mustSet(t, 40, 30, 20, 10)
	check := func(step int, want []int64) {
		t.Helper()
		for i, w := range want {
			if p := vs.At(i).Priority; p != w {
				t.Errorf("after step %d: priority[%d]=%d, want %d", step, i, p, w)
			}
		}
	}
	for s := 1; s <= 10; s++ {
		vs.IncrementProposerPriority(1)
		switch s {
		case 1:
			check(1, []int64{-60, 30, 20, 10})
		case 5:
			check(5, []int64{0, -50, 0, 50})
		case 10:
			check(10, []int64{0, 0, 0, 0})
		}
	}
}

// Rotation frequency is proportional to stake.
func TestProposerFrequency(t *testing.T) {
	stakes := []uint64{7, 5, 3, 2, 1, 1}
	vs := mustSet(t, stakes...)
	const rounds = 19 * 100
	count := map[byte]int{}
	for _, c := range []byte(sequence(vs, rounds)) {
		count[c]++
	}
	for i, s := range stakes {
		if got, want := count[byte('A'+i)], int(s)*100; got != want {
			t.Errorf("validator %c: %d turns, want %d", 'A'+i, got, want)
		}
	}
}

// A jump of r increments from the height's base is the proposer the node
// uses for round r (scenario 32).
func TestProposerJumpMatchesNode(t *testing.T) {
	vs := mustSet(t, 40, 30, 20, 10)
	n, err := NewNode(Config{Validators: vs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := vs.Copy()
	base.IncrementProposerPriority(1)
	for r := uint32(0); r < 30; r++ {
		c := base.Copy()
		c.IncrementProposerPriority(int(r))
		if n.Proposer(r) != c.Proposer().ID {
			t.Fatalf("round %d: node %x, jump %x", r, n.Proposer(r)[0], c.Proposer().ID[0])
		}
	}
}

func TestValidatorSetLimits(t *testing.T) { // scenario 33
	if _, err := NewValidatorSet([]Validator{{ID: id(1), Stake: MaxTotalStake}, {ID: id(2), Stake: 1}}); err == nil {
		t.Error("total above MaxTotalStake accepted")
	}
	if _, err := NewValidatorSet([]Validator{{ID: id(1), Stake: 0}}); err == nil {
		t.Error("zero stake accepted")
	}
	if _, err := NewValidatorSet([]Validator{{ID: id(1), Stake: 1}, {ID: id(1), Stake: 2}}); err == nil {
		t.Error("duplicate accepted")
	}
	vs := mustSet(t, MaxTotalStake/2, MaxTotalStake/2)
	vs.vals[0].Priority = math.MaxInt64
	vs.vals[1].Priority = math.MinInt64
	for i := 0; i < 100; i++ {
		vs.IncrementProposerPriority(3) // must not panic
	}
	if !TwoThirds(math.MaxUint64, math.MaxUint64) || TwoThirds(2, 3) || !TwoThirds(3, 4) || OneThird(1, 3) || !OneThird(2, 4) {
		t.Error("threshold arithmetic")
	}
}
