package state

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"taobox/chain/types"
)

const tao = types.RaoPerTAO

func TestTransfer(t *testing.T) {
	h := newHarness(t, testGenesis(4, 100*tao))
	fee := h.globals().Params.TransferFee
	h.mustRun(0, types.Transfer{To: h.id(1), Amount: 5 * tao})
	if got, want := h.free(0), 95*tao-fee; got != want {
		t.Fatalf("sender has %d, want %d", got, want)
	}
	if got := h.free(1); got != 105*tao {
		t.Fatalf("recipient has %d", got)
	}
	if g := h.globals(); g.Burned != fee {
		t.Fatalf("burned %d, want the fee %d", g.Burned, fee)
	}
	h.mustRun(0, types.Transfer{To: h.id(9), Amount: 1}) // a new account
	for _, tc := range []struct {
		name string
		call types.Transfer
		want string
	}{
		{"zero", types.Transfer{To: h.id(1), Amount: 0}, "transfer of 0"},
		{"self", types.Transfer{To: h.id(0), Amount: 1}, "sender itself"},
		{"too much", types.Transfer{To: h.id(1), Amount: 1000 * tao}, "insufficient balance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.free(0)
			h.mustFail(0, tc.call, tc.want)
			if h.free(0) != before-fee {
				t.Fatalf("a failed call must cost exactly the fee")
			}
		})
	}
}

// TestInvalidTransactionsRejectBlock: what no honest proposer includes
// makes the block invalid, and the state does not move.
func TestInvalidTransactionsRejectBlock(t *testing.T) {
	h := newHarness(t, testGenesis(3, 10*tao))
	good := h.tx(0, types.Transfer{To: h.id(1), Amount: 1})
	cases := []struct {
		name string
		tx   func() types.Tx
		want string
	}{
		{"wrong nonce", func() types.Tx {
			tx := good
			tx.Nonce = 5
			tx.Sign(h.keys[h.id(0)], h.env.ChainID)
			return tx
		}, "nonce"},
		{"bad signature", func() types.Tx { tx := good; tx.Sig[0] ^= 1; return tx }, "signature"},
		{"other chain", func() types.Tx {
			tx := good
			tx.Sign(h.keys[h.id(0)], types.HashBytes([]byte("another chain")))
			return tx
		}, "signature"},
		{"expired", func() types.Tx {
			tx := good
			tx.ValidUntil = h.height
			tx.Sign(h.keys[h.id(0)], h.env.ChainID)
			return tx
		}, "expired"},
		{"too far ahead", func() types.Tx {
			tx := good
			tx.ValidUntil = h.height + 1 + types.MaxValidityWindow + 1
			tx.Sign(h.keys[h.id(0)], h.env.ChainID)
			return tx
		}, "ahead"},
		{"cannot pay fee", func() types.Tx {
			return h.tx(20, types.Transfer{To: h.id(1), Amount: 1})
		}, "fee"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.st)
			err := h.block(tc.tx())
			var te *TxError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a TxError about %q", err, tc.want)
			}
			if len(h.st) != before {
				t.Fatal("a rejected block changed the state")
			}
		})
	}
	// Replaying an included transaction fails on its nonce.
	if err := h.block(good); err != nil {
		t.Fatal(err)
	}
	if err := h.block(good); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("replay: got %v", err)
	}
}

// subnetHarness registers subnet 1 owned by account 0 (hotkey 1) and
// registers hotkeys 10..10+k-1 from coldkeys 2..
func subnetHarness(t testing.TB, neurons int) *harness {
	h := newHarness(t, testGenesis(8, 100_000*tao))
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
	for i := range neurons {
		h.mustRun(2+i%4, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10 + i)})
	}
	return h
}

