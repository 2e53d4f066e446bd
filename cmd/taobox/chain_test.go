package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/wallet"
)

func TestParseTAO(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string // in the error; "" means success
	}{
		{"0", 0, ""},
		{"1", 1_000_000_000, ""},
		{"1.5", 1_500_000_000, ""},
		{"0.000000001", 1, ""},
		{"1.000000000", 1_000_000_000, ""},
		{"007.25", 7_250_000_000, ""},
		{"21000000", 21_000_000_000_000_000, ""},
		{"18446744073.709551615", math.MaxUint64, ""},
		{"18446744073.709551616", 0, "more TAO than can exist"},
		{"18446744074", 0, "more TAO than can exist"},
		{"99999999999999999999999", 0, "more TAO than can exist"},
		{"1.0000000001", 0, "10 decimals"},
		{"-1", 0, "negative"},
		{"-0.5", 0, "negative"},
		{"", 0, "empty"},
		{".5", 0, "not an amount"},
		{"1.", 0, "not an amount"},
		{"1.2.3", 0, "not an amount"},
		{"+1", 0, "not an amount"},
		{"1e9", 0, "not an amount"},
		{"1,5", 0, "not an amount"},
		{" 1", 0, "not an amount"},
		{"0x10", 0, "not an amount"},
		{"NaN", 0, "not an amount"},
	} {
		got, err := parseTAO(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseTAO(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseTAO(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
		}
		if tc.err == "" {
			if back, err := parseTAO(formatTAO(got)); err != nil || back != got {
				t.Errorf("formatTAO(%d) = %q does not parse back", got, formatTAO(got))
			}
		}
	}
	for rao, want := range map[uint64]string{0: "0", 1: "0.000000001", 1_500_000_000: "1.5", 1000 * types.RaoPerTAO: "1000"} {
		if got := formatTAO(rao); got != want {
			t.Errorf("formatTAO(%d) = %q, want %q", rao, got, want)
		}
	}
	if got := formatTAOFixed(1_234_567_890, 4); got != "1.2345" {
		t.Errorf("formatTAOFixed = %q", got)
	}
}

// TestNormalizeWeights checks the SDK's convert_weights_and_uids_for_emit;
// the expected values were computed with Python's float and round().
func TestNormalizeWeights(t *testing.T) {
	for _, tc := range []struct {
		name     string
		uids     []uint16
		weights  []float64
		wantUIDs []uint16
		wantW    []uint16
		err      string
	}{
		{"equal", []uint16{1, 2}, []float64{0.5, 0.5}, []uint16{1, 2}, []uint16{65535, 65535}, ""},
		{"thirds", []uint16{0, 1, 2}, []float64{0.1, 0.2, 0.3}, []uint16{0, 1, 2}, []uint16{21845, 43690, 65535}, ""},
		{"scale free", []uint16{4, 9}, []float64{2, 8}, []uint16{4, 9}, []uint16{16384, 65535}, ""},
		{"tie 0.5 to 0 is dropped", []uint16{1, 2}, []float64{1, 131070}, []uint16{2}, []uint16{65535}, ""},
		{"tie 1.5 to 2", []uint16{1, 2}, []float64{3, 131070}, []uint16{1, 2}, []uint16{2, 65535}, ""},
		{"tie 2.5 to 2", []uint16{1, 2}, []float64{5, 131070}, []uint16{1, 2}, []uint16{2, 65535}, ""},
		{"tie 3.5 to 4", []uint16{1, 2}, []float64{7, 131070}, []uint16{1, 2}, []uint16{4, 65535}, ""},
		{"tie 10.5 to 10", []uint16{1, 2}, []float64{21, 131070}, []uint16{1, 2}, []uint16{10, 65535}, ""},
		{"tiny rounds to 1", []uint16{1, 2}, []float64{0.00001, 1}, []uint16{1, 2}, []uint16{1, 65535}, ""},
		{"tinier is dropped", []uint16{1, 2}, []float64{0.000007, 1}, []uint16{2}, []uint16{65535}, ""},
		{"zeros are dropped", []uint16{3, 1, 2}, []float64{0, 1, 0}, []uint16{1}, []uint16{65535}, ""},
		{"all zero", []uint16{1, 2}, []float64{0, 0}, nil, nil, "every weight is 0"},
		{"length mismatch", []uint16{1, 2}, []float64{1}, nil, nil, "2 uids but 1 weights"},
		{"duplicate uid", []uint16{1, 1}, []float64{1, 2}, nil, nil, "uid 1 appears twice"},
	} {
		u, w, err := normalizeWeights(tc.uids, tc.weights, "uids")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(u, tc.wantUIDs) || !slices.Equal(w, tc.wantW) {
			t.Errorf("%s: got %v %v %v, want %v %v", tc.name, u, w, err, tc.wantUIDs, tc.wantW)
		}
	}
	if _, err := parseFloatList("1,-2"); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative weight: %v", err)
	}
	if _, err := parseFloatList("1,NaN"); err == nil {
		t.Error("NaN weight accepted")
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]uint16{"0": 0, "18": 11796, "100": 65535, "50": 32768, "9.5": 6226, "10": 6554, "30": 19660} {
		if got, err := parsePercent(in); err != nil || got != want {
			t.Errorf("parsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "101", "abc", "1/2", "1e1", ""} {
		if _, err := parsePercent(in); err == nil {
			t.Errorf("parsePercent(%q) accepted", in)
		}
	}
}

// oneLine checks a usage failure: status 2 (or want), nothing on stdout, one
// line on stderr naming the command and containing mention.
func oneLine(t *testing.T, r result, want int, cmd, mention string) {
	t.Helper()
	if r.code != want || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
		!strings.HasPrefix(r.stderr, "taobox: "+cmd+": ") || !strings.Contains(r.stderr, mention) {
		t.Errorf("exit %d (want %d), stdout %q, stderr %q (want one line from %q mentioning %q)", r.code, want, r.stdout, r.stderr, cmd, mention)
	}
}

func TestWalletCLI(t *testing.T) {
	dir := t.TempDir()
	// Keys are encrypted: a password file, and a cheap KDF for the test.
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("test password\n"), 0o600)
	enc := []string{"--password-file", pw, "--kdf-memory", "1", "--kdf-time", "1"}
	r := taobox(t, nil, append([]string{"wallet", "create", "alice", "--wallets", dir, "--hotkey", "miner1"}, enc...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "coldkey") || !strings.Contains(r.stdout, "hotkey miner1") {
		t.Fatalf("wallet create: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Flags may come before the name too.
	if r := taobox(t, nil, append([]string{"wallet", "create", "--wallets", dir, "bob"}, enc...)...); r.code != 0 {
		t.Fatalf("wallet create bob: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := taobox(t, nil, append([]string{"wallet", "new-hotkey", "bob", "validator", "--wallets", dir}, enc...)...); r.code != 0 || !strings.Contains(r.stdout, "validator") {
		t.Fatalf("wallet new-hotkey: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if runtime.GOOS != "windows" {
		for _, p := range []string{"wallets/alice/coldkey", "wallets/alice/hotkeys/miner1", "wallets/bob/coldkey", "wallets/bob/hotkeys/validator"} {
			st, err := os.Stat(filepath.Join(dir, p))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v, want 0600", p, err, st.Mode().Perm())
			}
		}
		for _, p := range []string{"wallets/alice", "wallets/alice/hotkeys"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v, want mode 0700", p, err)
			}
		}
	}
	w, err := wallet.Load(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	cold := w.ColdkeyAddress().String()
	w.Unlock = &wallet.Unlocker{PasswordFile: pw}
	hk, _ := w.Hotkey("miner1")
	hot := types.AccountIDFromPrivateKey(hk).String()

	r = taobox(t, nil, "wallet", "list", "--wallets", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "bob") ||
		!strings.Contains(r.stdout, cold) || !strings.Contains(r.stdout, hot) {
		t.Fatalf("wallet list: exit %d, stdout %q", r.code, r.stdout)
	}
	r = taobox(t, nil, "wallet", "show", "alice", "--wallets", dir)
	if r.code != 0 || !strings.Contains(r.stdout, cold) || !strings.Contains(r.stdout, "hotkey miner1") || !strings.Contains(r.stdout, hot) {
		t.Fatalf("wallet show: exit %d, stdout %q", r.code, r.stdout)
	}
	r = taobox(t, nil, "wallet", "show", "alice", "--wallets", dir, "--json")
	var v walletView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Coldkey != cold || len(v.Hotkeys) != 1 || v.Hotkeys[0].Address != hot {
		t.Fatalf("wallet show --json: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := taobox(t, nil, "wallet", "list", "--wallets", filepath.Join(dir, "empty")); r.code != 0 || !strings.Contains(r.stdout, "No wallets") {
		t.Fatalf("wallet list of an empty dir: exit %d, stdout %q", r.code, r.stdout)
	}

	oneLine(t, taobox(t, nil, "wallet", "create", "alice", "--wallets", dir), 2, "wallet create", "never overwritten")
	oneLine(t, taobox(t, nil, "wallet", "create", "../evil", "--wallets", dir), 2, "wallet create", "must not start")
	oneLine(t, taobox(t, nil, "wallet", "create", "--wallets", dir), 2, "wallet create", "missing")
	oneLine(t, taobox(t, nil, "wallet", "create", "a", "b", "--wallets", dir), 2, "wallet create", "unexpected argument")
	oneLine(t, taobox(t, nil, "wallet", "show", "nobody", "--wallets", dir), 2, "wallet show", "no wallet \"nobody\"")
	oneLine(t, taobox(t, nil, "wallet", "new-hotkey", "nobody", "h", "--wallets", dir), 2, "wallet new-hotkey", "taobox wallet create nobody")
	oneLine(t, taobox(t, nil, "wallet", "new-hotkey", "alice", "miner1", "--wallets", dir), 2, "wallet new-hotkey", "never overwritten")

	// A key file others can read is refused with the fix.
	if runtime.GOOS != "windows" {
		p := filepath.Join(dir, "wallets", "bob", "coldkey")
		os.Chmod(p, 0o644)
		oneLine(t, taobox(t, nil, "tx", "transfer", "--wallets", dir, "--wallet", "bob", "--to", cold, "--amount", "1"), 1, "tx transfer", "chmod 600")
		os.Chmod(p, 0o600)
	}
	// A damaged key file is refused.
	p := filepath.Join(dir, "wallets", "alice", "hotkeys", "miner1")
	os.WriteFile(p, []byte(`{"address":"`+cold+`","seed":"`+strings.Repeat("00", 32)+`"}`), 0o600)
	r = taobox(t, nil, "wallet", "show", "alice", "--wallets", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "unusable") {
		t.Fatalf("wallet show with a damaged hotkey: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestTxUsageErrors(t *testing.T) {
	dir := t.TempDir()
	w, err := wallet.Create(dir, "default")
	if err != nil {
		t.Fatal(err)
	}
	addr := w.ColdkeyAddress().String()
	// The node is never contacted: every one of these fails first.
	dead := "http://127.0.0.1:1"
	for _, tc := range []struct {
		args    []string
		cmd     string
		mention string
	}{
		{[]string{"tx", "transfer", "--wallet", "nobody", "--to", addr, "--amount", "1"}, "tx transfer", "no wallet \"nobody\""},
		{[]string{"tx", "transfer", "--to", "5Grwva", "--amount", "1"}, "tx transfer", "neither an SS58 address"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "1.0000000001"}, "tx transfer", "10 decimals"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "-1"}, "tx transfer", "negative"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "99999999999"}, "tx transfer", "more TAO than can exist"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "0"}, "tx transfer", "more than 0"},
		{[]string{"tx", "transfer", "--to", addr}, "tx transfer", "amount: required"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "1", "--node", "ftp://x"}, "tx transfer", "not a node URL"},
		{[]string{"tx", "register", "--hotkey", "h"}, "tx register", "netuid: required"},
		{[]string{"tx", "register", "--netuid", "70000", "--hotkey", "h"}, "tx register", "netuid"},
		{[]string{"tx", "register", "--netuid", "1", "--hotkey", "nope"}, "tx register", "it has no hotkeys"},
		{[]string{"tx", "serve", "--netuid", "1", "--hotkey", addr, "--host", "h", "--port", "1"}, "tx serve", "does not hold hotkey"},
		{[]string{"tx", "serve", "--netuid", "1", "--hotkey", "x", "--host", "h", "--port", "0"}, "tx serve", "0 is not a port"},
		{[]string{"tx", "hyperparam", "--netuid", "1", "--param", "nope", "--value", "1"}, "tx hyperparam", "unknown hyperparameter"},
		{[]string{"tx", "weights", "set", "--netuid", "1", "--hotkey", "x", "--uids", "1,2", "--weights", "1"}, "tx weights set", "2 uids but 1 weights"},
		{[]string{"tx", "weights", "set", "--netuid", "1", "--hotkey", "x", "--uids", "1,a", "--weights", "1,1"}, "tx weights set", "not a uid"},
		{[]string{"tx", "root-weights", "--hotkey", addr, "--netuids", "1", "--weights", "0"}, "tx root-weights", "every weight is 0"},
		{[]string{"tx", "take", "--hotkey", addr, "--take", "101"}, "tx take", "outside 0 to 100"},
		{[]string{"tx", "vote", "--proposal", "1"}, "tx vote", "exactly one of --aye and --nay"},
		{[]string{"tx", "vote", "--proposal", "1", "--aye", "--nay"}, "tx vote", "exactly one"},
		{[]string{"tx", "propose", "--param", "transfer_fee"}, "tx propose", "value: required"},
		{[]string{"tx", "propose", "--param", "nope", "--value", "1"}, "tx propose", "unknown global parameter"},
		{[]string{"tx", "propose", "--firmware-hash", "00", "--firmware-version", "1"}, "tx propose", "64 hex digits"},
		{[]string{"tx", "weights", "reveal", "--netuid", "1", "--hotkey", "nope"}, "tx weights reveal", "no hotkey"},
		{[]string{"tx", "stake", "add", "--hotkey", addr, "--amount", "x"}, "tx stake add", "not an amount"},
		{[]string{"tx", "transfer", "--to", addr, "--amount", "1", "extra"}, "tx transfer", "unexpected argument"},
		{[]string{"metagraph", "abc"}, "metagraph", "not a subnet id"},
		{[]string{"metagraph"}, "metagraph", "missing"},
		{[]string{"genesis", "--fund", "nobody=1"}, "genesis", "neither an SS58 address"},
		{[]string{"genesis", "--fund", addr}, "genesis", "ADDR=TAO"},
		{[]string{"genesis", "--fund", addr + "=1", "--fund", addr + "=2"}, "genesis", "funded twice"},
		{[]string{"node", "--data", dir}, "node", "--genesis required"},
		{[]string{"devnet", "--epochs", "-1"}, "devnet", "epochs"},
	} {
		args := tc.args
		if tc.args[0] == "tx" || tc.args[0] == "genesis" {
			args = append(args, "--wallets", dir)
		}
		if tc.args[0] == "tx" && !slices.Contains(tc.args, "--node") {
			args = append(args, "--node", dead)
		}
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			oneLine(t, taobox(t, nil, args...), 2, tc.cmd, tc.mention)
		})
	}
	// An unreachable node is a failure (1), not a usage error.
	oneLine(t, taobox(t, nil, "tx", "transfer", "--wallets", dir, "--to", addr, "--amount", "1", "--node", dead), 1, "tx transfer", "cannot reach the node")
	oneLine(t, taobox(t, nil, "metagraph", "1", "--node", dead), 1, "metagraph", "cannot reach the node")
}

func TestGenesisCLI(t *testing.T) {
	dir := t.TempDir()
	w, _ := wallet.Create(dir, "alice")
	out := filepath.Join(dir, "genesis.json")
	r := taobox(t, nil, "genesis", "--devnet", "--wallets", dir, "--fund", "alice=1000.5", "--fund", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY=1", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "chain id") {
		t.Fatalf("genesis: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	g, err := readGenesis(out)
	if err != nil {
		t.Fatal(err)
	}
	if g.ChainName != "taobox-devnet" || g.SubnetDefaults.Tempo != 10 || g.Params.RootTempo != 5 || len(g.Balances) != 2 ||
		g.Balances[0].Account != w.ColdkeyAddress() || g.Balances[0].Free != 1000_500_000_000 {
		t.Fatalf("genesis = %+v", g)
	}
	if !strings.Contains(r.stdout, g.ID().String()) {
		t.Errorf("genesis output does not show the chain id %s: %q", g.ID(), r.stdout)
	}
	oneLine(t, taobox(t, nil, "genesis", "--out", out), 2, "genesis", "never overwritten")
	r = taobox(t, nil, "genesis", "--chain-name", "x")
	var g2 state.Genesis
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &g2) != nil || g2.ChainName != "x" || g2.SubnetDefaults.Tempo != 360 {
		t.Fatalf("genesis to stdout: exit %d, stdout %.200q", r.code, r.stdout)
	}
	oneLine(t, taobox(t, nil, "genesis", "--chain-name", strings.Repeat("x", 65)), 2, "genesis", "chain_name")
}

func TestDevnetJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet")
	}
	start := time.Now()
	r := taobox(t, nil, "devnet", "--cast", "scripted", "--epochs", "1", "--json", "--block-time", "150ms")
	if r.code != 0 {
		t.Fatalf("devnet: exit %d, stderr %q", r.code, r.stderr)
	}
	var s devSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("devnet --json printed %q: %v", r.stdout, err)
	}
	if s.EmissionRao == 0 || len(s.Subnets) != 2 || s.FailedTxs != 0 || s.Interrupted || s.Txs == 0 || s.IssuanceRao == 0 || s.TotalStakeRao == 0 {
		t.Fatalf("devnet summary: %+v", s)
	}
	for _, sn := range s.Subnets {
		if sn.Epochs != 1 || sn.EmissionRao == 0 || sn.Neurons != 8 {
			t.Errorf("subnet %+v: want 1 epoch, emission > 0, 8 neurons", sn)
		}
	}
	t.Logf("devnet --epochs 1 took %v", time.Since(start)) // a figure, not an assertion (STYLE: no timed assertions)
	if r.stderr != "" {
		t.Errorf("devnet wrote to stderr: %q", r.stderr)
	}
}

