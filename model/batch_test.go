package model

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"taobox/model/gguf"
)

// batchSeqs returns n teacher-forced token sequences of different lengths
// (so that, started together, they are at different positions).
func batchSeqs(n, vocab, seqLen int) [][]int {
	out := make([][]int, n)
	for i := range out {
		l := min(seqLen, 6+5*i%37)
		s := make([]int, l)
		for p := range s {
			s[p] = (p*31 + i*17 + 3) % vocab
		}
		out[i] = s
	}
	return out
}

// TestForwardBatchMatchesForward: for every weight type, thread count and
// batch size, the logits of each sequence decoded in ForwardBatch steps
// (sequences started at different steps, so at different positions; some
// prefilled with Prefill, some fed a prompt chunk inside a step) are the
// same bits as that sequence run alone through Forward; and Forward's own
// sequence, run in between the steps, is not disturbed.
func TestForwardBatchMatchesForward(t *testing.T) {
	models := quantModels(t)
	for _, typ := range []gguf.GGMLType{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0} {
		m := models[typ]
		c := m.Config
		for _, threads := range []int{1, 2} {
			for _, nseq := range []int{1, 3, 16} {
				t.Run(fmt.Sprintf("%s/threads=%d/B=%d", typ, threads, nseq), func(t *testing.T) {
					if threads > 1 {
						forceParallel(t)
					}
					m.SetThreads(threads)
					defer m.SetThreads(1)
					seqs := batchSeqs(nseq, c.VocabSize, c.SeqLen)
					ref := make([][][]float32, nseq)
					for i, s := range seqs {
						ref[i] = allLogits(t, m, s)
					}
					own := batchSeqs(20, c.VocabSize, c.SeqLen)[19] // Forward's sequence
					ownRef := allLogits(t, m, own)
					checkBatched(t, m, seqs, ref, own, ownRef)
				})
			}
		}
	}
}

// checkBatched runs seqs through Prefill and ForwardBatch steps and
// compares every logits vector it gets with ref.
func checkBatched(t *testing.T, m *Model, seqs [][]int, ref [][][]float32, own []int, ownRef [][]float32) {
	t.Helper()
	vocab := m.Config.VocabSize
	type state struct {
		seq   *Seq
		fed   int // positions written
		start int // step at which the sequence starts
	}
	st := make([]state, len(seqs))
	for i := range st {
		st[i] = state{seq: m.NewSeq(), start: i % 5}
		// Every third sequence starts with its first tokens prefilled.
		if i%3 == 2 {
			n := min(len(seqs[i]), 3+i)
			lg, err := m.Prefill(st[i].seq, seqs[i][:n])
			if err != nil {
				t.Fatal(err)
			}
			if j := sameBits(lg, ref[i][n-1]); j >= 0 {
				t.Fatalf("seq %d: Prefill of %d tokens: logit %d differs from Forward's", i, n, j)
			}
			st[i].fed = n
		}
	}
	var batch []BatchToken
	var owner []int // batch index → sequence
	checked := 0
	for step := 0; ; step++ {
		batch, owner = batch[:0], owner[:0]
		done := true
		for i := range st {
			s := &st[i]
			if s.fed == len(seqs[i]) {
				continue
			}
			done = false
			if step < s.start {
				continue
			}
			// Odd sequences feed a chunk of up to 4 tokens at their first
			// step (a prompt mixed into the decode step), one token later.
			n := 1
			if i%2 == 1 && step == s.start {
				n = min(4, len(seqs[i])-s.fed)
			}
			if len(batch)+n > MaxBatch {
				continue // no room this step: it waits
			}
			for k := range n {
				p := s.fed + k
				batch = append(batch, BatchToken{Seq: s.seq, Token: seqs[i][p], Pos: p, NoLogits: k < n-1})
				owner = append(owner, i)
			}
			s.fed += n
		}
		if done {
			break
		}
		if len(batch) == 0 {
			continue
		}
		logits, err := m.ForwardBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		j := 0
		for k, b := range batch {
			if b.NoLogits {
				continue
			}
			lg := logits[j*vocab : (j+1)*vocab]
			j++
			if d := sameBits(lg, ref[owner[k]][b.Pos]); d >= 0 {
				t.Fatalf("step %d: seq %d pos %d (batch of %d): logit %d is %v, Forward alone gave %v",
					step, owner[k], b.Pos, len(batch), d, lg[d], ref[owner[k]][b.Pos][d])
			}
			checked++
		}
		if len(logits) != j*vocab {
			t.Fatalf("step %d: %d logits for %d tokens with logits", step, len(logits), j)
		}
		if step < len(own) {
			lg, err := m.Forward(own[step], step)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameBits(lg, ownRef[step]); d >= 0 {
				t.Fatalf("Forward's own sequence at pos %d, between batched steps: logit %d differs", step, d)
			}
		}
	}
	if checked < len(seqs) {
		t.Fatalf("only %d logits vectors checked for %d sequences", checked, len(seqs))
	}
}

// TestForwardBatchDoesNotAllocate: a full step of MaxBatch sequences does
// not allocate once warm, with one thread or with helpers.
func TestForwardBatchDoesNotAllocate(t *testing.T) {
	forceParallel(t)
	m := quantModels(t)[gguf.TypeQ8_0]
	batch := make([]BatchToken, MaxBatch)
	for i := range batch {
		batch[i] = BatchToken{Seq: m.NewSeq(), Token: i + 1, Pos: 0, NoLogits: i%4 == 3}
	}
	for _, threads := range []int{1, 2} {
		m.SetThreads(threads)
		step := 0
		allocs := testing.AllocsPerRun(20, func() {
			for i := range batch {
				batch[i].Pos = (step + i) % m.Config.SeqLen
			}
			if _, err := m.ForwardBatch(batch); err != nil {
				t.Fatal(err)
			}
			step++
		})
		if allocs != 0 {
			t.Fatalf("threads %d: ForwardBatch allocates %v times per step", threads, allocs)
		}
	}
	m.SetThreads(1)
}

