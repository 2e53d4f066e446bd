package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"taobox/assets"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/miner"
	"taobox/model"
	"taobox/model/gguf"
	"taobox/task"
	"taobox/validator"
)

// The test network: the real state machine (state.ApplyBlock over a
// MemState) as the chain, real miners (package miner) serving the embedded
// tiny model over QUIC on loopback, a real validator that scores them in
// one round, and the gateway in front, answering a real HTTP client.

func keyN(i int) ed25519.PrivateKey {
	seed := make([]byte, 32)
	seed[0], seed[1] = byte(i), 0x5a
	return ed25519.NewKeyFromSeed(seed)
}

func idN(i int) types.AccountID { return types.AccountIDFromPrivateKey(keyN(i)) }

// Keys of the test network.
const (
	kValidator = 0   // the validator's hotkey (uid 0, owns subnet 1)
	kMiner1    = 1   // miners: uids 1 and 2
	kMiner2    = 2   //
	kOwner     = 100 // the subnet owner's coldkey; stakes on the validator
	kHolder    = 50  // a coldkey with 100 TAO staked on the validator
	kSmall     = 51  // a coldkey with 1 TAO staked
	kPoor      = 52  // a funded coldkey with no stake
)

// memChain applies blocks of queued transactions with the real state
// machine.
type memChain struct {
	t      testing.TB
	mu     sync.Mutex
	st     state.MemState
	env    state.Env
	height uint64
	queue  []types.Tx
	nonces map[types.AccountID]uint64
	failed []string
}

func newMemChain(t testing.TB, funded ...int) *memChain {
	g := &state.Genesis{ChainName: "gateway-test", Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams()}
	g.Params.NetworkMinLock = 10 * types.RaoPerTAO
	g.Params.NetworkRateLimit = 1
	h := &g.SubnetDefaults
	h.ImmunityPeriod, h.Tempo, h.WeightsRateLimit, h.ServingRateLimit = 1000, 10, 3, 0
	for _, k := range funded {
		g.Balances = append(g.Balances, state.GenesisBalance{Account: idN(k), Free: 1000 * types.RaoPerTAO})
	}
	c := &memChain{t: t, st: state.MemState{}, env: state.Env{ChainID: g.ID()}, nonces: map[types.AccountID]uint64{}}
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

func (c *memChain) stake(_ context.Context, id types.AccountID) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return StateStake(c.st, id)
}

func (c *memChain) send(k int, call types.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := idN(k)
	if _, ok := c.nonces[id]; !ok {
		a, err := state.QueryAccount(c.st, id)
		if err != nil {
			c.t.Fatal(err)
		}
		c.nonces[id] = a.Nonce
	}
	tx := types.Tx{Nonce: c.nonces[id], ValidUntil: c.height + 10, Call: call}
	c.nonces[id]++
	tx.Sign(keyN(k), c.env.ChainID)
	c.queue = append(c.queue, tx)
}

func (c *memChain) block() {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := state.ApplyBlock(context.Background(), c.st, c.env, c.height+1, c.queue)
	if err != nil {
		c.t.Fatalf("block %d: %v", c.height+1, err)
	}
	c.queue = nil
	c.height++
	c.st.Apply(res.Changes)
	for _, ev := range res.Events {
		if ev.Kind == types.EvTxFailed {
			c.failed = append(c.failed, ev.Error)
		}
	}
}

func loadTiny(t testing.TB) (*model.Model, *model.Tokenizer) {
	t.Helper()
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := model.TokenizerFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	m.SetThreads(1)
	return m, tok
}

// testNet is the running network.
type testNet struct {
	chain *memChain
	val   *validator.Validator
	tok   *model.Tokenizer
	hash  [32]byte
	fail  map[uint16]*atomic.Int32 // per miner uid: 0 answer, -1 fail at once, k > 0 fail after k tokens
	gw    *Gateway
	url   string
	clock *testClock
	ctx   context.Context
}

