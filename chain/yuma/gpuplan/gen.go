package gpuplan

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"taobox/chain/yuma"
)

// Diff compares two outputs field by field (nil and empty slices are equal)
// and describes the first difference, or returns "" when they are equal.
func Diff(a, b *yuma.Output) string {
	type f struct {
		name string
		eq   bool
	}
	rows := slices.EqualFunc(a.NewBonds, b.NewBonds, func(p, q []yuma.Entry) bool { return slices.Equal(p, q) })
	for _, c := range []f{
		{"stake_weight", slices.Equal(a.StakeWeight, b.StakeWeight)},
		{"consensus", slices.Equal(a.Consensus, b.Consensus)},
		{"incentive", slices.Equal(a.Incentive, b.Incentive)},
		{"dividends", slices.Equal(a.Dividends, b.Dividends)},
		{"validator_trust", slices.Equal(a.ValidatorTrust, b.ValidatorTrust)},
		{"server_emission", slices.Equal(a.ServerEmission, b.ServerEmission)},
		{"validator_emission", slices.Equal(a.ValidatorEmission, b.ValidatorEmission)},
		{"emission", slices.Equal(a.Emission, b.Emission)},
		{"new_validator_permits", slices.Equal(a.NewValidatorPermits, b.NewValidatorPermits)},
		{"inactive", slices.Equal(a.Inactive, b.Inactive)},
		{"last_tempo", a.LastTempo == b.LastTempo},
		{"bonds_written", slices.Equal(a.BondsWritten, b.BondsWritten)},
		{"new_bonds", rows},
		{"raw.stake", slices.Equal(a.Raw.Stake, b.Raw.Stake)},
		{"raw.active_stake", slices.Equal(a.Raw.ActiveStake, b.Raw.ActiveStake)},
		{"raw.consensus", slices.Equal(a.Raw.Consensus, b.Raw.Consensus)},
		{"raw.incentive", slices.Equal(a.Raw.Incentive, b.Raw.Incentive)},
		{"raw.dividends", slices.Equal(a.Raw.Dividends, b.Raw.Dividends)},
		{"raw.validator_trust", slices.Equal(a.Raw.ValidatorTrust, b.Raw.ValidatorTrust)},
	} {
		if !c.eq {
			return c.name + " differs"
		}
	}
	return ""
}

