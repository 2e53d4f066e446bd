package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/chain/yuma"
	"taobox/wallet"
)

// taobox devnet: one process runs a single-authority chain with fast blocks
// and a scripted cast that submits real signed transactions through
// node.Submit: two subnet owners, validators that stake, set root weights
// and set weights every tempo, and miners that serve an endpoint. The
// miner/validator issue replaces the scripted cast with real neurons.
//
// The script advances in phases, each one block after the previous one's
// transactions were all decided:
//
//	0  alice and bob register a subnet each
//	1  the owners set max_allowed_validators; validators and miners register
//	2  validators stake on their hotkeys; miners serve an endpoint
//	3  validators set root weights over the two subnets
//
// after which the root epoch (every 5 blocks) gives the subnets their shares
// of the block reward, and after each epoch of a subnet its validators set
// new weights that favour some miners, with a little seeded noise. The first
// epoch of a subnet grants the validator permits, so incentive shows from
// its second epoch on (the first pays validators by stake).

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

// devSubnet is one scripted subnet.
type devSubnet struct {
	netuid     types.Netuid
	owner      *devActor // coldkey
	ownerHot   *devActor
	validators []*devValidator
	miners     []*devActor // hotkeys owned by the miner coldkey
	scores     []float64   // each miner's true quality; weights follow it
	epochs     int
	emission   uint64 // rao credited by its epochs
	lastEpoch  uint64
}

// devnet is the state of one run.
type devnet struct {
	n        *node.Node
	out      io.Writer // progress and tables; io.Discard with --json
	api      string
	subnets  []*devSubnet
	vals     []*devValidator
	minerCk  *devActor
	actors   []*devActor
	pending  map[types.Hash]*devPending
	phase    int
	phaseAt  uint64 // height when the current phase was submitted
	rng      *rand.Rand
	blocks   uint64
	txs      int
	failures []string
}

type devPending struct {
	actor *devActor
	what  string
}

// devSummary is the result of a run (--json prints it).
type devSummary struct {
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
}

