package yuma_test

import (
	"reflect"
	"slices"
	"testing"

	"taobox/chain/yuma"
)

func TestSynthDeterministic(t *testing.T) {
	cfg := yuma.SynthConfig{N: 64, Validators: 8, Seed: 7, Yuma3: true, LiquidAlpha: true}
	a, b := yuma.Synthetic(cfg), yuma.Synthetic(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same config, different inputs")
	}
	cfg.Seed = 8
	if c := yuma.Synthetic(cfg); reflect.DeepEqual(a.Weights, c.Weights) || reflect.DeepEqual(a.AlphaStake, c.AlphaStake) {
		t.Fatal("different seeds, same weights or stake")
	}
}

func TestSynthShape(t *testing.T) {
	for _, cfg := range []yuma.SynthConfig{
		{N: 256, Validators: 64, Seed: 1, Yuma3: true, LiquidAlpha: true},
		{N: 256, Validators: 64, Seed: 2, WeightsPerValidator: 16, Variant: yuma.Dense},
		{N: 1, Validators: 1, Seed: 3},
		{N: 5, Validators: 0, Seed: 4},
		{N: 3, Validators: 3, Seed: 5, WeightsPerValidator: 9},
	} {
		in := yuma.Synthetic(cfg)
		if err := in.Validate(); err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if in.N != cfg.N || in.Variant != cfg.Variant || in.Yuma3 != cfg.Yuma3 || in.LiquidAlpha != cfg.LiquidAlpha ||
			int(in.MaxAllowedValidators) != cfg.Validators || in.Tempo != 360 || in.ActivityCutoffBlocks != 5000 ||
			in.Kappa != 32767 || in.BondsPenalty != 65535 || in.BondsMovingAverage != 900_000 ||
			in.AlphaLow != 45875 || in.AlphaHigh != 58982 || in.AlphaSteepness != 1000 ||
			in.RaoEmission != 360*1e9 || in.OwnerUID != -1 {
			t.Fatalf("%+v: parameters %+v", cfg, in)
		}
		wantK := cfg.WeightsPerValidator
		if wantK == 0 || wantK > cfg.N-1 {
			wantK = cfg.N - 1
		}
		for i := range in.N {
			validator := i < cfg.Validators
			if in.ValidatorPermit[i] != validator {
				t.Fatalf("%+v: uid %d permit %v", cfg, i, in.ValidatorPermit[i])
			}
			if len(in.Bonds[i]) != 0 {
				t.Fatalf("%+v: uid %d starts with bonds", cfg, i)
			}
			if in.LastUpdate[i] >= in.CurrentBlock || in.BlockAtRegistration[i] >= in.CurrentBlock {
				t.Fatalf("%+v: uid %d updated or registered in the future", cfg, i)
			}
			if !validator {
				if len(in.Weights[i]) != 0 || in.AlphaStake[i] >= 100e9 || in.TaoStake[i] != 0 {
					t.Fatalf("%+v: miner %d: weights %v, stake %d/%d", cfg, i, in.Weights[i], in.AlphaStake[i], in.TaoStake[i])
				}
				continue
			}
			if in.AlphaStake[i] < 1e12 || in.AlphaStake[i] > 1e15 || in.CurrentBlock-in.LastUpdate[i] > 100 {
				t.Fatalf("%+v: validator %d: stake %d, last update %d", cfg, i, in.AlphaStake[i], in.LastUpdate[i])
			}
			row := in.Weights[i]
			if len(row) != wantK {
				t.Fatalf("%+v: validator %d weights %d uids, want %d", cfg, i, len(row), wantK)
			}
			var top uint16
			for p, e := range row {
				if int(e.UID) == i || p > 0 && e.UID <= row[p-1].UID || e.Value == 0 {
					t.Fatalf("%+v: validator %d row %v: self weight, unsorted, repeated or zero", cfg, i, row)
				}
				top = max(top, e.Value)
			}
			if len(row) > 0 && top != 65535 {
				t.Fatalf("%+v: validator %d row max %d, want 65535", cfg, i, top)
			}
		}
	}
}

