// Package wallet keeps coldkeys and hotkeys on disk, in the layout the
// bittensor wallet uses, under a root directory:
//
//	<root>/wallets/<name>/coldkey
//	<root>/wallets/<name>/coldkeypub.txt  (the coldkey's address only)
//	<root>/wallets/<name>/hotkeys/<hotkey>
//	<root>/wallets/<name>/commits/<netuid>-<hotkey address>.json   (weights commits awaiting reveal)
//
// The root is $TAOBOX_HOME, or ~/.taobox when that is unset (DefaultRoot);
// the CLI's --wallets flag overrides it.
//
// A key file holds one ed25519 seed in one of two formats:
//
//   - encrypted (the default for coldkeys and hotkeys; see keyfile.go):
//     Argon2id with a per-file random salt derives the key of an
//     XChaCha20-Poly1305 box with a random nonce; the header (magic,
//     version, KDF parameters, salt, nonce, address) is the box's
//     additional data, and a trailing SHA-256 tells damage (ErrCorrupt)
//     from a wrong password (ErrWrongPassword);
//   - plain JSON {"address": "5…", "seed": "<64 hex digits>"}, which earlier
//     releases wrote and devnets still write for their throwaway keys.
//     Anyone who can read such a file can sign with it; 'taobox wallet
//     encrypt' converts it in place.
//
// Either format carries the key's SS58 address (prefix 42), so addresses
// are known without a password and a damaged or edited file is caught.
// Files are written atomically (a temporary file, fsync, then a hard link
// or rename into place, and an fsync of the directory), with mode 0600 in
// directories of mode 0700. A key is never overwritten, and a key file that
// the group or others may access is refused until the user runs chmod 600.
//
// Seeds come from BIP-39 mnemonics (mnemonic.go) the way Substrate's
// ed25519 from_phrase derives them, so a phrase restores the same account
// in taobox and in Substrate tools. Passwords come from an Unlocker
// (unlock.go): a file descriptor, a file, systemd's credentials directory,
// or a terminal prompt, never an environment variable.
//
// Signing policy: a coldkey owns funds and stake and signs transfers,
// staking, registration and governance; a hotkey identifies a neuron and
// signs weights, serve calls and tasks, so a miner or validator box needs
// only its hotkey (and, to show balances, coldkeypub.txt). Load reads
// addresses only; a key is decrypted when Coldkey or Hotkey is called.
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
	"strconv"

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
	ErrPermissions = errors.New("wallet: file permissions too open") // a key file or a password file
	// ErrCorrupt: a key file that is damaged or edited: a plain file that
	// is not valid JSON, has a bad seed or an address that is not its
	// seed's; an encrypted file of the wrong length, version, KDF bounds or
	// checksum.
	ErrCorrupt = errors.New("wallet: corrupt key file")
)

// EnvHome names the environment variable that sets the default root.
const EnvHome = "TAOBOX_HOME"

// maxKeyFileSize bounds what a key file read takes in: a plain key file is
// about 130 bytes, an encrypted one 171.
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

// Wallet is an opened wallet: its coldkey's address, and its keys read on
// demand. Load reads no secret; Coldkey and Hotkey decrypt with Unlock.
type Wallet struct {
	Name string
	Root string
	// Unlock gives the password of encrypted keys; nil means only plain
	// key files can be used (an encrypted one then fails with
	// ErrNoPassword).
	Unlock *Unlocker

	coldAddr types.AccountID
	hasCold  bool               // the coldkey file is here (not only coldkeypub.txt)
	coldErr  error              // the coldkey file is here but unusable (its address came from coldkeypub.txt)
	coldkey  ed25519.PrivateKey // cached once unlocked
}

// Dir returns the wallet's directory.
func (w *Wallet) Dir() string { return Dir(w.Root, w.Name) }

// ColdkeyPath returns the path of the wallet's coldkey file.
func (w *Wallet) ColdkeyPath() string { return filepath.Join(w.Dir(), "coldkey") }

// HotkeyPath returns the path of hotkey name's file.
func (w *Wallet) HotkeyPath(name string) string { return filepath.Join(w.Dir(), "hotkeys", name) }

// HasColdkey reports whether the coldkey itself is on this machine, not only
// its address (coldkeypub.txt), as on an appliance that holds hotkeys only.
func (w *Wallet) HasColdkey() bool { return w.hasCold }

