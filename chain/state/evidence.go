package state

import (
	"encoding/binary"
	"fmt"

	"taobox/chain/types"
)

// Equivocation evidence and jailing.
//
// The node verifies each piece of evidence a block carries (two conflicting
// signed consensus messages, chain/consensus VerifyEvidence against the
// authority set of the offence's height) and hands what it proves to
// ApplyBlock through Env.Evidence. The state then, deterministically:
//
//   - refuses the block if an offence was already committed (by this or an
//     earlier block), so each (offender, height, round, type) counts once;
//   - records the offence under its key with the committing block height;
//   - jails the offender: its jail record holds the last block that
//     committed evidence against it, and QueryNextAuthorities leaves it out
//     of the sets of the next Genesis.JailEpochs authority epochs after the
//     epoch of that block;
//   - emits EvEquivocation (Account = offender, Value = height, Amount =
//     round, UID = message type, TxIndex -1).
//
// Jailing takes no stake and no genesis power: slashing is future work.

// Equivocation is what a verified piece of evidence proves: Offender
// signed two conflicting messages of Type (1 prevote, 2 precommit, 0x20
// proposal) at Height and Round.
type Equivocation struct {
	Offender types.AccountID
	Height   uint64
	Round    uint32
	Type     uint8
}

func evidenceKey(e Equivocation) []byte {
	k := key(pEvidence, e.Offender[:], u64b(e.Height))
	k = binary.BigEndian.AppendUint32(k, e.Round)
	return append(k, e.Type)
}

// applyEvidence commits the block's equivocations (Env.Evidence), in
// order. It fails, making the block invalid, on an offence committed
// before or listed twice, and on one not below the block's height + 1.
func (x *exec) applyEvidence() error {
	seen := make(map[Equivocation]bool, len(x.env.Evidence))
	for i, e := range x.env.Evidence {
		switch {
		case e.Offender.IsZero():
			return fmt.Errorf("state: evidence %d names no offender", i)
		case e.Height == 0 || e.Height > x.height:
			return fmt.Errorf("state: evidence %d is for height %d, block %d can only carry offences at heights 1 to %d", i, e.Height, x.height, x.height)
		case seen[e]:
			return fmt.Errorf("state: evidence %d repeats an offence of this block (%s at height %d round %d)", i, e.Offender, e.Height, e.Round)
		}
		seen[e] = true
		k := evidenceKey(e)
		if at := x.o.getU64(k); at != 0 {
			return fmt.Errorf("state: evidence %d: the offence of %s at height %d round %d type %d was committed by block %d already", i, e.Offender, e.Height, e.Round, e.Type, at)
		}
		x.o.setU64(k, x.height)
		x.o.setU64(key(pJail, e.Offender[:]), x.height)
		x.emit(types.Event{Kind: types.EvEquivocation, Account: e.Offender, Value: e.Height, Amount: uint64(e.Round), UID: uint16(e.Type)})
	}
	return nil
}

// QueryEquivocation returns the block that committed e's offence, or 0
// when it is not on chain.
func QueryEquivocation(r Reader, e Equivocation) (uint64, error) {
	return query(r, func(x *exec) (uint64, error) { return x.o.getU64(evidenceKey(e)), nil })
}

// QueryJail returns the last block that committed evidence against
// hotkey, or 0 when there is none.
func QueryJail(r Reader, hotkey types.AccountID) (uint64, error) {
	return query(r, func(x *exec) (uint64, error) { return x.o.getU64(key(pJail, hotkey[:])), nil })
}

// Jailed reports whether a hotkey whose last offence was committed by block
// jailedAt (0: never) is left out of the authority set of epoch next, with
// epochs of epochBlocks blocks (heights e·E+1 … (e+1)·E form epoch e): it
// is for the jailEpochs epochs after the epoch of jailedAt.
func Jailed(jailedAt, next, epochBlocks, jailEpochs uint64) bool {
	if jailedAt == 0 || epochBlocks == 0 {
		return false
	}
	at := (jailedAt - 1) / epochBlocks
	return next > at && next-at <= jailEpochs
}
