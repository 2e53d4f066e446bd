package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/wallet"
)

// Every 'taobox tx' command builds one call from its flags, signs it with the
// wallet's coldkey or one of its hotkeys, and sends it to a node: nonce
// (pending_nonce, so several transactions can be queued) and validity window
// (head + txValidity) come from the node's API, and by default the command
// waits until the transaction is in a block and reports whether its call
// succeeded.

// txValidity is how many blocks after the head a transaction stays valid.
const txValidity = 64

// txPollInterval is how often --wait asks the node about the transaction.
const txPollInterval = 250 * time.Millisecond

// txOpts are the flags every tx command shares.
type txOpts struct {
	wallets, wallet, node *string
	wait                  *bool
	force                 *bool
	unlock                *unlockOpts  // the password of encrypted keys
	offline               *offlineOpts // --offline: sign into a file (txoffline.go)
}

func addTxFlags(fs *flag.FlagSet) *txOpts {
	return &txOpts{
		wallets: walletsFlag(fs),
		wallet:  fs.String("wallet", "default", "the `NAME` of the wallet that signs"),
		node:    nodeFlag(fs),
		wait:    fs.Bool("wait", true, "wait until the transaction is in a block and report its result (exit 1 if it failed)"),
		force:   fs.Bool("force", false, "send even when the node's state says the call will fail (it then fails on chain, and a fee-paying call still pays its fee)"),
		unlock:  unlockFlags(fs),
		offline: offlineFlags(fs),
	}
}

// txPlan is what a tx command sends.
type txPlan struct {
	signer ed25519.PrivateKey // nil: the wallet's coldkey, unlocked once the plan is built
	call   types.Call
	notes  []string     // printed before the result
	before func() error // runs before the transaction is sent
	after  func() error // runs once the call succeeded (with --wait)
}

// txSetup makes the setup of a tx command: define registers the
// command's own flags and returns the function that turns them into a plan
// once the wallet is loaded.
func txSetup(define func(fs *flag.FlagSet) func(e *env, w *wallet.Wallet) (*txPlan, error)) func(*flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		o := addTxFlags(fs)
		build := define(fs)
		return func(e *env) error {
			var c *apiClient
			if err := o.offline.validate(); err != nil {
				return err
			} else if !o.offline.on() {
				if c, err = newClient(*o.node); err != nil {
					return err
				}
			}
			w, err := loadWallet(*o.wallets, *o.wallet)
			if err != nil {
				return err
			}
			w.Unlock = o.unlock.unlocker(e)
			p, err := build(e, w)
			if err != nil {
				return err
			}
			if p.signer == nil {
				if p.signer, err = w.Coldkey(); err != nil {
					return err
				}
			}
			if o.offline.on() {
				return signOffline(e, o.offline, p)
			}
			return sendTx(e, c, p, *o.wait, *o.force)
		}
	}
}

// sendTx signs and submits p's call and, with wait, follows it into a block.
// Unless force, it first checks what the node's state says of the call
// (checkCall): a call that fails on chain still pays its fee.
func sendTx(e *env, c *apiClient, p *txPlan, wait, force bool) error {
	if err := types.ValidateCall(p.call); err != nil {
		return &usageError{"call", strings.TrimPrefix(err.Error(), "types: ")}
	}
	signer := types.AccountIDFromPrivateKey(p.signer)
	head, err := c.head(e.ctx)
	if err != nil {
		return err
	}
	acct, err := c.account(e.ctx, signer)
	if err != nil {
		return err
	}
	// The checks read the committed state; with this signer's earlier
	// transactions still waiting (a register-network, a stake removal)
	// the call may well succeed after them, so they are skipped (review:
	// a hyperparameter change sent right after register-network was
	// refused for a subnet about to exist).
	if !force && acct.PendingNonce == acct.Nonce {
		if err := checkCall(e.ctx, c, signer, acct, p.call); err != nil {
			return err
		}
	}
	tx := &types.Tx{Nonce: acct.PendingNonce, ValidUntil: head.Height + txValidity, Call: p.call}
	tx.Sign(p.signer, head.ChainID)
	if p.before != nil {
		if err := p.before(); err != nil {
			return err
		}
	}
	return submitTx(e, c, tx, p.notes, p.after, wait)
}

