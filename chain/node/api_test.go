package node

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"taobox/chain/types"
)

func TestAPIErrors(t *testing.T) {
	n := openNode(t, testConfig(t.TempDir(), testGenesis(2, 100*tao)))
	c := serve(t, n)
	good := sign(0, 0, 10, types.Transfer{To: id(1), Amount: 1}, n.ChainID())
	goodBody, _ := json.Marshal(map[string]string{"tx": hex.EncodeToString(good.Encode())})
	wrongChain := sign(0, 0, 10, types.Transfer{To: id(1), Amount: 1}, types.Hash{9})
	wrongChainBody, _ := json.Marshal(map[string]string{"tx": hex.EncodeToString(wrongChain.Encode())})
	huge, _ := json.Marshal(map[string]string{"tx": strings.Repeat("00", maxRequestBody)})
	tooLargeTx, _ := json.Marshal(map[string]string{"tx": strings.Repeat("00", types.MaxTxSize+1)})
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   []byte
		status int
		want   string
	}{
		{"unknown path", "GET", "/v1/nothing", nil, 404, "no such endpoint: GET /v1/nothing"},
		{"root", "GET", "/", nil, 404, "no such endpoint"},
		{"wrong method", "POST", "/v1/head", nil, 405, "method not allowed (use GET)"},
		{"GET on the submit path", "GET", "/v1/tx", nil, 405, "use POST"},
		{"bad address", "GET", "/v1/account/5notanaddress", nil, 400, "bad address"},
		{"bad hash", "GET", "/v1/tx/abc", nil, 400, "hex digits"},
		{"unknown tx", "GET", "/v1/tx/" + types.Hash{7}.String(), nil, 404, "not pending and not in the last"},
		{"bad netuid", "GET", "/v1/subnet/x", nil, 400, "netuid"},
		{"netuid too big", "GET", "/v1/metagraph/70000", nil, 400, "netuid"},
		{"missing subnet", "GET", "/v1/subnet/3", nil, 404, "subnet 3 does not exist"},
		{"missing metagraph", "GET", "/v1/metagraph/3", nil, 404, "subnet 3 does not exist"},
		{"bad height", "GET", "/v1/block/-1", nil, 400, "height"},
		{"future block", "GET", "/v1/block/5", nil, 404, "does not exist yet"},
		{"future events", "GET", "/v1/events/5", nil, 404, "does not exist yet"},
		{"not JSON", "POST", "/v1/tx", []byte("hello"), 400, "the body must be"},
		{"unknown field", "POST", "/v1/tx", []byte(`{"txx":"00"}`), 400, "unknown field"},
		{"not hex", "POST", "/v1/tx", []byte(`{"tx":"zz"}`), 400, "not hex"},
		{"empty tx", "POST", "/v1/tx", []byte(`{"tx":""}`), 400, "empty tx"},
		{"undecodable", "POST", "/v1/tx", []byte(`{"tx":"0102"}`), 400, "malformed"},
		{"too large tx", "POST", "/v1/tx", tooLargeTx, 400, "too large"},
		{"body over 64 KiB", "POST", "/v1/tx", huge, 413, "request body over 65536 bytes"},
		{"bad signature", "POST", "/v1/tx", wrongChainBody, 400, "bad signature"},
		{"accepted", "POST", "/v1/tx", goodBody, 200, ""},
		{"duplicate", "POST", "/v1/tx", goodBody, 400, "already pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out map[string]any
			st := c.do(tc.method, tc.path, tc.body, &out)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, out)
			}
			if tc.want == "" {
				return
			}
			msg, _ := out["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want it to contain %q", msg, tc.want)
			}
		})
	}
}

func TestRecoverMiddleware(t *testing.T) {
	n := &Node{log: quietLogger()}
	h := n.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/head", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
}

func TestStreamDeliversBlocks(t *testing.T) {
	n := openNode(t, testConfig(t.TempDir(), testGenesis(2, 100*tao)))
	serve(t, n)
	resp, err := http.Get("http://" + n.APIAddr() + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	h := mustSubmit(t, n, sign(0, 0, 10, types.Transfer{To: id(1), Amount: tao}, n.ChainID()))
	blk := mustProduce(t, n)
	mustProduce(t, n)
	lines := make(chan []byte)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
		close(lines)
	}()
	for want := uint64(1); want <= 2; want++ {
		var line struct {
			Height uint64     `json:"height"`
			Hash   types.Hash `json:"hash"`
			Txs    []struct {
				Hash types.Hash      `json:"hash"`
				Kind string          `json:"kind"`
				Call json.RawMessage `json:"call"`
			} `json:"txs"`
			Events []eventJSON `json:"events"`
		}
		select {
		case raw, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			if err := json.Unmarshal(raw, &line); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line for block %d", want)
		}
		if line.Height != want {
			t.Fatalf("line for block %d, want %d", line.Height, want)
		}
		if want == 1 {
			if line.Hash != blk.Hash() || len(line.Txs) != 1 || line.Txs[0].Hash != h || line.Txs[0].Kind != "transfer" || len(line.Events) == 0 {
				t.Fatalf("block 1 line %+v", line)
			}
		}
	}
}

