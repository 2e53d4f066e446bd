package yuma

import (
	"context"
	"fmt"
	"testing"
)

// benchCase is one benchmark scenario: a synthetic subnet aged by a few
// epochs so that bonds, permits and liquid alpha are in a steady state.
type benchCase struct {
	name string
	cfg  SynthConfig
}

var benchCases = []benchCase{
	{"uids=256/vals=64/yuma3+liquid", SynthConfig{N: 256, Validators: 64, Seed: 1, Yuma3: true, LiquidAlpha: true}},
	{"uids=256/vals=64/yuma3", SynthConfig{N: 256, Validators: 64, Seed: 1, Yuma3: true}},
	{"uids=256/vals=64/yuma2", SynthConfig{N: 256, Validators: 64, Seed: 1}},
	{"uids=4096/vals=256/yuma3+liquid", SynthConfig{N: 4096, Validators: 256, Seed: 1, Yuma3: true, LiquidAlpha: true}},
}

// agedInput runs epochs epochs of the synthetic subnet and returns the input
// of the next one.
func agedInput(tb testing.TB, cfg SynthConfig, epochs int) Input {
	tb.Helper()
	in := Synthetic(cfg)
	for range epochs {
		out, err := Epoch(&in)
		if err != nil {
			tb.Fatal(err)
		}
		Advance(&in, out)
	}
	return in
}

// BenchmarkEpoch times one epoch with a warm workspace (engine) beside the
// literal port of subtensor's code (reference), in the same run.
func BenchmarkEpoch(b *testing.B) {
	for _, bc := range benchCases {
		in := agedInput(b, bc.cfg, 3)
		b.Run(bc.name+"/engine", func(b *testing.B) {
			var ws Workspace
			var out Output
			if err := ws.Epoch(&in, &out); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				ws.run(&in, &out)
			}
		})
		if bc.cfg.N > 1024 && testing.Short() {
			continue
		}
		b.Run(bc.name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				referenceSparse(&in)
			}
		})
	}
}

// BenchmarkBatch128 times the maintainers' model of mainnet: 128 subnets of
// 256 uids (64 validators weighting every uid, Yuma 3 with liquid alpha) in
// one call of the CPU engine, on 1 and 2 workers, beside the reference run
// sequentially.
func BenchmarkBatch128(b *testing.B) {
	ins := make([]Input, 128)
	for i := range ins {
		ins[i] = agedInput(b, SynthConfig{N: 256, Validators: 64, Seed: uint64(i + 1), Yuma3: true, LiquidAlpha: true}, 2)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("engine/workers=%d", workers), func(b *testing.B) {
			e := NewCPUEngine(workers)
			outs := make([]Output, len(ins))
			if err := e.EpochsInto(context.Background(), ins, outs); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := e.EpochsInto(context.Background(), ins, outs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("reference/sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range ins {
				referenceSparse(&ins[i])
			}
		}
	})
}
