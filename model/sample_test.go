package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// flatLogits is a vocabulary where every id is about equally likely.
func flatLogits(n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(i%3) * 1e-3
	}
	return l
}

func drawN(s Sampler, logits []float32, n int) []int {
	s.Reset()
	ids := make([]int, n)
	for i := range ids {
		ids[i], _ = s.Step(logits)
	}
	return ids
}

func TestSamplerDeterminism(t *testing.T) {
	logits := flatLogits(1000)
	for _, s := range []Sampler{
		{Temperature: 1, Seed: 7},
		{Temperature: 0.8, TopK: 40, Seed: 7},
		{Temperature: 1.2, TopP: 0.9, Seed: 7},
		{Temperature: 1, TopK: 100, TopP: 0.5, Seed: 7},
	} {
		a, b := drawN(s, logits, 50), drawN(s, logits, 50)
		if !slices.Equal(a, b) {
			t.Errorf("%+v: same seed gave %v then %v", s, a, b)
		}
		s2 := s
		s2.Seed = 8
		if c := drawN(s2, logits, 50); slices.Equal(a, c) {
			t.Errorf("%+v: seeds 7 and 8 gave the same ids %v on a flat distribution", s, a)
		}
	}
}

func TestSamplerGreedy(t *testing.T) {
	s := Sampler{Seed: 3}
	logits := []float32{0.5, 2, -1, 2, 1}
	id, lp := s.Step(logits)
	if id != 1 || lp != LogProb(logits, 1) {
		t.Fatalf("greedy: got %d %v, want 1 (lowest id on tie) %v", id, lp, LogProb(logits, 1))
	}
}

// TestSamplerFiltering checks that top-k and top-p only ever draw from the
// expected set, and draw every member of it.
func TestSamplerFiltering(t *testing.T) {
	// Weights 0.3, 0.1, 0.2, 0.4, 0.05, 0.05 (total 1.1): normalized, by
	// rank, id 3 .364, id 0 .273, id 2 .182, id 1 .091, ids 4 and 5 .045 (a
	// tie: the lower id ranks first). No case sits on a boundary.
	logits := []float32{
		float32(math.Log(0.3)), float32(math.Log(0.1)), float32(math.Log(0.2)),
		float32(math.Log(0.4)), float32(math.Log(0.05)), float32(math.Log(0.05)),
	}
	tests := []struct {
		topK int
		topP float64
		want []int
	}{
		{0, 0, []int{0, 1, 2, 3, 4, 5}},
		{0, 1, []int{0, 1, 2, 3, 4, 5}},
		{1, 0, []int{3}},
		{2, 0, []int{0, 3}},
		{3, 0, []int{0, 2, 3}},
		{5, 0, []int{0, 1, 2, 3, 4}}, // tie 4/5: the lower id stays
		{6, 0, []int{0, 1, 2, 3, 4, 5}},
		{9, 0, []int{0, 1, 2, 3, 4, 5}},
		{0, 0.35, []int{3}},                // .364 ≥ .35
		{0, 0.4, []int{0, 3}},              // .636
		{0, 0.85, []int{0, 1, 2, 3}},       // .818 < .85 ≤ .909
		{0, 0.93, []int{0, 1, 2, 3, 4}},    // .955
		{0, 0.99, []int{0, 1, 2, 3, 4, 5}}, // 1
		{2, 0.5, []int{3}},                 // renormalized top 2: .4/.7 = .571
		{2, 0.6, []int{0, 3}},              // .571 < .6
		{3, 0.99, []int{0, 2, 3}},          // top-k bounds top-p
		{5, 0.99, []int{0, 1, 2, 3, 4}},    // top-k drops the tied id 5
	}
	for _, tc := range tests {
		s := Sampler{Temperature: 1, TopK: tc.topK, TopP: tc.topP, Seed: 1}
		seen := map[int]bool{}
		for range 4000 {
			id, lp := s.Step(logits)
			seen[id] = true
			if lp != LogProb(logits, id) {
				t.Fatalf("logprob %v, want LogProb %v", lp, LogProb(logits, id))
			}
		}
		var got []int
		for id := range seen {
			got = append(got, id)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("top-k %d top-p %v: drew %v, want %v", tc.topK, tc.topP, got, want)
		}
	}
}

func TestSampledLogProbIsRawLogSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 257)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	ls := make([]float64, len(logits))
	LogSoftmax(ls, logits)
	for _, s := range []Sampler{{Temperature: 0.3, Seed: 1}, {Temperature: 2, TopK: 10, Seed: 2}, {Temperature: 1, TopP: 0.5, Seed: 3}} {
		for range 100 {
			id, lp := s.Step(logits)
			if math.Abs(lp-ls[id]) > 1e-12 {
				t.Fatalf("%+v: id %d logprob %v, LogSoftmax %v", s, id, lp, ls[id])
			}
		}
	}
}

