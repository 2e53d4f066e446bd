package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
