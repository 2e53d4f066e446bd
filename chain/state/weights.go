package state

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"taobox/chain/types"
	"taobox/chain/yuma"
	"taobox/chain/yuma/ymath"
)

// epochDue reports whether subnet s runs its epoch at the end of this block.
func (x *exec) epochDue(s *Subnet) bool {
	return s.Hyper.Tempo > 0 && x.height-min(x.height, s.LastEpoch) >= s.Hyper.Tempo
}

// currentEpoch is SubnetEpochIndex plus one if the epoch runs this block
// (current_epoch_with_lookahead).
func (x *exec) currentEpoch(s *Subnet) uint64 {
	if x.epochDue(s) {
		return s.EpochIndex + 1
	}
	return s.EpochIndex
}

// checkWeights runs internal_set_weights' checks (chain-rules.md §4.1) in
// subtensor's order and returns the row to store, max-upscaled.
func (x *exec) checkWeights(hotkey types.AccountID, n types.Netuid, uids, weights []uint16, version uint64, rateLimited bool) (uint16, entries, error) {
	if n == 0 {
		return 0, nil, errors.New("root weights are set with set_root_weights")
	}
	s, ok := x.subnet(n)
	if !ok {
		return 0, nil, fmt.Errorf("subnet %d does not exist", n)
	}
	if len(uids) != len(weights) {
		return 0, nil, fmt.Errorf("%d uids but %d weights", len(uids), len(weights))
	}
	if uint64(len(uids)) > s.N {
		return 0, nil, fmt.Errorf("%d weights for a subnet of %d uids", len(uids), s.N)
	}
	uid, ok := x.uidOf(n, hotkey)
	if !ok {
		return 0, nil, fmt.Errorf("hotkey %s is not registered on subnet %d", hotkey, n)
	}
	if hotkey != s.OwnerHotkey {
		if st, thr := x.hotkeyStake(hotkey), x.globals().Params.StakeThreshold; st < thr {
			return 0, nil, fmt.Errorf("stake %d rao is below the %d rao needed to set weights", st, thr)
		}
	}
	if v := s.Hyper.WeightsVersion; v != 0 && version < v {
		return 0, nil, fmt.Errorf("weights version key %d is older than the subnet's %d: update your validator", version, v)
	}
	nr, _ := x.neuron(n, uid)
	if rateLimited && nr.LastUpdate != 0 && x.height-nr.LastUpdate < s.Hyper.WeightsRateLimit {
		return 0, nil, fmt.Errorf("weights rate limit: last set at block %d, next allowed at block %d", nr.LastUpdate, nr.LastUpdate+s.Hyper.WeightsRateLimit)
	}
	self := len(uids) == 1 && uids[0] == uid
	if !self && !nr.Permit && hotkey != s.OwnerHotkey {
		return 0, nil, errors.New("no validator permit: only permitted validators set weights on others")
	}
	seen := map[uint16]bool{}
	for _, u := range uids {
		if seen[u] {
			return 0, nil, fmt.Errorf("uid %d appears twice", u)
		}
		seen[u] = true
		if uint64(u) >= s.N {
			return 0, nil, fmt.Errorf("uid %d does not exist (the subnet has %d uids)", u, s.N)
		}
	}
	if need := min(s.Hyper.MinAllowedWeights, s.N); !self && uint64(len(uids)) < need {
		return 0, nil, fmt.Errorf("%d weights, the subnet requires at least %d", len(uids), need)
	}
	up := ymath.VecU16MaxUpscaleToU16(weights)
	// A self-weight may exceed the limit (max_weight_limited in subtensor).
	if !self && !ymath.CheckVecMaxLimited(up, uint16(s.Hyper.MaxWeightLimit)) {
		return 0, nil, fmt.Errorf("a weight exceeds the subnet's max weight limit %d/65535", s.Hyper.MaxWeightLimit)
	}
	row := make(entries, len(uids))
	for i := range uids {
		row[i] = yuma.Entry{UID: uids[i], Value: up[i]}
	}
	return uid, row, nil
}

