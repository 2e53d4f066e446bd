package state

import (
	"context"
	"errors"
	"math"
	"testing"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// The tests in this file pin the rules of issue 3 that the per-call tests
// in state_test.go leave loose: every hyperparameter's bounds, the weight
// checks at their boundaries, the replacement order of a full subnet, the
// registration price's clamp and cap, fee-free calls, the exact epoch
// split, one engine call per block, the root network's top-k, governance's
// decision rules, and the rejections no signed transaction can reach.

// TestHyperparamBounds sets every owner-settable hyperparameter to each end
// of its range (accepted) and one past each end (refused). The bounds are
// written out here, from chain-rules.md §6.2 and docs/chain.md, not read
// from the code, so a changed bound fails this test.
func TestHyperparamBounds(t *testing.T) {
	const none = math.MaxUint64
	h := subnetHarness(t, 2) // 3 uids: the owner hotkey and two neurons
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamLiquidAlpha, Value: 1})
	// Rows run in order: a row's bounds may depend on the values the rows
	// above left (the alpha pair, the burn pair, uids and validators).
	rows := []struct {
		p      types.Hyperparam
		lo, hi uint64
	}{
		{types.ParamTempo, 10, 50_400},
		{types.ParamKappa, 0, 65_535},
		{types.ParamImmunityPeriod, 0, 65_535},
		{types.ParamMinAllowedWeights, 0, 256},
		{types.ParamMaxWeightLimit, 1, 65_535},
		{types.ParamWeightsVersion, 0, none},
		{types.ParamWeightsRateLimit, 0, 50_400},
		{types.ParamActivityCutoff, 1000, 50_000},
		{types.ParamMaxAllowedUIDs, 3, 256},       // at least the 3 registered uids
		{types.ParamMaxAllowedValidators, 1, 256}, // at most max_allowed_uids (256 now)
		{types.ParamBondsMovingAverage, 0, 975_000},
		{types.ParamBondsPenalty, 0, 65_535},
		{types.ParamYuma3, 0, 1},
		{types.ParamLiquidAlpha, 0, 1},         // ends on: the alphas need it
		{types.ParamAlphaLow, 1638, 58_982},    // up to alpha_high (default 58982)
		{types.ParamAlphaHigh, 58_982, 65_535}, // from alpha_low (now 58982)
		{types.ParamAlphaSteepness, 0, 32_767},
		{types.ParamCommitReveal, 0, 1},
		{types.ParamRevealPeriod, 1, 100},
		{types.ParamMaxBurn, 100_000_001, none}, // above 0.1 TAO and min_burn (0.0005 TAO)
		{types.ParamMinBurn, 0, 999_999_999},    // below 1 TAO and max_burn
		{types.ParamServingRateLimit, 0, 50_400},
		{types.ParamBurnHalfLife, 1, 36_100},
		{types.ParamBurnIncreaseMult, 1000, 3000},
	}
	covered := map[types.Hyperparam]bool{}
	set := func(p types.Hyperparam, v uint64) types.SetHyperparam {
		return types.SetHyperparam{Netuid: 1, Param: p, Value: v}
	}
	for _, row := range rows {
		covered[row.p] = true
		t.Run(row.p.String(), func(t *testing.T) {
			if row.lo > 0 {
				h.mustFail(0, set(row.p, row.lo-1), row.p.String())
			}
			if row.hi != none {
				h.mustFail(0, set(row.p, row.hi+1), row.p.String())
			}
			for _, v := range []uint64{row.lo, row.hi} {
				h.mustRun(0, set(row.p, v))
				s, _ := h.exec().subnet(1)
				if got, _ := HyperparamValue(&s.Hyper, row.p); got != v {
					t.Fatalf("%s = %d after setting %d", row.p, got, v)
				}
			}
		})
	}
	for p := types.ParamTempo; p.Valid(); p++ {
		if !covered[p] {
			t.Errorf("hyperparameter %s has no bounds row", p)
		}
	}
	// The relational bounds, each against the other's current value.
	h.mustRun(0, set(types.ParamMaxBurn, 2*tao))
	h.mustRun(0, set(types.ParamMinBurn, tao/2))
	h.mustFail(0, set(types.ParamMaxBurn, tao/2), "max_burn")   // not above min_burn
	h.mustRun(0, set(types.ParamMaxBurn, tao/2+1))              // just above
	h.mustFail(0, set(types.ParamMinBurn, tao/2+1), "min_burn") // not below max_burn
	h.mustRun(0, set(types.ParamMaxAllowedUIDs, 10))
	h.mustFail(0, set(types.ParamMaxAllowedValidators, 11), "max_allowed_validators")
	h.mustRun(0, set(types.ParamMaxAllowedValidators, 10))
	h.mustRun(0, set(types.ParamLiquidAlpha, 0))
	h.mustFail(0, set(types.ParamAlphaHigh, 60_000), "liquid alpha is off")
}

