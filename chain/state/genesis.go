package state

import (
	"errors"
	"fmt"
	"slices"

	"taobox/chain/types"
)

// Genesis is the initial state of a chain. Its hash is the chain id that
// every transaction signs over.
type Genesis struct {
	ChainName      string           `json:"chain_name"`
	TimeMs         uint64           `json:"time_ms"` // genesis time, unix milliseconds
	Balances       []GenesisBalance `json:"balances"`
	Params         GlobalParams     `json:"params"`
	SubnetDefaults Hyperparams      `json:"subnet_defaults"`

	// Authorities is the initial authority set, which finalizes the
	// blocks of the first authority epoch, and the candidate list of every
	// later epoch (see NextAuthorities). A genesis without authorities is
	// a legacy single-authority chain: the node then uses its own key as
	// the only authority, and followers cannot verify it.
	Authorities []GenesisAuthority `json:"authorities,omitempty"`
	// AuthorityEpoch is the length of an authority epoch in blocks: the
	// set changes only after heights that are multiples of it. If zero,
	// DefaultAuthorityEpoch (360).
	AuthorityEpoch uint64 `json:"authority_epoch,omitempty"`
	// MaxAuthorities is K, the size cap of the set. If zero,
	// DefaultMaxAuthorities (64).
	MaxAuthorities uint64 `json:"max_authorities,omitempty"`
	// JailEpochs is how many authority epochs a validator proven to have
	// equivocated is left out of the set, counted after the epoch of the
	// block that committed the evidence. If zero, DefaultJailEpochs (4).
	JailEpochs uint64 `json:"jail_epochs,omitempty"`
}

// GenesisAuthority is a member of the initial authority set. Its consensus
// key is the hotkey itself (a separately bound consensus key is future
// work). Power is added to the hotkey's delegated stake when the set of a
// later epoch is chosen; at genesis, the set's weights are the powers, so
// a zero-power authority is only a candidate until stake is delegated to it.
type GenesisAuthority struct {
	Hotkey types.AccountID `json:"hotkey"`
	Power  uint64          `json:"power"`
}

// Authority-set defaults.
const (
	DefaultAuthorityEpoch = 360
	DefaultMaxAuthorities = 64
	DefaultJailEpochs     = 4
	maxJailEpochs         = 1 << 20
	maxAuthoritiesCap     = 1024
)

// EpochBlocks returns AuthorityEpoch, or its default.
func (g *Genesis) EpochBlocks() uint64 {
	if g.AuthorityEpoch == 0 {
		return DefaultAuthorityEpoch
	}
	return g.AuthorityEpoch
}

// JailPeriod returns JailEpochs, or its default.
func (g *Genesis) JailPeriod() uint64 {
	if g.JailEpochs == 0 {
		return DefaultJailEpochs
	}
	return g.JailEpochs
}

// AuthorityCap returns MaxAuthorities, or its default.
func (g *Genesis) AuthorityCap() int {
	if g.MaxAuthorities == 0 {
		return DefaultMaxAuthorities
	}
	return int(g.MaxAuthorities)
}

// GenesisBalance is an account funded at genesis.
type GenesisBalance struct {
	Account types.AccountID `json:"account"`
	Free    uint64          `json:"free"`
}

// DefaultParams are the chain-wide defaults (chain-rules.md §9).
func DefaultParams() GlobalParams {
	return GlobalParams{
		TransferFee:           100_000, // 0.0001 TAO
		NetworkMinLock:        1000 * types.RaoPerTAO,
		NetworkRateLimit:      7200,
		LockReductionInterval: 100_800,
		SubnetLimit:           128,
		StakeThreshold:        0,
		MaxDelegateTake:       11796,
		TakeRateLimit:         216_000,
		VotingPeriod:          7200,
		QuorumPermille:        330,
		RootTempo:             100,
		RootValidators:        64,
		MinStake:              2_000_000, // 0.002 TAO
		ExistentialDeposit:    500,
	}
}

// DefaultSubnetHyperparams are the values init_new_network gives a new
// subnet (yuma-epoch.md §9, chain-rules.md §1.3 and §6.2).
func DefaultSubnetHyperparams() Hyperparams {
	return Hyperparams{
		Tempo: 360, Kappa: 32767, ImmunityPeriod: 5000, MinAllowedWeights: 1, MaxWeightLimit: 65535,
		WeightsRateLimit: 100, ActivityCutoffMilli: 13_889, MaxAllowedUIDs: 256, MaxAllowedValidators: 64,
		BondsMovingAverage: 900_000, BondsPenalty: 65535, Yuma3: 1, AlphaLow: 45875, AlphaHigh: 58982,
		AlphaSteepness: 1000, CommitReveal: 0, RevealPeriod: 1, MinBurn: 500_000, MaxBurn: 100 * types.RaoPerTAO,
		ServingRateLimit: 50, BurnHalfLife: 360, BurnIncreaseMult: 1260,
	}
}

