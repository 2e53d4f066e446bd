package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/miner"
	"taobox/validator"
)

// The live cast: real miners (package miner) on their own UDP sockets on
// 127.0.0.1 and real validators (package validator), all in this process,
// reading the chain through the node's state and sending transactions
// through devnet.submit.
//
// Order: startNeurons opens every miner's socket before the script starts,
// so that phase 2 serves the real ports; startSubnet builds a subnet's
// miners and validators once its netuid is known (phase 0's event); the
// miners admit a validator's tasks once it holds a permit (from the
// subnet's first epoch), and the validators run rounds from then on, one
// after the other with a pause of one block time; onBlock lets each
// validator set weights when the chain allows it.

// devChainView is the chain as the miners and validators see it: the
// node's state at its head.
type devChainView struct{ n *node.Node }

func (c devChainView) Metagraph(netuid uint16) (*state.Metagraph, error) {
	return state.QueryMetagraph(c.n.State(), types.Netuid(netuid))
}

func (c devChainView) Height() uint64 { h, _ := c.n.Head(); return h }

// devNeurons runs the live cast's miners and validators.
type devNeurons struct {
	d         *devnet
	dir       string
	blockTime time.Duration
	log       *slog.Logger
	chain     devChainView
	hash      [32]byte // the tiny model's file hash
	eos       int

	ctx    context.Context    // the miners'
	cancel context.CancelFunc // stops the miners
	wg     sync.WaitGroup     // the miners
	quit   chan struct{}      // closed: validators start no new round
	vctx   context.Context    // the validators'; cancelled only if a round outlives stopGrace
	vstop  context.CancelFunc
	vwg    sync.WaitGroup // the validators
	conns  map[*devSubnet][]net.PacketConn
	vals   []*devLiveValidator
	reg    prometheus.Registerer // the neurons' metrics, labelled neuron=NAME; nil: none
	once   sync.Once
}

// stopGrace is how long stop lets the validators' rounds in flight finish
// before it cancels them: a query cut off mid-answer makes its miner log a
// failed answer.
const stopGrace = 10 * time.Second

// startNeurons opens a UDP socket on 127.0.0.1 for every miner of d's live
// cast (recording its port in the subnet) and returns the runner; the
// miners and validators start with startSubnet.
func startNeurons(ctx context.Context, d *devnet, dir string, blockTime time.Duration, log *slog.Logger) (*devNeurons, error) {
	tiny, hash, err := devTinyModel()
	if err != nil {
		return nil, fmt.Errorf("the tiny model: %v", err)
	}
	tiny.Close()
	nn := &devNeurons{d: d, dir: dir, blockTime: blockTime, log: log, chain: devChainView{d.n}, hash: hash,
		eos: devEOS, conns: map[*devSubnet][]net.PacketConn{}}
	// Not ctx's children: on Ctrl-C, stop still ends the validators before
	// the miners.
	ctx = context.WithoutCancel(ctx)
	nn.ctx, nn.cancel = context.WithCancel(ctx)
	nn.vctx, nn.vstop = context.WithCancel(ctx)
	nn.quit = make(chan struct{})
	for _, s := range d.subnets {
		s.ports = make([]uint16, len(s.miners))
		for i := range s.miners {
			conn, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				nn.stop()
				return nil, fmt.Errorf("a miner's socket: %v", err)
			}
			nn.conns[s] = append(nn.conns[s], conn)
			s.ports[i] = uint16(conn.LocalAddr().(*net.UDPAddr).Port)
		}
	}
	return nn, nil
}

// startSubnet starts the miners and validators of s, whose netuid is now
// known.
func (nn *devNeurons) startSubnet(s *devSubnet) error {
	for i, m := range s.miners {
		cfg := miner.Config{Key: m.key, Netuid: uint16(s.netuid), ModelHash: nn.hash, StopIDs: []int{nn.eos},
			Chain: nn.chain, Logger: nn.log.With("miner", m.name)}
		mdl, _, err := devTinyModel()
		if err != nil {
			return err
		}
		switch s.behaviours[i] {
		case behaviourHonest:
			cfg.Model, cfg.Accel = mdl, nn.d.accel
		case behaviourRandom:
			cfg.Answer = miner.RandomAnswer(mdl.Config.VocabSize, uint64(s.netuid)<<8|uint64(i))
		case behaviourOtherModel:
			other, err := otherModel(uint64(s.netuid)<<8|uint64(i), 0.5)
			if err != nil {
				return err
			}
			cfg.Answer = miner.OtherModelAnswer(other, cfg.StopIDs)
		}
		mn, err := miner.New(cfg)
		if err != nil {
			return fmt.Errorf("miner %s: %v", m.name, err)
		}
		if nn.reg != nil {
			prometheus.WrapRegistererWith(prometheus.Labels{"neuron": m.name}, nn.reg).MustRegister(mn.Collector())
		}
		conn := nn.conns[s][i]
		nn.wg.Add(1)
		go func() {
			defer nn.wg.Done()
			if err := mn.Serve(nn.ctx, conn); err != nil {
				nn.d.fail("miner %s stopped: %v", m.name, err)
			}
		}()
	}
	for i, v := range s.validators {
		// The last validator of each subnet verifies on the GPU runner
		// when the honest miners answer there; the others on the CPU,
		// which cross-checks the GPU's log-probs.
		lv, err := nn.newValidator(s, v, i == len(s.validators)-1 && len(s.validators) > 1)
		if err != nil {
			return err
		}
		nn.vals = append(nn.vals, lv)
		nn.vwg.Add(1)
		go func() {
			defer nn.vwg.Done()
			lv.run(nn.vctx, nn.quit, nn.blockTime)
		}()
	}
	return nil
}

// onBlock lets every validator set weights at height if it may.
func (nn *devNeurons) onBlock(height uint64) {
	for _, v := range nn.vals {
		v.maybeSetWeights(height)
	}
}

// stop stops the validators (letting rounds in flight finish), then the
// miners, waits for them all and closes the sockets; it may be called more
// than once.
func (nn *devNeurons) stop() {
	nn.once.Do(func() {
		close(nn.quit)
		done := make(chan struct{})
		go func() { nn.vwg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			nn.vstop()
			<-done
		}
		nn.vstop()
		nn.cancel()
		nn.wg.Wait()
		for _, cs := range nn.conns {
			for _, c := range cs {
				c.Close()
			}
		}
	})
}

// record adds a validator's round report on one miner to the devnet's
// stats. A report says whether every task of the round verified, not which
// one failed: a failed round counts all its tasks as failed, and a round
// with tokens counts all its tasks as served.
func (d *devnet) record(netuid types.Netuid, hotkey types.AccountID, m validator.MinerReport) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := devStatKey{netuid, hotkey}
	st := d.stats[k]
	if st == nil {
		st = &devTaskStats{}
		d.stats[k] = st
	}
	st.tasks += m.Tasks
	st.served += m.Answered
	st.passed += m.Passed
	if !m.Pass && m.Reason != "" {
		st.lastFailure = m.Reason
	}
}