// submitTx submits a signed transaction and, with wait, follows it into a
// block, printing notes first; after runs once the call succeeded.
func submitTx(e *env, c *apiClient, tx *types.Tx, notes []string, after func() error, wait bool) error {
	kind := tx.Call.Kind().String()
	signer := tx.Signer
	hash, err := c.submit(e.ctx, tx)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return fmt.Errorf("the node refused the %s transaction: %s", kind, ae.msg)
		}
		return err
	}
	var b bytes.Buffer
	for _, n := range notes {
		fmt.Fprintln(&b, n)
	}
	fmt.Fprintf(&b, "%s %s\n  signer %s, nonce %d, valid until block %d\n", kind, hash, signer, tx.Nonce, tx.ValidUntil)
	if !wait {
		fmt.Fprintf(&b, "  submitted; follow it with: curl %s/v1/tx/%s\n", c.base, hash)
		_, err := e.stdout.Write(b.Bytes())
		return err
	}
	st, err := waitTx(e.ctx, c, hash, tx.ValidUntil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, hash, err)
	}
	if st.OK == nil || !*st.OK {
		return fmt.Errorf("%s %s failed in block %d: %s%s", kind, hash, deref(st.Height), chainReason(st.Error), feeCharged(e.ctx, c, tx.Call.Kind()))
	}
	fmt.Fprintf(&b, "  included in block %d: ok\n", deref(st.Height))
	if tx.Call.Kind() == types.KindPropose {
		if id, err := proposalID(e.ctx, c, st); err != nil {
			fmt.Fprintf(&b, "  (its proposal id is in the block's proposed event: %v; GET %s/v1/proposals lists them)\n", err, c.base)
		} else {
			fmt.Fprintf(&b, "  proposal %d: vote with 'taobox tx vote --proposal %d --aye' (or --nay); GET %s/v1/proposals lists them\n", id, id, c.base)
		}
	}
	if after != nil {
		if err := after(); err != nil {
			return err
		}
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

// proposalID reads the id of the proposal an included propose transaction
// opened from its block's proposed event.
func proposalID(ctx context.Context, c *apiClient, st *node.TxStatus) (uint64, error) {
	if st.Height == nil || st.Index == nil {
		return 0, errors.New("the node did not say where it was included")
	}
	var evs []struct {
		Kind    string `json:"kind"`
		TxIndex int32  `json:"tx_index"`
		Value   uint64 `json:"value"`
	}
	if err := c.get(ctx, fmt.Sprintf("/v1/events/%d", *st.Height), &evs); err != nil {
		return 0, err
	}
	for _, ev := range evs {
		if ev.Kind == "proposed" && int(ev.TxIndex) == *st.Index {
			return ev.Value, nil
		}
	}
	return 0, fmt.Errorf("no proposed event for transaction %d of block %d", *st.Index, *st.Height)
}

// checkCall refuses, before anything is signed, a call that the node's
// state says will fail on chain, where a fee-paying call still pays its
// fee: a transfer to the sender, a transfer or stake beyond the free
// balance less the fee, a call on a subnet that does not exist, a proposal
// while nothing is staked. The chain decides in the end (the state may
// change before the transaction is in a block); --force skips these, and
// sendTx skips them while the signer has transactions waiting.
func checkCall(ctx context.Context, c *apiClient, signer types.AccountID, acct *node.AccountInfo, call types.Call) error {
	var g node.GlobalsInfo
	if err := c.get(ctx, "/v1/globals", &g); err != nil {
		return err
	}
	var fee uint64
	if !state.FeeFree(call.Kind()) {
		fee = g.Params.TransferFee
	}
	const nothing = "nothing was sent; --force sends it anyway"
	afford := func(amount uint64, what string) error {
		if amount > math.MaxUint64-fee || acct.Free < amount+fee {
			return fmt.Errorf("insufficient balance: %s free, %s %s and a fee of %s (%s)",
				withTAO(fmt.Sprintf("%d rao", acct.Free)), withTAO(fmt.Sprintf("%d rao", amount)), what,
				withTAO(fmt.Sprintf("%d rao", fee)), nothing)
		}
		return nil
	}
	switch x := call.(type) {
	case types.Transfer:
		if x.To == signer {
			return &usageError{"to", fmt.Sprintf("%s is the sending coldkey itself: a transfer to yourself fails on chain and burns the fee", x.To)}
		}
		return afford(x.Amount, "to send")
	case types.AddStake:
		return afford(x.Amount, "to stake")
	case types.Propose:
		if g.TotalStake == 0 {
			return fmt.Errorf("nothing is staked on this chain yet: stake first (taobox tx stake add); proposing needs at least 1%% of all stake (%s)", nothing)
		}
	}
	var netuid types.Netuid
	switch x := call.(type) {
	case types.SetHyperparam:
		netuid = x.Netuid
	case types.BurnedRegister:
		netuid = x.Netuid
	case types.Serve:
		netuid = x.Netuid
	case types.SetWeights:
		netuid = x.Netuid
	case types.CommitWeights:
		netuid = x.Netuid
	case types.RevealWeights:
		netuid = x.Netuid
	default:
		return nil
	}
	var sub node.SubnetInfo
	if err := c.get(ctx, fmt.Sprintf("/v1/subnet/%d", netuid), &sub); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			// exit 1: the command line is fine, the chain's state says no
			return fmt.Errorf("subnet %d does not exist (taobox status lists the subnets; %s)", netuid, nothing)
		}
		return err
	}
	return nil
}

// chainReason is a chain's reason for a failed call as the CLI shows it:
// the TAO value beside each amount in rao (withTAO), and plainer words
// where the chain's own are terse. The chain's text is part of its events
// (and so of each block's events root): it is worded here, never there.
func chainReason(reason string) string {
	r := withTAO(reason)
	if strings.HasPrefix(reason, "insufficient balance: ") && strings.Contains(reason, " rao free, ") {
		// The fee was taken before the call ran.
		r = strings.Replace(r, " free, ", " free after the fee, ", 1)
	}
	if strings.HasPrefix(reason, "proposing needs at least 1% of all stake (0 rao)") {
		r += "; nothing is staked on this chain yet: stake first (taobox tx stake add)"
	}
	return r
}

// feeCharged is the note a failed call's error ends with: a fee-paying
// call pays its fee even when it fails. The fee is the chain's current
// transfer_fee; "" for a fee-free call or when the node cannot say.
func feeCharged(ctx context.Context, c *apiClient, k types.CallKind) string {
	if state.FeeFree(k) {
		return " (a fee-free call: no fee was charged)"
	}
	var g node.GlobalsInfo
	if err := c.get(ctx, "/v1/globals", &g); err != nil || g.Params.TransferFee == 0 {
		return ""
	}
	return fmt.Sprintf(" (the fee of %s TAO was charged)", formatTAO(g.Params.TransferFee))
}

