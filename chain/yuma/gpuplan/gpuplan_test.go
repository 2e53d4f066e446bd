package gpuplan

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"testing"

	"taobox/chain/fixed"
	"taobox/chain/yuma"
	"taobox/internal/vectors"
)

// compareBatch runs ins on the CPU engine and on the reference path and
// fails on the first difference.
func compareBatch(t *testing.T, name string, ins []yuma.Input) {
	t.Helper()
	want, err := yuma.NewCPUEngine(1).Epochs(context.Background(), ins)
	if err != nil {
		t.Fatalf("%s: cpu: %v", name, err)
	}
	e := NewEngine()
	e.poison = true
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatalf("%s: plan: %v", name, err)
	}
	for i := range ins {
		if d := Diff(&got[i], &want[i]); d != "" {
			in := &ins[i]
			t.Fatalf("%s: input %d (n=%d yuma3=%v liquid=%v β=%d): %s\n got %+v\nwant %+v",
				name, i, in.N, in.Yuma3, in.LiquidAlpha, in.BondsPenalty, d, got[i], want[i])
		}
	}
}

// loadVectorInputs returns every whole-epoch vector's input as a sparse
// epoch (the dense records run here as sparse too).
func loadVectorInputs(t *testing.T) []yuma.Input {
	t.Helper()
	eps, err := vectors.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	var all []yuma.Input
	for _, ep := range eps {
		in, err := yuma.DecodeInput(ep.Input)
		if err != nil {
			t.Fatalf("%s: %v", ep.Name(), err)
		}
		in.Variant = yuma.Sparse
		all = append(all, *in)
	}
	return all
}

// TestVectors: every whole-epoch vector, as one batch and one by one.
func TestVectors(t *testing.T) {
	all := loadVectorInputs(t)
	for i := range all {
		compareBatch(t, fmt.Sprintf("vector %d", i), all[i:i+1])
	}
	compareBatch(t, "all vectors", all)
	t.Logf("%d vector epochs equal", len(all))
}

// TestRandomBatches: thousands of adversarial and synthetic batches.
func TestRandomBatches(t *testing.T) {
	batches := 3000
	if testing.Short() {
		batches = 400
	}
	if os.Getenv("TAOBOX_LONG") != "" {
		batches = 30000
	}
	epochs := 0
	for k := range batches {
		ins := RandomBatch(11, k)
		epochs += len(ins)
		compareBatch(t, "batch", ins)
	}
	t.Logf("%d batches, %d epochs equal", batches, epochs)
}

// TestMainnetShape: 128 subnets of 256 uids (the bench batch) and a 4096-uid
// subnet, in every bonds regime.
func TestMainnetShape(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	var ins []yuma.Input
	for i := range 128 {
		cfg := yuma.SynthConfig{N: 256, Validators: 64, Seed: uint64(i + 1), Yuma3: i%4 != 3, LiquidAlpha: i%2 == 0}
		in := AgedSynthetic(cfg, 1+i%2)
		if i%8 == 5 {
			in.BondsPenalty = 30000
		}
		if i%16 == 9 {
			in.BondsPenalty = 0
		}
		ins = append(ins, in)
	}
	compareBatch(t, "128x256", ins)
	big := AgedSynthetic(yuma.SynthConfig{N: 4096, Validators: 128, Seed: 9, Yuma3: true, LiquidAlpha: true}, 1)
	compareBatch(t, "4096", []yuma.Input{big})
}

// TestChunks: a batch larger than one chunk and subnets past MaxCells.
func TestInWords(t *testing.T) {
	ins := RandomBatch(3, 1)
	idx := make([]int, len(ins))
	for i := range idx {
		idx[i] = i
	}
	if got, want := InWords(ins, idx), Pack(ins, idx, false).L.InWords; got != want {
		t.Fatalf("InWords %d, Pack %d", got, want)
	}
}

func TestChunks(t *testing.T) {
	ins := []yuma.Input{{N: 6000}, {N: 5000}, {N: 5000}, {N: 5000}, {N: 10}}
	got := Chunks(ins, []int{1, 2, 3, 4})
	if len(got) != 3 || len(got[0]) != 1 || len(got[2]) != 2 {
		t.Fatalf("chunks %v", got)
	}
	if Eligible(&yuma.Input{N: 6000}) || !Eligible(&yuma.Input{N: 5792}) {
		t.Fatal("eligibility bound")
	}
}