// RandomInput returns an adversarial sparse input (the shape of the yuma
// package's randomInput): tiny to mid-size subnets, tie-prone stakes and
// weights, unsorted rows with duplicates and explicit zeros, short permit
// vectors, owners, commit-reveal, huge stakes that wrap the I64F64 sum,
// every bonds penalty / EMA / liquid-alpha regime.
func RandomInput(r *rand.Rand) yuma.Input {
	n := 1 + r.IntN(24)
	if r.IntN(8) == 0 {
		n = 40 + r.IntN(60)
	}
	cur := uint64(100 + r.IntN(400))
	in := yuma.Input{
		Variant: yuma.Sparse, N: n, CurrentBlock: cur, Tempo: uint64(r.IntN(200)),
		ActivityCutoffBlocks: uint64(1 + r.IntN(300)), OwnerUID: -1,
		TaoWeight: pick(r, 0, 971_718_665_099_567_868, r.Uint64()), StakeThreshold: pick(r, 0, 0, uint64(r.IntN(2000))),
		MaxAllowedValidators: uint16(r.IntN(n + 3)), Kappa: uint16(pick(r, 32767, 65535, uint64(r.IntN(65536)))),
		BondsPenalty:       uint16(pick(r, 65535, 0, uint64(r.IntN(65536)))),
		BondsMovingAverage: pick(r, 900_000, 975_000, uint64(r.IntN(1_100_001))),
		Yuma3:              r.IntN(2) == 0, LiquidAlpha: r.IntN(2) == 0,
		AlphaSteepness:         int16(pick(r, 1000, 10, uint64(r.IntN(4000)))) - int16(r.IntN(2)*500),
		LastMechanismStepBlock: pick(r, 0, cur-uint64(r.IntN(50)), 0),
		CommitReveal:           r.IntN(3) == 0, RaoEmission: pick(r, 1_000_000_000, r.Uint64(), uint64(r.IntN(1e12))),
	}
	lo := uint16(1638 + r.IntN(40000))
	in.AlphaLow, in.AlphaHigh = lo, lo+uint16(r.IntN(int(65535-lo)))
	if r.IntN(3) == 0 {
		in.OwnerUID = r.IntN(n)
	}
	ties := r.IntN(3) == 0
	for range n {
		in.LastUpdate = append(in.LastUpdate, cur-uint64(r.IntN(int(cur))))
		in.BlockAtRegistration = append(in.BlockAtRegistration, cur-uint64(r.IntN(int(cur))))
		if ties {
			in.AlphaStake = append(in.AlphaStake, uint64(1+r.IntN(3))<<uint(r.IntN(2)))
			in.TaoStake = append(in.TaoStake, 0)
			continue
		}
		in.AlphaStake = append(in.AlphaStake, pick(r, 0, uint64(r.IntN(1e6)), r.Uint64()>>uint(r.IntN(64))))
		in.TaoStake = append(in.TaoStake, pick(r, 0, 0, uint64(r.IntN(1e9))))
	}
	if ties {
		in.Kappa = []uint16{0, 16384, 21845, 32767, 32768, 43690, 49151, 65535}[r.IntN(8)]
		in.StakeThreshold = 0
	}
	np := n
	if r.IntN(4) == 0 {
		np = r.IntN(n + 1)
	}
	for range np {
		in.ValidatorPermit = append(in.ValidatorPermit, r.IntN(3) != 0)
	}
	if in.CommitReveal && r.IntN(2) == 0 {
		for range n {
			in.CommitBlocks = append(in.CommitBlocks, pick(r, yuma.NoCommit, cur-uint64(r.IntN(int(cur))), 0))
		}
	}
	weight := func() uint16 {
		if ties {
			return []uint16{0, 21845, 32768, 43690, 65535}[r.IntN(5)]
		}
		return uint16(pick(r, 65535, 0, uint64(r.IntN(65536))))
	}
	row := func(maxLen int, sorted bool) []yuma.Entry {
		e := []yuma.Entry{}
		k := r.IntN(maxLen + 1)
		if sorted {
			for j := range n {
				if r.IntN(n) < k {
					e = append(e, yuma.Entry{UID: uint16(j), Value: weight()})
				}
			}
		} else {
			for range k {
				e = append(e, yuma.Entry{UID: uint16(r.IntN(n)), Value: weight()})
			}
		}
		return e
	}
	for range n {
		in.Weights = append(in.Weights, row(n+2, r.IntN(4) != 0))
		in.Bonds = append(in.Bonds, row(n+2, r.IntN(4) != 0))
	}
	return in
}

func pick(r *rand.Rand, a, b, c uint64) uint64 {
	switch r.IntN(3) {
	case 0:
		return a
	case 1:
		return b
	}
	return c
}

// AgedSynthetic is a synthetic subnet (yuma.Synthetic) aged by `epochs`
// epochs on the CPU engine, so that it carries bonds.
func AgedSynthetic(cfg yuma.SynthConfig, epochs int) yuma.Input {
	in := yuma.Synthetic(cfg)
	for range epochs {
		out, err := yuma.Epoch(&in)
		if err != nil {
			panic(fmt.Sprintf("gpuplan: AgedSynthetic: %v", err))
		}
		yuma.Advance(&in, out)
	}
	return in
}

// RandomBatch returns batch number k of a check run with the given seed: a
// mix of adversarial inputs and (every fourth batch) aged synthetic subnets
// of realistic size with every bonds regime, plus the odd dense-variant or
// empty subnet that the engines hand to the CPU.
func RandomBatch(seed uint64, k int) []yuma.Input {
	r := rand.New(rand.NewPCG(seed, uint64(k)))
	var ins []yuma.Input
	if k%4 == 3 {
		for range 1 + r.IntN(4) {
			n := 16 + r.IntN(300)
			cfg := yuma.SynthConfig{
				N: n, Validators: 1 + r.IntN(min(n, 64)), Seed: r.Uint64(),
				Yuma3: r.IntN(3) != 0, LiquidAlpha: r.IntN(2) == 0,
				WeightsPerValidator: r.IntN(n),
			}
			in := AgedSynthetic(cfg, r.IntN(3))
			if r.IntN(3) == 0 {
				in.BondsPenalty = uint16(r.IntN(65536))
			}
			ins = append(ins, in)
		}
		return ins
	}
	for range 1 + r.IntN(12) {
		in := RandomInput(r)
		if r.IntN(40) == 0 {
			in.Variant = yuma.Dense
		}
		ins = append(ins, in)
	}
	return ins
}
