package validator

import (
	"fmt"
	"testing"
	"time"

	"taobox/model"
	"taobox/model/gguf"
	"taobox/task"
)

// BenchmarkVerifyVsGenerate measures verification cost as a fraction of
// generation cost (one thread each): generating n tokens after a 21-token
// prompt (GenerateSampled, what a miner does) against verifying them
// (Verifier.Verify: one teacher-forced Score over prompt + answer, plus the
// spot checks' one-token forward passes). check=all compares every
// position (the classifier runs at each); check=spot8 compares 8 sampled
// positions. Metrics: gen-µs and verify-µs per answer, and verify/gen.
//
// The s15M cases use a synthesized model in llama2.c's 15M shape (32000
// vocabulary, 288 dim, 6 layers), quantized Q8_0 like a miner would run it.
func BenchmarkVerifyVsGenerate(b *testing.B) {
	fixtures(b)
	prompt := fix.tok.Encode("once upon a time, there was a little girl named lily. one day, she went to the", true)
	type pair struct{ gen, val *model.Model }
	models := []struct {
		name string
		load func() pair
		ns   []int
	}{
		{"tiny", func() pair { return pair{fix.f32, fix.val} }, []int{16, 48, 100}},
		{"s15M-Q8_0", func() pair {
			s, err := model.Synthesize(model.SynthShapes["s15M"], 1)
			if err != nil {
				b.Fatal(err)
			}
			q, err := requantize(s, gguf.TypeQ8_0)
			if err != nil {
				b.Fatal(err)
			}
			q2, _ := requantize(s, gguf.TypeQ8_0)
			return pair{q, q2}
		}, []int{48}},
	}
	for _, mc := range models {
		var ms *pair
		for _, n := range mc.ns {
			for _, temp := range []float32{0, 0.8} {
				for _, all := range []bool{true, false} {
					mode := "all"
					if !all {
						mode = "spot8"
					}
					b.Run(fmt.Sprintf("model=%s/tokens=%d/temp=%.1f/check=%s", mc.name, n, temp, mode), func(b *testing.B) {
						if ms == nil {
							p := mc.load()
							ms = &p
						}
						benchVerify(b, ms.gen, ms.val, prompt, n, temp, all)
					})
				}
			}
		}
	}
}

func benchVerify(b *testing.B, gm, vm *model.Model, prompt []int, n int, temp float32, all bool) {
	body := task.Body{MaxTokens: uint32(n), Temperature: temp, Seed: 1}
	if temp > 0 {
		body.TopK = 40
	}
	for _, id := range prompt {
		body.PromptIDs = append(body.PromptIDs, uint32(id))
	}
	opt := model.GenerateOptions{
		Sampler:   model.Sampler{Temperature: float64(temp), TopK: int(body.TopK), Seed: 1},
		MaxTokens: n, EOS: -1,
	}
	g, err := gm.GenerateSampled(prompt, opt)
	if err != nil {
		b.Fatal(err)
	}
	toks := make([]task.Token, len(g.IDs))
	for i, id := range g.IDs {
		toks[i] = task.Token{ID: uint32(id), LogProb: float32(g.LogProbs[i])}
	}
	res := signed(reqHash("bench"), toks)
	v := NewVerifier(vm, nil)
	v.EOG = func(int) bool { return false } // generation ignored EOS too
	v.Tol.MinLogProb = -1e9                 // the answer's cost, not its plausibility
	v.Tol.All = all
	if !all {
		v.Tol.Spot = 8
	}
	if vd := v.Verify(body, res); !vd.Pass {
		b.Fatalf("benchmark answer does not verify: %s", vd.Reason)
	}
	var genT, verT time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := gm.GenerateSampled(prompt, opt); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		v.Verify(body, res)
		verT += time.Since(t1)
		genT += t1.Sub(t0)
	}
	b.ReportMetric(float64(genT.Microseconds())/float64(b.N), "gen-µs")
	b.ReportMetric(float64(verT.Microseconds())/float64(b.N), "verify-µs")
	b.ReportMetric(float64(verT)/float64(genT), "verify/gen")
}