// raoAmount matches an amount in a chain reason: "1500000000 rao".
var raoAmount = regexp.MustCompile(`\b[0-9]+ rao\b`)

// withTAO adds the TAO value after every amount in rao of a chain reason,
// so that a user who typed TAO reads the amounts in TAO as well:
// "1500000000 rao" becomes "1500000000 rao (1.5 TAO)".
func withTAO(reason string) string {
	return raoAmount.ReplaceAllStringFunc(reason, func(m string) string {
		n, err := strconv.ParseUint(strings.TrimSuffix(m, " rao"), 10, 64)
		if err != nil {
			return m
		}
		return m + " (" + formatTAO(n) + " TAO)"
	})
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// waitTx polls the node until the transaction is included, dropped, or
// past its validity window.
func waitTx(ctx context.Context, c *apiClient, h types.Hash, validUntil uint64) (*node.TxStatus, error) {
	t := time.NewTicker(txPollInterval)
	defer t.Stop()
	for {
		st, err := c.txStatus(ctx, h)
		if err != nil {
			if ctx.Err() != nil {
				return nil, errors.New("interrupted while waiting; the transaction may still be included")
			}
			return nil, err
		}
		switch st.Status {
		case "included":
			return st, nil
		case "unknown":
			return nil, fmt.Errorf("not included: %s", st.Error)
		}
		if head, err := c.head(ctx); err == nil && head.Height > validUntil {
			return nil, fmt.Errorf("expired: not included by block %d", validUntil)
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("interrupted while waiting; the transaction may still be included")
		case <-t.C:
		}
	}
}

// optUint is an integer flag with no default: it reports whether it was set.
type optUint struct {
	v   uint64
	set bool
	max uint64
}

func (o *optUint) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatUint(o.v, 10)
}

func (o *optUint) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > o.max {
		return fmt.Errorf("want an integer from 0 to %d", o.max)
	}
	o.v, o.set = v, true
	return nil
}

func netuidFlag(fs *flag.FlagSet) *optUint {
	o := &optUint{max: types.MaxSubnetID}
	fs.Var(o, "netuid", "the subnet's `N` (required)")
	return o
}

// need returns a usage error naming the first of the flags that is unset.
func need(flags ...any) error {
	for i := 0; i+1 < len(flags); i += 2 {
		name := flags[i].(string)
		switch v := flags[i+1].(type) {
		case *optUint:
			if !v.set {
				return &usageError{name, "required (see --help)"}
			}
		case *string:
			if *v == "" {
				return &usageError{name, "required (see --help)"}
			}
		}
	}
	return nil
}

// paramValue parses the --value of a hyperparameter or global parameter:
// TAO (a decimal, converted to rao) when the parameter is an amount, else
// an integer in the parameter's unit.
func paramValue(name, s string, amount bool) (uint64, error) {
	if amount {
		v, err := parseTAO(s)
		if err != nil {
			return 0, &usageError{name, err.Error() + " (this parameter is an amount: write TAO, for example 0.5)"}
		}
		return v, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &usageError{name, fmt.Sprintf("%q: want an integer from 0 to %d in the parameter's unit", s, uint64(math.MaxUint64))}
	}
	return v, nil
}

// amountFlag parses a TAO amount flag that must be positive.
func amountFlag(name, s string) (uint64, error) {
	if s == "" {
		return 0, &usageError{name, "required: an amount of TAO, for example 1.5"}
	}
	v, err := parseTAO(s)
	if err != nil {
		return 0, &usageError{name, err.Error()}
	}
	if v == 0 {
		return 0, &usageError{name, "must be more than 0"}
	}
	return v, nil
}

// hotkeyAccount reads a hotkey flag: an SS58 address, or the name of a
// hotkey of w.
func hotkeyAccount(w *wallet.Wallet, field, s string) (types.AccountID, error) {
	if s == "" {
		return types.AccountID{}, &usageError{field, fmt.Sprintf("required: a hotkey name of wallet %q or an SS58 address", w.Name)}
	}
	if id, err := types.ParseAddress(s); err == nil {
		return id, nil
	}
	if wallet.CheckName(s) == nil {
		id, err := w.HotkeyAddress(s)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, wallet.ErrNotFound) {
			return types.AccountID{}, err
		}
	}
	return types.AccountID{}, &usageError{field, fmt.Sprintf("%q is neither an SS58 address nor a hotkey of wallet %q (%s)", s, w.Name, hotkeyList(w))}
}

// hotkeySigner finds the private key of a hotkey flag: the name of a hotkey
// of w, or the address of one.
func hotkeySigner(w *wallet.Wallet, field, s string) (ed25519.PrivateKey, error) {
	if s == "" {
		return nil, &usageError{field, fmt.Sprintf("required: the name of a hotkey of wallet %q (the hotkey signs this call)", w.Name)}
	}
	if wallet.CheckName(s) == nil {
		k, err := w.Hotkey(s)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, wallet.ErrNotFound) {
			return nil, err
		}
	}
	if id, err := types.ParseAddress(s); err == nil {
		names, _ := w.HotkeyNames()
		for _, n := range names {
			if a, err := w.HotkeyAddress(n); err == nil && a == id {
				return w.Hotkey(n)
			}
		}
		return nil, &usageError{field, fmt.Sprintf("wallet %q does not hold hotkey %s, and this call must be signed by the hotkey (%s)", w.Name, s, hotkeyList(w))}
	}
	return nil, &usageError{field, fmt.Sprintf("wallet %q has no hotkey %q (%s)", w.Name, s, hotkeyList(w))}
}