// newCast builds the accounts and subnets of the script.
func newCast() *devnet {
	d := &devnet{pending: map[types.Hash]*devPending{}, rng: rand.New(rand.NewPCG(1, 2))}
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

// submit signs call with a and hands it to the node.
func (d *devnet) submit(a *devActor, what string, call types.Call) {
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
		return
	}
	a.nonce++
	a.inPool++
	d.pending[hash] = &devPending{a, what}
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

// startPhase submits the transactions of phase p.
func (d *devnet) startPhase(p int, height uint64) {
	d.phase, d.phaseAt = p, height
	switch p {
	case 0:
		for _, s := range d.subnets {
			d.submit(s.owner, "register_network by "+s.owner.name, types.RegisterNetwork{Hotkey: s.ownerHot.id})
		}
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
				d.submit(m, "serve "+m.name, types.Serve{Netuid: s.netuid, Host: "127.0.0.1",
					Port: uint16(8000 + 100*int(s.netuid) + i), TLSKey: m.id})
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
		d.failures = append(d.failures, fmt.Sprintf("metagraph of subnet %d: %v", s.netuid, err))
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
	var due []*devSubnet
	for _, ev := range b.Events {
		switch ev.Kind {
		case types.EvNetworkRegistered:
			if s := d.subnetOf(ev.Account); s != nil {
				s.netuid = ev.Netuid
				fmt.Fprintf(d.out, "block %d: %s registered subnet %d (lock τ%s)\n", b.Height, s.owner.name, ev.Netuid, formatTAO(ev.Amount))
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
	if d.phase < 3 && (len(d.pending) == 0 || b.Height >= d.phaseAt+5) {
		if d.phase == 0 && slices.ContainsFunc(d.subnets, func(s *devSubnet) bool { return s.netuid == 0 }) {
			d.failures = append(d.failures, "a subnet was not registered; the script stops here")
			return true
		}
		clear(d.pending)
		for _, a := range d.actors {
			a.inPool = 0
		}
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
		d.printEpoch(ctx, s, b.Height, epochs)
		if epochs == 0 || s.epochs < epochs {
			d.setWeights(s)
		}
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

// printEpoch prints the metagraph of s after its epoch, read through the
// node's API as 'taobox metagraph' does.
func (d *devnet) printEpoch(ctx context.Context, s *devSubnet, height uint64, epochs int) {
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
	c, err := newClient(d.api)
	if err == nil {
		var mg node.MetagraphInfo
		var sn node.SubnetInfo
		if err = c.get(ctx, fmt.Sprintf("/v1/metagraph/%d", s.netuid), &mg); err == nil {
			if err = c.get(ctx, fmt.Sprintf("/v1/subnet/%d", s.netuid), &sn); err == nil {
				writeMetagraph(&b, &sn, &mg)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "(metagraph unavailable: %v)\n", err)
	}
	b.WriteString("\n")
	d.out.Write(b.Bytes())
}

var devnetCommand = &command{
	name:    "devnet",
	args:    "[--epochs N] [--json] [--block-time 1s] [--data DIR]",
	summary: "run a local devnet in one process: a chain, two subnets, scripted neurons",
	help: "Runs a whole local network in one process: a single-authority chain with\n" +
		"1-second blocks on a devnet genesis (tempo 10, root epoch every 5 blocks),\n" +
		"well-known funded accounts, and a script that sends real signed\n" +
		"transactions: alice and bob each register a subnet; validators carol, dave\n" +
		"and eve register, stake and set root weights; the miner coldkey frank\n" +
		"registers 4 and 5 miners that serve an endpoint; after every epoch the\n" +
		"validators set weights that favour some miners, with a little noise. After\n" +
		"each epoch of a subnet it prints its metagraph. With --epochs N it stops\n" +
		"after N epochs of each subnet and prints a summary (issuance, stake,\n" +
		"emission per subnet, blocks, transactions, failures); --json prints only\n" +
		"the summary, as one JSON object. Without --epochs it runs until Ctrl-C.\n\n" +
		"It prints the API address: while it runs, query it from another terminal\n" +
		"with 'taobox metagraph 1 --node URL', or send transactions as the devnet\n" +
		"accounts with --wallets DIR (the keys are public: for testing only). The\n" +
		"chain lives in a temporary directory removed at exit, unless --data DIR\n" +
		"(empty or new) keeps it. Examples:\n\n" +
		"  taobox devnet --epochs 3\n" +
		"  taobox devnet --epochs 2 --json | jq .subnets\n" +
		"  taobox devnet --data ./devnet        # until Ctrl-C",
	setup: func(fs *flag.FlagSet) func(*env) error {
		epochs := fs.Int("epochs", 0, "stop after `N` epochs of each subnet (0: run until Ctrl-C)")
		asJSON := fs.Bool("json", false, "print only a JSON summary at the end")
		blockTime := fs.Duration("block-time", time.Second, "the `interval` between blocks")
		data := fs.String("data", "", "keep the chain and the devnet wallets in `DIR` (empty or new; default: a temporary directory)")
		level := logLevelFlag(fs, "warn")
		backend := backendFlag(fs)
		return func(e *env) error {
			if *epochs < 0 {
				return &usageError{"epochs", "must be 0 (run until Ctrl-C) or more"}
			}
			if *blockTime < time.Millisecond {
				return &usageError{"block-time", fmt.Sprintf("%v is too short (at least 1ms)", *blockTime)}
			}
			lvl, err := parseLogLevel(*level)
			if err != nil {
				return err
			}
			dir := *data
			if dir == "" {
				if dir, err = os.MkdirTemp("", "taobox-devnet-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
				return &usageError{"data", fmt.Sprintf("%s is not empty; the devnet starts a new chain (give a new directory)", dir)}
			}
			ctx, stop := withTermSignal(e.ctx)
			defer stop()
			engine, err := startEngine(ctx, *backend, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl})))
			if err != nil {
				return err
			}
			defer engine.Close()
			return runDevnet(ctx, e, dir, *epochs, *blockTime, *asJSON, lvl, engine)
		}
	},
}

func runDevnet(ctx context.Context, e *env, dir string, epochs int, blockTime time.Duration, asJSON bool, lvl slog.Level, engine yuma.Engine) error {
	start := time.Now()
	d := newCast()
	d.out = e.stdout
	if asJSON {
		d.out = io.Discard
	}
	if err := d.writeWallets(dir); err != nil {
		return err
	}
	g := devnetGenesis("taobox-devnet", uint64(time.Now().UnixMilli()), d.genesisBalances())
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
	n, err := node.Open(node.Config{
		DataDir: filepath.Join(dir, "chain"), Genesis: g, Authority: devKey("authority"),
		BlockTime: blockTime, APIAddr: "127.0.0.1:0", Logger: log, Engine: engine,
	})
	if err != nil {
		return err
	}
	d.n = n
	d.api = "http://" + n.APIAddr()
	blocks, cancel := n.Subscribe()
	defer cancel()

	fmt.Fprintf(d.out, "taobox devnet: chain %q (id %s), a block every %v, tempo %d, root epoch every %d blocks\n",
		g.ChainName, n.ChainID(), blockTime, g.SubnetDefaults.Tempo, g.Params.RootTempo)
	fmt.Fprintf(d.out, "API %s    try: taobox metagraph 1 --node %s\n", d.api, d.api)
	fmt.Fprintf(d.out, "Wallets in %s (public test keys): alice, bob own the subnets; carol, dave, eve validate; frank mines\n", dir)
	fmt.Fprintf(d.out, "    try: taobox wallet show carol --wallets %s --node %s\n", dir, d.api)
	if epochs > 0 {
		plural := "s"
		if epochs == 1 {
			plural = ""
		}
		fmt.Fprintf(d.out, "Stops after %d epoch%s of each subnet; Ctrl-C stops it earlier.\n\n", epochs, plural)
	} else {
		fmt.Fprint(d.out, "Runs until Ctrl-C.\n\n")
	}
	fmt.Fprintf(d.out, "block 1: alice and bob register a subnet each\n")
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
			failErr = fmt.Errorf("the node stopped: %v", err)
			break loop
		case b, ok := <-blocks:
			if !ok {
				failErr = errors.New("the node closed its block stream")
				break loop
			}
			if d.onBlock(ctx, b, epochs) {
				break loop
			}
		}
	}
	sum := d.summary(ctx, start, interrupted)
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
	s := &devSummary{ChainID: d.n.ChainID(), API: d.api, Blocks: d.blocks, Txs: d.txs, FailedTxs: len(d.failures),
		Failures: append([]string{}, d.failures...), ElapsedSeconds: time.Since(start).Round(time.Millisecond).Seconds(), Interrupted: interrupted}
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
	}
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "  failure: %s\n", f)
	}
	d.out.Write(b.Bytes())
}
