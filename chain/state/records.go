package state

import (
	"encoding/binary"
	"fmt"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// Key layout: one prefix byte per record kind, then fixed-width big-endian
// fields, so keys sort by subnet and uid. Values use the canonical codec of
// chain/types.
const (
	pGlobals     = 'g' // → Globals
	pAccount     = 'a' // + account → Account
	pOwner       = 'o' // + hotkey → owning coldkey
	pTake        = 'd' // + hotkey → Take
	pStake       = 's' // + hotkey + coldkey → u64 stake
	pHotStake    = 't' // + hotkey → u64 total stake on the hotkey
	pStakers     = 'S' // + hotkey → []AccountID coldkeys with stake on it (sorted)
	pColdStake   = 'c' // + coldkey → u64 total stake of the coldkey
	pSubnets     = 'N' // → []Netuid (sorted)
	pSubnet      = 'n' // + netuid → Subnet
	pNeuron      = 'u' // + netuid + uid → Neuron
	pUID         = 'k' // + netuid + hotkey → uid
	pWeights     = 'w' // + netuid + uid → []yuma.Entry
	pBonds       = 'b' // + netuid + uid → []yuma.Entry
	pCommits     = 'x' // + netuid + hotkey → []Commit
	pRootWeights = 'r' // + hotkey → RootWeights
	pShares      = 'e' // → []Share: each subnet's part of the block reward
	pProposal    = 'p' // + id → Proposal
	pVote        = 'v' // + id + coldkey → Ballot
	pFirmware    = 'f' // + version → hash of an approved firmware release
	pEvidence    = 'q' // + offender + height u64 + round u32 + type u8 → u64 block that committed it
	pJail        = 'j' // + hotkey → u64 the last block that committed evidence against it
)

func key(prefix byte, parts ...[]byte) []byte {
	k := []byte{prefix}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u16b(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u64b(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// record is a value stored in state.
type record interface {
	enc(w *types.Writer)
	dec(r *types.Reader)
}

func encode(rec record) []byte {
	w := types.NewWriter(nil)
	rec.enc(w)
	return w.Bytes()
}

// load decodes the record at key into rec; false if absent. A stored value
// that fails to decode is state corruption, reported as a read error.
func (o *overlay) load(k []byte, rec record) bool {
	v, ok := o.get(k)
	if !ok {
		return false
	}
	r := types.NewReader(v)
	rec.dec(r)
	if err := r.Done(); err != nil {
		o.root().readErr = fmt.Errorf("state: corrupt record %q: %w", k, err)
		return false
	}
	return true
}

func (o *overlay) store(k []byte, rec record) { o.set(k, encode(rec)) }

func (o *overlay) getU64(k []byte) uint64 {
	v, ok := o.get(k)
	if !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// setU64 stores v, deleting the key when v is 0 so that state holds no zero
// records (the state root then depends only on meaningful values).
func (o *overlay) setU64(k []byte, v uint64) {
	if v == 0 {
		o.del(k)
		return
	}
	o.set(k, u64b(v))
}

// Account is an account's free balance and next nonce.
type Account struct {
	Free  uint64
	Nonce uint64
}

func (a *Account) enc(w *types.Writer) { w.U64(a.Free); w.U64(a.Nonce) }
func (a *Account) dec(r *types.Reader) { a.Free = r.U64("free"); a.Nonce = r.U64("nonce") }

// GlobalParams are chain-wide parameters; governance may change them.
type GlobalParams struct {
	TransferFee           uint64 `json:"transfer_fee"`            // flat fee of fee-paying transactions, burned (rao)
	NetworkMinLock        uint64 `json:"network_min_lock"`        // minimum subnet lock cost (rao)
	NetworkRateLimit      uint64 `json:"network_rate_limit"`      // blocks between subnet registrations
	LockReductionInterval uint64 `json:"lock_reduction_interval"` // blocks over which the lock cost decays back
	SubnetLimit           uint64 `json:"subnet_limit"`            // subnets besides root
	StakeThreshold        uint64 `json:"stake_threshold"`         // minimum stake counted by the epoch (rao)
	MaxDelegateTake       uint64 `json:"max_delegate_take"`       // u16 parts of 65535
	TakeRateLimit         uint64 `json:"take_rate_limit"`         // blocks between take increases
	VotingPeriod          uint64 `json:"voting_period"`           // blocks a proposal stays open
	QuorumPermille        uint64 `json:"quorum_permille"`         // turnout (stake) a proposal needs, ‰ of total stake
	RootTempo             uint64 `json:"root_tempo"`              // blocks between root epochs (subnet shares)
	RootValidators        uint64 `json:"root_validators"`         // top stakers whose root weights count
	MinStake              uint64 `json:"min_stake"`               // smallest add_stake (rao)
	ExistentialDeposit    uint64 `json:"existential_deposit"`     // smallest nonzero balance (rao)
}

var globalParamFields = []struct {
	id   types.GlobalParam
	name string
	get  func(*GlobalParams) *uint64
}{
	{types.GlobalTransferFee, "transfer_fee", func(p *GlobalParams) *uint64 { return &p.TransferFee }},
	{types.GlobalNetworkMinLock, "network_min_lock", func(p *GlobalParams) *uint64 { return &p.NetworkMinLock }},
	{types.GlobalNetworkRateLimit, "network_rate_limit", func(p *GlobalParams) *uint64 { return &p.NetworkRateLimit }},
	{types.GlobalSubnetLimit, "subnet_limit", func(p *GlobalParams) *uint64 { return &p.SubnetLimit }},
	{types.GlobalStakeThreshold, "stake_threshold", func(p *GlobalParams) *uint64 { return &p.StakeThreshold }},
	{types.GlobalMaxDelegateTake, "max_delegate_take", func(p *GlobalParams) *uint64 { return &p.MaxDelegateTake }},
	{types.GlobalVotingPeriod, "voting_period", func(p *GlobalParams) *uint64 { return &p.VotingPeriod }},
	{types.GlobalQuorumPermille, "quorum_permille", func(p *GlobalParams) *uint64 { return &p.QuorumPermille }},
}

func (p *GlobalParams) fields() []*uint64 {
	return []*uint64{&p.TransferFee, &p.NetworkMinLock, &p.NetworkRateLimit, &p.LockReductionInterval,
		&p.SubnetLimit, &p.StakeThreshold, &p.MaxDelegateTake, &p.TakeRateLimit, &p.VotingPeriod,
		&p.QuorumPermille, &p.RootTempo, &p.RootValidators, &p.MinStake, &p.ExistentialDeposit}
}

// Globals are the chain-wide counters and parameters.
//
// Conservation: Issuance == Σ free balances + Σ stake + Locked + Burned,
// after every block (checked by the tests). Issuance grows when emission is
// credited at an epoch and shrinks when a registration burn is recycled;
// fees are burned (Burned grows, Issuance does not change).
type Globals struct {
	Issuance   uint64
	Burned     uint64
	Locked     uint64 // subnet lock costs, never returned
	TotalStake uint64

	LastLock              uint64 // lock cost of the last subnet registration
	NetworkLastRegistered uint64 // block of the last subnet registration
	NextProposal          uint64
	Params                GlobalParams
}

func (g *Globals) enc(w *types.Writer) {
	for _, v := range []uint64{g.Issuance, g.Burned, g.Locked, g.TotalStake, g.LastLock, g.NetworkLastRegistered, g.NextProposal} {
		w.U64(v)
	}
	for _, f := range g.Params.fields() {
		w.U64(*f)
	}
}

func (g *Globals) dec(r *types.Reader) {
	for _, f := range []*uint64{&g.Issuance, &g.Burned, &g.Locked, &g.TotalStake, &g.LastLock, &g.NetworkLastRegistered, &g.NextProposal} {
		*f = r.U64("globals")
	}
	for _, f := range g.Params.fields() {
		*f = r.U64("globals.params")
	}
}

// Take is a hotkey's delegate take and when it last increased.
type Take struct {
	Take         uint16
	LastIncrease uint64
}

func (t *Take) enc(w *types.Writer) { w.U16(t.Take); w.U64(t.LastIncrease) }
func (t *Take) dec(r *types.Reader) { t.Take = r.U16("take"); t.LastIncrease = r.U64("take.last") }

// accounts is a sorted list of account ids.
type accounts []types.AccountID

func (a *accounts) enc(w *types.Writer) {
	w.Len(len(*a))
	for _, id := range *a {
		w.Fixed(id[:])
	}
}

func (a *accounts) dec(r *types.Reader) {
	n := r.Len("accounts", 1<<20)
	*a = make(accounts, n)
	for i := range *a {
		r.Fixed("account", (*a)[i][:])
	}
}

// netuids is a sorted list of subnet ids.
type netuids []types.Netuid

func (l *netuids) enc(w *types.Writer) {
	w.Len(len(*l))
	for _, n := range *l {
		w.U16(uint16(n))
	}
}

func (l *netuids) dec(r *types.Reader) {
	n := r.Len("netuids", 1<<16)
	*l = make(netuids, n)
	for i := range *l {
		(*l)[i] = types.Netuid(r.U16("netuid"))
	}
}

// Hyperparams are a subnet's owner-settable parameters (yuma-epoch.md §9,
// chain-rules.md §6.2).
type Hyperparams struct {
	Tempo                uint64 `json:"tempo"`
	Kappa                uint64 `json:"kappa"`
	ImmunityPeriod       uint64 `json:"immunity_period"`
	MinAllowedWeights    uint64 `json:"min_allowed_weights"`
	MaxWeightLimit       uint64 `json:"max_weight_limit"`
	WeightsVersion       uint64 `json:"weights_version"`
	WeightsRateLimit     uint64 `json:"weights_rate_limit"`
	ActivityCutoffMilli  uint64 `json:"activity_cutoff_milli"`
	MaxAllowedUIDs       uint64 `json:"max_allowed_uids"`
	MaxAllowedValidators uint64 `json:"max_allowed_validators"`
	BondsMovingAverage   uint64 `json:"bonds_moving_average"`
	BondsPenalty         uint64 `json:"bonds_penalty"`
	Yuma3                uint64 `json:"yuma3"`        // 0 or 1
	LiquidAlpha          uint64 `json:"liquid_alpha"` // 0 or 1
	AlphaLow             uint64 `json:"alpha_low"`
	AlphaHigh            uint64 `json:"alpha_high"`
	AlphaSteepness       uint64 `json:"alpha_steepness"` // 0..32767
	CommitReveal         uint64 `json:"commit_reveal"`   // 0 or 1
	RevealPeriod         uint64 `json:"reveal_period"`
	MinBurn              uint64 `json:"min_burn"`
	MaxBurn              uint64 `json:"max_burn"`
	ServingRateLimit     uint64 `json:"serving_rate_limit"`
	BurnHalfLife         uint64 `json:"burn_half_life"`
	BurnIncreaseMult     uint64 `json:"burn_increase_mult"` // ×1000
}

func (h *Hyperparams) fields() []*uint64 {
	return []*uint64{&h.Tempo, &h.Kappa, &h.ImmunityPeriod, &h.MinAllowedWeights, &h.MaxWeightLimit,
		&h.WeightsVersion, &h.WeightsRateLimit, &h.ActivityCutoffMilli, &h.MaxAllowedUIDs,
		&h.MaxAllowedValidators, &h.BondsMovingAverage, &h.BondsPenalty, &h.Yuma3, &h.LiquidAlpha,
		&h.AlphaLow, &h.AlphaHigh, &h.AlphaSteepness, &h.CommitReveal, &h.RevealPeriod, &h.MinBurn,
		&h.MaxBurn, &h.ServingRateLimit, &h.BurnHalfLife, &h.BurnIncreaseMult}
}

// Subnet is a subnet's record.
type Subnet struct {
	Owner        types.AccountID // coldkey
	OwnerHotkey  types.AccountID
	RegisteredAt uint64
	Lock         uint64
	N            uint64 // registered uids
	Burn         uint64 // current registration price (rao)
	Pending      uint64 // emission accrued since the last epoch (rao, not yet minted)
	LastEpoch    uint64 // block of the last epoch
	EpochIndex   uint64
	LastStep     uint64 // LastMechansimStepBlock: block of the last distributed epoch
	Hyper        Hyperparams
}

func (s *Subnet) enc(w *types.Writer) {
	w.Fixed(s.Owner[:])
	w.Fixed(s.OwnerHotkey[:])
	for _, v := range []uint64{s.RegisteredAt, s.Lock, s.N, s.Burn, s.Pending, s.LastEpoch, s.EpochIndex, s.LastStep} {
		w.U64(v)
	}
	s.Hyper.enc(w)
}

func (s *Subnet) dec(r *types.Reader) {
	r.Fixed("owner", s.Owner[:])
	r.Fixed("owner_hotkey", s.OwnerHotkey[:])
	for _, f := range []*uint64{&s.RegisteredAt, &s.Lock, &s.N, &s.Burn, &s.Pending, &s.LastEpoch, &s.EpochIndex, &s.LastStep} {
		*f = r.U64("subnet")
	}
	s.Hyper.dec(r)
}

// Axon is a neuron's published QUIC endpoint.
type Axon struct {
	Block  uint64
	Host   string
	Port   uint16
	TLSKey types.AccountID
}

// Neuron is one uid of a subnet with its last epoch's terms.
type Neuron struct {
	Hotkey         types.AccountID
	RegisteredAt   uint64
	LastUpdate     uint64
	Permit         bool
	Active         bool
	Emission       uint64
	Incentive      uint16
	Dividends      uint16
	Consensus      uint16
	ValidatorTrust uint16
	StakeWeight    uint16
	Axon           Axon
}

func (n *Neuron) enc(w *types.Writer) {
	w.Fixed(n.Hotkey[:])
	w.U64(n.RegisteredAt)
	w.U64(n.LastUpdate)
	w.Bool(n.Permit)
	w.Bool(n.Active)
	w.U64(n.Emission)
	for _, v := range []uint16{n.Incentive, n.Dividends, n.Consensus, n.ValidatorTrust, n.StakeWeight} {
		w.U16(v)
	}
	w.U64(n.Axon.Block)
	w.String(n.Axon.Host)
	w.U16(n.Axon.Port)
	w.Fixed(n.Axon.TLSKey[:])
}

func (n *Neuron) dec(r *types.Reader) {
	r.Fixed("hotkey", n.Hotkey[:])
	n.RegisteredAt = r.U64("registered_at")
	n.LastUpdate = r.U64("last_update")
	n.Permit = r.Bool("permit")
	n.Active = r.Bool("active")
	n.Emission = r.U64("emission")
	for _, f := range []*uint16{&n.Incentive, &n.Dividends, &n.Consensus, &n.ValidatorTrust, &n.StakeWeight} {
		*f = r.U16("terms")
	}
	n.Axon.Block = r.U64("axon.block")
	n.Axon.Host = r.String("axon.host", types.MaxHostLen)
	n.Axon.Port = r.U16("axon.port")
	r.Fixed("axon.tls", n.Axon.TLSKey[:])
}

// entries is a stored weights or bonds row, in stored order.
type entries []yuma.Entry

func (e *entries) enc(w *types.Writer) {
	w.Len(len(*e))
	for _, x := range *e {
		w.U16(x.UID)
		w.U16(x.Value)
	}
}

func (e *entries) dec(r *types.Reader) {
	n := r.Len("entries", 1<<16)
	*e = make(entries, n)
	for i := range *e {
		(*e)[i] = yuma.Entry{UID: r.U16("uid"), Value: r.U16("value")}
	}
}

// Commit is one pending weights commit.
type Commit struct {
	Hash  types.Hash
	Epoch uint64
	Block uint64
}

type commits []Commit

func (c *commits) enc(w *types.Writer) {
	w.Len(len(*c))
	for _, x := range *c {
		w.Fixed(x.Hash[:])
		w.U64(x.Epoch)
		w.U64(x.Block)
	}
}

func (c *commits) dec(r *types.Reader) {
	n := r.Len("commits", maxPendingCommits)
	*c = make(commits, n)
	for i := range *c {
		r.Fixed("commit.hash", (*c)[i].Hash[:])
		(*c)[i].Epoch = r.U64("commit.epoch")
		(*c)[i].Block = r.U64("commit.block")
	}
}

// RootWeights are a hotkey's weights over subnets.
type RootWeights struct {
	Block   uint64
	Netuids []uint16
	Weights []uint16
}

func (rw *RootWeights) enc(w *types.Writer) {
	w.U64(rw.Block)
	w.Len(len(rw.Netuids))
	for i := range rw.Netuids {
		w.U16(rw.Netuids[i])
		w.U16(rw.Weights[i])
	}
}

func (rw *RootWeights) dec(r *types.Reader) {
	rw.Block = r.U64("block")
	n := r.Len("root_weights", types.MaxWeights)
	rw.Netuids, rw.Weights = make([]uint16, n), make([]uint16, n)
	for i := range n {
		rw.Netuids[i] = r.U16("netuid")
		rw.Weights[i] = r.U16("weight")
	}
}

// Share is a subnet's part of each block reward, in u16 parts of 65535.
type Share struct {
	Netuid types.Netuid
	Share  uint16
}

type shares []Share

func (s *shares) enc(w *types.Writer) {
	w.Len(len(*s))
	for _, x := range *s {
		w.U16(uint16(x.Netuid))
		w.U16(x.Share)
	}
}

func (s *shares) dec(r *types.Reader) {
	n := r.Len("shares", 1<<16)
	*s = make(shares, n)
	for i := range *s {
		(*s)[i] = Share{types.Netuid(r.U16("netuid")), r.U16("share")}
	}
}

func (h *Hyperparams) enc(w *types.Writer) {
	for _, f := range h.fields() {
		w.U64(*f)
	}
}

func (h *Hyperparams) dec(r *types.Reader) {
	for _, f := range h.fields() {
		*f = r.U64("hyperparams")
	}
}
