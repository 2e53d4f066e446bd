package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"taobox/chain/node"
	"taobox/chain/types"
	"taobox/internal/obs"
	"taobox/wallet"
)

// logLevelFlag defines --log-level on fs.
func logLevelFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("log-level", def, "the `LEVEL` of the logs: debug, info, warn or error")
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
	args:    "--data DIR --genesis FILE [--validator KEYFILE] [--p2p ADDR --peers LIST] [--block-time 12s] [--api 127.0.0.1:7744] [--metrics ADDR] [--log-file PATH]",
	summary: "run a chain node: a validator taking part in BFT consensus, or a follower",
	help: "Runs a chain node with its data in DIR (created if needed): the chain of\n" +
		"GENESIS (see 'taobox genesis'). With --validator KEYFILE (a wallet key file,\n" +
		"for example a hotkey) the node signs proposals and votes whenever that key\n" +
		"is in the authority set (the genesis authorities, ranked by delegated stake\n" +
		"each authority epoch); a block is final once more than 2/3 of the set's\n" +
		"stake precommitted it. Without --validator the node follows: it verifies\n" +
		"each finalized block's certificate and applies it.\n\n" +
		"--p2p ADDR listens for peers on that UDP address (QUIC); --peers dials\n" +
		"host:port or ID@host:port addresses (comma-separated) and learns more from\n" +
		"them. A new node with an empty DIR first syncs a snapshot: it verifies the\n" +
		"chain of authority handoffs from the genesis, downloads the state at the\n" +
		"newest proven epoch boundary from several peers in parallel (each chunk\n" +
		"checked against the state root; a killed sync resumes without fetching a\n" +
		"finished chunk again), then fetches the blocks after it. --sync blocks\n" +
		"replays every block from the genesis instead. With --p2p the node also\n" +
		"checks endpoints from outside: POST /v1/probe asks a peer to connect back\n" +
		"(what 'taobox miner --serve-host' and 'taobox status' use), and it connects\n" +
		"back for its peers, only to their own address, one probe per peer per 10 s.\n\n" +
		"It serves the local JSON API that 'taobox tx', 'taobox metagraph' and\n" +
		"'taobox status' use, on a loopback address only. Ctrl-C or SIGTERM stops it\n" +
		"cleanly; restarted with the same DIR it continues, and a validator never\n" +
		"signs two conflicting votes across restarts. Examples:\n\n" +
		"  taobox genesis --devnet --fund alice=1000 --authority alice --out genesis.json\n" +
		"  taobox node --data ./chain --genesis genesis.json \\\n" +
		"      --validator ~/.taobox/wallets/alice/coldkey --p2p 0.0.0.0:7745 --block-time 1s\n" +
		"  taobox node --data ./follower --genesis genesis.json --p2p 0.0.0.0:7746 \\\n" +
		"      --peers 192.0.2.10:7745 --api 127.0.0.1:7754",
	setup: func(fs *flag.FlagSet) func(*env) error {
		data := fs.String("data", "", "the `DIR` that holds the chain (required)")
		genesis := fs.String("genesis", "", "the genesis `FILE` (required)")
		validatorKey := fs.String("validator", "", "sign as a validator with the key in `KEYFILE`, for example ~/.taobox/wallets/NAME/hotkeys/default")
		fs.StringVar(validatorKey, "authority", "", "the same as --validator (its older name)")
		unlock := unlockFlags(fs)
		p2pAddr := fs.String("p2p", "", "listen for peers on the UDP `host:port` (empty: no peers, a lone validator)")
		peers := fs.String("peers", "", "dial these peers: a comma-separated `LIST` of host:port or ID@host:port")
		syncMode := fs.String("sync", "snapshot", "how an empty DIR catches up: `snapshot` or blocks")
		blockTime := fs.Duration("block-time", node.DefaultBlockTime, "the `interval` between blocks")
		api := fs.String("api", "127.0.0.1:7744", "the `host:port` of the JSON API, on loopback (port 0: any free port)")
		keep := fs.Uint64("keep-blocks", node.DefaultKeepBlocks, "keep the bodies and events of the last `N` blocks")
		of := addObsFlags(fs, "info")
		backend := backendFlag(fs)
		return func(e *env) error {
			var missing []string
			for _, f := range []struct{ name, v string }{{"--data", *data}, {"--genesis", *genesis}} {
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
			if *syncMode != "snapshot" && *syncMode != "blocks" {
				return &usageError{"sync", fmt.Sprintf("%q: want snapshot or blocks", *syncMode)}
			}
			var bootstrap []string
			for _, p := range strings.Split(*peers, ",") {
				if p = strings.TrimSpace(p); p != "" {
					bootstrap = append(bootstrap, p)
				}
			}
			if len(bootstrap) > 0 && *p2pAddr == "" {
				return &usageError{"peers", "--peers needs --p2p ADDR to listen on (for example --p2p 0.0.0.0:7745)"}
			}
			o, err := of.open(e)
			if err != nil {
				return err
			}
			defer o.Close()
			g, err := readGenesis(*genesis)
			if err != nil {
				return err
			}
			if *validatorKey == "" && len(g.Authorities) == 0 {
				return &usageError{"validator", "this genesis lists no authorities, so this node's key is the chain's only authority: give --validator KEYFILE"}
			}
			var key ed25519.PrivateKey
			if *validatorKey != "" {
				if key, err = wallet.LoadKeyFile(*validatorKey, unlock.unlocker(e)); err != nil {
					if errors.Is(err, iofs.ErrNotExist) {
						return &usageError{"validator", fmt.Sprintf("%s does not exist (create a key: taobox wallet create NAME)", *validatorKey)}
					}
					return err
				}
			}
			log := o.log
			ctx, stop := withTermSignal(e.ctx)
			defer stop()
			var cn *chainNet
			var syncProgress atomic.Uint64
			if *p2pAddr != "" {
				nodeKey := key
				if nodeKey == nil { // a follower: a fresh peer id each start
					if _, nodeKey, err = types.GenerateKey(rand.Reader); err != nil {
						return err
					}
				}
				if cn, err = startChainNet(ctx, netConfig{
					Key: nodeKey, ChainID: g.ID(), Listen: *p2pAddr, Bootstrap: bootstrap, DataDir: *data, Logger: log,
				}); err != nil {
					return err
				}
				defer cn.Close()
				o.reg.MustRegister(cn.host.Collector())
				log.Info("p2p listening", "addr", cn.host.Addr().String(), "peer_id", cn.host.ID())
				if *syncMode == "snapshot" {
					// A taken API port fails now, not after a sync of
					// minutes (node.Open binds it for good below).
					ln, err := net.Listen("tcp", *api)
					if err != nil {
						return listenError("api", *api, err)
					}
					ln.Close()
					if err := cn.syncSnapshot(ctx, *data, g, *keep, key, &syncProgress); err != nil {
						return err
					}
				}
			}
			engine, err := startEngine(ctx, *backend, log)
			if err != nil {
				return err
			}
			defer engine.Close()
			cfg := node.Config{
				DataDir: *data, Genesis: g, Authority: key, BlockTime: *blockTime,
				APIAddr: *api, Logger: log, KeepBlocks: *keep, Engine: engine,
			}
			mo := node.MetricsOptions{BlockTime: *blockTime}
			if cn != nil {
				cfg.Network = cn
				cfg.Probe = cn.askProbe
				cfg.Peers = func() int { return len(cn.host.Peers()) }
				mo.Peers = func() float64 { return float64(len(cn.host.Peers())) }
				mo.SyncProgress = func() float64 { return math.Float64frombits(syncProgress.Load()) }
			}
			n, err := node.Open(cfg)
			if err != nil {
				return err
			}
			if cn != nil {
				cn.attach(ctx, n, g.EpochBlocks())
				syncProgress.Store(math.Float64bits(1))
			}
			nm := node.NewMetrics(n, mo)
			o.reg.MustRegister(nm, obs.GPUCollector(engine))
			o.health.Add("node", nm.Healthy)
			go nm.Follow(ctx)
			runErr := n.Run(ctx)
			if err := n.Close(); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		}
	},
}
