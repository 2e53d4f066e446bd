package node

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
)

// benchTotals accumulates where the time of the benchmarked blocks went.
type benchTotals struct {
	blocks                                    int
	submit, selectT, apply, root, commit, all time.Duration
}

// block submits txs and produces one block, timing each part.
func (bt *benchTotals) block(b *testing.B, n *Node, txs []types.Tx, wantTxs int) {
	start := time.Now()
	for i := range txs {
		if _, err := n.Submit(&txs[i]); err != nil {
			b.Fatalf("submit %d: %v", i, err)
		}
	}
	submit := time.Since(start)
	blk, err := n.ProduceBlock()
	if err != nil {
		b.Fatal(err)
	}
	bt.all += time.Since(start)
	n.mu.Lock()
	st := n.stats
	n.mu.Unlock()
	if len(blk.Txs) != wantTxs || st.failed != 0 || st.dropped != 0 || st.epochs != 0 {
		b.Fatalf("block %d: %d txs (want %d), %d failed, %d dropped, %d epochs", blk.Header.Height, len(blk.Txs), wantTxs, st.failed, st.dropped, st.epochs)
	}
	bt.blocks++
	bt.submit += submit
	bt.selectT += st.selectT
	bt.apply += st.apply
	bt.root += st.root
	bt.commit += st.commit
}

func (bt *benchTotals) report(b *testing.B) {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(bt.blocks) }
	b.ReportMetric(per(bt.all), "ms/block")
	b.ReportMetric(per(bt.submit), "submit-ms")
	b.ReportMetric(per(bt.selectT), "select-ms")
	b.ReportMetric(per(bt.apply), "apply-ms")
	b.ReportMetric(per(bt.root), "root-ms")
	b.ReportMetric(per(bt.commit), "commit-ms")
}

func benchNode(b *testing.B, g *state.Genesis) *Node {
	cfg := testConfig(b.TempDir(), g)
	cfg.APIAddr = ""
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// BenchmarkBlock1000Transfers: 1000 signed transfers from 100 accounts (10
// nonces each) go through Submit (decode-free admission with signature
// verification), then ProduceBlock (select, apply, state root, signed
// header, one fsynced store batch). Signing is outside the timing.
// submit-ms, select-ms, apply-ms, root-ms and commit-ms split ms/block.
func BenchmarkBlock1000Transfers(b *testing.B) {
	const accounts, perAccount = 100, 10
	n := benchNode(b, testGenesis(accounts+1, 100_000*tao))
	chain := n.ChainID()
	var bt benchTotals
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		head, _ := n.Head()
		txs := make([]types.Tx, 0, accounts*perAccount)
		for j := range perAccount {
			for a := range accounts {
				nonce := uint64(it*perAccount + j)
				txs = append(txs, sign(a, nonce, head+100, types.Transfer{To: id((a + 1) % (accounts + 1)), Amount: tao}, chain))
			}
		}
		b.StartTimer()
		bt.block(b, n, txs, len(txs))
	}
	bt.report(b)
}

