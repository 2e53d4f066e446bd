package yuma

import "taobox/chain/fixed"

// alphaCache evaluates alpha_sigmoid (run_epoch.rs alpha_sigmoid) and
// remembers recent results. The rate depends on (consensus, weight, bond)
// only through the clamped difference d, and each evaluation runs the 31-term
// exp series, so a small direct-mapped memo keyed by d saves most of the work
// (with the default bonds penalty, d is 0 wherever the weight reaches the
// bond). Results are identical with or without the memo.
type alphaCache struct {
	scale, low, high fixed.I32F32 // scale = steepness sdiv -100
	gen              uint32
	stamp            [alphaCacheSize]uint32
	key, val         [alphaCacheSize]fixed.I32F32
}

const alphaCacheSize = 4096

// reset starts a new epoch's parameters and invalidates every entry.
func (c *alphaCache) reset(steepness, low, high fixed.I32F32) {
	c.scale = steepness.SatDiv(fixed.I32F32FromInt(-100))
	c.low, c.high = low, high
	c.gen++
	if c.gen == 0 {
		clear(c.stamp[:])
		c.gen = 1
	}
}

// alpha returns alpha_sigmoid(consensus, weight, bond, low, high, steepness).
func (c *alphaCache) alpha(consensus, weight, bond fixed.I32F32) fixed.I32F32 {
	var d fixed.I32F32
	if weight >= bond {
		d = clamp(weight.SatSub(consensus), 0, fixed.I32F32One) // buy
	} else {
		d = clamp(bond.SatSub(weight), 0, fixed.I32F32One) // sell
	}
	h := uint32((uint64(d) * 0x9E3779B97F4A7C15) >> (64 - 12))
	if c.stamp[h] == c.gen && c.key[h] == d {
		return c.val[h]
	}
	a := c.sigmoidRate(d)
	c.stamp[h], c.key[h], c.val[h] = c.gen, d, a
	return a
}

// sigmoidRate maps the difference d to low + sigmoid·(high - low), clamped:
// sigmoid = 1 / (1 + exp_safe(scale ⊗ (d - 0.5))).
func (c *alphaCache) sigmoidRate(d fixed.I32F32) fixed.I32F32 {
	x := c.scale.SatMul(d.SatSub(fixed.I32F32Half))
	sig := fixed.I32F32One.SatDiv(fixed.I32F32One.SatAdd(fixed.ExpSafe(x)))
	a := c.low.SatAdd(sig.SatMul(c.high.SatSub(c.low)))
	return clamp(a, c.low, c.high)
}

// clamp is math.rs clamp_value: min with high first, then max with low.
func clamp(v, low, high fixed.I32F32) fixed.I32F32 { return v.Min(high).Max(low) }
