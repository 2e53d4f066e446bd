package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/chain/yuma"
	"taobox/validator"
)

var validatorCommand = &command{
	name:    "validator",
	args:    "--netuid N --hotkey H [--wallet W] [--node URL] [--model FILE] [--interval D] [--state DIR] [--once] [--backend auto|cpu|cuda] [--metrics ADDR]",
	summary: "run a validator: query miners, verify their answers, score them, set weights",
	help: "Runs a validator for subnet --netuid with the hotkey --hotkey of wallet\n" +
		"--wallet, against the node at --node. Every --interval it sends a fresh task\n" +
		"set to every miner that serves an endpoint (or --sample of them), verifies\n" +
		"each answer with its own copy of --model (default: the embedded tiny model)\n" +
		"by one teacher-forced pass, and keeps a moving average of correctness ×\n" +
		"speed per uid in --state (default <wallets>/validator/<hotkey>-<netuid>), so\n" +
		"a restart keeps the scores. When the weights rate limit allows, it submits\n" +
		"set_weights (or commit_weights, then reveal_weights, on commit-reveal\n" +
		"subnets), signed by the hotkey, and prints when the next window opens.\n" +
		"With --backend auto (the default) and an NVIDIA GPU with taobox-cuda beside\n" +
		"taobox, the verification pass runs in the GPU runner (the CPU model when\n" +
		"the runner is down or fails mid-pass).\n" +
		"Example:\n\n" +
		"  taobox validator --wallet alice --hotkey validator --netuid 1 --interval 30s",
	setup: func(fs *flag.FlagSet) func(*env) error {
		wallets := walletsFlag(fs)
		walletName := fs.String("wallet", "default", "the `NAME` of the wallet holding the hotkey")
		nodeURL := nodeFlag(fs)
		hotkey := fs.String("hotkey", "", "the `NAME` (or address) of the validator's hotkey in the wallet")
		netuid := netuidFlag(fs)
		modelPath := fs.String("model", "", "the model `FILE` (GGUF) miners must serve; default the embedded tiny model")
		interval := fs.Duration("interval", 30*time.Second, "time between rounds")
		stateDir := fs.String("state", "", "the `DIR` of the score file (default <wallets>/validator/<hotkey>-<netuid>)")
		reset := fs.Bool("reset-state", false, "start with empty scores if the score file is corrupt")
		sample := fs.Int("sample", 0, "miners queried per round (0: all that serve)")
		weightsVersion := fs.Uint64("weights-version", validator.WeightsVersion, "the weights version `KEY` sent with weights; a subnet whose weights_version is higher refuses them (its owner requires a newer validator)")
		tasks := fs.Int("tasks", validator.DefaultTasks, "tasks per miner per round, half greedy and half sampled; a miner passes a round only if every answer verifies, so more tasks reject a substituted model more often (docs/task-protocol.md §9)")
		concurrency := fs.Int("concurrency", 8, "miners queried at once")
		deadline := fs.Duration("deadline", 10*time.Second, "time limit of one task")
		once := fs.Bool("once", false, "run one round, set weights if the window is open, and exit")
		of := addObsFlags(fs, "info")
		openaiAddr := fs.String("openai", "", "also serve an OpenAI-compatible endpoint for staked callers on `ADDR` (e.g. 127.0.0.1:8090; docs/openai.md)")
		openaiRate := fs.Float64("openai-rate", 1, "endpoint requests per minute per TAO of the caller's stake")
		openaiMin := fs.String("openai-min-stake", "0.000000001", "the least stake, in `TAO`, a caller of the endpoint needs")
		unlock := unlockFlags(fs)
		backend := backendFlag(fs)
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
			if mf.tok == nil {
				return &usageError{"model", fmt.Sprintf("%s has no tokenizer, which the task generator needs: %v", mf.path, mf.tokErr)}
			}
			mf.m.SetThreads(0)
			dir := *stateDir
			if dir == "" {
				root, err := walletRoot(*wallets)
				if err != nil {
					return err
				}
				dir = filepath.Join(root, "validator", fmt.Sprintf("%s-%d", types.AccountIDFromPrivateKey(key), netuid.v))
			}
			accel, _, done, err := neuronAccel(e.ctx, *backend, *modelPath, mf, o.log)
			if err != nil {
				return err
			}
			defer done()
			vm := validator.NewMetrics(types.AccountIDFromPrivateKey(key), uint16(netuid.v))
			o.reg.MustRegister(vm)
			o.health.Add("validator", vm.Healthy)
			ch := &nodeChain{ctx: e.ctx, c: c}
			sub := &nodeSubmitter{ctx: e.ctx, c: c, key: key, log: e.stderr}
			v, err := validator.New(validator.Config{
				Key: key, Netuid: uint16(netuid.v), Model: mf.m, Tokenizer: mf.tok, ModelHash: hash,
				Chain: ch, Submit: vm.CountSubmit(sub.submit, rejectStatus), StateDir: dir, ResetCorrupt: *reset,
				Concurrency: *concurrency, Deadline: *deadline, Sample: *sample, Tasks: *tasks, WeightsVersion: *weightsVersion,
				Logger: o.log, Accel: accel,
			})
			if err != nil {
				return err
			}
			defer v.Close()
			fmt.Fprintf(e.stderr, "validator %s on subnet %d, model %s (sha256 %s…), scores in %s\n",
				v.Hotkey(), netuid.v, mf.path, mf.sha256[:12], dir)
			if *openaiAddr != "" {
				minStake, err := amountFlag("openai-min-stake", *openaiMin)
				if err != nil {
					return err
				}
				if !(*openaiRate > 0) {
					return &usageError{"openai-rate", fmt.Sprintf("%v must be more than 0", *openaiRate)}
				}
				stop, err := startOpenAI(e, openAIOptions{addr: *openaiAddr, perTAO: *openaiRate, minStake: minStake, obs: o}, v, n, ch, uint16(netuid.v))
				if err != nil {
					return err
				}
				defer stop()
			}
			t := time.NewTicker(*interval)
			defer t.Stop()
			for {
				if err := validatorStep(e, v, ch, vm); err != nil {
					if e.ctx.Err() != nil {
						return nil
					}
					if *once {
						return err
					}
					fmt.Fprintf(e.stderr, "validator: %v\n", err)
				}
				if *once {
					return nil
				}
				select {
				case <-e.ctx.Done():
					return nil
				case <-t.C:
				}
			}
		}
	},
}

