package state

import (
	"fmt"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// Read-only queries over a committed state, for the node's API and tools.
// They never write; a storage error is returned as is.

func query[T any](r Reader, f func(x *exec) (T, error)) (T, error) {
	x := &exec{o: newOverlay(r)}
	v, err := f(x)
	if err == nil && x.o.readErr != nil {
		err = x.o.readErr
	}
	return v, err
}

// AccountInfo is an account's balance, nonce and total stake.
type AccountInfo struct {
	Free   uint64
	Nonce  uint64
	Staked uint64 // total stake of this coldkey over all hotkeys
}

// QueryAccount returns an account (zero values for an unknown one).
func QueryAccount(r Reader, id types.AccountID) (AccountInfo, error) {
	return query(r, func(x *exec) (AccountInfo, error) {
		a := x.account(id)
		return AccountInfo{Free: a.Free, Nonce: a.Nonce, Staked: x.o.getU64(key(pColdStake, id[:]))}, nil
	})
}

// QueryGlobals returns the chain-wide counters and parameters.
func QueryGlobals(r Reader) (Globals, error) {
	return query(r, func(x *exec) (Globals, error) { return *x.globals(), nil })
}

// QuerySubnets returns the ids of every subnet, ascending.
func QuerySubnets(r Reader) ([]types.Netuid, error) {
	return query(r, func(x *exec) ([]types.Netuid, error) { return x.subnetList(), nil })
}

// QuerySubnet returns a subnet's record; false if it does not exist.
func QuerySubnet(r Reader, n types.Netuid) (Subnet, bool, error) {
	type res struct {
		s  Subnet
		ok bool
	}
	v, err := query(r, func(x *exec) (res, error) {
		s, ok := x.subnet(n)
		return res{*s, ok}, nil
	})
	return v.s, v.ok, err
}

// QueryStake returns coldkey's stake on hotkey and the hotkey's total.
func QueryStake(r Reader, hotkey, coldkey types.AccountID) (own, total uint64, err error) {
	type res struct{ own, total uint64 }
	v, err := query(r, func(x *exec) (res, error) {
		return res{x.stakeOf(hotkey, coldkey), x.hotkeyStake(hotkey)}, nil
	})
	return v.own, v.total, err
}

// QueryShares returns each subnet's part of the block reward (of 65535).
func QueryShares(r Reader) ([]Share, error) {
	return query(r, func(x *exec) ([]Share, error) {
		var sh shares
		x.o.load(key(pShares), &sh)
		return sh, nil
	})
}

// QueryProposal returns a governance proposal; false if it does not exist.
func QueryProposal(r Reader, id uint64) (Proposal, bool, error) {
	type res struct {
		p  Proposal
		ok bool
	}
	v, err := query(r, func(x *exec) (res, error) {
		var p Proposal
		ok := x.o.load(key(pProposal, u64b(id)), &p)
		return res{p, ok}, nil
	})
	return v.p, v.ok, err
}

// NeuronInfo is one uid of a metagraph: its stored record plus what the
// bittensor SDK's metagraph also shows (owner, stake, take, weights and bonds;
// rank and trust are no longer computed by subtensor).
type NeuronInfo struct {
	Neuron
	UID     uint16
	Coldkey types.AccountID
	Stake   uint64 // total stake on the hotkey (rao)
	Take    uint16
	Weights []yuma.Entry
	Bonds   []yuma.Entry
}

// Metagraph is a subnet's full view at a height.
type Metagraph struct {
	Netuid  types.Netuid
	Subnet  Subnet
	Neurons []NeuronInfo
}

// QueryMetagraph returns the metagraph of subnet n.
func QueryMetagraph(r Reader, n types.Netuid) (*Metagraph, error) {
	return query(r, func(x *exec) (*Metagraph, error) {
		s, ok := x.subnet(n)
		if !ok {
			return nil, fmt.Errorf("subnet %d does not exist", n)
		}
		m := &Metagraph{Netuid: n, Subnet: *s}
		nb := u16b(uint16(n))
		for uid := range uint16(s.N) {
			nr, _ := x.neuron(n, uid)
			ck, _ := x.owner(nr.Hotkey)
			info := NeuronInfo{Neuron: *nr, UID: uid, Coldkey: ck, Stake: x.hotkeyStake(nr.Hotkey), Take: x.take(nr.Hotkey).Take}
			var w, b entries
			x.o.load(key(pWeights, nb, u16b(uid)), &w)
			x.o.load(key(pBonds, nb, u16b(uid)), &b)
			info.Weights, info.Bonds = w, b
			m.Neurons = append(m.Neurons, info)
		}
		return m, nil
	})
}

// HyperparamNames maps each owner-settable parameter to its name, as the
// CLI and API show it.
func HyperparamNames() map[types.Hyperparam]string {
	out := make(map[types.Hyperparam]string, len(hyperparamRules))
	for p := range hyperparamRules {
		out[p] = p.String()
	}
	return out
}

// HyperparamValue returns the value of parameter p in h.
func HyperparamValue(h *Hyperparams, p types.Hyperparam) (uint64, bool) {
	r, ok := hyperparamRules[p]
	if !ok {
		return 0, false
	}
	return *r.field(h), true
}
