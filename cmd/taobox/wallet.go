package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"taobox/chain/node"
	"taobox/chain/types"
	"taobox/wallet"
)

// walletsFlag defines --wallets on fs.
func walletsFlag(fs *flag.FlagSet) *string {
	return fs.String("wallets", "", "the `DIR` that holds wallets/<name>/coldkey and hotkeys/ (default $"+wallet.EnvHome+", else ~/.taobox)")
}

// walletRoot returns the root directory of the wallets: dir if set, else
// the default.
func walletRoot(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return wallet.DefaultRoot()
}

// walletErr turns the wallet package's user errors (unknown wallet, bad
// name, already exists) into usage errors (exit status 2) under field.
func walletErr(field string, err error) error {
	if errors.Is(err, wallet.ErrNotFound) || errors.Is(err, wallet.ErrBadName) || errors.Is(err, wallet.ErrExists) || errors.Is(err, wallet.ErrWeakPassword) {
		msg := err.Error()
		for _, p := range []string{"wallet: already exists: ", "wallet: not found: ", "wallet: bad name: ", "wallet: password not accepted: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		return &usageError{field, msg}
	}
	return err
}

// loadWallet loads wallet name from the --wallets root.
func loadWallet(dir, name string) (*wallet.Wallet, error) {
	root, err := walletRoot(dir)
	if err != nil {
		return nil, err
	}
	w, err := wallet.Load(root, name)
	if err != nil {
		return nil, walletErr("wallet", err)
	}
	return w, nil
}

// unlockOpts are the flags that say where the password of encrypted keys
// comes from (wallet.Unlocker).
type unlockOpts struct {
	file *string
	fd   *int
	cred *string
}

// unlockFlags defines --password-file, --password-fd and --password-cred
// on fs.
func unlockFlags(fs *flag.FlagSet) *unlockOpts {
	return &unlockOpts{
		file: fs.String("password-file", "", "read the key password from the first line of `FILE` (mode 0600)"),
		fd:   fs.Int("password-fd", 0, "read the key password from file descriptor `N` (e.g. 3 with 3<FILE)"),
		cred: fs.String("password-cred", wallet.DefaultCredName, "the systemd credential `NAME` in $CREDENTIALS_DIRECTORY holding the password"),
	}
}

// unlocker turns the flags into a wallet.Unlocker: the systemd credentials
// directory comes from the environment (only its path; never a password),
// and a prompt is offered only when standard input is a terminal.
func (o *unlockOpts) unlocker(e *env) *wallet.Unlocker {
	u := &wallet.Unlocker{CredDir: os.Getenv("CREDENTIALS_DIRECTORY"), Prompt: terminalPrompt(e)}
	if o != nil {
		u.PasswordFile, u.PasswordFD, u.CredName = *o.file, *o.fd, *o.cred
	}
	return u
}

// sealOpts are the flags of commands that write keys.
type sealOpts struct {
	unlock    *unlockOpts
	kdfMemory *uint
	kdfTime   *uint
	noEncrypt *bool // hotkey commands only
}

func sealFlags(fs *flag.FlagSet, hotkey bool) *sealOpts {
	o := &sealOpts{
		unlock:    unlockFlags(fs),
		kdfMemory: fs.Uint("kdf-memory", uint(wallet.DefaultKDF.MemoryKiB>>10), "Argon2id memory in `MiB` for new key files (lower it only on small devices)"),
		kdfTime:   fs.Uint("kdf-time", uint(wallet.DefaultKDF.Time), "Argon2id passes (`N`) for new key files"),
	}
	if hotkey {
		o.noEncrypt = fs.Bool("no-encrypt", false, "write the hotkey in plain text (anyone who can read the file can sign with it)")
	}
	return o
}

// seal returns how to write a new key: nil (plain) for a hotkey with
// --no-encrypt, which prints a warning; else the password from the flags'
// sources, asked twice at a terminal.
func (o *sealOpts) seal(e *env, forHotkey bool) (*wallet.Seal, error) {
	if forHotkey && o.noEncrypt != nil && *o.noEncrypt {
		fmt.Fprintln(e.stderr, "taobox: warning: --no-encrypt: the hotkey is stored in plain text; anyone who can read the file can sign as it")
		return nil, nil
	}
	if *o.kdfMemory < 1 || *o.kdfMemory > 4096 || *o.kdfTime < 1 || *o.kdfTime > 64 {
		return nil, &usageError{"kdf-memory", "Argon2id memory must be 1 to 4096 MiB and --kdf-time 1 to 64"}
	}
	pw, err := o.unlock.unlocker(e).NewPassword()
	if err != nil {
		return nil, walletErr("password", err)
	}
	kdf := wallet.KDFParams{Time: uint32(*o.kdfTime), MemoryKiB: uint32(*o.kdfMemory) << 10, Threads: wallet.DefaultKDF.Threads}
	return &wallet.Seal{Password: pw, KDF: kdf}, nil
}

// refuseArgvMnemonic defines --mnemonic only to refuse it.
func refuseArgvMnemonic(fs *flag.FlagSet) func() error {
	m := fs.String("mnemonic", "", "refused: a phrase on the command line lands in shell history and ps; use --mnemonic-file")
	return func() error {
		if *m != "" {
			return &usageError{"mnemonic", "refused: a mnemonic on the command line lands in shell history and in ps for every user to see; " +
				"put it in a file (chmod 600, delete it after) and give --mnemonic-file FILE, or --mnemonic-file - to type it on standard input"}
		}
		return nil
	}
}

const mnemonicNote = "WRITE THIS DOWN, on paper, and keep it offline. It is the only way to restore\n" +
	"the key if this machine or its password is lost; taobox will not show it again.\n" +
	"Anyone who reads it owns the key."

// newKeyMnemonic makes a new phrase and its seed.
func newKeyMnemonic(words int) (string, []byte, error) {
	if !slices.Contains(wallet.MnemonicWords, words) {
		return "", nil, &usageError{"words", fmt.Sprintf("%d: a phrase has 12, 15, 18, 21 or 24 words", words)}
	}
	phrase, err := wallet.NewMnemonic(words, nil)
	if err != nil {
		return "", nil, err
	}
	seed, err := wallet.SeedFromMnemonic(phrase)
	return phrase, seed, err
}

// writeMnemonic prints a phrase once, numbered, with the note.
func writeMnemonic(b *bytes.Buffer, what, phrase string) {
	fmt.Fprintf(b, "\nMnemonic of %s:\n\n", what)
	for i, w := range strings.Fields(phrase) {
		fmt.Fprintf(b, "  %2d. %-10s", i+1, w)
		if i%4 == 3 {
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(b, "\n  %s\n\n%s\n", phrase, mnemonicNote)
}

// storedAs says how a key is stored, for messages.
func storedAs(s *wallet.Seal) string {
	if s == nil {
		return "plain text"
	}
	return "encrypted (" + s.KDF.String() + ")"
}

var walletCommand = &command{
	name:    "wallet",
	summary: "coldkeys and hotkeys on disk: create, restore, encrypt, list, show",
	help: "A wallet is a coldkey (it owns funds and stake; it signs transfers, staking,\n" +
		"registrations and governance) and any number of hotkeys (each identifies a\n" +
		"miner or validator and signs its weights, serve calls and tasks). They live in\n" +
		"$TAOBOX_HOME/wallets/<name>/ (default ~/.taobox), or under --wallets DIR:\n\n" +
		"  wallets/<name>/coldkey\n  wallets/<name>/coldkeypub.txt   (the coldkey's address only)\n  wallets/<name>/hotkeys/<hotkey>\n\n" +
		"Keys come from BIP-39 mnemonics (12 to 24 words; shown once when a key is\n" +
		"made) and are encrypted at rest with Argon2id and XChaCha20-Poly1305, files\n" +
		"of mode 0600 in folders of mode 0700. The password comes from, in order,\n" +
		"--password-fd N, --password-file FILE, the systemd credential taobox-wallet\n" +
		"($CREDENTIALS_DIRECTORY), or a prompt when a terminal is attached; never from\n" +
		"an environment variable. A miner or validator box needs only its hotkey (and\n" +
		"coldkeypub.txt); keep the coldkey on another machine and sign there with\n" +
		"'taobox tx ... --offline'. See docs/wallet.md.",
}

// createColdkey makes wallet name's coldkey from a new phrase and writes
// what to show into b.
func createColdkey(e *env, root, name string, words int, seal *wallet.Seal, b *bytes.Buffer) (*wallet.Wallet, error) {
	phrase, seed, err := newKeyMnemonic(words)
	if err != nil {
		return nil, err
	}
	w, err := wallet.SaveColdkey(root, name, seed, seal)
	if err != nil {
		return nil, walletErr("name", err)
	}
	fmt.Fprintf(b, "Created wallet %q in %s\n  coldkey %s, %s\n", name, w.Dir(), w.ColdkeyAddress(), storedAs(seal))
	writeMnemonic(b, "the coldkey of wallet "+strconv.Quote(name), phrase)
	return w, nil
}

// createHotkey adds a hotkey from a new phrase and writes what to show into b.
func createHotkey(root, name, hotkey string, words int, seal *wallet.Seal, b *bytes.Buffer) error {
	phrase, seed, err := newKeyMnemonic(words)
	if err != nil {
		return err
	}
	hk, err := wallet.SaveHotkey(root, name, hotkey, seed, seal)
	if err != nil {
		return walletErr("hotkey", err)
	}
	fmt.Fprintf(b, "Created a hotkey of wallet %q in %s\n  hotkey %s %s, %s\n", name,
		filepath.Join(wallet.Dir(root, name), "hotkeys", hotkey), hotkey, hk, storedAs(seal))
	writeMnemonic(b, "hotkey "+strconv.Quote(hotkey), phrase)
	return nil
}

func newColdkeySetup(withHotkey bool) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		words := fs.Int("words", 12, "the mnemonic's length: 12, 15, 18, 21 or 24 words")
		so := sealFlags(fs, withHotkey)
		var hotkey *string
		if withHotkey {
			hotkey = fs.String("hotkey", "", "also create a hotkey named `H` (same password)")
		}
		return func(e *env) error {
			name := e.args[0]
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			if err := wallet.CheckName(name); err != nil {
				return walletErr("name", err)
			}
			if hotkey != nil && *hotkey != "" {
				if err := wallet.CheckName(*hotkey); err != nil {
					return walletErr("hotkey", err)
				}
			}
			if _, err := wallet.Load(root, name); err == nil {
				return &usageError{"name", fmt.Sprintf("wallet %q (%s) exists already; it is never overwritten", name, wallet.Dir(root, name))}
			}
			seal, err := so.seal(e, false)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if _, err := createColdkey(e, root, name, *words, seal, &b); err != nil {
				return err
			}
			if hotkey != nil && *hotkey != "" {
				hseal := seal
				if so.noEncrypt != nil && *so.noEncrypt {
					if hseal, err = so.seal(e, true); err != nil {
						return err
					}
				}
				b.WriteByte('\n')
				if err := createHotkey(root, name, *hotkey, *words, hseal, &b); err != nil {
					return err
				}
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	}
}

var walletCreateCommand = &command{
	name:    "wallet create",
	args:    "NAME [--hotkey H] [--words N] [--password-file F] [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "create a wallet: a new coldkey, and optionally a first hotkey",
	help: "Creates wallet NAME with a new coldkey from a new BIP-39 mnemonic, and with\n" +
		"--hotkey also a hotkey of that name, both encrypted with one password (asked\n" +
		"twice at a terminal, or from --password-file / --password-fd). Prints the\n" +
		"addresses and each mnemonic, once: write them down. An existing wallet is\n" +
		"never overwritten. Examples:\n\n" +
		"  taobox wallet create alice\n" +
		"  taobox wallet create miner --hotkey default --words 24\n" +
		"  taobox wallet create test --wallets ./keys --password-file ./pw",
	setup: newColdkeySetup(true),
}

var walletNewColdkeyCommand = &command{
	name:    "wallet new-coldkey",
	args:    "NAME [--words N] [--password-file F] [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "create a wallet's coldkey from a new mnemonic",
	help: "Creates wallet NAME with a new coldkey from a new BIP-39 mnemonic (12 words\n" +
		"unless --words), encrypted with a password, and prints the mnemonic once.\n" +
		"Do this on the machine that will keep the coldkey, ideally one that is never\n" +
		"online. Example:\n\n  taobox wallet new-coldkey alice --words 24",
	setup: newColdkeySetup(false),
}

var walletNewHotkeyCommand = &command{
	name:    "wallet new-hotkey",
	args:    "NAME HOTKEY [--words N] [--no-encrypt] [--password-file F] [--wallets DIR]",
	minArgs: 2, maxArgs: 2,
	summary: "add a new hotkey (from a new mnemonic) to a wallet",
	help: "Creates hotkey HOTKEY in wallet NAME from a new BIP-39 mnemonic, encrypted\n" +
		"with a password unless --no-encrypt, and prints its address and mnemonic. The\n" +
		"wallet needs its coldkey or coldkeypub.txt here. A miner or validator box\n" +
		"needs only its hotkey file. Example:\n\n" +
		"  taobox wallet new-hotkey alice validator",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		words := fs.Int("words", 12, "the mnemonic's length: 12, 15, 18, 21 or 24 words")
		so := sealFlags(fs, true)
		return func(e *env) error {
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			name, hotkey := e.args[0], e.args[1]
			if err := wallet.CheckName(hotkey); err != nil {
				return walletErr("hotkey", err)
			}
			w, err := wallet.Load(root, name)
			if err != nil {
				return walletErr("hotkey", err)
			}
			if _, err := w.HotkeyInfo(hotkey); !errors.Is(err, wallet.ErrNotFound) {
				return &usageError{"hotkey", fmt.Sprintf("wallet %q has a hotkey %q already; it is never overwritten", name, hotkey)}
			}
			seal, err := so.seal(e, true)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := createHotkey(root, name, hotkey, *words, seal, &b); err != nil {
				return err
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// readMnemonicFile reads a phrase from path ("-": standard input), at most
// 4 KiB, warning when others may read the file.
func readMnemonicFile(e *env, path string) (string, error) {
	if path == "" {
		return "", &usageError{"mnemonic-file", "required: a file holding the phrase (or - to type it on standard input)"}
	}
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", &usageError{"mnemonic-file", err.Error()}
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
			fmt.Fprintf(e.stderr, "taobox: warning: %s has mode %04o, so others may read the phrase; delete it when done\n", path, st.Mode().Perm())
		}
		r = f
	} else if terminalPrompt(e) != nil {
		fmt.Fprintln(e.stderr, "Type the mnemonic, then Enter and Ctrl-D:")
	}
	data, err := io.ReadAll(io.LimitReader(r, 4097))
	if err != nil {
		return "", fmt.Errorf("reading the mnemonic: %w", err)
	}
	if len(data) > 4096 {
		return "", &usageError{"mnemonic-file", "larger than 4 KiB; a phrase is at most 24 words"}
	}
	return string(data), nil
}

// seedFromFile reads and checks a phrase; its errors are usage errors.
func seedFromFile(e *env, path string) ([]byte, error) {
	phrase, err := readMnemonicFile(e, path)
	if err != nil {
		return nil, err
	}
	seed, err := wallet.SeedFromMnemonic(phrase)
	if err != nil {
		return nil, &usageError{"mnemonic-file", strings.TrimPrefix(err.Error(), "wallet: bad mnemonic: ")}
	}
	return seed, nil
}

var walletRegenColdkeyCommand = &command{
	name:    "wallet regen-coldkey",
	args:    "NAME --mnemonic-file FILE [--password-file F] [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "restore a wallet's coldkey from its mnemonic",
	help: "Restores the coldkey of wallet NAME from the BIP-39 mnemonic in FILE (- reads\n" +
		"standard input), encrypted with a new password. The phrase is checked (word\n" +
		"list, checksum) before anything is written; an existing coldkey is never\n" +
		"overwritten, and a coldkeypub.txt naming another account is refused. A\n" +
		"mnemonic is never taken on the command line. Example:\n\n" +
		"  taobox wallet regen-coldkey alice --mnemonic-file /media/usb/alice.txt",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		file := fs.String("mnemonic-file", "", "the `FILE` holding the phrase (- for standard input)")
		refuse := refuseArgvMnemonic(fs)
		so := sealFlags(fs, false)
		return func(e *env) error {
			if err := refuse(); err != nil {
				return err
			}
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			name := e.args[0]
			if err := wallet.CheckName(name); err != nil {
				return walletErr("name", err)
			}
			seed, err := seedFromFile(e, *file)
			if err != nil {
				return err
			}
			if w, err := wallet.Load(root, name); err == nil && w.HasColdkey() {
				return &usageError{"name", fmt.Sprintf("wallet %q has a coldkey already; it is never overwritten", name)}
			}
			seal, err := so.seal(e, false)
			if err != nil {
				return err
			}
			w, err := wallet.SaveColdkey(root, name, seed, seal)
			if err != nil {
				return walletErr("name", err)
			}
			_, err = fmt.Fprintf(e.stdout, "Restored the coldkey of wallet %q: %s, %s\n  %s\n", name, w.ColdkeyAddress(), storedAs(seal), w.ColdkeyPath())
			return err
		}
	},
}

var walletRegenHotkeyCommand = &command{
	name:    "wallet regen-hotkey",
	args:    "NAME HOTKEY --mnemonic-file FILE [--no-encrypt] [--password-file F] [--wallets DIR]",
	minArgs: 2, maxArgs: 2,
	summary: "restore a hotkey from its mnemonic",
	help: "Restores hotkey HOTKEY of wallet NAME from the BIP-39 mnemonic in FILE (-\n" +
		"reads standard input), encrypted unless --no-encrypt. The wallet needs its\n" +
		"coldkey or coldkeypub.txt here (see regen-coldkeypub). Example, on a miner\n" +
		"box that will never hold the coldkey:\n\n" +
		"  taobox wallet regen-coldkeypub alice --address 5F...\n" +
		"  taobox wallet regen-hotkey alice miner1 --mnemonic-file - --password-file /etc/taobox/wallet.pass",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		file := fs.String("mnemonic-file", "", "the `FILE` holding the phrase (- for standard input)")
		refuse := refuseArgvMnemonic(fs)
		so := sealFlags(fs, true)
		return func(e *env) error {
			if err := refuse(); err != nil {
				return err
			}
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			name, hotkey := e.args[0], e.args[1]
			if err := wallet.CheckName(hotkey); err != nil {
				return walletErr("hotkey", err)
			}
			w, err := wallet.Load(root, name)
			if err != nil {
				return walletErr("wallet", err)
			}
			if _, err := w.HotkeyInfo(hotkey); !errors.Is(err, wallet.ErrNotFound) {
				return &usageError{"hotkey", fmt.Sprintf("wallet %q has a hotkey %q already; it is never overwritten", name, hotkey)}
			}
			seed, err := seedFromFile(e, *file)
			if err != nil {
				return err
			}
			seal, err := so.seal(e, true)
			if err != nil {
				return err
			}
			hk, err := wallet.SaveHotkey(root, name, hotkey, seed, seal)
			if err != nil {
				return walletErr("hotkey", err)
			}
			_, err = fmt.Fprintf(e.stdout, "Restored hotkey %q of wallet %q: %s, %s\n  %s\n", hotkey, name, hk, storedAs(seal), w.HotkeyPath(hotkey))
			return err
		}
	},
}

var walletRegenColdkeypubCommand = &command{
	name:    "wallet regen-coldkeypub",
	args:    "NAME --address SS58 [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "record a coldkey's address on a machine that must not hold the coldkey",
	help: "Writes coldkeypub.txt of wallet NAME: the coldkey's address only. A miner or\n" +
		"validator box needs it to hold hotkeys of that wallet and to show balances,\n" +
		"without the coldkey ever being there. Example:\n\n" +
		"  taobox wallet regen-coldkeypub alice --address 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		addr := fs.String("address", "", "the coldkey's SS58 `ADDRESS`")
		return func(e *env) error {
			id, err := types.ParseAddress(*addr)
			if err != nil {
				return &usageError{"address", strings.TrimPrefix(err.Error(), "types: ")}
			}
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			name := e.args[0]
			if w, err := wallet.Load(root, name); err == nil && w.HasColdkey() && w.ColdkeyAddress() != id {
				return &usageError{"address", fmt.Sprintf("wallet %q holds coldkey %s here, not %s", name, w.ColdkeyAddress(), id)}
			}
			if err := wallet.SaveColdkeyPub(root, name, id); err != nil {
				return walletErr("name", err)
			}
			_, err = fmt.Fprintf(e.stdout, "Wallet %q: coldkey address %s recorded in %s\n", name, id, filepath.Join(wallet.Dir(root, name), "coldkeypub.txt"))
			return err
		}
	},
}

var walletEncryptCommand = &command{
	name:    "wallet encrypt",
	args:    "NAME [--hotkey H] [--password-file F] [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "encrypt a wallet's plain-text key files in place",
	help: "Encrypts every plain-text key file of wallet NAME (the format of earlier\n" +
		"releases and of --no-encrypt), or with --hotkey only that hotkey, in place\n" +
		"and atomically: a crash leaves the old or the new file, never neither. Keys\n" +
		"already encrypted are left alone. A key that was ever stored in plain text\n" +
		"may linger in free disk blocks: if the disk may reach other hands, move the\n" +
		"funds to a new key. Example:\n\n  taobox wallet encrypt alice",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		only := fs.String("hotkey", "", "encrypt only hotkey `H`")
		so := sealFlags(fs, false)
		return func(e *env) error {
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			w, err := wallet.Load(root, e.args[0])
			if err != nil {
				return walletErr("wallet", err)
			}
			var paths []string
			if *only != "" {
				if _, err := w.HotkeyInfo(*only); err != nil {
					return walletErr("hotkey", err)
				}
				paths = append(paths, w.HotkeyPath(*only))
			} else {
				if cerr := w.ColdkeyErr(); cerr != nil {
					return fmt.Errorf("nothing encrypted: the coldkey of wallet %q cannot be read (%v); restore it first (taobox wallet regen-coldkey), or encrypt one hotkey with --hotkey", w.Name, cerr)
				}
				if w.HasColdkey() {
					paths = append(paths, w.ColdkeyPath())
				}
				names, err := w.HotkeyNames()
				if err != nil {
					return err
				}
				for _, n := range names {
					paths = append(paths, w.HotkeyPath(n))
				}
			}
			var plain []string
			for _, p := range paths {
				info, err := wallet.ReadKeyInfo(p)
				if err != nil {
					return err
				}
				if !info.Encrypted {
					plain = append(plain, p)
				}
			}
			var b bytes.Buffer
			if len(plain) == 0 {
				fmt.Fprintf(&b, "Wallet %q: every key is encrypted already.\n", w.Name)
				_, err = e.stdout.Write(b.Bytes())
				return err
			}
			seal, err := so.seal(e, false)
			if err != nil {
				return err
			}
			for _, p := range plain {
				if _, err := wallet.EncryptKeyFile(p, *seal); err != nil {
					return err
				}
				fmt.Fprintf(&b, "encrypted %s (%s)\n", p, seal.KDF)
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// walletView is the JSON of one wallet in wallet list and show.
type walletView struct {
	Name    string            `json:"name"`
	Path    string            `json:"path"`
	Coldkey string            `json:"coldkey,omitempty"`
	Stored  string            `json:"stored,omitempty"`        // "encrypted", "plain", "address only" (coldkeypub.txt) or "unusable" (ColdErr)
	ColdErr string            `json:"coldkey_error,omitempty"` // why the coldkey file here cannot be used
	Hotkeys []hotkeyView      `json:"hotkeys"`
	Error   string            `json:"error,omitempty"`   // why the wallet cannot be read at all
	Account *node.AccountInfo `json:"account,omitempty"` // with --node
}

type hotkeyView struct {
	Name    string            `json:"name"`
	Address string            `json:"address,omitempty"`
	Stored  string            `json:"stored,omitempty"` // "encrypted" or "plain"
	Error   string            `json:"error,omitempty"`
	Account *node.AccountInfo `json:"account,omitempty"`
}

func storedName(info wallet.KeyInfo) string {
	if info.Encrypted {
		return "encrypted"
	}
	return "plain"
}

// viewWallet reads a wallet's addresses, without a password; a key that
// cannot be read is reported in the view rather than failing.
func viewWallet(root, name string) (walletView, *wallet.Wallet) {
	v := walletView{Name: name, Path: wallet.Dir(root, name), Hotkeys: []hotkeyView{}}
	w, err := wallet.Load(root, name)
	if err != nil {
		v.Error = err.Error()
		return v, nil
	}
	v.Coldkey = w.ColdkeyAddress().String()
	v.Stored = "address only"
	if cerr := w.ColdkeyErr(); cerr != nil {
		v.Stored, v.ColdErr = "unusable", cerr.Error()
	} else if w.HasColdkey() {
		if info, err := w.ColdkeyInfo(); err == nil {
			v.Stored = storedName(info)
		}
	}
	names, err := w.HotkeyNames()
	if err != nil {
		v.Error = err.Error()
	}
	for _, n := range names {
		hv := hotkeyView{Name: n}
		if info, err := w.HotkeyInfo(n); err != nil {
			hv.Error = err.Error()
		} else {
			hv.Address, hv.Stored = info.Address.String(), storedName(info)
		}
		v.Hotkeys = append(v.Hotkeys, hv)
	}
	return v, w
}

var walletListCommand = &command{
	name:    "wallet list",
	args:    "[--wallets DIR] [--json]",
	summary: "list the wallets with their coldkey and hotkey addresses",
	help: "Lists every wallet under the wallets directory: its coldkey address and its\n" +
		"hotkeys, each stored encrypted, plain, or (a coldkey kept elsewhere) as its\n" +
		"address only. No password is needed. A key file that cannot be used\n" +
		"(permissions, damage) is shown with the reason. Example:\n\n  taobox wallet list",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		asJSON := fs.Bool("json", false, "print a JSON list instead of a table")
		return func(e *env) error {
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			names, err := wallet.List(root)
			if err != nil {
				return err
			}
			views := []walletView{}
			for _, n := range names {
				v, _ := viewWallet(root, n)
				views = append(views, v)
			}
			var b bytes.Buffer
			if *asJSON {
				enc := json.NewEncoder(&b)
				enc.SetIndent("", "  ")
				enc.Encode(views)
			} else if len(views) == 0 {
				fmt.Fprintf(&b, "No wallets in %s. Create one: taobox wallet create NAME\n", filepath.Join(root, "wallets"))
			} else {
				fmt.Fprintf(&b, "Wallets in %s\n\n", filepath.Join(root, "wallets"))
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "WALLET\tKEY\tSTORED\tADDRESS")
				plain := false
				for _, v := range views {
					if v.Error != "" {
						fmt.Fprintf(tw, "%s\tcoldkey\t\tunusable: %s\n", v.Name, v.Error)
						continue
					}
					if v.ColdErr != "" {
						fmt.Fprintf(tw, "%s\tcoldkey\tunusable\t%s (%s)\n", v.Name, v.Coldkey, v.ColdErr)
					} else {
						fmt.Fprintf(tw, "%s\tcoldkey\t%s\t%s\n", v.Name, v.Stored, v.Coldkey)
					}
					plain = plain || v.Stored == "plain"
					for _, h := range v.Hotkeys {
						if h.Error != "" {
							fmt.Fprintf(tw, "\thotkey %s\t\tunusable: %s\n", h.Name, h.Error)
							continue
						}
						fmt.Fprintf(tw, "\thotkey %s\t%s\t%s\n", h.Name, h.Stored, h.Address)
						plain = plain || h.Stored == "plain"
					}
				}
				tw.Flush()
				if plain {
					fmt.Fprintln(&b, "\nPlain keys can be read by anyone who can read their files: taobox wallet encrypt NAME")
				}
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

var walletShowCommand = &command{
	name:    "wallet show",
	args:    "NAME [--node URL] [--wallets DIR] [--json]",
	minArgs: 1, maxArgs: 1,
	summary: "show a wallet's addresses, and with --node its balances",
	help: "Shows the coldkey and hotkey addresses of wallet NAME. With --node it also\n" +
		"asks that node for each key's free balance, total stake (a coldkey's stake\n" +
		"over all hotkeys) and nonce. Examples:\n\n" +
		"  taobox wallet show alice\n" +
		"  taobox wallet show alice --node http://127.0.0.1:7744",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		nodeURL := fs.String("node", "", "also show balances from the node at `URL` (for example "+defaultNodeURL+")")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		return func(e *env) error {
			var c *apiClient
			if *nodeURL != "" {
				var err error
				if c, err = newClient(*nodeURL); err != nil {
					return err
				}
			}
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			if _, err := wallet.Load(root, e.args[0]); err != nil {
				return walletErr("wallet", err)
			}
			v, _ := viewWallet(root, e.args[0])
			if c != nil {
				id, _ := types.ParseAddress(v.Coldkey)
				if v.Account, err = c.account(e.ctx, id); err != nil {
					return err
				}
				for i, h := range v.Hotkeys {
					if id, err := types.ParseAddress(h.Address); err == nil {
						if v.Hotkeys[i].Account, err = c.account(e.ctx, id); err != nil {
							return err
						}
					}
				}
			}
			var b bytes.Buffer
			if *asJSON {
				enc := json.NewEncoder(&b)
				enc.SetIndent("", "  ")
				enc.Encode(v)
			} else {
				fmt.Fprintf(&b, "Wallet %s (%s)\n\n", v.Name, v.Path)
				tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				if c != nil {
					fmt.Fprintln(tw, "KEY\tSTORED\tADDRESS\tFREE τ\tSTAKED τ\tNONCE")
				} else {
					fmt.Fprintln(tw, "KEY\tSTORED\tADDRESS")
				}
				row := func(key, stored, addr string, a *node.AccountInfo) {
					if a != nil {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", key, stored, addr, formatTAO(a.Free), formatTAO(a.Staked), a.Nonce)
					} else {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", key, stored, addr)
					}
				}
				row("coldkey", v.Stored, v.Coldkey, v.Account)
				for _, h := range v.Hotkeys {
					if h.Error != "" {
						// every column, so the rows below stay aligned
						if c != nil {
							fmt.Fprintf(tw, "hotkey %s\tunusable\t%s\t\t\t\n", h.Name, h.Error)
						} else {
							fmt.Fprintf(tw, "hotkey %s\tunusable\t%s\n", h.Name, h.Error)
						}
						continue
					}
					row("hotkey "+h.Name, h.Stored, h.Address, h.Account)
				}
				tw.Flush()
				if v.ColdErr != "" {
					fmt.Fprintf(&b, "\nThe coldkey file is unusable: %s\n", v.ColdErr)
				}
				if len(v.Hotkeys) == 0 {
					fmt.Fprintf(&b, "\nNo hotkeys yet: taobox wallet new-hotkey %s NAME\n", v.Name)
				}
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// neuronHotkey unlocks the hotkey a miner or validator signs with: by name
// straight from its file (so the box needs no coldkey and no
// coldkeypub.txt), by address through the wallet.
func neuronHotkey(wallets, walletName, hotkey string, u *wallet.Unlocker) (ed25519.PrivateKey, error) {
	if hotkey != "" && wallet.CheckName(hotkey) == nil && wallet.CheckName(walletName) == nil {
		root, err := walletRoot(wallets)
		if err != nil {
			return nil, err
		}
		k, err := wallet.LoadHotkey(root, walletName, hotkey, u)
		if !errors.Is(err, wallet.ErrNotFound) {
			return k, err
		}
	}
	w, err := loadWallet(wallets, walletName)
	if err != nil {
		return nil, err
	}
	w.Unlock = u
	return hotkeySigner(w, "hotkey", hotkey)
}