// validatorStep runs one round, prints it, and sets weights if due; vm
// sees the round and the next weight window.
func validatorStep(e *env, v *validator.Validator, ch *nodeChain, vm *validator.Metrics) error {
	rep, err := v.Round(e.ctx)
	vm.ObserveRound(rep, err, v.Scores())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "round %d at block %d: %d miners in %v\n", rep.Round, rep.Height, len(rep.Miners), rep.Duration.Round(time.Millisecond))
	for _, m := range rep.Miners {
		verdict := "pass"
		if !m.Pass {
			verdict = "FAIL " + m.Reason
		}
		fmt.Fprintf(e.stdout, "  uid %3d  %5d tokens  %8.1f tok/s  round %.3f  score %.4f  %s\n", m.UID, m.Tokens, m.TokensPerSec, m.RoundScore, m.Score, verdict)
	}
	h := ch.Height()
	ok, setErr := v.MaybeSetWeights(h)
	win, err := v.NextWindow()
	if err != nil {
		return errors.Join(setErr, err)
	}
	vm.ObserveWindow(h, win) // also when the weights were refused: the window metrics stay current
	if setErr != nil {
		return setErr
	}
	if ok {
		fmt.Fprintf(e.stdout, "  weights submitted at block %d\n", h)
	}
	fmt.Fprintf(e.stdout, "  next weight window: %s at block %d (now %d)\n", win.Action, win.Block, h)
	return nil
}

// nodeChain is validator.Chain over the node's JSON API.
type nodeChain struct {
	ctx    context.Context
	c      *apiClient
	mu     sync.Mutex
	height uint64
}

func (n *nodeChain) Height() uint64 {
	if h, err := n.c.head(n.ctx); err == nil {
		n.mu.Lock()
		n.height = max(n.height, h.Height)
		n.mu.Unlock()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.height
}

func (n *nodeChain) Metagraph(netuid uint16) (*state.Metagraph, error) {
	var sn node.SubnetInfo
	if err := n.c.get(n.ctx, fmt.Sprintf("/v1/subnet/%d", netuid), &sn); err != nil {
		return nil, err
	}
	var mi node.MetagraphInfo
	if err := n.c.get(n.ctx, fmt.Sprintf("/v1/metagraph/%d", netuid), &mi); err != nil {
		return nil, err
	}
	hp := sn.Hyperparams
	mg := &state.Metagraph{Netuid: types.Netuid(netuid), Subnet: state.Subnet{
		Owner: sn.Owner, OwnerHotkey: sn.OwnerHotkey, N: sn.N, Burn: sn.Burn, LastEpoch: sn.LastEpoch,
		EpochIndex: sn.EpochIndex, RegisteredAt: sn.RegisteredAt,
		Hyper: state.Hyperparams{
			Tempo: sn.Tempo, MinAllowedWeights: hp["min_allowed_weights"], MaxWeightLimit: hp["max_weight_limit"],
			WeightsVersion: hp["weights_version"], WeightsRateLimit: hp["weights_rate_limit"],
			CommitReveal: hp["commit_reveal"], RevealPeriod: hp["reveal_period"],
		},
	}}
	for _, nr := range mi.Neurons {
		info := state.NeuronInfo{UID: nr.UID, Coldkey: nr.Coldkey, Stake: nr.Stake, Take: nr.Take}
		info.Hotkey, info.LastUpdate, info.RegisteredAt, info.Permit, info.Active = nr.Hotkey, nr.LastUpdate, nr.RegisteredAt, nr.ValidatorPermit, nr.Active
		info.Axon = state.Axon{Block: nr.Axon.Block, Host: nr.Axon.Host, Port: nr.Axon.Port, TLSKey: nr.Axon.TLSKey}
		for _, p := range nr.Weights {
			info.Weights = append(info.Weights, yuma.Entry{UID: p[0], Value: p[1]})
		}
		mg.Neurons = append(mg.Neurons, info)
	}
	n.mu.Lock()
	n.height = max(n.height, mi.Block)
	n.mu.Unlock()
	return mg, nil
}

// nodeSubmitter signs calls with the hotkey and submits them without
// waiting (MaybeSetWeights watches LastUpdate and the weights row instead).
type nodeSubmitter struct {
	ctx context.Context
	c   *apiClient
	key ed25519.PrivateKey
	log io.Writer
}

func (s *nodeSubmitter) submit(call types.Call) error {
	if err := types.ValidateCall(call); err != nil {
		return err
	}
	head, err := s.c.head(s.ctx)
	if err != nil {
		return err
	}
	acct, err := s.c.account(s.ctx, types.AccountIDFromPrivateKey(s.key))
	if err != nil {
		return err
	}
	tx := &types.Tx{Nonce: acct.PendingNonce, ValidUntil: head.Height + txValidity, Call: call}
	tx.Sign(s.key, head.ChainID)
	h, err := s.c.submit(s.ctx, tx)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.log, "validator: %s %s submitted (valid until block %d)\n", call.Kind(), h, tx.ValidUntil)
	return nil
}
