package validator

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
)

// memChain runs the real state machine (state.ApplyBlock over a MemState):
// the calls the validator submits go into the next block, so these tests
// check that they are legal exactly when the validator thinks they are.
type memChain struct {
	t       *testing.T
	mu      sync.Mutex
	st      state.MemState
	env     state.Env
	height  uint64
	queue   []types.Tx
	nonces  map[types.AccountID]uint64
	events  []types.Event // every event so far
	failed  []string
	keys    map[types.AccountID]ed25519.PrivateKey
	netuid  uint16
	sameKey ed25519.PrivateKey
}

func newMemChain(t *testing.T, hyper func(*state.Hyperparams), funded ...ed25519.PrivateKey) *memChain {
	g := &state.Genesis{ChainName: "validator-test", Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams()}
	g.Params.NetworkMinLock = 10 * types.RaoPerTAO
	g.Params.NetworkRateLimit = 1
	g.SubnetDefaults.ImmunityPeriod = 1000
	hyper(&g.SubnetDefaults)
	c := &memChain{t: t, st: state.MemState{}, env: state.Env{ChainID: g.ID()}, nonces: map[types.AccountID]uint64{}, keys: map[types.AccountID]ed25519.PrivateKey{}, netuid: 1}
	for _, k := range funded {
		id := types.AccountIDFromPrivateKey(k)
		g.Balances = append(g.Balances, state.GenesisBalance{Account: id, Free: 1000 * types.RaoPerTAO})
		c.keys[id] = k
	}
	changes, err := g.Changes()
	if err != nil {
		t.Fatal(err)
	}
	c.st.Apply(changes)
	return c
}

func (c *memChain) Metagraph(netuid uint16) (*state.Metagraph, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return state.QueryMetagraph(c.st, types.Netuid(netuid))
}

func (c *memChain) Height() uint64 { c.mu.Lock(); defer c.mu.Unlock(); return c.height }

// send queues a call signed by key for the next block.
func (c *memChain) send(key ed25519.PrivateKey, call types.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := types.AccountIDFromPrivateKey(key)
	if _, ok := c.nonces[id]; !ok {
		a, err := state.QueryAccount(c.st, id)
		if err != nil {
			c.t.Fatal(err)
		}
		c.nonces[id] = a.Nonce
	}
	tx := types.Tx{Nonce: c.nonces[id], ValidUntil: c.height + 10, Call: call}
	c.nonces[id]++
	tx.Sign(key, c.env.ChainID)
	c.queue = append(c.queue, tx)
}

// block applies the queued calls in the next block; it returns the events.
func (c *memChain) block() []types.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := state.ApplyBlock(context.Background(), c.st, c.env, c.height+1, c.queue)
	if err != nil {
		c.t.Fatalf("block %d: %v", c.height+1, err)
	}
	c.queue = nil
	c.height++
	c.st.Apply(res.Changes)
	c.events = append(c.events, res.Events...)
	for _, ev := range res.Events {
		if ev.Kind == types.EvTxFailed {
			c.failed = append(c.failed, ev.Error)
		}
	}
	return res.Events
}

// chainNet sets up subnet 1 on a memChain: the validator (keyN(0)) owns it
// (uid 0), miners keyN(1..) register and serve, each answering through
// fakeNet with the given behaviour.
func chainNet(t *testing.T, hyper func(*state.Hyperparams), behaviours ...string) (*memChain, *fakeNet) {
	fixtures(t)
	cold := keyN(100)
	keys := []ed25519.PrivateKey{cold, keyN(0)}
	for i := range behaviours {
		keys = append(keys, keyN(i+1))
	}
	c := newMemChain(t, hyper, keys...)
	c.send(cold, types.RegisterNetwork{Hotkey: types.AccountIDFromPrivateKey(keyN(0))})
	c.block()
	fn := &fakeNet{t: t, miners: map[string]*fakeMiner{}}
	for i, b := range behaviours {
		uid := i + 1
		hk := types.AccountIDFromPrivateKey(keyN(uid))
		c.send(cold, types.BurnedRegister{Netuid: 1, Hotkey: hk})
		c.block()
		c.send(keyN(uid), types.Serve{Netuid: 1, Host: "127.0.0.1", Port: uint16(9000 + uid), TLSKey: hk})
		c.block()
		fm := &fakeMiner{key: keyN(uid), behave: b, perToken: time.Duration(uid) * time.Millisecond}
		if b == "honest" {
			m, _, err := loadTiny()
			if err != nil {
				t.Fatal(err)
			}
			fm.m = m
		}
		fn.miners["127.0.0.1:"+strconv.Itoa(9000+uid)] = fm
	}
	if len(c.failed) > 0 {
		t.Fatalf("setup calls failed: %v", c.failed)
	}
	return c, fn
}