// setWeights stores a validator's weights (commit-reveal off).
func (x *exec) setWeights(hotkey types.AccountID, c types.SetWeights) error {
	if s, ok := x.subnet(c.Netuid); ok && s.Hyper.CommitReveal != 0 {
		return fmt.Errorf("subnet %d uses commit-reveal: commit a hash, then reveal", c.Netuid)
	}
	uid, row, err := x.checkWeights(hotkey, c.Netuid, c.UIDs, c.Weights, c.VersionKey, true)
	if err != nil {
		return err
	}
	x.o.store(key(pWeights, u16b(uint16(c.Netuid)), u16b(uid)), &row)
	nr, _ := x.neuron(c.Netuid, uid)
	nr.LastUpdate = x.height
	x.putNeuron(c.Netuid, uid, nr)
	x.emit(types.Event{Kind: types.EvWeightsSet, Netuid: c.Netuid, Account: hotkey, UID: uid, Value: uint64(len(row))})
	return nil
}

// commitRevealSubnet returns subnet n if it exists and uses commit-reveal.
func (x *exec) commitRevealSubnet(n types.Netuid) (*Subnet, error) {
	s, ok := x.subnet(n)
	if !ok {
		return nil, fmt.Errorf("subnet %d does not exist", n)
	}
	if s.Hyper.CommitReveal == 0 {
		return nil, fmt.Errorf("subnet %d does not use commit-reveal: set weights directly", n)
	}
	return s, nil
}

// commitWeights records a weights hash (chain-rules.md §4.2): at most 10
// pending, LastUpdate = the commit block.
func (x *exec) commitWeights(hotkey types.AccountID, c types.CommitWeights) error {
	s, err := x.commitRevealSubnet(c.Netuid)
	if err != nil {
		return err
	}
	uid, ok := x.uidOf(c.Netuid, hotkey)
	if !ok {
		return fmt.Errorf("hotkey %s is not registered on subnet %d", hotkey, c.Netuid)
	}
	nr, _ := x.neuron(c.Netuid, uid)
	if nr.LastUpdate != 0 && x.height-nr.LastUpdate < s.Hyper.WeightsRateLimit {
		return fmt.Errorf("commit rate limit: last commit at block %d, next allowed at block %d", nr.LastUpdate, nr.LastUpdate+s.Hyper.WeightsRateLimit)
	}
	epoch := x.currentEpoch(s)
	k := key(pCommits, u16b(uint16(c.Netuid)), hotkey[:])
	var q commits
	x.o.load(k, &q)
	q = slices.DeleteFunc(q, func(cm Commit) bool { return epoch > cm.Epoch+s.Hyper.RevealPeriod })
	if len(q) >= maxPendingCommits {
		return fmt.Errorf("%d commits are pending; reveal some first", len(q))
	}
	q = append(q, Commit{Hash: c.Commit, Epoch: epoch, Block: x.height})
	x.o.store(k, &q)
	nr.LastUpdate = x.height
	x.putNeuron(c.Netuid, uid, nr)
	x.emit(types.Event{Kind: types.EvWeightsCommitted, Netuid: c.Netuid, Account: hotkey, UID: uid, Value: epoch})
	return nil
}

// revealWeights stores weights committed earlier, in the reveal window
// (current epoch == commit epoch + reveal period). Every older pending
// commit up to the match is dropped.
func (x *exec) revealWeights(hotkey types.AccountID, c types.RevealWeights) error {
	s, err := x.commitRevealSubnet(c.Netuid)
	if err != nil {
		return err
	}
	k := key(pCommits, u16b(uint16(c.Netuid)), hotkey[:])
	var q commits
	if !x.o.load(k, &q) || len(q) == 0 {
		return errors.New("no weights commit found for this hotkey")
	}
	epoch := x.currentEpoch(s)
	h := types.CommitHash(hotkey, c.Netuid, c.UIDs, c.Weights, c.Salt, c.VersionKey)
	expired := func(cm Commit) bool { return epoch > cm.Epoch+s.Hyper.RevealPeriod }
	at := slices.IndexFunc(q, func(cm Commit) bool { return cm.Hash == h })
	switch {
	case at < 0:
		return errors.New("the revealed weights do not match any pending commit (check uids, weights, salt and version key)")
	case expired(q[at]):
		return fmt.Errorf("the commit of epoch %d has expired (reveal period %d epochs)", q[at].Epoch, s.Hyper.RevealPeriod)
	case epoch != q[at].Epoch+s.Hyper.RevealPeriod:
		return fmt.Errorf("too early: reveal in epoch %d, now epoch %d", q[at].Epoch+s.Hyper.RevealPeriod, epoch)
	}
	uid, row, err := x.checkWeights(hotkey, c.Netuid, c.UIDs, c.Weights, c.VersionKey, false)
	if err != nil {
		return err
	}
	q = q[at+1:]
	if len(q) == 0 {
		x.o.del(k)
	} else {
		x.o.store(k, &q)
	}
	x.o.store(key(pWeights, u16b(uint16(c.Netuid)), u16b(uid)), &row)
	x.emit(types.Event{Kind: types.EvWeightsRevealed, Netuid: c.Netuid, Account: hotkey, UID: uid, Value: uint64(len(row))})
	return nil
}

