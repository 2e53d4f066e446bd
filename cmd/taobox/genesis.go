package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/wallet"
)

// devnetGenesis returns a genesis for a local test chain: subtensor's
// defaults, made fast for 1-second blocks. New subnets get tempo 10 (an
// epoch every 10 blocks), the root epoch runs every 5 blocks, the subnet
// lock is 10 TAO with no rate limit between registrations, and weights,
// serving, take changes and votes are limited to a few blocks instead of
// hours.
func devnetGenesis(name string, timeMs uint64, balances []state.GenesisBalance) *state.Genesis {
	p := state.DefaultParams()
	p.NetworkMinLock = 10 * types.RaoPerTAO
	p.NetworkRateLimit = 0
	p.LockReductionInterval = 1000
	p.TakeRateLimit = 10
	p.VotingPeriod = 50
	p.RootTempo = 5

	h := state.DefaultSubnetHyperparams()
	h.Tempo = 10
	h.ImmunityPeriod = 100
	h.WeightsRateLimit = 2
	h.ServingRateLimit = 2
	h.BurnHalfLife = 100
	h.MaxBurn = 10 * types.RaoPerTAO
	return &state.Genesis{ChainName: name, TimeMs: timeMs, Balances: balances, Params: p, SubnetDefaults: h}
}

// The devnet's authority epoch (blocks) and a genesis authority's default
// power (rao).
const (
	devnetAuthorityEpoch  = 20
	defaultAuthorityPower = 1000 * types.RaoPerTAO
)

// fundFlag collects --fund ADDR=TAO values.
type fundFlag []string

func (f *fundFlag) String() string     { return strings.Join(*f, " ") }
func (f *fundFlag) Set(v string) error { *f = append(*f, v); return nil }

