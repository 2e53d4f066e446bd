package dashboard

import (
	"math/bits"

	"taobox/chain/node"
	"taobox/chain/types"
)

// Hyperparameter names as GET /v1/subnet/{netuid} reports them.
const (
	hpImmunity   = "immunity_period"
	hpRateLimit  = "weights_rate_limit"
	hpMaxUIDs    = "max_allowed_uids"
	hpMinBurn    = "min_burn"
	hpMaxBurn    = "max_burn"
	hpHalfLife   = "burn_half_life"
	hpBurnMult   = "burn_increase_mult"
	hpCommitRvl  = "commit_reveal"
	burnMultUnit = 1000 // burn_increase_mult is ×1000 and at least 1000
)

// Eviction is how close one uid is to being replaced by a registration.
type Eviction struct {
	UID uint16
	// Owner: the subnet owner's hotkey, never pruned.
	Owner bool
	// Immune: registered less than immunity_period blocks before the next
	// block; ImmunityLeft counts the blocks after the head during which it
	// still is (0 when not immune).
	Immune       bool
	ImmunityLeft uint64
	// Rank is the uid's place (1 = first) in the pruning order among the
	// Prunable uids (non-immune, not the owner's): lowest emission first,
	// then earliest registration, then lowest uid. 0 when not prunable.
	Rank     int
	Prunable int
	// ProspectiveRank, for an immune uid, is the rank it would have if its
	// immunity ended now (the others unchanged), and ProspectiveRegs the
	// registrations that would then prune it (free slots + rank; 0 when
	// max_allowed_uids is unknown); both 0 otherwise.
	ProspectiveRank int
	ProspectiveRegs int
	// RegsUntilPruned is how many registrations from now would replace
	// this uid if nothing else changed (they all land in the next block,
	// emissions unchanged): the free slots, then its Rank (each new uid is
	// immune, so the k-th registration in a full subnet takes the k-th in
	// the order). 0 when not prunable, when max_allowed_uids is unknown,
	// or when registrations alone never reach it (immunity_period 0: the
	// new uids, at emission 0, go first).
	RegsUntilPruned int
}

// AtRisk reports whether the next k registrations would prune the uid.
func (e Eviction) AtRisk(k int) bool {
	return e.RegsUntilPruned > 0 && e.RegsUntilPruned <= k
}

// pruneLess is chain/state's pruning order: is a pruned before b?
func pruneLess(a, b *node.NeuronInfo) bool {
	if a.Emission != b.Emission {
		return a.Emission < b.Emission
	}
	if a.RegisteredAt != b.RegisteredAt {
		return a.RegisteredAt < b.RegisteredAt
	}
	return a.UID < b.UID
}

// Evictions returns one Eviction per neuron of mg, in mg's order, as a
// registration in the block after mg.Block would see them. It needs sn's
// hyperparameters (immunity_period, max_allowed_uids; GET /v1/subnet).
func Evictions(mg *node.MetagraphInfo, sn *node.SubnetInfo) []Eviction {
	if mg == nil || sn == nil {
		return nil
	}
	next := mg.Block + 1
	immunity := sn.Hyperparams[hpImmunity]
	out := make([]Eviction, len(mg.Neurons))
	var prunable []*node.NeuronInfo
	for i := range mg.Neurons {
		nr := &mg.Neurons[i]
		e := Eviction{UID: nr.UID, Owner: nr.Hotkey == sn.OwnerHotkey}
		if end := nr.RegisteredAt + immunity; next < end {
			e.Immune, e.ImmunityLeft = true, end-next
		}
		if !e.Owner && !e.Immune {
			prunable = append(prunable, nr)
		}
		out[i] = e
	}
	free := -1 // unknown
	if maxUIDs, ok := sn.Hyperparams[hpMaxUIDs]; ok {
		free = 0
		if n := uint64(len(mg.Neurons)); maxUIDs > n {
			free = int(min(maxUIDs-n, 1<<20))
		}
	}
	for i := range mg.Neurons {
		nr := &mg.Neurons[i]
		e := &out[i]
		rank := 1
		for _, p := range prunable {
			if p.UID != nr.UID && pruneLess(p, nr) {
				rank++
			}
		}
		switch {
		case e.Owner:
		case e.Immune:
			e.ProspectiveRank = rank
			if free >= 0 {
				e.ProspectiveRegs = free + rank
			}
		default:
			e.Rank, e.Prunable = rank, len(prunable)
			switch {
			case free < 0:
			case immunity == 0 && nr.Emission > 0:
				// New uids are not immune and, at emission 0, are
				// replaced before this one: only a first registration
				// into a full subnet where it is first reaches it.
				if free == 0 && rank == 1 {
					e.RegsUntilPruned = 1
				}
			default:
				e.RegsUntilPruned = free + rank
			}
		}
		if e.Owner || e.Immune {
			e.Prunable = len(prunable)
		}
	}
	return out
}

