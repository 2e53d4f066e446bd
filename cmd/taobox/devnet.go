package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"taobox/assets"
	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/chain/yuma"
	"taobox/internal/obs"
	"taobox/miner"
	"taobox/wallet"
)

// taobox devnet: one process runs a BFT chain of a few validators with fast blocks
// and a cast that submits real signed transactions through node.Submit:
// two subnet owners, validators that stake and set root weights, and miners
// that serve an endpoint. Two casts share that script:
//
//   - live (the default): 2 validators and 6 miners per subnet. Each miner
//     is a real miner (package miner) on its own UDP socket on 127.0.0.1,
//     serving the embedded tiny model over QUIC; 4 are honest, one answers
//     random tokens and one answers from another model (the miner's devnet
//     answer hook; see devnet_live.go). Each validator is a real validator
//     (package validator) that runs task rounds against the miners,
//     verifies the answers with its own copy of the model and sets weights
//     when the rate limit allows; Yuma turns them into incentive.
//   - scripted (--cast scripted): the validators set weights that follow a
//     fixed quality per miner, with a little seeded noise, after each epoch;
//     no miner serves anything. It needs no model and no network.
//
// The script advances in phases, each one block after the previous one's
// transactions were all decided:
//
//	0  alice registers a subnet, then bob (one block later)
//	1  the owners set max_allowed_validators; validators and miners register
//	2  validators stake on their hotkeys; miners serve an endpoint
//	3  validators set root weights over the two subnets
//
// after which the root epoch (every 5 blocks) gives the subnets their shares
// of the block reward. The first epoch of a subnet grants the validator
// permits, so incentive shows from its second epoch on (the first pays
// validators by stake); live miners admit a validator's tasks only once it
// holds a permit.

