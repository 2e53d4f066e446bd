package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
)

const tao = types.RaoPerTAO

// testKey returns the deterministic test key number i.
func testKey(i int) (types.AccountID, ed25519.PrivateKey) {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	priv := ed25519.NewKeyFromSeed(seed)
	return types.AccountIDFromPrivateKey(priv), priv
}

func id(i int) types.AccountID { a, _ := testKey(i); return a }

// authorityKey is the block producer of the tests (not a funded account).
func authorityKey() ed25519.PrivateKey { _, k := testKey(1_000_000); return k }

// testGenesis funds accounts 0..funded-1 with free rao each, with short
// tempos and cheap subnets.
func testGenesis(funded int, free uint64) *state.Genesis {
	g := &state.Genesis{ChainName: "taobox-node-test", TimeMs: 1_700_000_000_000, Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams()}
	g.Params.NetworkMinLock = 10 * tao
	g.Params.NetworkRateLimit = 1
	g.Params.RootTempo = 5
	g.SubnetDefaults.Tempo = 10
	g.SubnetDefaults.WeightsRateLimit = 2
	g.SubnetDefaults.ImmunityPeriod = 20
	for i := range funded {
		g.Balances = append(g.Balances, state.GenesisBalance{Account: id(i), Free: free})
	}
	return g
}

// clock is an injectable time source that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(12 * time.Second) // every reading is a new block's time
	return c.t
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is a node config over dir with the API on a free port and a
// block time long enough that Run never produces by itself.
func testConfig(dir string, g *state.Genesis) Config {
	return Config{
		DataDir: dir, Genesis: g, Authority: authorityKey(), BlockTime: time.Hour, APIAddr: "127.0.0.1:0",
		Logger: quietLogger(), Now: newClock().Now,
	}
}

// openNode opens a node and closes it at the end of the test.
func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// serve runs n.Run until the end of the test (it serves the API; with the
// test block time it produces nothing by itself).
func serve(t testing.TB, n *Node) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return &client{t: t, base: "http://" + n.APIAddr(), hc: &http.Client{Timeout: 10 * time.Second}}
}

// sign builds a transaction of account i.
func sign(i int, nonce, validUntil uint64, c types.Call, chain types.Hash) types.Tx {
	_, priv := testKey(i)
	tx := types.Tx{Nonce: nonce, ValidUntil: validUntil, Call: c}
	tx.Sign(priv, chain)
	return tx
}

func mustProduce(t testing.TB, n *Node) *types.Block {
	t.Helper()
	b, err := n.ProduceBlock()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSubmit(t testing.TB, n *Node, tx types.Tx) types.Hash {
	t.Helper()
	h, err := n.Submit(&tx)
	if err != nil {
		t.Fatalf("submit %s nonce %d: %v", tx.Call.Kind(), tx.Nonce, err)
	}
	return h
}

// client talks to the API over real HTTP.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

// do sends a request and decodes the JSON answer into out (if non-nil),
// returning the status.
func (c *client) do(method, path string, body []byte, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (c *client) get(path string, out any) int { c.t.Helper(); return c.do("GET", path, nil, out) }

// mustGet fails the test unless GET path answers 200.
func (c *client) mustGet(path string, out any) {
	c.t.Helper()
	var raw json.RawMessage
	if st := c.get(path, &raw); st != http.StatusOK {
		c.t.Fatalf("GET %s: status %d: %s", path, st, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("GET %s: %v", path, err)
		}
	}
}

// submit posts tx through POST /v1/tx and returns the status and answer.
func (c *client) submit(tx types.Tx) (int, map[string]string) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"tx": hex.EncodeToString(tx.Encode())})
	var out map[string]string
	st := c.do("POST", "/v1/tx", body, &out)
	return st, out
}

type accountView struct {
	Address      string `json:"address"`
	Free         uint64 `json:"free"`
	Nonce        uint64 `json:"nonce"`
	Staked       uint64 `json:"staked"`
	PendingNonce uint64 `json:"pending_nonce"`
}

func (c *client) account(a types.AccountID) accountView {
	c.t.Helper()
	var v accountView
	c.mustGet("/v1/account/"+a.String(), &v)
	return v
}

// postTx submits tx over HTTP without a testing.TB, for other goroutines.
func postTx(base string, tx types.Tx) error {
	body, _ := json.Marshal(map[string]string{"tx": hex.EncodeToString(tx.Encode())})
	resp, err := http.Post(base+"/v1/tx", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]string
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("POST /v1/tx: %d %s", resp.StatusCode, e["error"])
	}
	return nil
}
