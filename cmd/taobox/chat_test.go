package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"taobox/gateway"
	"taobox/wallet"
)

// TestChatCLI runs 'taobox validator --openai 127.0.0.1:0' against a node
// and asks it with 'taobox chat': alice's coldkey holds stake (looked up
// through the node's API), so her request passes the signature and stake
// checks and gets the clear "no miner has passed yet" answer of a subnet
// without miners; bob's coldkey holds none and gets 403. The full path
// through miners is TestGatewayOverQUIC in package gateway.
func TestChatCLI(t *testing.T) {
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := wallet.Create(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	val, err := wallet.CreateHotkey(dir, "alice", "val")
	if err != nil {
		t.Fatal(err)
	}
	url := startNode(t, alice.ColdkeyAddress(), bob.ColdkeyAddress())
	for _, args := range [][]string{
		{"tx", "register-network", "--hotkey", "val"},
		{"tx", "stake", "add", "--hotkey", "val", "--amount", "10"},
	} {
		if r := taobox(t, nil, append(args, "--wallets", dir, "--wallet", "alice", "--node", url)...); r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	cmd := exec.Command(taoboxBin, "validator", "--wallets", dir, "--wallet", "alice", "--hotkey", "val", "--netuid", "1",
		"--node", url, "--state", t.TempDir(), "--interval", "1h", "--openai", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	endpoint := regexp.MustCompile(`OpenAI-compatible endpoint on (http://\S+)/v1 \(model (\S+),`)
	sc := bufio.NewScanner(stderr)
	var base, model string
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if m := endpoint.FindStringSubmatch(sc.Text()); m != nil {
			base, model = m[1], m[2]
			break
		}
	}
	if base == "" {
		t.Fatalf("the validator never announced its endpoint; stderr:\n%s", strings.Join(seen, "\n"))
	}
	go func() { // keep draining the validator's log
		for sc.Scan() {
		}
	}()

	resp, err := http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var ml gateway.ModelList
	json.NewDecoder(resp.Body).Decode(&ml)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(ml.Data) != 1 || ml.Data[0].ID != model || ml.Data[0].Netuid != 1 {
		t.Fatalf("GET /v1/models: %d %+v", resp.StatusCode, ml)
	}

	chat := func(walletName string, extra ...string) result {
		return taobox(t, nil, append([]string{"chat", "--endpoint", base, "--wallets", dir, "--wallet", walletName}, extra...)...)
	}
	start := time.Now()
	r := chat("alice", "--coldkey", "Tell me a story")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 503 no_miners") {
		t.Fatalf("alice (staked): exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = chat("bob", "--coldkey", "Tell me a story")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 403 insufficient_stake") || !strings.Contains(r.stderr, bob.ColdkeyAddress().String()) {
		t.Fatalf("bob (no stake): exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// the validator's hotkey holds the stake alice put on it
	if r = chat("alice", "--hotkey", "val", "-"); r.code != 2 || !strings.Contains(r.stderr, "PROMPT") {
		t.Fatalf("empty stdin prompt: exit %d, stderr %q", r.code, r.stderr)
	}
	r = taobox(t, []byte("hello"), "chat", "--endpoint", base, "--wallets", dir, "--wallet", "alice", "--hotkey", "val", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 503 no_miners") {
		t.Fatalf("alice's hotkey: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("three chats in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(r.stderr, "signing for gateway "+val.String()) {
		t.Errorf("chat did not say which gateway it signed for (the validator's hotkey %s): %q", val, r.stderr)
	}
	// Pinned to this validator: accepted (past the signature to the miners).
	r = chat("alice", "--coldkey", "--gateway", val.String(), "Tell me a story")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 503 no_miners") {
		t.Fatalf("alice --gateway val: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Signed for another validator's gateway: refused here, so a request
	// signed for one validator cannot be replayed to another.
	r = chat("alice", "--coldkey", "--gateway", bob.ColdkeyAddress().String(), "Tell me a story")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 401 wrong_gateway") || !strings.Contains(r.stderr, val.String()) {
		t.Fatalf("alice signing for another gateway: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	oneLine(t, chat("alice", "--coldkey", "--gateway", "5notanaddress", "hello"), 2, "chat", "gateway")
	oneLine(t, chat("alice", "hello"), 2, "chat", "--hotkey")
	oneLine(t, chat("alice", "--coldkey", "--endpoint", "ftp://x", "hello"), 2, "chat", "endpoint")
}
