package dashboard

import (
	"math"
	"math/rand/v2"
	"testing"

	"taobox/chain/node"
	"taobox/chain/types"
)

func acct(i int) types.AccountID {
	var a types.AccountID
	a[0], a[1], a[31] = byte(i), byte(i>>8), 0xa5
	return a
}

// neuron is a compact test neuron: uid, emission, registered_at.
type neuron struct {
	uid      uint16
	emission uint64
	reg      uint64
}

func metagraph(block uint64, ns ...neuron) *node.MetagraphInfo {
	mg := &node.MetagraphInfo{Netuid: 1, Block: block}
	for _, n := range ns {
		mg.Neurons = append(mg.Neurons, node.NeuronInfo{UID: n.uid, Hotkey: acct(int(n.uid)), Emission: n.emission, RegisteredAt: n.reg, LastUpdate: n.reg})
	}
	return mg
}

func subnet(owner types.AccountID, hp map[string]uint64) *node.SubnetInfo {
	return &node.SubnetInfo{Netuid: 1, OwnerHotkey: owner, Hyperparams: hp}
}

func TestEvictions(t *testing.T) {
	type want struct {
		immune                bool
		left                  uint64
		rank, regs, prospRank int
	}
	for _, tc := range []struct {
		name  string
		mg    *node.MetagraphInfo
		sn    *node.SubnetInfo
		wants []want // by uid order of mg
	}{
		{
			"full subnet: lowest emission first, owner never",
			metagraph(1000, neuron{0, 0, 1}, neuron{1, 50, 10}, neuron{2, 10, 20}, neuron{3, 30, 30}),
			subnet(acct(0), map[string]uint64{hpImmunity: 100, hpMaxUIDs: 4}),
			[]want{{}, {rank: 3, regs: 3}, {rank: 1, regs: 1}, {rank: 2, regs: 2}},
		},
		{
			"ties: earlier registration, then lower uid",
			metagraph(1000, neuron{0, 5, 40}, neuron{1, 5, 20}, neuron{2, 5, 20}, neuron{3, 4, 90}),
			subnet(acct(99), map[string]uint64{hpImmunity: 100, hpMaxUIDs: 4}),
			[]want{{rank: 4, regs: 4}, {rank: 2, regs: 2}, {rank: 3, regs: 3}, {rank: 1, regs: 1}},
		},
		{
			// The next block is 1001. Registered at 901, a uid is immune
			// while block-901 < 100, so no longer in block 1001; at 902
			// it is, for that one block.
			"immunity boundary",
			metagraph(1000, neuron{0, 7, 901}, neuron{1, 7, 902}, neuron{2, 1, 903}, neuron{3, 9, 1000}),
			subnet(acct(99), map[string]uint64{hpImmunity: 100, hpMaxUIDs: 4}),
			[]want{{rank: 1, regs: 1}, {immune: true, left: 1, prospRank: 2}, {immune: true, left: 2, prospRank: 1}, {immune: true, left: 99, prospRank: 2}},
		},
		{
			"free slots come first",
			metagraph(1000, neuron{0, 7, 1}, neuron{1, 3, 2}),
			subnet(acct(99), map[string]uint64{hpImmunity: 10, hpMaxUIDs: 8}),
			[]want{{rank: 2, regs: 8}, {rank: 1, regs: 7}},
		},
		{
			"max_allowed_uids unknown: ranks only",
			metagraph(1000, neuron{0, 7, 1}, neuron{1, 3, 2}),
			subnet(acct(99), map[string]uint64{hpImmunity: 10}),
			[]want{{rank: 2}, {rank: 1}},
		},
	} {
		ev := Evictions(tc.mg, tc.sn)
		if len(ev) != len(tc.wants) {
			t.Fatalf("%s: %d evictions for %d neurons", tc.name, len(ev), len(tc.wants))
		}
		for i, w := range tc.wants {
			e := ev[i]
			if e.Immune != w.immune || e.ImmunityLeft != w.left || e.Rank != w.rank || e.RegsUntilPruned != w.regs || e.ProspectiveRank != w.prospRank {
				t.Errorf("%s: uid %d: got %+v, want %+v", tc.name, tc.mg.Neurons[i].UID, e, w)
			}
		}
	}
	if Evictions(nil, nil) != nil {
		t.Error("Evictions(nil, nil) is not nil")
	}
}