// permitHarness is subnetHarness(3) with uid 1 (hotkey 10) staked and
// through one epoch, so it holds a validator permit.
func permitHarness(t testing.TB) *harness {
	h := subnetHarness(t, 3) // uids 1..3 = hotkeys 10..12
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 100 * tao})
	h.advance(12)
	if nr, _ := h.exec().neuron(1, 1); !nr.Permit {
		t.Fatal("no permit after an epoch")
	}
	return h
}

// TestSetWeightsBoundaries: the rate limit passes at exactly
// last_update + weights_rate_limit (>=), the max weight limit applies to the
// normalised row, the version key passes when equal, and a self-weight is
// exempt from min_allowed_weights and from the max weight limit (its one
// entry normalises to 1).
func TestSetWeightsBoundaries(t *testing.T) {
	h := permitHarness(t) // weights_rate_limit 2
	sw := func(uids, ws []uint16, version uint64) types.SetWeights {
		return types.SetWeights{Netuid: 1, UIDs: uids, Weights: ws, VersionKey: version}
	}
	h.mustRun(10, sw([]uint16{2, 3}, []uint16{1, 1}, 0)) // at block b
	h.mustFail(10, sw([]uint16{2, 3}, []uint16{1, 1}, 0), "rate limit")
	h.mustRun(10, sw([]uint16{2, 3}, []uint16{1, 1}, 0)) // at b+2: 2 >= 2 passes

	// max_weight_limit 40000/65535 ≈ 0.61: 3:1 normalises to 0.75 (refused),
	// 1:1 to 0.5 (accepted).
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamMaxWeightLimit, Value: 40_000})
	h.mustFail(10, sw([]uint16{2, 3}, []uint16{3, 1}, 0), "max weight limit")
	h.mustRun(10, sw([]uint16{2, 3}, []uint16{5, 5}, 0))

	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamWeightsVersion, Value: 7})
	h.advance(1)
	h.mustFail(10, sw([]uint16{2, 3}, []uint16{1, 1}, 0), "version key") // 0 is not a wildcard
	h.mustRun(10, sw([]uint16{2, 3}, []uint16{1, 1}, 7))                 // equal passes
	h.advance(1)
	h.mustRun(10, sw([]uint16{2, 3}, []uint16{1, 1}, 8)) // newer passes

	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamMinAllowedWeights, Value: 3})
	h.advance(1)
	h.mustFail(10, sw([]uint16{2, 3}, []uint16{1, 1}, 7), "at least 3")
	h.mustRun(12, sw([]uint16{3}, []uint16{1}, 7)) // uid 3's self-weight: one entry, 1.0 > 0.61
	h.mustRun(10, sw([]uint16{1, 2, 3}, []uint16{1, 1, 1}, 7))
}

// TestCommitQueueLimit: at most 10 unrevealed commits per hotkey; the 11th
// is refused while none has expired.
func TestCommitQueueLimit(t *testing.T) {
	h := subnetHarness(t, 1) // hotkey 10 is uid 1
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamWeightsRateLimit, Value: 0})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamTempo, Value: 1000}) // no epoch: nothing expires
	for i := range 10 {
		h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte{byte(i)})})
	}
	h.mustFail(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte("11th"))}, "10 commits are pending")
}

// TestPruneCandidate: a full subnet replaces the non-immune uid with the
// lowest emission; ties go to the earliest registration, then the lowest
// uid; the owner hotkey and immune uids are never candidates.
func TestPruneCandidate(t *testing.T) {
	h := subnetHarness(t, 3) // uid 0 owner hotkey, uids 1..3
	h.advance(100)           // everyone is past the 20-block immunity
	type nr struct{ emission, registered uint64 }
	for _, tc := range []struct {
		name   string
		owner  uint64 // the owner hotkey's emission
		uids   [3]nr  // uids 1..3
		want   uint16
		wantOK bool
	}{
		{"lowest emission, though registered last", 0, [3]nr{{5, 10}, {3, 30}, {9, 20}}, 2, true},
		{"tie: earliest registration", 0, [3]nr{{5, 10}, {5, 8}, {5, 9}}, 2, true},
		{"tie on both: lowest uid", 0, [3]nr{{5, 10}, {4, 10}, {4, 10}}, 2, true},
		{"all equal: uid 1", 0, [3]nr{{5, 10}, {5, 10}, {5, 10}}, 1, true},
		{"the immune lowest is skipped", 0, [3]nr{{5, 10}, {0, 95}, {4, 10}}, 3, true},
		{"all immune", 0, [3]nr{{5, 90}, {0, 95}, {4, 99}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := h.exec()
			owner, _ := x.neuron(1, 0)
			owner.Emission, owner.RegisteredAt = tc.owner, 1
			x.putNeuron(1, 0, owner)
			for i, v := range tc.uids {
				n, _ := x.neuron(1, uint16(i+1))
				n.Emission, n.RegisteredAt = v.emission, v.registered
				x.putNeuron(1, uint16(i+1), n)
			}
			s, _ := x.subnet(1)
			got, ok := x.pruneCandidate(1, s)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Fatalf("pruneCandidate = %d, %v; want %d, %v (height %d, immunity %d)", got, ok, tc.want, tc.wantOK, x.height, s.Hyper.ImmunityPeriod)
			}
		})
	}
}

