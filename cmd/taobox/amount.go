package main

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"taobox/chain/types"
)

// Amounts, weights and percentages as users type them. Amounts are exact
// decimal TAO (never floats): 1 TAO = 10^9 rao, so at most 9 decimals.

// maxTAOText is the largest amount a u64 of rao holds.
const maxTAOText = "18446744073.709551615"

// parseTAO parses a non-negative decimal amount of TAO ("1", "1.5",
// "0.000000001") into rao, exactly.
func parseTAO(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty amount (write TAO as a decimal, for example 1.5)")
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%q: amounts cannot be negative", s)
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%q is not an amount of TAO (write digits with an optional decimal point, for example 1.5 or 0.25)", s)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("%q has %d decimals; TAO has 9 (1 rao = 0.000000001 TAO)", s, len(frac))
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	tooBig := fmt.Errorf("%q is more TAO than can exist (at most %s)", s, maxTAOText)
	if err != nil {
		return 0, tooBig
	}
	f := uint64(0)
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if w > (math.MaxUint64-f)/types.RaoPerTAO {
		return 0, tooBig
	}
	return w*types.RaoPerTAO + f, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatTAO writes rao as TAO with no trailing zeros: "1.5", "1000",
// "0.000000001".
func formatTAO(rao uint64) string {
	s := strconv.FormatUint(rao/types.RaoPerTAO, 10)
	if f := rao % types.RaoPerTAO; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%09d", f), "0")
	}
	return s
}

// formatTAOFixed writes rao as TAO with exactly d decimals (rounded down).
func formatTAOFixed(rao uint64, d int) string {
	s := fmt.Sprintf("%d.%09d", rao/types.RaoPerTAO, rao%types.RaoPerTAO)
	return s[:len(s)-(9-d)]
}

// parseU16List parses "1,2,3" into u16 values.
func parseU16List(s, what string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no %s given (a comma-separated list, for example 1,2,3)", what)
	}
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q is not a %s (an integer from 0 to 65535)", strings.TrimSpace(f), strings.TrimSuffix(what, "s"))
		}
		out = append(out, uint16(v))
	}
	return out, nil
}

// parseFloatList parses "0.5,0.25" into non-negative finite floats.
func parseFloatList(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no weights given (a comma-separated list, for example 0.5,0.5)")
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if v < 0 {
			return nil, fmt.Errorf("weight %q is negative; weights are >= 0", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// normalizeWeights turns float weights into the u16 values a weights call
// carries, exactly as the bittensor SDK's convert_weights_and_uids_for_emit:
// divide each weight by the largest, multiply by 65535, round half to even
// (Python's round), and drop the uids whose weight rounds to 0. keys are
// uids (or netuids) and must be unique. All-zero weights are an error (the
// SDK would send nothing).
func normalizeWeights(keys []uint16, weights []float64, what string) ([]uint16, []uint16, error) {
	if len(keys) != len(weights) {
		return nil, nil, fmt.Errorf("%d %s but %d weights: give one weight per %s", len(keys), what, len(weights), strings.TrimSuffix(what, "s"))
	}
	seen := map[uint16]bool{}
	maxW := 0.0
	for i, k := range keys {
		if seen[k] {
			return nil, nil, fmt.Errorf("%s %d appears twice", strings.TrimSuffix(what, "s"), k)
		}
		seen[k] = true
		maxW = math.Max(maxW, weights[i])
	}
	if maxW == 0 {
		return nil, nil, errors.New("every weight is 0; give at least one positive weight")
	}
	var outK, outW []uint16
	for i, w := range weights {
		v := math.RoundToEven(w / maxW * math.MaxUint16)
		if v != 0 {
			outK = append(outK, keys[i])
			outW = append(outW, uint16(v))
		}
	}
	return outK, outW, nil
}

// parsePercent parses a take in percent ("18", "9.5") into u16 parts of
// 65535, rounding half to even, exactly.
func parsePercent(s string) (uint16, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/eE") {
		return 0, fmt.Errorf("%q is not a percentage (for example 18 or 9.5)", s)
	}
	if r.Sign() < 0 || r.Cmp(big.NewRat(100, 1)) > 0 {
		return 0, fmt.Errorf("%s%% is outside 0 to 100", s)
	}
	r.Mul(r, big.NewRat(math.MaxUint16, 100))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	// Round half to even: compare 2·remainder with the denominator.
	switch c := new(big.Int).Lsh(m, 1).Cmp(r.Denom()); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	return uint16(q.Uint64()), nil
}

// fraction writes a u16 proportion (of 65535) as a decimal in [0, 1].
func u16Fraction(v uint16) string {
	return strconv.FormatFloat(float64(v)/math.MaxUint16, 'f', 5, 64)
}
