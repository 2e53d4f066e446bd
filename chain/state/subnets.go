package state

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"taobox/chain/types"
)

// Subnet defaults, stored at genesis under pDefaults and given to every new
// subnet (subtensor's init_new_network values unless the genesis changes them).
const pDefaults = 'h'

// ownerCut is the subnet owner's part of each epoch's emission: 11796/65535 = 18%.
const ownerCut = 11796

// defaultTake is a hotkey's delegate take until its owner sets one (18%).
const defaultTake = 11796

const (
	minTempo          = 10 // subtensor: 360 for owners on mainnet, 10 in its fast runtime
	maxTempo          = 50_400
	maxUIDs           = 256
	minAlpha          = 1638 // u16::MAX / 40
	maxBondsMA        = 975_000
	maxReveal         = 100
	maxHalfLife       = 36_100
	maxBurnMult       = 3000
	minBurnMult       = 1000
	maxPendingCommits = 10
)

func (x *exec) subnet(n types.Netuid) (*Subnet, bool) {
	var s Subnet
	ok := x.o.load(key(pSubnet, u16b(uint16(n))), &s)
	return &s, ok
}

func (x *exec) putSubnet(n types.Netuid, s *Subnet) { x.o.store(key(pSubnet, u16b(uint16(n))), s) }

func (x *exec) subnetList() netuids {
	var l netuids
	x.o.load(key(pSubnets), &l)
	return l
}

func (x *exec) owner(hotkey types.AccountID) (types.AccountID, bool) {
	v, ok := x.o.get(key(pOwner, hotkey[:]))
	var id types.AccountID
	if ok && len(v) == len(id) {
		copy(id[:], v)
		return id, true
	}
	return id, false
}

// claimHotkey makes coldkey the owner of hotkey if it has none, and fails if
// another coldkey owns it.
func (x *exec) claimHotkey(coldkey, hotkey types.AccountID) error {
	if o, ok := x.owner(hotkey); ok {
		if o != coldkey {
			return fmt.Errorf("hotkey %s is owned by another coldkey (%s)", hotkey, o)
		}
		return nil
	}
	x.o.set(key(pOwner, hotkey[:]), append([]byte{}, coldkey[:]...))
	return nil
}

func (x *exec) neuron(n types.Netuid, uid uint16) (*Neuron, bool) {
	var nr Neuron
	ok := x.o.load(key(pNeuron, u16b(uint16(n)), u16b(uid)), &nr)
	return &nr, ok
}

func (x *exec) putNeuron(n types.Netuid, uid uint16, nr *Neuron) {
	x.o.store(key(pNeuron, u16b(uint16(n)), u16b(uid)), nr)
}

// uidOf returns the uid of hotkey on subnet n.
func (x *exec) uidOf(n types.Netuid, hotkey types.AccountID) (uint16, bool) {
	v, ok := x.o.get(key(pUID, u16b(uint16(n)), hotkey[:]))
	if !ok || len(v) != 2 {
		return 0, false
	}
	return uint16(v[0])<<8 | uint16(v[1]), true
}

// debit takes amount from an account's free balance.
func (x *exec) debit(id types.AccountID, amount uint64, what string) error {
	a := x.account(id)
	if a.Free < amount {
		return fmt.Errorf("insufficient balance for %s: %d rao free, %d rao needed", what, a.Free, amount)
	}
	a.Free -= amount
	x.putAccount(id, a)
	return nil
}

// lockCost is get_network_lock_cost: max(min_lock, last·m − last/interval·(now − last_block)),
// with m = 2 after the first registration.
func lockCost(g *Globals, now uint64) uint64 {
	last, lastBlock := g.LastLock, g.NetworkLastRegistered
	m := uint64(1)
	if lastBlock != 0 {
		m = 2
	}
	hi, lo := bits.Mul64(last, m)
	cost := lo
	if hi != 0 {
		cost = math.MaxUint64
	}
	if g.Params.LockReductionInterval > 0 && now > lastBlock {
		hi, dec := bits.Mul64(last/g.Params.LockReductionInterval, now-lastBlock)
		if hi != 0 || dec >= cost {
			cost = 0
		} else {
			cost -= dec
		}
	}
	return max(cost, g.Params.NetworkMinLock)
}

