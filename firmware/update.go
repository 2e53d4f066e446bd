package firmware

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Approval is the node's answer to GET /v1/firmware/{sha256}.
type Approval struct {
	Hash         string `json:"hash"`
	Approved     bool   `json:"approved"`
	Version      string `json:"version,omitempty"`  // the approved version (when approved)
	Proposal     uint64 `json:"proposal,omitempty"` // the proposal that approved it
	ChainVersion uint16 `json:"chain_version"`      // the node's chain (header) version
}

// maxApprovalBody caps the node's answer.
const maxApprovalBody = 64 << 10

// QueryApproval asks the node at nodeURL whether governance approved the
// release with this binary SHA-256 (hex).
func QueryApproval(ctx context.Context, nodeURL, sha string) (Approval, error) {
	var a Approval
	u := strings.TrimSuffix(nodeURL, "/") + "/v1/firmware/" + sha
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return a, fmt.Errorf("firmware: node URL %q: %w", nodeURL, err)
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return a, fmt.Errorf("firmware: cannot ask the node whether the release is approved (is 'taobox node' running at %s? --node sets another): %w", nodeURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxApprovalBody))
	if err != nil {
		return a, fmt.Errorf("firmware: %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("firmware: %s: status %s: %s (the node may be older than this release check)", u, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("firmware: %s: not an approval answer: %w", u, err)
	}
	if !strings.EqualFold(a.Hash, sha) {
		return a, fmt.Errorf("firmware: %s answered for hash %q", u, a.Hash)
	}
	return a, nil
}

// Update steps, in order, as the Hook sees them. After each one the state
// on disk is durable.
const (
	StepVerified        = "verified"         // signature, hash and approval checked; nothing written yet
	StepSlotCleared     = "slot-cleared"     // the inactive slot's old files are gone
	StepBinaryPartial   = "binary-partial"   // part of the binary's temporary file is written
	StepBinaryWritten   = "binary-written"   // the binary is in place, fsynced
	StepManifestWritten = "manifest-written" // the manifest and signature are in place
	StepPointerTrial    = "pointer-trial"    // the pointer names the new slot, in trial
	StepSelftestDone    = "selftest-done"    // the new binary's self-test finished (either way)
	StepPointerFinal    = "pointer-final"    // the pointer is good (new slot) or rolled back
)

// Updater installs verified bundles into the inactive slot.
type Updater struct {
	Slots *Slots
	Keys  []ed25519.PublicKey // release keys (Config.ReleaseKeys)
	// NodeURL is the local node asked for governance approval.
	NodeURL string
	// SelftestTimeout bounds the new binary's self-test. Default 3m.
	SelftestTimeout time.Duration
	// SelftestArgs run the new binary's self-test; exit status 0 passes.
	// Default ["firmware", "selftest"].
	SelftestArgs []string
	Logger       *slog.Logger     // nil: discard
	Now          func() time.Time // nil: time.Now
	// Hook, if set, is called after each durable step (Step*); tests kill
	// the process there.
	Hook func(step string)
}

// Result is what an update did.
type Result struct {
	Manifest   Manifest
	Slot       string // the slot installed into
	Installed  bool   // true: the new slot is current and good
	RolledBack bool   // true: the self-test failed and the old slot is current again
	Reason     string // why it rolled back
	Output     string // the tail of the self-test's output
}

// ErrRolledBack wraps a failed self-test; the old version is current.
var ErrRolledBack = errors.New("firmware: the new version failed its self-test and was rolled back")

func (u *Updater) hook(step string) {
	if u.Hook != nil {
		u.Hook(step)
	}
}

