package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/types"
)

func TestConfigValidate(t *testing.T) {
	good := testConfig(t.TempDir(), testGenesis(1, tao))
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir is required"},
		{"no genesis", func(c *Config) { c.Genesis = nil }, "Genesis is required"},
		{"bad genesis", func(c *Config) { g := *c.Genesis; g.ChainName = ""; c.Genesis = &g }, "chain_name"},
		{"no authority with a legacy genesis", func(c *Config) { c.Authority = nil }, "Authority must be an ed25519 private key"},
		{"short authority", func(c *Config) { c.Authority = make(ed25519.PrivateKey, 32) }, "got 32 bytes"},
		{"negative block time", func(c *Config) { c.BlockTime = -time.Second }, "BlockTime (-1s) must not be negative"},
		{"tiny block time", func(c *Config) { c.BlockTime = time.Microsecond }, "at least 1ms"},
		{"public API", func(c *Config) { c.APIAddr = "0.0.0.0:8650" }, "must be on a loopback address"},
		{"API without port", func(c *Config) { c.APIAddr = "127.0.0.1" }, "must be host:port"},
		{"negative mempool", func(c *Config) { c.MempoolMax = -1 }, "MempoolMax (-1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if _, err := Open(c); err == nil {
				t.Fatal("Open accepted an invalid config")
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:8650", "localhost:1"} {
		c := good
		c.APIAddr = addr
		if err := c.Validate(); err != nil {
			t.Errorf("APIAddr %s: %v", addr, err)
		}
	}
	c := good
	c.BlockTime, c.Logger, c.Now, c.KeepBlocks, c.MempoolMax = 0, nil, nil, 0, 0
	d := c.withDefaults()
	if d.BlockTime != DefaultBlockTime || d.Logger == nil || d.Now == nil || d.KeepBlocks != DefaultKeepBlocks || d.MempoolMax != DefaultMempoolMax {
		t.Fatalf("defaults not filled: %+v", d)
	}
}