// registerNetwork creates a subnet (chain-rules.md §6.1): a global rate
// limit, a subnet limit (no pruning of subnets: registration fails when the
// limit is reached), and a lock that is never returned.
func (x *exec) registerNetwork(coldkey types.AccountID, c types.RegisterNetwork) error {
	g := x.globals()
	if g.NetworkLastRegistered != 0 && x.height-g.NetworkLastRegistered < g.Params.NetworkRateLimit {
		return fmt.Errorf("subnet registration rate limit: the last subnet was registered at block %d; wait until block %d",
			g.NetworkLastRegistered, g.NetworkLastRegistered+g.Params.NetworkRateLimit)
	}
	list := x.subnetList()
	if uint64(len(list)) >= g.Params.SubnetLimit {
		return fmt.Errorf("subnet limit reached (%d subnets)", len(list))
	}
	if err := x.claimHotkey(coldkey, c.Hotkey); err != nil {
		return err
	}
	cost := lockCost(g, x.height)
	if err := x.debit(coldkey, cost, "the subnet lock"); err != nil {
		return err
	}
	g.Locked += cost
	g.LastLock = cost
	g.NetworkLastRegistered = x.height
	x.putGlobals(g)

	// The smallest free netuid >= 1.
	id := types.Netuid(1)
	for _, n := range list {
		if n == id {
			id++
		}
	}
	if id > types.MaxSubnetID {
		return errors.New("no free subnet id")
	}
	list = append(list, id)
	slices.Sort(list)
	x.o.store(key(pSubnets), &list)

	var hp Hyperparams
	x.o.load(key(pDefaults), &hp)
	s := &Subnet{Owner: coldkey, OwnerHotkey: c.Hotkey, RegisteredAt: x.height, Lock: cost, Burn: hp.MinBurn, Hyper: hp}
	s.Burn = max(min(types.RaoPerTAO, hp.MaxBurn), hp.MinBurn) // new subnets start at 1 TAO
	if hp.Tempo > 0 {
		s.LastEpoch = x.height - min(x.height, uint64(id)%hp.Tempo) // stagger epochs across subnets
	}
	x.putSubnet(id, s)
	x.emit(types.Event{Kind: types.EvNetworkRegistered, Netuid: id, Account: coldkey, Other: c.Hotkey, Amount: cost})
	// The owner hotkey becomes uid 0, without a burn.
	x.appendNeuron(id, s, c.Hotkey)
	x.putSubnet(id, s)
	return nil
}

// appendNeuron registers hotkey at uid s.N.
func (x *exec) appendNeuron(n types.Netuid, s *Subnet, hotkey types.AccountID) uint16 {
	uid := uint16(s.N)
	s.N++
	x.putNeuron(n, uid, &Neuron{Hotkey: hotkey, RegisteredAt: x.height, LastUpdate: x.height, Active: true})
	x.o.set(key(pUID, u16b(uint16(n)), hotkey[:]), u16b(uid))
	x.emit(types.Event{Kind: types.EvNeuronRegistered, Netuid: n, Account: hotkey, UID: uid})
	return uid
}

// hyperparamRule gives the field and bounds of an owner-settable parameter;
// its name is types.Hyperparam.String.
type hyperparamRule struct {
	field func(*Hyperparams) *uint64
	check func(s *Subnet, v uint64) error
}

func between(lo, hi uint64) func(*Subnet, uint64) error {
	return func(_ *Subnet, v uint64) error {
		if v < lo || v > hi {
			return fmt.Errorf("must be in [%d, %d], got %d", lo, hi, v)
		}
		return nil
	}
}