// testClock is real time plus an offset the test moves.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }
func (c *testClock) client(k int) *Client    { return &Client{Key: keyN(k), Now: c.now} }
func (n *testNet) client(k int) *Client      { cl := n.clock.client(k); cl.BaseURL = n.url; return cl }
func (n *testNet) candidates() []Candidate   { c, _ := n.gw.Candidates(); return c }
func (n *testNet) setFail(uid uint16, f bool) {
	v := int32(0)
	if f {
		v = -1
	}
	n.fail[uid].Store(v)
}

func (n *testNet) setFailAfter(uid uint16, k int32) { n.fail[uid].Store(k) }
func (n *testNet) logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var errInjected = errors.New("injected failure")

// startNet builds the chain, starts two miners, scores them with one
// validator round, and serves the gateway on 127.0.0.1. tune adjusts the
// gateway's config.
func startNet(t *testing.T, tune func(*Config)) *testNet {
	t.Helper()
	c := newMemChain(t, kOwner, kValidator, kMiner1, kMiner2, kHolder, kSmall, kPoor)
	c.send(kOwner, types.RegisterNetwork{Hotkey: idN(kValidator)})
	c.block()
	for _, k := range []int{kMiner1, kMiner2} {
		c.send(kOwner, types.BurnedRegister{Netuid: 1, Hotkey: idN(k)})
		c.block()
	}
	c.send(kOwner, types.AddStake{Hotkey: idN(kValidator), Amount: 100 * types.RaoPerTAO})
	c.send(kHolder, types.AddStake{Hotkey: idN(kValidator), Amount: 100 * types.RaoPerTAO})
	c.send(kSmall, types.AddStake{Hotkey: idN(kValidator), Amount: types.RaoPerTAO})
	for range 22 { // two epochs: the validator gets its permit
		c.block()
	}
	if mg, _ := c.Metagraph(1); !mg.Neurons[0].Permit {
		t.Fatal("the validator has no permit after two epochs")
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // cleanups run last-in first-out: cancel, then wait
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n := &testNet{chain: c, ctx: ctx, fail: map[uint16]*atomic.Int32{}, clock: &testClock{}}
	n.hash = sha256.Sum256(assets.TinyModel())
	var stop []int
	for uid, k := range map[uint16]int{1: kMiner1, 2: kMiner2} {
		mdl, tok := loadTiny(t)
		stop = []int{tok.EOS()}
		honest := miner.ModelAnswer(mdl, stop)
		f := new(atomic.Int32)
		n.fail[uid] = f
		m, err := miner.New(miner.Config{Key: keyN(k), Netuid: 1, Model: mdl, ModelHash: n.hash, StopIDs: stop, Chain: c,
			Answer: func(ctx context.Context, b task.Body, emit func(task.Token) error) error {
				k := f.Load()
				if k < 0 {
					return errInjected
				}
				sent := int32(0)
				err := honest(ctx, b, func(t task.Token) error {
					if k > 0 && sent == k {
						return errInjected
					}
					sent++
					return emit(t)
				})
				return err
			}})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.Serve(ctx, pc) }()
		<-m.Ready()
		c.send(k, types.Serve{Netuid: 1, Host: "127.0.0.1", Port: uint16(pc.LocalAddr().(*net.UDPAddr).Port), TLSKey: idN(k)})
	}
	c.block()
	if len(c.failed) > 0 {
		t.Fatalf("setup transactions failed: %v", c.failed)
	}
	vm, tok := loadTiny(t)
	n.tok = tok
	v, err := validator.New(validator.Config{
		Key: keyN(kValidator), Netuid: 1, Model: vm, Tokenizer: tok, ModelHash: n.hash, Chain: c,
		Submit: func(call types.Call) error { c.send(kValidator, call); return nil }, Tasks: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	rep, err := v.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Miners {
		if !m.Pass || m.Score <= 0 {
			t.Fatalf("uid %d did not pass the validator's round: %s", m.UID, m.Reason)
		}
	}
	n.val = v
	cfg := Config{
		Key: keyN(kValidator), Netuid: 1, Chain: c, Scores: v.Scores, Tokenizer: tok, ModelHash: n.hash,
		ContextLen: vm.Config.SeqLen, Stake: c.stake, Now: n.clock.now, Logger: n.logger(t),
	}
	if tune != nil {
		tune(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	n.gw = gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); gw.Serve(ctx, ln) }()
	n.url = "http://" + ln.Addr().String()
	return n
}
