package yuma

import "math/rand/v2"

// RandomInput draws an adversarial epoch input for differential tests of
// engines (the reference, the fast engine, the GPU plan): unsorted rows, duplicate and
// zero entries, short permit vectors, owners, thresholds, tao stake, commit
// reveal, recent registrations, inactive uids and extreme parameters. Subnets
// have at least minN uids (0 allows empty ones).
func RandomInput(r *rand.Rand, variant Variant, minN int) *Input {
	n := minN + r.IntN(24)
	if r.IntN(8) == 0 {
		n = 40 + r.IntN(60)
	}
	cur := uint64(100 + r.IntN(400))
	in := &Input{
		Variant: variant, N: n, CurrentBlock: cur, Tempo: uint64(r.IntN(200)),
		ActivityCutoffBlocks: uint64(1 + r.IntN(300)), OwnerUID: -1,
		TaoWeight: pick(r, 0, 971_718_665_099_567_868, r.Uint64()), StakeThreshold: pick(r, 0, 0, uint64(r.IntN(2000))),
		MaxAllowedValidators: uint16(r.IntN(n + 3)), Kappa: uint16(pick(r, 32767, 65535, uint64(r.IntN(65536)))),
		BondsPenalty:       uint16(pick(r, 65535, 0, uint64(r.IntN(65536)))),
		BondsMovingAverage: pick(r, 900_000, 975_000, uint64(r.IntN(1_000_001))),
		Yuma3:              r.IntN(2) == 0, LiquidAlpha: r.IntN(2) == 0,
		AlphaSteepness:         int16(pick(r, 1000, 10, uint64(r.IntN(4000)))) - int16(r.IntN(2)*500),
		LastMechanismStepBlock: pick(r, 0, cur-uint64(r.IntN(50)), 0),
		CommitReveal:           r.IntN(3) == 0, RaoEmission: pick(r, 1_000_000_000, r.Uint64(), uint64(r.IntN(1_000_000_000_000))),
	}
	lo := uint16(1638 + r.IntN(40000))
	in.AlphaLow, in.AlphaHigh = lo, lo+uint16(r.IntN(int(65535-lo)))
	if n > 0 && r.IntN(3) == 0 {
		in.OwnerUID = r.IntN(n)
	}
	// Tie-prone mode: few distinct stakes and weights, so that stake sums
	// land exactly on the consensus minority and the quickselect's boundary
	// comparisons decide the result.
	ties := r.IntN(3) == 0
	for range n {
		in.LastUpdate = append(in.LastUpdate, cur-uint64(r.IntN(int(cur))))
		in.BlockAtRegistration = append(in.BlockAtRegistration, cur-uint64(r.IntN(int(cur))))
		if ties {
			in.AlphaStake = append(in.AlphaStake, uint64(1+r.IntN(3))<<uint(r.IntN(2)))
			in.TaoStake = append(in.TaoStake, 0)
			continue
		}
		in.AlphaStake = append(in.AlphaStake, pick(r, 0, uint64(r.IntN(1_000_000)), r.Uint64()>>uint(r.IntN(64))))
		in.TaoStake = append(in.TaoStake, pick(r, 0, 0, uint64(r.IntN(1_000_000_000))))
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
			in.CommitBlocks = append(in.CommitBlocks, pick(r, NoCommit, cur-uint64(r.IntN(int(cur))), 0))
		}
	}
	weight := func() uint16 {
		if ties {
			return []uint16{0, 21845, 32768, 43690, 65535}[r.IntN(5)]
		}
		return uint16(pick(r, 65535, 0, uint64(r.IntN(65536))))
	}
	row := func(maxLen int, sorted bool) []Entry {
		var e []Entry
		if n == 0 {
			return []Entry{}
		}
		k := r.IntN(maxLen + 1)
		if sorted {
			for j := range n {
				if r.IntN(n) < k {
					e = append(e, Entry{uint16(j), weight()})
				}
			}
		} else {
			for range k {
				e = append(e, Entry{uint16(r.IntN(n)), weight()})
			}
		}
		if e == nil {
			e = []Entry{}
		}
		return e
	}
	for range n {
		in.Weights = append(in.Weights, row(n+2, r.IntN(4) != 0))
		in.Bonds = append(in.Bonds, row(n+2, r.IntN(4) != 0))
	}
	return in
}

// pick returns a with probability 1/3, b with 1/3, else c.
func pick(r *rand.Rand, a, b, c uint64) uint64 {
	switch r.IntN(3) {
	case 0:
		return a
	case 1:
		return b
	}
	return c
}