// BenchmarkBlock1000SetWeights: 1000 validators on 4 subnets of 256 uids
// (250 permitted validators each) set weights over all 256 uids in one
// block. The subnets are built through real transactions: register, burned
// registrations and stake, one epoch for the permits, then a long tempo so
// that no epoch runs in the measured blocks.
func BenchmarkBlock1000SetWeights(b *testing.B) {
	const subnets, perSubnet, uids = 4, 250, 256
	g := testGenesis(subnets, 1_000_000*tao)
	g.Params.NetworkMinLock = tao
	g.Params.NetworkRateLimit = 0
	h := &g.SubnetDefaults
	h.WeightsRateLimit = 0
	h.MaxAllowedValidators = uids
	h.MinBurn, h.MaxBurn, h.BurnIncreaseMult = 500_000, tao, 1000
	coldkey := func(i int) int { return 10_000 + i }
	hotkey := func(i int) int { return 20_000 + i }
	ownerHotkey := func(s int) int { return 30_000 + s }
	validators := subnets * (uids - 1)
	for i := range validators {
		g.Balances = append(g.Balances, state.GenesisBalance{Account: id(coldkey(i)), Free: 10 * tao})
	}
	cfg := testConfig(b.TempDir(), g)
	cfg.APIAddr = ""
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	chain := n.ChainID()
	submitAll := func(txs []types.Tx) {
		for i := range txs {
			if _, err := n.Submit(&txs[i]); err != nil {
				b.Fatalf("setup submit: %v", err)
			}
		}
	}
	head := func() uint64 { h, _ := n.Head(); return h }

	var txs []types.Tx
	for s := range subnets {
		txs = append(txs, sign(s, 0, head()+50, types.RegisterNetwork{Hotkey: id(ownerHotkey(s))}, chain))
	}
	submitAll(txs)
	mustProduce(b, n)
	txs = txs[:0]
	for i := range validators {
		netuid := types.Netuid(i/(uids-1) + 1)
		txs = append(txs,
			sign(coldkey(i), 0, head()+50, types.BurnedRegister{Netuid: netuid, Hotkey: id(hotkey(i))}, chain),
			sign(coldkey(i), 1, head()+50, types.AddStake{Hotkey: id(hotkey(i)), Amount: tao + uint64(i)}, chain))
	}
	submitAll(txs)
	if blk := mustProduce(b, n); len(blk.Txs) != len(txs) {
		b.Fatalf("setup block has %d of %d txs", len(blk.Txs), len(txs))
	}
	for range int(g.SubnetDefaults.Tempo) + 1 {
		mustProduce(b, n)
	}
	txs = txs[:0]
	for s := range subnets {
		txs = append(txs, sign(s, 1, head()+50, types.SetHyperparam{Netuid: types.Netuid(s + 1), Param: types.ParamTempo, Value: 50_400}, chain))
	}
	submitAll(txs)
	mustProduce(b, n)
	for s := 1; s <= subnets; s++ {
		m, err := state.QueryMetagraph(n.State(), types.Netuid(s))
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Neurons) != uids {
			b.Fatalf("subnet %d has %d uids", s, len(m.Neurons))
		}
		for _, nr := range m.Neurons[1:] {
			if !nr.Permit {
				b.Fatalf("subnet %d uid %d has no validator permit", s, nr.UID)
			}
		}
	}

	// The validators that set weights: the first perSubnet of each subnet.
	type validator struct {
		priv   ed25519.PrivateKey
		netuid types.Netuid
	}
	var vals []validator
	for s := range subnets {
		for k := range perSubnet {
			_, priv := testKey(hotkey(s*(uids-1) + k))
			vals = append(vals, validator{priv, types.Netuid(s + 1)})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	uidList := make([]uint16, uids)
	for i := range uidList {
		uidList[i] = uint16(i)
	}
	var bt benchTotals
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		txs = txs[:0]
		vu := head() + 100
		for _, v := range vals {
			w := make([]uint16, uids)
			for i := range w {
				w[i] = uint16(1 + rng.IntN(65535))
			}
			tx := types.Tx{Nonce: uint64(it), ValidUntil: vu, Call: types.SetWeights{Netuid: v.netuid, UIDs: uidList, Weights: w}}
			tx.Sign(v.priv, chain)
			txs = append(txs, tx)
		}
		b.StartTimer()
		bt.block(b, n, txs, len(txs))
	}
	bt.report(b)
}

// BenchmarkBFTFinality measures the time per finalized block of 1 and 4
// validators over the in-memory network (each node on its own goleveldb
// dir, fsync on, empty blocks, BlockTime 1 ms so the wait between heights
// does not count): the finality latency of a height — propose, execute,
// prevote, precommit, commit.
func BenchmarkBFTFinality(b *testing.B) {
	for _, vals := range []int{1, 4} {
		b.Run(fmt.Sprintf("validators=%d", vals), func(b *testing.B) {
			g := bftGenesis(vals, 10)
			tn := newTestNet(b, 1)
			tn.maxDelay = 0
			idxs := make([]int, vals)
			for i := range vals {
				cfg := bftConfig(b, g, validatorKey(i))
				cfg.BlockTime = time.Millisecond
				tn.add(i, cfg)
				idxs[i] = i
			}
			tn.waitHeight(3, idxs...)
			start, _ := tn.node(0).Head()
			b.ResetTimer()
			tn.waitHeight(start+uint64(b.N), idxs...)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/block")
		})
	}
}
