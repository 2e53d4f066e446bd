package ymath

import (
	"slices"

	"taobox/chain/fixed"
)

// WeightedMedian is subtensor's stake-weighted median: a deterministic
// mid-pivot quickselect over partitionIdx. It returns 0 when stake and score
// differ in length, for an empty partition, or (unreachably, see below) after
// more than len(partitionIdx) iterations; a one-element partition returns its
// score. Stake sums use saturating adds. Indices outside score/stake read as 0.
//
// Every iteration removes at least the pivot's entries from the partition, so
// the partition reaches length <= 1 before the iteration limit can trip; the
// limit is kept only to mirror the Rust code.
func WeightedMedian(stake, score []fixed.I32F32, partitionIdx []int, minority, partitionLo, partitionHi fixed.I32F32) fixed.I32F32 {
	if len(stake) != len(score) {
		return 0
	}
	current := slices.Clone(partitionIdx)
	iterationCounter := 0
	iterationLimit := len(partitionIdx)
	var lower, upper []int

	for {
		n := len(current)
		if n == 0 {
			return 0
		}
		if n == 1 {
			return GetSafe(score, current[0])
		}
		pivot := GetSafe(score, current[n/2])
		var loStake, hiStake fixed.I32F32
		for _, idx := range current {
			s := GetSafe(score, idx)
			if s == pivot {
				continue
			}
			if s < pivot {
				loStake = loStake.SatAdd(GetSafe(stake, idx))
				lower = append(lower, idx)
			} else {
				hiStake = hiStake.SatAdd(GetSafe(stake, idx))
				upper = append(upper, idx)
			}
		}
		if minority < partitionLo.SatAdd(loStake) && len(lower) > 0 {
			current = slices.Clone(lower)
			partitionHi = partitionLo.SatAdd(loStake)
		} else if partitionHi.SatSub(hiStake) <= minority && len(upper) > 0 {
			current = slices.Clone(upper)
			partitionLo = partitionHi.SatSub(hiStake)
		} else {
			return pivot
		}
		lower = lower[:0]
		upper = upper[:0]

		iterationCounter++
		if iterationCounter > iterationLimit {
			break
		}
	}
	return 0
}

// WeightedMedianCol returns, for each column of the dense score matrix (width
// from the first row), the WeightedMedian over rows with stake > 0: their
// stakes are normalized and minority = Σstake ⊖ majority. A positive-stake row
// that is missing or has the wrong width contributes stake 0 and score 0. A
// column without positive-stake rows gets 0.
func WeightedMedianCol(stake []fixed.I32F32, score [][]fixed.I32F32, majority fixed.I32F32) []fixed.I32F32 {
	columns := 0
	if len(score) > 0 {
		columns = len(score[0])
	}
	median := make([]fixed.I32F32, columns)
	for c := range median {
		var useStake, useScore []fixed.I32F32
		for r := range stake {
			st := stake[r]
			if st <= 0 {
				continue
			}
			if r < len(score) {
				row := score[r]
				if len(row) == columns {
					useStake = append(useStake, st)
					useScore = append(useScore, GetSafe(row, c))
				} else {
					useStake = append(useStake, 0)
					useScore = append(useScore, 0)
				}
			} else {
				useStake = append(useStake, 0)
				useScore = append(useScore, 0)
			}
		}
		if len(useStake) > 0 {
			InplaceNormalize(useStake)
			stakeSum := Sum(useStake)
			minority := stakeSum.SatSub(majority)
			idxs := make([]int, len(useStake))
			for i := range idxs {
				idxs[i] = i
			}
			median[c] = WeightedMedian(useStake, useScore, idxs, minority, 0, stakeSum)
		}
	}
	return median
}

// WeightedMedianColSparse returns, for each of the given columns, the
// WeightedMedian over rows with stake > 0 (normalized; minority = Σstake ⊖
// majority). Rows are paired with stake up to the shorter of the two; a row
// with no entry in a column scores 0 there (a later duplicate entry wins).
func WeightedMedianColSparse(stake []fixed.I32F32, score [][]Pair, columns uint16, majority fixed.I32F32) []fixed.I32F32 {
	var useStake []fixed.I32F32
	for _, s := range stake {
		if s > 0 {
			useStake = append(useStake, s)
		}
	}
	InplaceNormalize(useStake)
	stakeSum := Sum(useStake)
	minority := stakeSum.SatSub(majority)
	stakeIdx := make([]int, len(useStake))
	for i := range stakeIdx {
		stakeIdx[i] = i
	}

	useScore := make([][]fixed.I32F32, columns)
	for c := range useScore {
		useScore[c] = make([]fixed.I32F32, len(useStake))
	}
	k := 0
	for r := 0; r < len(stake) && r < len(score); r++ {
		if stake[r] > 0 {
			for _, p := range score[r] {
				if int(p.J) < len(useScore) && k < len(useScore[p.J]) {
					useScore[p.J][k] = p.V
				}
			}
			k++
		}
	}

	median := make([]fixed.I32F32, 0, columns)
	for _, colVec := range useScore {
		median = append(median, WeightedMedian(useStake, colVec, stakeIdx, minority, 0, stakeSum))
	}
	return median
}