func chainValidator(t *testing.T, c *memChain, fn *fakeNet) *Validator {
	v, err := New(Config{
		Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: c, Submit: func(call types.Call) error { c.send(keyN(0), call); return nil },
		Client: fn, Rand: rand.New(rand.NewPCG(5, 5)), Tasks: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWeightsOnChain: set_weights lands exactly when NextWindow says and
// the chain stores the validator's u16 vector.
func TestWeightsOnChain(t *testing.T) {
	c, fn := chainNet(t, func(h *state.Hyperparams) { h.Tempo, h.WeightsRateLimit = 10, 15 }, "honest", "random", "honest")
	v := chainValidator(t, c, fn)
	rep, err := v.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Miners {
		t.Logf("uid %d pass=%v tok/s=%.0f score=%.3f %s", m.UID, m.Pass, m.TokensPerSec, m.Score, m.Reason)
	}
	win, err := v.NextWindow()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("height %d, window %+v", c.Height(), win)
	submittedAt := uint64(0)
	for c.Height() < win.Block+5 {
		ok, err := v.MaybeSetWeights(c.Height())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if submittedAt != 0 {
				t.Fatalf("submitted twice (at %d and %d)", submittedAt, c.Height())
			}
			submittedAt = c.Height()
		}
		c.block()
	}
	if submittedAt+1 != win.Block {
		t.Fatalf("submitted at %d (in block %d), window opened at %d", submittedAt, submittedAt+1, win.Block)
	}
	if len(c.failed) > 0 {
		t.Fatalf("the chain refused: %v", c.failed)
	}
	mg, _ := c.Metagraph(1)
	row := mg.Neurons[0].Weights
	var uids []uint16
	for _, e := range row {
		uids = append(uids, e.UID)
	}
	// uid 1 (1 ms/token) is the fastest honest miner, uid 3 (3 ms/token)
	// gets a third of its speed, uid 2 (random tokens) nothing
	if !slices.Equal(uids, []uint16{1, 3}) || row[0].Value != 65535 || row[1].Value != 21845 {
		t.Fatalf("stored weights %v", row)
	}
	if mg.Neurons[0].LastUpdate != submittedAt+1 {
		t.Fatalf("LastUpdate %d, want %d", mg.Neurons[0].LastUpdate, submittedAt+1)
	}
	if w, _ := v.NextWindow(); w.Block != submittedAt+1+15 {
		t.Fatalf("next window %d, want %d", w.Block, submittedAt+1+15)
	}
}

// TestCommitRevealOnChain: commit, then reveal in the reveal window, both
// accepted by the state machine, and the revealed row stored.
func TestCommitRevealOnChain(t *testing.T) {
	c, fn := chainNet(t, func(h *state.Hyperparams) {
		h.Tempo, h.WeightsRateLimit, h.CommitReveal, h.RevealPeriod = 10, 5, 1, 1
	}, "honest", "other-model")
	fn.miners["127.0.0.1:9002"].m = fix.synth
	v := chainValidator(t, c, fn)
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kinds []types.EventKind
	for range 40 {
		if _, err := v.MaybeSetWeights(c.Height()); err != nil {
			t.Fatal(err)
		}
		for _, ev := range c.block() {
			if ev.Kind == types.EvWeightsCommitted || ev.Kind == types.EvWeightsRevealed {
				kinds = append(kinds, ev.Kind)
				t.Logf("block %d: %v", c.Height(), ev.Kind)
			}
		}
		if len(c.failed) > 0 {
			t.Fatalf("the chain refused: %v", c.failed)
		}
	}
	if len(kinds) < 2 || kinds[0] != types.EvWeightsCommitted || kinds[1] != types.EvWeightsRevealed {
		t.Fatalf("events %v, want a commit then its reveal", kinds)
	}
	mg, _ := c.Metagraph(1)
	if row := mg.Neurons[0].Weights; len(row) != 1 || row[0].UID != 1 || row[0].Value != 65535 {
		t.Fatalf("stored weights %v", row)
	}
}