func TestRejectsLikeCPU(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	ins := []yuma.Input{RandomInput(r), RandomInput(r)}
	ins[1].N = 3
	ins[1].LastUpdate = []uint64{1}
	_, err1 := yuma.NewCPUEngine(1).Epochs(context.Background(), ins)
	_, err2 := NewEngine().Epochs(context.Background(), ins)
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Fatalf("cpu %v, plan %v", err1, err2)
	}
}

// The device fixed-point transcriptions against chain/fixed.
func TestFx(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	edge := []int64{0, 1, -1, fxOne, -fxOne, fxHalf, fxMax, fxMin, fxMax - 1, fxMin + 1, 1 << 31, 65535 << 32, 20 << 32, -20 << 32, 21 << 32}
	val := func() int64 {
		switch r.IntN(5) {
		case 0:
			return edge[r.IntN(len(edge))]
		case 1:
			return int64(r.Uint64())
		case 2:
			return int64(r.Uint64()) >> r.IntN(64)
		case 3:
			return r.Int64N(1<<34) - 1<<33
		}
		return int64(r.IntN(1 << 20))
	}
	for range 2_000_000 {
		a, b := val(), val()
		A, B := fixed.I32F32(a), fixed.I32F32(b)
		if got, want := fxSatAdd(a, b), int64(A.SatAdd(B)); got != want {
			t.Fatalf("satadd %d %d: %d want %d", a, b, got, want)
		}
		if got, want := fxSatSub(a, b), int64(A.SatSub(B)); got != want {
			t.Fatalf("satsub %d %d: %d want %d", a, b, got, want)
		}
		if got, want := fxSatMul(a, b), int64(A.SatMul(B)); got != want {
			t.Fatalf("satmul %d %d: %d want %d", a, b, got, want)
		}
		q, ok := fxCheckedDiv(a, b)
		wq, wok := A.CheckedDiv(B)
		if q != int64(wq) || ok != wok {
			t.Fatalf("div %d %d: %d %v want %d %v", a, b, q, ok, wq, wok)
		}
		if b != 0 {
			if got, want := fxSatDiv(a, b), int64(A.SatDiv(B)); got != want {
				t.Fatalf("satdiv %d %d: %d want %d", a, b, got, want)
			}
		}
		x := a >> r.IntN(40)
		if got, want := fxExpSafe(x), int64(fixed.ExpSafe(fixed.I32F32(x))); got != want {
			t.Fatalf("exp %d: %d want %d", x, got, want)
		}
		if got, want := fxPropU16(a), fixed.I32F32(a).SatMul(65535<<32).FloorU16(); got != want {
			t.Fatalf("propu16 %d: %d want %d", a, got, want)
		}
	}
	for range 3_000_000 {
		v := r.Uint64() >> r.IntN(64)
		if v == 0 {
			v = 1
		}
		u1 := r.Uint64() % v
		if r.IntN(4) == 0 {
			u1 = v - 1
		}
		u0 := r.Uint64()
		if r.IntN(8) == 0 {
			u0 = ^uint64(0) >> r.IntN(64)
		}
		want, _ := bits.Div64(u1, u0, v)
		if got := fxDiv128(u1, u0, v); got != want {
			t.Fatalf("div128 %d %d / %d: %d want %d", u1, u0, v, got, want)
		}
	}
	for x := range 65536 {
		if got, want := fxU16Prop(uint64(x)), int64(fixed.I32F32FromInt(int64(x)).SafeDiv(fixed.I32F32FromInt(65535))); got != want {
			t.Fatalf("u16prop %d", x)
		}
	}
}

// FuzzPlanMatchesCPU drives RandomInput from the fuzzer's seed: a batch of
// adversarial subnets through the reference path (poisoned work arena)
// must equal the CPU engine.
func FuzzPlanMatchesCPU(f *testing.F) {
	for _, s := range []uint64{0, 1, 2, 42, 1 << 40} {
		f.Add(s, s^0x9e3779b97f4a7c15, uint8(3))
	}
	f.Fuzz(func(t *testing.T, a, b uint64, k uint8) {
		r := rand.New(rand.NewPCG(a, b))
		ins := make([]yuma.Input, 1+int(k%8))
		for i := range ins {
			ins[i] = RandomInput(r)
		}
		compareBatch(t, "fuzz", ins)
	})
}