// ColdkeyErr returns why the coldkey file on this machine cannot be used
// (damaged, unreadable), nil when it can or is not here. Such a wallet
// still loads from its coldkeypub.txt: its hotkeys serve and its address
// shows; only the coldkey cannot sign.
func (w *Wallet) ColdkeyErr() error { return w.coldErr }

// ColdkeyAddress returns the coldkey's account.
func (w *Wallet) ColdkeyAddress() types.AccountID { return w.coldAddr }

// Coldkey returns the coldkey's private key, decrypting it (with
// w.Unlock) the first time. The caller must not modify it. Without the
// coldkey file the error wraps ErrNotFound and says how to sign elsewhere.
func (w *Wallet) Coldkey() (ed25519.PrivateKey, error) {
	if w.coldkey != nil {
		return w.coldkey, nil
	}
	if w.coldErr != nil {
		return nil, fmt.Errorf("the coldkey of wallet %q cannot be used: %w; move %s aside and restore it from its mnemonic (taobox wallet regen-coldkey %s --mnemonic-file FILE)",
			w.Name, w.coldErr, w.ColdkeyPath(), w.Name)
	}
	if !w.hasCold {
		return nil, fmt.Errorf("%w: wallet %q holds only the coldkey's address on this machine, so it cannot sign this; "+
			"sign on the machine that holds the coldkey (taobox tx ... --offline --out FILE) and submit it here (taobox tx submit FILE)",
			ErrNotFound, w.Name)
	}
	k, err := LoadKeyFile(w.ColdkeyPath(), w.Unlock.named("the coldkey of wallet "+strconv.Quote(w.Name)))
	if err != nil {
		return nil, err
	}
	if types.AccountIDFromPrivateKey(k) != w.coldAddr {
		return nil, fmt.Errorf("%w: %s changed while in use", ErrCorrupt, w.ColdkeyPath())
	}
	w.coldkey = k
	return k, nil
}

// ColdkeyInfo says whether the coldkey file is encrypted.
func (w *Wallet) ColdkeyInfo() (KeyInfo, error) { return ReadKeyInfo(w.ColdkeyPath()) }

// Hotkey loads and, if encrypted, decrypts hotkey name of the wallet with
// w.Unlock; the error wraps ErrNotFound when there is none, and
// ErrPermissions, ErrCorrupt, ErrWrongPassword or ErrNoPassword as
// LoadKeyFile says.
func (w *Wallet) Hotkey(name string) (ed25519.PrivateKey, error) {
	return LoadHotkey(w.Root, w.Name, name, w.Unlock)
}

// HotkeyAddress returns hotkey name's account without decrypting it.
func (w *Wallet) HotkeyAddress(name string) (types.AccountID, error) {
	info, err := w.HotkeyInfo(name)
	return info.Address, err
}

// HotkeyInfo reads hotkey name's address and format without a password.
func (w *Wallet) HotkeyInfo(name string) (KeyInfo, error) {
	if err := CheckName(name); err != nil {
		return KeyInfo{}, err
	}
	info, err := ReadKeyInfo(w.HotkeyPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return KeyInfo{}, noHotkey(w.Name, name)
	}
	return info, err
}

func noHotkey(wallet, name string) error {
	return fmt.Errorf("%w: wallet %q has no hotkey %q (create it: taobox wallet new-hotkey %s %s)", ErrNotFound, wallet, name, wallet, name)
}