// Update verifies the bundle (signature with Keys, binary hash, governance
// approval of the hash at NodeURL, chain version), installs it into the
// inactive slot, switches to it in trial, runs its self-test within
// SelftestTimeout and keeps it (marked good) or switches back. A refused
// bundle changes nothing on disk. It runs Recover first, so a previous
// interrupted update is settled before this one starts.
func (u *Updater) Update(ctx context.Context, bundle io.Reader) (*Result, error) {
	log := u.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := u.Now
	if now == nil {
		now = time.Now
	}
	b, err := ReadBundle(bundle)
	if err != nil {
		return nil, err
	}
	m := b.Manifest
	log = log.With("version", m.Version, "sha256", m.SHA256)
	hook := u.Hook
	u.Hook = func(step string) {
		log.Debug("update: step durable", "step", step)
		if hook != nil {
			hook(step)
		}
	}
	defer func() { u.Hook = hook }()
	log.Info("update: bundle read", "size", m.Size, "min_chain_version", m.MinChainVersion, "created", m.Created)
	if err := b.Verify(u.Keys); err != nil {
		log.Error("update refused", "err", err)
		return nil, err
	}
	log.Info("update: signature and binary hash verified")
	appr, err := QueryApproval(ctx, u.NodeURL, m.SHA256)
	if err != nil {
		return nil, err
	}
	if !appr.Approved {
		err := fmt.Errorf("%w: the chain at %s has no passed proposal approving sha256 %s. Propose it and vote for it:\n"+
			"  taobox tx propose --wallet NAME --firmware-hash %s --firmware-version %s --description \"taobox %s\"\n"+
			"  taobox tx vote --wallet NAME --proposal ID --aye\nthen run this update again once it has passed",
			ErrNotApproved, u.NodeURL, m.SHA256, m.SHA256, m.Version, m.Version)
		log.Error("update refused: not approved by governance")
		return nil, err
	}
	if appr.Version != m.Version {
		return nil, fmt.Errorf("%w: governance approved sha256 %s as version %q, but the manifest says %q", ErrNotApproved, m.SHA256, appr.Version, m.Version)
	}
	if m.MinChainVersion > appr.ChainVersion {
		return nil, fmt.Errorf("firmware: version %s needs chain version %d; the node runs %d (update the chain first)", m.Version, m.MinChainVersion, appr.ChainVersion)
	}
	log.Info("update: approved by governance", "proposal", appr.Proposal)
	u.hook(StepVerified)

	cur, _, err := u.Slots.Recover(now())
	if err != nil {
		return nil, err
	}
	target := Other(cur.Slot)
	dir := u.Slots.SlotDir(target)
	log = log.With("slot", target)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("firmware: clear slot %s: %w", target, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	if err := syncDir(u.Slots.Dir); err != nil {
		return nil, err
	}
	u.hook(StepSlotCleared)
	log.Info("update: writing the binary into the inactive slot", "dir", dir)
	first := true
	if err := writeAtomic(filepath.Join(dir, BinaryName), b.Binary, 0o755, func(int) {
		if first {
			first = false
			u.hook(StepBinaryPartial)
		}
	}); err != nil {
		return nil, err
	}
	u.hook(StepBinaryWritten)
	if err := writeAtomic(filepath.Join(dir, SignatureName), b.Signature, 0o644, nil); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, ManifestName), b.ManifestRaw, 0o644, nil); err != nil {
		return nil, err
	}
	if err := u.Slots.CheckSlot(target); err != nil {
		return nil, fmt.Errorf("firmware: slot %s does not read back as written: %w", target, err)
	}
	u.hook(StepManifestWritten)

	trial := Pointer{Slot: target, Status: StatusTrial, Previous: cur.Slot, Version: m.Version, SHA256: m.SHA256,
		History: append(cur.History, fmt.Sprintf("trial %s in slot %s", m.Version, target))}
	if err := u.Slots.Store(trial, now()); err != nil {
		return nil, err
	}
	log.Info("update: switched to the new slot, in trial; running its self-test", "previous", orInstalled(cur.Slot))
	u.hook(StepPointerTrial)

	out, terr := u.selftest(ctx, u.Slots.Binary(trial))
	u.hook(StepSelftestDone)
	res := &Result{Manifest: m, Slot: target, Output: out}
	if terr != nil {
		res.RolledBack, res.Reason = true, terr.Error()
		back := u.Slots.previousPointer(trial, fmt.Sprintf("version %s failed its self-test: %v", m.Version, terr))
		if err := u.Slots.Store(back, now()); err != nil {
			return res, fmt.Errorf("firmware: self-test failed (%v) and the rollback could not be written: %w; the next boot rolls back", terr, err)
		}
		u.hook(StepPointerFinal)
		log.Error("update: self-test failed; rolled back", "to", orInstalled(back.Slot), "reason", terr)
		return res, fmt.Errorf("%w: %v; still running %s", ErrRolledBack, terr, orInstalled(back.Slot))
	}
	good := trial
	good.Status = StatusGood
	good.History = append(good.History, fmt.Sprintf("good %s in slot %s", m.Version, target))
	if err := u.Slots.Store(good, now()); err != nil {
		return res, err
	}
	u.hook(StepPointerFinal)
	res.Installed = true
	log.Info("update: self-test passed; the new version is current")
	return res, nil
}

// selftest runs the new binary's self-test within the deadline and returns
// the tail of its output.
func (u *Updater) selftest(ctx context.Context, bin string) (string, error) {
	timeout := u.SelftestTimeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	args := u.SelftestArgs
	if args == nil {
		args = []string{"firmware", "selftest"}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), fmt.Errorf("self-test did not finish within %v", timeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("self-test failed (%v): %s", err, lastLine(out.String()))
	}
	return out.String(), nil
}

// tail keeps the last 4 KiB written.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no output"
	}
	return s
}