// TestBurnPriceClampAndCap: the price decays every block by the half-life
// down to min_burn, each registration multiplies it up to max_burn, the
// registrant pays the decayed price of its block, and max_price == price
// is accepted while one rao less is refused.
func TestBurnPriceClampAndCap(t *testing.T) {
	h := subnetHarness(t, 0)
	set := func(p types.Hyperparam, v uint64) {
		h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: p, Value: v})
	}
	set(types.ParamMinBurn, tao/4)
	set(types.ParamBurnHalfLife, 2)
	h.advance(20) // ten half-lives from 1 TAO: far below the floor
	if s, _ := h.exec().subnet(1); s.Burn != tao/4 {
		t.Fatalf("price %d after decay, want the floor %d", s.Burn, tao/4)
	}

	set(types.ParamBurnHalfLife, 36_100)
	set(types.ParamMinBurn, 500_000) // the price leaves the floor and decays slowly
	set(types.ParamBurnIncreaseMult, 3000)
	set(types.ParamMaxBurn, 2*tao)
	nextPrice := func() uint64 { // what a registration in the next block pays
		s, _ := h.exec().subnet(1)
		return min(max(mulQ32(s.Burn, decayFactor(s.Hyper.BurnHalfLife)), s.Hyper.MinBurn), s.Hyper.MaxBurn)
	}
	next := nextPrice()
	if next <= 500_000 || next >= tao/4 {
		t.Fatalf("the price %d should be between the floor and 0.25 TAO", next)
	}
	h.mustFail(2, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10), MaxPrice: next - 1}, "above your limit")
	next = nextPrice()
	free := h.free(3)
	h.mustRun(3, types.BurnedRegister{Netuid: 1, Hotkey: h.id(11), MaxPrice: next})
	if paid := free - h.free(3) - h.globals().Params.TransferFee; paid != next {
		t.Fatalf("paid %d, want the decayed price %d", paid, next)
	}
	if s, _ := h.exec().subnet(1); s.Burn != min(3*next, 2*tao) {
		t.Fatalf("price %d after a registration, want 3× %d clamped to %d", s.Burn, next, 2*tao)
	}
	for i := range 3 { // 0.75 → 2 (clamped) → 2 → 2
		h.mustRun(4, types.BurnedRegister{Netuid: 1, Hotkey: h.id(20 + i)})
	}
	if s, _ := h.exec().subnet(1); s.Burn != 2*tao {
		t.Fatalf("price %d, want the ceiling %d", s.Burn, 2*tao)
	}
}

// TestFeeFreeCalls: weights, commit/reveal, serve, take, root weights and
// votes pay no fee (an account with no balance can send them); every other
// call burns exactly the flat fee.
func TestFeeFreeCalls(t *testing.T) {
	h := permitHarness(t)
	h.mustRun(2, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalStakeThreshold, Value: 1}})
	fee := h.globals().Params.TransferFee
	if fee == 0 {
		t.Fatal("the test needs a non-zero fee")
	}
	h.advance(2)
	for _, tc := range []struct {
		signer int
		call   types.Call
		free   bool
	}{
		{10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{1, 1}}, true}, // hotkey 10 has no balance
		{11, types.Serve{Netuid: 1, Host: "127.0.0.1", Port: 9000}, true},
		{2, types.SetTake{Hotkey: h.id(10), Take: 100}, true},
		{2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{2}}, true},
		{5, types.Vote{Proposal: 0, Aye: false}, true}, // fails (no stake), still free
		{2, types.Transfer{To: h.id(5), Amount: tao}, false},
		{2, types.AddStake{Hotkey: h.id(10), Amount: tao}, false},
		{2, types.RemoveStake{Hotkey: h.id(10), Amount: tao}, false},
		{5, types.BurnedRegister{Netuid: 1, Hotkey: h.id(30)}, false},
		{5, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalStakeThreshold, Value: 2}}, false}, // fails (no stake), still pays
	} {
		burned, before := h.globals().Burned, h.free(tc.signer)
		h.run(tc.signer, tc.call)
		want := fee
		if tc.free {
			want = 0
		}
		if got := h.globals().Burned - burned; got != want {
			t.Errorf("%T burned %d, want %d", tc.call, got, want)
		}
		if tc.free && h.free(tc.signer) != before {
			t.Errorf("%T changed the signer's balance by %d", tc.call, before-h.free(tc.signer))
		}
		if tr, ok := tc.call.(types.Transfer); ok && before-h.free(tc.signer) != fee+tr.Amount {
			t.Errorf("a transfer of %d cost %d, want the amount and the fee %d", tr.Amount, before-h.free(tc.signer), fee)
		}
	}
	// Commit and reveal.
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	h.advance(2)
	burned := h.globals().Burned
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.CommitHash(h.id(10), 1, []uint16{2}, []uint16{1}, []byte("s"), 0)})
	s, _ := h.exec().subnet(1)
	for e0 := s.EpochIndex; s.EpochIndex == e0; s, _ = h.exec().subnet(1) {
		h.advance(1)
	}
	h.mustRun(10, types.RevealWeights{Netuid: 1, UIDs: []uint16{2}, Weights: []uint16{1}, Salt: []byte("s")})
	if h.globals().Burned != burned {
		t.Errorf("commit/reveal burned %d", h.globals().Burned-burned)
	}
}

