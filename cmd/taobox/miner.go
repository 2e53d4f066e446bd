package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/miner"
	"taobox/wallet"
)

var minerCommand = &command{
	name:    "miner",
	args:    "--netuid N --hotkey H [--wallet NAME] [--listen ADDR] [--model FILE] [--register TAO] [--serve-host HOST] [--backend auto|cpu|cuda] [--metrics ADDR] [--node URL]",
	summary: "serve inference tasks to validators over QUIC (the task protocol)",
	help: "Runs a miner: loads the model (default: the embedded tiny model), listens\n" +
		"for validators' task requests on UDP --listen (QUIC, ALPN taobox-task/2 or /1,\n" +
		"TLS with the hotkey as certificate key), admits only senders that the node\n" +
		"lists on --netuid with a validator permit and --min-stake, and streams the\n" +
		"model's tokens with a signed final frame (docs/task-protocol.md). It\n" +
		"advertises the SHA-256 of its model file and refuses requests for another.\n" +
		"With --register TAO it first registers the hotkey on the subnet if it has\n" +
		"no uid there (the coldkey pays the burn, at most TAO). With --serve-host it\n" +
		"then publishes its endpoint on chain (tx serve, signed\n" +
		"by the hotkey, waited for) and, once serving, asks the node to have a peer\n" +
		"connect back to it (POST /v1/probe; the node needs --p2p): when no peer\n" +
		"can reach it, a loud warning on stderr says what to check. --metrics serves Prometheus metrics at /metrics and health at /healthz.\n" +
		"With --backend auto (the default) and an NVIDIA GPU with taobox-cuda beside\n" +
		"taobox, the model runs in the GPU runner, one answer at a time; while the\n" +
		"runner is down the CPU answers (--slots together), and an answer the GPU\n" +
		"fails mid-way finishes on the CPU. --backend cpu never uses the GPU;\n" +
		"--backend cuda is an error without one.\n" +
		"Runs until interrupted. Example:\n\n" +
		"  taobox miner --wallet alice --hotkey miner1 --netuid 1 --listen 0.0.0.0:8091 --serve-host 203.0.113.7",
	setup: func(fs *flag.FlagSet) func(*env) error {
		wallets := walletsFlag(fs)
		walletName := fs.String("wallet", "default", "the `NAME` of the wallet that holds the hotkey")
		hotkey := fs.String("hotkey", "", "the miner's hotkey `H` (a hotkey name of the wallet)")
		netuid := netuidFlag(fs)
		nodeURL := nodeFlag(fs)
		listen := fs.String("listen", "0.0.0.0:8091", "the UDP `ADDR` to serve tasks on")
		modelPath := fs.String("model", "", "the model `FILE` (GGUF; default: the embedded tiny model)")
		serveHost := fs.String("serve-host", "", "publish the endpoint on chain as `HOST` and the --listen port before serving")
		register := fs.String("register", "", "if the hotkey has no uid on --netuid, register it first, paying at most `TAO` (signed by the wallet's coldkey, which must be on this machine)")
		of := addObsFlags(fs, "info")
		minStake := fs.Uint64("min-stake", 0, "the least stake in `RAO` a validator needs")
		backend := backendFlag(fs)
		slots := fs.Int("slots", 8, "answer up to `N` tasks together, one token of each per batched model step (1: one at a time; at most 16; each holds a KV cache)")
		unlock := unlockFlags(fs)
		return func(e *env) error {
			o, err := of.open(e)
			if err != nil {
				return err
			}
			defer o.Close()
			n, err := openNeuron(netuid, *nodeURL, *wallets, *walletName, *hotkey, *modelPath, unlock.unlocker(e))
			if err != nil {
				return err
			}
			c, key, mf, hash := n.c, n.key, n.mf, n.hash
			stop := []int{2} // LLaMA SentencePiece EOS, as the validator assumes
			if mf.tok != nil {
				stop = []int{mf.tok.EOS()}
			}
			log := o.log
			accel, engine, done, err := neuronAccel(e.ctx, *backend, *modelPath, mf, log)
			if err != nil {
				return err
			}
			defer done()
			mn, err := miner.New(miner.Config{
				Key: key, Netuid: uint16(netuid.v), Model: mf.m, ModelHash: hash, StopIDs: stop,
				Chain: &apiChain{c: c, ctx: e.ctx}, Limits: miner.Limits{MinStake: *minStake, Slots: *slots},
				Logger: log, Accel: accel,
			})
			if err != nil {
				return err
			}
			o.reg.MustRegister(mn.Collector())
			o.health.Add("miner", mn.Healthy)
			pc, err := net.ListenPacket("udp", *listen)
			if err != nil {
				return listenError("listen", *listen, err)
			}
			defer pc.Close()
			if *register != "" {
				if err := registerHotkey(e, c, *wallets, *walletName, key, uint16(netuid.v), *register, unlock.unlocker(e)); err != nil {
					return err
				}
			}
			if *serveHost != "" {
				port := pc.LocalAddr().(*net.UDPAddr).Port
				call := types.Serve{Netuid: types.Netuid(netuid.v), Host: *serveHost, Port: uint16(port), TLSKey: types.AccountIDFromPrivateKey(key)}
				if err := sendTx(e, c, &txPlan{signer: key, call: call}, true, false); err != nil {
					return fmt.Errorf("publishing the endpoint: %w", err)
				}
			}
			where := "the CPU"
			switch pid := engine.RunnerPID(); {
			case accel != nil && pid != 0:
				where = fmt.Sprintf("the GPU runner (pid %d; the CPU when it is down)", pid)
			case accel != nil:
				where = "the CPU until the GPU runner restarts"
			}
			fmt.Fprintf(e.stdout, "miner %s on netuid %d at %s, model %s (sha256 %s…) on %s\n",
				types.AccountIDFromPrivateKey(key), netuid.v, pc.LocalAddr(), mf.path, mf.sha256[:16], where)
			ctx, cancel := withTermSignal(e.ctx)
			defer cancel()
			if *serveHost != "" {
				// Once serving, ask a peer of the node to connect back to
				// the published endpoint; warn loudly when it cannot, and
				// keep serving either way.
				port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
				go func() {
					select {
					case <-mn.Ready():
					case <-ctx.Done():
						return
					}
					checkReachable(ctx, e.stderr, c, *serveHost, port, types.AccountIDFromPrivateKey(key))
				}()
			}
			return mn.Serve(ctx, pc)
		}
	},
}