// TestForwardBatchErrors: each broken contract is refused, and a refused
// step writes nothing.
func TestForwardBatchErrors(t *testing.T) {
	m := quantModels(t)[gguf.TypeF32]
	other := quantModels(t)[gguf.TypeF16]
	c := m.Config
	s, s2 := m.NewSeq(), m.NewSeq()
	tok := func(s *Seq, id, pos int) BatchToken { return BatchToken{Seq: s, Token: id, Pos: pos} }
	many := make([]BatchToken, MaxBatch+1)
	for i := range many {
		many[i] = tok(m.NewSeq(), 1, 0)
	}
	for _, tc := range []struct {
		name  string
		batch []BatchToken
		want  error
	}{
		{"empty", nil, ErrBatch},
		{"too many", many, ErrBatch},
		{"nil seq", []BatchToken{tok(s, 1, 0), tok(nil, 1, 0)}, ErrBatch},
		{"other model's seq", []BatchToken{tok(other.NewSeq(), 1, 0)}, ErrBatch},
		{"token below vocabulary", []BatchToken{tok(s, -1, 0)}, ErrBatch},
		{"token beyond vocabulary", []BatchToken{tok(s, c.VocabSize, 0)}, ErrBatch},
		{"negative position", []BatchToken{tok(s, 1, -1)}, ErrPosition},
		{"position beyond context", []BatchToken{tok(s, 1, c.SeqLen)}, ErrPosition},
		{"same position twice", []BatchToken{tok(s, 1, 2), tok(s2, 1, 2), tok(s, 3, 2)}, ErrBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.ForwardBatch(tc.batch)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if slices.ContainsFunc(s.key, func(v float32) bool { return v != 0 }) ||
				slices.ContainsFunc(s2.value, func(v float32) bool { return v != 0 }) {
				t.Fatal("a refused step wrote a KV cache")
			}
		})
	}
	for _, tc := range []struct {
		name   string
		seq    *Seq
		prompt []int
	}{
		{"nil seq", nil, []int{1}},
		{"other model's seq", other.NewSeq(), []int{1}},
		{"empty prompt", s, nil},
		{"prompt beyond context", s, make([]int, c.SeqLen+1)},
		{"token beyond vocabulary", s, []int{1, c.VocabSize}},
	} {
		if _, err := m.Prefill(tc.seq, tc.prompt); err == nil {
			t.Errorf("Prefill %s: no error", tc.name)
		}
	}
	if got, want := m.KVCacheBytes(), int64(8*c.NLayers*c.SeqLen*c.KVDim()); got != want || int64(len(s.key)+len(s.value))*4 != want {
		t.Fatalf("KVCacheBytes %d, want %d (Seq holds %d floats)", got, want, len(s.key)+len(s.value))
	}
}

// batchBenchConfig is the s42M shape, untied like a converted GGUF file,
// with a 256-token context: 58M weights, about 62 MB in Q8_0, so that one
// decode step is bound by reading the weights, as real decoding is.
var batchBenchConfig = Config{Dim: 512, HiddenDim: 1376, NLayers: 8, NHeads: 8, NKVHeads: 8, VocabSize: 32000, SeqLen: 256}

// BenchmarkForwardBatch reports decode tokens/s for B concurrent
// sequences (B = 1, 4, 8, 16), each at position 32..95 after a 32-token
// prompt: "batched" runs one ForwardBatch step of B tokens per iteration,
// "sequential" runs the same B tokens as B Forward calls (what a miner
// serving one answer at a time does). One thread; Q8_0 weights.
//
//	go test -run '^$' -bench ForwardBatch -benchtime 2s ./model/
func BenchmarkForwardBatch(b *testing.B) {
	m := benchModel(b, batchBenchConfig, gguf.TypeQ8_0)
	defer m.Close()
	m.SetThreads(1)
	const prompt, span = 32, 64
	toks := benchTokens(prompt+span, m.Config.VocabSize)
	seqs := make([]*Seq, MaxBatch)
	for i := range seqs {
		seqs[i] = m.NewSeq()
		if _, err := m.Prefill(seqs[i], toks[:prompt]); err != nil {
			b.Fatal(err)
		}
	}
	m.prefill(toks[:prompt])
	for _, nseq := range []int{1, 4, 8, 16} {
		batch := make([]BatchToken, nseq)
		b.Run(fmt.Sprintf("B=%d/batched", nseq), func(b *testing.B) {
			step := 0
			for b.Loop() {
				pos := prompt + step%span
				for i := range batch {
					batch[i] = BatchToken{Seq: seqs[i], Token: toks[pos], Pos: pos}
				}
				if _, err := m.ForwardBatch(batch); err != nil {
					b.Fatal(err)
				}
				step++
			}
			b.ReportMetric(float64(nseq*step)/b.Elapsed().Seconds(), "tok/s")
		})
		b.Run(fmt.Sprintf("B=%d/sequential", nseq), func(b *testing.B) {
			step := 0
			for b.Loop() {
				pos := prompt + step%span
				for range nseq {
					if _, err := m.Forward(toks[pos], pos); err != nil {
						b.Fatal(err)
					}
				}
				step++
			}
			b.ReportMetric(float64(nseq*step)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