func TestSynthPanicsOnBadConfig(t *testing.T) {
	for _, cfg := range []yuma.SynthConfig{{N: 0}, {N: 70000}, {N: 4, Validators: 5}, {N: 4, Validators: -1}, {N: 4, WeightsPerValidator: -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Synthetic(%+v) did not panic", cfg)
				}
			}()
			yuma.Synthetic(cfg)
		}()
	}
}

func TestSynthJSONRoundTrip(t *testing.T) {
	in := yuma.Synthetic(yuma.SynthConfig{N: 40, Validators: 6, Seed: 3, Yuma3: true})
	data, err := yuma.EncodeInput(&in)
	if err != nil {
		t.Fatal(err)
	}
	back, err := yuma.DecodeInput(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&in, back) {
		t.Fatal("synthetic input changed through JSON")
	}
}

func TestSynthAdvance(t *testing.T) {
	for _, cfg := range []yuma.SynthConfig{
		{N: 128, Validators: 16, Seed: 1, Yuma3: true, LiquidAlpha: true},
		{N: 128, Validators: 16, Seed: 2, WeightsPerValidator: 20},
		{N: 64, Validators: 8, Seed: 3, Yuma3: true, Variant: yuma.Dense},
	} {
		in := yuma.Synthetic(cfg)
		for epoch := range 4 {
			prev := in
			prevWeights := make([][]yuma.Entry, in.N)
			for i, row := range in.Weights {
				prevWeights[i] = slices.Clone(row)
			}
			out, err := yuma.Epoch(&in)
			if err != nil {
				t.Fatalf("%+v epoch %d: %v", cfg, epoch, err)
			}
			var emitted uint64
			for _, e := range out.Emission {
				emitted += e
			}
			if emitted == 0 || emitted > in.RaoEmission {
				t.Fatalf("%+v epoch %d: emitted %d of %d", cfg, epoch, emitted, in.RaoEmission)
			}

			yuma.Advance(&in, out)
			if err := in.Validate(); err != nil {
				t.Fatalf("%+v epoch %d: advanced input invalid: %v", cfg, epoch, err)
			}
			if in.CurrentBlock != prev.CurrentBlock+prev.Tempo || in.LastMechanismStepBlock != prev.CurrentBlock {
				t.Fatalf("%+v epoch %d: blocks %d, %d", cfg, epoch, in.CurrentBlock, in.LastMechanismStepBlock)
			}
			if !reflect.DeepEqual(in.ValidatorPermit, out.NewValidatorPermits) {
				t.Fatalf("%+v epoch %d: permits not carried over", cfg, epoch)
			}
			for i := range in.N {
				want := out.NewBonds[i]
				if out.BondsWritten != nil && !out.BondsWritten[i] {
					want = prev.Bonds[i]
				}
				if len(want) != len(in.Bonds[i]) || len(want) > 0 && !reflect.DeepEqual(want, in.Bonds[i]) {
					t.Fatalf("%+v epoch %d: uid %d bonds %v, want %v", cfg, epoch, i, in.Bonds[i], want)
				}
				if len(in.Bonds[i]) > 0 && &in.Bonds[i][0] == &out.NewBonds[i][0] {
					t.Fatalf("%+v epoch %d: bonds row %d aliases the output", cfg, epoch, i)
				}
				if i < cfg.Validators && in.LastUpdate[i] != in.CurrentBlock-1 {
					t.Fatalf("%+v epoch %d: validator %d last update %d", cfg, epoch, i, in.LastUpdate[i])
				}
				if !reflect.DeepEqual(prevWeights[i], prev.Weights[i]) {
					t.Fatalf("%+v epoch %d: Advance wrote into the old weight row %d", cfg, epoch, i)
				}
			}
		}
	}
}

func TestSynthAdvanceDeterministic(t *testing.T) {
	run := func() yuma.Input {
		in := yuma.Synthetic(yuma.SynthConfig{N: 96, Validators: 12, Seed: 9, Yuma3: true, LiquidAlpha: true})
		for range 3 {
			out, err := yuma.Epoch(&in)
			if err != nil {
				t.Fatal(err)
			}
			yuma.Advance(&in, out)
		}
		return in
	}
	if a, b := run(), run(); !reflect.DeepEqual(a, b) {
		t.Fatal("two runs of Synthetic+Epoch+Advance differ")
	}
}