func TestOpenCommitsGenesis(t *testing.T) {
	g := testGenesis(3, 100*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	height, hash := n.Head()
	if height != 0 {
		t.Fatalf("head %d, want the genesis block 0", height)
	}
	if n.ChainID() != g.ID() {
		t.Fatal("chain id is not the genesis id")
	}
	raw, ok, err := n.Store().Header(0)
	if err != nil || !ok {
		t.Fatalf("genesis header: %v %v", ok, err)
	}
	h, err := types.DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Block 0 is unsigned, so every node of the chain has the same one; its
	// NextValSetHash commits to the first authority set (for this legacy
	// genesis without authorities: the node's own key).
	set := []consensus.Validator{{ID: types.AccountIDFromPrivateKey(authorityKey()), Stake: 1}}
	switch {
	case h.Hash() != hash:
		t.Fatal("head hash is not the genesis header's hash")
	case h.ChainID != g.ID() || h.Height != 0 || !h.Parent.IsZero() || h.TimeMs != g.TimeMs:
		t.Fatalf("genesis header %+v", h)
	case !h.Proposer.IsZero() || h.ProposerSig != (types.Signature{}):
		t.Fatalf("genesis header is signed by %s", h.Proposer)
	case h.NextValSetHash != consensus.ValidatorSetHash(set):
		t.Fatal("genesis header does not commit to the authority set")
	case h.StateRoot != n.Store().StateRoot():
		t.Fatal("genesis state root differs from the store's")
	case !h.TxRoot.IsZero() || !h.EventsRoot.IsZero():
		t.Fatal("genesis has transactions or events")
	}
	if eb, err := n.Store().EpochBoundaries(0, 1); err != nil || len(eb) != 1 || eb[0] != 0 {
		t.Fatalf("genesis is not kept as an epoch boundary: %v %v", eb, err)
	}
	a, err := state.QueryAccount(n.State(), id(2))
	if err != nil || a.Free != 100*tao || a.Nonce != 0 {
		t.Fatalf("genesis account: %+v %v", a, err)
	}
}

// TestTransfersViaAPI submits signed transfers over HTTP, produces blocks
// and reads the balances back through the API.
func TestTransfersViaAPI(t *testing.T) {
	g := testGenesis(4, 100*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	c := serve(t, n)
	fee := g.Params.TransferFee
	chain := n.ChainID()

	var hashes []string
	for _, tx := range []types.Tx{
		sign(0, 0, 10, types.Transfer{To: id(1), Amount: 5 * tao}, chain),
		sign(0, 1, 10, types.Transfer{To: id(2), Amount: 7 * tao}, chain),
		sign(3, 0, 10, types.Transfer{To: id(10), Amount: tao}, chain), // a new account
	} {
		st, out := c.submit(tx)
		if st != 200 || out["hash"] != tx.Hash().String() {
			t.Fatalf("submit: %d %v", st, out)
		}
		hashes = append(hashes, out["hash"])
	}
	var status map[string]any
	c.mustGet("/v1/tx/"+hashes[1], &status)
	if status["status"] != "pending" {
		t.Fatalf("status before the block: %v", status)
	}
	if a := c.account(id(0)); a.PendingNonce != 2 || a.Nonce != 0 {
		t.Fatalf("account 0 before the block: %+v", a)
	}
	if pn, err := n.PendingNonce(id(0)); err != nil || pn != 2 {
		t.Fatalf("PendingNonce %d %v", pn, err)
	}

	blk := mustProduce(t, n)
	if blk.Header.Height != 1 || len(blk.Txs) != 3 {
		t.Fatalf("block %d with %d txs", blk.Header.Height, len(blk.Txs))
	}
	if err := types.VerifyHeader(&blk.Header); err != nil {
		t.Fatal(err)
	}
	if blk.Header.TxRoot != types.TxRoot(blk.Txs) || blk.Header.StateRoot != n.Store().StateRoot() || blk.Header.ChainID != chain {
		t.Fatalf("header %+v", blk.Header)
	}
	if body, ok, err := n.Store().Body(1); err != nil || !ok {
		t.Fatalf("body: %v %v", ok, err)
	} else if stored, err := types.DecodeBlock(body); err != nil || stored.Hash() != blk.Hash() || len(stored.Txs) != 3 {
		t.Fatalf("stored block: %v", err)
	}
	if raw, _, _ := n.Store().Events(1); true {
		evs, err := types.DecodeEvents(raw)
		if err != nil || types.EventsRoot(evs) != blk.Header.EventsRoot {
			t.Fatalf("stored events do not match the header's events root: %v", err)
		}
	}
	for i, want := range []struct {
		acct         int
		free, nonce  uint64
		pendingNonce uint64
	}{
		{0, 100*tao - 12*tao - 2*fee, 2, 2},
		{1, 105 * tao, 0, 0},
		{2, 107 * tao, 0, 0},
		{3, 99*tao - fee, 1, 1},
		{10, tao, 0, 0},
	} {
		a := c.account(id(want.acct))
		if a.Free != want.free || a.Nonce != want.nonce || a.PendingNonce != want.pendingNonce || a.Address != id(want.acct).String() {
			t.Errorf("%d: account %d: %+v, want free %d nonce %d", i, want.acct, a, want.free, want.nonce)
		}
	}
	var inc struct {
		Status string `json:"status"`
		Height uint64 `json:"height"`
		Index  int    `json:"index"`
		OK     bool   `json:"ok"`
	}
	c.mustGet("/v1/tx/"+hashes[2], &inc)
	if inc.Status != "included" || inc.Height != 1 || !inc.OK {
		t.Fatalf("tx status %+v", inc)
	}
	var head HeadInfo
	c.mustGet("/v1/head", &head)
	if head.Height != 1 || head.Hash != blk.Hash() || head.StateRoot != n.Store().StateRoot() || head.ChainID != chain || head.TimeMs != blk.Header.TimeMs {
		t.Fatalf("head %+v", head)
	}
	// Every committed block is final; no p2p layer: not syncing, no peers.
	if head.Finalized != 1 || head.Syncing || head.Peers != nil {
		t.Fatalf("head %+v: want finalized 1, not syncing, no peers", head)
	}
	var gl struct {
		Burned uint64 `json:"burned"`
		Params struct {
			TransferFee uint64 `json:"transfer_fee"`
		} `json:"params"`
	}
	c.mustGet("/v1/globals", &gl)
	if gl.Burned != 3*fee || gl.Params.TransferFee != fee {
		t.Fatalf("globals %+v", gl)
	}
	var b struct {
		Height uint64 `json:"height"`
		Hash   string `json:"hash"`
		Parent string `json:"parent"`
		Txs    []struct {
			Hash   string         `json:"hash"`
			Signer string         `json:"signer"`
			Nonce  uint64         `json:"nonce"`
			Kind   string         `json:"kind"`
			Call   map[string]any `json:"call"`
			OK     bool           `json:"ok"`
		} `json:"txs"`
	}
	c.mustGet("/v1/block/1", &b)
	if b.Height != 1 || len(b.Txs) != 3 || b.Txs[0].Kind != "transfer" || b.Txs[0].Signer != id(0).String() || !b.Txs[0].OK {
		t.Fatalf("block %+v", b)
	}
	if b.Txs[0].Call["to"] != id(1).String() || b.Txs[0].Call["amount"] != float64(5*tao) {
		t.Fatalf("call %v", b.Txs[0].Call)
	}
	var evs []map[string]any
	c.mustGet("/v1/events/1", &evs)
	transfers := 0
	for _, ev := range evs {
		if ev["kind"] == "transfer" {
			transfers++
		}
	}
	if transfers != 3 {
		t.Fatalf("%d transfer events in %v", transfers, evs)
	}
	// The next block is empty and follows the first.
	blk2 := mustProduce(t, n)
	if blk2.Header.Parent != blk.Hash() || len(blk2.Txs) != 0 || blk2.Header.TimeMs <= blk.Header.TimeMs {
		t.Fatalf("block 2 header %+v", blk2.Header)
	}
}

func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	g := testGenesis(2, 100*tao)
	cfg := testConfig(dir, g)
	cfg.APIAddr = ""
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var txHash types.Hash
	for i := range 3 {
		txHash = mustSubmit(t, n, sign(0, uint64(i), 20, types.Transfer{To: id(1), Amount: tao}, n.ChainID()))
		mustProduce(t, n)
	}
	height, hash := n.Head()
	root := n.Store().StateRoot()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.ProduceBlock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ProduceBlock after Close: %v", err)
	}

	cfg.APIAddr = "127.0.0.1:0"
	n2 := openNode(t, cfg)
	h2, hash2 := n2.Head()
	if h2 != height || hash2 != hash || n2.Store().StateRoot() != root {
		t.Fatalf("after restart head %d %s, want %d %s", h2, hash2, height, hash)
	}
	n2.bg.Wait() // the tx index rebuild
	c := serve(t, n2)
	var st TxStatus
	c.mustGet("/v1/tx/"+txHash.String(), &st)
	if st.Status != "included" || *st.Height != 3 {
		t.Fatalf("tx index after restart: %+v", st)
	}
	if a := c.account(id(0)); a.Nonce != 3 || a.Free != 97*tao-3*g.Params.TransferFee {
		t.Fatalf("account after restart: %+v", a)
	}
	mustSubmit(t, n2, sign(0, 3, 20, types.Transfer{To: id(1), Amount: tao}, n2.ChainID()))
	blk := mustProduce(t, n2)
	if blk.Header.Height != height+1 || blk.Header.Parent != hash || len(blk.Txs) != 1 {
		t.Fatalf("resumed with block %d parent %s (%d txs)", blk.Header.Height, blk.Header.Parent, len(blk.Txs))
	}
}

func TestWrongGenesisRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, testGenesis(2, 100*tao))
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustProduce(t, n)
	n.Close()

	other := testGenesis(2, 100*tao)
	other.ChainName = "another-chain"
	cfg.Genesis = other
	_, err = Open(cfg)
	if err == nil || !strings.Contains(err.Error(), "holds chain") || !strings.Contains(err.Error(), "new data directory") {
		t.Fatalf("a different genesis on an existing chain: %v", err)
	}
	// The right genesis still opens it, and the API port is free again.
	cfg.Genesis = testGenesis(2, 100*tao)
	n = openNode(t, cfg)
	if h, _ := n.Head(); h != 1 {
		t.Fatalf("head %d", h)
	}
}

// TestSubmitRejections covers every refusal of Submit with a real node.
func TestSubmitRejections(t *testing.T) {
	g := testGenesis(3, 100*tao)
	cfg := testConfig(t.TempDir(), g)
	cfg.APIAddr = ""
	cfg.MempoolMax = PerAccountMax + 3
	n := openNode(t, cfg)
	chain := n.ChainID()
	mustSubmit(t, n, sign(0, 0, 10, types.Transfer{To: id(1), Amount: tao}, chain))
	mustProduce(t, n) // account 0 now has nonce 1; the next block is 2
	mustSubmit(t, n, sign(0, 1, 10, types.Transfer{To: id(1), Amount: tao}, chain))

	big := sign(1, 0, 10, types.Propose{Action: types.ProposalAction{Kind: types.ActionSetParam, Param: types.GlobalTransferFee, Value: 1}, Description: strings.Repeat("x", types.MaxTextLen)}, chain)
	for _, tc := range []struct {
		name   string
		submit func() error
		code   RejectCode
		want   string
	}{
		{"nil", func() error { _, err := n.Submit(nil); return err }, RejectMalformed, "malformed"},
		{"no call", func() error { _, err := n.Submit(&types.Tx{}); return err }, RejectMalformed, "malformed"},
		{"garbage bytes", func() error { _, err := n.SubmitEncoded([]byte{1, 2, 3}); return err }, RejectMalformed, "malformed"},
		{"too large", func() error { _, err := n.SubmitEncoded(make([]byte, types.MaxTxSize+1)); return err }, RejectTooLarge, "too large"},
		{"wrong chain", func() error {
			tx := sign(1, 0, 10, types.Transfer{To: id(2), Amount: 1}, types.Hash{1})
			_, err := n.Submit(&tx)
			return err
		}, RejectBadSignature, "bad signature"},
		{"tampered", func() error {
			tx := sign(1, 0, 10, types.Transfer{To: id(2), Amount: 1}, chain)
			tx.Call = types.Transfer{To: id(2), Amount: 2}
			_, err := n.Submit(&tx)
			return err
		}, RejectBadSignature, "not signed by its signer"},
		{"expired", func() error {
			tx := sign(1, 0, 1, types.Transfer{To: id(2), Amount: 1}, chain)
			_, err := n.Submit(&tx)
			return err
		}, RejectExpired, "valid until block 1, the next block is 2"},
		{"too far ahead", func() error {
			tx := sign(1, 0, 2+types.MaxValidityWindow+1, types.Transfer{To: id(2), Amount: 1}, chain)
			_, err := n.Submit(&tx)
			return err
		}, RejectTooFarAhead, "more than 256 blocks ahead"},
		{"nonce used", func() error {
			tx := sign(0, 0, 10, types.Transfer{To: id(2), Amount: 3}, chain)
			_, err := n.Submit(&tx)
			return err
		}, RejectNonceUsed, "nonce 0 was already used"},
		{"duplicate", func() error {
			tx := sign(0, 1, 10, types.Transfer{To: id(1), Amount: tao}, chain)
			_, err := n.Submit(&tx)
			return err
		}, RejectDuplicate, "already pending"},
		{"nonce conflict", func() error {
			tx := sign(0, 1, 10, types.Transfer{To: id(1), Amount: 2 * tao}, chain)
			_, err := n.Submit(&tx)
			return err
		}, RejectNonceConflict, "nonce 1 already has a pending transaction"},
		{"cannot pay fee", func() error {
			tx := sign(50, 0, 10, types.Transfer{To: id(1), Amount: 1}, chain) // never funded
			_, err := n.Submit(&tx)
			return err
		}, RejectCannotPayFee, "cannot pay the fee"},
		{"fee-free call from an empty account", func() error {
			tx := sign(51, 0, 10, types.Vote{Proposal: 7, Aye: true}, chain)
			_, err := n.Submit(&tx)
			return err
		}, 0, ""},
		{"largest proposal fits", func() error { _, err := n.Submit(&big); return err }, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.submit()
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var re *RejectError
			if !errors.As(err, &re) || re.Code != tc.code || !strings.Contains(re.Reason, tc.want) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.want)
			}
		})
	}

	// Account 2 fills its queue (nonce 0 and 63 gap-free later ones), then
	// the mempool fills up.
	for i := range PerAccountMax {
		mustSubmit(t, n, sign(2, uint64(i), 10, types.Transfer{To: id(1), Amount: 1}, chain))
	}
	tx := sign(2, PerAccountMax, 10, types.Transfer{To: id(1), Amount: 1}, chain)
	if _, err := n.Submit(&tx); !isReject(err, RejectAccountFull) {
		t.Fatalf("account full: %v", err)
	}
	tx = sign(1, 1, 10, types.Transfer{To: id(2), Amount: 1}, chain) // a gap: no fee check
	if _, err := n.Submit(&tx); !isReject(err, RejectMempoolFull) {
		t.Fatalf("mempool full: %v", err)
	}
}

