package state

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// MaxSupply is the issuance cap: 21M TAO.
const MaxSupply = 21_000_000 * types.RaoPerTAO

// BlockReward is the reward of a block given the issuance: 1 TAO, halved
// each time issuance crosses 21M·(1 − 2^-k) (10.5M, 15.75M, 18.375M, …),
// and never more than what is left under the cap. It is the integer form of
// subtensor's floor(log2(1/(1 − I/21M))) halvings.
func BlockReward(issuance uint64) uint64 {
	if issuance >= MaxSupply {
		return 0
	}
	reward := uint64(types.RaoPerTAO)
	for k := uint(1); k < 64 && reward > 0; k++ {
		if issuance < MaxSupply-MaxSupply>>k {
			break
		}
		reward >>= 1
	}
	return min(reward, MaxSupply-issuance)
}

// beginBlock runs before the transactions: registration prices decay and the
// block reward accrues to the subnets by their root shares. The reward is
// minted only when an epoch credits it.
func (x *exec) beginBlock() {
	x.decayBurns()
	var sh shares
	if !x.o.load(key(pShares), &sh) || len(sh) == 0 {
		return
	}
	g := x.globals()
	// Pending emission counts toward the cap, so that credits never pass it.
	pending := uint64(0)
	for _, n := range x.subnetList() {
		s, _ := x.subnet(n)
		pending += s.Pending
	}
	reward := BlockReward(g.Issuance + pending)
	for _, e := range sh {
		s, ok := x.subnet(e.Netuid)
		if !ok {
			continue
		}
		s.Pending += mulDiv(reward, uint64(e.Share), 65535)
		x.putSubnet(e.Netuid, s)
	}
	x.emit(types.Event{Kind: types.EvBlockReward, Amount: reward})
}

// endBlock runs after the transactions: every due subnet epoch and the root
// epoch in one engine call, then governance.
func (x *exec) endBlock(ctx context.Context) error {
	type job struct {
		netuid  types.Netuid
		subnet  *Subnet
		hotkeys []types.AccountID
		cut     uint64
	}
	var jobs []job
	var inputs []yuma.Input
	for _, n := range x.subnetList() {
		s, _ := x.subnet(n)
		if !x.epochDue(s) {
			continue
		}
		in, hotkeys := x.epochInput(n, s)
		cut := mulDiv(s.Pending, ownerCut, 65535)
		in.RaoEmission = s.Pending - cut
		jobs = append(jobs, job{n, s, hotkeys, cut})
		inputs = append(inputs, in)
	}
	var root *rootJob
	if rt := x.globals().Params.RootTempo; rt > 0 && x.height%rt == 0 {
		if root = x.rootInput(); root != nil {
			inputs = append(inputs, root.in)
		}
	}
	if len(inputs) > 0 {
		outs, err := x.env.Engine.Epochs(ctx, inputs)
		if err != nil {
			return fmt.Errorf("state: epochs of block %d: %w", x.height, err)
		}
		for i, j := range jobs {
			x.distribute(j.netuid, j.subnet, j.hotkeys, j.cut, &inputs[i], &outs[i])
		}
		if root != nil {
			x.applyRoot(root, &outs[len(outs)-1])
		}
	}
	x.decideProposals()
	return nil
}

// epochInput builds the Yuma input of subnet n from state (yuma-epoch.md §3),
// in the plain-TAO model: a uid's stake is the total stake on its hotkey.
func (x *exec) epochInput(n types.Netuid, s *Subnet) (yuma.Input, []types.AccountID) {
	size := int(s.N)
	h := &s.Hyper
	g := x.globals()
	in := yuma.Input{
		Variant: yuma.Sparse, N: size, CurrentBlock: x.height, Tempo: h.Tempo,
		ActivityCutoffBlocks: activityCutoff(h), StakeThreshold: g.Params.StakeThreshold, OwnerUID: -1,
		MaxAllowedValidators: uint16(h.MaxAllowedValidators), Kappa: uint16(h.Kappa),
		BondsPenalty: uint16(h.BondsPenalty), BondsMovingAverage: h.BondsMovingAverage,
		Yuma3: h.Yuma3 != 0, LiquidAlpha: h.LiquidAlpha != 0, AlphaLow: uint16(h.AlphaLow),
		AlphaHigh: uint16(h.AlphaHigh), AlphaSteepness: int16(h.AlphaSteepness),
		LastMechanismStepBlock: s.LastStep, CommitReveal: h.CommitReveal != 0,
		LastUpdate: make([]uint64, size), BlockAtRegistration: make([]uint64, size),
		AlphaStake: make([]uint64, size), TaoStake: make([]uint64, size),
		ValidatorPermit: make([]bool, size), Weights: make([][]yuma.Entry, size), Bonds: make([][]yuma.Entry, size),
	}
	hotkeys := make([]types.AccountID, size)
	nb := u16b(uint16(n))
	for uid := range uint16(size) {
		nr, _ := x.neuron(n, uid)
		hotkeys[uid] = nr.Hotkey
		in.LastUpdate[uid] = nr.LastUpdate
		in.BlockAtRegistration[uid] = nr.RegisteredAt
		in.AlphaStake[uid] = x.hotkeyStake(nr.Hotkey)
		in.ValidatorPermit[uid] = nr.Permit
		var w, b entries
		x.o.load(key(pWeights, nb, u16b(uid)), &w)
		x.o.load(key(pBonds, nb, u16b(uid)), &b)
		in.Weights[uid], in.Bonds[uid] = w, b
		if nr.Hotkey == s.OwnerHotkey {
			in.OwnerUID = int(uid)
		}
	}
	if in.CommitReveal {
		in.CommitBlocks = x.commitBlocks(n, s, hotkeys)
	}
	return in, hotkeys
}