// TestEvictionsMatchSimulation checks RegsUntilPruned against a direct
// simulation of chain/state's rule (burnedRegister + pruneCandidate) for
// registrations that all land in the next block: each appends while there
// is room, else replaces the non-immune non-owner uid with the lowest
// emission (then earliest registration, then lowest uid) by a new uid
// registered in that block (emission 0).
func TestEvictionsMatchSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for iter := range 300 {
		n := 1 + rng.IntN(12)
		maxUIDs := uint64(n + rng.IntN(3))
		immunity := uint64(rng.IntN(40))
		block := uint64(100 + rng.IntN(50))
		var ns []neuron
		for u := range n {
			ns = append(ns, neuron{uint16(u), uint64(rng.IntN(4)), block - uint64(rng.IntN(60))})
		}
		mg := metagraph(block, ns...)
		owner := acct(1000) // nobody
		if rng.IntN(2) == 0 {
			owner = acct(rng.IntN(n))
		}
		sn := subnet(owner, map[string]uint64{hpImmunity: immunity, hpMaxUIDs: maxUIDs})
		ev := Evictions(mg, sn)

		// Simulate registrations in blocks block+1, block+2, … (one each).
		type sim struct {
			uid      uint16
			hotkey   types.AccountID
			emission uint64
			reg      uint64
		}
		var cur []sim
		for _, nr := range mg.Neurons {
			cur = append(cur, sim{nr.UID, nr.Hotkey, nr.Emission, nr.RegisteredAt})
		}
		prunedAt := map[uint16]int{}
		h := block + 1
		for k := 1; k <= n+int(maxUIDs)+2; k++ {
			if uint64(len(cur)) < maxUIDs {
				cur = append(cur, sim{uint16(len(cur)), acct(5000 + k), 0, h})
				continue
			}
			best := -1
			for i, c := range cur {
				if c.hotkey == owner || h-c.reg < immunity {
					continue
				}
				if best < 0 || c.emission < cur[best].emission || (c.emission == cur[best].emission && c.reg < cur[best].reg) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			if _, done := prunedAt[cur[best].uid]; !done && cur[best].hotkey == acct(int(cur[best].uid)) {
				prunedAt[cur[best].uid] = k
			}
			cur[best] = sim{cur[best].uid, acct(5000 + k), 0, h}
		}
		for i, e := range ev {
			uid := mg.Neurons[i].UID
			if e.Rank == 0 && prunedAt[uid] != 0 {
				t.Fatalf("iter %d: uid %d (%+v) is immune or the owner's, but the simulation pruned it", iter, uid, e)
			}
			if got, want := e.RegsUntilPruned, prunedAt[uid]; got != want {
				t.Fatalf("iter %d: uid %d: RegsUntilPruned %d, simulation %d (eviction %+v, neurons %+v, max %d, immunity %d, block %d)",
					iter, uid, got, want, e, ns, maxUIDs, immunity, block)
			}
		}
	}
}

func TestAtRisk(t *testing.T) {
	for _, tc := range []struct {
		regs, k int
		want    bool
	}{{0, 3, false}, {1, 1, true}, {3, 3, true}, {4, 3, false}} {
		if got := (Eviction{RegsUntilPruned: tc.regs}).AtRisk(tc.k); got != tc.want {
			t.Errorf("AtRisk regs %d k %d = %v", tc.regs, tc.k, got)
		}
	}
}

