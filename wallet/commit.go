package wallet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"taobox/chain/types"
)

// Commit is a weights commit waiting for its reveal: everything a
// reveal_weights call must repeat so its hash matches the commit_weights
// call (types.CommitHash). The salt is secret until the reveal, so it is
// kept like a key: mode 0600 in the wallet's directory.
type Commit struct {
	Netuid     types.Netuid    `json:"netuid"`
	Hotkey     types.AccountID `json:"hotkey"`
	UIDs       []uint16        `json:"uids"`
	Weights    []uint16        `json:"weights"`
	Salt       types.Hash      `json:"salt"` // 32 random bytes
	VersionKey uint64          `json:"version_key"`
	Hash       types.Hash      `json:"hash"` // the committed hash
	Block      uint64          `json:"block,omitempty"`
}

func (w *Wallet) commitPath(netuid types.Netuid, hotkey types.AccountID) string {
	return filepath.Join(w.Dir(), "commits", fmt.Sprintf("%d-%s.json", netuid, hotkey))
}

// SaveCommit stores c, replacing an earlier commit of the same hotkey and
// subnet, and returns the file's path.
func (w *Wallet) SaveCommit(c *Commit) (string, error) {
	if err := mkdirPrivate(filepath.Join(w.Dir(), "commits")); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("wallet: %w", err)
	}
	p := w.commitPath(c.Netuid, c.Hotkey)
	return p, WriteFileAtomic(p, append(data, '\n'), true)
}

// LoadCommit returns the stored commit of hotkey on netuid; the error wraps
// ErrNotFound when there is none.
func (w *Wallet) LoadCommit(netuid types.Netuid, hotkey types.AccountID) (*Commit, error) {
	p := w.commitPath(netuid, hotkey)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: wallet %q has no weights commit of %s on subnet %d (commit first: taobox tx weights commit)",
			ErrNotFound, w.Name, hotkey, netuid)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	var c Commit
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if c.Netuid != netuid || c.Hotkey != hotkey || types.CommitHash(c.Hotkey, c.Netuid, c.UIDs, c.Weights, c.Salt[:], c.VersionKey) != c.Hash {
		return nil, fmt.Errorf("%w: %s does not hash to its commit", ErrCorrupt, p)
	}
	return &c, nil
}

// DeleteCommit removes the stored commit of hotkey on netuid, if any.
func (w *Wallet) DeleteCommit(netuid types.Netuid, hotkey types.AccountID) error {
	if err := os.Remove(w.commitPath(netuid, hotkey)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("wallet: %w", err)
	}
	return nil
}
