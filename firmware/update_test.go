package firmware

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
)

// approvalChain is a real chain node (goleveldb in a temp dir, the JSON API
// on 127.0.0.1:0) whose governance approves firmware releases through
// propose and vote transactions, as operators do with 'taobox tx'.
type approvalChain struct {
	t     *testing.T
	n     *node.Node
	url   string
	owner ed25519.PrivateKey
	nonce uint64
	next  uint64 // next proposal id
}

func seedKey(i byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xc0 | i}, ed25519.SeedSize))
}

func startApprovalChain(t *testing.T) *approvalChain {
	t.Helper()
	owner, hot := seedKey(1), seedKey(2)
	g := &state.Genesis{ChainName: "taobox-firmware-test", TimeMs: 1_700_000_000_000, Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams(),
		Balances: []state.GenesisBalance{{Account: types.AccountIDFromPrivateKey(owner), Free: 10_000 * types.RaoPerTAO}}}
	g.Params.NetworkMinLock = 10 * types.RaoPerTAO
	clock := time.UnixMilli(1_700_000_000_000)
	var mu sync.Mutex
	n, err := node.Open(node.Config{DataDir: t.TempDir(), Genesis: g, Authority: seedKey(3), BlockTime: time.Hour, APIAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(12 * time.Second)
			return clock
		}})
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
	c := &approvalChain{t: t, n: n, url: "http://" + n.APIAddr(), owner: owner}
	c.run(types.RegisterNetwork{Hotkey: types.AccountIDFromPrivateKey(hot)})
	c.run(types.AddStake{Hotkey: types.AccountIDFromPrivateKey(hot), Amount: 100 * types.RaoPerTAO})
	return c
}

// run submits one transaction of the owner and produces its block.
func (c *approvalChain) run(call types.Call) {
	c.t.Helper()
	h, _ := c.n.Head()
	tx := types.Tx{Nonce: c.nonce, ValidUntil: h + 100, Call: call}
	tx.Sign(c.owner, c.n.ChainID())
	if _, err := c.n.Submit(&tx); err != nil {
		c.t.Fatalf("submit %T: %v", call, err)
	}
	c.nonce++
	if _, err := c.n.ProduceBlock(); err != nil {
		c.t.Fatal(err)
	}
}

// approve proposes the release and votes it through with all the stake.
func (c *approvalChain) approve(sha, version string) {
	c.t.Helper()
	h, err := types.ParseHash(sha)
	if err != nil {
		c.t.Fatal(err)
	}
	c.run(types.Propose{Action: types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: h, FirmwareVersion: version}, Description: "taobox " + version})
	c.run(types.Vote{Proposal: c.next, Aye: true})
	c.next++
}

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// script is a fake taobox: a shell script whose `firmware selftest` does
// body. pad makes it large enough to be written in several chunks.
func script(body string, pad int) []byte {
	return []byte("#!/bin/sh\n" + body + "\n#" + strings.Repeat("p", pad) + "\n")
}

type updateFixture struct {
	chain     *approvalChain
	key       ed25519.PrivateKey
	data      string // the data dir
	installed string // the installed binary
}

func newUpdateFixture(t *testing.T, chain *approvalChain) *updateFixture {
	data := t.TempDir()
	installed := filepath.Join(data, "installed-taobox")
	if err := os.WriteFile(installed, script("exit 0", 0), 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(data, "chain"), 0o755)
	os.WriteFile(filepath.Join(data, "chain", "MANIFEST"), []byte("chain state"), 0o644)
	return &updateFixture{chain: chain, key: testReleaseKey(0), data: data, installed: installed}
}

func (f *updateFixture) slots() *Slots {
	return &Slots{Dir: filepath.Join(f.data, "firmware"), Installed: f.installed}
}

func (f *updateFixture) updater() *Updater {
	return &Updater{Slots: f.slots(), Keys: []ed25519.PublicKey{pub(f.key)}, NodeURL: f.chain.url, SelftestTimeout: 20 * time.Second}
}

