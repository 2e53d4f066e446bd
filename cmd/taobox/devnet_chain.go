package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/chain/yuma"
)

// devValidatorKey is the devnet's key of chain validator i (public: test
// only). Validator 0 keeps the single-authority devnet's key.
func devValidatorKey(i int) ed25519.PrivateKey {
	if i == 0 {
		return devKey("authority")
	}
	return devKey(fmt.Sprintf("authority-%d", i))
}

// withDevAuthorities makes g a chain of n validators of equal power, with
// the devnet's short authority epoch.
func withDevAuthorities(g *state.Genesis, n int) {
	g.Authorities = nil
	for i := range n {
		g.Authorities = append(g.Authorities, state.GenesisAuthority{
			Hotkey: types.AccountIDFromPrivateKey(devValidatorKey(i)), Power: defaultAuthorityPower,
		})
	}
	g.AuthorityEpoch = devnetAuthorityEpoch
}

// devChain is the devnet's chain: its validator nodes in this process,
// each with its own store and its own QUIC endpoint on 127.0.0.1, meshed
// over real QUIC. Node 0 serves the API the devnet's neurons use; the
// others run until stop.
type devChain struct {
	nodes []*node.Node
	nets  []*chainNet

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // the first Run error of nodes[1:]
}

// startDevChain opens the validators of g (whose authorities are
// devValidatorKey(0…n-1)) under dir and starts nodes 1…n-1; the caller
// runs nodes[0]. With one validator there is no network.
func startDevChain(ctx context.Context, dir string, g *state.Genesis, blockTime time.Duration, log *slog.Logger, engine yuma.Engine) (*devChain, error) {
	dc := &devChain{}
	n := max(len(g.Authorities), 1)
	runCtx, cancel := context.WithCancel(ctx)
	dc.cancel = cancel
	var addrs []string
	for i := range n {
		l := log
		if n > 1 {
			l = log.With("validator", i)
		}
		cfg := node.Config{
			DataDir: filepath.Join(dir, "chain"), Genesis: g, Authority: devValidatorKey(i),
			BlockTime: blockTime, Logger: l, Engine: engine,
		}
		if i == 0 {
			cfg.APIAddr = "127.0.0.1:0"
		} else {
			cfg.DataDir = filepath.Join(dir, fmt.Sprintf("chain-%d", i))
		}
		if n > 1 {
			// Each dials the ones before it: a full mesh on loopback.
			cn, err := startChainNet(runCtx, netConfig{
				Key: devValidatorKey(i), ChainID: g.ID(), Listen: "127.0.0.1:0", Bootstrap: append([]string(nil), addrs...), Logger: l,
			})
			if err != nil {
				dc.stop()
				return nil, err
			}
			dc.nets = append(dc.nets, cn)
			addrs = append(addrs, cn.host.Addr().String())
			cfg.Network = cn
			cfg.Peers = func() int { return len(cn.host.Peers()) }
		}
		nd, err := node.Open(cfg)
		if err != nil {
			dc.stop()
			return nil, err
		}
		dc.nodes = append(dc.nodes, nd)
		if n > 1 {
			dc.nets[i].attach(runCtx, nd, g.EpochBlocks())
		}
		if i > 0 {
			dc.wg.Add(1)
			go func() {
				defer dc.wg.Done()
				if err := nd.Run(runCtx); err != nil && runCtx.Err() == nil && !errors.Is(err, node.ErrClosed) {
					dc.mu.Lock()
					if dc.err == nil {
						dc.err = fmt.Errorf("chain validator %d stopped: %w", i, err)
					}
					dc.mu.Unlock()
				}
			}()
		}
	}
	return dc, nil
}

// Err returns the first failure of a validator other than node 0.
func (dc *devChain) Err() error {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.err
}

// stop stops the validators other than node 0 (the caller closes it) and
// all the network endpoints; it returns the first error of closing them.
func (dc *devChain) stop() error {
	dc.cancel()
	dc.wg.Wait()
	var errs []error
	for i, nd := range dc.nodes {
		if i > 0 {
			errs = append(errs, nd.Close())
		}
	}
	for _, cn := range dc.nets {
		cn.Close()
	}
	return errors.Join(errs...)
}