func TestRegisterNetwork(t *testing.T) {
	g := testGenesis(4, 100_000*tao)
	g.Balances[3].Free = tao
	h := newHarness(t, g)
	free := h.free(0)
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
	x := h.exec()
	s, ok := x.subnet(1)
	if !ok || s.Owner != h.id(0) || s.OwnerHotkey != h.id(1) || s.N != 1 {
		t.Fatalf("subnet 1: %+v", s)
	}
	if uid, ok := x.uidOf(1, h.id(1)); !ok || uid != 0 {
		t.Fatal("the owner hotkey must be uid 0")
	}
	lock := s.Lock
	if lock != 10*tao || h.free(0) != free-lock-h.globals().Params.TransferFee || h.globals().Locked != lock {
		t.Fatalf("lock %d, free %d", lock, h.free(0))
	}
	// The next lock doubles, less its linear decay over the one block since.
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
	want := 2*lock - lock/h.globals().Params.LockReductionInterval
	if s2, _ := h.exec().subnet(2); s2.Lock != want {
		t.Fatalf("second lock %d, want %d", s2.Lock, want)
	}
	h.mustFail(2, types.RegisterNetwork{Hotkey: h.id(1)}, "owned by another coldkey")
	h.mustFail(3, types.RegisterNetwork{Hotkey: h.id(30)}, "insufficient balance")
}

func TestRegisterNetworkLimits(t *testing.T) {
	g := testGenesis(4, 100_000*tao)
	g.Params.NetworkRateLimit = 50
	g.Params.SubnetLimit = 1
	h := newHarness(t, g)
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
	h.mustFail(2, types.RegisterNetwork{Hotkey: h.id(3)}, "rate limit")
	h.advance(50)
	h.mustFail(2, types.RegisterNetwork{Hotkey: h.id(3)}, "subnet limit")
}

func TestSetHyperparam(t *testing.T) {
	h := subnetHarness(t, 0)
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamKappa, Value: 40000})
	if s, _ := h.exec().subnet(1); s.Hyper.Kappa != 40000 {
		t.Fatal("kappa not set")
	}
	for _, tc := range []struct {
		signer int
		call   types.SetHyperparam
		want   string
	}{
		{2, types.SetHyperparam{Netuid: 1, Param: types.ParamKappa, Value: 1}, "only the owner"},
		{0, types.SetHyperparam{Netuid: 9, Param: types.ParamKappa, Value: 1}, "does not exist"},
		{0, types.SetHyperparam{Netuid: 1, Param: types.ParamTempo, Value: 5}, "tempo must be in"},
		{0, types.SetHyperparam{Netuid: 1, Param: types.ParamMaxAllowedUIDs, Value: 300}, "max_allowed_uids"},
		{0, types.SetHyperparam{Netuid: 1, Param: types.ParamAlphaLow, Value: 2000}, "liquid alpha is off"},
		{0, types.SetHyperparam{Netuid: 1, Param: types.ParamBondsMovingAverage, Value: 990_000}, "bonds_moving_average"},
		{0, types.SetHyperparam{Netuid: 1, Param: types.ParamMinBurn, Value: 2 * tao}, "min_burn"},
	} {
		h.mustFail(tc.signer, tc.call, tc.want)
	}
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamLiquidAlpha, Value: 1})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamAlphaLow, Value: 2000})
	h.mustFail(0, types.SetHyperparam{Netuid: 1, Param: types.ParamAlphaHigh, Value: 1000}, "alpha_high")
}

func TestBurnedRegister(t *testing.T) {
	h := subnetHarness(t, 0)
	h.mustRun(4, types.RegisterNetwork{Hotkey: h.id(20)}) // subnet 2
	s, _ := h.exec().subnet(1)
	price := s.Burn
	issuance := h.globals().Issuance
	h.mustRun(2, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10)})
	s, _ = h.exec().subnet(1)
	if s.N != 2 {
		t.Fatalf("n = %d", s.N)
	}
	// The price decays one block, then the registration bumps it by 1.26.
	decayed := mulQ32(price, decayFactor(s.Hyper.BurnHalfLife))
	if want := bumpBurn(decayed, &s.Hyper); s.Burn != want {
		t.Fatalf("price %d, want %d", s.Burn, want)
	}
	if g := h.globals(); g.Issuance != issuance-decayed {
		t.Fatalf("the burn must be recycled: issuance %d, want %d", g.Issuance, issuance-decayed)
	}
	for _, tc := range []struct {
		signer int
		call   types.BurnedRegister
		want   string
	}{
		{2, types.BurnedRegister{Netuid: 0, Hotkey: h.id(11)}, "root network"},
		{2, types.BurnedRegister{Netuid: 7, Hotkey: h.id(11)}, "does not exist"},
		{3, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10)}, "already registered"},
		{2, types.BurnedRegister{Netuid: 1, Hotkey: h.id(11), MaxPrice: 1}, "above your limit"},
		{3, types.BurnedRegister{Netuid: 2, Hotkey: h.id(1)}, "owned by another coldkey"},
		{30, types.BurnedRegister{Netuid: 1, Hotkey: h.id(31)}, "fee"}, // no balance: the block is rejected
	} {
		if tc.want == "fee" {
			if err := h.block(h.tx(tc.signer, tc.call)); err == nil {
				t.Fatal("an unfunded signer's transaction must be rejected")
			}
			continue
		}
		h.mustFail(tc.signer, tc.call, tc.want)
	}
}

