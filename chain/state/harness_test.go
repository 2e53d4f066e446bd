package state

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"strings"
	"testing"

	"taobox/chain/types"
)

// harness drives the state machine through real signed transactions and
// blocks over a MemState, checking the conservation invariant after every
// block.
type harness struct {
	t      testing.TB
	st     MemState
	env    Env
	height uint64
	keys   map[types.AccountID]ed25519.PrivateKey
	events []types.Event // of the last block
}

// key returns the deterministic test key number i.
func testKey(i int) (types.AccountID, ed25519.PrivateKey) {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	priv := ed25519.NewKeyFromSeed(seed)
	return types.AccountIDFromPrivateKey(priv), priv
}

func testGenesis(funded int, free uint64) *Genesis {
	g := &Genesis{ChainName: "taobox-test", Params: DefaultParams(), SubnetDefaults: DefaultSubnetHyperparams()}
	g.Params.NetworkMinLock = 10 * types.RaoPerTAO
	g.Params.NetworkRateLimit = 1
	g.Params.RootTempo = 5
	g.SubnetDefaults.Tempo = 10
	g.SubnetDefaults.WeightsRateLimit = 2
	g.SubnetDefaults.ImmunityPeriod = 20
	for i := range funded {
		id, _ := testKey(i)
		g.Balances = append(g.Balances, GenesisBalance{Account: id, Free: free})
	}
	return g
}

func newHarness(t testing.TB, g *Genesis) *harness {
	t.Helper()
	changes, err := g.Changes()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: MemState{}, env: Env{ChainID: g.ID()}, keys: map[types.AccountID]ed25519.PrivateKey{}}
	h.st.Apply(changes)
	for i := range 64 {
		id, priv := testKey(i)
		h.keys[id] = priv
	}
	h.checkConservation()
	return h
}

func (h *harness) id(i int) types.AccountID { id, _ := testKey(i); return id }

// tx builds and signs a transaction from account i with its next nonce.
func (h *harness) tx(i int, c types.Call) types.Tx {
	id, priv := testKey(i)
	var a Account
	x := &exec{o: newOverlay(h.st)}
	x.o.load(key(pAccount, id[:]), &a)
	tx := types.Tx{Nonce: a.Nonce, ValidUntil: h.height + 1 + 10, Call: c}
	tx.Sign(priv, h.env.ChainID)
	return tx
}

// block applies one block of transactions and commits its changes.
func (h *harness) block(txs ...types.Tx) error {
	h.t.Helper()
	res, err := ApplyBlock(context.Background(), h.st, h.env, h.height+1, txs)
	if err != nil {
		return err
	}
	h.height++
	h.st.Apply(res.Changes)
	h.events = res.Events
	h.checkConservation()
	return nil
}

// run applies a single transaction from account i in its own block and
// returns the call's failure reason ("" on success).
func (h *harness) run(i int, c types.Call) string {
	h.t.Helper()
	// Later transactions of the same signer in one block need increasing
	// nonces; run keeps one per block.
	if err := h.block(h.tx(i, c)); err != nil {
		h.t.Fatalf("block rejected: %v", err)
	}
	for _, ev := range h.events {
		if ev.Kind == types.EvTxFailed {
			return ev.Error
		}
	}
	return ""
}

// mustRun applies a call that must succeed.
func (h *harness) mustRun(i int, c types.Call) {
	h.t.Helper()
	if reason := h.run(i, c); reason != "" {
		h.t.Fatalf("%T failed: %s", c, reason)
	}
}

// mustFail applies a call that must fail with a reason containing want.
func (h *harness) mustFail(i int, c types.Call, want string) {
	h.t.Helper()
	reason := h.run(i, c)
	if reason == "" {
		h.t.Fatalf("%T succeeded, want failure %q", c, want)
	}
	if !strings.Contains(reason, want) {
		h.t.Fatalf("%T failed with %q, want %q", c, reason, want)
	}
}

func (h *harness) advance(blocks int) {
	h.t.Helper()
	for range blocks {
		if err := h.block(); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) exec() *exec { return &exec{o: newOverlay(h.st), env: h.env, height: h.height} }

func (h *harness) free(i int) uint64       { return h.exec().account(h.id(i)).Free }
func (h *harness) globals() *Globals       { return h.exec().globals() }
func (h *harness) stake(hk, ck int) uint64 { return h.exec().stakeOf(h.id(hk), h.id(ck)) }

// checkConservation verifies Issuance == Σ free + Σ stake + Locked + Burned
// and that every stake total agrees with the per-pair records.
func (h *harness) checkConservation() {
	h.t.Helper()
	var free, stake uint64
	hot := map[string]uint64{}
	cold := map[string]uint64{}
	for k, v := range h.st {
		switch k[0] {
		case pAccount:
			var a Account
			r := types.NewReader(v)
			a.dec(r)
			free += a.Free
		case pStake:
			s := binary.BigEndian.Uint64(v)
			stake += s
			hot[k[1:33]] += s
			cold[k[33:65]] += s
		}
	}
	x := &exec{o: newOverlay(h.st)}
	g := x.globals()
	if got := free + stake + g.Locked + g.Burned; got != g.Issuance {
		h.t.Fatalf("block %d: conservation broken: free %d + stake %d + locked %d + burned %d = %d, issuance %d",
			h.height, free, stake, g.Locked, g.Burned, got, g.Issuance)
	}
	if stake != g.TotalStake {
		h.t.Fatalf("block %d: total stake %d, records sum to %d", h.height, g.TotalStake, stake)
	}
	for k, v := range h.st {
		switch k[0] {
		case pHotStake:
			if hot[k[1:]] != binary.BigEndian.Uint64(v) {
				h.t.Fatalf("block %d: hotkey stake total %d != %d", h.height, binary.BigEndian.Uint64(v), hot[k[1:]])
			}
		case pColdStake:
			if cold[k[1:]] != binary.BigEndian.Uint64(v) {
				h.t.Fatalf("block %d: coldkey stake total %d != %d", h.height, binary.BigEndian.Uint64(v), cold[k[1:]])
			}
		}
	}
	for k := range hot {
		if _, ok := h.st[string(append([]byte{pHotStake}, k...))]; !ok {
			h.t.Fatalf("block %d: missing hotkey total", h.height)
		}
	}
}
