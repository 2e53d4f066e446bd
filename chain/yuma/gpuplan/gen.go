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

// RandomInput returns an adversarial sparse input with at least one uid
// (yuma.RandomInput: tie-prone stakes and weights, unsorted rows with
// duplicates and explicit zeros, short permit vectors, owners, commit-reveal,
// huge stakes that wrap the I64F64 sum, every bonds penalty / EMA /
// liquid-alpha regime).
func RandomInput(r *rand.Rand) yuma.Input {
	return *yuma.RandomInput(r, yuma.Sparse, 1)
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