// TestRegistrationReplacesLowestEmission: a full subnet gives the uid of the
// non-immune neuron with the lowest emission (earliest registration on ties)
// to the newcomer, drops its weights and bonds, and zeroes weights on it.
func TestRegistrationReplacesLowestEmission(t *testing.T) {
	h := subnetHarness(t, 0)
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamMaxAllowedUIDs, Value: 3})
	h.mustRun(2, types.BurnedRegister{Netuid: 1, Hotkey: h.id(10)}) // uid 1
	h.mustRun(3, types.BurnedRegister{Netuid: 1, Hotkey: h.id(11)}) // uid 2
	h.mustFail(4, types.BurnedRegister{Netuid: 1, Hotkey: h.id(12)}, "every uid is immune")
	h.advance(25) // past the immunity period of 20 blocks
	x := h.exec()
	nr1, _ := x.neuron(1, 1)
	nr2, _ := x.neuron(1, 2)
	nr1.Emission, nr2.Emission = 5, 5 // equal: the earlier registration (uid 1) goes
	x.putNeuron(1, 1, nr1)
	x.putNeuron(1, 2, nr2)
	row := entries{{UID: 1, Value: 65535}, {UID: 2, Value: 100}}
	x.o.store(key(pWeights, u16b(1), u16b(2)), &row)
	h.st.Apply(x.o.changes())
	h.mustRun(4, types.BurnedRegister{Netuid: 1, Hotkey: h.id(12)})
	x = h.exec()
	if uid, ok := x.uidOf(1, h.id(12)); !ok || uid != 1 {
		t.Fatalf("the newcomer got uid %d (%v), want 1", uid, ok)
	}
	if _, ok := x.uidOf(1, h.id(10)); ok {
		t.Fatal("the replaced hotkey is still registered")
	}
	var got entries
	x.o.load(key(pWeights, u16b(1), u16b(2)), &got)
	if len(got) != 2 || got[0].Value != 0 || got[1].Value != 100 {
		t.Fatalf("weights on the replaced uid must be zeroed, not removed: %v", got)
	}
}

func TestServe(t *testing.T) {
	h := subnetHarness(t, 1)
	h.mustRun(10, types.Serve{Netuid: 1, Host: "10.0.0.7", Port: 8091, TLSKey: h.id(40)})
	nr, _ := h.exec().neuron(1, 1)
	if nr.Axon.Host != "10.0.0.7" || nr.Axon.Port != 8091 || nr.Axon.TLSKey != h.id(40) {
		t.Fatalf("axon %+v", nr.Axon)
	}
	h.mustFail(10, types.Serve{Netuid: 1, Host: "10.0.0.8", Port: 8091}, "serving rate limit")
	h.mustFail(11, types.Serve{Netuid: 1, Host: "h", Port: 1}, "not registered")
	h.mustFail(10, types.Serve{Netuid: 1, Host: "bad host", Port: 1}, "invalid host")
	h.mustFail(10, types.Serve{Netuid: 1, Host: "h", Port: 0}, "port 0")
}

func TestStake(t *testing.T) {
	h := subnetHarness(t, 1)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 50 * tao}) // owner stake
	h.mustRun(5, types.AddStake{Hotkey: h.id(10), Amount: 20 * tao}) // nominator
	if h.stake(10, 2) != 50*tao || h.stake(10, 5) != 20*tao || h.exec().hotkeyStake(h.id(10)) != 70*tao {
		t.Fatal("stake not recorded")
	}
	h.mustRun(5, types.RemoveStake{Hotkey: h.id(10), Amount: 20 * tao})
	if h.stake(10, 5) != 0 {
		t.Fatal("stake not removed")
	}
	var l accounts
	hk10 := h.id(10)
	h.exec().o.load(key(pStakers, hk10[:]), &l)
	if len(l) != 1 || l[0] != h.id(2) {
		t.Fatalf("stakers %v", l)
	}
	h.mustFail(5, types.AddStake{Hotkey: h.id(33), Amount: tao}, "no owner")
	h.mustFail(5, types.AddStake{Hotkey: h.id(10), Amount: 1}, "below the minimum")
	h.mustFail(5, types.AddStake{Hotkey: h.id(10), Amount: 1 << 62}, "insufficient balance")
	h.mustFail(5, types.RemoveStake{Hotkey: h.id(10), Amount: 1}, "cannot unstake")
	h.mustFail(5, types.RemoveStake{Hotkey: h.id(10), Amount: 0}, "0 rao")
}