var hyperparamRules = map[types.Hyperparam]hyperparamRule{
	types.ParamTempo:             {func(h *Hyperparams) *uint64 { return &h.Tempo }, between(minTempo, maxTempo)},
	types.ParamKappa:             {func(h *Hyperparams) *uint64 { return &h.Kappa }, between(0, math.MaxUint16)},
	types.ParamImmunityPeriod:    {func(h *Hyperparams) *uint64 { return &h.ImmunityPeriod }, between(0, math.MaxUint16)},
	types.ParamMinAllowedWeights: {func(h *Hyperparams) *uint64 { return &h.MinAllowedWeights }, between(0, maxUIDs)},
	types.ParamMaxWeightLimit:    {func(h *Hyperparams) *uint64 { return &h.MaxWeightLimit }, between(1, math.MaxUint16)},
	types.ParamWeightsVersion:    {func(h *Hyperparams) *uint64 { return &h.WeightsVersion }, between(0, math.MaxUint64)},
	types.ParamWeightsRateLimit:  {func(h *Hyperparams) *uint64 { return &h.WeightsRateLimit }, between(0, maxTempo)},
	types.ParamActivityCutoff:    {func(h *Hyperparams) *uint64 { return &h.ActivityCutoffMilli }, between(1000, 50_000)},
	types.ParamMaxAllowedUIDs: {func(h *Hyperparams) *uint64 { return &h.MaxAllowedUIDs }, func(s *Subnet, v uint64) error {
		if v < max(s.N, 1) || v > maxUIDs {
			return fmt.Errorf("must be in [%d (registered uids), %d], got %d", max(s.N, 1), maxUIDs, v)
		}
		return nil
	}},
	types.ParamMaxAllowedValidators: {func(h *Hyperparams) *uint64 { return &h.MaxAllowedValidators }, func(s *Subnet, v uint64) error {
		return between(1, s.Hyper.MaxAllowedUIDs)(s, v)
	}},
	types.ParamBondsMovingAverage: {func(h *Hyperparams) *uint64 { return &h.BondsMovingAverage }, between(0, maxBondsMA)},
	types.ParamBondsPenalty:       {func(h *Hyperparams) *uint64 { return &h.BondsPenalty }, between(0, math.MaxUint16)},
	types.ParamYuma3:              {func(h *Hyperparams) *uint64 { return &h.Yuma3 }, between(0, 1)},
	types.ParamLiquidAlpha:        {func(h *Hyperparams) *uint64 { return &h.LiquidAlpha }, between(0, 1)},
	types.ParamAlphaLow: {func(h *Hyperparams) *uint64 { return &h.AlphaLow }, func(s *Subnet, v uint64) error {
		if s.Hyper.LiquidAlpha == 0 {
			return errors.New("liquid alpha is off; turn it on first")
		}
		return between(minAlpha, s.Hyper.AlphaHigh)(s, v)
	}},
	types.ParamAlphaHigh: {func(h *Hyperparams) *uint64 { return &h.AlphaHigh }, func(s *Subnet, v uint64) error {
		if s.Hyper.LiquidAlpha == 0 {
			return errors.New("liquid alpha is off; turn it on first")
		}
		return between(max(minAlpha, s.Hyper.AlphaLow), math.MaxUint16)(s, v)
	}},
	types.ParamAlphaSteepness: {func(h *Hyperparams) *uint64 { return &h.AlphaSteepness }, between(0, math.MaxInt16)},
	types.ParamCommitReveal:   {func(h *Hyperparams) *uint64 { return &h.CommitReveal }, between(0, 1)},
	types.ParamRevealPeriod:   {func(h *Hyperparams) *uint64 { return &h.RevealPeriod }, between(1, maxReveal)},
	types.ParamMinBurn: {func(h *Hyperparams) *uint64 { return &h.MinBurn }, func(s *Subnet, v uint64) error {
		if v >= types.RaoPerTAO || v >= s.Hyper.MaxBurn {
			return fmt.Errorf("must be below 1 TAO and below max_burn (%d), got %d", s.Hyper.MaxBurn, v)
		}
		return nil
	}},
	types.ParamMaxBurn: {func(h *Hyperparams) *uint64 { return &h.MaxBurn }, func(s *Subnet, v uint64) error {
		if v <= types.RaoPerTAO/10 || v <= s.Hyper.MinBurn {
			return fmt.Errorf("must be above 0.1 TAO and above min_burn (%d), got %d", s.Hyper.MinBurn, v)
		}
		return nil
	}},
	types.ParamServingRateLimit: {func(h *Hyperparams) *uint64 { return &h.ServingRateLimit }, between(0, maxTempo)},
	types.ParamBurnHalfLife:     {func(h *Hyperparams) *uint64 { return &h.BurnHalfLife }, between(1, maxHalfLife)},
	types.ParamBurnIncreaseMult: {func(h *Hyperparams) *uint64 { return &h.BurnIncreaseMult }, between(minBurnMult, maxBurnMult)},
}