func hotkeyList(w *wallet.Wallet) string {
	names, _ := w.HotkeyNames()
	if len(names) == 0 {
		return fmt.Sprintf("it has no hotkeys; create one: taobox wallet new-hotkey %s NAME", w.Name)
	}
	return "its hotkeys: " + strings.Join(names, ", ")
}

// hyperparamNames lists the hyperparameter names in their order.
func hyperparamNames() []string {
	var all []string
	for p := types.ParamTempo; p.Valid(); p++ {
		all = append(all, p.String())
	}
	return all
}

// wrapWords joins words with ", " into lines of at most width bytes, each
// starting with indent.
func wrapWords(words []string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}

// hyperparamByName accepts the names the API shows (state.HyperparamNames)
// and the names of types.Hyperparam.
func hyperparamByName(name string) (types.Hyperparam, error) {
	names := state.HyperparamNames()
	for p, n := range names {
		if n == name {
			return p, nil
		}
	}
	if p, err := types.ParseHyperparam(name); err == nil {
		return p, nil
	}
	return 0, &usageError{"param", fmt.Sprintf("unknown hyperparameter %q (one of: %s)", name, strings.Join(hyperparamNames(), ", "))}
}

const commonTxHelp = "\n\nEvery tx command signs with wallet --wallet (default \"default\"), asks the\n" +
	"node at --node for the nonce and the head (the transaction stays valid for\n" +
	"64 blocks), and by default waits until it is in a block: it prints \"ok\", or\n" +
	"the chain's reason and exits 1. A call that fails on chain still pays its\n" +
	"fee (all but weights, serve, take, root-weights and vote pay one), so it\n" +
	"first checks the node's state: the balance covers amount and fee, the\n" +
	"subnet exists, the recipient is not the sender, something is staked before\n" +
	"a proposal (--force sends anyway). Amounts are TAO with up to 9 decimals.\n" +
	"Hotkey flags take a hotkey name of the wallet or an SS58 address.\n" +
	"Encrypted keys take their password from --password-fd, --password-file, the\n" +
	"systemd credential taobox-wallet, or a prompt. --offline --nonce N\n" +
	"--valid-until B --chain-id HEX --out FILE signs without a node, for\n" +
	"'taobox tx submit FILE' on a machine that has one (docs/wallet.md)."

var txCommand = &command{
	name:    "tx",
	summary: "sign and send a transaction: transfer, register, stake, weights, …",
	help: "Builds one transaction from flags, signs it with a wallet's coldkey (or a\n" +
		"hotkey, for serve and weights) and sends it to a node's API." + commonTxHelp,
}

var txTransferCommand = &command{
	name:    "tx transfer",
	args:    "--to ADDR --amount TAO [--wallet NAME] [--node URL]",
	summary: "send TAO from the wallet's coldkey (a flat fee is burned on top)",
	help: "Sends --amount TAO of the coldkey's free balance to --to (an SS58 address\n" +
		"or the name of a local wallet). The transfer fee is burned on top. Example:\n\n" +
		"  taobox tx transfer --wallet alice --to 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty --amount 1.5" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		to := fs.String("to", "", "recipient `ADDR` (SS58, or a wallet name)")
		amount := fs.String("amount", "", "how many `TAO` to send, for example 1.5")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if *to == "" {
				return nil, &usageError{"to", "required: the recipient's SS58 address"}
			}
			id, err := resolveAccount(w.Root, *to)
			if err != nil {
				return nil, err
			}
			rao, err := amountFlag("amount", *amount)
			if err != nil {
				return nil, err
			}
			return &txPlan{call: types.Transfer{To: id, Amount: rao},
				notes: []string{fmt.Sprintf("Sending %s TAO to %s", formatTAO(rao), id)}}, nil
		}
	}),
}

var txRegisterNetworkCommand = &command{
	name:    "tx register-network",
	args:    "--hotkey H [--wallet NAME] [--node URL]",
	summary: "create a subnet owned by the coldkey (the lock cost is never returned)",
	help: "Creates a subnet owned by the wallet's coldkey, with --hotkey as its owner\n" +
		"hotkey (uid 0). The lock cost (see GET /v1/globals) is taken and never\n" +
		"returned. Example:\n\n  taobox tx register-network --wallet alice --hotkey owner" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		hotkey := fs.String("hotkey", "", "the owner hotkey `H` (name or address)")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			hk, err := hotkeyAccount(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			return &txPlan{call: types.RegisterNetwork{Hotkey: hk}}, nil
		}
	}),
}

