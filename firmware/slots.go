package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"taobox/internal/fsutil"
)

// Slot states of Pointer.Status.
const (
	StatusGood  = "good"  // the slot passed its self-test (or is the installed binary)
	StatusTrial = "trial" // the slot was switched to and is being tested
)

// PointerName is the current-slot pointer's file in the firmware directory.
const PointerName = "current"

// maxPointerBytes caps the pointer file.
const maxPointerBytes = 64 << 10

// Pointer is the content of <firmware>/current: which binary boots. It is
// replaced only whole (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves the old or the new pointer, never a mix.
type Pointer struct {
	Slot     string   `json:"slot"`              // "a", "b", or "" for the installed binary
	Status   string   `json:"status"`            // StatusGood or StatusTrial
	Previous string   `json:"previous"`          // the slot to return to if a trial fails ("" the installed binary)
	Version  string   `json:"version,omitempty"` // the slot's release version
	SHA256   string   `json:"sha256,omitempty"`  // the slot binary's sha256
	Since    string   `json:"since,omitempty"`   // when this pointer was written (RFC 3339)
	Note     string   `json:"note,omitempty"`    // why the last rollback happened
	History  []string `json:"history,omitempty"` // last few events, newest last
}

// Slots manages the A/B slots in Dir (<data>/firmware): slot-a/ and
// slot-b/, each with the binary (taobox) and its manifest.json, and the
// pointer file `current`.
type Slots struct {
	Dir       string       // <data>/firmware
	Installed string       // the installed binary, booted when no slot is current
	Logger    *slog.Logger // nil: discard
}

func (s *Slots) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s.Logger
}

// SlotDir returns the directory of slot "a" or "b".
func (s *Slots) SlotDir(slot string) string { return filepath.Join(s.Dir, "slot-"+slot) }

// Binary returns the binary a pointer boots: the slot's, or Installed.
func (s *Slots) Binary(p Pointer) string {
	if p.Slot == "" {
		return s.Installed
	}
	return filepath.Join(s.SlotDir(p.Slot), BinaryName)
}

// Other returns the slot an update installs into: the inactive one.
func Other(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

// Load reads the pointer. A missing pointer is the installed binary, good.
// An unreadable or damaged one is an error (Recover replaces it).
func (s *Slots) Load() (Pointer, error) {
	b, err := fsutil.ReadCapped(filepath.Join(s.Dir, PointerName), maxPointerBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return Pointer{Status: StatusGood}, nil
	}
	if err != nil {
		return Pointer{}, fmt.Errorf("firmware: read pointer: %w", err)
	}
	var p Pointer
	if err := json.Unmarshal(b, &p); err != nil {
		return Pointer{}, fmt.Errorf("firmware: pointer %s is damaged: %w", filepath.Join(s.Dir, PointerName), err)
	}
	if (p.Slot != "" && p.Slot != "a" && p.Slot != "b") || (p.Status != StatusGood && p.Status != StatusTrial) ||
		(p.Previous != "" && p.Previous != "a" && p.Previous != "b") {
		return Pointer{}, fmt.Errorf("firmware: pointer %s is damaged: slot %q status %q previous %q", filepath.Join(s.Dir, PointerName), p.Slot, p.Status, p.Previous)
	}
	return p, nil
}

// Store replaces the pointer atomically and durably.
func (s *Slots) Store(p Pointer, now time.Time) error {
	p.Since = now.UTC().Format(time.RFC3339)
	if len(p.History) > 8 {
		p.History = p.History[len(p.History)-8:]
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	return writeAtomic(filepath.Join(s.Dir, PointerName), append(b, '\n'), 0o644, nil)
}

// Recover is the first thing a boot does. A pointer left in trial (the
// box crashed or lost power during an update's self-test) is switched back
// to its previous slot; a damaged pointer, or one whose binary is missing
// or does not match its manifest, falls back to the previous slot or the
// installed binary. It returns the pointer to boot and whether it changed.
func (s *Slots) Recover(now time.Time) (Pointer, bool, error) {
	log := s.log()
	p, err := s.Load()
	if err != nil {
		log.Error("firmware pointer damaged; booting the installed binary", "err", err)
		np := Pointer{Status: StatusGood, Note: "pointer damaged: " + err.Error()}
		return np, true, s.Store(np, now)
	}
	if p.Status == StatusTrial {
		reason := fmt.Sprintf("trial of slot %s (version %s) never finished (crash or power loss during the update)", orInstalled(p.Slot), p.Version)
		log.Warn("rolling back an unfinished update", "from", orInstalled(p.Slot), "to", orInstalled(p.Previous), "reason", reason)
		np := s.previousPointer(p, reason)
		return np, true, s.Store(np, now)
	}
	if p.Slot != "" {
		if err := s.CheckSlot(p.Slot); err != nil {
			reason := fmt.Sprintf("slot %s is not bootable: %v", p.Slot, err)
			log.Error("current slot damaged; falling back", "reason", reason)
			np := s.previousPointer(p, reason)
			if np.Slot != "" && s.CheckSlot(np.Slot) != nil {
				np = Pointer{Status: StatusGood, Note: reason, History: np.History}
			}
			return np, true, s.Store(np, now)
		}
	}
	return p, false, nil
}

// previousPointer is the good pointer to p.Previous, with the slot's
// manifest details when it has them.
func (s *Slots) previousPointer(p Pointer, reason string) Pointer {
	np := Pointer{Slot: p.Previous, Status: StatusGood, Note: reason,
		History: append(p.History, "rollback: "+reason)}
	if np.Slot != "" {
		if m, err := s.SlotManifest(np.Slot); err == nil {
			np.Version, np.SHA256 = m.Version, m.SHA256
		}
		np.Previous = ""
	}
	return np
}

func orInstalled(slot string) string {
	if slot == "" {
		return "installed"
	}
	return slot
}

// SlotManifest reads a slot's manifest.json.
func (s *Slots) SlotManifest(slot string) (Manifest, error) {
	var m Manifest
	b, err := fsutil.ReadCapped(filepath.Join(s.SlotDir(slot), ManifestName), MaxManifestBytes)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	return m, m.Validate()
}

// CheckSlot reports whether a slot is bootable: its binary exists, is
// executable, and has the size and SHA-256 of its manifest.
func (s *Slots) CheckSlot(slot string) error {
	m, err := s.SlotManifest(slot)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(s.SlotDir(slot), BinaryName))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", f.Name())
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		return fmt.Errorf("%w: %s is %d bytes, sha256 %x; manifest says %d, %s", ErrHashMismatch, f.Name(), n, h.Sum(nil), m.Size, m.SHA256)
	}
	return nil
}

// writeAtomic writes data to path durably: path.tmp, fsync, rename, fsync
// of the directory. hook (may be nil) is called after every chunk of 1 MiB
// written to the temporary file, with the bytes so far; tests crash there.
func writeAtomic(path string, data []byte, mode os.FileMode, hook func(written int)) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	const chunk = 1 << 20
	for off := 0; off < len(data); off += chunk {
		if _, err := f.Write(data[off:min(off+chunk, len(data))]); err != nil {
			f.Close()
			return fmt.Errorf("firmware: write %s: %w", tmp, err)
		}
		if hook != nil {
			hook(min(off+chunk, len(data)))
		}
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("firmware: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("firmware: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("firmware: fsync %s: %w", dir, err)
	}
	return nil
}
