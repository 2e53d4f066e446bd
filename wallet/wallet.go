// Package wallet keeps coldkeys and hotkeys on disk, in the layout the
// bittensor wallet uses, under a root directory:
//
//	<root>/wallets/<name>/coldkey
//	<root>/wallets/<name>/hotkeys/<hotkey>
//	<root>/wallets/<name>/commits/<netuid>-<hotkey address>.json   (weights commits awaiting reveal)
//
// The root is $TAOBOX_HOME, or ~/.taobox when that is unset (DefaultRoot);
// the CLI's --wallets flag overrides it.
//
// A key file is one JSON object, {"address": "5…", "seed": "<64 hex digits>"}:
// the ed25519 seed and the SS58 address (prefix 42) of its public key, which
// Load checks against the seed so a damaged or edited file is caught. Files
// are written atomically (a temporary file, fsync, then a hard link or
// rename into place, and an fsync of the directory), with mode 0600 in
// directories of mode 0700. A key is never overwritten, and a key file that
// the group or others may read is refused until the user runs chmod 600.
//
// Keys are stored in plain text for now: encryption at rest (a password,
// Argon2 and a secretbox, like btwallet's coldkey) comes in a later issue.
// Until then, anyone who can read the file can spend from the coldkey.
//
// A coldkey owns funds and stake and signs transfers, staking, registration
// and governance; a hotkey identifies a neuron and signs weights and serve
// calls, so a miner or validator box needs only its hotkey.
package wallet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"taobox/chain/types"
)

// Sentinel errors; every error of this package that is one of these cases
// wraps the sentinel, so errors.Is finds it.
var (
	// ErrExists: a wallet or hotkey of that name is already on disk.
	ErrExists = errors.New("wallet: already exists")
	// ErrNotFound: no wallet or hotkey of that name.
	ErrNotFound = errors.New("wallet: not found")
	// ErrBadName: a wallet or hotkey name that is not a safe file name.
	ErrBadName = errors.New("wallet: bad name")
	// ErrPermissions: a key file that the group or others may access.
	ErrPermissions = errors.New("wallet: key file permissions too open")
	// ErrCorrupt: a key file that is not valid JSON, has a bad seed, or
	// whose address does not match its seed.
	ErrCorrupt = errors.New("wallet: corrupt key file")
)

// EnvHome names the environment variable that sets the default root.
const EnvHome = "TAOBOX_HOME"

// maxKeyFileSize bounds what Load reads: a key file is about 130 bytes.
const maxKeyFileSize = 4096

// DefaultRoot returns $TAOBOX_HOME if set, else ~/.taobox.
func DefaultRoot() (string, error) {
	if h := os.Getenv(EnvHome); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("wallet: no home directory (set %s): %w", EnvHome, err)
	}
	return filepath.Join(home, ".taobox"), nil
}

// Dir returns the directory of wallet name under root.
func Dir(root, name string) string { return filepath.Join(root, "wallets", name) }

// CheckName reports whether name may name a wallet or a hotkey: 1 to 64
// letters, digits, '.', '_' or '-', not starting with '.' or '-' (so a name
// is never a hidden file or taken for a flag).
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: %q must be 1 to 64 characters", ErrBadName, name)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: %q must not start with '.' or '-'", ErrBadName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q may hold only letters, digits, '.', '_' and '-'", ErrBadName, name)
		}
	}
	return nil
}

// Wallet is a loaded wallet: its coldkey, and its hotkeys read on demand.
type Wallet struct {
	Name    string
	Root    string
	coldkey ed25519.PrivateKey
}

// Dir returns the wallet's directory.
func (w *Wallet) Dir() string { return Dir(w.Root, w.Name) }

// Coldkey returns the coldkey's private key. The caller must not modify it.
func (w *Wallet) Coldkey() ed25519.PrivateKey { return w.coldkey }

// ColdkeyAddress returns the coldkey's account.
func (w *Wallet) ColdkeyAddress() types.AccountID { return types.AccountIDFromPrivateKey(w.coldkey) }

// Hotkey loads hotkey name of the wallet; the error wraps ErrNotFound when
// there is none, and ErrPermissions or ErrCorrupt as LoadKeyFile says.
func (w *Wallet) Hotkey(name string) (ed25519.PrivateKey, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(w.Dir(), "hotkeys", name)
	k, err := LoadKeyFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: wallet %q has no hotkey %q (create it: taobox wallet new-hotkey %s %s)", ErrNotFound, w.Name, name, w.Name, name)
	}
	return k, err
}

// HotkeyNames returns the names of the wallet's hotkeys, sorted.
func (w *Wallet) HotkeyNames() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(w.Dir(), "hotkeys"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && CheckName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Create makes wallet name under root with a new random coldkey. It fails
// with ErrExists if the wallet already has a coldkey.
func Create(root, name string) (*Wallet, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("wallet: random seed: %w", err)
	}
	return Import(root, name, seed)
}

// Import makes wallet name under root with the coldkey of seed (32 bytes),
// as Create does. Devnets use it for their deterministic accounts.
func Import(root, name string, seed []byte) (*Wallet, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("wallet: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	dir := Dir(root, name)
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	if err := writeKeyFile(filepath.Join(dir, "coldkey"), seed); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: wallet %q (%s) has a coldkey already; it is never overwritten", ErrExists, name, dir)
		}
		return nil, err
	}
	return &Wallet{Name: name, Root: root, coldkey: ed25519.NewKeyFromSeed(seed)}, nil
}