// recordingEngine runs the real CPU engine and records every call.
type recordingEngine struct {
	inner yuma.Engine
	calls [][]yuma.Input
	outs  [][]yuma.Output
}

func (e *recordingEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	outs, err := e.inner.Epochs(ctx, ins)
	e.calls = append(e.calls, ins)
	e.outs = append(e.outs, outs)
	return outs, err
}

// TestDueEpochsRunInOneEngineCall: three subnets whose epochs fall on the
// same block as the root epoch run in one call of the batch engine (four
// inputs), and no block calls the engine more than once.
func TestDueEpochsRunInOneEngineCall(t *testing.T) {
	h := newHarness(t, testGenesis(8, 100_000*tao))
	rec := &recordingEngine{inner: yuma.NewCPUEngine(1)}
	h.env.Engine = rec
	for i := range 3 { // subnets 1..3, owners 0, 2, 4 (hotkeys 1, 3, 5)
		h.mustRun(2*i, types.RegisterNetwork{Hotkey: h.id(2*i + 1)})
	}
	// A root staker, so the root epoch (every 5 blocks) joins the batch.
	h.mustRun(0, types.AddStake{Hotkey: h.id(1), Amount: 10 * tao})
	h.mustRun(0, types.SetRootWeights{Hotkey: h.id(1), Netuids: []uint16{1, 2, 3}, Weights: []uint16{1, 1, 1}})
	for (h.height+1)%h.globals().Params.RootTempo != 0 {
		h.advance(1)
	}
	// Setting the tempo restarts each subnet's epoch clock: all three in one
	// block (a multiple of the root tempo) puts their next epochs on the same
	// block as a root epoch.
	var txs []types.Tx
	for i := range 3 {
		txs = append(txs, h.tx(2*i, types.SetHyperparam{Netuid: types.Netuid(i + 1), Param: types.ParamTempo, Value: 10}))
	}
	if err := h.block(txs...); err != nil {
		t.Fatal(err)
	}
	together := 0
	for range 25 {
		rec.calls = nil
		h.advance(1)
		if len(rec.calls) > 1 {
			t.Fatalf("block %d called the engine %d times", h.height, len(rec.calls))
		}
		epochs := map[types.Netuid]bool{}
		for _, ev := range h.events {
			if ev.Kind == types.EvEpoch && ev.Netuid != 0 {
				epochs[ev.Netuid] = true
			}
		}
		if len(epochs) > 0 && (len(rec.calls) != 1 || len(rec.calls[0]) < len(epochs)) {
			t.Fatalf("block %d: %d subnet epochs but engine calls %v", h.height, len(epochs), len(rec.calls))
		}
		if len(epochs) == 3 {
			together++
			if len(rec.calls[0]) != 4 {
				t.Fatalf("block %d: %d inputs in the engine call, want 3 subnets and the root graph", h.height, len(rec.calls[0]))
			}
		}
	}
	if together != 2 {
		t.Fatalf("the three subnets ran their epochs together in %d blocks, want 2 (tempo 10 over 25 blocks)", together)
	}
}