var txHyperparamCommand = &command{
	name:    "tx hyperparam",
	args:    "--netuid N --param NAME --value V [--wallet NAME] [--node URL]",
	summary: "set a hyperparameter of a subnet the coldkey owns",
	help: "Sets one hyperparameter of subnet --netuid; only its owner may. Values are\n" +
		"TAO for min_burn and max_burn (for example 0.5), else integers in the\n" +
		"parameter's unit (blocks, u16 parts of 65535, 0/1 for switches). The chain\n" +
		"checks the bounds.\n" +
		"Names (as GET /v1/subnet/N shows them):\n" + wrapWords(hyperparamNames(), 76, "  ") + "\n\nExample:\n\n" +
		"  taobox tx hyperparam --wallet alice --netuid 1 --param max_allowed_validators --value 8" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		netuid := netuidFlag(fs)
		param := fs.String("param", "", "the hyperparameter's `NAME`")
		value := fs.String("value", "", "the new `V`alue: TAO for min_burn and max_burn, else an integer")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("netuid", netuid, "param", param, "value", value); err != nil {
				return nil, err
			}
			p, err := hyperparamByName(*param)
			if err != nil {
				return nil, err
			}
			v, err := paramValue("value", *value, p == types.ParamMinBurn || p == types.ParamMaxBurn)
			if err != nil {
				return nil, err
			}
			return &txPlan{call: types.SetHyperparam{Netuid: types.Netuid(netuid.v), Param: p, Value: v}}, nil
		}
	}),
}

var txRegisterCommand = &command{
	name:    "tx register",
	args:    "--netuid N --hotkey H [--max-price TAO] [--wallet NAME] [--node URL]",
	summary: "register a hotkey on a subnet for the current burn price",
	help: "Registers --hotkey on subnet --netuid; the coldkey pays the subnet's current\n" +
		"burn price (GET /v1/subnet/N \"burn\"), which is recycled. --max-price refuses\n" +
		"a higher price (the price rises with every registration and decays with\n" +
		"time). The hotkey becomes the coldkey's if it had no owner. Example:\n\n" +
		"  taobox tx register --wallet alice --netuid 1 --hotkey miner1 --max-price 2" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		netuid := netuidFlag(fs)
		hotkey := fs.String("hotkey", "", "the hotkey `H` to register (name or address)")
		maxPrice := fs.String("max-price", "", "pay at most `TAO` (default: any price)")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("netuid", netuid); err != nil {
				return nil, err
			}
			hk, err := hotkeyAccount(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			var limit uint64
			if *maxPrice != "" {
				if limit, err = amountFlag("max-price", *maxPrice); err != nil {
					return nil, err
				}
			}
			return &txPlan{call: types.BurnedRegister{Netuid: types.Netuid(netuid.v), Hotkey: hk, MaxPrice: limit}}, nil
		}
	}),
}

var txServeCommand = &command{
	name:    "tx serve",
	args:    "--netuid N --hotkey H --host HOST --port P [--tls-key ADDR] [--wallet NAME] [--node URL]",
	summary: "publish a miner's endpoint (host, port, TLS key); signed by the hotkey",
	help: "Publishes the QUIC endpoint of the neuron of --hotkey on subnet --netuid, so\n" +
		"validators can reach it: host, port and the ed25519 key of its TLS\n" +
		"certificate (default: the hotkey's own key). The hotkey signs; it must be a\n" +
		"hotkey of the wallet. Fee-free, rate-limited per subnet. Example:\n\n" +
		"  taobox tx serve --wallet alice --hotkey miner1 --netuid 1 --host 203.0.113.7 --port 8091" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		netuid := netuidFlag(fs)
		hotkey := fs.String("hotkey", "", "the serving hotkey `H` of the wallet (it signs)")
		host := fs.String("host", "", "the endpoint's `HOST` name or IP address")
		port := &optUint{max: math.MaxUint16}
		fs.Var(port, "port", "the endpoint's UDP `P`ort")
		tlsKey := fs.String("tls-key", "", "SS58 `ADDR` of the TLS certificate's key, which validators pin (default: the hotkey, the key a taobox miner's certificate has)")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("netuid", netuid, "host", host, "port", port); err != nil {
				return nil, err
			}
			if port.v == 0 {
				return nil, &usageError{"port", "0 is not a port"}
			}
			if len(*host) > types.MaxHostLen || strings.ContainsAny(*host, " \t\r\n/") {
				return nil, &usageError{"host", fmt.Sprintf("%q is not a host name or IP address", *host)}
			}
			k, err := hotkeySigner(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			tk := types.AccountIDFromPrivateKey(k)
			if *tlsKey != "" {
				if tk, err = types.ParseAddress(*tlsKey); err != nil {
					return nil, &usageError{"tls-key", strings.TrimPrefix(err.Error(), "types: ")}
				}
			}
			return &txPlan{signer: k, call: types.Serve{Netuid: types.Netuid(netuid.v), Host: *host, Port: uint16(port.v), TLSKey: tk}}, nil
		}
	}),
}

var txStakeCommand = &command{
	name:    "tx stake",
	summary: "stake TAO on a hotkey, or unstake it",
	help:    "Moves TAO between the coldkey's free balance and its stake on a hotkey." + commonTxHelp,
}

func stakeSetup(add bool) func(*flag.FlagSet) func(*env) error {
	return txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		hotkey := fs.String("hotkey", "", "the hotkey `ADDR` (or a hotkey name of the wallet)")
		amount := fs.String("amount", "", "how many `TAO` to move, for example 100")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			hk, err := hotkeyAccount(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			rao, err := amountFlag("amount", *amount)
			if err != nil {
				return nil, err
			}
			if add {
				return &txPlan{call: types.AddStake{Hotkey: hk, Amount: rao}}, nil
			}
			return &txPlan{call: types.RemoveStake{Hotkey: hk, Amount: rao}}, nil
		}
	})
}

