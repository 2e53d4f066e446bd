package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/internal/obs"
	"taobox/miner"
	"taobox/miner/minertest"
	"taobox/wallet"
)

// statusNet is a node with subnet 1 owned by alice/owner, where
// alice/miner1 is registered and serves a real miner on loopback UDP whose
// metrics and health are served as 'taobox miner --metrics' does.
type statusNet struct {
	url, wallets string
	minerPort    uint16
	metricsURL   string
}

func startStatusNet(t *testing.T) *statusNet {
	t.Helper()
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"owner", "miner1"} {
		if _, err := wallet.CreateHotkey(dir, "alice", h); err != nil {
			t.Fatal(err)
		}
	}
	n, err := node.Open(node.Config{
		DataDir: t.TempDir(), Genesis: devnetGenesis("status", 1, []state.GenesisBalance{{Account: alice.ColdkeyAddress(), Free: 1000 * types.RaoPerTAO}}),
		Authority: devKey("authority"), BlockTime: 50 * time.Millisecond, APIAddr: "127.0.0.1:0",
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
	sn := &statusNet{url: "http://" + n.APIAddr(), wallets: dir}

	key, err := wallet.LoadHotkey(dir, "alice", "miner1", nil)
	if err != nil {
		t.Fatal(err)
	}
	mn, port := minertest.Serve(t, miner.Config{Key: key, Netuid: 1, Chain: devChainView{n}, Answer: miner.RandomAnswer(32, 1)})
	sn.minerPort = port
	reg := obs.NewRegistry()
	reg.MustRegister(mn.Collector())
	health := &obs.Health{}
	health.Add("miner", mn.Healthy)
	srv := httptest.NewServer(obs.Handler(reg, health))
	t.Cleanup(srv.Close)
	sn.metricsURL = srv.URL

	for _, args := range [][]string{
		{"register-network", "--hotkey", "owner"},
		{"register", "--netuid", "1", "--hotkey", "miner1"},
		{"serve", "--netuid", "1", "--hotkey", "miner1", "--host", "127.0.0.1", "--port", strconv.Itoa(int(sn.minerPort))},
	} {
		args = append(append([]string{"tx"}, args...), "--wallets", dir, "--wallet", "alice", "--node", sn.url)
		if r := taobox(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, ": ok") {
			t.Fatalf("taobox %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	return sn
}

// TestStatusOnce runs 'taobox status --once' against a node, a real miner
// and its metrics listener.
func TestStatusOnce(t *testing.T) {
	sn := startStatusNet(t)
	r := taobox(t, nil, "status", "--once", "--node", sn.url, "--netuid", "1", "--wallets", sn.wallets, "--wallet", "alice",
		"--miner-metrics", sn.metricsURL, "--width", "220")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("status --once: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	out := r.stdout
	endpoint := "127.0.0.1:" + strconv.Itoa(int(sn.minerPort))
	for _, want := range []string{
		"taobox status · node " + sn.url,
		"chain     height ",
		" · finalized ", "(lag 0)", // taobox's own node reports finality in its /v1/head
		"miner     ok: miner ", "served 0",
		"validator not configured",
		"subnets   [1]",
		"subnet 1  n 2/",
		"register  τ",
		"uid 0 alice/owner", "next weights window", "the subnet owner's hotkey: never pruned",
		"uid 1 alice/miner1", "immune for ",
		"endpoint " + endpoint + " reachable from this machine (QUIC handshake",
		"connect-back check: no peers to ask (this node has no peer-to-peer network", // the node runs without --p2p
		"!! uid 1 endpoint " + endpoint + " is a private address",
		"metagraph 2 uids",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status --once lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "finality not reported") {
		t.Errorf("status --once against taobox's node: finality not reported:\n%s", out)
	}
	if strings.Count(out, "»") != 2 || strings.Contains(out, "\x1b") {
		t.Errorf("want 2 marked rows and no escape codes:\n%s", out)
	}

	// Only the miner's hotkey, by address; sorted by uid.
	mk, err := wallet.LoadHotkey(sn.wallets, "alice", "miner1", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := types.AccountIDFromPrivateKey(mk).String()
	r = taobox(t, nil, "status", "--once", "--node", sn.url, "--hotkey", addr, "--sort", "uid", "--probe=false")
	if r.code != 0 || strings.Count(r.stdout, "»") != 1 || !strings.Contains(r.stdout, "sorted by uid ↑") ||
		strings.Contains(r.stdout, "reachable") || !strings.Contains(r.stdout, "uid 1 "+addr[:8]) {
		t.Errorf("status --hotkey ADDRESS --sort uid --probe=false: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// The miner is gone from this address: loud.
	r = taobox(t, nil, "status", "--once", "--node", sn.url, "--netuid", "1", "--wallets", sn.wallets, "--wallet", "alice",
		"--hotkey", "miner1", "--probe-timeout", "300ms", "--miner-metrics", "127.0.0.1:1")
	if r.code != 0 || !strings.Contains(r.stdout, "!! miner: cannot reach http://127.0.0.1:1/healthz") {
		t.Errorf("status with the miner's metrics down: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestStatusConfig takes the node, the miner's metrics, its keys and its
// subnet from the appliance's config file.
func TestStatusConfig(t *testing.T) {
	sn := startStatusNet(t)
	metrics := strings.TrimPrefix(sn.metricsURL, "http://")
	cfg := fmt.Sprintf(`data_dir = %q
node_url = %q
[[role]]
kind = "node"
args = ["--api", "127.0.0.1:7744"]
[[role]]
kind = "miner"
args = ["--wallets", %q, "--wallet", "alice", "--hotkey", "miner1", "--netuid", "1", "--metrics", %q]
`, t.TempDir(), sn.url, sn.wallets, metrics)
	path := filepath.Join(t.TempDir(), "taobox.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := taobox(t, nil, "status", "--once", "--config", path, "--probe=false")
	if r.code != 0 || !strings.Contains(r.stdout, "node "+sn.url) || !strings.Contains(r.stdout, "miner     ok: miner") ||
		!strings.Contains(r.stdout, "uid 1 alice/miner1") || strings.Count(r.stdout, "»") != 1 {
		t.Errorf("status --config: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := argValue([]string{"-x", "1", "--metrics=:9100", "--netuid", "3"}, "netuid"); got != "3" {
		t.Errorf("argValue netuid = %q", got)
	}
	if got := argValue([]string{"--metrics=:9100"}, "metrics"); got != ":9100" {
		t.Errorf("argValue metrics= = %q", got)
	}
	oneLine(t, taobox(t, nil, "status", "--once", "--config", filepath.Join(t.TempDir(), "none.toml")), 2, "status", "config")
}

func TestStatusErrors(t *testing.T) {
	oneLine(t, taobox(t, nil, "status", "--once", "--sort", "rank"), 2, "status", "unknown column")
	oneLine(t, taobox(t, nil, "status", "--once", "--hotkey", "miner1"), 2, "status", "give its --wallet")
	oneLine(t, taobox(t, nil, "status", "--once", "--wallets", t.TempDir(), "--wallet", "nobody"), 2, "status", `no wallet "nobody"`)
	oneLine(t, taobox(t, nil, "status", "--once", "--risk", "0"), 2, "status", "risk")
	oneLine(t, taobox(t, nil, "status", "--node", "http://127.0.0.1:1"), 2, "status", "use --once")
	oneLine(t, taobox(t, nil, "status", "--once", "--node", "http://127.0.0.1:1"), 1, "status", "cannot reach the node")
}

// TestStatusTerminal runs the live dashboard in a real terminal (tmux):
// it draws the node's subnet with our uids, takes keys and quits on q.
func TestStatusTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	sn := startStatusNet(t)
	sock := "taobox-status-test-" + strconv.Itoa(int(time.Now().UnixNano()%1e9))
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	cmdline := strings.Join([]string{taoboxBin, "status", "--node", sn.url, "--wallets", sn.wallets, "--wallet", "alice"}, " ")
	tmux("new-session", "-d", "-s", "status", "-x", "160", "-y", "45", cmdline+"; echo EXIT=$?; sleep 600")
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	screen := func(want string) string {
		t.Helper()
		var s string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if s = tmux("capture-pane", "-p", "-t", "status"); strings.Contains(s, want) {
				return s
			}
		}
		t.Fatalf("the terminal never showed %q; it shows:\n%s", want, s)
		return ""
	}
	s := screen("sorted by emission ↓")
	for _, want := range []string{"subnets   [1]", "uid 1 alice/miner1", "reachable from this machine", "q quit · tab next subnet"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "»") != 2 {
		t.Errorf("want 2 marked rows:\n%s", s)
	}
	tmux("send-keys", "-t", "status", "s")
	screen("sorted by uid ↑")
	tmux("send-keys", "-t", "status", "S")
	screen("sorted by uid ↓")
	tmux("send-keys", "-t", "status", "Tab") // one subnet: stays on 1
	tmux("send-keys", "-t", "status", "r")
	screen("subnets   [1]")
	tmux("send-keys", "-t", "status", "q")
	screen("EXIT=0")
}