func TestSetTake(t *testing.T) {
	g := testGenesis(8, 100_000*tao)
	g.Params.TakeRateLimit = 10
	h := newHarness(t, g)
	h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
	h.mustRun(0, types.SetTake{Hotkey: h.id(1), Take: 1000})                // a decrease is always allowed
	h.mustRun(0, types.SetTake{Hotkey: h.id(1), Take: 500})                 // and resets the limit
	h.mustFail(0, types.SetTake{Hotkey: h.id(1), Take: 3000}, "rate limit") // so an increase must wait
	h.advance(11)
	h.mustRun(0, types.SetTake{Hotkey: h.id(1), Take: 3000})
	h.mustFail(0, types.SetTake{Hotkey: h.id(1), Take: 3000}, "already")
	h.mustFail(0, types.SetTake{Hotkey: h.id(1), Take: 20000}, "above the maximum")
	h.mustFail(2, types.SetTake{Hotkey: h.id(1), Take: 100}, "only the owner")
}

func TestSetWeights(t *testing.T) {
	h := subnetHarness(t, 3) // uids 1..3 = hotkeys 10..12
	// Stake on uid 1 earns it a validator permit at the next epoch.
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 100 * tao})
	h.advance(12)
	if nr, _ := h.exec().neuron(1, 1); !nr.Permit {
		t.Fatal("no permit after an epoch")
	}
	h.mustRun(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{100, 50}})
	var row entries
	h.exec().o.load(key(pWeights, u16b(1), u16b(1)), &row)
	if len(row) != 2 || row[0].Value != 65535 || row[1].Value != 32768 {
		t.Fatalf("stored row %v, want max-upscaled [65535 32768]", row)
	}
	h.mustFail(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2}, Weights: []uint16{1}}, "rate limit")
	h.advance(3)
	for _, tc := range []struct {
		signer int
		call   types.SetWeights
		want   string
	}{
		{11, types.SetWeights{Netuid: 1, UIDs: []uint16{1}, Weights: []uint16{1}}, "no validator permit"},
		{40, types.SetWeights{Netuid: 1, UIDs: []uint16{1}, Weights: []uint16{1}}, "not registered"},
		{10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 2}, Weights: []uint16{1, 1}}, "twice"},
		{10, types.SetWeights{Netuid: 1, UIDs: []uint16{9}, Weights: []uint16{1}}, "does not exist"},
		{10, types.SetWeights{Netuid: 0, UIDs: []uint16{1}, Weights: []uint16{1}}, "root"},
		{10, types.SetWeights{Netuid: 1, UIDs: []uint16{0, 1, 2, 3, 3}, Weights: []uint16{1, 1, 1, 1, 1}}, "weights for a subnet of"},
	} {
		h.mustFail(tc.signer, tc.call, tc.want)
	}
	h.mustRun(11, types.SetWeights{Netuid: 1, UIDs: []uint16{2}, Weights: []uint16{7}}) // self weight without a permit
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamMinAllowedWeights, Value: 2})
	h.mustFail(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2}, Weights: []uint16{7}}, "at least 2")
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamWeightsVersion, Value: 5})
	h.mustFail(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{7, 7}, VersionKey: 4}, "version key")
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	h.mustFail(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{7, 7}, VersionKey: 5}, "commit-reveal")
}