// checkReachable asks the node to have a peer connect back to the
// published endpoint and writes the outcome to w: one line when it is
// reachable or no peer can be asked, the loud warning of
// reachabilityWarning otherwise.
func checkReachable(ctx context.Context, w io.Writer, c *apiClient, host string, port uint16, key types.AccountID) {
	rep, err := c.probe(ctx, host, port, key)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		fmt.Fprintf(w, "reachability: cannot ask the node for a connect-back check of %s: %v\n", joinHostPort(host, port), err)
		return
	}
	warning, note := reachabilityWarning(rep)
	if warning != "" {
		io.WriteString(w, warning)
		return
	}
	fmt.Fprintf(w, "reachability: %s\n", note)
}

// registerHotkey registers the hotkey of key on netuid unless it already
// has a uid there: a burned registration at most maxPrice TAO, signed by the
// wallet's coldkey (unlocked only for this), waited for.
func registerHotkey(e *env, c *apiClient, wallets, walletName string, key ed25519.PrivateKey, netuid uint16, maxPrice string, u *wallet.Unlocker) error {
	limit, err := amountFlag("register", maxPrice)
	if err != nil {
		return err
	}
	hk := types.AccountIDFromPrivateKey(key)
	mg, err := (&apiChain{c: c, ctx: e.ctx}).Metagraph(netuid)
	if err != nil {
		return fmt.Errorf("checking the registration: %w", err)
	}
	for _, n := range mg.Neurons {
		if n.Hotkey == hk {
			fmt.Fprintf(e.stderr, "hotkey %s already has uid %d on subnet %d\n", hk, n.UID, netuid)
			return nil
		}
	}
	w, err := loadWallet(wallets, walletName)
	if err != nil {
		return err
	}
	w.Unlock = u
	ck, err := w.Coldkey()
	if err != nil {
		return fmt.Errorf("--register needs the wallet's coldkey to pay the burn: %w", err)
	}
	call := types.BurnedRegister{Netuid: types.Netuid(netuid), Hotkey: hk, MaxPrice: limit}
	if err := sendTx(e, c, &txPlan{signer: ck, call: call}, true, false); err != nil {
		return fmt.Errorf("registering the hotkey: %w", err)
	}
	return nil
}

// apiChain is the miner's view of the chain through a node's JSON API.
type apiChain struct {
	c   *apiClient
	ctx context.Context

	mu sync.Mutex
}

// Metagraph fetches GET /v1/metagraph/N (the miner caches it).
func (a *apiChain) Metagraph(netuid uint16) (*state.Metagraph, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	var mg node.MetagraphInfo
	if err := a.c.get(ctx, "/v1/metagraph/"+strconv.Itoa(int(netuid)), &mg); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("metagraph %d: %s", netuid, strings.TrimSpace(ae.msg))
		}
		return nil, err
	}
	out := &state.Metagraph{Netuid: types.Netuid(netuid), Neurons: make([]state.NeuronInfo, len(mg.Neurons))}
	for i, n := range mg.Neurons {
		out.Neurons[i] = state.NeuronInfo{
			Neuron: state.Neuron{Hotkey: n.Hotkey, Permit: n.ValidatorPermit, Active: n.Active},
			UID:    n.UID, Coldkey: n.Coldkey, Stake: n.Stake,
		}
	}
	return out, nil
}
