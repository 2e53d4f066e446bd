package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/model"
)

// batch128 is the maintainers' mainnet model: 128 subnets of 256 uids, 64
// validators weighting every uid, Yuma 3 with liquid alpha, aged 1-2 epochs
// (gpu.BigYumaBatch's shape).
func batch128() []yuma.Input {
	ins := make([]yuma.Input, 128)
	for i := range ins {
		ins[i] = gpuplan.AgedSynthetic(yuma.SynthConfig{N: 256, Validators: 64, Seed: uint64(i + 1), Yuma3: true, LiquidAlpha: true}, 1+i%2)
	}
	return ins
}

// BenchmarkBoundary128x256: the CPU engine in this process, the same engine
// behind a fake runner subprocess (yuma.epochs: the difference is the
// boundary) with payloads in shared memory and over the socket, and the
// boundary alone (a server replaying precomputed outputs), over the socket
// and over shm, with the host work of both ops beside it (Boundary's
// EpochsHost and PackedHost: everything but the kernels and the device
// copies).
func BenchmarkBoundary128x256(b *testing.B) {
	ins := batch128()
	ctx := context.Background()
	b.Run("cpu-in-process", func(b *testing.B) {
		e := yuma.NewCPUEngine(0)
		for b.Loop() {
			if _, err := e.Epochs(ctx, ins); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name    string
		shmSize int
	}{{"cpu-behind-runner-socket", -1}, {"cpu-behind-runner-shm", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := fakeOptions(b, "no-packed") // the CPU engine, as yuma.epochs
			opts.ShmSize = tc.shmSize
			e, err := Start(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			for b.Loop() {
				if _, err := e.Epochs(ctx, ins); err != nil {
					b.Fatal(err)
				}
			}
			if st := e.Stats(); st.CPUBatches != 0 {
				b.Fatalf("fell back: %+v", st)
			}
		})
	}
	for _, tc := range []struct {
		name    string
		measure func([]yuma.Input, int) (Boundary, error)
	}{{"boundary-only-socket", MeasureBoundary}, {"boundary-only-shm", MeasureBoundaryShm}} {
		b.Run(tc.name, func(b *testing.B) {
			var r Boundary
			var err error
			for b.Loop() {
				if r, err = tc.measure(ins, 5); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.BatchMs, "ms/batch")
			b.ReportMetric(r.BatchCPUMs, "cpu-ms/batch")
			b.ReportMetric(r.SmallUs, "µs/small")
			b.ReportMetric(r.TokenUs, "µs/token")
			b.ReportMetric(r.SampleUs, "µs/sampled-token")
			b.ReportMetric(float64(r.RequestBytes+r.ResponseBytes)/1e6, "MB/roundtrip")
			b.ReportMetric(r.EpochsHostMs, "epochs-host-ms")
			b.ReportMetric(r.EpochsHostCPUMs, "epochs-host-cpu-ms")
			b.ReportMetric(r.PackedHostMs, "packed-host-ms")
			b.ReportMetric(r.PackedHostCPUMs, "packed-host-cpu-ms")
			b.ReportMetric(float64(r.PackedBytes)/1e6, "packed-MB/roundtrip")
		})
	}
}

func TestMeasureBoundary(t *testing.T) {
	for _, measure := range []func([]yuma.Input, int) (Boundary, error){MeasureBoundary, MeasureBoundaryShm} {
		r, err := measure(gpuplan.RandomBatch(1, 4), 2)
		if errors.Is(err, ErrNoShm) {
			continue // not Linux
		}
		if err != nil || r.BatchMs <= 0 || r.SmallUs <= 0 || r.TokenUs <= 0 || r.SampleUs <= 0 || r.EpochsHostMs <= 0 || r.PackedHostMs <= 0 || r.PackedBytes <= 0 {
			t.Fatalf("%+v, %v", r, err)
		}
		t.Log(r)
	}
}

// BenchmarkSeqForward is one token of the tiny model, as the miner runs
// it: in process, and through the fake runner (the CPU model in a runner
// process: the boundary's cost per token, logits included).
func BenchmarkSeqForward(b *testing.B) {
	path, cpu := tinyModelFile(b)
	seqLen := cpu.Config.SeqLen
	b.Run("in-process", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := cpu.Forward(1+i%7, i%seqLen); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("runner", func(b *testing.B) {
		s := benchSeq(b, path)
		i := 0
		for b.Loop() {
			if _, err := s.Forward(1+i%7, i%seqLen); err != nil {
				b.Fatal(err)
			}
			i++
		}
		// The same tokens in one llama.generate call (greedy answers).
		const n = 64
		t0 := time.Now()
		for range 20 {
			if _, _, err := s.Generate([]int{1}, n-1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(t0).Nanoseconds())/(20*n), "generate-ns/token")
	})
}

// BenchmarkSeqSample is one sampled token of the tiny model (temperature
// 0.8, two alternatives), as the miner generates it: in process (forward,
// then the sampler), through the fake runner with the logits crossing
// (llama.forward, the sampler here: the path before llama.sample), and in
// one llama.sample call (the sampler in the runner).
func BenchmarkSeqSample(b *testing.B) {
	path, cpu := tinyModelFile(b)
	seqLen := cpu.Config.SeqLen
	newSampler := func() *model.Sampler {
		s := &model.Sampler{Temperature: 0.8, Seed: 3}
		s.Reset()
		return s
	}
	var top []model.Alt
	b.Run("in-process", func(b *testing.B) {
		smp, i := newSampler(), 0
		for b.Loop() {
			logits, err := cpu.Forward(1+i%7, i%seqLen)
			if err != nil {
				b.Fatal(err)
			}
			_, _, top = model.SampleFrom(logits, smp, 2, top)
			i++
		}
	})
	b.Run("runner-forward", func(b *testing.B) {
		s, smp, i := benchSeq(b, path), newSampler(), 0
		for b.Loop() {
			logits, err := s.Forward(1+i%7, i%seqLen)
			if err != nil {
				b.Fatal(err)
			}
			_, _, top = model.SampleFrom(logits, smp, 2, top)
			i++
		}
	})
	b.Run("runner-sample", func(b *testing.B) {
		s, smp, i := benchSeq(b, path), newSampler(), 0
		tok := []int{0}
		for b.Loop() {
			if i%seqLen == 0 {
				smp = newSampler() // a new answer: draws from the start
			}
			tok[0] = 1 + i%7
			var err error
			if _, _, top, err = s.Sample(tok, i%seqLen, smp, 2, top); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// benchSeq starts a fake runner (the CPU model in a runner process) with
// the model at path loaded and returns a Seq on it, ended and the runner
// closed when b is done.
func benchSeq(b *testing.B, path string) *Seq {
	e, err := Start(context.Background(), fakeOptions(b, "ok"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	if _, err := e.LoadModel(context.Background(), path, ""); err != nil {
		b.Fatal(err)
	}
	s := e.BeginSeq(context.Background())
	b.Cleanup(s.End)
	return s
}

// BenchmarkSeqScore is a validator's teacher-forced pass over 128 ids of
// the tiny model (64 prompt, 64 answer, 4 spots, ranks), through the fake
// runner (the CPU model in a runner process): a forward per position, each
// returning every logit (the path before llama.score), against one
// llama.score call; in process as the baseline.
func BenchmarkSeqScore(b *testing.B) {
	path, cpu := tinyModelFile(b)
	ids := make([]int, 128)
	for i := range ids {
		ids[i] = 1 + (i*37)%(cpu.Config.VocabSize-1)
	}
	from, qs := 64, []int{63, 80, 100, 126}
	dists := make([][]float64, len(qs))
	for i := range dists {
		dists[i] = make([]float64, cpu.Config.VocabSize)
	}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := model.ScoreForward(cpu.Forward, ids, from, qs, dists, true, 0.5); err != nil {
				b.Fatal(err)
			}
		}
	})
	s := benchSeq(b, path)
	b.Run("runner-forwards", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := model.ScoreForward(s.Forward, ids, from, qs, dists, true, 0.5); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("runner-score", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, err := s.Score(ids, from, qs, true, 0.5); err != nil {
				b.Fatal(err)
			}
		}
	})
}