func (g *Genesis) enc(w *types.Writer) {
	w.String("taobox/genesis/v1")
	w.String(g.ChainName)
	w.U64(g.TimeMs)
	w.Len(len(g.Balances))
	for _, b := range g.Balances {
		w.Fixed(b.Account[:])
		w.U64(b.Free)
	}
	for _, f := range g.Params.fields() {
		w.U64(*f)
	}
	for _, f := range g.SubnetDefaults.fields() {
		w.U64(*f)
	}
	// Appended only when set, so a legacy genesis keeps its chain id.
	if len(g.Authorities) > 0 || g.AuthorityEpoch != 0 || g.MaxAuthorities != 0 {
		w.String("authorities/v1")
		w.Len(len(g.Authorities))
		for _, a := range g.Authorities {
			w.Fixed(a.Hotkey[:])
			w.U64(a.Power)
		}
		w.U64(g.AuthorityEpoch)
		w.U64(g.MaxAuthorities)
	}
	if g.JailEpochs != 0 { // likewise
		w.String("jail/v1")
		w.U64(g.JailEpochs)
	}
}

// ID is the chain id: the hash of the genesis' canonical encoding.
func (g *Genesis) ID() types.Hash {
	w := types.NewWriter(nil)
	g.enc(w)
	return types.HashBytes(w.Bytes())
}

// Validate checks the genesis: names, unique funded accounts, the supply
// cap, and parameters within their bounds.
func (g *Genesis) Validate() error {
	if g.ChainName == "" || len(g.ChainName) > 64 {
		return errors.New("genesis: chain_name must be 1 to 64 bytes")
	}
	var total uint64
	seen := map[types.AccountID]bool{}
	for i, b := range g.Balances {
		if seen[b.Account] {
			return fmt.Errorf("genesis: balances[%d]: account %s is funded twice", i, b.Account)
		}
		seen[b.Account] = true
		if b.Free > MaxSupply-total {
			return fmt.Errorf("genesis: balances exceed the 21M TAO supply at balances[%d]", i)
		}
		total += b.Free
	}
	h := g.SubnetDefaults
	if h.Tempo < minTempo || h.Tempo > maxTempo {
		return fmt.Errorf("genesis: subnet_defaults.tempo must be in [%d, %d]", minTempo, maxTempo)
	}
	if h.MaxAllowedUIDs == 0 || h.MaxAllowedUIDs > maxUIDs || h.MaxAllowedValidators == 0 || h.MaxAllowedValidators > h.MaxAllowedUIDs {
		return errors.New("genesis: subnet_defaults needs 1 <= max_allowed_validators <= max_allowed_uids <= 256")
	}
	if h.MinBurn == 0 || h.MinBurn >= h.MaxBurn {
		return errors.New("genesis: subnet_defaults needs 0 < min_burn < max_burn")
	}
	if g.Params.RootValidators == 0 || g.Params.RootValidators > 1024 {
		return errors.New("genesis: params.root_validators must be in [1, 1024]")
	}
	if g.Params.QuorumPermille > 1000 {
		return errors.New("genesis: params.quorum_permille must be at most 1000")
	}
	for _, f := range globalParamFields { // the bounds governance keeps them in
		if err := checkGlobalParam(f.id, *f.get(&g.Params)); err != nil {
			return fmt.Errorf("genesis: params.%s: %w", f.name, err)
		}
	}
	if g.MaxAuthorities > maxAuthoritiesCap {
		return fmt.Errorf("genesis: max_authorities must be at most %d", maxAuthoritiesCap)
	}
	if g.JailEpochs > maxJailEpochs {
		return fmt.Errorf("genesis: jail_epochs must be at most %d", maxJailEpochs)
	}
	if len(g.Authorities) > maxAuthoritiesCap {
		return fmt.Errorf("genesis: at most %d authorities", maxAuthoritiesCap)
	}
	seenAuth := map[types.AccountID]bool{}
	var power uint64
	for i, a := range g.Authorities {
		if seenAuth[a.Hotkey] {
			return fmt.Errorf("genesis: authorities[%d]: hotkey %s is listed twice", i, a.Hotkey)
		}
		seenAuth[a.Hotkey] = true
		if a.Power > maxAuthorityWeight-power {
			return fmt.Errorf("genesis: the authorities' total power exceeds %d", uint64(maxAuthorityWeight))
		}
		power += a.Power
	}
	if len(g.Authorities) > 0 && power == 0 {
		return errors.New("genesis: the authorities' total power must be positive: the first authority set is the authorities with power (a zero-power authority is only a candidate for later epochs)")
	}
	return nil
}

// Changes returns the state of block 0.
func (g *Genesis) Changes() ([]Change, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	o := newOverlay(MemState{})
	var issuance uint64
	bal := slices.Clone(g.Balances)
	for _, b := range bal {
		issuance += b.Free
		if b.Free > 0 {
			o.store(key(pAccount, b.Account[:]), &Account{Free: b.Free})
		}
	}
	o.store(key(pGlobals), &Globals{Issuance: issuance, Params: g.Params})
	h := g.SubnetDefaults
	o.store(key(pDefaults), &h)
	return o.changes(), nil
}