func TestCommitReveal(t *testing.T) {
	h := subnetHarness(t, 2)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 100 * tao})
	h.advance(12) // an epoch gives uid 1 its permit
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	uids, ws, salt := []uint16{2}, []uint16{9}, []byte("salt")
	commit := types.CommitHash(h.id(10), 1, uids, ws, salt, 0)
	h.advance(2)
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: commit})
	reveal := types.RevealWeights{Netuid: 1, UIDs: uids, Weights: ws, Salt: salt}
	h.mustFail(10, reveal, "too early")
	h.mustFail(10, types.RevealWeights{Netuid: 1, UIDs: uids, Weights: []uint16{8}, Salt: salt}, "do not match")
	// After the next epoch the commit becomes revealable.
	s, _ := h.exec().subnet(1)
	for e0 := s.EpochIndex; s.EpochIndex == e0; s, _ = h.exec().subnet(1) {
		h.advance(1)
	}
	h.mustRun(10, reveal)
	var row entries
	h.exec().o.load(key(pWeights, u16b(1), u16b(1)), &row)
	if len(row) != 1 || row[0].UID != 2 {
		t.Fatalf("revealed row %v", row)
	}
	h.mustFail(10, reveal, "no weights commit")
}

// TestEmissionAndEpoch runs a small subnet through root weights, block
// rewards and epochs: miners and validators earn, the owner takes its cut,
// dividends reach nominators, and issuance grows only by what is credited.
func TestEmissionAndEpoch(t *testing.T) {
	h := subnetHarness(t, 3) // hotkeys 10 (coldkey 2), 11 (3), 12 (4)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 1000 * tao})
	h.mustRun(6, types.AddStake{Hotkey: h.id(10), Amount: 1000 * tao}) // a nominator
	h.mustRun(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	issuance0 := h.globals().Issuance
	// One epoch hands out permits; then the validator weights the miners.
	h.advance(12)
	if nr, _ := h.exec().neuron(1, 1); !nr.Permit {
		t.Fatal("the staked validator should have a permit after an epoch")
	}
	h.mustRun(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{3, 1}})
	owner0 := h.free(0)
	h.advance(25)
	if h.globals().Issuance <= issuance0 {
		t.Fatal("no emission was credited")
	}
	x := h.exec()
	n2, _ := x.neuron(1, 2)
	n3, _ := x.neuron(1, 3)
	if n2.Incentive <= n3.Incentive || n3.Incentive == 0 {
		t.Fatalf("incentives %d, %d: the miner weighted 3:1 must earn more", n2.Incentive, n3.Incentive)
	}
	if x.stakeOf(h.id(11), h.id(3)) == 0 {
		t.Fatal("miner incentive must be credited as stake to the miner's owner")
	}
	if h.stake(10, 6) <= 1000*tao {
		t.Fatal("the nominator must earn dividends")
	}
	if h.free(0) <= owner0 {
		t.Fatal("the subnet owner must receive its cut")
	}
}

func TestBlockReward(t *testing.T) {
	for _, tc := range []struct{ issuance, want uint64 }{
		{0, tao},
		{MaxSupply/2 - 1, tao},
		{MaxSupply / 2, tao / 2},
		{MaxSupply - MaxSupply/4, tao / 4},
		{MaxSupply - MaxSupply>>29, tao >> 29},
		{MaxSupply - MaxSupply>>30, 0}, // 1e9 >> 30 truncates to 0 long before the cap
		{MaxSupply - 1, 0},
		{MaxSupply, 0},
	} {
		if got := BlockReward(tc.issuance); got != tc.want {
			t.Errorf("BlockReward(%d) = %d, want %d", tc.issuance, got, tc.want)
		}
	}
}

func TestDecayFactor(t *testing.T) {
	// chain-rules.md §1.3: H = 360 gives 4286705684; 1 TAO → 998076443 after
	// one block and 499999865 after 360.
	f := decayFactor(360)
	if f != 4_286_705_684 {
		t.Fatalf("decay factor %d", f)
	}
	b := uint64(tao)
	b = mulQ32(b, f)
	if b != 998_076_443 {
		t.Fatalf("after one block %d", b)
	}
	for range 359 {
		b = mulQ32(b, f)
	}
	if b != 499_999_865 {
		t.Fatalf("after 360 blocks %d", b)
	}
	if got := bumpBurn(tao, &Hyperparams{BurnIncreaseMult: 1260, MinBurn: 1, MaxBurn: 100 * tao}); got != 1_260_000_000 {
		t.Fatalf("bump %d", got)
	}
}