func (f *updateFixture) bundle(t *testing.T, key ed25519.PrivateKey, bin []byte, version string) []byte {
	t.Helper()
	raw, _, err := SignBundle(key, bin, version, types.HeaderVersion, t0)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *updateFixture) pointer(t *testing.T) Pointer {
	t.Helper()
	p, err := f.slots().Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpdate(t *testing.T) {
	chain := startApprovalChain(t)
	good1 := script("exit 0", 10)
	good2 := script("echo selftest ok; exit 0", 2<<20) // three chunks
	failing := script("echo 'yuma/vectors: consensus differs' >&2; exit 1", 0)
	slow := script("sleep 30", 0)
	unapproved := script("exit 0 # not voted", 0)
	chain.approve(shaHex(good1), "2.0.0")
	chain.approve(shaHex(good2), "2.1.0")
	chain.approve(shaHex(failing), "2.2.0-bad")
	chain.approve(shaHex(slow), "2.3.0-slow")

	t.Run("approval API and head probe on the real node", func(t *testing.T) {
		a, err := QueryApproval(context.Background(), chain.url, shaHex(good2))
		if err != nil || !a.Approved || a.Version != "2.1.0" || a.Proposal != 1 || a.ChainVersion != types.HeaderVersion {
			t.Fatalf("approval of good2: %+v %v", a, err)
		}
		a, err = QueryApproval(context.Background(), chain.url, shaHex(unapproved))
		if err != nil || a.Approved {
			t.Fatalf("approval of an unvoted hash: %+v %v", a, err)
		}
		if _, err := QueryApproval(context.Background(), chain.url, "zz"); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("bad hash: %v", err)
		}
		before, err := HeadProbe{URL: chain.url}.Progress(context.Background())
		if h, _ := chain.n.Head(); err != nil || before != h {
			t.Fatalf("head probe %d %v, node head %d", before, err, h)
		}
		chain.n.ProduceBlock()
		if after, _ := (HeadProbe{URL: chain.url}).Progress(context.Background()); after != before+1 {
			t.Fatalf("head probe after a block: %d, want %d", after, before+1)
		}
	})

	t.Run("a later proposal for the same version replaces the approval", func(t *testing.T) {
		old, replacement := script("exit 0 # v9 first", 0), script("exit 0 # v9 second", 0)
		chain.approve(shaHex(old), "9.0.0")
		chain.approve(shaHex(replacement), "9.0.0")
		a, _ := QueryApproval(context.Background(), chain.url, shaHex(old))
		b, _ := QueryApproval(context.Background(), chain.url, shaHex(replacement))
		if a.Approved || !b.Approved {
			t.Fatalf("old %+v, replacement %+v", a, b)
		}
	})

	f := newUpdateFixture(t, chain)
	ctx := context.Background()
	install := func(t *testing.T, bin []byte, version string) (*Result, error) {
		return f.updater().Update(ctx, bytes.NewReader(f.bundle(t, f.key, bin, version)))
	}

	t.Run("refusals leave nothing behind", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			bundle []byte
			want   error
			msg    string
		}{
			{"bad signature", f.bundle(t, testReleaseKey(7), good1, "2.0.0"), ErrBadSignature, "not from a configured releaser"},
			{"not approved", f.bundle(t, f.key, unapproved, "2.0.9"), ErrNotApproved, "taobox tx propose --wallet NAME --firmware-hash " + shaHex(unapproved)},
			{"approved under another version", f.bundle(t, f.key, good1, "6.6.6"), ErrNotApproved, `approved sha256 ` + shaHex(good1) + ` as version "2.0.0"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.updater().Update(ctx, bytes.NewReader(tc.bundle))
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
				}
				if _, err := os.Stat(filepath.Join(f.data, "firmware")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a refused update wrote %s", filepath.Join(f.data, "firmware"))
				}
			})
		}
	})

	t.Run("install, then a failing and a hanging release roll back", func(t *testing.T) {
		res, err := install(t, good1, "2.0.0")
		if err != nil || !res.Installed || res.Slot != "a" {
			t.Fatalf("first install: %+v %v", res, err)
		}
		if p := f.pointer(t); p.Slot != "a" || p.Status != StatusGood || p.Version != "2.0.0" || p.Previous != "" {
			t.Fatalf("pointer after the first install: %+v", p)
		}
		res, err = install(t, good2, "2.1.0")
		if err != nil || res.Slot != "b" || !strings.Contains(res.Output, "selftest ok") {
			t.Fatalf("second install: %+v %v", res, err)
		}
		if p := f.pointer(t); p.Slot != "b" || p.Status != StatusGood || p.Previous != "a" {
			t.Fatalf("pointer after the second install: %+v", p)
		}

		res, err = install(t, failing, "2.2.0-bad")
		if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "consensus differs") || !res.RolledBack || res.Slot != "a" {
			t.Fatalf("failing release: %+v %v", res, err)
		}
		p := f.pointer(t)
		if p.Slot != "b" || p.Status != StatusGood || p.Version != "2.1.0" || !strings.Contains(p.Note, "2.2.0-bad failed its self-test") {
			t.Fatalf("after the failing release the old version must be current: %+v", p)
		}
		if err := f.slots().CheckSlot("b"); err != nil {
			t.Fatalf("the running slot was damaged: %v", err)
		}

		u := f.updater()
		u.SelftestTimeout = 300 * time.Millisecond
		res, err = u.Update(ctx, bytes.NewReader(f.bundle(t, f.key, slow, "2.3.0-slow")))
		if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "did not finish within 300ms") {
			t.Fatalf("hanging release: %+v %v", res, err)
		}
		if p := f.pointer(t); p.Slot != "b" || p.Status != StatusGood || p.Version != "2.1.0" {
			t.Fatalf("after the hanging release: %+v", p)
		}
		if got := readFile(t, filepath.Join(f.data, "chain", "MANIFEST")); got != "chain state" {
			t.Fatalf("an update touched the data dir: %q", got)
		}
		if p, changed, err := f.slots().Recover(time.Now()); err != nil || changed || p.Slot != "b" {
			t.Fatalf("Recover after settled updates: %+v %v %v", p, changed, err)
		}
	})

	t.Run("kill -9 at every step leaves a bootable system", func(t *testing.T) {
		iterations := 8
		if os.Getenv("TAOBOX_LONG") != "" {
			iterations = 40
		}
		steps := []string{StepVerified, StepSlotCleared, StepBinaryPartial, StepBinaryWritten, StepManifestWritten, StepPointerTrial, StepSelftestDone, StepPointerFinal}
		r := rand.New(rand.NewPCG(8, 9))
		kf := newUpdateFixture(t, chain)
		bundles := map[string][]byte{"2.0.0": kf.bundle(t, kf.key, good1, "2.0.0"), "2.1.0": kf.bundle(t, kf.key, good2, "2.1.0")}
		for i := range iterations {
			step := steps[i%len(steps)]
			if i >= len(steps) {
				step = steps[r.IntN(len(steps))]
			}
			ver := []string{"2.0.0", "2.1.0"}[r.IntN(2)]
			before := kf.pointer(t)
			bpath := filepath.Join(t.TempDir(), "bundle.tar")
			os.WriteFile(bpath, bundles[ver], 0o644)
			cmd := exec.Command(os.Args[0], "fwtest", "update", "updater")
			cmd.Env = append(os.Environ(), childEnv+"=1", "FIRMWARE_TEST_DIR="+kf.data, "FIRMWARE_TEST_KILL="+step,
				"FIRMWARE_TEST_BUNDLE="+bpath, "FIRMWARE_TEST_NODE="+chain.url, "FIRMWARE_TEST_INSTALLED="+kf.installed,
				"FIRMWARE_TEST_KEY="+hex.EncodeToString(pub(kf.key)))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("iteration %d: updater killed at %s: %v, want SIGKILL; output:\n%s", i, step, err, out)
			}
			// Boot: Recover, then the pointer's binary must be whole and run.
			p, _, err := kf.slots().Recover(time.Now())
			if err != nil {
				t.Fatalf("iteration %d (%s): recover: %v", i, step, err)
			}
			if p.Status != StatusGood {
				t.Fatalf("iteration %d (%s): pointer %+v after recovery", i, step, p)
			}
			if p.Slot != "" {
				if err := kf.slots().CheckSlot(p.Slot); err != nil {
					t.Fatalf("iteration %d (%s): slot %s not bootable: %v", i, step, p.Slot, err)
				}
			}
			if out, err := exec.Command(kf.slots().Binary(p), "firmware", "selftest").CombinedOutput(); err != nil {
				t.Fatalf("iteration %d (%s): %s does not run: %v %s", i, step, kf.slots().Binary(p), err, out)
			}
			// Before the trial pointer is durable the old version boots;
			// once the final pointer is written the new one does; in
			// between, recovery rolls back to the old one.
			switch step {
			case StepPointerFinal:
				if p.Version != ver || p.Slot == before.Slot {
					t.Fatalf("iteration %d: killed after the final pointer: %+v, want %s in the other slot (before %+v)", i, p, ver, before)
				}
			default:
				if p.Slot != before.Slot || p.Version != before.Version {
					t.Fatalf("iteration %d: killed at %s: booting %+v, want the old %+v", i, step, p, before)
				}
			}
		}
		if got := readFile(t, filepath.Join(kf.data, "chain", "MANIFEST")); got != "chain state" {
			t.Fatalf("updates touched the data dir: %q", got)
		}
	})
}

// updaterChild runs an update and kills itself with SIGKILL right after
// the step FIRMWARE_TEST_KILL.
func updaterChild(dir string) int {
	kill := os.Getenv("FIRMWARE_TEST_KILL")
	keyb, _ := hex.DecodeString(os.Getenv("FIRMWARE_TEST_KEY"))
	f, err := os.Open(os.Getenv("FIRMWARE_TEST_BUNDLE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	u := &Updater{
		Slots: &Slots{Dir: filepath.Join(dir, "firmware"), Installed: os.Getenv("FIRMWARE_TEST_INSTALLED")},
		Keys:  []ed25519.PublicKey{keyb}, NodeURL: os.Getenv("FIRMWARE_TEST_NODE"), SelftestTimeout: 20 * time.Second,
		Hook: func(step string) {
			if step == kill {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		},
	}
	_, err = u.Update(context.Background(), f)
	fmt.Fprintln(os.Stderr, "update finished without reaching the kill step:", err)
	return 1
}
