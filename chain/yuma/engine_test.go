package yuma

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"taobox/chain/fixed"
)

// TestCPUEngineMatchesSequential: a batch gives, input by input, exactly what
// Epoch gives alone, whatever the number of workers, and reusing the outputs
// of a previous (different) batch leaves nothing stale behind.
func TestCPUEngineMatchesSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ins := make([]Input, 60)
	for i := range ins {
		v := Sparse
		if i%5 == 0 {
			v = Dense
		}
		ins[i] = *RandomInput(r, v, 0)
	}
	want := make([]*Output, len(ins))
	for i := range ins {
		out, err := Epoch(&ins[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out
	}
	outs := make([]Output, len(ins))
	for _, workers := range []int{1, 2, 3, 8} {
		e := NewCPUEngine(workers)
		// Fill outs with another batch first, to catch stale reuse.
		shuffled := append([]Input(nil), ins...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if err := e.EpochsInto(context.Background(), shuffled, outs); err != nil {
			t.Fatal(err)
		}
		if err := e.EpochsInto(context.Background(), ins, outs); err != nil {
			t.Fatal(err)
		}
		for i := range ins {
			if !sameOutput(&outs[i], want[i]) {
				t.Fatalf("workers=%d: output %d differs from Epoch", workers, i)
			}
		}
	}
}

func TestCPUEngineRejectsWholeBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	ins := []Input{*RandomInput(r, Sparse, 0), *RandomInput(r, Sparse, 0)}
	ins[1].N = 3
	ins[1].LastUpdate = []uint64{1}
	outs, err := NewCPUEngine(2).Epochs(context.Background(), ins)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "[1].last_update" {
		t.Fatalf("got %v (%T), want a FieldError on [1].last_update", err, err)
	}
	if outs != nil {
		t.Fatalf("got outputs with an error")
	}
}

func TestCPUEngineCancel(t *testing.T) {
	ins := []Input{Synthetic(SynthConfig{N: 64, Validators: 8, Seed: 1})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewCPUEngine(1).Epochs(ctx, ins); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestWarmEpochAllocatesNothing: with a warm workspace and output, an epoch
// of the same subnet size allocates nothing (the O(1) target of the issue).
func TestWarmEpochAllocatesNothing(t *testing.T) {
	for _, cfg := range []SynthConfig{
		{N: 256, Validators: 64, Seed: 3, Yuma3: true, LiquidAlpha: true},
		{N: 256, Validators: 64, Seed: 3},
		{N: 300, Validators: 30, Seed: 4, Yuma3: true, WeightsPerValidator: 20},
	} {
		in := agedInput(t, cfg, 2)
		var ws Workspace
		var out Output
		if err := ws.Epoch(&in, &out); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() { _ = ws.Epoch(&in, &out) }); a != 0 {
			t.Errorf("%+v: %.1f allocations per warm epoch, want 0", cfg, a)
		}
	}
}

// FuzzEpochMatchesReference drives the adversarial input generator from the
// fuzzer's bytes and requires the fast engine to equal the literal reference.
func FuzzEpochMatchesReference(f *testing.F) {
	for _, s := range []uint64{0, 1, 2, 42, 1 << 40} {
		f.Add(s, s^0x9e3779b97f4a7c15)
	}
	var ws Workspace
	var out Output
	f.Fuzz(func(t *testing.T, a, b uint64) {
		in := RandomInput(rand.New(rand.NewPCG(a, b)), Sparse, 0)
		if err := ws.Epoch(in, &out); err != nil {
			t.Fatal(err)
		}
		if want := referenceSparse(in); !sameOutput(&out, want) {
			t.Fatalf("engine and reference differ for seed (%d, %d)", a, b)
		}
	})
}

// TestU16Proportion pins the constant-division shortcut to the definition.
func TestU16Proportion(t *testing.T) {
	for x := range 65536 {
		want := fixed.I32F32FromInt(int64(x)).SafeDiv(fixed.I32F32FromInt(65535))
		if got := u16Proportion(uint16(x)); got != want {
			t.Fatalf("u16Proportion(%d) = %d, want %d", x, got, want)
		}
	}
}

// TestSpecConstants pins the derived parameters of yuma-epoch.md §2.3 to the
// raw values the spec gives (computed there with exact integer arithmetic).
func TestSpecConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"kappa 32767", int64(u16Proportion(32767)), 2147450879},
		{"kappa 65535", int64(u16Proportion(65535)), 1 << 32},
		{"alpha_low 45875", int64(u16Proportion(45875)), 3006509875},
		{"alpha_high 58982", int64(u16Proportion(58982)), 3865503334},
		{"EMA alpha, bma 900000", int64(emaAlpha(900_000)), 429496730},
		{"EMA alpha, bma 975000", int64(emaAlpha(975_000)), 107374183},
	} {
		if c.got != c.want {
			t.Errorf("%s: raw %d, want %d", c.name, c.got, c.want)
		}
	}
	// TAO weight: U96F32(w) safe_div U96F32(u64::MAX), widened to I64F64.
	if got := taoWeight(971_718_665_099_567_868).RawString(); got != "971718664044675072" {
		t.Errorf("tao weight of the runtime default: raw %s, want 971718664044675072 (≈ 0.0526770)", got)
	}
	if got := taoWeight(math.MaxUint64).RawString(); got != "18446744073709551616" {
		t.Errorf("tao weight u64::MAX: raw %s, want 2^64 (exactly 1)", got)
	}
}

// TestDenseSizeCap: the dense variant refuses more than MaxDenseUIDs uids
// (its n × n matrices), naming n; the sparse variant takes the same subnet.
func TestDenseSizeCap(t *testing.T) {
	in := Synthetic(SynthConfig{N: MaxDenseUIDs + 1, Validators: 4, Seed: 1, WeightsPerValidator: 4, Variant: Dense})
	var fe *FieldError
	if err := in.Validate(); !errors.As(err, &fe) || fe.Field != "n" {
		t.Fatalf("dense n = %d: got %v, want a FieldError on n", in.N, err)
	}
	in.Variant = Sparse
	if err := in.Validate(); err != nil {
		t.Fatalf("sparse n = %d: %v", in.N, err)
	}
	small := Synthetic(SynthConfig{N: 64, Validators: 4, Seed: 1, Variant: Dense})
	if err := small.Validate(); err != nil {
		t.Fatalf("dense n = 64: %v", err)
	}
}
