package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"taobox/chain/node"
	"taobox/internal/syncbuf"
	"testing"
	"time"

	"taobox/wallet"
)

// TestValidatorCLI runs one round of 'taobox validator --once' against a
// node: a subnet with no serving miners, so the round is empty, nothing is
// submitted, and the next weight window is printed; the score file exists
// afterwards, and a corrupt one is refused unless --reset-state.
func TestValidatorCLI(t *testing.T) {
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.CreateHotkey(dir, "alice", "val"); err != nil {
		t.Fatal(err)
	}
	url := startNode(t, alice.ColdkeyAddress())
	if r := taobox(t, nil, "tx", "register-network", "--hotkey", "val", "--wallets", dir, "--wallet", "alice", "--node", url); r.code != 0 {
		t.Fatalf("register-network: exit %d, stderr %q", r.code, r.stderr)
	}
	stateDir := filepath.Join(dir, "vstate")
	args := []string{"validator", "--once", "--wallets", dir, "--wallet", "alice", "--hotkey", "val", "--netuid", "1", "--node", url, "--state", stateDir}
	r := taobox(t, nil, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "round 1 at block") || !strings.Contains(r.stdout, "0 miners") ||
		!strings.Contains(r.stdout, "next weight window: set at block") {
		t.Fatalf("validator --once: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "validator-state.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "validator-state.json"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := taobox(t, nil, args...); r.code != 1 || !strings.Contains(r.stderr, "corrupt state file") || !strings.Contains(r.stderr, "--reset-state") {
		t.Fatalf("corrupt state: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := taobox(t, nil, append(args, "--reset-state")...); r.code != 0 || !strings.Contains(r.stdout, "round 1 at block") {
		t.Fatalf("--reset-state: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	oneLine(t, taobox(t, nil, "validator", "--wallets", dir, "--wallet", "alice", "--hotkey", "val"), 2, "validator", "netuid")
}

// TestMinerRegisterCLI: `taobox miner --register` registers its hotkey
// (the coldkey pays the burn), then serves its endpoint on chain; a second
// start finds the uid and does not register again.
func TestMinerRegisterCLI(t *testing.T) {
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"val", "m1"} {
		if _, err := wallet.CreateHotkey(dir, "alice", h); err != nil {
			t.Fatal(err)
		}
	}
	url := startNode(t, alice.ColdkeyAddress())
	if r := taobox(t, nil, "tx", "register-network", "--hotkey", "val", "--wallets", dir, "--wallet", "alice", "--node", url); r.code != 0 {
		t.Fatalf("register-network: exit %d, stderr %q", r.code, r.stderr)
	}
	start := func() (out *syncbuf.Buffer, stop func() string) {
		cmd := exec.Command(taoboxBin, "miner", "--wallets", dir, "--wallet", "alice", "--hotkey", "m1", "--netuid", "1",
			"--node", url, "--listen", "127.0.0.1:0", "--register", "10", "--serve-host", "127.0.0.1")
		out = &syncbuf.Buffer{}
		var errb syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), "miner ") {
			if time.Now().After(deadline) || cmd.ProcessState != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the miner did not start serving: stdout %q, stderr %q", out, &errb)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return out, func() string {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			return errb.String()
		}
	}
	_, stop := start()
	stop()
	r := taobox(t, nil, "metagraph", "1", "--node", url, "--json")
	if r.code != 0 {
		t.Fatalf("metagraph: exit %d, stderr %q", r.code, r.stderr)
	}
	var mg node.MetagraphInfo
	if err := json.Unmarshal([]byte(r.stdout), &mg); err != nil {
		t.Fatal(err)
	}
	m1, err := wallet.Load(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	hk, err := m1.HotkeyAddress("m1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range mg.Neurons {
		if n.Hotkey == hk {
			found = n.Axon.Port != 0 && n.Axon.Host == "127.0.0.1"
		}
	}
	if !found {
		t.Fatalf("m1 (%s) is not registered with its endpoint: %s", hk, r.stdout)
	}
	_, stop = start()
	if errs := stop(); !strings.Contains(errs, "already has uid") {
		t.Fatalf("second start: stderr %q", errs)
	}
}
