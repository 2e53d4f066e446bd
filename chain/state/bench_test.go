package state

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"taobox/chain/types"
	"taobox/chain/yuma"
)

// BenchmarkApply1000Transfers applies a block of 1000 signed transfers from
// 100 accounts (signature checks included) to a state, without storage.
func BenchmarkApply1000Transfers(b *testing.B) {
	h := newHarness(b, testGenesis(100, 1000*tao))
	txs := make([]types.Tx, 0, 1000)
	for i := range 1000 {
		from := i % 100
		tx := types.Tx{Nonce: uint64(i / 100), ValidUntil: 50, Call: types.Transfer{To: h.id((from + 1) % 100), Amount: tao}}
		_, priv := testKey(from)
		tx.Sign(priv, h.env.ChainID)
		txs = append(txs, tx)
	}
	verified := map[types.Hash]bool{}
	for i := range txs {
		verified[txs[i].Hash()] = true
	}
	for _, mode := range []struct {
		name string
		env  Env
	}{
		{"verify", h.env},
		{"preverified", Env{ChainID: h.env.ChainID, SigVerified: func(h types.Hash) bool { return verified[h] }}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ApplyBlock(context.Background(), h.st, mode.env, 1, txs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/tx")
		})
	}
}

// bigState writes subnets subnets of uids uids (validators of them staked,
// each weighting every other uid) straight into a MemState, all due for an
// epoch at block `due`.
func bigState(b *testing.B, subnets, uids, validators int, due uint64) (*harness, []types.Tx) {
	g := testGenesis(1, tao)
	g.SubnetDefaults.Tempo = 360
	h := newHarness(b, g)
	x := h.exec()
	r := rand.New(rand.NewPCG(1, 2))
	gl := x.globals()
	hp := g.SubnetDefaults
	hp.LiquidAlpha = 1
	var list netuids
	for n := 1; n <= subnets; n++ {
		nid := types.Netuid(n)
		list = append(list, nid)
		s := &Subnet{N: uint64(uids), Burn: tao, LastEpoch: due - hp.Tempo, Hyper: hp, Pending: 1000 * tao}
		for uid := range uids {
			var hk types.AccountID
			hk[0], hk[1], hk[2] = byte(n>>8), byte(n), byte(uid)
			hk[3] = 1
			if uid == 0 {
				s.Owner, s.OwnerHotkey = hk, hk
			}
			x.o.set(key(pOwner, hk[:]), append([]byte{}, hk[:]...))
			nr := &Neuron{Hotkey: hk, RegisteredAt: 1, LastUpdate: due - 1, Active: true, Permit: uid < validators}
			x.putNeuron(nid, uint16(uid), nr)
			x.o.set(key(pUID, u16b(uint16(n)), hk[:]), u16b(uint16(uid)))
			if uid < validators {
				amount := uint64(1+r.IntN(1000)) * tao
				x.creditStake(gl, hk, hk, amount)
				gl.Issuance += amount
				x.putGlobals(gl)
				row := make(entries, 0, uids-1)
				for j := range uids {
					if j != uid {
						row = append(row, yuma.Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))})
					}
				}
				x.o.store(key(pWeights, u16b(uint16(n)), u16b(uint16(uid))), &row)
			}
		}
		x.putSubnet(nid, s)
	}
	x.o.store(key(pSubnets), &list)
	h.st.Apply(x.o.changes())
	h.height = due - 1
	return h, nil
}

// BenchmarkEpochBlock128x256 applies the block in which 128 subnets of 256
// uids (64 validators each weighting every uid, Yuma 3 with liquid alpha)
// all run their epochs: input building, one batch engine call and the
// distribution, on the CPU engine with all cores.
func BenchmarkEpochBlock128x256(b *testing.B) {
	const due = 1000
	h, _ := bigState(b, 128, 256, 64, due)
	var engine time.Duration
	h.env.Engine = timedEngine{yuma.NewCPUEngine(0), &engine}
	b.ResetTimer()
	for b.Loop() {
		res, err := ApplyBlock(context.Background(), h.st, h.env, due, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Changes) == 0 {
			b.Fatal("no changes")
		}
	}
	b.ReportMetric(float64(engine.Milliseconds())/float64(b.N), "engine-ms/block")
}

// timedEngine measures the time spent inside the engine.
type timedEngine struct {
	e     yuma.Engine
	spent *time.Duration
}

func (t timedEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	start := time.Now()
	defer func() { *t.spent += time.Since(start) }()
	return t.e.Epochs(ctx, ins)
}
