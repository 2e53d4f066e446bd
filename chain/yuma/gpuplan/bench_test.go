package gpuplan

import (
	"testing"

	"taobox/chain/yuma"
)

// BenchmarkPack128 times the host side of a 128×256 batch: Pack and Unpack.
func BenchmarkPack128(b *testing.B) {
	ins := make([]yuma.Input, 128)
	idx := make([]int, 128)
	for i := range ins {
		ins[i] = AgedSynthetic(yuma.SynthConfig{N: 256, Validators: 64, Seed: uint64(i + 1), Yuma3: true, LiquidAlpha: true}, 2)
		idx[i] = i
	}
	bt := Pack(ins, idx, true)
	bt.Run()
	outs := make([]yuma.Output, len(ins))
	b.Run("pack", func(b *testing.B) {
		for b.Loop() {
			Pack(ins, idx, false)
		}
	})
	// As the GPU engine packs: into a reused arena (its page-locked buffer).
	arena := make([]int64, InWords(ins, idx))
	b.Run("pack-reuse", func(b *testing.B) {
		for b.Loop() {
			Pack(ins, idx, false, arena)
		}
	})
	b.Run("unpack", func(b *testing.B) {
		for b.Loop() {
			bt.Unpack(idx, outs)
		}
	})
}