func TestGovernance(t *testing.T) {
	h := subnetHarness(t, 1)
	h.mustRun(2, types.AddStake{Hotkey: h.id(10), Amount: 1000 * tao})
	h.mustRun(3, types.AddStake{Hotkey: h.id(10), Amount: 500 * tao})
	action := types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalTransferFee, Value: 7}
	h.mustFail(5, types.Propose{Action: action}, "1% of all stake")
	h.mustRun(2, types.Propose{Action: action, Description: "cheaper transfers"})
	h.mustFail(2, types.Propose{Action: action}, "already have proposal")
	h.mustFail(5, types.Vote{Proposal: 0, Aye: true}, "needs stake")
	h.mustRun(3, types.Vote{Proposal: 0, Aye: false})
	h.mustRun(3, types.Vote{Proposal: 0, Aye: true}) // changed vote
	if h.globals().Params.TransferFee == 7 {
		t.Fatal("passed too early: 500 of 1500 stake is not a majority")
	}
	h.mustRun(2, types.Vote{Proposal: 0, Aye: true})
	if h.globals().Params.TransferFee != 7 {
		t.Fatal("a majority of stake must pass and enact the proposal")
	}
	h.mustFail(3, types.Vote{Proposal: 0, Aye: true}, "closed")
	bad := types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalQuorumPermille, Value: 5000}
	h.mustFail(3, types.Propose{Action: bad}, "quorum")
	fw := types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: types.HashBytes([]byte("fw")), FirmwareVersion: "1.2.3"}
	h.mustRun(3, types.Propose{Action: fw})
	h.advance(int(h.globals().Params.VotingPeriod) + 1)
	var p Proposal
	h.exec().o.load(key(pProposal, u64b(1)), &p)
	if p.Status != ProposalRejected {
		t.Fatalf("a proposal without votes must be rejected at its deadline, status %d", p.Status)
	}
}

// TestConservationRandom applies many random transaction sequences (valid
// and failing calls of every kind, with epochs and emission running) and
// checks conservation and the stake totals after every block
// (harness.block does). A normal run applies 40 sequences of 150 blocks
// (about 15,000 transactions); TAOBOX_LONG=1 runs 2000 sequences.
func TestConservationRandom(t *testing.T) {
	seeds, blocks := 40, 150
	if os.Getenv("TAOBOX_LONG") != "" {
		seeds = 2000
	}
	txs, nblocks := 0, 0
	applied := map[types.CallKind]int{}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(11, uint64(seed)))
		h := newHarness(t, testGenesis(8, 10_000*tao))
		h.mustRun(0, types.RegisterNetwork{Hotkey: h.id(1)})
		if seed%2 == 1 { // half the chains commit and reveal on subnet 1
			h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
		}
		for range blocks {
			var batch []types.Tx
			nonces := map[int]uint64{}
			for range r.IntN(6) {
				i := r.IntN(8)
				tx := h.tx(i, randomCall(r, h))
				tx.Nonce += nonces[i]
				nonces[i]++
				tx.Sign(h.keys[h.id(i)], h.env.ChainID)
				batch = append(batch, tx)
			}
			if err := h.block(batch...); err != nil {
				// Only fee exhaustion can make a random batch invalid.
				if !strings.Contains(err.Error(), "fee") {
					t.Fatal(err)
				}
				continue
			}
			txs += len(batch)
			nblocks++
			for _, ev := range h.events {
				if ev.Kind == types.EvTxApplied {
					applied[types.CallKind(ev.Value)]++
				}
			}
		}
	}
	if txs < 1000 {
		t.Fatalf("only %d transactions ran", txs)
	}
	for _, k := range []types.CallKind{types.KindTransfer, types.KindRegisterNetwork, types.KindBurnedRegister,
		types.KindAddStake, types.KindRemoveStake, types.KindSetRootWeights, types.KindVote, types.KindSetHyperparam,
		types.KindSetWeights, types.KindServe, types.KindSetTake, types.KindPropose, types.KindCommitWeights} {
		if applied[k] == 0 {
			t.Errorf("no %v call succeeded: the generator does not exercise it", k)
		}
	}
	t.Logf("%d sequences, %d blocks, %d transactions, successes by kind: %v", seeds, nblocks, txs, applied)
}

