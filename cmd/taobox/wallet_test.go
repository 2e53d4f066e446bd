package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"taobox/chain/types"
	"taobox/wallet"
)

// taoboxWith runs the binary like taobox, with extra environment entries
// and extra files (fd 3, 4, …).
func taoboxWith(t *testing.T, env []string, files []*os.File, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(taoboxBin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = files
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("taobox %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// walletTestEnv is a wallets dir, a password file, and the flags that use
// them with a cheap KDF.
func walletTestEnv(t *testing.T) (dir, pw string, enc []string) {
	dir = t.TempDir()
	pw = filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("test password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, pw, []string{"--wallets", dir, "--password-file", pw, "--kdf-memory", "1", "--kdf-time", "1"}
}

// phraseIn returns the one-line mnemonic after "Mnemonic of" in out.
func phraseIn(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "Mnemonic of")
	if !ok {
		t.Fatalf("no mnemonic in %q", out)
	}
	for _, line := range strings.Split(rest, "\n") {
		if f := strings.Fields(line); len(f) >= 12 && !strings.Contains(line, ".") {
			return strings.Join(f, " ")
		}
	}
	t.Fatalf("no phrase line in %q", out)
	return ""
}

func TestWalletMnemonicCLI(t *testing.T) {
	dir, _, enc := walletTestEnv(t)
	r := taobox(t, nil, append([]string{"wallet", "new-coldkey", "alice", "--words", "24"}, enc...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "WRITE THIS DOWN") || !strings.Contains(r.stdout, "encrypted") {
		t.Fatalf("new-coldkey: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	phrase := phraseIn(t, r.stdout)
	if n := len(strings.Fields(phrase)); n != 24 {
		t.Fatalf("%d words", n)
	}
	w, err := wallet.Load(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := wallet.SeedFromMnemonic(phrase)
	if types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed)) != w.ColdkeyAddress() {
		t.Fatal("the printed mnemonic is not the coldkey's")
	}

	// Restore into another directory from a file, and from standard input.
	_, _, enc2 := walletTestEnv(t)
	mf := filepath.Join(t.TempDir(), "phrase")
	os.WriteFile(mf, []byte(phrase+"\n"), 0o600)
	r = taobox(t, nil, append([]string{"wallet", "regen-coldkey", "alice", "--mnemonic-file", mf}, enc2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, w.ColdkeyAddress().String()) {
		t.Fatalf("regen-coldkey: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The coldkey's phrase, read from stdin and normalised, is refused as a
	// hotkey (it would put the coldkey on the serving machine).
	r = taobox(t, []byte("  "+strings.ToUpper(phrase)+"\n"), append([]string{"wallet", "regen-hotkey", "alice", "h", "--mnemonic-file", "-"}, enc2...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "coldkey's own seed (address "+w.ColdkeyAddress().String()) {
		t.Fatalf("regen-hotkey from stdin with the coldkey's phrase: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	oneLine(t, taobox(t, nil, append([]string{"wallet", "regen-coldkey", "alice", "--mnemonic-file", mf}, enc2...)...), 2, "wallet regen-coldkey", "never overwritten")

	// Refusals: a phrase on argv, unknown words, checksum, count.
	oneLine(t, taobox(t, nil, append([]string{"wallet", "regen-coldkey", "x", "--mnemonic", phrase}, enc2...)...), 2, "wallet regen-coldkey", "shell history")
	words := strings.Fields(phrase)
	for _, tc := range []struct{ content, mention string }{
		{strings.Join(append([]string{"notaword"}, words[1:]...), " "), `unknown word "notaword" at position 1`},
		{strings.Join(append([]string{words[1], words[0]}, words[2:]...), " "), "bad checksum"},
		{strings.Join(words[:13], " "), "13 words"},
	} {
		if words[0] == words[1] {
			continue
		}
		os.WriteFile(mf, []byte(tc.content), 0o600)
		oneLine(t, taobox(t, nil, append([]string{"wallet", "regen-coldkey", "y", "--mnemonic-file", mf}, enc2...)...), 2, "wallet regen-coldkey", tc.mention)
	}
	oneLine(t, taobox(t, nil, append([]string{"wallet", "new-coldkey", "z", "--words", "13"}, enc...)...), 2, "wallet new-coldkey", "12, 15, 18, 21 or 24")
}

func TestWalletPasswordSourcesCLI(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fds and systemd are Unix")
	}
	dir, _, enc := walletTestEnv(t)
	if r := taobox(t, nil, append([]string{"wallet", "create", "alice"}, enc...)...); r.code != 0 {
		t.Fatalf("create: %q", r.stderr)
	}
	cheap := []string{"--wallets", dir, "--kdf-memory", "1", "--kdf-time", "1"}

	// No source and no terminal: one line naming what was tried.
	r := taobox(t, nil, append([]string{"wallet", "new-hotkey", "alice", "h0"}, cheap...)...)
	oneLine(t, r, 1, "wallet new-hotkey", "--password-file")
	if !strings.Contains(r.stderr, "CREDENTIALS_DIRECTORY") {
		t.Fatalf("the error does not name the systemd source: %q", r.stderr)
	}

	// --password-fd 3.
	pr, pw, _ := os.Pipe()
	pw.Write([]byte("fd password\n"))
	pw.Close()
	r = taoboxWith(t, nil, []*os.File{pr}, nil, append([]string{"wallet", "new-hotkey", "alice", "h1", "--password-fd", "3"}, cheap...)...)
	pr.Close()
	if r.code != 0 {
		t.Fatalf("--password-fd: exit %d, stderr %q", r.code, r.stderr)
	}
	// The systemd credentials directory.
	cred := t.TempDir()
	os.WriteFile(filepath.Join(cred, "taobox-wallet"), []byte("cred password"), 0o400)
	r = taoboxWith(t, []string{"CREDENTIALS_DIRECTORY=" + cred}, nil, nil, append([]string{"wallet", "new-hotkey", "alice", "h2"}, cheap...)...)
	if r.code != 0 {
		t.Fatalf("credentials dir: exit %d, stderr %q", r.code, r.stderr)
	}
	for h, pwd := range map[string]string{"h1": "fd password", "h2": "cred password"} {
		if _, err := wallet.LoadHotkey(dir, "alice", h, &wallet.Unlocker{Prompt: func(string) ([]byte, error) { return []byte(pwd), nil }}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	// A short password is refused before anything is written.
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	oneLine(t, taobox(t, nil, append([]string{"wallet", "new-hotkey", "alice", "h3", "--password-file", short}, cheap...)...), 2, "wallet new-hotkey", "at least 8")

	// --no-encrypt warns, and list tells plain from encrypted.
	r = taobox(t, nil, append([]string{"wallet", "new-hotkey", "alice", "plain", "--no-encrypt"}, cheap...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "plain text") {
		t.Fatalf("--no-encrypt: exit %d, stderr %q", r.code, r.stderr)
	}
	r = taobox(t, nil, "wallet", "list", "--wallets", dir, "--json")
	var views []walletView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &views) != nil || len(views) != 1 || views[0].Stored != "encrypted" {
		t.Fatalf("list --json: %q", r.stdout)
	}
	stored := map[string]string{}
	for _, h := range views[0].Hotkeys {
		stored[h.Name] = h.Stored
	}
	if stored["h1"] != "encrypted" || stored["plain"] != "plain" {
		t.Fatalf("stored = %v", stored)
	}
}

func TestWalletEncryptCLI(t *testing.T) {
	dir, pw, enc := walletTestEnv(t)
	old, _ := wallet.Create(dir, "old") // plain key files, as earlier releases wrote
	hk, _ := wallet.CreateHotkey(dir, "old", "miner")
	r := taobox(t, nil, "wallet", "list", "--wallets", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "plain") || !strings.Contains(r.stdout, "taobox wallet encrypt") {
		t.Fatalf("list of plain keys: %q", r.stdout)
	}
	r = taobox(t, nil, append([]string{"wallet", "encrypt", "old"}, enc...)...)
	if r.code != 0 || strings.Count(r.stdout, "encrypted ") != 2 {
		t.Fatalf("encrypt: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = taobox(t, nil, append([]string{"wallet", "encrypt", "old"}, enc...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "encrypted already") {
		t.Fatalf("second encrypt: %q", r.stdout)
	}
	w, _ := wallet.Load(dir, "old")
	w.Unlock = &wallet.Unlocker{PasswordFile: pw}
	ck, err := w.Coldkey()
	if err != nil || types.AccountIDFromPrivateKey(ck) != old.ColdkeyAddress() {
		t.Fatalf("coldkey after encrypt: %v", err)
	}
	k, err := w.Hotkey("miner")
	if err != nil || types.AccountIDFromPrivateKey(k) != hk {
		t.Fatalf("hotkey after encrypt: %v", err)
	}
}

// TestOfflineSigning: the coldkey signs a transfer with no node; the file
// is submitted from another wallets directory that holds only the
// coldkey's address.
func TestOfflineSigning(t *testing.T) {
	dir, _, enc := walletTestEnv(t)
	alice, _ := wallet.Create(dir, "alice")
	bob, _ := wallet.Create(dir, "bob")
	if r := taobox(t, nil, append([]string{"wallet", "encrypt", "alice"}, enc...)...); r.code != 0 {
		t.Fatalf("encrypt: %q", r.stderr)
	}
	url := startNode(t, alice.ColdkeyAddress())
	c, err := newClient(url)
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "transfer.json")
	offline := []string{"--offline", "--nonce", "0", "--valid-until", strconv.FormatUint(head.Height+200, 10), "--chain-id", head.ChainID.String(), "--out", out}
	sign := append(append([]string{"tx", "transfer", "--wallet", "alice", "--to", bob.ColdkeyAddress().String(), "--amount", "2",
		"--node", "http://127.0.0.1:1"}, offline...), enc[:4]...) // --wallets, --password-file

	// A wrong password: one line naming the source.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not the password\n"), 0o600)
	badArgs := append(append([]string{}, sign...), "--password-file", bad)
	oneLine(t, taobox(t, nil, badArgs...), 1, "tx transfer", "wrong password")

	r := taobox(t, nil, sign...)
	if r.code != 0 || !strings.Contains(r.stdout, "signed offline") {
		t.Fatalf("offline sign: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	oneLine(t, taobox(t, nil, sign...), 2, "tx transfer", "never overwritten")

	// An edited file is refused before the node is asked.
	data, _ := os.ReadFile(out)
	edited := filepath.Join(t.TempDir(), "edited.json")
	os.WriteFile(edited, bytes.Replace(data, []byte(`"nonce": 0`), []byte(`"nonce": 1`), 1), 0o600)
	oneLine(t, taobox(t, nil, "tx", "submit", edited, "--node", url), 2, "tx submit", "edited")

	r = taobox(t, nil, "tx", "submit", out, "--node", url)
	if r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("tx submit: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if a, err := c.account(context.Background(), bob.ColdkeyAddress()); err != nil || a.Free != 2*types.RaoPerTAO {
		t.Fatalf("bob after the offline transfer: %+v, %v", a, err)
	}
	oneLine(t, taobox(t, nil, "tx", "submit", out, "--node", url), 1, "tx submit", "nonce 0 is used already")

	// A box with only the coldkey's address cannot sign coldkey calls and
	// says how to do it.
	box := t.TempDir()
	if r := taobox(t, nil, "wallet", "regen-coldkeypub", "alice", "--address", alice.ColdkeyAddress().String(), "--wallets", box); r.code != 0 {
		t.Fatalf("regen-coldkeypub: %q", r.stderr)
	}
	oneLine(t, taobox(t, nil, "tx", "transfer", "--wallets", box, "--wallet", "alice", "--to", bob.ColdkeyAddress().String(), "--amount", "1", "--node", url), 1, "tx transfer", "--offline")
}

// FuzzSignedTxFile: the decoder of 'tx submit' files never panics, and
// what it accepts is a transaction whose summary it matches.
func FuzzSignedTxFile(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	tx := &types.Tx{Nonce: 3, ValidUntil: 9, Call: types.Transfer{To: types.AccountIDFromPrivateKey(priv), Amount: 5}}
	tx.Sign(priv, types.Hash{})
	good, _ := json.Marshal(signedTxFile{Kind: tx.Call.Kind().String(), Signer: tx.Signer.String(), Nonce: 3, ValidUntil: 9,
		ChainID: types.Hash{}.String(), Hash: tx.Hash().String(), Tx: hex.EncodeToString(tx.Encode())})
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, sf, err := decodeSignedTxFile(data)
		if err != nil {
			return
		}
		if tx.Hash().String() != sf.Hash || tx.Signer.String() != sf.Signer {
			t.Fatal("accepted a file whose summary does not match")
		}
	})
}