// TestEpochSplit checks one epoch's payout to the rao: the owner gets
// floor(pending·11796/65535) as free balance, the engine gets the rest;
// every uid's hotkey gains its server + validator emission as stake; a
// validator's dividends go first to its take, then pro rata to its
// stakers, the dust to the owner; issuance grows by exactly what is paid.
func TestEpochSplit(t *testing.T) {
	h := permitHarness(t)                                             // hotkey 10 (coldkey 2): 100 TAO, permit
	h.mustRun(6, types.AddStake{Hotkey: h.id(10), Amount: 300 * tao}) // a nominator
	h.mustRun(2, types.SetTake{Hotkey: h.id(10), Take: 6553})         // 10%
	h.mustRun(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	h.mustRun(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{3, 1}})
	rec := &recordingEngine{inner: yuma.NewCPUEngine(1)}
	h.env.Engine = rec
	checked := 0
	for range 40 {
		x := h.exec()
		var hot [4]uint64
		for uid := range uint16(4) {
			nr, _ := x.neuron(1, uid)
			hot[uid] = x.hotkeyStake(nr.Hotkey)
		}
		own, nom := h.stake(10, 2), h.stake(10, 6)
		ownerFree, issuance := h.free(0), h.globals().Issuance
		rec.calls, rec.outs = nil, nil
		h.advance(1)
		var in *yuma.Input
		var out *yuma.Output
		for i := range rec.calls {
			for j := range rec.calls[i] {
				if rec.calls[i][j].N == 4 { // subnet 1 (the root graph has 1 validator + 1 subnet)
					in, out = &rec.calls[i][j], &rec.outs[i][j]
				}
			}
		}
		if in == nil {
			continue
		}
		cut := h.free(0) - ownerFree
		if pending := cut + in.RaoEmission; cut != mulDiv(pending, 11796, 65535) || pending == 0 {
			t.Fatalf("owner cut %d of pending %d, want floor(18%%) = %d", cut, pending, mulDiv(pending, 11796, 65535))
		}
		paid := cut
		x = h.exec()
		for uid := range uint16(4) {
			nr, _ := x.neuron(1, uid)
			e := out.ServerEmission[uid] + out.ValidatorEmission[uid]
			if got := x.hotkeyStake(nr.Hotkey) - hot[uid]; got != e {
				t.Fatalf("uid %d gained %d stake, want server %d + validator %d", uid, got, out.ServerEmission[uid], out.ValidatorEmission[uid])
			}
			paid += e
		}
		if ie := h.globals().Issuance - issuance; ie != paid {
			t.Fatalf("issuance grew by %d, paid %d", ie, paid)
		}
		if se, ve := sum(out.ServerEmission), sum(out.ValidatorEmission); se+ve > in.RaoEmission || in.RaoEmission-(se+ve) > 8 ||
			diff(se, in.RaoEmission/2) > 8 || diff(ve, in.RaoEmission/2) > 8 {
			t.Fatalf("miners %d, validators %d of %d: want half each", se, ve, in.RaoEmission)
		}
		if out.ServerEmission[1] != 0 {
			t.Fatal("the validator earned incentive; the split check below assumes none")
		}
		ve := out.ValidatorEmission[1]
		rest := ve - mulDiv(ve, 6553, 65535)
		wantNom := mulDiv(rest, nom, own+nom)
		if got := h.stake(10, 6) - nom; got != wantNom {
			t.Fatalf("nominator got %d of dividends %d, want %d", got, ve, wantNom)
		}
		if got := h.stake(10, 2) - own; got != ve-wantNom {
			t.Fatalf("the hotkey's owner got %d, want take + share + dust %d", got, ve-wantNom)
		}
		if ve > 0 && wantNom > 0 {
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("only %d epochs paid dividends to the nominator", checked)
	}
}

func sum(v []uint64) (s uint64) {
	for _, x := range v {
		s += x
	}
	return s
}

func diff(a, b uint64) uint64 { return max(a, b) - min(a, b) }

// TestRootTopValidators: only the root_validators largest stakers' weights
// count. Stakes 1000 (weights subnet 1), 900 and 800 (subnet 2): with k = 2
// subnet 1 has the stake majority and the whole share; with k = 3 subnet 2
// has it.
func TestRootTopValidators(t *testing.T) {
	for _, tc := range []struct {
		k    uint64
		want types.Netuid
	}{{2, 1}, {3, 2}, {64, 2}} {
		g := testGenesis(8, 100_000*tao)
		g.Params.RootValidators = tc.k
		h := newHarness(t, g)
		h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
		h.mustRun(5, types.RegisterNetwork{Hotkey: h.id(20)})
		for i, amount := range []uint64{1000, 900, 800} {
			h.mustRun(2+i, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10 + i)})
			h.mustRun(2+i, types.AddStake{Hotkey: h.id(10 + i), Amount: amount * tao})
			n := uint16(2)
			if i == 0 {
				n = 1
			}
			h.mustRun(2+i, types.SetRootWeights{Hotkey: h.id(10 + i), Netuids: []uint16{n}, Weights: []uint16{1}})
		}
		h.advance(int(g.Params.RootTempo) + 1)
		sh, err := QueryShares(h.st)
		if err != nil {
			t.Fatal(err)
		}
		if len(sh) != 1 || sh[0].Netuid != tc.want || sh[0].Share == 0 {
			t.Errorf("root_validators %d: shares %v, want all to subnet %d", tc.k, sh, tc.want)
		}
	}
}