func TestTopAlternatives(t *testing.T) {
	logits := []float32{1, 3, 2, 3, -1, 2}
	got := TopAlternatives(logits, 4)
	ls := make([]float64, len(logits))
	LogSoftmax(ls, logits)
	wantIDs := []int{1, 3, 2, 5}
	if len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	for i, a := range got {
		if a.ID != wantIDs[i] || a.LogProb != LogProb(logits, a.ID) || math.Abs(a.LogProb-ls[a.ID]) > 1e-12 {
			t.Errorf("alt %d = %+v, want id %d logprob %v", i, a, wantIDs[i], LogProb(logits, wantIDs[i]))
		}
	}
	if n := len(TopAlternatives(logits, 100)); n != len(logits) {
		t.Errorf("k beyond vocab: %d alternatives", n)
	}
	// Against a full sort on random logits with many ties.
	r := rand.New(rand.NewPCG(5, 6))
	big := make([]float32, 500)
	for i := range big {
		big[i] = float32(r.IntN(50))
	}
	ids := make([]int, len(big))
	for i := range ids {
		ids[i] = i
	}
	slices.SortStableFunc(ids, func(a, b int) int {
		switch {
		case big[a] > big[b]:
			return -1
		case big[a] < big[b]:
			return 1
		}
		return 0
	})
	for j, a := range TopAlternatives(big, 20) {
		if a.ID != ids[j] {
			t.Fatalf("alt %d: id %d, want %d", j, a.ID, ids[j])
		}
	}
}

func TestSamplerDoesNotAllocate(t *testing.T) {
	logits := flatLogits(512)
	alts := make([]Alt, 0, 5)
	for _, s := range []Sampler{{}, {Temperature: 1}, {Temperature: 1, TopK: 20, TopP: 0.9}, {Temperature: 1, TopP: 0.9}, {Temperature: 1, TopP: 0.999}} {
		s.Step(logits)
		if n := testing.AllocsPerRun(50, func() {
			s.Step(logits)
			alts = AppendTopAlternatives(alts[:0], logits, 5)
		}); n != 0 {
			t.Errorf("%+v: %v allocations per step", s, n)
		}
	}
}

func newRandomModel(t *testing.T, c Config, seed uint64) *Model {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.bin")
	writeRandomLlama2C(t, path, c, seed, 0.5)
	m, err := LoadLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGenerateSampledGreedyMatchesGenerate(t *testing.T) {
	m := newRandomModel(t, gqaConfig, 11)
	ids, lps, err := m.Generate(gqaPrompt, 30)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.GenerateSampled(gqaPrompt, GenerateOptions{MaxTokens: 30, EOS: -1, Alternatives: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, g.IDs) || !slices.Equal(lps, g.LogProbs) {
		t.Fatalf("GenerateSampled %v %v\nGenerate %v %v", g.IDs, g.LogProbs, ids, lps)
	}
	for i, top := range g.Top {
		if len(top) != 5 || top[0].ID != ids[i] || top[0].LogProb != lps[i] {
			t.Fatalf("step %d: top %v, generated %d %v", i, top, ids[i], lps[i])
		}
	}
	// Sampling: same seed, same tokens; EOS stops.
	opt := GenerateOptions{Sampler: Sampler{Temperature: 1, TopK: 20, Seed: 42}, MaxTokens: 30, EOS: -1}
	a, _ := m.GenerateSampled(gqaPrompt, opt)
	b, _ := m.GenerateSampled(gqaPrompt, opt)
	if !slices.Equal(a.IDs, b.IDs) || !slices.Equal(a.LogProbs, b.LogProbs) {
		t.Fatalf("same seed: %v vs %v", a.IDs, b.IDs)
	}
	opt.EOS = a.IDs[3]
	c, _ := m.GenerateSampled(gqaPrompt, opt)
	if i := slices.Index(a.IDs, opt.EOS); len(c.IDs) != i+1 || !slices.Equal(c.IDs, a.IDs[:i+1]) {
		t.Fatalf("EOS %d: got %v from %v", opt.EOS, c.IDs, a.IDs)
	}
	// Scoring the sampled sequence gives the reported log-probs.
	full := append(slices.Clone(gqaPrompt), a.IDs...)
	sc, err := m.Score(full, len(gqaPrompt))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sc, a.LogProbs) {
		t.Fatalf("Score %v\nsampled %v", sc, a.LogProbs)
	}
}

func TestCheckLogits(t *testing.T) {
	for _, tc := range []struct {
		l  []float32
		ok bool
	}{
		{[]float32{1, -2, 0}, true},
		{[]float32{1, -2}, false},
		{[]float32{1, float32(math.Inf(-1)), 0}, false},
		{[]float32{float32(math.NaN()), 0, 0}, false},
	} {
		if err := CheckLogits(tc.l, 3); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.l, err)
		}
	}
}

// CheckSampled takes what SampleFrom gives, ties in either id order
// included (the ranking breaks ties on float32 logits whose log-probs can
// round equal), and refuses what it cannot give.
func TestCheckSampled(t *testing.T) {
	logits := []float32{0, 1e-30, -5, -5}
	s := Sampler{}
	id, lp, alt := SampleFrom(logits, &s, 3, nil)
	if err := CheckSampled(id, lp, alt, 3, len(logits)); err != nil {
		t.Fatalf("SampleFrom's own step %d %v %v: %v", id, lp, alt, err)
	}
	ok := []Alt{{1, -0.7}, {0, -0.7}, {2, -5}}
	if err := CheckSampled(0, -0.7, ok, 3, 4); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		id  int
		lp  float64
		alt []Alt
	}{
		"id past the vocabulary": {4, -1, ok},
		"positive log-prob":      {0, 0.1, ok},
		"NaN log-prob":           {0, math.NaN(), ok},
		"too few alternatives":   {0, -1, ok[:2]},
		"out of order":           {0, -1, []Alt{{2, -5}, {0, -0.7}, {1, -0.7}}},
		"repeated id":            {0, -1, []Alt{{1, -0.7}, {1, -0.7}, {2, -5}}},
		"alternative id past":    {0, -1, []Alt{{1, -0.7}, {0, -0.7}, {9, -5}}},
	} {
		if CheckSampled(c.id, c.lp, c.alt, 3, 4) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