// LoadHotkey reads hotkey of wallet under root and decrypts it with u (nil:
// plain files only). It needs neither the coldkey nor coldkeypub.txt, so it
// is what a miner or validator appliance calls. Errors wrap ErrNotFound,
// ErrBadName, ErrPermissions, ErrCorrupt, ErrWrongPassword or ErrNoPassword.
func LoadHotkey(root, wallet, hotkey string, u *Unlocker) (ed25519.PrivateKey, error) {
	if err := CheckName(wallet); err != nil {
		return nil, err
	}
	if err := CheckName(hotkey); err != nil {
		return nil, err
	}
	k, err := LoadKeyFile(filepath.Join(Dir(root, wallet), "hotkeys", hotkey),
		u.named("hotkey "+strconv.Quote(hotkey)+" of wallet "+strconv.Quote(wallet)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noHotkey(wallet, hotkey)
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

// Create makes wallet name under root with a new random coldkey in a PLAIN
// key file; it fails with ErrExists if the wallet already has a coldkey.
// It is for devnets and tests: users get encrypted keys from SaveColdkey.
func Create(root, name string) (*Wallet, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("wallet: random seed: %w", err)
	}
	return Import(root, name, seed)
}

// Import makes wallet name under root with the coldkey of seed (32 bytes)
// in a PLAIN key file, as Create does. Devnets use it for their
// deterministic, throwaway accounts.
func Import(root, name string, seed []byte) (*Wallet, error) {
	return SaveColdkey(root, name, seed, nil)
}

// CreateHotkey adds a new random hotkey, in a PLAIN key file, to an
// existing wallet and returns its account. It fails with ErrNotFound if the
// wallet does not exist and with ErrExists if the hotkey does. It is for
// devnets and tests: users get encrypted keys from SaveHotkey.
func CreateHotkey(root, wallet, hotkey string) (types.AccountID, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return types.AccountID{}, fmt.Errorf("wallet: random seed: %w", err)
	}
	return ImportHotkey(root, wallet, hotkey, seed)
}

// ImportHotkey adds the hotkey of seed, in a PLAIN key file, to an
// existing wallet, as CreateHotkey does.
func ImportHotkey(root, wallet, hotkey string, seed []byte) (types.AccountID, error) {
	return SaveHotkey(root, wallet, hotkey, seed, nil)
}

// SaveColdkey makes wallet name under root with the coldkey of seed (32
// bytes), encrypted under seal (nil: a plain file, for devnets only), and
// writes coldkeypub.txt beside it. It fails with ErrExists if the wallet
// already has a coldkey (it is never overwritten), and with ErrCorrupt if a
// coldkeypub.txt there names another account.
func SaveColdkey(root, name string, seed []byte, seal *Seal) (*Wallet, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	data, addr, err := encodeKey(seed, seal)
	if err != nil {
		return nil, err
	}
	dir := Dir(root, name)
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	if exists(filepath.Join(dir, "coldkey")) {
		return nil, fmt.Errorf("%w: wallet %q (%s) has a coldkey already; it is never overwritten", ErrExists, name, dir)
	}
	pubPath := filepath.Join(dir, "coldkeypub.txt")
	if pub, err := readColdkeyPub(pubPath); err == nil && pub != addr {
		return nil, fmt.Errorf("%w: %s names %s but this coldkey is %s; move that file away if this key is the one you want",
			ErrCorrupt, pubPath, pub, addr)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "coldkey"), data, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: wallet %q (%s) has a coldkey already; it is never overwritten", ErrExists, name, dir)
		}
		return nil, err
	}
	if err := SaveColdkeyPub(root, name, addr); err != nil {
		return nil, err
	}
	return &Wallet{Name: name, Root: root, coldAddr: addr, hasCold: true, coldkey: ed25519.NewKeyFromSeed(seed)}, nil
}

// SaveColdkeyPub writes (or rewrites) coldkeypub.txt of wallet name: the
// coldkey's address only, so a machine without the coldkey knows the
// account its hotkeys belong to.
func SaveColdkeyPub(root, name string, addr types.AccountID) error {
	if err := CheckName(name); err != nil {
		return err
	}
	dir := Dir(root, name)
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	data, _ := json.Marshal(struct {
		Address string `json:"address"`
	}{addr.String()})
	return WriteFileAtomic(filepath.Join(dir, "coldkeypub.txt"), append(data, '\n'), true)
}