// TestGovernanceDecisions: the decision rules, each in its own chain.
// Stake: coldkey 2 has 40%, coldkeys 3, 4 and 5 20% each; quorum 33%.
func TestGovernanceDecisions(t *testing.T) {
	fw := types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: types.HashBytes([]byte("fw 2")), FirmwareVersion: "2.0.0"}
	param := types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalTransferFee, Value: 12345}
	type vote struct {
		coldkey int
		aye     bool
	}
	for _, tc := range []struct {
		name     string
		action   types.ProposalAction
		votes    []vote
		decideAt string // "vote" (the last vote's block), "deadline"
		passed   bool
	}{
		{"majority passes early", fw, []vote{{2, true}, {3, true}}, "vote", true},
		{"half nay fails early", param, []vote{{3, false}, {2, false}}, "vote", false},
		{"turnout over quorum, aye > nay: passes at the deadline", param, []vote{{2, true}, {3, false}}, "deadline", true},
		{"turnout under quorum: fails at the deadline", param, []vote{{3, true}}, "deadline", false},
		{"aye == nay: fails at the deadline", param, []vote{{3, true}, {4, false}}, "deadline", false},
		{"a changed vote replaces the old one", param, []vote{{2, false}, {2, true}}, "deadline", true},              // else 40% aye and 40% nay
		{"a vote changed to nay leaves the ayes", param, []vote{{3, true}, {3, false}, {2, true}}, "deadline", true}, // else 60% aye passes early
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testGenesis(8, 100_000*tao)
			g.Params.VotingPeriod = 10
			h := newHarness(t, g)
			h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
			for i, amount := range []uint64{400, 200, 200, 200} {
				h.mustRun(2+i, types.AddStake{Hotkey: h.id(1), Amount: amount * tao})
			}
			h.mustRun(2, types.Propose{Action: tc.action})
			start := h.height
			for _, v := range tc.votes {
				h.mustRun(v.coldkey, types.Vote{Proposal: 0, Aye: v.aye})
			}
			p, _, _ := QueryProposal(h.st, 0)
			if tc.decideAt == "deadline" {
				if p.Status != ProposalOpen {
					t.Fatalf("decided before the deadline: status %d (aye %d, nay %d)", p.Status, p.Aye, p.Nay)
				}
				h.advance(int(start + 10 - h.height))
				p, _, _ = QueryProposal(h.st, 0)
			}
			want := uint8(ProposalRejected)
			if tc.passed {
				want = ProposalPassed
			}
			if p.Status != want {
				t.Fatalf("status %d, want %d (aye %d, nay %d)", p.Status, want, p.Aye, p.Nay)
			}
			// A passed proposal is enacted in the block that decides it.
			enacted := false
			for _, ev := range h.events {
				enacted = enacted || ev.Kind == types.EvParamChanged || ev.Kind == types.EvFirmwareApproved
			}
			if enacted != tc.passed {
				t.Fatalf("enacted in the deciding block: %v, want %v", enacted, tc.passed)
			}
			x := h.exec()
			switch tc.action.Kind {
			case types.ActionSetParam:
				if got := x.globals().Params.TransferFee == 12345; got != tc.passed {
					t.Fatalf("transfer_fee %d", x.globals().Params.TransferFee)
				}
			case types.ActionApproveFirmware:
				v, ok := x.o.get(key(pFirmware, []byte("2.0.0")))
				if ok != tc.passed || ok && string(v) != string(fw.FirmwareHash[:]) {
					t.Fatalf("firmware approval record %x, %v", v, ok)
				}
			}
		})
	}
}

// TestGlobalParamBounds: proposals outside a global parameter's bounds are
// refused when proposed.
func TestGlobalParamBounds(t *testing.T) {
	h := subnetHarness(t, 1)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 1000 * tao})
	for _, tc := range []struct {
		p    types.GlobalParam
		v    uint64
		want string
	}{
		{types.GlobalTransferFee, tao + 1, "transfer_fee"},
		{types.GlobalMaxDelegateTake, 65536, "max_delegate_take"},
		{types.GlobalQuorumPermille, 1001, "quorum"},
		{types.GlobalVotingPeriod, 9, "voting_period"},
		{types.GlobalVotingPeriod, 1_000_001, "voting_period"},
		{types.GlobalSubnetLimit, types.MaxSubnetID + 1, "subnet_limit"},
	} {
		h.mustFail(2, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: tc.p, Value: tc.v}}, tc.want)
	}
	// The bounds themselves are accepted (one open proposal per coldkey, so
	// each is checked directly).
	for _, tc := range []struct {
		p types.GlobalParam
		v uint64
	}{{types.GlobalTransferFee, tao}, {types.GlobalMaxDelegateTake, 65535}, {types.GlobalQuorumPermille, 1000},
		{types.GlobalVotingPeriod, 10}, {types.GlobalVotingPeriod, 1_000_000}, {types.GlobalSubnetLimit, types.MaxSubnetID}} {
		if err := checkGlobalParam(tc.p, tc.v); err != nil {
			t.Errorf("%s = %d refused: %v", tc.p, tc.v, err)
		}
	}
}

