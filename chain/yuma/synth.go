package yuma

// Synthetic subnets for the demo and the benchmarks: deterministic in the
// seed, shaped like a young subtensor subnet with new-subnet defaults.

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// SynthConfig describes a synthetic subnet for Synthetic.
type SynthConfig struct {
	// N is the number of uids, in [1, MaxUIDs].
	N int
	// Validators is the number of validators, in [0, N]: uids 0..Validators-1
	// hold large stake, a permit and a weight row; the others are miners.
	Validators int
	// Seed drives every random choice; the same config gives the same input.
	Seed uint64

	Yuma3, LiquidAlpha bool

	// WeightsPerValidator is how many distinct uids each validator weights,
	// never itself. Zero (or N-1 and more) means every other uid.
	WeightsPerValidator int

	Variant Variant
}

// Synthetic-subnet constants: subtensor's defaults for a new subnet
// (yuma-epoch.md §9) and the block the first epoch runs in.
const (
	synthBlock     = 10_000
	synthTempo     = 360
	synthCutoff    = 13_889 // ActivityCutoffFactorMilli: 5000 blocks at tempo 360
	synthTaoWeight = 971_718_665_099_567_868
	synthRaoPerTAO = 1_000_000_000
)

// Synthetic returns the input of one epoch of a synthetic subnet.
//
// Validators stake 1e3..1e6 TAO of alpha (skewed towards small stakes), one
// in four also 1..1e5 TAO of root stake; miners stake at most 100 TAO. Miners
// have a hidden quality that most validators track with noise, so consensus
// is meaningful; every eighth validator weights at random and earns less
// trust. Weight rows are ascending by uid and max-upscaled to 65535, as the
// chain stores them. One miner in 32 registered during the last tempo. Bonds
// start empty; run Epoch and Advance to age the subnet.
//
// Synthetic panics if cfg.N, cfg.Validators or cfg.WeightsPerValidator are
// out of range.
func Synthetic(cfg SynthConfig) Input {
	n, nv := cfg.N, cfg.Validators
	if n < 1 || n > MaxUIDs {
		panic(fmt.Sprintf("yuma: Synthetic: N = %d, want [1, %d]", n, MaxUIDs))
	}
	if nv < 0 || nv > n {
		panic(fmt.Sprintf("yuma: Synthetic: Validators = %d, want [0, N = %d]", nv, n))
	}
	if cfg.WeightsPerValidator < 0 {
		panic(fmt.Sprintf("yuma: Synthetic: WeightsPerValidator = %d, want >= 0", cfg.WeightsPerValidator))
	}
	k := cfg.WeightsPerValidator
	if k == 0 || k > n-1 {
		k = n - 1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a6f_6278_7975_6d61))

	in := Input{
		Variant:                cfg.Variant,
		N:                      n,
		CurrentBlock:           synthBlock,
		Tempo:                  synthTempo,
		ActivityCutoffBlocks:   cutoffBlocks(synthCutoff, synthTempo),
		LastUpdate:             make([]uint64, n),
		BlockAtRegistration:    make([]uint64, n),
		AlphaStake:             make([]uint64, n),
		TaoStake:               make([]uint64, n),
		TaoWeight:              synthTaoWeight,
		OwnerUID:               -1,
		ValidatorPermit:        make([]bool, n),
		MaxAllowedValidators:   uint16(nv),
		Kappa:                  32_767,
		BondsPenalty:           65_535,
		BondsMovingAverage:     900_000,
		Yuma3:                  cfg.Yuma3,
		LiquidAlpha:            cfg.LiquidAlpha,
		AlphaLow:               45_875,
		AlphaHigh:              58_982,
		AlphaSteepness:         1_000,
		LastMechanismStepBlock: synthBlock - synthTempo,
		Weights:                make([][]Entry, n),
		Bonds:                  make([][]Entry, n),
		RaoEmission:            synthRaoPerTAO * synthTempo,
	}

	quality := make([]uint64, n) // what an honest validator thinks of uid j
	for i := range n {
		if i < nv {
			in.BlockAtRegistration[i] = rng.Uint64N(3_000)
			in.LastUpdate[i] = synthBlock - 1 - rng.Uint64N(100)
			in.AlphaStake[i] = 1_000*synthRaoPerTAO + synthRaoPerTAO*rng.Uint64N(1_000)*rng.Uint64N(1_000)
			if rng.IntN(4) == 0 {
				in.TaoStake[i] = synthRaoPerTAO * (1 + rng.Uint64N(100_000))
			}
			in.ValidatorPermit[i] = true
			quality[i] = 1 + rng.Uint64N(50)
			continue
		}
		if rng.IntN(32) == 0 {
			in.BlockAtRegistration[i] = synthBlock - 1 - rng.Uint64N(synthTempo-1)
		} else {
			in.BlockAtRegistration[i] = rng.Uint64N(9_000)
		}
		in.LastUpdate[i] = in.BlockAtRegistration[i] // miners never set weights
		in.AlphaStake[i] = rng.Uint64N(100 * synthRaoPerTAO)
		quality[i] = 1 + rng.Uint64N(1_000)
	}

	others := make([]int, 0, n)
	for i := range nv {
		others = others[:0]
		for j := range n {
			if j != i {
				others = append(others, j)
			}
		}
		// A partial Fisher-Yates shuffle picks k distinct uids.
		for p := range k {
			q := p + rng.IntN(len(others)-p)
			others[p], others[q] = others[q], others[p]
		}
		cols := others[:k]
		slices.Sort(cols)
		row := make([]Entry, k)
		raw := make([]uint64, k)
		for p, j := range cols {
			if i%8 == 7 {
				raw[p] = 1 + rng.Uint64N(1_000)
			} else {
				raw[p] = 1 + quality[j]*(750+rng.Uint64N(500))/1_000
			}
			row[p].UID = uint16(j)
		}
		synthMaxUpscale(row, raw)
		in.Weights[i] = row
	}
	return in
}