var txStakeAddCommand = &command{
	name:    "tx stake add",
	args:    "--hotkey ADDR --amount TAO [--wallet NAME] [--node URL]",
	summary: "stake free TAO on a hotkey (your own, or a validator you delegate to)",
	help: "Stakes --amount TAO of the coldkey's free balance on --hotkey. Staking on\n" +
		"another coldkey's hotkey delegates to it: you earn its dividends pro rata,\n" +
		"less its take. Example:\n\n" +
		"  taobox tx stake add --wallet alice --hotkey validator --amount 100" + commonTxHelp,
	setup: stakeSetup(true),
}

var txStakeRemoveCommand = &command{
	name:    "tx stake remove",
	args:    "--hotkey ADDR --amount TAO [--wallet NAME] [--node URL]",
	summary: "unstake TAO from a hotkey back to the free balance",
	help: "Moves --amount TAO of the coldkey's stake on --hotkey back to its free\n" +
		"balance. Example:\n\n" +
		"  taobox tx stake remove --wallet alice --hotkey validator --amount 50" + commonTxHelp,
	setup: stakeSetup(false),
}

var txTakeCommand = &command{
	name:    "tx take",
	args:    "--hotkey H --take PERCENT [--wallet NAME] [--node URL]",
	summary: "set the delegate take of a hotkey the coldkey owns",
	help: "Sets the share of delegated dividends the hotkey keeps, in percent (at most\n" +
		"18, the default). Decreases apply at once; increases are rate-limited.\n" +
		"Example:\n\n  taobox tx take --wallet alice --hotkey validator --take 9" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		hotkey := fs.String("hotkey", "", "the hotkey `H` (name or address)")
		take := fs.String("take", "", "the take in `PERCENT`, for example 9.5")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("take", take); err != nil {
				return nil, err
			}
			hk, err := hotkeyAccount(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			t, err := parsePercent(*take)
			if err != nil {
				return nil, &usageError{"take", err.Error()}
			}
			return &txPlan{call: types.SetTake{Hotkey: hk, Take: t},
				notes: []string{fmt.Sprintf("Take %s%% = %d/65535", *take, t)}}, nil
		}
	}),
}

var txWeightsCommand = &command{
	name:    "tx weights",
	summary: "set weights, or commit and later reveal them (commit-reveal subnets)",
	help: "A validator's weights over a subnet's uids, signed by its hotkey. Weights\n" +
		"are decimals normalised as the bittensor SDK does: divided by the largest,\n" +
		"times 65535, rounded half to even; uids whose weight rounds to 0 are left\n" +
		"out." + commonTxHelp,
}

// weightsFlags are the flags of weights set and commit.
type weightsFlags struct {
	netuid           *optUint
	hotkey, uids, ws *string
	version          *uint64
}

func addWeightsFlags(fs *flag.FlagSet) *weightsFlags {
	return &weightsFlags{
		netuid:  netuidFlag(fs),
		hotkey:  fs.String("hotkey", "", "the validator hotkey `H` of the wallet (it signs)"),
		uids:    fs.String("uids", "", "comma-separated `UIDS`, for example 1,2,5"),
		ws:      fs.String("weights", "", "comma-separated `WEIGHTS`, one per uid, for example 0.5,0.3,0.2"),
		version: fs.Uint64("version-key", 0, "the weights `VERSION` key the subnet expects"),
	}
}

// parse reads the flags: the signer and the normalised weights.
func (f *weightsFlags) parse(w *wallet.Wallet) (ed25519.PrivateKey, []uint16, []uint16, error) {
	if err := need("netuid", f.netuid); err != nil {
		return nil, nil, nil, err
	}
	uids, err := parseU16List(*f.uids, "uids")
	if err != nil {
		return nil, nil, nil, &usageError{"uids", err.Error()}
	}
	ws, err := parseFloatList(*f.ws)
	if err != nil {
		return nil, nil, nil, &usageError{"weights", err.Error()}
	}
	u, v, err := normalizeWeights(uids, ws, "uids")
	if err != nil {
		return nil, nil, nil, &usageError{"weights", err.Error()}
	}
	k, err := hotkeySigner(w, "hotkey", *f.hotkey)
	if err != nil {
		return nil, nil, nil, err
	}
	return k, u, v, nil
}

func weightsNote(uids, ws []uint16) string {
	var parts []string
	for i := range uids {
		parts = append(parts, fmt.Sprintf("%d:%d", uids[i], ws[i]))
	}
	return "Weights (uid:u16) " + strings.Join(parts, " ")
}

var txWeightsSetCommand = &command{
	name:    "tx weights set",
	args:    "--netuid N --hotkey H --uids 1,2 --weights 0.5,0.5 [--version-key K] [--wallet NAME] [--node URL]",
	summary: "set a validator's weights on a subnet (signed by the hotkey)",
	help: "Sets the weights of the validator --hotkey on subnet --netuid. It needs a\n" +
		"validator permit (or only a self-weight), and is rate-limited. Example:\n\n" +
		"  taobox tx weights set --wallet alice --hotkey validator --netuid 1 --uids 3,4,5 --weights 0.5,0.3,0.2" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		f := addWeightsFlags(fs)
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			k, uids, ws, err := f.parse(w)
			if err != nil {
				return nil, err
			}
			return &txPlan{signer: k, call: types.SetWeights{Netuid: types.Netuid(f.netuid.v), UIDs: uids, Weights: ws, VersionKey: *f.version},
				notes: []string{weightsNote(uids, ws)}}, nil
		}
	}),
}