// setHyperparam lets a subnet's owner change one parameter within bounds.
func (x *exec) setHyperparam(coldkey types.AccountID, c types.SetHyperparam) error {
	s, ok := x.subnet(c.Netuid)
	if !ok {
		return fmt.Errorf("subnet %d does not exist", c.Netuid)
	}
	if s.Owner != coldkey {
		return fmt.Errorf("only the owner of subnet %d (%s) may set its hyperparameters", c.Netuid, s.Owner)
	}
	rule, ok := hyperparamRules[c.Param]
	if !ok {
		return fmt.Errorf("unknown hyperparameter %d", c.Param)
	}
	if err := rule.check(s, c.Value); err != nil {
		return fmt.Errorf("%s %w", c.Param, err)
	}
	*rule.field(&s.Hyper) = c.Value
	if c.Param == types.ParamTempo {
		s.LastEpoch = x.height // as do_set_tempo: the next epoch is a full tempo away
	}
	s.Burn = min(max(s.Burn, s.Hyper.MinBurn), s.Hyper.MaxBurn)
	x.putSubnet(c.Netuid, s)
	x.emit(types.Event{Kind: types.EvHyperparamSet, Netuid: c.Netuid, Account: coldkey, UID: uint16(c.Param), Value: c.Value})
	return nil
}

// burnedRegister registers a hotkey for the subnet's current burn price,
// which is recycled (issuance shrinks), then raises the price.
func (x *exec) burnedRegister(coldkey types.AccountID, c types.BurnedRegister) error {
	if c.Netuid == 0 {
		return errors.New("registration on the root network goes through root weights, not burned_register")
	}
	s, ok := x.subnet(c.Netuid)
	if !ok {
		return fmt.Errorf("subnet %d does not exist", c.Netuid)
	}
	if _, ok := x.uidOf(c.Netuid, c.Hotkey); ok {
		return fmt.Errorf("hotkey %s is already registered on subnet %d", c.Hotkey, c.Netuid)
	}
	cost := s.Burn
	if c.MaxPrice > 0 && cost > c.MaxPrice {
		return fmt.Errorf("registration costs %d rao, above your limit of %d rao", cost, c.MaxPrice)
	}
	if err := x.claimHotkey(coldkey, c.Hotkey); err != nil {
		return err
	}
	if s.Hyper.MaxAllowedUIDs == 0 {
		return errors.New("the subnet admits no uids (max_allowed_uids = 0)")
	}
	if err := x.debit(coldkey, cost, "the registration burn"); err != nil {
		return err
	}
	g := x.globals()
	g.Issuance -= cost // recycled: the amount can be emitted again
	x.putGlobals(g)

	if s.N < s.Hyper.MaxAllowedUIDs {
		x.appendNeuron(c.Netuid, s, c.Hotkey)
	} else {
		uid, ok := x.pruneCandidate(c.Netuid, s)
		if !ok {
			return fmt.Errorf("subnet %d is full and every uid is immune (immunity period %d blocks)", c.Netuid, s.Hyper.ImmunityPeriod)
		}
		x.replaceNeuron(c.Netuid, s, uid, c.Hotkey)
	}
	s.Burn = bumpBurn(s.Burn, &s.Hyper)
	x.putSubnet(c.Netuid, s)
	return nil
}

// bumpBurn raises the price after a registration: burn·mult, clamped.
func bumpBurn(burn uint64, h *Hyperparams) uint64 {
	mult := max(h.BurnIncreaseMult, minBurnMult)
	hi, lo := bits.Mul64(burn, mult)
	if hi >= minBurnMult {
		return h.MaxBurn
	}
	q, _ := bits.Div64(hi, lo, minBurnMult)
	return min(max(q, h.MinBurn), h.MaxBurn)
}

// pruneCandidate picks the uid a new registration replaces in a full subnet:
// among non-immune uids other than the owner hotkey's, the one with the
// lowest emission, then the earliest registration, then the lowest uid.
// Unlike subtensor it never replaces an immune uid (chain-rules.md §1.4).
func (x *exec) pruneCandidate(n types.Netuid, s *Subnet) (uint16, bool) {
	best, found := uint16(0), false
	var bestNr *Neuron
	for uid := range uint16(s.N) {
		nr, ok := x.neuron(n, uid)
		if !ok || nr.Hotkey == s.OwnerHotkey || x.height-nr.RegisteredAt < s.Hyper.ImmunityPeriod {
			continue
		}
		if !found || nr.Emission < bestNr.Emission ||
			(nr.Emission == bestNr.Emission && nr.RegisteredAt < bestNr.RegisteredAt) {
			best, bestNr, found = uid, nr, true
		}
	}
	return best, found
}