// TestDevnetDataKept: --data DIR keeps a chain that 'taobox node' can open
// (DIR/genesis.json beside it, the same chain id), the summary names
// incentive_shares even where there is none, and a second run refuses the
// kept directory and says how to read it (UX walkthrough: a kept chain
// could never be opened again).
func TestDevnetDataKept(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet")
	}
	dir := filepath.Join(t.TempDir(), "dn")
	r := taobox(t, nil, "devnet", "--cast", "scripted", "--epochs", "1", "--json", "--block-time", "100ms", "--data", dir)
	if r.code != 0 {
		t.Fatalf("devnet: exit %d, stderr %q", r.code, r.stderr)
	}
	var s devSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("devnet --json printed %q: %v", r.stdout, err)
	}
	if !strings.Contains(r.stdout, `"incentive_shares"`) {
		t.Errorf("devnet --json has no incentive_shares: %s", r.stdout)
	}
	g, err := readGenesis(filepath.Join(dir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if g.ID() != s.ChainID {
		t.Fatalf("genesis.json is chain %s, the devnet ran %s", g.ID(), s.ChainID)
	}
	n, err := node.Open(node.Config{DataDir: filepath.Join(dir, "chain"), Genesis: g, APIAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("the kept chain does not open: %v", err)
	}
	h, _ := n.Head()
	n.Close()
	if h == 0 || h > s.Blocks+1 {
		t.Errorf("kept chain at height %d, the devnet ran %d blocks", h, s.Blocks)
	}
	r = taobox(t, nil, "devnet", "--cast", "scripted", "--epochs", "1", "--data", dir)
	oneLine(t, r, 2, "devnet", "never resumes")
	if !strings.Contains(r.stderr, "taobox node --data "+filepath.Join(dir, "chain")+" --genesis "+filepath.Join(dir, "genesis.json")) {
		t.Errorf("the refusal does not say how to read the kept chain: %q", r.stderr)
	}
}

// startNode runs a node in this process on a devnet genesis that funds the
// given accounts, with fast blocks, and returns its API URL.
func startNode(t *testing.T, fund ...types.AccountID) string {
	t.Helper()
	var bal []state.GenesisBalance
	for _, a := range fund {
		bal = append(bal, state.GenesisBalance{Account: a, Free: 1000 * types.RaoPerTAO})
	}
	n, err := node.Open(node.Config{
		DataDir: t.TempDir(), Genesis: devnetGenesis("test", 1, bal), Authority: devKey("authority"),
		BlockTime: 50 * time.Millisecond, APIAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	return "http://" + n.APIAddr()
}

func TestTxAgainstNode(t *testing.T) {
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"owner", "miner"} {
		if _, err := wallet.CreateHotkey(dir, "alice", h); err != nil {
			t.Fatal(err)
		}
	}
	bob, _ := wallet.Create(dir, "bob")
	url := startNode(t, alice.ColdkeyAddress())
	tx := func(args ...string) result {
		return taobox(t, nil, append(append([]string{"tx"}, args...), "--wallets", dir, "--wallet", "alice", "--node", url)...)
	}

	r := tx("transfer", "--to", bob.ColdkeyAddress().String(), "--amount", "1.5")
	if r.code != 0 || !strings.Contains(r.stdout, "ok") || !strings.Contains(r.stdout, "transfer") {
		t.Fatalf("tx transfer: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// To a wallet by name, without waiting: the nonce counts pending ones.
	if r := tx("transfer", "--to", "bob", "--amount", "0.25", "--wait=false"); r.code != 0 || !strings.Contains(r.stdout, "submitted") {
		t.Fatalf("tx transfer --wait=false: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := tx("transfer", "--to", "bob", "--amount", "0.25"); r.code != 0 {
		t.Fatalf("second tx transfer: exit %d, stderr %q", r.code, r.stderr)
	}
	r = taobox(t, nil, "wallet", "show", "bob", "--wallets", dir, "--node", url, "--json")
	var v walletView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Account == nil || v.Account.Free != 2*types.RaoPerTAO {
		t.Fatalf("wallet show bob --node: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = taobox(t, nil, "wallet", "show", "alice", "--wallets", dir, "--node", url)
	if r.code != 0 || !strings.Contains(r.stdout, "FREE τ") || !strings.Contains(r.stdout, "997.9997") {
		t.Fatalf("wallet show alice --node: exit %d, stdout %q", r.code, r.stdout)
	}

	// A call the node's state says will fail is refused before it is
	// signed (a failed call still pays its fee): exit 1 or 2, nothing sent.
	oneLine(t, tx("transfer", "--to", "bob", "--amount", "5000"), 1, "tx transfer", "insufficient balance")
	oneLine(t, tx("transfer", "--to", "bob", "--amount", "5000"), 1, "tx transfer", "5000000000000 rao (5000 TAO) to send and a fee of 100000 rao")
	oneLine(t, tx("transfer", "--to", "bob", "--amount", "998"), 1, "tx transfer", "nothing was sent")
	oneLine(t, tx("transfer", "--to", "alice", "--amount", "1"), 2, "tx transfer", "the sending coldkey itself")
	oneLine(t, tx("hyperparam", "--netuid", "7", "--param", "tempo", "--value", "5"), 1, "tx hyperparam", "subnet 7 does not exist")
	oneLine(t, tx("propose", "--param", "stake_threshold", "--value", "1", "--description", "x"), 1, "tx propose", "stake first")
	// --force sends it: the chain refuses the call, and the error says the
	// fee was charged and that the balance it names is after the fee.
	r = tx("transfer", "--to", "bob", "--amount", "5000", "--force")
	oneLine(t, r, 1, "tx transfer", "free after the fee, 5000000000000 rao (5000 TAO) to send")
	if !strings.Contains(r.stderr, "(the fee of 0.0001 TAO was charged)") {
		t.Errorf("a failed transfer does not say its fee was charged: %q", r.stderr)
	}
	oneLine(t, tx("propose", "--param", "stake_threshold", "--value", "1", "--description", "x", "--force"), 1, "tx propose", "stake first")
	oneLine(t, taobox(t, nil, "metagraph", "1", "--node", url), 1, "metagraph", "subnet 1 does not exist")

	// A subnet, a hyperparameter, then commit-reveal through the saved salt.
	for _, args := range [][]string{
		{"register-network", "--hotkey", "owner"},
		{"hyperparam", "--netuid", "1", "--param", "commit_reveal", "--value", "1"},
		{"serve", "--netuid", "1", "--hotkey", "owner", "--host", "127.0.0.1", "--port", "8091"},
		{"stake", "add", "--hotkey", "owner", "--amount", "10"},
		{"stake", "remove", "--hotkey", "owner", "--amount", "2.5"},
		{"take", "--hotkey", "owner", "--take", "9"},
		{"root-weights", "--hotkey", "owner", "--netuids", "1", "--weights", "1"},
		{"register", "--netuid", "1", "--hotkey", "miner", "--max-price", "2"},
		{"propose", "--param", "stake_threshold", "--value", "0.000000007", "--description", "test"},
		{"vote", "--proposal", "0", "--aye"}, // alice holds all the stake: it passes at once
		{"weights", "commit", "--netuid", "1", "--hotkey", "owner", "--uids", "0", "--weights", "1"},
	} {
		r := tx(args...)
		if r.code != 0 || !strings.Contains(r.stdout, ": ok") {
			t.Fatalf("tx %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		// The id 'tx vote --proposal' needs (UX walkthrough: never shown).
		if args[0] == "propose" && !strings.Contains(r.stdout, "proposal 0: vote with 'taobox tx vote --proposal 0 --aye'") {
			t.Errorf("tx propose does not print its proposal id: %q", r.stdout)
		}
	}
	if r := tx("weights", "set", "--netuid", "1", "--hotkey", "owner", "--uids", "0", "--weights", "1"); r.code != 1 || !strings.Contains(r.stderr, "commit-reveal") {
		t.Fatalf("tx weights set on a commit-reveal subnet: exit %d, stderr %q", r.code, r.stderr)
	}
	// The reveal is refused until the next epoch (tempo 10 blocks of 50 ms),
	// then accepted with the salt the commit saved.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := tx("weights", "reveal", "--netuid", "1", "--hotkey", "owner")
		if r.code == 0 && strings.Contains(r.stdout, ": ok") {
			break
		}
		if r.code != 1 || !strings.Contains(r.stderr, "too early") {
			t.Fatalf("tx weights reveal: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatal("the reveal was still too early after 10 s")
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "wallets", "alice", "commits")); len(ents) != 0 {
		t.Errorf("the commit file was not removed after the reveal: %v", ents)
	}

	r = taobox(t, nil, "metagraph", "1", "--node", url)
	if r.code != 0 || !strings.Contains(r.stdout, "Subnet 1 · block") || !strings.Contains(r.stdout, "127.0.0.1:8091") ||
		!strings.Contains(r.stdout, "UID") || !strings.Contains(r.stdout, "VTRUST") {
		t.Fatalf("metagraph: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = taobox(t, nil, "metagraph", "1", "--node", url, "--json")
	var mg node.MetagraphInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &mg) != nil || len(mg.Neurons) != 2 || mg.Neurons[0].Stake < 7500*types.RaoPerTAO/1000 ||
		len(mg.Neurons[0].Weights) != 1 {
		t.Fatalf("metagraph --json: exit %d, stdout %q", r.code, r.stdout)
	}
	// The header's subnet fields are in the JSON too (UX walkthrough).
	if sub := mg.Subnet; sub == nil || sub.Netuid != 1 || sub.Tempo != 10 || sub.Burn == 0 || sub.Share == nil || sub.Hyperparams["tempo"] != 10 {
		t.Errorf("metagraph --json subnet: %+v", sub)
	}
	if got := strconv.Itoa(int(mg.Neurons[0].Axon.Port)); got != "8091" {
		t.Errorf("axon port %s", got)
	}
	var g node.GlobalsInfo
	if err := getJSON(url+"/v1/globals", &g); err != nil || g.Params.StakeThreshold != 7 || g.NextProposal != 1 {
		t.Fatalf("after the vote: stake_threshold %d, next proposal %d (%v); want the proposal enacted", g.Params.StakeThreshold, g.NextProposal, err)
	}
	oneLine(t, tx("vote", "--proposal", "0", "--nay"), 1, "tx vote", "proposal 0 is closed")
	var props []node.ProposalInfo
	if err := getJSON(url+"/v1/proposals", &props); err != nil || len(props) != 1 || props[0].ID != 0 || props[0].Status != "passed" ||
		props[0].Param != "stake_threshold" || props[0].Value != 7 || props[0].Description != "test" || props[0].Aye == 0 {
		t.Errorf("GET /v1/proposals: %+v (%v)", props, err)
	}
	oneLine(t, tx("register", "--netuid", "1", "--hotkey", "miner"), 1, "tx register", "already registered")
}

// getJSON decodes the JSON answer of a GET.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestWithTAO: the chain's reasons give amounts in rao; the CLI adds TAO.
func TestWithTAO(t *testing.T) {
	for in, want := range map[string]string{
		"insufficient balance: 1500000000 rao free, 5000000000000 rao to send": "insufficient balance: 1500000000 rao (1.5 TAO) free, 5000000000000 rao (5000 TAO) to send",
		"stake of 1 rao is below the minimum of 2000000 rao":                   "stake of 1 rao (0.000000001 TAO) is below the minimum of 2000000 rao (0.002 TAO)",
		"weights rate limit: last set at block 12":                             "weights rate limit: last set at block 12",
		"99999999999999999999 rao":                                             "99999999999999999999 rao",
		"12 raosomething":                                                      "12 raosomething",
	} {
		if got := withTAO(in); got != want {
			t.Errorf("withTAO(%q) = %q, want %q", in, got, want)
		}
	}
}

// Amount parameters take TAO on the command line; the others integers.
func TestParamValue(t *testing.T) {
	for _, tc := range []struct {
		in      string
		amount  bool
		want    uint64
		wantErr string
	}{
		{"0.5", true, 500_000_000, ""},
		{"2", true, 2_000_000_000, ""},
		{"0", true, 0, ""},
		{"0.000000007", true, 7, ""},
		{"8", false, 8, ""},
		{"1.5", false, 0, "want an integer"},
		{"-1", true, 0, "negative"},
		{"abc", true, 0, "write TAO"},
		{"0.0000000001", true, 0, "9"},
	} {
		got, err := paramValue("value", tc.in, tc.amount)
		switch {
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("%q (amount %v): %d, %v; want %d", tc.in, tc.amount, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q (amount %v): error %v, want one containing %q", tc.in, tc.amount, err, tc.wantErr)
		}
	}
}
