package model

import (
	"fmt"
	"testing"

	"taobox/model/gguf"
)

// benchShapes are the stories shapes of the spec's llama.cpp anchors (§4),
// untied like the GGUF files llama.cpp's converter wrote for them.
var benchShapes = []struct {
	name string
	c    Config
}{
	{"s15M", Config{Dim: 288, HiddenDim: 768, NLayers: 6, NHeads: 6, NKVHeads: 6, VocabSize: 32000, SeqLen: 256}},
	{"s110M", Config{Dim: 768, HiddenDim: 2048, NLayers: 12, NHeads: 12, NKVHeads: 12, VocabSize: 32000, SeqLen: 1024}},
}

// benchModel synthesizes a random model of shape c and round-trips it
// through an in-memory GGUF file of type typ (the weights then alias that
// buffer, as they alias the mapping of a file on disk).
func benchModel(b *testing.B, c Config, typ gguf.GGMLType) *Model {
	b.Helper()
	ref, err := Synthesize(c, 15)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := ExportGGUF(ref, GGUFExport{Type: typ})
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	m, err := ModelFromGGUF(f)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkModel reports decode tok/s (128 tokens from position 0, as
// llama-bench's tg128), prompt tok/s (64 tokens, pp64) and Score tok/s (64
// positions scored) per shape, file type and thread count. One iteration is one whole run; keep -benchtime
// small (e.g. -benchtime=3x), the s110M F32 decode takes seconds per run.
func BenchmarkModel(b *testing.B) {
	for _, sh := range benchShapes {
		for _, typ := range []gguf.GGMLType{gguf.TypeF32, gguf.TypeQ8_0, gguf.TypeQ4_0} {
			b.Run(sh.name+"/"+typ.String(), func(b *testing.B) {
				m := benchModel(b, sh.c, typ)
				defer m.SetThreads(1)
				for _, threads := range []int{1, 2} {
					m.SetThreads(threads)
					for _, tc := range []struct {
						name string
						n    int
						run  func(int) (float64, error)
					}{{"decode128", 128, m.BenchDecode}, {"prompt64", 64, m.BenchPrompt}, {"score64", 64, m.BenchScore}} {
						b.Run(fmt.Sprintf("%s/threads=%d", tc.name, threads), func(b *testing.B) {
							if _, err := tc.run(tc.n); err != nil { // warm-up
								b.Fatal(err)
							}
							b.ResetTimer()
							var sum, best float64
							for range b.N {
								tps, err := tc.run(tc.n)
								if err != nil {
									b.Fatal(err)
								}
								sum += tps
								best = max(best, tps)
							}
							// best: the fastest run, what a shared machine
							// lets through least disturbed
							b.ReportMetric(sum/float64(b.N), "tok/s")
							b.ReportMetric(best, "best-tok/s")
						})
					}
				}
			})
		}
	}
}

// BenchmarkKernels: one product of a 4096×288 matrix (the s15M classifier's
// row length) per iteration, per type, assembly and Go.
func BenchmarkKernels(b *testing.B) {
	const rows, cols = 4096, 288
	for _, typ := range []gguf.GGMLType{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0} {
		for _, simd := range []bool{true, false} {
			if simd && !haveSIMD || simd && typ == gguf.TypeF32 {
				continue
			}
			b.Run(fmt.Sprintf("%s/simd=%v", typ, simd), func(b *testing.B) {
				r := newBenchRand()
				m := quantMatrix(b, typ, randF32(r, rows*cols, 1), rows, cols)
				x := randF32(r, cols, 1)
				xq := make([]int8, cols)
				xd := make([]float32, cols/32)
				quantizeQ8(xq, xd, x)
				out := make([]float32, rows)
				old := setSIMD(simd)
				defer setSIMD(old)
				b.SetBytes(int64(len(m.raw) + 4*len(m.f32)))
				for range b.N {
					mulRows(out, &m, x, xq, xd)
				}
			})
		}
	}
}