// synthMaxUpscale sets row[p].Value = round(raw[p] * 65535 / max(raw)), as
// set_weights stores a submitted row. Values are at least 1 when raw is.
func synthMaxUpscale(row []Entry, raw []uint64) {
	var top uint64
	for _, v := range raw {
		top = max(top, v)
	}
	if top == 0 {
		return
	}
	for p, v := range raw {
		row[p].Value = uint16((v*65_535 + top/2) / top)
	}
}

// Advance turns in, which out was computed from, into the next epoch's
// input, as the chain would after one tempo: bonds become out.NewBonds
// (rows the epoch left untouched keep their old value), permits become
// out.NewValidatorPermits, the last epoch is in.CurrentBlock and the block
// moves on by Tempo. Every uid with a weight row sets weights again in the
// block before the new epoch, and a few of them change one weight, chosen
// deterministically from the new block.
//
// Slices that change are replaced, never written in place, so earlier copies
// of in (for example a batch that still references its rows) stay valid.
func Advance(in *Input, out *Output) {
	n := in.N
	bonds := make([][]Entry, n)
	for i := range bonds {
		src := in.Bonds[i]
		if i < len(out.NewBonds) && (i >= len(out.BondsWritten) || out.BondsWritten[i]) {
			src = out.NewBonds[i]
		}
		bonds[i] = slices.Clone(src)
	}
	in.Bonds = bonds
	in.ValidatorPermit = slices.Clone(out.NewValidatorPermits)
	in.LastMechanismStepBlock = in.CurrentBlock
	in.CurrentBlock += in.Tempo

	rng := rand.New(rand.NewPCG(in.CurrentBlock, uint64(n)))
	in.LastUpdate = slices.Clone(in.LastUpdate)
	in.Weights = slices.Clone(in.Weights)
	for i, row := range in.Weights {
		if len(row) == 0 {
			continue
		}
		in.LastUpdate[i] = max(in.CurrentBlock, 1) - 1
		if rng.IntN(8) != 0 {
			continue
		}
		// Scale one weight by 1/2..3/2 and store the row max-upscaled again.
		raw := make([]uint64, len(row))
		for p, e := range row {
			raw[p] = uint64(e.Value)
		}
		p := rng.IntN(len(row))
		raw[p] = max(1, raw[p]*(2+rng.Uint64N(5))/4)
		row = slices.Clone(row)
		synthMaxUpscale(row, raw)
		in.Weights[i] = row
	}
}
