package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"taobox/firmware"
	"taobox/internal/syncbuf"
	"taobox/wallet"
)

// TestFirmwareCLI drives the release and appliance commands on the built
// binary: keygen, sign, install, selftest, report, status, boot without
// roles, and an update that cannot reach a node.
func TestFirmwareCLI(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "release.key")
	r := taobox(t, nil, "firmware", "keygen", "--out", key)
	pub := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(pub) != 64 {
		t.Fatalf("keygen: %+v", r)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	if r := taobox(t, nil, "firmware", "keygen", "--out", key); r.code != 2 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("keygen over an existing key: %+v", r)
	}

	bundle := filepath.Join(dir, "b.tar")
	r = taobox(t, nil, "firmware", "sign", "--key", key, "--binary", taoboxBin, "--version", "1.0.0", "--out", bundle)
	sha := strings.SplitN(r.stdout, "\n", 2)[0]
	if r.code != 0 || len(sha) != 64 || !strings.Contains(r.stdout, "--firmware-hash "+sha+" --firmware-version 1.0.0") || !strings.Contains(r.stdout, "signed by "+pub) {
		t.Fatalf("sign: %+v", r)
	}
	if r := taobox(t, nil, "firmware", "sign", "--key", key, "--binary", taoboxBin, "--out", bundle); r.code != 2 {
		t.Fatalf("sign without --version: %+v", r)
	}

	cfg := filepath.Join(dir, "taobox.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+filepath.Join(dir, "data")+"\"\nbackend = \"cpu\"\nnode_url = \"http://127.0.0.1:1\"\nrelease_keys = [\""+pub+"\"]\n"), 0o644)

	r = taobox(t, nil, "firmware", "selftest", "--config", cfg, "--json")
	var checks []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &checks) != nil || len(checks) != 5 {
		t.Fatalf("selftest: %+v", r)
	}
	if r := taobox(t, nil, "firmware", "selftest", "--run", "nope"); r.code != 2 {
		t.Fatalf("selftest --run nope: %+v", r)
	}

	r = taobox(t, nil, "firmware", "probe", "--config", cfg, "--json")
	var hw firmware.Hardware
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &hw) != nil || hw.CPU.Threads < 1 || hw.Memory.Total == 0 || hw.Disk.Free == 0 {
		t.Fatalf("probe: %+v", r)
	}
	if r := taobox(t, nil, "firmware", "probe"); r.code != 0 || !strings.Contains(r.stdout, "  cpu       ") || !strings.Contains(r.stdout, "  gpu       ") {
		t.Fatalf("probe: %+v", r)
	}
	r = taobox(t, nil, "firmware", "report", "--config", cfg)
	for _, want := range []string{"taobox " + testVersion + " boot report", "backend   cpu", "selftest  PASSED", "ok   yuma/vectors", "roles     none configured"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("report lacks %q: %+v", want, r)
		}
	}
	r = taobox(t, nil, "firmware", "boot", "--config", cfg, "--json")
	var rep map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep["passed"] != true || !strings.Contains(r.stderr, "no roles configured") {
		t.Fatalf("boot without roles: %+v", r)
	}

	r = taobox(t, nil, "firmware", "update", bundle, "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "is 'taobox node' running at http://127.0.0.1:1") {
		t.Fatalf("update without a node: %+v", r)
	}
	r = taobox(t, nil, "firmware", "status", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "good"`) || !strings.Contains(r.stdout, taoboxBin) {
		t.Fatalf("status: %+v", r)
	}

	os.WriteFile(cfg, []byte("backend = \"tpu\"\n"), 0o644)
	if r := taobox(t, nil, "firmware", "report", "--config", cfg); r.code != 2 || !strings.Contains(r.stderr, "backend") {
		t.Fatalf("bad config: %+v", r)
	}

	root := filepath.Join(dir, "root")
	r = taobox(t, nil, "firmware", "install", "--prefix", root, "--binary", "/usr/local/bin/taobox")
	if r.code != 0 || !strings.Contains(r.stdout, "taobox.service") {
		t.Fatalf("install: %+v", r)
	}
	if r := taobox(t, nil, "firmware", "report", "--config", filepath.Join(root, "etc/taobox/taobox.toml")); r.code != 0 || !strings.Contains(r.stdout, "role      node: taobox node --data /var/lib/taobox/chain") {
		t.Fatalf("the installed example config does not load: %+v", r)
	}
}

// TestFirmwareUpdateWithGovernance is the operator's path end to end on a
// real node: an update is refused until 'taobox tx propose' and 'taobox tx
// vote' approve the release's sha256; then it installs into slot a, passes
// the new binary's self-test, and 'firmware boot' switches to it.
func TestFirmwareUpdateWithGovernance(t *testing.T) {
	dir := t.TempDir()
	alice, err := wallet.Create(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.CreateHotkey(dir, "alice", "owner"); err != nil {
		t.Fatal(err)
	}
	url := startNode(t, alice.ColdkeyAddress())
	tx := func(args ...string) {
		t.Helper()
		r := taobox(t, nil, append(append([]string{"tx"}, args...), "--wallets", dir, "--wallet", "alice", "--node", url)...)
		if r.code != 0 || !strings.Contains(r.stdout, ": ok") {
			t.Fatalf("tx %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	tx("register-network", "--hotkey", "owner")
	tx("stake", "add", "--hotkey", "owner", "--amount", "10")

	key := filepath.Join(dir, "release.key")
	r := taobox(t, nil, "firmware", "keygen", "--out", key)
	pub := strings.TrimSpace(r.stdout)
	// The new release: a script standing in for the next taobox, whose
	// 'firmware selftest' passes and whose 'firmware boot' says so.
	release := filepath.Join(dir, "taobox-2.0.0")
	os.WriteFile(release, []byte("#!/bin/sh\necho \"taobox 2.0.0 $*\"\nexit 0\n"), 0o755)
	bundle := filepath.Join(dir, "taobox-2.0.0.tar")
	r = taobox(t, nil, "firmware", "sign", "--key", key, "--binary", release, "--version", "2.0.0", "--out", bundle)
	sha := strings.SplitN(r.stdout, "\n", 2)[0]
	if r.code != 0 {
		t.Fatalf("sign: %+v", r)
	}
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "taobox.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\nbackend = \"cpu\"\nnode_url = \""+url+"\"\nrelease_keys = [\""+pub+"\"]\n"), 0o644)

	r = taobox(t, nil, "firmware", "update", bundle, "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "not approved by governance") || !strings.Contains(r.stderr, "taobox tx propose --wallet NAME --firmware-hash "+sha+" --firmware-version 2.0.0") {
		t.Fatalf("unapproved update: %+v", r)
	}
	tx("propose", "--firmware-hash", sha, "--firmware-version", "2.0.0", "--description", "taobox 2.0.0")
	tx("vote", "--proposal", "0", "--aye")

	r = taobox(t, nil, "firmware", "update", bundle, "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "installed 2.0.0 in slot a") || !strings.Contains(r.stderr, "update: approved by governance") ||
		!strings.Contains(r.stderr, "self-test passed") {
		t.Fatalf("approved update: %+v", r)
	}
	r = taobox(t, nil, "firmware", "status", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `"slot": "a"`) || !strings.Contains(r.stdout, `"version": "2.0.0"`) {
		t.Fatalf("status after the update: %+v", r)
	}
	r = taobox(t, nil, "firmware", "boot", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "taobox 2.0.0 firmware boot --config "+cfg) {
		t.Fatalf("boot did not switch to slot a: %+v", r)
	}
}

// TestFirmwareBootSupervisesNode runs the appliance with a real node role:
// boot starts `taobox node` as its child, the node makes blocks (read by
// the same head probe the watchdog uses), SIGTERM stops both cleanly, and a
// second boot continues the chain where the first left it.
func TestFirmwareBootSupervisesNode(t *testing.T) {
	dir := t.TempDir()
	auth, err := wallet.Create(dir, "authority")
	if err != nil {
		t.Fatal(err)
	}
	genesis := filepath.Join(dir, "genesis.json")
	if r := taobox(t, nil, "genesis", "--devnet", "--fund", auth.ColdkeyAddress().String()+"=100", "--out", genesis); r.code != 0 {
		t.Fatalf("genesis: %+v", r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "taobox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir = %q
backend = "cpu"
node_url = "http://%s"
skip_model_selftest = true
[supervisor]
stop_timeout = "20s"
probe_interval = "200ms"
min_backoff = "100ms"
[[role]]
kind = "node"
args = ["--data", %q, "--genesis", %q, "--authority", %q, "--block-time", "50ms", "--api", %q]
block_time = "50ms"
stall_after = "3s"
`, filepath.Join(dir, "data"), api, filepath.Join(dir, "data", "chain"), genesis, auth.ColdkeyPath(), api)), 0o644)

	head := func() uint64 {
		h, err := firmware.HeadProbe{URL: "http://" + api}.Progress(context.Background())
		if err != nil {
			return 0
		}
		return h
	}
	// freeze, when set, SIGSTOPs the node once it runs and waits for the
	// watchdog to replace it with a node that makes blocks again.
	boot := func(minHeight uint64, freeze bool) uint64 {
		t.Helper()
		cmd := exec.Command(taoboxBin, "firmware", "boot", "--config", cfg)
		var out, errb syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for head() < minHeight {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the node under boot did not reach height %d; stdout:\n%s\nstderr:\n%s", minHeight, &out, &errb)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if freeze {
			m := regexp.MustCompile(`role started.* pid=(\d+)`).FindStringSubmatch(errb.String())
			if m == nil {
				t.Fatalf("no pid in the boot log:\n%s", &errb)
			}
			pid, _ := strconv.Atoi(m[1])
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozen := head() // 0: the stopped node's API does not answer
			// The watchdog stops the frozen node (SIGTERM with SIGCONT: it
			// may answer again while it shuts down), reaps it, and starts
			// a new one, which must then make progress.
			for !strings.Contains(errb.String(), "watchdog: no progress") || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
				if time.Now().After(deadline) {
					t.Fatalf("the watchdog did not stop the frozen node (pid %d); stderr:\n%s", pid, &errb)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for head() <= frozen {
				if time.Now().After(deadline) {
					t.Fatalf("the watchdog did not replace the frozen node; stderr:\n%s", &errb)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		h := head()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("boot after SIGTERM: %v; stderr:\n%s", err, &errb)
		}
		if !strings.Contains(out.String(), "role      node: taobox node --data") || !strings.Contains(errb.String(), "role stopped cleanly") {
			t.Fatalf("boot output:\n%s\nstderr:\n%s", &out, &errb)
		}
		return h
	}
	first := boot(3, false)
	if head() != 0 {
		t.Fatal("the node still answers after the appliance stopped")
	}
	second := boot(first+2, false)
	if second < first+2 {
		t.Fatalf("second boot reached %d, want > %d", second, first)
	}
	boot(second+1, true)
}
