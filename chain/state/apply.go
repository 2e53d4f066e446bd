package state

import (
	"context"
	"errors"
	"fmt"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// Env is what block application needs besides the state and the block.
type Env struct {
	// ChainID is the genesis hash; transactions sign over it.
	ChainID types.Hash
	// Engine runs the epochs due in a block, all in one call. Nil means a
	// CPU engine on all cores; the GPU engine plugs in here.
	Engine yuma.Engine
	// SigVerified, if set, reports whether the transaction with this hash
	// (which covers its signature) already had its signature verified, for
	// example when the mempool admitted it; ApplyBlock then skips that
	// check. The result is the same either way for a correctly signed
	// transaction, so this only saves time.
	SigVerified func(types.Hash) bool
	// Evidence lists the equivocations the block commits, already verified
	// by the node against the authority set of each offence's height (see
	// evidence.go). An offence committed before makes the block invalid.
	Evidence []Equivocation
}

// Result is the work a block leaves for the node: the state changes to
// commit atomically and the events to index.
type Result struct {
	Changes []Change
	Events  []types.Event
}

// TxError says why a transaction makes a block invalid (bad signature,
// wrong nonce, outside its validity window, or unable to pay its fee). A
// transaction that is valid but whose call fails is not an error: it pays its
// fee, bumps its nonce and is recorded by an EvTxFailed event.
type TxError struct {
	Index  int
	Reason string
}

func (e *TxError) Error() string { return fmt.Sprintf("tx %d: %s", e.Index, e.Reason) }

var defaultEngine = yuma.NewCPUEngine(0)

// ApplyBlock applies the transactions of the block at height to the state
// read through base, and returns the block's changes and events. It writes
// nothing. An invalid transaction makes the whole block invalid (*TxError);
// a storage read error is returned as is.
//
// Order within a block: registration prices decay, the block reward accrues
// to subnets, the evidence (Env.Evidence) is committed, the transactions run, then the epochs of every subnet whose
// tempo is due (and the root epoch) run in one engine call, and finally
// governance proposals that reached a decision are enacted.
func ApplyBlock(ctx context.Context, base Reader, env Env, height uint64, txs []types.Tx) (*Result, error) {
	if env.Engine == nil {
		env.Engine = defaultEngine
	}
	x := &exec{o: newOverlay(base), env: env, height: height, txIndex: -1}
	if !x.o.load(key(pGlobals), &Globals{}) {
		if x.o.readErr != nil {
			return nil, x.o.readErr
		}
		return nil, errors.New("state: no globals record: the state was not initialised from a genesis")
	}
	x.beginBlock()
	if err := x.applyEvidence(); err != nil {
		return nil, err
	}
	for i := range txs {
		if err := x.applyTx(i, &txs[i]); err != nil {
			return nil, err
		}
	}
	x.txIndex = -1
	if err := x.endBlock(ctx); err != nil {
		return nil, err
	}
	if x.o.readErr != nil {
		return nil, fmt.Errorf("state: reading the previous state: %w", x.o.readErr)
	}
	return &Result{Changes: x.o.changes(), Events: x.events}, nil
}

// exec is the execution context of one block.
type exec struct {
	o       *overlay // the block's overlay, or a transaction's child
	env     Env
	height  uint64
	events  []types.Event
	txIndex int32
}

func (x *exec) emit(ev types.Event) {
	ev.TxIndex = x.txIndex
	x.events = append(x.events, ev)
}

func (x *exec) globals() *Globals {
	var g Globals
	x.o.load(key(pGlobals), &g)
	return &g
}

func (x *exec) putGlobals(g *Globals) { x.o.store(key(pGlobals), g) }

func (x *exec) account(id types.AccountID) *Account {
	var a Account
	x.o.load(key(pAccount, id[:]), &a)
	return &a
}

func (x *exec) putAccount(id types.AccountID, a *Account) {
	if a.Free == 0 && a.Nonce == 0 {
		x.o.del(key(pAccount, id[:]))
		return
	}
	x.o.store(key(pAccount, id[:]), a)
}

// FeeFree reports whether a call of kind k pays no fee (clients use it to
// check a balance before they sign).
func FeeFree(k types.CallKind) bool { return feeFree(k) }

// feeFree lists the calls that pay no fee (they are rate limited instead),
// as in subtensor: weights, serving, take changes and votes.
func feeFree(k types.CallKind) bool {
	switch k {
	case types.KindSetWeights, types.KindCommitWeights, types.KindRevealWeights, types.KindServe,
		types.KindSetTake, types.KindSetRootWeights, types.KindVote:
		return true
	}
	return false
}

// CheckTx runs the checks that make a transaction includable at height:
// signature, validity window, nonce and fee. The mempool uses it; ApplyBlock
// runs the same checks. It returns the fee the transaction pays.
func CheckTx(base Reader, env Env, height uint64, tx *types.Tx) (uint64, error) {
	x := &exec{o: newOverlay(base), env: env, height: height}
	fee, err := x.checkTx(tx)
	if err == nil && x.o.readErr != nil {
		err = x.o.readErr
	}
	return fee, err
}

func (x *exec) checkTx(tx *types.Tx) (uint64, error) {
	if tx.Call == nil {
		return 0, errors.New("no call")
	}
	if tx.ValidUntil < x.height {
		return 0, fmt.Errorf("expired: valid until block %d, now %d", tx.ValidUntil, x.height)
	}
	if tx.ValidUntil > x.height+types.MaxValidityWindow {
		return 0, fmt.Errorf("valid_until %d is more than %d blocks ahead of %d", tx.ValidUntil, types.MaxValidityWindow, x.height)
	}
	acct := x.account(tx.Signer)
	if tx.Nonce != acct.Nonce {
		return 0, fmt.Errorf("nonce %d, the account's next nonce is %d", tx.Nonce, acct.Nonce)
	}
	if x.env.SigVerified == nil || !x.env.SigVerified(tx.Hash()) {
		if err := tx.Verify(x.env.ChainID); err != nil {
			return 0, err
		}
	}
	var fee uint64
	if !feeFree(tx.Call.Kind()) {
		fee = x.globals().Params.TransferFee
	}
	if acct.Free < fee {
		return 0, fmt.Errorf("balance %d rao cannot pay the fee of %d rao", acct.Free, fee)
	}
	return fee, nil
}

// applyTx checks a transaction, takes its fee and nonce, and runs its call
// in a child overlay that is dropped if the call fails.
func (x *exec) applyTx(i int, tx *types.Tx) error {
	x.txIndex = int32(i)
	fee, err := x.checkTx(tx)
	if err != nil {
		return &TxError{Index: i, Reason: err.Error()}
	}
	acct := x.account(tx.Signer)
	acct.Free -= fee
	acct.Nonce++
	x.putAccount(tx.Signer, acct)
	if fee > 0 {
		g := x.globals()
		g.Burned += fee
		x.putGlobals(g)
		x.emit(types.Event{Kind: types.EvFeeBurned, Account: tx.Signer, Amount: fee})
	}

	parent, mark := x.o, len(x.events)
	x.o = parent.child()
	callErr := x.dispatch(tx.Signer, tx.Call)
	if callErr != nil {
		x.o = parent
		x.events = x.events[:mark]
		x.emit(types.Event{Kind: types.EvTxFailed, Account: tx.Signer, Value: uint64(tx.Call.Kind()), Error: truncate(callErr.Error(), 256)})
		return nil
	}
	x.o.merge()
	x.o = parent
	x.emit(types.Event{Kind: types.EvTxApplied, Account: tx.Signer, Value: uint64(tx.Call.Kind())})
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// dispatch runs a call. Errors are user-facing reasons.
func (x *exec) dispatch(signer types.AccountID, c types.Call) error {
	switch c := c.(type) {
	case types.Transfer:
		return x.transfer(signer, c)
	case types.RegisterNetwork:
		return x.registerNetwork(signer, c)
	case types.SetHyperparam:
		return x.setHyperparam(signer, c)
	case types.BurnedRegister:
		return x.burnedRegister(signer, c)
	case types.Serve:
		return x.serve(signer, c)
	case types.AddStake:
		return x.addStake(signer, c)
	case types.RemoveStake:
		return x.removeStake(signer, c)
	case types.SetTake:
		return x.setTake(signer, c)
	case types.SetWeights:
		return x.setWeights(signer, c)
	case types.CommitWeights:
		return x.commitWeights(signer, c)
	case types.RevealWeights:
		return x.revealWeights(signer, c)
	case types.SetRootWeights:
		return x.setRootWeights(signer, c)
	case types.Propose:
		return x.propose(signer, c)
	case types.Vote:
		return x.vote(signer, c)
	}
	return fmt.Errorf("unknown call %T", c)
}

// transfer moves free balance between accounts.
func (x *exec) transfer(from types.AccountID, c types.Transfer) error {
	if c.Amount == 0 {
		return errors.New("transfer of 0 rao")
	}
	if c.To == from {
		return errors.New("transfer to the sender itself")
	}
	src := x.account(from)
	if src.Free < c.Amount {
		return fmt.Errorf("insufficient balance: %d rao free, %d rao to send", src.Free, c.Amount)
	}
	src.Free -= c.Amount
	x.putAccount(from, src)
	dst := x.account(c.To)
	dst.Free += c.Amount // cannot overflow: it is bounded by issuance
	x.putAccount(c.To, dst)
	x.emit(types.Event{Kind: types.EvTransfer, Account: from, Other: c.To, Amount: c.Amount})
	return nil
}