// commitBlocks returns, per uid, the block of its earliest unexpired commit
// (yuma.NoCommit when none), for the epoch's commit-reveal mask.
func (x *exec) commitBlocks(n types.Netuid, s *Subnet, hotkeys []types.AccountID) []uint64 {
	epoch := x.currentEpoch(s)
	out := make([]uint64, len(hotkeys))
	for i, hk := range hotkeys {
		out[i] = yuma.NoCommit
		var q commits
		x.o.load(key(pCommits, u16b(uint16(n)), hk[:]), &q)
		for _, cm := range q {
			if epoch <= cm.Epoch+s.Hyper.RevealPeriod {
				out[i] = min(out[i], cm.Block)
				break
			}
		}
	}
	return out
}

// pRootSetters lists the hotkeys that have root weights.
const pRootSetters = 'R'

// setRootWeights stores a hotkey's weights over subnets. They count in the
// root epoch if the hotkey is among the RootValidators largest stakes.
func (x *exec) setRootWeights(coldkey types.AccountID, c types.SetRootWeights) error {
	if o, ok := x.owner(c.Hotkey); !ok || o != coldkey {
		return fmt.Errorf("only the owner of hotkey %s may set its root weights", c.Hotkey)
	}
	if len(c.Netuids) != len(c.Weights) {
		return fmt.Errorf("%d netuids but %d weights", len(c.Netuids), len(c.Weights))
	}
	if st, thr := x.hotkeyStake(c.Hotkey), x.globals().Params.StakeThreshold; st == 0 || st < thr {
		return fmt.Errorf("hotkey %s has %d rao staked; root weights need stake (at least %d rao)", c.Hotkey, st, max(thr, 1))
	}
	seen := map[uint16]bool{}
	for _, n := range c.Netuids {
		if _, ok := x.subnet(types.Netuid(n)); !ok || n == 0 {
			return fmt.Errorf("subnet %d does not exist", n)
		}
		if seen[n] {
			return fmt.Errorf("subnet %d appears twice", n)
		}
		seen[n] = true
	}
	k := key(pRootWeights, c.Hotkey[:])
	var prev RootWeights
	if x.o.load(k, &prev) && prev.Block == x.height {
		return errors.New("root weights were already set in this block")
	}
	rw := RootWeights{Block: x.height, Netuids: slices.Clone(c.Netuids), Weights: ymath.VecU16MaxUpscaleToU16(c.Weights)}
	x.o.store(k, &rw)
	var setters accounts
	x.o.load(key(pRootSetters), &setters)
	if i, ok := slices.BinarySearchFunc(setters, c.Hotkey, compareID); !ok {
		setters = slices.Insert(setters, i, c.Hotkey)
		x.o.store(key(pRootSetters), &setters)
	}
	x.emit(types.Event{Kind: types.EvRootWeightsSet, Account: coldkey, Other: c.Hotkey, Value: uint64(len(c.Netuids))})
	return nil
}

// activityCutoff is get_activity_cutoff_blocks: factor·tempo/1000 (the
// product saturating), at least 1.
func activityCutoff(h *Hyperparams) uint64 {
	hi, lo := bits.Mul64(h.ActivityCutoffMilli, h.Tempo)
	if hi != 0 {
		lo = math.MaxUint64
	}
	return max(lo/1000, 1)
}