// CreateHotkey adds a new random hotkey to an existing wallet and returns
// its account. It fails with ErrNotFound if the wallet does not exist and
// with ErrExists if the hotkey does.
func CreateHotkey(root, wallet, hotkey string) (types.AccountID, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return types.AccountID{}, fmt.Errorf("wallet: random seed: %w", err)
	}
	return ImportHotkey(root, wallet, hotkey, seed)
}

// ImportHotkey adds the hotkey of seed to an existing wallet, as
// CreateHotkey does.
func ImportHotkey(root, wallet, hotkey string, seed []byte) (types.AccountID, error) {
	if err := CheckName(wallet); err != nil {
		return types.AccountID{}, err
	}
	if err := CheckName(hotkey); err != nil {
		return types.AccountID{}, err
	}
	if len(seed) != ed25519.SeedSize {
		return types.AccountID{}, fmt.Errorf("wallet: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	dir := Dir(root, wallet)
	if _, err := os.Stat(filepath.Join(dir, "coldkey")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return types.AccountID{}, notFound(root, wallet)
		}
		return types.AccountID{}, fmt.Errorf("wallet: %w", err)
	}
	hdir := filepath.Join(dir, "hotkeys")
	if err := mkdirPrivate(hdir); err != nil {
		return types.AccountID{}, err
	}
	if err := writeKeyFile(filepath.Join(hdir, hotkey), seed); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return types.AccountID{}, fmt.Errorf("%w: wallet %q has a hotkey %q already; it is never overwritten", ErrExists, wallet, hotkey)
		}
		return types.AccountID{}, err
	}
	return types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed)), nil
}

// Load reads wallet name's coldkey. The error wraps ErrNotFound when the
// wallet does not exist, and ErrPermissions or ErrCorrupt as LoadKeyFile
// says.
func Load(root, name string) (*Wallet, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	k, err := LoadKeyFile(filepath.Join(Dir(root, name), "coldkey"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(root, name)
	}
	if err != nil {
		return nil, err
	}
	return &Wallet{Name: name, Root: root, coldkey: k}, nil
}

func notFound(root, name string) error {
	return fmt.Errorf("%w: no wallet %q in %s (create it: taobox wallet create %s; list them: taobox wallet list)",
		ErrNotFound, name, filepath.Join(root, "wallets"), name)
}

// List returns the names of the wallets under root that have a coldkey
// file, sorted. A missing root is an empty list.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "wallets"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "wallets", e.Name(), "coldkey")); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// keyFile is the JSON form of a key file.
type keyFile struct {
	Address string `json:"address"`
	Seed    string `json:"seed"`
}

// LoadKeyFile reads one key file and returns its private key. It refuses,
// with an error that says what to do, a file that the group or others may
// access (ErrPermissions; not checked on Windows), a file that is not the
// JSON object {"address", "seed"} or whose seed is not 64 hex digits, and a
// file whose address is not the seed's (ErrCorrupt). A missing file gives
// an error wrapping fs.ErrNotExist.
func LoadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o, so others may read the key; run: chmod 600 %s",
			ErrPermissions, path, perm, path)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, a key file is about 130", ErrCorrupt, path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize))
	if err != nil {
		return nil, fmt.Errorf("wallet: reading %s: %w", path, err)
	}
	return parseKeyFile(path, data)
}

func parseKeyFile(path string, data []byte) (ed25519.PrivateKey, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var kf keyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w: %s is not a key file ({\"address\", \"seed\"}): %v", ErrCorrupt, path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s has data after the key object", ErrCorrupt, path)
	}
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s: seed must be %d hex digits", ErrCorrupt, path, 2*ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if got := types.AccountIDFromPrivateKey(priv).String(); got != kf.Address {
		return nil, fmt.Errorf("%w: %s: the address %q is not the seed's (%s); the file was edited or damaged, restore it from a backup",
			ErrCorrupt, path, kf.Address, got)
	}
	return priv, nil
}

// writeKeyFile writes the key file of seed at path, which must not exist
// (the error then wraps fs.ErrExist).
func writeKeyFile(path string, seed []byte) error {
	priv := ed25519.NewKeyFromSeed(seed)
	data, err := json.Marshal(keyFile{Address: types.AccountIDFromPrivateKey(priv).String(), Seed: hex.EncodeToString(seed)})
	if err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	return WriteFileAtomic(path, append(data, '\n'), false)
}

// WriteFileAtomic writes data to path with mode 0600 so that a crash leaves
// either the old file or the complete new one: it writes a temporary file in
// the same directory, syncs it, moves it into place and syncs the
// directory. With replace false it fails (wrapping fs.ErrExist) when path
// exists, without touching it.
func WriteFileAtomic(path string, data []byte, replace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("wallet: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("wallet: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("wallet: syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	if replace {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("wallet: %w", err)
		}
	} else {
		// A hard link fails if path exists, with no window in which another
		// writer could be overwritten; rename would replace it.
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("wallet: %s: %w", path, fs.ErrExist)
			}
			// Filesystems without hard links: check, then rename.
			if _, serr := os.Lstat(path); serr == nil {
				return fmt.Errorf("wallet: %s: %w", path, fs.ErrExist)
			}
			if err := os.Rename(tmpName, path); err != nil {
				return fmt.Errorf("wallet: %w", err)
			}
		} else {
			os.Remove(tmpName)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename or link in dir durable; where directories cannot
// be synced (some platforms), it does nothing.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// mkdirPrivate creates dir and its missing parents; the directories it
// creates get mode 0700.
func mkdirPrivate(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("wallet: %s is not a directory", dir)
		}
		return nil
	}
	if err := mkdirPrivate(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("wallet: %w", err)
	}
	return nil
}