var genesisCommand = &command{
	name:    "genesis",
	args:    "[--out FILE] [--chain-name N] [--fund ADDR=TAO]... [--authority ADDR[=TAO]]... [--authority-epoch N] [--devnet]",
	summary: "write a genesis file: the chain's name, funded accounts and parameters",
	help: "Writes a genesis: the first state of a chain, whose hash is the chain id\n" +
		"every transaction signs over. It holds the chain name, the funded accounts,\n" +
		"the chain-wide parameters and the defaults every new subnet starts with.\n" +
		"The file is checked before it is written, and an existing file is never\n" +
		"overwritten. Without --devnet the parameters are subtensor's (tempo 360,\n" +
		"a 1000 TAO subnet lock, 12-second blocks in mind); --devnet makes them fast\n" +
		"for a local chain with 1-second blocks: tempo 10, root epoch every 5 blocks,\n" +
		"a 10 TAO lock and short rate limits.\n\n" +
		"--fund takes an SS58 address or the name of a wallet (its coldkey) and an\n" +
		"amount of TAO; repeat it for more accounts.\n\n" +
		"--authority names a validator of the first authority epoch (an SS58\n" +
		"address or a wallet name: the key its node signs with) and its voting\n" +
		"power in TAO (default 1000); repeat it for more. Each authority epoch\n" +
		"(--authority-epoch blocks: 360 by default, 20 with --devnet) the set is\n" +
		"chosen again among these candidates by power plus delegated stake, top 64.\n" +
		"Without --authority the chain has one authority, the key of the node that\n" +
		"runs it, and no followers. Examples:\n\n" +
		"  taobox genesis --devnet --fund alice=1000 --out genesis.json\n" +
		"  taobox genesis --devnet --authority v1 --authority v2 --authority v3 --authority v4 --out g.json\n" +
		"  taobox genesis --chain-name mynet --fund 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY=21000 > g.json",
	setup: func(fs *flag.FlagSet) func(*env) error {
		out := fs.String("out", "-", "write to `FILE` (- for stdout)")
		name := fs.String("chain-name", "", "the chain's `name` (default taobox-devnet with --devnet, else taobox)")
		var funds fundFlag
		fs.Var(&funds, "fund", "fund an account: `ADDR=TAO`, ADDR an SS58 address or a wallet name (repeatable)")
		var auths fundFlag
		fs.Var(&auths, "authority", "an authority of the first epoch: `ADDR[=TAO]`, ADDR an SS58 address or a wallet name (repeatable)")
		epoch := fs.Uint64("authority-epoch", 0, "blocks per authority epoch (0: 360, or 20 with --devnet)")
		devnet := fs.Bool("devnet", false, "fast parameters for a local chain (tempo 10, small lock, short rate limits)")
		dir := walletsFlag(fs)
		return func(e *env) error {
			var balances []state.GenesisBalance
			seen := map[types.AccountID]string{}
			for _, f := range funds {
				addr, amount, ok := strings.Cut(f, "=")
				if !ok {
					return &usageError{"fund", fmt.Sprintf("%q: want ADDR=TAO, for example alice=1000", f)}
				}
				rao, err := parseTAO(amount)
				if err != nil {
					return &usageError{"fund", err.Error()}
				}
				id, err := resolveAccount(*dir, addr)
				if err != nil {
					return err
				}
				if prev, dup := seen[id]; dup {
					return &usageError{"fund", fmt.Sprintf("%s is funded twice (%s and %s)", id, prev, f)}
				}
				seen[id] = f
				balances = append(balances, state.GenesisBalance{Account: id, Free: rao})
			}
			now := uint64(time.Now().UnixMilli())
			var g *state.Genesis
			if *devnet {
				g = devnetGenesis("taobox-devnet", now, balances)
			} else {
				g = &state.Genesis{ChainName: "taobox", TimeMs: now, Balances: balances,
					Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams()}
			}
			if *name != "" {
				g.ChainName = *name
			}
			for _, a := range auths {
				addr, power, hasPower := strings.Cut(a, "=")
				rao := uint64(defaultAuthorityPower)
				if hasPower {
					var err error
					if rao, err = parseTAO(power); err != nil {
						return &usageError{"authority", err.Error()}
					}
				}
				id, err := resolveAccount(*dir, addr)
				if err != nil {
					return err
				}
				g.Authorities = append(g.Authorities, state.GenesisAuthority{Hotkey: id, Power: rao})
			}
			if *epoch > 0 {
				g.AuthorityEpoch = *epoch
			} else if *devnet && len(g.Authorities) > 0 {
				g.AuthorityEpoch = devnetAuthorityEpoch
			}
			if err := g.Validate(); err != nil {
				return &usageError{"genesis", err.Error()}
			}
			data, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				return err
			}
			data = append(data, '\n')
			if *out == "-" {
				_, err = e.stdout.Write(data)
				return err
			}
			if err := wallet.WriteFileAtomic(*out, data, false); err != nil {
				if errors.Is(err, iofs.ErrExist) {
					return &usageError{"out", fmt.Sprintf("%s exists; a genesis is never overwritten (remove it or pick another name)", *out)}
				}
				return err
			}
			os.Chmod(*out, 0o644) // a genesis is public
			_, err = fmt.Fprintf(e.stdout, "Wrote the genesis of chain %q to %s\n  chain id  %s\n  accounts  %d funded, %s TAO in all\n",
				g.ChainName, *out, g.ID(), len(balances), formatTAO(total(balances)))
			if err == nil && len(g.Authorities) > 0 {
				_, err = fmt.Fprintf(e.stdout, "  authorities %d, a new set every %d blocks\n", len(g.Authorities), g.EpochBlocks())
			}
			return err
		}
	},
}

func total(b []state.GenesisBalance) uint64 {
	var t uint64
	for _, x := range b {
		t += x.Free
	}
	return t
}

// resolveAccount reads an SS58 address, or else the coldkey address of a
// wallet of that name.
func resolveAccount(dir, s string) (types.AccountID, error) {
	id, perr := types.ParseAddress(s)
	if perr == nil {
		return id, nil
	}
	if wallet.CheckName(s) == nil {
		root, err := walletRoot(dir)
		if err != nil {
			return types.AccountID{}, err
		}
		w, err := wallet.Load(root, s)
		if err == nil {
			return w.ColdkeyAddress(), nil
		}
		if !errors.Is(err, wallet.ErrNotFound) {
			return types.AccountID{}, err
		}
	}
	return types.AccountID{}, &usageError{"address", fmt.Sprintf("%q is neither an SS58 address (%v) nor the name of a wallet", s,
		strings.TrimPrefix(perr.Error(), "types: bad address: "))}
}

// readGenesis reads and checks a genesis file; unknown fields are errors.
func readGenesis(path string) (*state.Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, &usageError{"genesis", fmt.Sprintf("%s does not exist (write one: taobox genesis --out %s)", path, path)}
		}
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var g state.Genesis
	if err := dec.Decode(&g); err != nil {
		return nil, &usageError{"genesis", fmt.Sprintf("%s: %v", path, err)}
	}
	if dec.More() {
		return nil, &usageError{"genesis", fmt.Sprintf("%s: data after the genesis object", path)}
	}
	if err := g.Validate(); err != nil {
		return nil, &usageError{"genesis", fmt.Sprintf("%s: %v", path, err)}
	}
	return &g, nil
}