// replaceNeuron gives uid to a new hotkey (replace_neuron + clear_neuron):
// the old hotkey's weights, bonds and commits go, other validators' weights
// on the uid are zeroed (kept as explicit zeros); stake is untouched.
func (x *exec) replaceNeuron(n types.Netuid, s *Subnet, uid uint16, hotkey types.AccountID) {
	old, _ := x.neuron(n, uid)
	nb := u16b(uint16(n))
	x.o.del(key(pUID, nb, old.Hotkey[:]))
	x.o.del(key(pCommits, nb, old.Hotkey[:]))
	x.o.del(key(pWeights, nb, u16b(uid)))
	x.o.del(key(pBonds, nb, u16b(uid)))
	for i := range uint16(s.N) {
		var row entries
		k := key(pWeights, nb, u16b(i))
		if !x.o.load(k, &row) {
			continue
		}
		changed := false
		for j := range row {
			if row[j].UID == uid && row[j].Value != 0 {
				row[j].Value, changed = 0, true
			}
		}
		if changed {
			x.o.store(k, &row)
		}
	}
	x.putNeuron(n, uid, &Neuron{Hotkey: hotkey, RegisteredAt: x.height, LastUpdate: x.height, Active: true})
	x.o.set(key(pUID, nb, hotkey[:]), u16b(uid))
	x.emit(types.Event{Kind: types.EvNeuronReplaced, Netuid: n, Account: hotkey, Other: old.Hotkey, UID: uid})
}

// decayFactor is decay_factor_q32(H): the largest Q32 f with f^H <= 1/2.
func decayFactor(h uint64) uint64 {
	lo, hi := uint64(0), uint64(1)<<32 // invariant: pow(lo) <= 2^31 < pow(hi) (hi exclusive)
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if powQ32(mid, h) <= 1<<31 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func mulQ32(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi>>32 != 0 {
		return math.MaxUint64
	}
	return hi<<32 | lo>>32
}

func powQ32(base, exp uint64) uint64 {
	r := uint64(1) << 32
	for exp > 0 {
		if exp&1 == 1 {
			r = mulQ32(r, base)
		}
		base = mulQ32(base, base)
		exp >>= 1
	}
	return r
}

// decayBurns applies the per-block price decay of every subnet (§1.3).
func (x *exec) decayBurns() {
	factors := map[uint64]uint64{}
	for _, n := range x.subnetList() {
		s, _ := x.subnet(n)
		b := s.Burn
		if h := s.Hyper.BurnHalfLife; h > 0 && x.height > 1 {
			f, ok := factors[h]
			if !ok {
				f = decayFactor(h)
				factors[h] = f
			}
			b = mulQ32(b, f)
		}
		b = min(max(b, s.Hyper.MinBurn), s.Hyper.MaxBurn)
		if b != s.Burn {
			s.Burn = b
			x.putSubnet(n, s)
		}
	}
}

// serve publishes the signer's endpoint (chain-rules.md §2, adapted to a
// QUIC host:port and a TLS key). Unlike subtensor, loopback hosts are
// allowed: a devnet runs every miner on one machine.
func (x *exec) serve(hotkey types.AccountID, c types.Serve) error {
	uid, ok := x.uidOf(c.Netuid, hotkey)
	if !ok {
		return fmt.Errorf("hotkey %s is not registered on subnet %d", hotkey, c.Netuid)
	}
	if c.Host == "" || strings.ContainsAny(c.Host, " \t\r\n/") {
		return fmt.Errorf("invalid host %q", c.Host)
	}
	if c.Port == 0 {
		return errors.New("port 0 is not a port")
	}
	s, _ := x.subnet(c.Netuid)
	nr, _ := x.neuron(c.Netuid, uid)
	if s.Hyper.ServingRateLimit > 0 && nr.Axon.Block != 0 && x.height-nr.Axon.Block < s.Hyper.ServingRateLimit {
		return fmt.Errorf("serving rate limit: served at block %d, wait until block %d", nr.Axon.Block, nr.Axon.Block+s.Hyper.ServingRateLimit)
	}
	nr.Axon = Axon{Block: x.height, Host: c.Host, Port: c.Port, TLSKey: c.TLSKey}
	x.putNeuron(c.Netuid, uid, nr)
	x.emit(types.Event{Kind: types.EvAxonServed, Netuid: c.Netuid, Account: hotkey, UID: uid, Value: uint64(c.Port)})
	return nil
}