// TestSubnetAPI registers a subnet and a neuron through transactions, lets
// an epoch pass and reads subnets, hyperparameters, the metagraph and the
// epoch boundary back.
func TestSubnetAPI(t *testing.T) {
	g := testGenesis(4, 1000*tao)
	n := openNode(t, testConfig(t.TempDir(), g))
	c := serve(t, n)
	chain := n.ChainID()
	// Account 0 owns subnet 1 with hotkey 1; account 2 registers hotkey 3,
	// stakes on it and serves an axon from it.
	mustSubmit(t, n, sign(0, 0, 20, types.RegisterNetwork{Hotkey: id(1)}, chain))
	mustProduce(t, n)
	mustSubmit(t, n, sign(2, 0, 20, types.BurnedRegister{Netuid: 1, Hotkey: id(3)}, chain))
	mustSubmit(t, n, sign(2, 1, 20, types.AddStake{Hotkey: id(3), Amount: 100 * tao}, chain))
	mustSubmit(t, n, sign(3, 0, 20, types.Serve{Netuid: 1, Host: "127.0.0.1", Port: 8091, TLSKey: id(3)}, chain))
	mustProduce(t, n)

	var subnets []SubnetInfo
	c.mustGet("/v1/subnets", &subnets)
	if len(subnets) != 1 || subnets[0].Netuid != 1 || subnets[0].Owner != id(0) || subnets[0].OwnerHotkey != id(1) ||
		subnets[0].N != 2 || subnets[0].Tempo != 10 || subnets[0].Lock != 10*tao || subnets[0].RegisteredAt != 1 ||
		subnets[0].Hyperparams != nil || subnets[0].Share != nil {
		t.Fatalf("subnets %+v", subnets)
	}
	var raw map[string]json.RawMessage
	c.mustGet("/v1/subnets", &[]map[string]json.RawMessage{})
	c.mustGet("/v1/subnet/1", &raw)
	for _, k := range []string{"netuid", "owner", "owner_hotkey", "n", "burn", "pending", "tempo", "last_epoch", "epoch_index", "lock", "registered_at", "hyperparams", "share"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("subnet lacks %q", k)
		}
	}
	var sn SubnetInfo
	c.mustGet("/v1/subnet/1", &sn)
	if sn.Hyperparams["tempo"] != 10 || sn.Hyperparams["max_allowed_uids"] != 256 || sn.Share == nil {
		t.Fatalf("subnet 1 %+v", sn)
	}

	// Run until subnet 1 has had an epoch.
	for range 12 {
		mustProduce(t, n)
	}
	var m MetagraphInfo
	c.mustGet("/v1/metagraph/1", &m)
	head, _ := n.Head()
	if m.Netuid != 1 || m.Block != head || len(m.Neurons) != 2 {
		t.Fatalf("metagraph %+v", m)
	}
	nr := m.Neurons[1]
	if nr.UID != 1 || nr.Hotkey != id(3) || nr.Coldkey != id(2) || nr.Stake != 100*tao || !nr.ValidatorPermit ||
		nr.Axon.Host != "127.0.0.1" || nr.Axon.Port != 8091 || nr.Axon.TLSKey != id(3) {
		t.Fatalf("neuron 1 %+v", nr)
	}
	var rawM struct {
		Neurons []map[string]json.RawMessage `json:"neurons"`
	}
	c.mustGet("/v1/metagraph/1", &rawM)
	for _, k := range []string{"uid", "hotkey", "coldkey", "stake", "take", "active", "validator_permit", "validator_trust",
		"consensus", "incentive", "dividends", "emission", "stake_weight", "last_update", "registered_at", "axon", "weights", "bonds"} {
		if _, ok := rawM.Neurons[0][k]; !ok {
			t.Errorf("neuron lacks %q", k)
		}
	}
	eb, err := n.Store().EpochBoundaries(1, 100)
	if err != nil || len(eb) == 0 {
		t.Fatalf("no epoch boundary recorded: %v %v", eb, err)
	}
	var evs []eventJSON
	c.mustGet("/v1/events/"+itoa(eb[0]), &evs)
	epoch := false
	for _, ev := range evs {
		if ev.Kind == "epoch" && ev.Netuid == 1 {
			epoch = true
		}
	}
	if !epoch {
		t.Fatalf("block %d has no epoch event: %+v", eb[0], evs)
	}
	var gl GlobalsInfo
	c.mustGet("/v1/globals", &gl)
	if gl.Locked != 10*tao || gl.TotalStake < 100*tao || gl.Params.NetworkMinLock != 10*tao {
		t.Fatalf("globals %+v", gl)
	}
	var acct accountView
	c.mustGet("/v1/account/"+id(2).String(), &acct)
	if acct.Staked != 100*tao {
		t.Fatalf("account 2 %+v", acct)
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"TxApplied": "tx_applied", "Epoch": "epoch", "FeeBurned": "fee_burned", "": ""} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
	for k := types.EvTxApplied; k.Valid(); k++ {
		if s := snake(k.String()); strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ ") {
			t.Errorf("event kind %d shows as %q", k, s)
		}
	}
}