func TestNextWeightWindow(t *testing.T) {
	for _, tc := range []struct {
		last, limit, head uint64
		at, in            uint64
	}{
		{0, 100, 50, 51, 1},     // never set: the next block
		{40, 0, 50, 51, 1},      // no limit
		{40, 11, 50, 51, 1},     // 51-40 = 11 >= 11: open
		{40, 12, 50, 52, 2},     // one block to wait
		{50, 100, 50, 150, 100}, // just set
		{10, 100, 500, 501, 1},  // long ago
	} {
		w := NextWeightWindow(tc.last, tc.limit, tc.head)
		if w.At != tc.at || w.In != tc.in || w.Open() != (tc.in == 1) {
			t.Errorf("NextWeightWindow(%d, %d, %d) = %+v, want at %d in %d", tc.last, tc.limit, tc.head, w, tc.at, tc.in)
		}
		// The chain's own predicate: the first legal block after head.
		legal := func(b uint64) bool { return tc.last == 0 || b-tc.last >= tc.limit }
		first := tc.head + 1
		for !legal(first) {
			first++
		}
		if w.At != first {
			t.Errorf("NextWeightWindow(%d, %d, %d).At = %d, the chain's rule says %d", tc.last, tc.limit, tc.head, w.At, first)
		}
	}
}

func TestNextEpoch(t *testing.T) {
	for _, tc := range []struct {
		tempo, last, head, want uint64
		ok                      bool
	}{
		{10, 100, 105, 110, true},
		{10, 100, 110, 111, true}, // due: runs in the next block
		{0, 100, 105, 0, false},
	} {
		got, ok := NextEpoch(&node.SubnetInfo{Tempo: tc.tempo, LastEpoch: tc.last}, tc.head)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NextEpoch(tempo %d, last %d, head %d) = %d, %v", tc.tempo, tc.last, tc.head, got, ok)
		}
	}
}

func TestRegistrationPrice(t *testing.T) {
	const tao = types.RaoPerTAO
	hp := func(min, max, mult uint64) map[string]uint64 {
		return map[string]uint64{hpMinBurn: min, hpMaxBurn: max, hpBurnMult: mult, hpHalfLife: 360}
	}
	for _, tc := range []struct {
		name      string
		burn      uint64
		hp        map[string]uint64
		afterNext uint64
	}{
		{"×1.26", tao, hp(tao/2000, 100*tao, 1260), 1260 * tao / 1000},
		{"clamped to max", 90 * tao, hp(tao/2000, 100*tao, 1260), 100 * tao},
		{"mult below 1000 counts as 1000", 2 * tao, hp(0, 100*tao, 500), 2 * tao},
		{"overflow goes to max", math.MaxUint64 / 2, hp(0, math.MaxUint64, 3000), math.MaxUint64},
		{"rounds down", 7, hp(0, 100*tao, 1260), 8}, // 8.82
		{"raised to min", 1, hp(100, 100*tao, 1000), 100},
		{"no multiplier known", 5 * tao, map[string]uint64{}, 5 * tao},
	} {
		p := RegistrationPrice(&node.SubnetInfo{Burn: tc.burn, Hyperparams: tc.hp})
		if p.Now != tc.burn || p.AfterNext != tc.afterNext {
			t.Errorf("%s: %+v, want now %d after %d", tc.name, p, tc.burn, tc.afterNext)
		}
	}
}

func TestHeadFinality(t *testing.T) {
	for _, tc := range []struct {
		json string
		want uint64
		ok   bool
	}{
		{`{"height":10}`, 0, false},
		{`{"height":10,"finalized":9}`, 9, true},
		{`{"height":10,"finalized":{"height":8,"hash":"00"}}`, 8, true},
		{`{"height":10,"finalized_height":7}`, 7, true},
		{`{"height":10,"finalized":null}`, 0, false},
		{`{"height":10,"finalized":"soon"}`, 0, false},
	} {
		h, err := DecodeHead([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got, ok := h.Finality(); got != tc.want || ok != tc.ok {
			t.Errorf("%s: Finality() = %d, %v", tc.json, got, ok)
		}
	}
	if _, err := DecodeHead(make([]byte, MaxHeadBytes+1)); err == nil {
		t.Error("an oversized head was accepted")
	}
	if _, err := DecodeHead([]byte(`{"height":"x"}`)); err == nil {
		t.Error("a malformed head was accepted")
	}
}

func FuzzDecodeHead(f *testing.F) {
	f.Add([]byte(`{"height":10,"finalized":{"height":8},"peers":3,"syncing":true,"sync_target":20}`))
	f.Add([]byte(`{"finalized":9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHead(data)
		if err != nil {
			return
		}
		h.Finality() // must not panic
	})
}
