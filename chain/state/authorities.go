package state

import (
	"bytes"
	"fmt"
	"slices"

	"taobox/chain/types"
)

// Authority is a member of an authority set: a hotkey (also its consensus
// key) and the weight it votes with.
type Authority struct {
	Hotkey types.AccountID
	Weight uint64
}

// maxAuthorityWeight caps one weight and a set's total, so consensus
// priorities fit in int64 (chain/consensus MaxTotalStake, math.MaxInt64/8).
const maxAuthorityWeight = 1<<63/8 - 1

// GenesisSet returns the first epoch's authority set: the genesis
// authorities weighted by their power, top K as NextAuthorities orders
// them. It is empty for a legacy genesis without authorities.
func GenesisSet(g *Genesis) []Authority {
	return NextAuthorities(g.Authorities, func(types.AccountID) uint64 { return 0 }, g.AuthorityCap(), nil)
}

// NextAuthorities chooses the authority set of the next epoch, a pure
// function of its inputs:
//
//   - candidates are the genesis authorities (registering new candidates by
//     a transaction is future work);
//   - a candidate's weight is stake(hotkey) (its total delegated stake)
//     plus its genesis Power, saturating at the consensus cap;
//   - zero-weight candidates are dropped;
//   - the k heaviest are kept, ties broken by hotkey bytes ascending, and
//     the result is in that order;
//   - if no candidate has weight, prev is returned (a set is never empty)
//     and the total is scaled down if needed so it stays under the cap.
func NextAuthorities(candidates []GenesisAuthority, stake func(types.AccountID) uint64, k int, prev []Authority) []Authority {
	out := make([]Authority, 0, len(candidates))
	for _, c := range candidates {
		w := c.Power + stake(c.Hotkey)
		if w < c.Power || w > maxAuthorityWeight { // overflow or above the cap
			w = maxAuthorityWeight
		}
		if w > 0 {
			out = append(out, Authority{Hotkey: c.Hotkey, Weight: w})
		}
	}
	slices.SortFunc(out, func(a, b Authority) int {
		if a.Weight != b.Weight {
			if a.Weight > b.Weight {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.Hotkey[:], b.Hotkey[:])
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	if len(out) == 0 {
		return slices.Clone(prev)
	}
	// Keep the total under the cap: shift every weight right until it fits
	// (no weight drops to zero, since each is at most the cap).
	for shift := uint(0); ; shift++ {
		var total uint64
		ok := true
		for _, a := range out {
			w := max(a.Weight>>shift, 1)
			if total+w > maxAuthorityWeight {
				ok = false
				break
			}
			total += w
		}
		if ok {
			if shift > 0 {
				for i := range out {
					out[i].Weight = max(out[i].Weight>>shift, 1)
				}
			}
			return out
		}
	}
}

// QueryNextAuthorities reads every candidate's total delegated stake from r
// (the state after block epochEnd, the last block of an epoch) and returns
// NextAuthorities for the epoch that follows, leaving out the candidates
// jailed for it (Jailed, with g's epoch length and jail period). When every
// candidate is jailed or weightless, prev stays.
func QueryNextAuthorities(r Reader, g *Genesis, prev []Authority, epochEnd uint64) ([]Authority, error) {
	stakes := make(map[types.AccountID]uint64, len(g.Authorities))
	next := epochEnd / g.EpochBlocks() // the epoch of epochEnd+1
	cands := make([]GenesisAuthority, 0, len(g.Authorities))
	for _, a := range g.Authorities {
		at, err := QueryJail(r, a.Hotkey)
		if err != nil {
			return nil, fmt.Errorf("state: jail record of authority candidate %s: %w", a.Hotkey, err)
		}
		if Jailed(at, next, g.EpochBlocks(), g.JailPeriod()) {
			continue
		}
		cands = append(cands, a)
		_, total, err := QueryStake(r, a.Hotkey, types.AccountID{})
		if err != nil {
			return nil, fmt.Errorf("state: stake of authority candidate %s: %w", a.Hotkey, err)
		}
		stakes[a.Hotkey] = total
	}
	return NextAuthorities(cands, func(id types.AccountID) uint64 { return stakes[id] }, g.AuthorityCap(), prev), nil
}