// SaveHotkey adds the hotkey of seed to an existing wallet (one with a
// coldkey or a coldkeypub.txt), encrypted under seal (nil: a plain file),
// and returns its account. It fails with ErrNotFound if the wallet does not
// exist and with ErrExists if the hotkey does.
func SaveHotkey(root, wallet, hotkey string, seed []byte, seal *Seal) (types.AccountID, error) {
	if err := CheckName(wallet); err != nil {
		return types.AccountID{}, err
	}
	if err := CheckName(hotkey); err != nil {
		return types.AccountID{}, err
	}
	dir := Dir(root, wallet)
	if !exists(filepath.Join(dir, "coldkey")) && !exists(filepath.Join(dir, "coldkeypub.txt")) {
		return types.AccountID{}, notFound(root, wallet)
	}
	data, addr, err := encodeKey(seed, seal)
	if err != nil {
		return types.AccountID{}, err
	}
	// The coldkey's own seed as a hotkey would put the coldkey's secret on
	// the serving machine, which the hotkey exists to keep it off.
	same := false
	if pub, err := readColdkeyPub(filepath.Join(dir, "coldkeypub.txt")); err == nil && pub == addr {
		same = true
	}
	if info, err := ReadKeyInfo(filepath.Join(dir, "coldkey")); err == nil && info.Address == addr {
		same = true
	}
	if same {
		return types.AccountID{}, fmt.Errorf("%w: that is the coldkey's own seed (address %s): a hotkey must be another key, so that the coldkey stays off the machine that serves", ErrExists, addr)
	}
	hdir := filepath.Join(dir, "hotkeys")
	if err := mkdirPrivate(hdir); err != nil {
		return types.AccountID{}, err
	}
	if err := WriteFileAtomic(filepath.Join(hdir, hotkey), data, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return types.AccountID{}, fmt.Errorf("%w: wallet %q has a hotkey %q already; it is never overwritten", ErrExists, wallet, hotkey)
		}
		return types.AccountID{}, err
	}
	return addr, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// encodeKey returns the key file of seed: sealed, or plain JSON with seal