var txWeightsCommitCommand = &command{
	name:    "tx weights commit",
	args:    "--netuid N --hotkey H --uids 1,2 --weights 0.5,0.5 [--version-key K] [--wallet NAME] [--node URL]",
	summary: "commit to weights by hash; the salt is kept in the wallet for the reveal",
	help: "On a subnet with commit_reveal on, commits to weights by their hash with a\n" +
		"new random salt. The weights and the salt are printed and saved in\n" +
		"wallets/<name>/commits/ (mode 0600), so 'taobox tx weights reveal' can\n" +
		"reveal them in the reveal window (reveal_period epochs later). Example:\n\n" +
		"  taobox tx weights commit --wallet alice --hotkey validator --netuid 1 --uids 3,4 --weights 1,0.5" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		f := addWeightsFlags(fs)
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			k, uids, ws, err := f.parse(w)
			if err != nil {
				return nil, err
			}
			hk := types.AccountIDFromPrivateKey(k)
			c := &wallet.Commit{Netuid: types.Netuid(f.netuid.v), Hotkey: hk, UIDs: uids, Weights: ws, VersionKey: *f.version}
			if _, err := rand.Read(c.Salt[:]); err != nil {
				return nil, err
			}
			c.Hash = types.CommitHash(hk, c.Netuid, uids, ws, c.Salt[:], c.VersionKey)
			p := &txPlan{signer: k, call: types.CommitWeights{Netuid: c.Netuid, Commit: c.Hash}}
			p.before = func() error {
				path, err := w.SaveCommit(c)
				if err != nil {
					return err
				}
				p.notes = append(p.notes, weightsNote(uids, ws), "Salt "+hex.EncodeToString(c.Salt[:]), "Saved for the reveal in "+path)
				return nil
			}
			return p, nil
		}
	}),
}

var txWeightsRevealCommand = &command{
	name:    "tx weights reveal",
	args:    "--netuid N --hotkey H [--salt HEX --uids 1,2 --weights 0.5,0.5] [--wallet NAME] [--node URL]",
	summary: "reveal weights committed earlier (uses the salt saved by commit)",
	help: "Reveals the weights that 'taobox tx weights commit' committed for --hotkey\n" +
		"on --netuid, reading them and the salt from the wallet; the saved commit is\n" +
		"removed once the reveal succeeds. For a commit made elsewhere, give --salt,\n" +
		"--uids, --weights (and --version-key) yourself. Example:\n\n" +
		"  taobox tx weights reveal --wallet alice --hotkey validator --netuid 1" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		f := addWeightsFlags(fs)
		salt := fs.String("salt", "", "the commit's salt as `HEX` (default: the one saved by commit)")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("netuid", f.netuid); err != nil {
				return nil, err
			}
			if *salt != "" || *f.uids != "" || *f.ws != "" {
				if err := need("salt", salt, "uids", f.uids, "weights", f.ws); err != nil {
					return nil, err
				}
				s, err := hex.DecodeString(strings.TrimPrefix(*salt, "0x"))
				if err != nil || len(s) == 0 || len(s) > types.MaxSaltLen {
					return nil, &usageError{"salt", fmt.Sprintf("want 1 to %d bytes of hex", types.MaxSaltLen)}
				}
				k, uids, ws, err := f.parse(w)
				if err != nil {
					return nil, err
				}
				return &txPlan{signer: k, call: types.RevealWeights{Netuid: types.Netuid(f.netuid.v), UIDs: uids, Weights: ws, Salt: s, VersionKey: *f.version}}, nil
			}
			k, err := hotkeySigner(w, "hotkey", *f.hotkey)
			if err != nil {
				return nil, err
			}
			hk := types.AccountIDFromPrivateKey(k)
			c, err := w.LoadCommit(types.Netuid(f.netuid.v), hk)
			if err != nil {
				return nil, walletErr("commit", err)
			}
			return &txPlan{signer: k,
				call:  types.RevealWeights{Netuid: c.Netuid, UIDs: c.UIDs, Weights: c.Weights, Salt: c.Salt[:], VersionKey: c.VersionKey},
				notes: []string{weightsNote(c.UIDs, c.Weights)},
				after: func() error { return w.DeleteCommit(c.Netuid, hk) }}, nil
		}
	}),
}

var txRootWeightsCommand = &command{
	name:    "tx root-weights",
	args:    "--hotkey H --netuids 1,2 --weights 1,1 [--wallet NAME] [--node URL]",
	summary: "set a staked hotkey's root weights: how the block reward splits over subnets",
	help: "Sets the root-network weights of --hotkey (owned by the wallet's coldkey,\n" +
		"which signs): how much of the block reward each subnet should get. They\n" +
		"count if the hotkey is among the largest stakes. Weights are normalised as\n" +
		"for 'tx weights set'. Example:\n\n" +
		"  taobox tx root-weights --wallet alice --hotkey validator --netuids 1,2 --weights 2,1" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		hotkey := fs.String("hotkey", "", "the staked hotkey `H` (name or address)")
		netuids := fs.String("netuids", "", "comma-separated subnet `IDS`, for example 1,2")
		weights := fs.String("weights", "", "comma-separated `WEIGHTS`, one per subnet")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			ids, err := parseU16List(*netuids, "netuids")
			if err != nil {
				return nil, &usageError{"netuids", err.Error()}
			}
			ws, err := parseFloatList(*weights)
			if err != nil {
				return nil, &usageError{"weights", err.Error()}
			}
			n, v, err := normalizeWeights(ids, ws, "netuids")
			if err != nil {
				return nil, &usageError{"weights", err.Error()}
			}
			hk, err := hotkeyAccount(w, "hotkey", *hotkey)
			if err != nil {
				return nil, err
			}
			return &txPlan{call: types.SetRootWeights{Hotkey: hk, Netuids: n, Weights: v}}, nil
		}
	}),
}

