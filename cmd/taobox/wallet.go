package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
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
	if errors.Is(err, wallet.ErrNotFound) || errors.Is(err, wallet.ErrBadName) || errors.Is(err, wallet.ErrExists) {
		msg := err.Error()
		for _, p := range []string{"wallet: already exists: ", "wallet: not found: ", "wallet: bad name: "} {
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

const plaintextNote = "The keys are stored unencrypted (mode 0600): anyone who can read the files can\n" +
	"spend from the coldkey. Back the directory up; encryption at rest comes later."

var walletCommand = &command{
	name:    "wallet",
	summary: "coldkeys and hotkeys on disk: create, list, show",
	help: "A wallet is a coldkey (it owns funds and stake; it signs transfers, staking,\n" +
		"registrations and governance) and any number of hotkeys (each identifies a\n" +
		"miner or validator and signs its weights and serve calls). They live in\n" +
		"$TAOBOX_HOME/wallets/<name>/ (default ~/.taobox), or under --wallets DIR:\n\n" +
		"  wallets/<name>/coldkey\n  wallets/<name>/hotkeys/<hotkey>\n\n" +
		"Each key file is JSON {\"address\": \"5…\", \"seed\": \"<hex>\"}, mode 0600. taobox\n" +
		"never overwrites a key and refuses to use a key file that others can read.\n" +
		"Keys are not encrypted yet; that comes in a later release.",
}

var walletCreateCommand = &command{
	name:    "wallet create",
	args:    "NAME [--hotkey H] [--wallets DIR]",
	minArgs: 1, maxArgs: 1,
	summary: "create a wallet: a new coldkey, and optionally a first hotkey",
	help: "Creates wallet NAME with a new random coldkey, and with --hotkey also a\n" +
		"hotkey of that name. Prints the addresses. An existing wallet is never\n" +
		"overwritten. Examples:\n\n" +
		"  taobox wallet create alice\n" +
		"  taobox wallet create miner --hotkey default\n" +
		"  taobox wallet create test --wallets ./keys\n\n" + plaintextNote,
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		hotkey := fs.String("hotkey", "", "also create a hotkey named `H`")
		return func(e *env) error {
			name := e.args[0]
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			if *hotkey != "" {
				if err := wallet.CheckName(*hotkey); err != nil {
					return walletErr("hotkey", err)
				}
			}
			w, err := wallet.Create(root, name)
			if err != nil {
				return walletErr("name", err)
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "Created wallet %q in %s\n", name, w.Dir())
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "  coldkey\t%s\n", w.ColdkeyAddress())
			if *hotkey != "" {
				hk, err := wallet.CreateHotkey(root, name, *hotkey)
				if err != nil {
					return walletErr("hotkey", err)
				}
				fmt.Fprintf(tw, "  hotkey %s\t%s\n", *hotkey, hk)
			}
			tw.Flush()
			fmt.Fprintf(&b, "\n%s\n", plaintextNote)
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

var walletNewHotkeyCommand = &command{
	name:    "wallet new-hotkey",
	args:    "NAME HOTKEY [--wallets DIR]",
	minArgs: 2, maxArgs: 2,
	summary: "add a new hotkey to a wallet",
	help: "Creates hotkey HOTKEY in wallet NAME and prints its address. A miner or\n" +
		"validator box needs only its hotkey file. Example:\n\n" +
		"  taobox wallet new-hotkey alice validator",
	setup: func(fs *flag.FlagSet) func(*env) error {
		dir := walletsFlag(fs)
		return func(e *env) error {
			root, err := walletRoot(*dir)
			if err != nil {
				return err
			}
			hk, err := wallet.CreateHotkey(root, e.args[0], e.args[1])
			if err != nil {
				return walletErr("hotkey", err)
			}
			_, err = fmt.Fprintf(e.stdout, "Created hotkey %q of wallet %q: %s\n  %s\n", e.args[1], e.args[0], hk,
				filepath.Join(wallet.Dir(root, e.args[0]), "hotkeys", e.args[1]))
			return err
		}
	},
}

// walletView is the JSON of one wallet in wallet list and show.
type walletView struct {
	Name    string            `json:"name"`
	Path    string            `json:"path"`
	Coldkey string            `json:"coldkey,omitempty"`
	Hotkeys []hotkeyView      `json:"hotkeys"`
	Error   string            `json:"error,omitempty"`
	Account *node.AccountInfo `json:"account,omitempty"` // with --node
}

type hotkeyView struct {
	Name    string            `json:"name"`
	Address string            `json:"address,omitempty"`
	Error   string            `json:"error,omitempty"`
	Account *node.AccountInfo `json:"account,omitempty"`
}

// viewWallet reads a wallet's keys; a key that cannot be read is reported
// in the view rather than failing.
func viewWallet(root, name string) (walletView, *wallet.Wallet) {
	v := walletView{Name: name, Path: wallet.Dir(root, name), Hotkeys: []hotkeyView{}}
	w, err := wallet.Load(root, name)
	if err != nil {
		v.Error = err.Error()
		return v, nil
	}
	v.Coldkey = w.ColdkeyAddress().String()
	names, err := w.HotkeyNames()
	if err != nil {
		v.Error = err.Error()
	}
	for _, n := range names {
		hv := hotkeyView{Name: n}
		if k, err := w.Hotkey(n); err != nil {
			hv.Error = err.Error()
		} else {
			hv.Address = types.AccountIDFromPrivateKey(k).String()
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
		"hotkeys. A key file that cannot be used (permissions, damage) is shown with\n" +
		"the reason. Example:\n\n  taobox wallet list",
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
				fmt.Fprintln(tw, "WALLET\tKEY\tADDRESS")
				for _, v := range views {
					if v.Error != "" {
						fmt.Fprintf(tw, "%s\tcoldkey\tunusable: %s\n", v.Name, v.Error)
						continue
					}
					fmt.Fprintf(tw, "%s\tcoldkey\t%s\n", v.Name, v.Coldkey)
					for _, h := range v.Hotkeys {
						addr := h.Address
						if h.Error != "" {
							addr = "unusable: " + h.Error
						}
						fmt.Fprintf(tw, "\thotkey %s\t%s\n", h.Name, addr)
					}
				}
				tw.Flush()
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
					fmt.Fprintln(tw, "KEY\tADDRESS\tFREE τ\tSTAKED τ\tNONCE")
				} else {
					fmt.Fprintln(tw, "KEY\tADDRESS")
				}
				row := func(key, addr string, a *node.AccountInfo) {
					if a != nil {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", key, addr, formatTAO(a.Free), formatTAO(a.Staked), a.Nonce)
					} else {
						fmt.Fprintf(tw, "%s\t%s\n", key, addr)
					}
				}
				row("coldkey", v.Coldkey, v.Account)
				for _, h := range v.Hotkeys {
					if h.Error != "" {
						fmt.Fprintf(tw, "hotkey %s\tunusable: %s\n", h.Name, h.Error)
						continue
					}
					row("hotkey "+h.Name, h.Address, h.Account)
				}
				tw.Flush()
				if len(v.Hotkeys) == 0 {
					fmt.Fprintf(&b, "\nNo hotkeys yet: taobox wallet new-hotkey %s NAME\n", v.Name)
				}
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}
