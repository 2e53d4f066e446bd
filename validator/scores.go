package validator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"taobox/chain/state"
	"taobox/chain/types"
)

// Scores: one exponential moving average per uid, persisted so a restart
// keeps what the validator has learnt (the incumbent template keeps scores
// in memory unless a subclass saves them, so a restart resets its weights
// and costs vtrust).
//
// Round score r = gate × speed: gate is 1 if every answer of the round
// verified, else 0; speed is the miner's tokens/s over the best passing
// miner's tokens/s this round (so the fastest honest miner gets 1).
// EMA: s ← (1−α)·s + α·r with α = DefaultAlpha = 0.2: the half-life is
// ln 2/−ln 0.8 ≈ 3.1 rounds, so a miner that starts cheating loses half its
// weight within about three rounds, while one slow round (a noisy,
// shared machine) moves the score by a fifth of the gap. A cheater that
// never passes stays at exactly 0 however long it runs. A uid whose hotkey
// changed (deregistered, replaced) restarts at 0.

// DefaultAlpha is the EMA weight of the newest round.
const DefaultAlpha = 0.2

// stateVersion is the version of the state file's format.
const stateVersion = 1

// StateFile is the name of the state file inside Config.StateDir.
const StateFile = "validator-state.json"

// ErrCorruptState: the state file exists but cannot be used.
var ErrCorruptState = errors.New("validator: corrupt state file")

// Record is one uid's score.
type Record struct {
	UID    uint16          `json:"uid"`
	Hotkey types.AccountID `json:"hotkey"`
	Score  float64         `json:"score"`
	Rounds uint64          `json:"rounds"` // rounds it was queried in
	Passes uint64          `json:"passes"` // rounds it passed
}

// PendingCommit is a weights commit waiting for its reveal window.
type PendingCommit struct {
	Hash       types.Hash `json:"hash"`
	UIDs       []uint16   `json:"uids"`
	Weights    []uint16   `json:"weights"`
	Salt       []byte     `json:"salt"`
	VersionKey uint64     `json:"version_key"`
	Epoch      uint64     `json:"epoch"`       // the epoch the commit lands in
	Submitted  uint64     `json:"submitted"`   // height when it was submitted
	RevealedAt uint64     `json:"revealed_at"` // height the reveal was submitted (0: not yet)
	// LandedAt is the block the commit landed in (the neuron's LastUpdate
	// once it moved past Submitted; 0: not seen yet) and LandedEpoch the
	// epoch it landed in, fixed when the landing is first seen (CommitStatus).
	LandedAt    uint64 `json:"landed_at,omitempty"`
	LandedEpoch uint64 `json:"landed_epoch,omitempty"`
}

// State is what the validator persists.
type State struct {
	Version int             `json:"version"`
	Netuid  uint16          `json:"netuid"`
	Hotkey  types.AccountID `json:"hotkey"` // the validator's
	Round   uint64          `json:"round"`
	Scores  []Record        `json:"scores"` // ascending uid
	// LastSubmit is the height at which weights (or a commit) were last
	// submitted; it keeps a restarted validator from resubmitting before
	// the chain has recorded the first one.
	LastSubmit uint64         `json:"last_submit"`
	Pending    *PendingCommit `json:"pending,omitempty"`
}

// record returns the record of uid, creating it (score 0) if needed.
func (s *State) record(uid uint16, hotkey types.AccountID) *Record {
	i, ok := slices.BinarySearchFunc(s.Scores, uid, func(r Record, u uint16) int { return int(r.UID) - int(u) })
	if !ok {
		s.Scores = slices.Insert(s.Scores, i, Record{UID: uid, Hotkey: hotkey})
	}
	r := &s.Scores[i]
	if r.Hotkey != hotkey {
		*r = Record{UID: uid, Hotkey: hotkey}
	}
	return r
}

// Sync drops the scores of uids that no longer exist and resets those
// whose hotkey changed. It returns the uids reset or dropped.
func (s *State) Sync(mg *state.Metagraph) []uint16 {
	var changed []uint16
	out := s.Scores[:0]
	for _, r := range s.Scores {
		if int(r.UID) >= len(mg.Neurons) {
			changed = append(changed, r.UID)
			continue
		}
		if hk := mg.Neurons[r.UID].Hotkey; hk != r.Hotkey {
			changed = append(changed, r.UID)
			r = Record{UID: r.UID, Hotkey: hk}
		}
		out = append(out, r)
	}
	s.Scores = out
	return changed
}

// Update folds round score r ∈ [0, 1] for uid into its EMA.
func (s *State) Update(uid uint16, hotkey types.AccountID, r, alpha float64, passed bool) float64 {
	rec := s.record(uid, hotkey)
	rec.Score = (1-alpha)*rec.Score + alpha*r
	rec.Rounds++
	if passed {
		rec.Passes++
	}
	return rec.Score
}

// Vector returns the scores of uids 0..n-1 (0 for uids without a record).
func (s *State) Vector(n int) []float64 {
	out := make([]float64, n)
	for _, r := range s.Scores {
		if int(r.UID) < n {
			out[r.UID] = r.Score
		}
	}
	return out
}

// LoadState reads the state file at path. A missing file gives a fresh
// state and no error. A file that does not parse, or has another version,
// netuid or hotkey, gives an error wrapping ErrCorruptState (and the state
// is left alone); the caller decides whether to start afresh. Temporary
// files a crash left beside it (SaveState's, never renamed) are removed.
func LoadState(path string, netuid uint16, hotkey types.AccountID) (*State, error) {
	fresh := &State{Version: stateVersion, Netuid: netuid, Hotkey: hotkey}
	if ents, err := os.ReadDir(filepath.Dir(path)); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), filepath.Base(path)+".tmp") && e.Type().IsRegular() {
				os.Remove(filepath.Join(filepath.Dir(path), e.Name()))
			}
		}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	switch {
	case s.Version != stateVersion:
		return nil, fmt.Errorf("%w: %s: version %d, this taobox reads version %d", ErrCorruptState, path, s.Version, stateVersion)
	case s.Netuid != netuid:
		return nil, fmt.Errorf("%w: %s: scores of subnet %d, not %d", ErrCorruptState, path, s.Netuid, netuid)
	case s.Hotkey != hotkey:
		return nil, fmt.Errorf("%w: %s: scores of validator %s, not %s", ErrCorruptState, path, s.Hotkey, hotkey)
	}
	if !slices.IsSortedFunc(s.Scores, func(a, b Record) int { return int(a.UID) - int(b.UID) }) {
		return nil, fmt.Errorf("%w: %s: scores out of uid order", ErrCorruptState, path)
	}
	for i, r := range s.Scores {
		if i > 0 && s.Scores[i-1].UID == r.UID || !(r.Score >= 0 && r.Score <= 1) {
			return nil, fmt.Errorf("%w: %s: bad record for uid %d", ErrCorruptState, path, r.UID)
		}
	}
	return &s, nil
}

// SaveState writes s to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A crash at
// any point leaves either the old file or the new one.
func SaveState(path string, s *State) error {
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// renameAside moves a corrupt state file to <path>.corrupt, or the first
// free <path>.corrupt.N, so that an earlier one is kept, and returns the
// name it chose.
func renameAside(path string) (string, error) {
	to := path + ".corrupt"
	for i := 1; ; i++ {
		_, err := os.Lstat(to)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		to = fmt.Sprintf("%s.corrupt.%d", path, i)
	}
	if err := os.Rename(path, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return to, nil
}
