package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"taobox/chain/node"
	"taobox/wallet"
)

// logLevelFlag defines --log-level on fs.
func logLevelFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("log-level", def, "the `LEVEL` of the logs on stderr: debug, info, warn or error")
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, &usageError{"log-level", fmt.Sprintf("%q: want debug, info, warn or error", s)}
	}
	return l, nil
}

// withTermSignal returns ctx also cancelled by SIGTERM (main cancels on
// SIGINT), so that service managers stop long-running commands cleanly.
func withTermSignal(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

var nodeCommand = &command{
	name:    "node",
	args:    "--data DIR --genesis FILE --authority KEYFILE [--block-time 12s] [--api 127.0.0.1:7744]",
	summary: "run a chain node: a single authority producing a block every --block-time",
	help: "Runs a chain node with its data in DIR (created if needed): the chain of\n" +
		"GENESIS (see 'taobox genesis'), produced by the one authority whose key is\n" +
		"KEYFILE, a key file such as a wallet's coldkey or hotkey. It serves the\n" +
		"local JSON API that 'taobox tx', 'taobox metagraph' and 'taobox wallet show\n" +
		"--node' use, on a loopback address only (it has no authentication). Logs\n" +
		"go to stderr. Ctrl-C or SIGTERM stops it cleanly; restarted with the same\n" +
		"DIR it continues the chain. Example:\n\n" +
		"  taobox wallet create authority\n" +
		"  taobox genesis --devnet --fund alice=1000 --out genesis.json\n" +
		"  taobox node --data ./chain --genesis genesis.json \\\n" +
		"      --authority ~/.taobox/wallets/authority/coldkey --block-time 1s",
	setup: func(fs *flag.FlagSet) func(*env) error {
		data := fs.String("data", "", "the `DIR` that holds the chain (required)")
		genesis := fs.String("genesis", "", "the genesis `FILE` (required)")
		authority := fs.String("authority", "", "the `KEYFILE` of the block producer, for example ~/.taobox/wallets/NAME/coldkey (required)")
		blockTime := fs.Duration("block-time", node.DefaultBlockTime, "the `interval` between blocks")
		api := fs.String("api", "127.0.0.1:7744", "the `host:port` of the JSON API, on loopback (port 0: any free port)")
		keep := fs.Uint64("keep-blocks", node.DefaultKeepBlocks, "keep the bodies and events of the last `N` blocks")
		level := logLevelFlag(fs, "info")
		backend := backendFlag(fs)
		return func(e *env) error {
			var missing []string
			for _, f := range []struct{ name, v string }{{"--data", *data}, {"--genesis", *genesis}, {"--authority", *authority}} {
				if f.v == "" {
					missing = append(missing, f.name)
				}
			}
			if len(missing) > 0 {
				return &usageError{"flags", fmt.Sprintf("%s required (see 'taobox help node')", strings.Join(missing, ", "))}
			}
			if *blockTime < time.Millisecond {
				return &usageError{"block-time", fmt.Sprintf("%v is too short (at least 1ms; 12s is the default)", *blockTime)}
			}
			lvl, err := parseLogLevel(*level)
			if err != nil {
				return err
			}
			g, err := readGenesis(*genesis)
			if err != nil {
				return err
			}
			key, err := wallet.LoadKeyFile(*authority)
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					return &usageError{"authority", fmt.Sprintf("%s does not exist (create a key: taobox wallet create NAME)", *authority)}
				}
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
			engine, err := startEngine(e.ctx, *backend, log)
			if err != nil {
				return err
			}
			defer engine.Close()
			n, err := node.Open(node.Config{
				DataDir: *data, Genesis: g, Authority: key, BlockTime: *blockTime,
				APIAddr: *api, Logger: log, KeepBlocks: *keep, Engine: engine,
			})
			if err != nil {
				return err
			}
			ctx, stop := withTermSignal(e.ctx)
			defer stop()
			runErr := n.Run(ctx)
			if err := n.Close(); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		}
	},
}
