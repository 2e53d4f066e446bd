package state

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"taobox/chain/types"
)

// stakeOf returns coldkey's stake on hotkey.
func (x *exec) stakeOf(hotkey, coldkey types.AccountID) uint64 {
	return x.o.getU64(key(pStake, hotkey[:], coldkey[:]))
}

// hotkeyStake returns the total stake on hotkey.
func (x *exec) hotkeyStake(hotkey types.AccountID) uint64 {
	return x.o.getU64(key(pHotStake, hotkey[:]))
}

// creditStake adds amount to coldkey's stake on hotkey and every total,
// g.TotalStake included (the caller stores g). It does not touch free
// balances or issuance; callers do.
func (x *exec) creditStake(g *Globals, hotkey, coldkey types.AccountID, amount uint64) {
	if amount == 0 {
		return
	}
	k := key(pStake, hotkey[:], coldkey[:])
	before := x.o.getU64(k)
	x.o.setU64(k, before+amount)
	x.o.setU64(key(pHotStake, hotkey[:]), x.hotkeyStake(hotkey)+amount)
	ck := key(pColdStake, coldkey[:])
	x.o.setU64(ck, x.o.getU64(ck)+amount)
	g.TotalStake += amount
	if before == 0 {
		var l accounts
		sk := key(pStakers, hotkey[:])
		x.o.load(sk, &l)
		i, _ := slices.BinarySearchFunc(l, coldkey, compareID)
		l = slices.Insert(l, i, coldkey)
		x.o.store(sk, &l)
	}
}

// debitStake removes amount of coldkey's stake on hotkey (amount <= stake),
// g.TotalStake included (the caller stores g).
func (x *exec) debitStake(g *Globals, hotkey, coldkey types.AccountID, amount uint64) {
	k := key(pStake, hotkey[:], coldkey[:])
	after := x.o.getU64(k) - amount
	x.o.setU64(k, after)
	x.o.setU64(key(pHotStake, hotkey[:]), x.hotkeyStake(hotkey)-amount)
	ck := key(pColdStake, coldkey[:])
	x.o.setU64(ck, x.o.getU64(ck)-amount)
	g.TotalStake -= amount
	if after == 0 {
		var l accounts
		sk := key(pStakers, hotkey[:])
		x.o.load(sk, &l)
		if i, ok := slices.BinarySearchFunc(l, coldkey, compareID); ok {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			x.o.del(sk)
		} else {
			x.o.store(sk, &l)
		}
	}
}

func compareID(a, b types.AccountID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// addStake stakes free balance on a hotkey (plain-TAO model of
// chain-rules.md §3.1): anyone may nominate any hotkey that has an owner.
func (x *exec) addStake(coldkey types.AccountID, c types.AddStake) error {
	if _, ok := x.owner(c.Hotkey); !ok {
		return fmt.Errorf("hotkey %s has no owner: register it on a subnet first", c.Hotkey)
	}
	if min := x.globals().Params.MinStake; c.Amount < min {
		return fmt.Errorf("stake of %d rao is below the minimum of %d rao", c.Amount, min)
	}
	if err := x.debit(coldkey, c.Amount, "staking"); err != nil {
		return err
	}
	g := x.globals()
	x.creditStake(g, c.Hotkey, coldkey, c.Amount)
	x.putGlobals(g)
	x.emit(types.Event{Kind: types.EvStakeAdded, Account: coldkey, Other: c.Hotkey, Amount: c.Amount})
	return nil
}

// removeStake returns stake to the free balance.
func (x *exec) removeStake(coldkey types.AccountID, c types.RemoveStake) error {
	if c.Amount == 0 {
		return errors.New("unstaking 0 rao")
	}
	have := x.stakeOf(c.Hotkey, coldkey)
	if have < c.Amount {
		return fmt.Errorf("you have %d rao staked on %s, cannot unstake %d rao", have, c.Hotkey, c.Amount)
	}
	g := x.globals()
	x.debitStake(g, c.Hotkey, coldkey, c.Amount)
	x.putGlobals(g)
	a := x.account(coldkey)
	a.Free += c.Amount
	x.putAccount(coldkey, a)
	x.emit(types.Event{Kind: types.EvStakeRemoved, Account: coldkey, Other: c.Hotkey, Amount: c.Amount})
	return nil
}

// take returns a hotkey's delegate take record (18% by default).
func (x *exec) take(hotkey types.AccountID) *Take {
	t := &Take{Take: defaultTake}
	x.o.load(key(pTake, hotkey[:]), t)
	return t
}

// setTake changes a hotkey's take: increases are rate limited, decreases
// are not (and reset the limit), as increase_take/decrease_take.
func (x *exec) setTake(coldkey types.AccountID, c types.SetTake) error {
	if o, ok := x.owner(c.Hotkey); !ok || o != coldkey {
		return fmt.Errorf("only the owner of hotkey %s may set its take", c.Hotkey)
	}
	p := x.globals().Params
	if uint64(c.Take) > p.MaxDelegateTake {
		return fmt.Errorf("take %d is above the maximum of %d (of 65535)", c.Take, p.MaxDelegateTake)
	}
	t := x.take(c.Hotkey)
	switch {
	case c.Take == t.Take:
		return fmt.Errorf("the take is already %d", c.Take)
	case c.Take > t.Take:
		if t.LastIncrease != 0 && x.height-t.LastIncrease <= p.TakeRateLimit {
			return fmt.Errorf("take increase rate limit: last increase at block %d, next allowed after block %d",
				t.LastIncrease, t.LastIncrease+p.TakeRateLimit)
		}
		t.LastIncrease = x.height
	default:
		t.LastIncrease = x.height
	}
	t.Take = c.Take
	x.o.store(key(pTake, c.Hotkey[:]), t)
	x.emit(types.Event{Kind: types.EvTakeSet, Account: coldkey, Other: c.Hotkey, Value: uint64(c.Take)})
	return nil
}

// mulDiv returns floor(a·b/c) for c > 0 (the result fits: callers pass b <= c).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// payDividends splits a hotkey's validator emission (chain-rules.md §3.1):
// the owner takes its take, the rest goes to every staker (owner included)
// pro rata to stake, the rounding dust to the owner; all credited as stake.
// g.TotalStake grows by v (the caller stores g).
func (x *exec) payDividends(g *Globals, hotkey types.AccountID, v uint64) {
	owner, ok := x.owner(hotkey)
	if !ok || v == 0 {
		return
	}
	t := x.take(hotkey)
	take := mulDiv(v, uint64(t.Take), 65535)
	rest := v - take
	total := x.hotkeyStake(hotkey)
	var l accounts
	x.o.load(key(pStakers, hotkey[:]), &l)
	paid := uint64(0)
	if total > 0 {
		shares := make([]uint64, len(l))
		for i, c := range l {
			shares[i] = mulDiv(rest, x.stakeOf(hotkey, c), total)
		}
		for i, c := range l { // credit after computing, so shares use pre-payout stake
			x.creditStake(g, hotkey, c, shares[i])
			paid += shares[i]
		}
	}
	x.creditStake(g, hotkey, owner, v-paid)
}
