package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"taobox/wallet"
)

// procNode is one `taobox node` process of a test network.
type procNode struct {
	t       *testing.T
	name    string
	args    []string
	api     string // http://127.0.0.1:port
	p2p     string // 127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for network ("tcp" or "udp").
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newProcNode(t *testing.T, dir, name string, extra ...string) *procNode {
	api, p2p := freeAddr(t, "tcp"), freeAddr(t, "udp")
	p := &procNode{t: t, name: name, api: "http://" + api, p2p: p2p, logPath: filepath.Join(dir, name+".log")}
	p.args = append([]string{"node", "--data", filepath.Join(dir, name), "--api", api, "--p2p", p2p}, extra...)
	return p
}

// start runs the process; its log is appended to logPath.
func (p *procNode) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(taoboxBin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	f.Close()
	p.cmd = cmd
	p.t.Cleanup(p.kill)
}

// kill stops the process with SIGKILL (no cleanup in it).
func (p *procNode) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		p.cmd = nil
	}
}

// stop stops the process with SIGTERM and checks it exits 0.
func (p *procNode) stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.cmd.Wait()
	p.cmd = nil
	if err != nil {
		p.t.Errorf("%s: SIGTERM: %v\n%s", p.name, err, p.logTail())
	}
}

func (p *procNode) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (p *procNode) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

type headJSON struct {
	Height    uint64 `json:"height"`
	Hash      string `json:"hash"`
	StateRoot string `json:"state_root"`
}

// get decodes the JSON of an API path; ok is false when the node does not
// answer (yet) or answers with an error status.
func (p *procNode) get(path string, v any) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(p.api + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	return json.NewDecoder(resp.Body).Decode(v) == nil
}

func (p *procNode) head() (headJSON, bool) {
	var h headJSON
	ok := p.get("/v1/head", &h)
	return h, ok
}

// waitHeight waits until the node's head is at least h.
func (p *procNode) waitHeight(h uint64, within time.Duration) headJSON {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if hd, ok := p.head(); ok && hd.Height >= h {
			return hd
		}
		if time.Now().After(deadline) {
			hd, _ := p.head()
			p.t.Fatalf("%s: head %d after %v, want ≥ %d\n%s", p.name, hd.Height, within, h, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// blockAt returns the hash and state root of block h as the node has it.
func (p *procNode) blockAt(h uint64) (hash, root string) {
	p.t.Helper()
	var b struct {
		Hash      string `json:"hash"`
		StateRoot string `json:"state_root"`
	}
	if !p.get(fmt.Sprintf("/v1/block/%d", h), &b) {
		p.t.Fatalf("%s: no block %d\n%s", p.name, h, p.logTail())
	}
	return b.Hash, b.StateRoot
}

// TestNetworkProcesses runs a chain of four validator processes with BFT
// finality over QUIC on loopback, then: a follower that joins late syncs
// a snapshot of a proven epoch boundary and follows the tip with the same
// hashes and state roots; a validator killed with SIGKILL and restarted
// rejoins without signing twice while the other three keep finalizing;
// SIGTERM stops every node cleanly.
func TestNetworkProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes")
	}
	dir := t.TempDir()
	wallets := filepath.Join(dir, "wallets")
	genArgs := []string{"genesis", "--devnet", "--wallets", wallets, "--authority-epoch", "5", "--out", filepath.Join(dir, "genesis.json")}
	var keyFiles []string
	for i := range 4 {
		name := fmt.Sprintf("v%d", i)
		w, err := wallet.Create(wallets, name)
		if err != nil {
			t.Fatal(err)
		}
		keyFiles = append(keyFiles, w.ColdkeyPath())
		genArgs = append(genArgs, "--authority", name)
	}
	if r := taobox(t, nil, genArgs...); r.code != 0 {
		t.Fatalf("genesis: exit %d: %s", r.code, r.stderr)
	}
	gen := filepath.Join(dir, "genesis.json")
	common := []string{"--genesis", gen, "--block-time", "250ms", "--log-level", "info"}

	vals := make([]*procNode, 4)
	for i := range vals {
		vals[i] = newProcNode(t, dir, fmt.Sprintf("v%d", i), append([]string{"--validator", keyFiles[i]}, common...)...)
	}
	for i, v := range vals {
		var peers []string
		for j, o := range vals {
			if j != i {
				peers = append(peers, o.p2p)
			}
		}
		v.args = append(v.args, "--peers", strings.Join(peers, ","))
		v.start()
	}

	// Blocks finalize on all four, identically.
	for _, v := range vals {
		v.waitHeight(12, 60*time.Second)
	}
	wantHash, wantRoot := vals[0].blockAt(12)
	for _, v := range vals[1:] {
		if h, r := v.blockAt(12); h != wantHash || r != wantRoot {
			t.Fatalf("block 12 differs: %s has %s/%s, v0 %s/%s", v.name, h, r, wantHash, wantRoot)
		}
	}

	// A late follower syncs by snapshot and follows.
	var allPeers []string
	for _, v := range vals {
		allPeers = append(allPeers, v.p2p)
	}
	f := newProcNode(t, dir, "follower", append(common, "--peers", strings.Join(allPeers, ","))...)
	f.start()
	tip, _ := vals[0].head()
	f.waitHeight(tip.Height+3, 60*time.Second)
	if !strings.Contains(f.log(), "sync: snapshot imported") {
		t.Errorf("the follower did not sync a snapshot:\n%s", f.logTail())
	}
	h := tip.Height + 2
	wantHash, wantRoot = vals[0].blockAt(h)
	if gh, gr := f.blockAt(h); gh != wantHash || gr != wantRoot {
		t.Fatalf("follower block %d = %s/%s, validators %s/%s", h, gh, gr, wantHash, wantRoot)
	}

	// kill -9 a validator: three of four still finalize; restarted, it
	// catches up and takes part again.
	vals[3].kill()
	tip, _ = vals[0].head()
	for _, v := range vals[:3] {
		v.waitHeight(tip.Height+5, 60*time.Second)
	}
	vals[3].start()
	tip, _ = vals[0].head()
	vals[3].waitHeight(tip.Height+3, 60*time.Second)

	for _, v := range append(vals, f) {
		v.stop()
	}
	for _, v := range append(vals, f) {
		lg := v.log()
		for _, bad := range []string{"equivocation", "double sign", "panic:"} {
			if strings.Contains(strings.ToLower(lg), bad) {
				t.Errorf("%s logged %q:\n%s", v.name, bad, v.logTail())
			}
		}
	}
}