var txProposeCommand = &command{
	name:    "tx propose",
	args:    "(--param NAME --value V | --firmware-hash HEX --firmware-version V) [--description D]",
	summary: "open a governance proposal: change a global parameter or approve firmware",
	help: "Opens a proposal that stakers vote on ('taobox tx vote'); it passes with\n" +
		"quorum and a majority of stake by the end of the voting period. Either it\n" +
		"changes a global parameter (--param, one of transfer_fee, network_min_lock,\n" +
		"network_rate_limit, subnet_limit, stake_threshold, max_delegate_take,\n" +
		"voting_period, quorum_permille; --value in TAO for transfer_fee,\n" +
		"network_min_lock and stake_threshold, else an integer in its unit) or it\n" +
		"approves a firmware release (--firmware-hash, 64 hex digits, and\n" +
		"--firmware-version). Proposing needs at least 1% of all stake. Once the\n" +
		"proposal is in a block it prints its ID, for 'taobox tx vote --proposal ID'.\n" +
		"Examples:\n\n" +
		"  taobox tx propose --wallet alice --param transfer_fee --value 0.00005 --description \"halve the fee\"\n" +
		"  taobox tx propose --wallet alice --firmware-hash 9f86d0…0a08 --firmware-version 1.2.0" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		param := fs.String("param", "", "the global parameter's `NAME`")
		value := fs.String("value", "", "the parameter's new `V`alue: TAO for transfer_fee, network_min_lock and stake_threshold, else an integer")
		fwHash := fs.String("firmware-hash", "", "the firmware release's hash, 64 `HEX` digits")
		fwVersion := fs.String("firmware-version", "", "the firmware release's `V`ersion")
		desc := fs.String("description", "", "what the proposal is for, in a `D`escription")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			var a types.ProposalAction
			switch {
			case *param != "" && *fwHash == "" && *fwVersion == "":
				p, err := types.ParseGlobalParam(*param)
				if err != nil {
					return nil, &usageError{"param", fmt.Sprintf("unknown global parameter %q (one of transfer_fee, network_min_lock, network_rate_limit, subnet_limit, stake_threshold, max_delegate_take, voting_period, quorum_permille)", *param)}
				}
				if err := need("value", value); err != nil {
					return nil, err
				}
				amount := p == types.GlobalTransferFee || p == types.GlobalNetworkMinLock || p == types.GlobalStakeThreshold
				v, err := paramValue("value", *value, amount)
				if err != nil {
					return nil, err
				}
				a = types.ProposalAction{Kind: types.ActionSetParam, Param: p, Value: v}
			case *param == "" && *value == "" && (*fwHash != "" || *fwVersion != ""):
				if err := need("firmware-hash", fwHash, "firmware-version", fwVersion); err != nil {
					return nil, err
				}
				h, err := types.ParseHash(*fwHash)
				if err != nil || h.IsZero() {
					return nil, &usageError{"firmware-hash", fmt.Sprintf("%q: want 64 hex digits, not all zero", *fwHash)}
				}
				if len(*fwVersion) > types.MaxFirmwareVersionLen {
					return nil, &usageError{"firmware-version", fmt.Sprintf("at most %d bytes", types.MaxFirmwareVersionLen)}
				}
				a = types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: h, FirmwareVersion: *fwVersion}
			default:
				return nil, &usageError{"flags", "give either --param and --value, or --firmware-hash and --firmware-version"}
			}
			if len(*desc) > types.MaxTextLen {
				return nil, &usageError{"description", fmt.Sprintf("%d bytes, at most %d", len(*desc), types.MaxTextLen)}
			}
			return &txPlan{call: types.Propose{Action: a, Description: *desc}}, nil
		}
	}),
}

var txVoteCommand = &command{
	name:    "tx vote",
	args:    "--proposal ID (--aye | --nay) [--wallet NAME] [--node URL]",
	summary: "vote on a governance proposal with the coldkey's stake",
	help: "Votes aye or nay on proposal --proposal, weighted by the coldkey's stake.\n" +
		"'taobox tx propose' prints the ID of the proposal it opened; the node's\n" +
		"GET /v1/proposals lists them, newest first (curl URL/v1/proposals).\n" +
		"Example:\n\n  taobox tx vote --wallet alice --proposal 0 --aye" + commonTxHelp,
	setup: txSetup(func(fs *flag.FlagSet) func(*env, *wallet.Wallet) (*txPlan, error) {
		id := &optUint{max: math.MaxUint64}
		fs.Var(id, "proposal", "the proposal's `ID`")
		aye := fs.Bool("aye", false, "vote for")
		nay := fs.Bool("nay", false, "vote against")
		return func(e *env, w *wallet.Wallet) (*txPlan, error) {
			if err := need("proposal", id); err != nil {
				return nil, err
			}
			if *aye == *nay {
				return nil, &usageError{"flags", "give exactly one of --aye and --nay"}
			}
			return &txPlan{call: types.Vote{Proposal: id.v, Aye: *aye}}, nil
		}
	}),
}