// nil.
func encodeKey(seed []byte, seal *Seal) ([]byte, types.AccountID, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, types.AccountID{}, fmt.Errorf("wallet: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	addr := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed))
	if seal != nil {
		data, err := SealSeed(seed, *seal)
		return data, addr, err
	}
	data, err := json.Marshal(keyFile{Address: addr.String(), Seed: hex.EncodeToString(seed)})
	if err != nil {
		return nil, types.AccountID{}, fmt.Errorf("wallet: %w", err)
	}
	return append(data, '\n'), addr, nil
}

// EncryptKeyFile converts the plain key file at path to an encrypted one
// under seal, in place and atomically (a crash leaves the plain or the
// encrypted file, never neither). It reports false, changing nothing, when
// the file is encrypted already. The plain seed may survive on disk blocks
// the file system does not reuse at once; a key that was ever plain should
// be moved to a new one if the disk may fall into other hands.
func EncryptKeyFile(path string, seal Seal) (bool, error) {
	data, err := readKeyBytes(path)
	if err != nil {
		return false, err
	}
	if isSealed(data) {
		if _, err := parseSealedHeader(data); err != nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
		return false, nil
	}
	priv, err := parsePlain(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	sealed, err := SealSeed(priv.Seed(), seal)
	if err != nil {
		return false, err
	}
	return true, WriteFileAtomic(path, sealed, true)
}

// Load opens wallet name under root: it reads the coldkey's address from
// the coldkey file or, on a machine without the coldkey, coldkeypub.txt. It
// reads no secret and needs no password (keys are decrypted when Coldkey or
// Hotkey is called, with Unlock, which the caller may set). The error wraps
// ErrNotFound when the wallet does not exist, and ErrPermissions or
// ErrCorrupt as ReadKeyInfo says.
func Load(root, name string) (*Wallet, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	w := &Wallet{Name: name, Root: root}
	info, err := ReadKeyInfo(w.ColdkeyPath())
	switch {
	case err == nil:
		w.coldAddr, w.hasCold = info.Address, true
	case errors.Is(err, fs.ErrNotExist):
		pub, perr := readColdkeyPub(filepath.Join(w.Dir(), "coldkeypub.txt"))
		if errors.Is(perr, fs.ErrNotExist) {
			return nil, notFound(root, name)
		}
		if perr != nil {
			return nil, perr
		}
		w.coldAddr = pub
	case errors.Is(err, ErrCorrupt):
		// A damaged coldkey does not hide the wallet: its address comes
		// from coldkeypub.txt, and only the coldkey's own uses fail.
		// (Open permissions still fail the whole load: fix those first.)
		pub, perr := readColdkeyPub(filepath.Join(w.Dir(), "coldkeypub.txt"))
		if perr != nil {
			return nil, err
		}
		w.coldAddr, w.coldErr = pub, err
	default:
		return nil, err
	}
	return w, nil
}

// readColdkeyPub reads a coldkeypub.txt: {"address": "5…"}.
func readColdkeyPub(path string) (types.AccountID, error) {
	f, err := os.Open(path)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("wallet: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return types.AccountID{}, fmt.Errorf("wallet: reading %s: %w", path, err)
	}
	id, err := parseColdkeyPub(data)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// parseColdkeyPub decodes coldkeypub.txt, at most maxKeyFileSize bytes.
// Errors wrap ErrCorrupt.
func parseColdkeyPub(data []byte) (types.AccountID, error) {
	if len(data) > maxKeyFileSize {
		return types.AccountID{}, fmt.Errorf("%w: coldkeypub.txt over %d bytes", ErrCorrupt, maxKeyFileSize)
	}
	var v struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return types.AccountID{}, fmt.Errorf("%w: not {\"address\": \"5…\"}: %v", ErrCorrupt, err)
	}
	id, err := types.ParseAddress(v.Address)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return id, nil
}

func notFound(root, name string) error {
	return fmt.Errorf("%w: no wallet %q in %s (create it: taobox wallet create %s; list them: taobox wallet list)",
		ErrNotFound, name, filepath.Join(root, "wallets"), name)
}

// List returns the names of the wallets under root that have a coldkey or
// a coldkeypub.txt, sorted. A missing root is an empty list.
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
		d := filepath.Join(root, "wallets", e.Name())
		if exists(filepath.Join(d, "coldkey")) || exists(filepath.Join(d, "coldkeypub.txt")) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// keyFile is the JSON form of a plain key file.
type keyFile struct {
	Address string `json:"address"`
	Seed    string `json:"seed"`
}

// readKeyBytes reads a key file, refusing (ErrPermissions; not checked on
// Windows) one that the group or others may access, and (ErrCorrupt) one
// that is not a regular file or is larger than any key file. A missing file
// gives an error wrapping fs.ErrNotExist.
func readKeyBytes(path string) ([]byte, error) {
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
		return nil, fmt.Errorf("%w: %s is %d bytes, a key file is at most %d", ErrCorrupt, path, st.Size(), sealedSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("wallet: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s grew past %d bytes while being read", ErrCorrupt, path, maxKeyFileSize)
	}
	return data, nil
}

// ReadKeyInfo reads one key file's address and format without a password,
// checking what can be checked without one (a plain file's seed against
// its address; an encrypted file's checksum and header). Errors are those
// of LoadKeyFile, less the password ones.
func ReadKeyInfo(path string) (KeyInfo, error) {
	data, err := readKeyBytes(path)
	if err != nil {
		return KeyInfo{}, err
	}
	info, err := DecodeKeyInfo(data)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// LoadKeyFile reads one key file and returns its private key, decrypting
// an encrypted file with a password from u (nil: plain files only). It
// refuses, with an error that says what to do, a file that the group or
// others may access (ErrPermissions; not checked on Windows), a damaged
// file (ErrCorrupt: bad JSON or seed, an address that is not the seed's,
// a bad length, header or checksum), a password that does not open the
// file (ErrWrongPassword, naming where the password came from), and an
// encrypted file with no password source (ErrNoPassword). A missing file
// gives an error wrapping fs.ErrNotExist.
func LoadKeyFile(path string, u *Unlocker) (ed25519.PrivateKey, error) {
	data, err := readKeyBytes(path)
	if err != nil {
		return nil, err
	}
	if u.what() == "the key" { // unlabelled: a prompt names the file
		u = u.named("the key " + path)
		defer func() { u.label = "" }()
	}
	k, err := DecodeKey(data, func() ([]byte, error) { return u.Password() })
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, ErrWrongPassword):
		return nil, fmt.Errorf("%w for %s (%s; the password came from %s)", ErrWrongPassword, u.what(), path, u.Source())
	case errors.Is(err, ErrNoPassword):
		return nil, err
	default:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
}

// parsePlain decodes a plain JSON key file. Errors wrap ErrCorrupt.
func parsePlain(data []byte) (ed25519.PrivateKey, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var kf keyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w: not a key file ({\"address\", \"seed\"} or an encrypted key): %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the key object", ErrCorrupt)
	}
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed must be %d hex digits", ErrCorrupt, 2*ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if got := types.AccountIDFromPrivateKey(priv).String(); got != kf.Address {
		return nil, fmt.Errorf("%w: the address %q is not the seed's (%s); the file was edited or damaged, restore it from a backup",
			ErrCorrupt, kf.Address, got)
	}
	return priv, nil
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
