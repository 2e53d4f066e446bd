package state

import (
	"reflect"
	"testing"

	"taobox/chain/types"
)

func TestNextAuthorities(t *testing.T) {
	a, b, c, d := types.AccountID{1}, types.AccountID{2}, types.AccountID{3}, types.AccountID{4}
	cands := []GenesisAuthority{{Hotkey: c, Power: 1}, {Hotkey: a, Power: 1}, {Hotkey: b, Power: 0}, {Hotkey: d, Power: 0}}
	prev := []Authority{{Hotkey: a, Weight: 7}}
	stakes := func(m map[types.AccountID]uint64) func(types.AccountID) uint64 {
		return func(id types.AccountID) uint64 { return m[id] }
	}
	for _, tc := range []struct {
		name  string
		cands []GenesisAuthority
		stake map[types.AccountID]uint64
		k     int
		want  []Authority
	}{
		{"power only, ties by hotkey", cands, nil, 64, []Authority{{a, 1}, {c, 1}}},
		{"stake adds to power", cands, map[types.AccountID]uint64{c: 10, b: 5}, 64, []Authority{{c, 11}, {b, 5}, {a, 1}}},
		{"top k", cands, map[types.AccountID]uint64{c: 10, b: 5, d: 6}, 2, []Authority{{c, 11}, {d, 6}}},
		{"tie at the cut keeps the lower hotkey", cands, map[types.AccountID]uint64{b: 1, d: 1}, 3, []Authority{{a, 1}, {b, 1}, {c, 1}}},
		{"zero weight dropped", []GenesisAuthority{{Hotkey: b}, {Hotkey: d, Power: 2}}, nil, 64, []Authority{{d, 2}}},
		{"never empty: keeps prev", []GenesisAuthority{{Hotkey: b}, {Hotkey: d}}, nil, 64, prev},
		{"no candidates: keeps prev", nil, nil, 64, prev},
		{"saturates and rescales under the cap", []GenesisAuthority{{Hotkey: a, Power: maxAuthorityWeight}, {Hotkey: b, Power: maxAuthorityWeight}},
			map[types.AccountID]uint64{a: 1 << 62}, 64, []Authority{{a, maxAuthorityWeight >> 1}, {b, maxAuthorityWeight >> 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NextAuthorities(tc.cands, stakes(tc.stake), tc.k, prev)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NextAuthorities = %v, want %v", got, tc.want)
			}
			var total uint64
			for _, x := range got {
				total += x.Weight
			}
			if total > maxAuthorityWeight {
				t.Errorf("total weight %d above the cap", total)
			}
		})
	}
}

func TestGenesisAuthorities(t *testing.T) {
	g := &Genesis{ChainName: "auth", Params: DefaultParams(), SubnetDefaults: DefaultSubnetHyperparams()}
	legacy := g.ID()
	if len(GenesisSet(g)) != 0 || g.EpochBlocks() != DefaultAuthorityEpoch || g.AuthorityCap() != DefaultMaxAuthorities {
		t.Fatal("legacy genesis defaults")
	}
	g.Authorities = []GenesisAuthority{{Hotkey: types.AccountID{9}, Power: 3}}
	if g.ID() == legacy {
		t.Error("authorities do not change the chain id")
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := GenesisSet(g); len(got) != 1 || got[0].Weight != 3 {
		t.Errorf("GenesisSet = %v", got)
	}
	g.Authorities = append(g.Authorities, GenesisAuthority{Hotkey: types.AccountID{7}}) // a candidate only
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := GenesisSet(g); len(got) != 1 {
		t.Errorf("a zero-power candidate is in the genesis set: %v", got)
	}
	for _, bad := range [][]GenesisAuthority{
		{{Hotkey: types.AccountID{9}, Power: 0}},
		{{Hotkey: types.AccountID{9}, Power: 0}, {Hotkey: types.AccountID{8}, Power: 0}},
		{{Hotkey: types.AccountID{9}, Power: 1}, {Hotkey: types.AccountID{9}, Power: 1}},
		{{Hotkey: types.AccountID{8}, Power: maxAuthorityWeight}, {Hotkey: types.AccountID{9}, Power: 1}},
	} {
		g.Authorities = bad
		if err := g.Validate(); err == nil {
			t.Errorf("Validate accepted authorities %v", bad)
		}
	}
}

// TestQueryNextAuthorities: stake delegated through real transactions moves
// a zero-power candidate into the set.
func TestQueryNextAuthorities(t *testing.T) {
	g := testGenesis(2, 1000*types.RaoPerTAO)
	cand, a, b := types.AccountID{0xcc}, types.AccountID{0xaa}, types.AccountID{0xbb}
	g.Authorities = []GenesisAuthority{{Hotkey: a, Power: 5}, {Hotkey: b, Power: 5}, {Hotkey: cand}}
	g.MaxAuthorities = 2
	h := newHarness(t, g)
	prev := GenesisSet(g)
	got, err := QueryNextAuthorities(h.st, g, prev, g.EpochBlocks())
	if err != nil || !reflect.DeepEqual(got, prev) {
		t.Fatalf("without stake: %v %v, want the genesis set %v", got, err, prev)
	}
	if err := h.block(h.tx(0, types.RegisterNetwork{Hotkey: cand})); err != nil {
		t.Fatal(err)
	}
	if err := h.block(h.tx(0, types.AddStake{Hotkey: cand, Amount: types.RaoPerTAO})); err != nil {
		t.Fatal(err)
	}
	got, err = QueryNextAuthorities(h.st, g, prev, g.EpochBlocks())
	want := []Authority{{cand, types.RaoPerTAO}, {a, 5}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after staking: %v %v, want %v", got, err, want)
	}
}