func isReject(err error, code RejectCode) bool {
	var re *RejectError
	return errors.As(err, &re) && re.Code == code
}

// TestFailedCallIncluded: a transaction whose call fails is still included;
// it pays its fee and uses its nonce, and its status says ok=false.
func TestFailedCallIncluded(t *testing.T) {
	g := testGenesis(2, 10*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	c := serve(t, n)
	tx := sign(0, 0, 10, types.Transfer{To: id(1), Amount: 50 * tao}, n.ChainID())
	h := mustSubmit(t, n, tx)
	blk := mustProduce(t, n)
	if len(blk.Txs) != 1 {
		t.Fatalf("block has %d txs", len(blk.Txs))
	}
	var st TxStatus
	c.mustGet("/v1/tx/"+h.String(), &st)
	if st.Status != "included" || st.OK == nil || *st.OK || !strings.Contains(st.Error, "insufficient balance") {
		t.Fatalf("status %+v", st)
	}
	if a := c.account(id(0)); a.Nonce != 1 || a.Free != 10*tao-g.Params.TransferFee {
		t.Fatalf("account %+v", a)
	}
	var evs []eventJSON
	c.mustGet("/v1/events/1", &evs)
	found := false
	for _, ev := range evs {
		if ev.Kind == "tx_failed" && ev.TxIndex == 0 && strings.Contains(ev.Error, "insufficient") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no tx_failed event in %+v", evs)
	}
}

// TestInvalidTxNeverStalls: a transaction the mempool admitted but the
// block's evolving state rejects (its fee is no longer payable) is dropped,
// and the block is produced without it; expired and gapped transactions
// never hold production up either.
func TestInvalidTxNeverStalls(t *testing.T) {
	g := testGenesis(3, 10*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	c := serve(t, n)
	chain := n.ChainID()
	fee := g.Params.TransferFee
	spendAll := mustSubmit(t, n, sign(0, 0, 10, types.Transfer{To: id(1), Amount: 10*tao - fee}, chain))
	broke := mustSubmit(t, n, sign(0, 1, 10, types.Transfer{To: id(1), Amount: 1}, chain))
	afterBroke := mustSubmit(t, n, sign(0, 2, 10, types.Transfer{To: id(1), Amount: 1}, chain))
	gapped := mustSubmit(t, n, sign(2, 5, 10, types.Transfer{To: id(1), Amount: 1}, chain))
	expiring := mustSubmit(t, n, sign(2, 6, 1, types.Transfer{To: id(1), Amount: 1}, chain))
	other := mustSubmit(t, n, sign(1, 0, 10, types.Transfer{To: id(2), Amount: tao}, chain))

	blk := mustProduce(t, n)
	got := map[types.Hash]bool{}
	for i := range blk.Txs {
		got[blk.Txs[i].Hash()] = true
	}
	if len(blk.Txs) != 2 || !got[spendAll] || !got[other] {
		t.Fatalf("block 1 has %d txs, want the spend-all and the other account's", len(blk.Txs))
	}
	n.mu.Lock()
	stats := n.stats
	pool := n.pool.Len()
	n.mu.Unlock()
	if stats.dropped != 1 || stats.retries != 1 {
		t.Fatalf("stats %+v", stats)
	}
	// broke is gone with its reason; afterBroke and gapped wait; expiring
	// (valid until block 1) has expired.
	var st TxStatus
	if code := c.get("/v1/tx/"+broke.String(), &st); code != 404 || st.Status != "unknown" || !strings.Contains(st.Error, "dropped at block 1") {
		t.Fatalf("dropped tx: %d %+v", code, st)
	}
	if code := c.get("/v1/tx/"+expiring.String(), &st); code != 404 || !strings.Contains(st.Error, "expired") {
		t.Fatalf("expired tx: %d %+v", code, st)
	}
	for _, h := range []types.Hash{afterBroke, gapped} {
		c.mustGet("/v1/tx/"+h.String(), &st)
		if st.Status != "pending" {
			t.Fatalf("%s: %+v", h, st)
		}
	}
	if pool != 2 {
		t.Fatalf("%d pending, want 2", pool)
	}
	for range 3 {
		if b := mustProduce(t, n); len(b.Txs) != 0 {
			t.Fatalf("block %d included %d txs", b.Header.Height, len(b.Txs))
		}
	}
}

// TestRunProducesBlocks runs the timer loop with a short block time.
func TestRunProducesBlocks(t *testing.T) {
	cfg := testConfig(t.TempDir(), testGenesis(1, tao))
	cfg.BlockTime = 10 * time.Millisecond
	n := openNode(t, cfg)
	blocks, cancelSub := n.Subscribe()
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for want := uint64(1); want <= 3; want++ {
		select {
		case b := <-blocks:
			if b.Height != want {
				t.Fatalf("block %d, want %d", b.Height, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no block from Run")
		}
	}
	if err := n.Run(ctx); err == nil {
		t.Fatal("a second Run was accepted")
	}
	// A stream client stays connected through the shutdown, which must
	// end the stream rather than wait for it.
	resp, err := http.Get("http://" + n.APIAddr() + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestSubscribeSlowSubscriber(t *testing.T) {
	cfg := testConfig(t.TempDir(), testGenesis(1, tao))
	cfg.APIAddr = ""
	n := openNode(t, cfg)
	slow, cancelSlow := n.Subscribe()
	fast, cancelFast := n.Subscribe()
	defer cancelFast()
	total := subscriberBuffer + 6
	seen := 0
	for range total {
		mustProduce(t, n) // never blocks on the slow subscriber
		<-fast
		seen++
	}
	if len(slow) != subscriberBuffer {
		t.Fatalf("slow subscriber holds %d blocks, want its buffer %d", len(slow), subscriberBuffer)
	}
	if b := <-slow; b.Height != 1 {
		t.Fatalf("slow subscriber's first block %d", b.Height)
	}
	cancelSlow()
	cancelSlow() // idempotent
	for range slow {
	}
	n.Close()
	if _, ok := <-fast; ok {
		t.Fatal("Close left a subscription open")
	}
	if c, _ := n.Subscribe(); c == nil {
		t.Fatal("Subscribe after Close returned nil")
	} else if _, ok := <-c; ok {
		t.Fatal("Subscribe after Close delivered a block")
	}
}

// TestPruningWindow: with KeepBlocks 4, old blocks and their transactions
// leave the store and the tx index; epoch boundaries keep their headers.
func TestPruningWindow(t *testing.T) {
	cfg := testConfig(t.TempDir(), testGenesis(2, 100*tao))
	cfg.KeepBlocks = 4
	n := openNode(t, cfg)
	c := serve(t, n)
	h := mustSubmit(t, n, sign(0, 0, 10, types.Transfer{To: id(1), Amount: tao}, n.ChainID()))
	mustProduce(t, n)
	c.mustGet("/v1/block/1", nil)
	for range 5 {
		mustProduce(t, n)
	}
	var e map[string]string
	if st := c.get("/v1/block/1", &e); st != 404 || !strings.Contains(e["error"], "pruned") {
		t.Fatalf("pruned block: %d %v", st, e)
	}
	if st := c.get("/v1/block/99", &e); st != 404 || !strings.Contains(e["error"], "does not exist yet") {
		t.Fatalf("future block: %d %v", st, e)
	}
	var st TxStatus
	if code := c.get("/v1/tx/"+h.String(), &st); code != 404 || st.Status != "unknown" {
		t.Fatalf("tx of a pruned block: %d %+v", code, st)
	}
	if _, ok, _ := n.Store().Header(0); !ok {
		t.Fatal("the genesis header was pruned")
	}
}

// TestCloseStopsRun: Close while Run is serving ends Run with ErrClosed.
func TestCloseStopsRun(t *testing.T) {
	n, err := Open(testConfig(t.TempDir(), testGenesis(1, tao)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	c := &client{t: t, base: "http://" + n.APIAddr(), hc: &http.Client{Timeout: 10 * time.Second}}
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest("GET", c.base+"/v1/head", nil)
		if resp, err := c.hc.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the API never answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Run returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after Close")
	}
	if _, err := n.Submit(&types.Tx{Call: types.Vote{}}); err == nil {
		t.Fatal("Submit after Close succeeded")
	}
}

// TestConcurrentUse submits from several goroutines (directly and over
// HTTP) while blocks are produced and the API is read; run it with -race.
func TestConcurrentUse(t *testing.T) {
	const senders, each = 4, 20
	g := testGenesis(senders+1, 100*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	c := serve(t, n)
	chain := n.ChainID()
	stop := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				produced <- nil
				return
			default:
			}
			if _, err := n.ProduceBlock(); err != nil {
				produced <- err
				return
			}
		}
	}()
	errs := make(chan error, senders)
	for s := range senders {
		go func() {
			for k := range each {
				head, _ := n.Head()
				tx := sign(s, uint64(k), head+50, types.Transfer{To: id(senders), Amount: tao}, chain)
				if k%2 == 0 {
					if _, err := n.Submit(&tx); err != nil {
						errs <- err
						return
					}
				} else if err := postTx(c.base, tx); err != nil {
					errs <- err
					return
				}
				if _, err := n.PendingNonce(id(s)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := c.account(id(senders))
		if a.Free == 100*tao+senders*each*tao {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver has %d rao; not every transfer was included", a.Free)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
}