// devKey is the well-known key of a devnet account: public, for tests only.
func devKey(name string) ed25519.PrivateKey {
	seed := types.HashBytes([]byte("taobox/devnet/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// devActor is one key of the cast.
type devActor struct {
	name   string // wallet name, or wallet/hotkey
	key    ed25519.PrivateKey
	id     types.AccountID
	nonce  uint64 // next nonce to use
	inPool int    // our transactions of this account not yet decided
}

func newActor(name string) *devActor {
	k := devKey(name)
	return &devActor{name: name, key: k, id: types.AccountIDFromPrivateKey(k)}
}

// devValidator is a validator: a coldkey that stakes on its hotkey.
type devValidator struct {
	cold, hot *devActor
	stake     uint64   // rao staked on the hotkey
	root      []uint16 // root weights over the subnets, in subnet order
}

// devSubnet is one subnet of the cast.
type devSubnet struct {
	netuid     types.Netuid
	regSent    bool      // its register_network was submitted
	owner      *devActor // coldkey
	ownerHot   *devActor
	validators []*devValidator
	miners     []*devActor // hotkeys owned by the miner coldkey
	scores     []float64   // scripted: each miner's true quality; weights follow it
	behaviours []string    // live: each miner's behaviour (behaviourHonest, ...)
	ports      []uint16    // live: each miner's UDP port on 127.0.0.1
	epochs     int
	emission   uint64 // rao credited by its epochs
	lastEpoch  uint64
}

// devnet is the state of one run. The main loop owns it; the live cast's
// goroutines reach it only through submit, fail and the stats, which mu
// guards.
type devnet struct {
	n       *node.Node
	out     io.Writer // progress and tables; io.Discard with --json
	api     string
	live    bool // the live cast (real miners and validators) or the scripted one
	subnets []*devSubnet
	vals    []*devValidator
	minerCk *devActor
	actors  []*devActor
	phase   int
	phaseAt uint64 // height when the current phase was submitted
	rng     *rand.Rand
	blocks  uint64
	txs     int
	neurons *devNeurons       // live: the running miners and validators
	accel   miner.Accelerator // live: where honest miners run the model (nil: the CPU)
	fatal   error             // set by onBlock when the run cannot go on
	metrics *node.Metrics

	mu       sync.Mutex
	pending  map[types.Hash]*devPending   // mu
	failures []string                     // mu
	stats    map[devStatKey]*devTaskStats // mu; live: what the validators saw of each miner
}

type devPending struct {
	actor *devActor
	what  string
}

// devSummary is the result of a run (--json prints it).
type devSummary struct {
	Cast           string           `json:"cast"` // live or scripted
	ChainID        types.Hash       `json:"chain_id"`
	API            string           `json:"api"`
	Blocks         uint64           `json:"blocks"`
	Txs            int              `json:"txs"`
	FailedTxs      int              `json:"failed_txs"`
	Failures       []string         `json:"failures"`
	IssuanceRao    uint64           `json:"issuance_rao"`
	TotalStakeRao  uint64           `json:"total_stake_rao"`
	BurnedRao      uint64           `json:"burned_rao"`
	LockedRao      uint64           `json:"locked_rao"`
	EmissionRao    uint64           `json:"emission_rao"`
	Subnets        []devSubnetStats `json:"subnets"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Interrupted    bool             `json:"interrupted"`
}

type devSubnetStats struct {
	Netuid      types.Netuid `json:"netuid"`
	Owner       string       `json:"owner"`
	Epochs      int          `json:"epochs"`
	EmissionRao uint64       `json:"emission_rao"`
	Neurons     int          `json:"neurons"`
	Validators  int          `json:"validators"`
	Miners      int          `json:"miners"`
	// Metagraph is the subnet's metagraph at the end of the run, one
	// record per uid.
	Metagraph []devNeuron `json:"metagraph"`
	// IncentiveShares (live cast) sums the incentive of the miners of each
	// behaviour as a fraction of the subnet's incentive: every behaviour
	// at 0 before any incentive (a subnet's first epoch only grants the
	// validator permits), null in the scripted cast.
	IncentiveShares map[string]float64 `json:"incentive_shares"`
}

// newCast builds the accounts and subnets of the script: the live cast or
// the scripted one.
func newCast(live bool) *devnet {
	d := &devnet{live: live, pending: map[types.Hash]*devPending{}, stats: map[devStatKey]*devTaskStats{},
		rng: rand.New(rand.NewPCG(1, 2))}
	add := func(name string) *devActor {
		a := newActor(name)
		d.actors = append(d.actors, a)
		return a
	}
	alice, bob := add("alice"), add("bob")
	for i, name := range []string{"carol", "dave", "eve"} {
		v := &devValidator{cold: add(name), hot: add(name + "/validator"),
			stake: []uint64{1000, 600, 300}[i] * types.RaoPerTAO, root: [][]uint16{{3, 2}, {1, 1}, {2, 1}}[i]}
		d.vals = append(d.vals, v)
	}
	d.minerCk = add("frank")
	sn := func(owner *devActor, vals []*devValidator, miners int, scores []float64) *devSubnet {
		s := &devSubnet{owner: owner, ownerHot: add(owner.name + "/owner"), validators: vals, scores: scores}
		for i := range miners {
			s.miners = append(s.miners, add(fmt.Sprintf("frank/%s-miner%d", owner.name, i+1)))
		}
		return s
	}
	if live {
		// 2 validators and 6 miners a subnet (dave validates both); the
		// cheaters sit at different uids on each.
		const h, r, o = behaviourHonest, behaviourRandom, behaviourOtherModel
		d.subnets = []*devSubnet{
			sn(alice, d.vals[:2], 6, nil),
			sn(bob, d.vals[1:], 6, nil),
		}
		d.subnets[0].behaviours = []string{h, r, h, h, o, h}
		d.subnets[1].behaviours = []string{o, h, h, h, r, h}
		return d
	}
	d.subnets = []*devSubnet{
		sn(alice, d.vals, 4, []float64{1.0, 0.7, 0.4, 0.1}),
		sn(bob, d.vals[:2], 5, []float64{0.2, 1.0, 0.5, 0.9, 0.05}),
	}
	return d
}

// genesisBalances funds the coldkeys.
func (d *devnet) genesisBalances() []state.GenesisBalance {
	var b []state.GenesisBalance
	for _, a := range d.actors {
		if !strings.Contains(a.name, "/") {
			b = append(b, state.GenesisBalance{Account: a.id, Free: 10_000 * types.RaoPerTAO})
		}
	}
	return b
}

// writeWallets writes the cast's keys as wallets under root, so that
// 'taobox tx --wallets root --wallet alice ...' works against the devnet.
func (d *devnet) writeWallets(root string) error {
	for _, a := range d.actors {
		seed := a.key.Seed()
		w, hk, isHot := strings.Cut(a.name, "/")
		var err error
		if isHot {
			_, err = wallet.ImportHotkey(root, w, hk, seed)
		} else {
			_, err = wallet.Import(root, w, seed)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// submit signs call with a and hands it to the node. It is safe for
// concurrent use.
func (d *devnet) submit(a *devActor, what string, call types.Call) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a.inPool == 0 {
		// Nothing of ours is pending: take the chain's nonce, in case a
		// transaction was dropped.
		if acct, err := state.QueryAccount(d.n.State(), a.id); err == nil {
			a.nonce = acct.Nonce
		}
	}
	h, _ := d.n.Head()
	tx := &types.Tx{Nonce: a.nonce, ValidUntil: h + txValidity, Call: call}
	tx.Sign(a.key, d.n.ChainID())
	hash, err := d.n.Submit(tx)
	if err != nil {
		d.failures = append(d.failures, fmt.Sprintf("%s: refused by the node: %v", what, err))
		return err
	}
	a.nonce++
	a.inPool++
	d.pending[hash] = &devPending{a, what}
	return nil
}

// fail records a failure; it is safe for concurrent use.
func (d *devnet) fail(format string, args ...any) {
	d.mu.Lock()
	d.failures = append(d.failures, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *devnet) subnetOf(owner types.AccountID) *devSubnet {
	for _, s := range d.subnets {
		if s.owner.id == owner {
			return s
		}
	}
	return nil
}

func (d *devnet) byNetuid(n types.Netuid) *devSubnet {
	for _, s := range d.subnets {
		if s.netuid == n && n != 0 {
			return s
		}
	}
	return nil
}

// registerNext submits the register_network of the first subnet that has
// not sent one, and reports whether there was one. The subnets register
// one block after another, so that they get their netuids in order, run
// after run (in one block, consensus would pick the order).
func (d *devnet) registerNext() bool {
	for _, s := range d.subnets {
		if !s.regSent {
			s.regSent = true
			d.submit(s.owner, "register_network by "+s.owner.name, types.RegisterNetwork{Hotkey: s.ownerHot.id})
			return true
		}
	}
	return false
}

// startPhase submits the transactions of phase p.
func (d *devnet) startPhase(p int, height uint64) {
	d.phase, d.phaseAt = p, height
	switch p {
	case 0:
		d.registerNext()
	case 1:
		for _, s := range d.subnets {
			d.submit(s.owner, "set max_allowed_validators", types.SetHyperparam{Netuid: s.netuid,
				Param: types.ParamMaxAllowedValidators, Value: uint64(len(s.validators))})
			for _, v := range s.validators {
				d.submit(v.cold, "register "+v.hot.name, types.BurnedRegister{Netuid: s.netuid, Hotkey: v.hot.id})
			}
			for _, m := range s.miners {
				d.submit(d.minerCk, "register "+m.name, types.BurnedRegister{Netuid: s.netuid, Hotkey: m.id})
			}
		}
	case 2:
		for _, v := range d.vals {
			d.submit(v.cold, "stake on "+v.hot.name, types.AddStake{Hotkey: v.hot.id, Amount: v.stake})
		}
		for _, s := range d.subnets {
			for i, m := range s.miners {
				port := uint16(8000 + 100*int(s.netuid) + i)
				if s.ports != nil {
					port = s.ports[i]
				}
				d.submit(m, "serve "+m.name, types.Serve{Netuid: s.netuid, Host: "127.0.0.1", Port: port, TLSKey: m.id})
			}
		}
	case 3:
		var ids []uint16
		for _, s := range d.subnets {
			ids = append(ids, uint16(s.netuid))
		}
		for _, v := range d.vals {
			d.submit(v.cold, "root weights of "+v.hot.name, types.SetRootWeights{Hotkey: v.hot.id, Netuids: ids, Weights: v.root})
		}
	}
}

// setWeights has the validators of s score its miners: the true scores
// with ±10% noise, normalised as the SDK does.
func (d *devnet) setWeights(s *devSubnet) {
	mg, err := state.QueryMetagraph(d.n.State(), s.netuid)
	if err != nil {
		d.fail("metagraph of subnet %d: %v", s.netuid, err)
		return
	}
	uidOf := map[types.AccountID]uint16{}
	for _, nr := range mg.Neurons {
		uidOf[nr.Hotkey] = nr.UID
	}
	for _, v := range s.validators {
		var uids []uint16
		var ws []float64
		for i, m := range s.miners {
			if uid, ok := uidOf[m.id]; ok {
				uids = append(uids, uid)
				ws = append(ws, s.scores[i]*(0.9+0.2*d.rng.Float64()))
			}
		}
		u, w, err := normalizeWeights(uids, ws, "uids")
		if err != nil {
			continue
		}
		d.submit(v.hot, fmt.Sprintf("weights of %s on subnet %d", v.hot.name, s.netuid),
			types.SetWeights{Netuid: s.netuid, UIDs: u, Weights: w})
	}
}

// onBlock follows a new block: decided transactions, phases and epochs. It
// reports whether every subnet has run its epochs.
func (d *devnet) onBlock(ctx context.Context, b node.BlockInfo, epochs int) bool {
	d.blocks = b.Height
	d.txs += len(b.Txs)
	d.mu.Lock()
	for i := range b.Txs {
		p, ok := d.pending[b.Txs[i].Hash()]
		if !ok {
			continue
		}
		delete(d.pending, b.Txs[i].Hash())
		p.actor.inPool--
		for _, ev := range b.Events {
			if ev.TxIndex == int32(i) && ev.Kind == types.EvTxFailed {
				d.failures = append(d.failures, fmt.Sprintf("%s failed in block %d: %s", p.what, b.Height, ev.Error))
				fmt.Fprintf(d.out, "block %d: %s failed: %s\n", b.Height, p.what, ev.Error)
			}
		}
	}
	npending := len(d.pending)
	d.mu.Unlock()
	var due []*devSubnet
	for _, ev := range b.Events {
		switch ev.Kind {
		case types.EvNetworkRegistered:
			if s := d.subnetOf(ev.Account); s != nil {
				s.netuid = ev.Netuid
				if d.phase == 0 && d.registerNext() {
					npending++
					d.phaseAt = b.Height // the next one gets its own 5 blocks
				}
				fmt.Fprintf(d.out, "block %d: %s registered subnet %d (lock τ%s)\n", b.Height, s.owner.name, ev.Netuid, formatTAO(ev.Amount))
				if d.live {
					if err := d.neurons.startSubnet(s); err != nil {
						d.fatal = fmt.Errorf("subnet %d's miners and validators: %v", s.netuid, err)
						return true
					}
				}
			}
		case types.EvEpoch:
			if s := d.byNetuid(ev.Netuid); s != nil {
				s.epochs++
				s.emission += ev.Amount
				s.lastEpoch = b.Height
				due = append(due, s)
			}
		}
	}
	// Phases: the next one starts once every transaction of this one is
	// decided, or after 5 blocks (a dropped transaction never shows).
	if d.phase < 3 && (npending == 0 || b.Height >= d.phaseAt+5) {
		if d.phase == 0 && slices.ContainsFunc(d.subnets, func(s *devSubnet) bool { return s.netuid == 0 }) {
			d.fail("a subnet was not registered; the script stops here")
			return true
		}
		d.mu.Lock()
		clear(d.pending)
		for _, a := range d.actors {
			a.inPool = 0
		}
		d.mu.Unlock()
		switch d.phase {
		case 0:
			fmt.Fprintf(d.out, "block %d: validators and miners register, owners set max_allowed_validators\n", b.Height+1)
		case 1:
			fmt.Fprintf(d.out, "block %d: validators stake (%s), miners serve endpoints\n", b.Height+1, d.stakeList())
		case 2:
			fmt.Fprintf(d.out, "block %d: validators set root weights; the root epoch (every 5 blocks) shares the block reward\n", b.Height+1)
		}
		d.startPhase(d.phase+1, b.Height)
	}
	for _, s := range due {
		d.printEpoch(s, b.Height, epochs)
		if !d.live && (epochs == 0 || s.epochs < epochs) {
			d.setWeights(s)
		}
	}
	if d.live && d.phase >= 3 {
		d.neurons.onBlock(b.Height)
	}
	if epochs == 0 {
		return false
	}
	for _, s := range d.subnets {
		if s.epochs < epochs {
			return false
		}
	}
	return true
}

func (d *devnet) stakeList() string {
	var parts []string
	for _, v := range d.vals {
		parts = append(parts, fmt.Sprintf("%s τ%s", v.cold.name, formatTAO(v.stake)))
	}
	return strings.Join(parts, ", ")
}

// printEpoch prints the table of s after its epoch.
func (d *devnet) printEpoch(s *devSubnet, height uint64, epochs int) {
	if d.out == io.Discard {
		return
	}
	of := ""
	if epochs > 0 {
		of = fmt.Sprintf(" of %d", epochs)
	}
	note := ""
	if s.epochs == 1 {
		note = " (validators receive their permits; their weights count from the next epoch)"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n== subnet %d (%s): epoch %d%s at block %d, emission so far τ%s%s\n",
		s.netuid, s.owner.name, s.epochs, of, height, formatTAO(s.emission), note)
	recs, err := d.neuronRecords(s)
	if err != nil {
		fmt.Fprintf(&b, "(metagraph unavailable: %v)\n\n", err)
		d.out.Write(b.Bytes())
		return
	}
	writeDevTable(&b, recs, d.live)
	if d.live {
		if sh := incentiveShares(recs); sh == nil {
			b.WriteString("incentive: none yet (no validator weights counted)\n")
		} else {
			fmt.Fprintf(&b, "incentive: honest miners %.1f%%, random %.1f%%, other-model %.1f%%\n",
				100*sh[behaviourHonest], 100*sh[behaviourRandom], 100*sh[behaviourOtherModel])
		}
		for _, r := range recs {
			if r.LastFailure != "" {
				fmt.Fprintf(&b, "uid %d (%s) last failed verification: %s\n", r.UID, r.Behaviour, r.LastFailure)
			}
		}
	}
	b.WriteString("\n")
	d.out.Write(b.Bytes())
}

// devNeuron is one uid of a subnet's metagraph as the devnet reports it:
// the chain's terms beside the cast's name, role and behaviour for the uid
// and what the validators saw of it.
type devNeuron struct {
	UID         uint16  `json:"uid"`
	Hotkey      string  `json:"hotkey"`
	Name        string  `json:"name"`                // the cast's wallet/hotkey name
	Role        string  `json:"role"`                // owner, validator or miner
	Behaviour   string  `json:"behaviour,omitempty"` // miners of the live cast: honest, random, other-model
	StakeRao    uint64  `json:"stake_rao"`
	Incentive   float64 `json:"incentive"` // fractions of 1, from the last epoch
	Dividends   float64 `json:"dividends"`
	Consensus   float64 `json:"consensus"`
	VTrust      float64 `json:"vtrust"`
	EmissionRao uint64  `json:"emission_rao"` // the last epoch's
	Permit      bool    `json:"validator_permit"`
	Axon        string  `json:"axon,omitempty"`
	// Live miners: tasks the subnet's validators sent it, those it
	// answered, and those that passed verification (counted by round: a
	// validator's round passes when every one of its tasks verifies), and
	// why the last failed round failed.
	Tasks       int    `json:"tasks"`
	Served      int    `json:"served"`
	Passed      int    `json:"passed"`
	LastFailure string `json:"last_failure,omitempty"`
}

// devStatKey names a miner of a subnet in devnet.stats.
type devStatKey struct {
	netuid types.Netuid
	hotkey types.AccountID
}

// devTaskStats is what the validators of a subnet saw of one miner.
type devTaskStats struct {
	tasks, served, passed int
	lastFailure           string
}

// neuronRecords reads the metagraph of s and labels each uid.
func (d *devnet) neuronRecords(s *devSubnet) ([]devNeuron, error) {
	mg, err := state.QueryMetagraph(d.n.State(), s.netuid)
	if err != nil {
		return nil, err
	}
	type label struct{ name, role, behaviour string }
	labels := map[types.AccountID]label{s.ownerHot.id: {s.ownerHot.name, "owner", ""}}
	for _, v := range s.validators {
		labels[v.hot.id] = label{v.hot.name, "validator", ""}
	}
	for i, m := range s.miners {
		l := label{m.name, "miner", ""}
		if s.behaviours != nil {
			l.behaviour = s.behaviours[i]
		}
		labels[m.id] = l
	}
	frac := func(v uint16) float64 { return float64(v) / 65535 }
	recs := make([]devNeuron, 0, len(mg.Neurons))
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range mg.Neurons {
		l, ok := labels[n.Hotkey]
		if !ok {
			l = label{shortKey(n.Hotkey), "other", ""}
		}
		r := devNeuron{UID: n.UID, Hotkey: n.Hotkey.String(), Name: l.name, Role: l.role, Behaviour: l.behaviour,
			StakeRao: n.Stake, Incentive: frac(n.Incentive), Dividends: frac(n.Dividends), Consensus: frac(n.Consensus),
			VTrust: frac(n.ValidatorTrust), EmissionRao: n.Emission, Permit: n.Permit}
		if n.Axon.Host != "" {
			r.Axon = net.JoinHostPort(n.Axon.Host, strconv.Itoa(int(n.Axon.Port)))
		}
		if st := d.stats[devStatKey{s.netuid, n.Hotkey}]; st != nil {
			r.Tasks, r.Served, r.Passed, r.LastFailure = st.tasks, st.served, st.passed, st.lastFailure
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// incentiveShares sums the incentive of the miners of each behaviour, as a
// fraction of the subnet's total incentive; nil when there is none.
func incentiveShares(recs []devNeuron) map[string]float64 {
	var total float64
	sh := map[string]float64{}
	for _, r := range recs {
		total += r.Incentive
		if r.Behaviour != "" {
			sh[r.Behaviour] += r.Incentive
		}
	}
	if total == 0 {
		return nil
	}
	for k := range sh {
		sh[k] /= total
	}
	return sh
}

// summaryShares is incentiveShares for the summary: each behaviour at 0
// when no miner holds incentive yet, so that the field always names them.
func summaryShares(recs []devNeuron) map[string]float64 {
	if sh := incentiveShares(recs); sh != nil {
		return sh
	}
	return map[string]float64{behaviourHonest: 0, behaviourRandom: 0, behaviourOtherModel: 0}
}

// writeDevTable writes a subnet's devnet table: one row per uid.
func writeDevTable(b *bytes.Buffer, recs []devNeuron, live bool) {
	var t bytes.Buffer
	tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', tabwriter.AlignRight)
	// NAME and ROLE read better left-aligned: pad them to one width.
	roleOf := func(r devNeuron) string {
		if r.Behaviour != "" {
			return r.Behaviour + " " + r.Role
		}
		return r.Role
	}
	nameW, roleW := len("NAME"), len("ROLE")
	for _, r := range recs {
		nameW, roleW = max(nameW, len(r.Name)), max(roleW, len(roleOf(r)))
	}
	fmt.Fprintf(tw, "UID\t%-*s\t%-*s\tSTAKE τ\tINCENTIVE\tDIVIDENDS\tEMISSION ρ\tVTRUST\tVPERMIT\t", nameW, "NAME", roleW, "ROLE")
	if live {
		fmt.Fprint(tw, "TASKS\tPASS\t")
	}
	fmt.Fprintln(tw)
	var stake, emission uint64
	for _, r := range recs {
		name, role := fmt.Sprintf("%-*s", nameW, r.Name), fmt.Sprintf("%-*s", roleW, roleOf(r))
		permit := ""
		if r.Permit {
			permit = "*"
		}
		stake += r.StakeRao
		emission += r.EmissionRao
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.5f\t%.5f\t%d\t%.5f\t%s\t", r.UID, name, role, formatTAOFixed(r.StakeRao, 4),
			r.Incentive, r.Dividends, r.EmissionRao, r.VTrust, permit)
		if live {
			if r.Role != "miner" {
				fmt.Fprint(tw, "\t\t")
			} else {
				pass := "-"
				if r.Tasks > 0 {
					pass = fmt.Sprintf("%.0f%%", 100*float64(r.Passed)/float64(r.Tasks))
				}
				fmt.Fprintf(tw, "%d\t%s\t", r.Served, pass)
			}
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "\t%-*s\t\t%s\t\t\t%d\t\t\t", nameW, "total", formatTAOFixed(stake, 4), emission)
	if live {
		fmt.Fprint(tw, "\t\t")
	}
	fmt.Fprintln(tw)
	tw.Flush()
	for _, line := range strings.SplitAfter(t.String(), "\n") {
		b.WriteString(strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
}

var devnetCommand = &command{
	name:    "devnet",
	args:    "[--epochs N] [--json] [--cast live|scripted] [--block-time 1s] [--validators N] [--backend cpu|cuda|auto] [--data DIR]",
	summary: "run a local devnet in one process: a chain, two subnets, miners and validators",
	help: "Runs a whole local network in one process: a chain of 4 validators\n" +
		"(--validators) that finalize each block by BFT over QUIC on 127.0.0.1, with\n" +
		"1-second blocks on a devnet genesis (tempo 10, root epoch every 5 blocks),\n" +
		"well-known funded accounts, and a script that sends real signed\n" +
		"transactions: alice and bob each register a subnet; validators carol, dave\n" +
		"and eve register, stake and set root weights; the miner coldkey frank\n" +
		"registers miners that serve an endpoint. Who plays the neurons (--cast):\n\n" +
		"  live      2 validators and 6 miners a subnet, the real thing: each miner\n" +
		"            serves the embedded tiny model over QUIC on its own UDP port on\n" +
		"            127.0.0.1 (4 honest, 1 that answers random tokens, 1 that\n" +
		"            answers from another model); the validators send them tasks,\n" +
		"            verify the answers with their own copy of the model, score\n" +
		"            correctness and speed and set weights; Yuma pays the honest.\n" +
		"  scripted  the validators set weights that favour some miners, with a\n" +
		"            little noise, after every epoch; no model and no network.\n\n" +
		"After each epoch of a subnet it prints a table: uid, name, role (and a\n" +
		"miner's behaviour), stake, incentive, dividends, emission, validator trust\n" +
		"and, live, the tasks each miner served and the share that passed\n" +
		"verification. With --epochs N it stops after N epochs of each subnet and\n" +
		"prints a summary (issuance, stake, emission and incentive per behaviour\n" +
		"per subnet, blocks, transactions, failures); --json prints only the\n" +
		"summary, as one JSON object with each subnet's final metagraph (each\n" +
		"miner's record carries its behaviour beside its incentive; the fields\n" +
		"are in docs/status.md). A subnet's first epoch only grants the\n" +
		"validator permits: the first scores (tasks, incentive) arrive at epoch\n" +
		"2, so --epochs 1 ends with every miner at 0; give --epochs 2 or more.\n" +
		"Without --epochs it runs until Ctrl-C.\n\n" +
		"It prints the API address: while it runs, query it from another terminal\n" +
		"with 'taobox metagraph 1 --node URL', or send transactions as the devnet\n" +
		"accounts with --wallets DIR (the keys are public: for testing only). The\n" +
		"chain lives in a temporary directory removed at exit, unless --data DIR\n" +
		"(empty or new) keeps it for inspection afterwards: the wallets, the\n" +
		"genesis (DIR/genesis.json) and each chain validator's store (DIR/chain,\n" +
		"DIR/chain-1, ...). The devnet never resumes a kept chain (a new run\n" +
		"needs a new directory); to read its final state, serve it with a node\n" +
		"that makes no blocks:\n" +
		"  taobox node --data DIR/chain --genesis DIR/genesis.json\n" +
		"and query it with 'taobox metagraph 1' or 'taobox wallet show carol\n" +
		"--wallets DIR'. Examples:\n\n" +
		"  taobox devnet --epochs 5\n" +
		"  taobox devnet --epochs 5 --json | jq '.subnets[].incentive_shares'\n" +
		"  taobox devnet --cast scripted --epochs 2\n" +
		"  taobox devnet --data ./devnet        # until Ctrl-C",
	setup: func(fs *flag.FlagSet) func(*env) error {
		epochs := fs.Int("epochs", 0, "stop after `N` epochs of each subnet (0: run until Ctrl-C)")
		asJSON := fs.Bool("json", false, "print only a JSON summary at the end")
		blockTime := fs.Duration("block-time", time.Second, "the `interval` between blocks")
		validators := fs.Int("validators", 4, "run `N` chain validators in this process, finalizing each block by BFT over QUIC on 127.0.0.1")
		data := fs.String("data", "", "keep the chain, its genesis.json and the devnet wallets in `DIR` for inspection (empty or new; never resumed; default: a temporary directory)")
		of := addObsFlags(fs, "warn")
		backend := backendFlag(fs)
		cast := fs.String("cast", devDefaultCast, "who plays the neurons: `live` (real miners and validators over QUIC) or scripted (weights from a script)")
		return func(e *env) error {
			if *cast != "live" && *cast != "scripted" {
				return &usageError{"cast", fmt.Sprintf("%q: want live or scripted", *cast)}
			}
			if *epochs < 0 {
				return &usageError{"epochs", "must be 0 (run until Ctrl-C) or more"}
			}
			if *validators < 1 || *validators > 16 {
				return &usageError{"validators", fmt.Sprintf("%d: want 1 to 16", *validators)}
			}
			if *blockTime < time.Millisecond {
				return &usageError{"block-time", fmt.Sprintf("%v is too short (at least 1ms)", *blockTime)}
			}
			o, err := of.open(e)
			if err != nil {
				return err
			}
			defer o.Close()
			dir := *data
			if dir == "" {
				if dir, err = os.MkdirTemp("", "taobox-devnet-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
				return &usageError{"data", fmt.Sprintf("%s is not empty; the devnet starts a new chain and never resumes a kept one (give a new directory; "+
					"read a kept chain with: taobox node --data %s --genesis %s)", dir, filepath.Join(dir, "chain"), filepath.Join(dir, "genesis.json"))}
			}
			ctx, stop := withTermSignal(e.ctx)
			defer stop()
			engine, err := startEngine(ctx, *backend, o.log)
			if err != nil {
				return err
			}
			defer engine.Close()
			var accel miner.Accelerator
			if *cast == "live" {
				tmp, err := os.MkdirTemp("", "taobox-devnet-model-")
				if err != nil {
					return err
				}
				defer func() { // the runner may reload the model until it stops
					engine.Close()
					os.RemoveAll(tmp)
				}()
				sum := sha256.Sum256(assets.TinyModel())
				if accel, err = modelAccel(ctx, engine, *backend, "", hex.EncodeToString(sum[:]), tmp, true, o.log); err != nil {
					return err
				}
			}
			return runDevnet(ctx, e, dir, *cast == "live", *epochs, *validators, *blockTime, *asJSON, o, engine, accel)
		}
	},
}

// devDefaultCast is the cast 'taobox devnet' runs without --cast.
const devDefaultCast = "live"

func runDevnet(ctx context.Context, e *env, dir string, live bool, epochs, validators int, blockTime time.Duration, asJSON bool, o *daemonObs, engine yuma.Engine, accel miner.Accelerator) error {
	start := time.Now()
	d := newCast(live)
	d.accel = accel
	d.out = e.stdout
	if asJSON {
		d.out = io.Discard
	}
	if err := d.writeWallets(dir); err != nil {
		return err
	}
	g := devnetGenesis("taobox-devnet", uint64(time.Now().UnixMilli()), d.genesisBalances())
	withDevAuthorities(g, validators)
	// The genesis beside the chain, so that a kept --data DIR can be
	// opened by 'taobox node' (it holds the start time: it cannot be
	// made again).
	gj, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := wallet.WriteFileAtomic(filepath.Join(dir, "genesis.json"), append(gj, '\n'), false); err != nil {
		return err
	}
	log := o.log
	chain, err := startDevChain(ctx, dir, g, blockTime, log, engine)
	if err != nil {
		return err
	}
	defer chain.stop()
	n := chain.nodes[0]
	d.n = n
	d.metrics = node.NewMetrics(n, node.MetricsOptions{BlockTime: blockTime})
	o.reg.MustRegister(d.metrics)
	if es, ok := engine.(obs.EngineStats); ok {
		o.reg.MustRegister(obs.GPUCollector(es))
	}
	o.health.Add("node", d.metrics.Healthy)
	go d.metrics.Follow(ctx)
	d.api = "http://" + n.APIAddr()
	blocks, cancel := n.Subscribe()
	defer cancel()
	if live {
		// The miners listen before they serve their endpoints on chain.
		if d.neurons, err = startNeurons(ctx, d, dir, blockTime, log); err != nil {
			n.Close()
			return err
		}
		d.neurons.reg = o.reg
		defer d.neurons.stop()
	}

	fmt.Fprintf(d.out, "taobox devnet: chain %q (id %s), a block every %v, tempo %d, root epoch every %d blocks\n",
		g.ChainName, n.ChainID(), blockTime, g.SubnetDefaults.Tempo, g.Params.RootTempo)
	if validators > 1 {
		fmt.Fprintf(d.out, "%d chain validators finalize each block by BFT (Tendermint, > 2/3 of stake precommits) over QUIC on 127.0.0.1\n", validators)
	}
	fmt.Fprintf(d.out, "API %s    try: taobox metagraph 1 --node %s\n", d.api, d.api)
	fmt.Fprintf(d.out, "Wallets in %s (public test keys, stored unencrypted): alice, bob own the subnets; carol, dave, eve validate; frank mines\n", dir)
	fmt.Fprintf(d.out, "    try: taobox wallet show carol --wallets %s --node %s\n", dir, d.api)
	if live {
		for _, s := range d.subnets {
			var ms []string
			for i := range s.miners {
				ms = append(ms, fmt.Sprintf("%d %s", s.ports[i], s.behaviours[i]))
			}
			fmt.Fprintf(d.out, "Miners of %s's subnet, QUIC on 127.0.0.1: %s\n", s.owner.name, strings.Join(ms, ", "))
		}
		fmt.Fprintf(d.out, "Validators send tasks in rounds, %v apart, once they hold a permit, and set weights every %d blocks\n",
			blockTime, g.SubnetDefaults.WeightsRateLimit+1)
	}
	if epochs > 0 {
		plural := "s"
		if epochs == 1 {
			plural = ""
		}
		fmt.Fprintf(d.out, "Stops after %d epoch%s of each subnet; Ctrl-C stops it earlier.\n", epochs, plural)
		if epochs == 1 {
			fmt.Fprint(d.out, "A subnet's first epoch only grants the validator permits: with --epochs 1 no miner is scored (give --epochs 2 or more).\n")
		}
		fmt.Fprintln(d.out)
	} else {
		fmt.Fprint(d.out, "Runs until Ctrl-C.\n\n")
	}
	fmt.Fprintf(d.out, "block 1: alice registers a subnet, then bob\n")
	d.startPhase(0, 0)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(runCtx) }()

	interrupted := false
	var failErr error
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case err := <-runErr:
			runErr <- err
			if ctx.Err() != nil { // Run saw the interrupt first
				interrupted = true
				break loop
			}
			failErr = fmt.Errorf("the node stopped: %v", err)
			break loop
		case b, ok := <-blocks:
			if !ok {
				failErr = errors.New("the node closed its block stream")
				break loop
			}
			if err := chain.Err(); err != nil {
				failErr = err
				break loop
			}
			if d.onBlock(ctx, b, epochs) {
				failErr = d.fatal
				break loop
			}
		}
	}
	sum := d.summary(ctx, start, interrupted)
	if d.neurons != nil {
		d.neurons.stop() // before the node closes: miners read its state
	}
	stopRun()
	if err := <-runErr; err != nil && failErr == nil && !errors.Is(err, node.ErrClosed) {
		failErr = err
	}
	if err := n.Close(); err != nil && failErr == nil {
		failErr = err
	}
	if failErr != nil {
		return failErr
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	d.writeSummary(sum)
	return nil
}

func (d *devnet) summary(ctx context.Context, start time.Time, interrupted bool) *devSummary {
	cast := "scripted"
	if d.live {
		cast = "live"
	}
	d.mu.Lock()
	s := &devSummary{Cast: cast, ChainID: d.n.ChainID(), API: d.api, Blocks: d.blocks, Txs: d.txs, FailedTxs: len(d.failures),
		Failures: append([]string{}, d.failures...), ElapsedSeconds: time.Since(start).Round(time.Millisecond).Seconds(), Interrupted: interrupted}
	d.mu.Unlock()
	if g, err := state.QueryGlobals(d.n.State()); err == nil {
		s.IssuanceRao, s.TotalStakeRao, s.BurnedRao, s.LockedRao = g.Issuance, g.TotalStake, g.Burned, g.Locked
	}
	for _, sn := range d.subnets {
		s.EmissionRao += sn.emission
		st := devSubnetStats{Netuid: sn.netuid, Owner: sn.owner.name, Epochs: sn.epochs, EmissionRao: sn.emission,
			Validators: len(sn.validators), Miners: len(sn.miners)}
		if sub, ok, err := state.QuerySubnet(d.n.State(), sn.netuid); err == nil && ok {
			st.Neurons = int(sub.N)
		}
		st.Metagraph = []devNeuron{}
		if sn.netuid != 0 {
			if recs, err := d.neuronRecords(sn); err == nil {
				st.Metagraph = recs
				if d.live {
					st.IncentiveShares = summaryShares(recs)
				}
			}
		}
		s.Subnets = append(s.Subnets, st)
	}
	return s
}

func (d *devnet) writeSummary(s *devSummary) {
	var b bytes.Buffer
	how := "done"
	if s.Interrupted {
		how = "interrupted"
	}
	fmt.Fprintf(&b, "Devnet %s after %d blocks in %.1fs: %d transactions, %d failed\n", how, s.Blocks, s.ElapsedSeconds, s.Txs, s.FailedTxs)
	fmt.Fprintf(&b, "  issuance τ%s, total stake τ%s, burned τ%s, locked τ%s\n",
		formatTAO(s.IssuanceRao), formatTAO(s.TotalStakeRao), formatTAO(s.BurnedRao), formatTAO(s.LockedRao))
	for _, sn := range s.Subnets {
		fmt.Fprintf(&b, "  subnet %d (%s): %d epochs, emission τ%s, %d neurons (%d validators, %d miners)\n",
			sn.Netuid, sn.Owner, sn.Epochs, formatTAO(sn.EmissionRao), sn.Neurons, sn.Validators, sn.Miners)
		if sh := sn.IncentiveShares; sh != nil {
			if sh[behaviourHonest]+sh[behaviourRandom]+sh[behaviourOtherModel] == 0 {
				fmt.Fprintf(&b, "    incentive of the last epoch: none yet (the first epoch grants validator permits; scores count from epoch 2)\n")
			} else {
				fmt.Fprintf(&b, "    incentive of the last epoch: honest miners %.1f%%, random %.1f%%, other-model %.1f%%\n",
					100*sh[behaviourHonest], 100*sh[behaviourRandom], 100*sh[behaviourOtherModel])
			}
		}
	}
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "  failure: %s\n", f)
	}
	d.out.Write(b.Bytes())
}