// WeightWindow is when a uid's next weights (or weight commit) are legal.
type WeightWindow struct {
	At uint64 // the first block that accepts them (> head)
	In uint64 // At - head: 1 means the next block
}

// Open reports whether the next block accepts weights.
func (w WeightWindow) Open() bool { return w.In <= 1 }

// NextWeightWindow applies the weights rate limit: the chain accepts a
// uid's weights at block b when lastUpdate is 0 or b - lastUpdate >=
// rateLimit, and the next block is head+1.
func NextWeightWindow(lastUpdate, rateLimit, head uint64) WeightWindow {
	at := head + 1
	if lastUpdate != 0 && lastUpdate+rateLimit > at {
		at = lastUpdate + rateLimit
	}
	return WeightWindow{At: at, In: at - head}
}

// NextEpoch returns the block in which subnet sn next runs its epoch (the
// chain runs it when block - last_epoch >= tempo) after head, and false
// when the tempo is 0 (never).
func NextEpoch(sn *node.SubnetInfo, head uint64) (uint64, bool) {
	if sn == nil || sn.Tempo == 0 {
		return 0, false
	}
	return max(sn.LastEpoch+sn.Tempo, head+1), true
}

// Price is a subnet's registration price (rao).
type Price struct {
	Now       uint64 // what a registration in the next block pays (before that block's decay)
	AfterNext uint64 // the price right after one more registration
	Min, Max  uint64 // the clamp; 0, 0 when unknown
	HalfLife  uint64 // blocks for the price to halve with no registration; 0 when unknown
}

// RegistrationPrice reads the burn and its rules from sn (GET /v1/subnet).
func RegistrationPrice(sn *node.SubnetInfo) Price {
	hp := sn.Hyperparams
	p := Price{Now: sn.Burn, Min: hp[hpMinBurn], Max: hp[hpMaxBurn], HalfLife: hp[hpHalfLife]}
	p.AfterNext = p.Now
	mult, ok := hp[hpBurnMult]
	if !ok {
		return p
	}
	mult = max(mult, burnMultUnit)
	hi, lo := bits.Mul64(p.Now, mult)
	if hi >= burnMultUnit {
		p.AfterNext = p.Max
		return p
	}
	q, _ := bits.Div64(hi, lo, burnMultUnit)
	if p.Max > 0 {
		q = min(max(q, p.Min), p.Max)
	}
	p.AfterNext = q
	return p
}

// ours maps our addresses to their names.
func ours(our []Account) map[types.AccountID]string {
	m := make(map[types.AccountID]string, len(our))
	for _, a := range our {
		if _, ok := m[a.Address]; !ok || a.Name != "" {
			m[a.Address] = a.Name
		}
	}
	return m
}

// OurUIDs returns the indexes into mg.Neurons of our hotkeys' uids.
func OurUIDs(mg *node.MetagraphInfo, our []Account) []int {
	if mg == nil {
		return nil
	}
	m := ours(our)
	var out []int
	for i := range mg.Neurons {
		if _, ok := m[mg.Neurons[i].Hotkey]; ok {
			out = append(out, i)
		}
	}
	return out
}