// TestDefensiveRejections: the reasons no correctly signed transaction can
// reach (types.ValidateCall or genesis validation stops them first) still
// hold when the state machine is called directly.
func TestDefensiveRejections(t *testing.T) {
	h := permitHarness(t)
	x := h.exec()
	x.height = h.height + 1
	hk10, ck2 := h.id(10), h.id(2)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"unknown call", func() error { return x.dispatch(ck2, nil) }, "unknown call"},
		{"no call", func() error { _, err := x.checkTx(&types.Tx{ValidUntil: x.height}); return err }, "no call"},
		{"weights of unequal length", func() error {
			_, _, err := x.checkWeights(hk10, 1, []uint16{1, 2}, []uint16{1}, 0, false)
			return err
		}, "2 uids but 1 weights"},
		{"root weights of unequal length", func() error {
			return x.setRootWeights(ck2, types.SetRootWeights{Hotkey: hk10, Netuids: []uint16{1}, Weights: nil})
		}, "1 netuids but 0 weights"},
		{"unknown hyperparameter", func() error {
			return x.setHyperparam(h.id(0), types.SetHyperparam{Netuid: 1, Param: types.Hyperparam(200)})
		}, "unknown hyperparameter"},
		{"unknown global parameter", func() error { return checkGlobalParam(types.GlobalParam(200), 0) }, "unknown global parameter"},
		{"unknown proposal action", func() error {
			return x.propose(ck2, types.Propose{Action: types.ProposalAction{Kind: types.ActionKind(99)}})
		}, "unknown proposal action"},
		{"firmware without a version", func() error {
			return x.propose(ck2, types.Propose{Action: types.ProposalAction{Kind: types.ActionApproveFirmware}})
		}, "needs a version"},
		{"no free subnet id", func() error {
			g := x.globals()
			g.Params.SubnetLimit = 2 * types.MaxSubnetID // genesis and governance keep it <= MaxSubnetID
			x.putGlobals(g)
			var all netuids
			for n := types.Netuid(1); n <= types.MaxSubnetID; n++ {
				all = append(all, n)
			}
			x.o.store(key(pSubnets), &all)
			return x.registerNetwork(h.id(3), types.RegisterNetwork{Hotkey: h.id(33)})
		}, "no free subnet id"},
		{"a subnet that admits no uids", func() error {
			s, _ := x.subnet(1)
			s.Hyper.MaxAllowedUIDs = 0
			x.putSubnet(1, s)
			return x.burnedRegister(h.id(3), types.BurnedRegister{Netuid: 1, Hotkey: h.id(30)})
		}, "admits no uids"},
	} {
		err := tc.err()
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestValidityWindowEdges: a transaction is includable from its signing up
// to and including block valid_until, which may be at most 256 blocks past
// the block that includes it.
func TestValidityWindowEdges(t *testing.T) {
	h := newHarness(t, testGenesis(2, 10*tao))
	for _, tc := range []struct {
		name  string
		ahead uint64 // valid_until - the including block's height
	}{{"valid until this block", 0}, {"valid until 256 blocks ahead", types.MaxValidityWindow}} {
		tx := h.tx(0, types.Transfer{To: h.id(1), Amount: 1})
		tx.ValidUntil = h.height + 1 + tc.ahead
		tx.Sign(h.keys[h.id(0)], h.env.ChainID)
		if err := h.block(tx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if types.MaxValidityWindow != 256 {
		t.Fatalf("MaxValidityWindow = %d, the issue says 256", types.MaxValidityWindow)
	}
}

// TestGenesisGlobalParamBounds: a genesis cannot start a global parameter
// outside the bounds governance keeps it in.
func TestGenesisGlobalParamBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*GlobalParams)
	}{
		{"transfer_fee", func(p *GlobalParams) { p.TransferFee = tao + 1 }},
		{"max_delegate_take", func(p *GlobalParams) { p.MaxDelegateTake = 65536 }},
		{"voting_period", func(p *GlobalParams) { p.VotingPeriod = 9 }},
		{"subnet_limit", func(p *GlobalParams) { p.SubnetLimit = types.MaxSubnetID + 1 }},
	} {
		g := testGenesis(1, tao)
		tc.edit(&g.Params)
		if err := g.Validate(); err == nil || !contains(err.Error(), "params."+tc.name) {
			t.Errorf("%s out of bounds: Validate = %v", tc.name, err)
		}
	}
	if err := testGenesis(1, tao).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestPendingAccrues: every block the reward (halved by issuance plus what
// is pending) accrues to each subnet by its root share, and nothing is
// minted until an epoch credits it.
func TestPendingAccrues(t *testing.T) {
	h := subnetHarness(t, 1)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 100 * tao})
	h.mustRun(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamTempo, Value: 1000}) // no subnet epoch below
	h.advance(int(h.globals().Params.RootTempo) + 1)
	sh, _ := QueryShares(h.st)
	if len(sh) != 1 || sh[0].Netuid != 1 || sh[0].Share != 65535 {
		t.Fatalf("shares %v, want all to subnet 1", sh)
	}
	for range 5 {
		s, _ := h.exec().subnet(1)
		g := h.globals()
		reward := BlockReward(g.Issuance + s.Pending)
		h.advance(1)
		s2, _ := h.exec().subnet(1)
		if got, want := s2.Pending-s.Pending, mulDiv(reward, 65535, 65535); got != want || want != tao {
			t.Fatalf("pending grew by %d, want %d (reward %d)", got, want, reward)
		}
		if h.globals().Issuance != g.Issuance {
			t.Fatal("issuance grew before an epoch credited the reward")
		}
		if h.events[0].Kind != types.EvBlockReward || h.events[0].Amount != reward {
			t.Fatalf("first event %+v, want the block reward %d", h.events[0], reward)
		}
	}
}

// TestTakeDefaults: a hotkey's take is 18% (11796/65535) until its owner
// sets one, and 18% is also the most it may set.
func TestTakeDefaults(t *testing.T) {
	h := subnetHarness(t, 1)
	if got := h.exec().take(h.id(10)).Take; got != 11796 {
		t.Fatalf("default take %d, want 11796", got)
	}
	if got := h.globals().Params.MaxDelegateTake; got != 11796 {
		t.Fatalf("max take %d, want 11796", got)
	}
	h.mustFail(2, types.SetTake{Hotkey: h.id(10), Take: 11797}, "above the maximum")
	h.mustFail(2, types.SetTake{Hotkey: h.id(10), Take: 11796}, "already")
}