// distribute applies an epoch's output: the owner's cut to its free balance,
// miners' incentive as stake on their hotkeys, validators' dividends split by
// take and stake; neuron terms, permits and bonds are stored.
func (x *exec) distribute(n types.Netuid, s *Subnet, hotkeys []types.AccountID, cut uint64, in *yuma.Input, out *yuma.Output) {
	credited := cut
	if cut > 0 {
		a := x.account(s.Owner)
		a.Free += cut
		x.putAccount(s.Owner, a)
	}
	nb := u16b(uint16(n))
	g := x.globals()
	for uid, hk := range hotkeys {
		if se := out.ServerEmission[uid]; se > 0 {
			if owner, ok := x.owner(hk); ok {
				x.creditStake(g, hk, owner, se)
				credited += se
			}
		}
		if ve := out.ValidatorEmission[uid]; ve > 0 {
			if _, ok := x.owner(hk); ok {
				x.payDividends(g, hk, ve)
				credited += ve
			}
		}
		nr, _ := x.neuron(n, uint16(uid))
		nr.Emission = out.Emission[uid]
		nr.Incentive, nr.Dividends = out.Incentive[uid], out.Dividends[uid]
		nr.Consensus, nr.ValidatorTrust = out.Consensus[uid], out.ValidatorTrust[uid]
		nr.StakeWeight = out.StakeWeight[uid]
		nr.Active, nr.Permit = !out.Inactive[uid], out.NewValidatorPermits[uid]
		x.putNeuron(n, uint16(uid), nr)
		if out.BondsWritten[uid] {
			bk := key(pBonds, nb, u16b(uint16(uid)))
			if row := entries(out.NewBonds[uid]); len(row) > 0 {
				x.o.store(bk, &row)
			} else {
				x.o.del(bk)
			}
		}
	}
	g.Issuance += credited
	x.putGlobals(g)
	s.Pending = 0
	s.LastEpoch = x.height
	s.EpochIndex++
	s.LastStep = x.height
	x.putSubnet(n, s)
	x.emit(types.Event{Kind: types.EvEpoch, Netuid: n, Account: s.Owner, Amount: credited, Value: s.EpochIndex})
}

// rootJob is the root epoch: the largest stakers' weights over subnets,
// run through the Yuma engine as a graph of validators (uids 0..k-1) and
// subnets (uids k..k+m-1), so that each subnet's share is its incentive:
// the stake-weighted consensus of the root weights.
type rootJob struct {
	in      yuma.Input
	k       int
	netuids netuids
}

func (x *exec) rootInput() *rootJob {
	var setters accounts
	x.o.load(key(pRootSetters), &setters)
	subnets := x.subnetList()
	if len(setters) == 0 || len(subnets) == 0 {
		return nil
	}
	type staker struct {
		hotkey types.AccountID
		stake  uint64
	}
	var st []staker
	for _, h := range setters {
		if v := x.hotkeyStake(h); v > 0 {
			st = append(st, staker{h, v})
		}
	}
	slices.SortFunc(st, func(a, b staker) int {
		if c := cmp.Compare(b.stake, a.stake); c != 0 {
			return c
		}
		return compareID(a.hotkey, b.hotkey)
	})
	p := x.globals().Params
	st = st[:min(len(st), int(p.RootValidators))]
	if len(st) == 0 {
		return nil
	}
	k, m := len(st), len(subnets)
	col := map[types.Netuid]uint16{}
	for i, n := range subnets {
		col[n] = uint16(k + i)
	}
	size := k + m
	in := yuma.Input{
		Variant: yuma.Sparse, N: size, CurrentBlock: x.height, Tempo: p.RootTempo,
		ActivityCutoffBlocks: ^uint64(0), OwnerUID: -1, MaxAllowedValidators: uint16(k),
		Kappa: 32767, BondsPenalty: 65535, BondsMovingAverage: 900_000,
		LastUpdate: make([]uint64, size), BlockAtRegistration: make([]uint64, size),
		AlphaStake: make([]uint64, size), TaoStake: make([]uint64, size), ValidatorPermit: make([]bool, size),
		Weights: make([][]yuma.Entry, size), Bonds: make([][]yuma.Entry, size),
	}
	for i, v := range st {
		in.AlphaStake[i] = v.stake
		in.ValidatorPermit[i] = true
		in.LastUpdate[i] = x.height
		var rw RootWeights
		x.o.load(key(pRootWeights, v.hotkey[:]), &rw)
		row := make([]yuma.Entry, 0, len(rw.Netuids))
		for j, n := range rw.Netuids {
			if c, ok := col[types.Netuid(n)]; ok {
				row = append(row, yuma.Entry{UID: c, Value: rw.Weights[j]})
			}
		}
		slices.SortFunc(row, func(a, b yuma.Entry) int { return cmp.Compare(a.UID, b.UID) })
		in.Weights[i] = row
	}
	for i := k; i < size; i++ {
		in.Weights[i], in.Bonds[i] = []yuma.Entry{}, []yuma.Entry{}
	}
	for i := range k {
		in.Bonds[i] = []yuma.Entry{}
	}
	return &rootJob{in: in, k: k, netuids: subnets}
}

// applyRoot stores each subnet's share of the block reward.
func (x *exec) applyRoot(r *rootJob, out *yuma.Output) {
	var sh shares
	for i, n := range r.netuids {
		if v := out.Incentive[r.k+i]; v > 0 {
			sh = append(sh, Share{n, v})
		}
	}
	if len(sh) == 0 {
		x.o.del(key(pShares))
	} else {
		x.o.store(key(pShares), &sh)
	}
	x.emit(types.Event{Kind: types.EvEpoch, Netuid: 0, Value: uint64(len(sh))})
}
