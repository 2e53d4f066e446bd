package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/assets"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/model"
	"taobox/model/gguf"
	"taobox/validator"
)

// The live cast's validators: package validator's Validator, one per
// (validator hotkey, subnet), with its own copy of the tiny model, scores
// kept under the devnet's directory, and weights calls signed and sent
// through devnet.submit.

// devEOS is the end-of-sequence id the miners stop at and the
// validators' verifier expects.
const devEOS = validator.DefaultEOS

// devLiveValidator is one validator of the live cast.
type devLiveValidator struct {
	nn  *devNeurons
	s   *devSubnet
	v   *devValidator
	val *validator.Validator
	log *slog.Logger
	m   *validator.Metrics
}

// newValidator makes v's validator on s; onGPU gives it the devnet's
// accelerator, if any.
func (nn *devNeurons) newValidator(s *devSubnet, v *devValidator, onGPU bool) (*devLiveValidator, error) {
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		return nil, err
	}
	tok, err := model.TokenizerFromGGUF(f)
	if err != nil {
		return nil, err
	}
	mdl, hash, err := devTinyModel()
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("weights of %s on subnet %d", v.hot.name, s.netuid)
	log := nn.log.With("validator", v.hot.name, "netuid", s.netuid)
	seed := binary.LittleEndian.Uint64(v.hot.id[:8])
	vm := validator.NewMetrics(v.hot.id, uint16(s.netuid))
	if nn.reg != nil {
		prometheus.WrapRegistererWith(prometheus.Labels{"neuron": fmt.Sprintf("%s@%d", v.hot.name, s.netuid)}, nn.reg).MustRegister(vm)
	}
	cfg := validator.Config{
		Key: v.hot.key, Netuid: uint16(s.netuid), Model: mdl, Tokenizer: tok, ModelHash: hash, Chain: nn.chain,
		Submit:   vm.CountSubmit(func(c types.Call) error { return nn.d.submit(v.hot, what, c) }, rejectStatus),
		StateDir: filepath.Join(nn.dir, "validators", fmt.Sprintf("%s-subnet%d", strings.ReplaceAll(v.hot.name, "/", "-"), s.netuid)),
		Logger:   log,
		Rand:     rand.New(rand.NewPCG(seed, uint64(s.netuid))),
	}
	if onGPU {
		cfg.Accel = nn.d.accel
	}
	val, err := validator.New(cfg)
	if err != nil {
		return nil, err
	}
	return &devLiveValidator{nn: nn, s: s, v: v, val: val, log: log, m: vm}, nil
}

// run runs rounds until quit is closed or ctx ends, once the validator
// holds a permit (the miners admit no task before), pausing between
// rounds. Closing quit lets the round in flight finish; ending ctx cuts
// it off.
func (lv *devLiveValidator) run(ctx context.Context, quit <-chan struct{}, pause time.Duration) {
	defer lv.val.Close()
	defer func() {
		if passes, fallbacks := lv.val.AccelStats(); passes+fallbacks > 0 {
			lv.log.Info("verified on the GPU runner", "passes", passes, "cpu_fallbacks", fallbacks)
		}
	}()
	for {
		mg, err := lv.nn.chain.Metagraph(uint16(lv.s.netuid))
		if err == nil && devHasPermit(mg, lv.v.hot.id) {
			rep, err := lv.val.Round(ctx)
			lv.m.ObserveRound(rep, err, lv.val.Scores())
			if err != nil && ctx.Err() == nil {
				lv.log.Warn("round failed", "err", err)
			}
			for _, m := range rep.Miners {
				lv.nn.d.record(lv.s.netuid, m.Hotkey, m)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-quit:
			return
		case <-time.After(pause):
		}
	}
}

func devHasPermit(mg *state.Metagraph, hotkey types.AccountID) bool {
	for _, n := range mg.Neurons {
		if n.Hotkey == hotkey {
			return n.Permit
		}
	}
	return false
}

// maybeSetWeights lets the validator set weights at the block after height
// if the chain allows it and it has scores.
func (lv *devLiveValidator) maybeSetWeights(height uint64) {
	if _, err := lv.val.MaybeSetWeights(height); err != nil {
		lv.log.Debug("weights not set", "height", height, "err", err)
	}
}