// failingEngine stands in for an engine whose device failed.
type failingEngine struct{}

func (failingEngine) Epochs(context.Context, []yuma.Input) ([]yuma.Output, error) {
	return nil, errors.New("device lost")
}

// TestEngineFailureFailsTheBlock: when the engine fails, the block that
// needed it fails with the engine's error (the node retries or stops; it
// never commits a block without its epochs).
func TestEngineFailureFailsTheBlock(t *testing.T) {
	h := subnetHarness(t, 1)
	h.env.Engine = failingEngine{}
	for range 20 {
		res, err := ApplyBlock(context.Background(), h.st, h.env, h.height+1, nil)
		if err != nil {
			if !contains(err.Error(), "device lost") || !contains(err.Error(), "epochs of block") {
				t.Fatalf("got %v, want the engine's error with the block", err)
			}
			return
		}
		h.st.Apply(res.Changes)
		h.height++
	}
	t.Fatal("no epoch was due in 20 blocks")
}

// TestEpochInputFromState: the engine's input for a subnet is the state
// (yuma-epoch.md §3): per uid its hotkey's total stake, last update,
// registration block, permit, stored weights and bonds; the subnet's
// hyperparameters; the owner's uid; and the pending emission less the
// owner's cut.
func TestEpochInputFromState(t *testing.T) {
	h := permitHarness(t)
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamKappa, Value: 40_000})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamBondsPenalty, Value: 1234})
	h.mustRun(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{3, 1}})
	h.mustRun(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	h.advance(int(h.globals().Params.RootTempo)) // a root epoch gives subnet 1 its share
	rec := &recordingEngine{inner: yuma.NewCPUEngine(1)}
	h.env.Engine = rec
	for range 30 {
		before := MemState{}
		for k, v := range h.st {
			before[k] = v
		}
		x := &exec{o: newOverlay(before), env: h.env, height: h.height} // the state before the block
		s, _ := x.subnet(1)
		var share uint64
		if sh, _ := QueryShares(h.st); len(sh) == 1 {
			share = uint64(sh[0].Share)
		}
		rec.calls = nil
		h.advance(1)
		if len(rec.calls) == 0 || rec.calls[0][0].N != int(s.N) {
			continue
		}
		in := rec.calls[0][0]
		hp := &s.Hyper
		if in.Tempo != hp.Tempo || in.Kappa != uint16(hp.Kappa) || in.BondsPenalty != uint16(hp.BondsPenalty) ||
			in.BondsMovingAverage != hp.BondsMovingAverage || in.MaxAllowedValidators != uint16(hp.MaxAllowedValidators) ||
			in.Yuma3 != (hp.Yuma3 != 0) || in.LiquidAlpha != (hp.LiquidAlpha != 0) || in.CommitReveal != (hp.CommitReveal != 0) ||
			in.ActivityCutoffBlocks != activityCutoff(hp) || in.StakeThreshold != x.globals().Params.StakeThreshold ||
			in.CurrentBlock != h.height || in.LastMechanismStepBlock != s.LastStep || in.OwnerUID != 0 {
			t.Fatalf("subnet parameters not carried into the input: %+v", in)
		}
		pending := s.Pending + mulDiv(BlockReward(x.globals().Issuance+s.Pending), share, 65535) // this block's part
		if cut := mulDiv(pending, 11796, 65535); in.RaoEmission != pending-cut || pending == 0 {
			t.Fatalf("rao emission %d, want pending %d less the cut %d", in.RaoEmission, pending, cut)
		}
		for uid := range uint16(s.N) {
			nr, _ := x.neuron(1, uid)
			var w, b entries
			x.o.load(key(pWeights, u16b(1), u16b(uid)), &w)
			x.o.load(key(pBonds, u16b(1), u16b(uid)), &b)
			if in.AlphaStake[uid] != x.hotkeyStake(nr.Hotkey) || in.LastUpdate[uid] != nr.LastUpdate ||
				in.BlockAtRegistration[uid] != nr.RegisteredAt || in.ValidatorPermit[uid] != nr.Permit ||
				len(in.Weights[uid]) != len(w) || len(in.Bonds[uid]) != len(b) {
				t.Fatalf("uid %d: input stake %d last %d reg %d permit %v weights %v bonds %v; state stake %d last %d reg %d permit %v weights %v bonds %v", uid, in.AlphaStake[uid], in.LastUpdate[uid], in.BlockAtRegistration[uid], in.ValidatorPermit[uid], in.Weights[uid], in.Bonds[uid], x.hotkeyStake(nr.Hotkey), nr.LastUpdate, nr.RegisteredAt, nr.Permit, w, b)
			}
			for j := range w {
				if in.Weights[uid][j] != w[j] {
					t.Fatalf("uid %d: weights %v, stored %v", uid, in.Weights[uid], w)
				}
			}
		}
		if len(in.Weights[1]) != 2 {
			t.Fatal("the validator's weights are missing from the input")
		}
		return
	}
	t.Fatal("no epoch of subnet 1 in 30 blocks")
}