func randomCall(r *rand.Rand, h *harness) types.Call {
	acct := func() types.AccountID { return h.id(r.IntN(24)) }
	amount := func() uint64 { return uint64(r.IntN(3)) * uint64(r.Int64N(200*tao)) }
	uids := func() ([]uint16, []uint16) {
		n := r.IntN(4)
		u, w := make([]uint16, n), make([]uint16, n)
		for i := range n {
			u[i], w[i] = uint16(r.IntN(6)), uint16(r.IntN(65536))
		}
		return u, w
	}
	switch r.IntN(15) {
	case 0:
		return types.Transfer{To: acct(), Amount: amount()}
	case 1:
		return types.RegisterNetwork{Hotkey: acct()}
	case 2:
		return types.BurnedRegister{Netuid: types.Netuid(r.IntN(3)), Hotkey: acct()}
	case 3, 4:
		return types.AddStake{Hotkey: acct(), Amount: amount()}
	case 5:
		return types.RemoveStake{Hotkey: acct(), Amount: amount()}
	case 6:
		u, w := uids()
		return types.SetWeights{Netuid: types.Netuid(r.IntN(3)), UIDs: u, Weights: w}
	case 7:
		u, w := uids()
		return types.SetRootWeights{Hotkey: acct(), Netuids: u, Weights: w}
	case 8:
		return types.SetTake{Hotkey: acct(), Take: uint16(r.IntN(12000))}
	case 9:
		return types.Serve{Netuid: types.Netuid(r.IntN(3)), Host: "10.0.0.1", Port: uint16(r.IntN(3))}
	case 10:
		return types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalStakeThreshold, Value: uint64(r.IntN(10))}}
	case 11:
		return types.Vote{Proposal: uint64(r.IntN(3)), Aye: r.IntN(2) == 0}
	case 12:
		params := []types.Hyperparam{types.ParamTempo, types.ParamCommitReveal, types.ParamWeightsRateLimit,
			types.ParamMaxAllowedUIDs, types.ParamImmunityPeriod, types.ParamMinBurn, types.ParamMaxBurn, types.ParamKappa}
		values := []uint64{0, 1, 5, 10, 12, 64, tao / 2, 3 * tao}
		return types.SetHyperparam{Netuid: types.Netuid(r.IntN(3)), Param: params[r.IntN(len(params))], Value: values[r.IntN(len(values))]}
	default: // commit, then maybe reveal, weights of a fixed salt
		u, w := uids()
		n := types.Netuid(1 + r.IntN(2))
		salt := []byte{byte(r.IntN(2))}
		if r.IntN(2) == 0 {
			hk := h.id(r.IntN(24))
			return types.CommitWeights{Netuid: n, Commit: types.CommitHash(hk, n, u, w, salt, 0)}
		}
		return types.RevealWeights{Netuid: n, UIDs: u, Weights: w, Salt: salt}
	}
}

// TestApplyIsPure: applying the same block twice to the same state gives the
// same changes and events, and nothing is written to the reader.
func TestApplyIsPure(t *testing.T) {
	h := subnetHarness(t, 2)
	tx := h.tx(2, types.AddStake{Hotkey: h.id(10), Amount: tao})
	before := len(h.st)
	a, err := ApplyBlock(context.Background(), h.st, h.env, h.height+1, []types.Tx{tx})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ApplyBlock(context.Background(), h.st, h.env, h.height+1, []types.Tx{tx})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.st) != before || len(a.Changes) != len(b.Changes) || len(a.Events) != len(b.Events) {
		t.Fatal("ApplyBlock is not pure")
	}
	for i := range a.Changes {
		if string(a.Changes[i].Key) != string(b.Changes[i].Key) || string(a.Changes[i].Value) != string(b.Changes[i].Value) {
			t.Fatal("ApplyBlock is not deterministic")
		}
	}
}

// TestSigVerifiedSkipsOnlyKnownTxs: a transaction the predicate does not
// vouch for is still verified.
func TestSigVerifiedSkipsOnlyKnownTxs(t *testing.T) {
	h := newHarness(t, testGenesis(2, 10*tao))
	good := h.tx(0, types.Transfer{To: h.id(1), Amount: 1})
	bad := good
	bad.Sig[0] ^= 1
	h.env.SigVerified = func(x types.Hash) bool { return x == good.Hash() }
	if err := h.block(bad); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("an unvouched bad signature must be rejected: %v", err)
	}
	if err := h.block(good); err != nil {
		t.Fatal(err)
	}
}
