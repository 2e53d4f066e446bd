package state

import (
	"bytes"
	"maps"
	"reflect"
	"strings"
	"testing"

	"taobox/chain/types"
)

// evidenceBlock applies one block that commits evs (and no transactions).
func (h *harness) evidenceBlock(evs ...Equivocation) error {
	h.env.Evidence = evs
	defer func() { h.env.Evidence = nil }()
	return h.block()
}

// TestApplyEvidence: which equivocations a block may commit, what it
// records and emits, and that each offence counts once.
func TestApplyEvidence(t *testing.T) {
	a, b := types.AccountID{0xaa}, types.AccountID{0xbb}
	first := Equivocation{Offender: a, Height: 1, Round: 0, Type: 1}
	for _, tc := range []struct {
		name  string
		prior []Equivocation // committed by block 1
		evs   []Equivocation // then block 2
		want  string         // "" accepts
	}{
		{"valid", nil, []Equivocation{first}, ""},
		{"two offences of one validator", nil, []Equivocation{first, {Offender: a, Height: 1, Round: 0, Type: 2}}, ""},
		{"two validators", nil, []Equivocation{first, {Offender: b, Height: 2, Round: 3, Type: 0x20}}, ""},
		{"duplicate of an earlier block", []Equivocation{first}, []Equivocation{first}, "committed by block 1 already"},
		{"duplicate in one block", nil, []Equivocation{first, first}, "repeats an offence"},
		{"no offender", nil, []Equivocation{{Height: 1, Type: 1}}, "names no offender"},
		{"height zero", nil, []Equivocation{{Offender: a, Type: 1}}, "heights 1 to 2"},
		{"future height", nil, []Equivocation{{Offender: a, Height: 3, Type: 1}}, "heights 1 to 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testGenesis(2, 1000*types.RaoPerTAO))
			if err := h.evidenceBlock(tc.prior...); err != nil {
				t.Fatal(err)
			}
			before := maps.Clone(h.st)
			err := h.evidenceBlock(tc.evs...)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("ApplyBlock = %v, want an error mentioning %q", err, tc.want)
				}
				if !maps.EqualFunc(before, h.st, bytes.Equal) {
					t.Fatal("a refused block changed the state")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []Equivocation
			for _, ev := range h.events {
				if ev.Kind == types.EvEquivocation {
					if ev.TxIndex != -1 {
						t.Errorf("event at tx %d, want block level", ev.TxIndex)
					}
					got = append(got, Equivocation{Offender: ev.Account, Height: ev.Value, Round: uint32(ev.Amount), Type: uint8(ev.UID)})
				}
			}
			if !reflect.DeepEqual(got, tc.evs) {
				t.Fatalf("events %+v, want %+v", got, tc.evs)
			}
			for _, e := range tc.evs {
				if at, err := QueryEquivocation(h.st, e); err != nil || at != 2 {
					t.Errorf("QueryEquivocation(%+v) = %d %v, want block 2", e, at, err)
				}
				if at, err := QueryJail(h.st, e.Offender); err != nil || at != 2 {
					t.Errorf("QueryJail(%s) = %d %v, want block 2", e.Offender, at, err)
				}
			}
		})
	}
}

func TestJailed(t *testing.T) {
	for _, tc := range []struct {
		at, next, epoch, jail uint64
		want                  bool
	}{
		{0, 1, 10, 4, false},  // never jailed
		{5, 0, 10, 4, false},  // the offence's own epoch is not affected
		{5, 1, 10, 4, true},   // the next epoch
		{10, 4, 10, 4, true},  // block 10 is in epoch 0: epochs 1..4
		{10, 5, 10, 4, false}, // released
		{11, 5, 10, 4, true},  // block 11 is in epoch 1: epochs 2..5
		{5, 1, 10, 0, false},  // a zero period jails nobody (genesis uses the default)
	} {
		if got := Jailed(tc.at, tc.next, tc.epoch, tc.jail); got != tc.want {
			t.Errorf("Jailed(%d, %d, %d, %d) = %v, want %v", tc.at, tc.next, tc.epoch, tc.jail, got, tc.want)
		}
	}
}

// TestJailLeavesTheSet: an authority with evidence against it is left out
// of the next JailPeriod epochs' sets, then returns.
func TestJailLeavesTheSet(t *testing.T) {
	g := testGenesis(2, 1000*types.RaoPerTAO)
	a, b, c := types.AccountID{0xaa}, types.AccountID{0xbb}, types.AccountID{0xcc}
	g.Authorities = []GenesisAuthority{{Hotkey: a, Power: 5}, {Hotkey: b, Power: 5}, {Hotkey: c, Power: 5}}
	g.AuthorityEpoch = 2
	g.JailEpochs = 2
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, g)
	prev := GenesisSet(g)
	if err := h.evidenceBlock(Equivocation{Offender: b, Height: 1, Type: 2}); err != nil { // block 1, epoch 0
		t.Fatal(err)
	}
	without := []Authority{{a, 5}, {c, 5}}
	for _, tc := range []struct {
		epochEnd uint64
		want     []Authority
	}{
		{2, without}, // epoch 1
		{4, without}, // epoch 2
		{6, prev},    // epoch 3: released
	} {
		got, err := QueryNextAuthorities(h.st, g, prev, tc.epochEnd)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("set after block %d = %v %v, want %v", tc.epochEnd, got, err, tc.want)
		}
	}
	g2 := *g
	g2.JailEpochs = maxJailEpochs + 1
	if g2.Validate() == nil {
		t.Error("Validate accepted a jail period over its cap")
	}
	g2.JailEpochs = 0
	if g2.JailPeriod() != DefaultJailEpochs || g2.ID() == g.ID() {
		t.Error("the default jail period or the chain id's dependence on it is wrong")
	}
}
