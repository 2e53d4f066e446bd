package model

import (
	"errors"
	"slices"
	"testing"
)

func checkScoreMatchesGenerate(t *testing.T, m *Model, prompt []int, n int) {
	t.Helper()
	ids, lps, err := m.Generate(prompt, n)
	if err != nil {
		t.Fatal(err)
	}
	full := append(slices.Clone(prompt), ids...)
	got, err := m.Score(full, len(prompt))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, lps) {
		t.Fatalf("Score %v\nGenerate %v", got, lps)
	}
	// A later start gives the tail.
	tail, err := m.Score(full, len(prompt)+3)
	if err != nil || !slices.Equal(tail, lps[3:]) {
		t.Fatalf("Score from +3: %v %v, want %v", tail, err, lps[3:])
	}
}

func TestScoreMatchesGenerate(t *testing.T) {
	m := newRandomModel(t, gqaConfig, 3)
	checkScoreMatchesGenerate(t, m, gqaPrompt, 20)
	// The whole context: prompt + generated = SeqLen + 1 ids.
	checkScoreMatchesGenerate(t, m, gqaPrompt, gqaConfig.SeqLen)
}

func TestScoreStories260K(t *testing.T) {
	m := loadStories260K(t)
	checkScoreMatchesGenerate(t, m, stories260KPrompt, 100)
	got, err := m.Score(append(slices.Clone(stories260KPrompt), stories260KGolden[:8]...), len(stories260KPrompt))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range stories260KGoldenLogprobs {
		if d := got[i] - want; d > 1e-5 || d < -1e-5 { // the tolerance TestStories260KMatchesRunC uses
			t.Errorf("logprob %d: %v, run.c %v", i, got[i], want)
		}
	}
}

func TestScoreErrors(t *testing.T) {
	m := newRandomModel(t, gqaConfig, 3)
	long := make([]int, gqaConfig.SeqLen+2)
	for _, tc := range []struct {
		ids  []int
		from int
	}{
		{[]int{1, 2, 3}, 0},
		{[]int{1, 2, 3}, 4},
		{[]int{}, 1},
		{[]int{1, 97, 3}, 1},
		{[]int{1, -1, 3}, 1},
		{long, 1},
	} {
		if _, err := m.Score(tc.ids, tc.from); err == nil {
			t.Errorf("Score(%v, %d): no error", tc.ids, tc.from)
		}
	}
	if _, err := m.Score(long, 1); !errors.Is(err, ErrPosition) {
		t.Errorf("too long: %v, want ErrPosition", err)
	}
	if got, err := m.Score([]int{1, 2}, 2); err != nil || len(got) != 0 {
		t.Errorf("from == len: %v %v", got, err)
	}
}

// ScoreRanks gives Score's log-probs and, at each position, the number of
// tokens more probable than the scored one by over the margin, as counted
// from that position's full log-softmax: 0 for a greedy answer, more for
// a token swapped in.
func TestScoreRanks(t *testing.T) {
	m := newRandomModel(t, gqaConfig, 3)
	gen, _, err := m.Generate(gqaPrompt, 12)
	if err != nil {
		t.Fatal(err)
	}
	ids := append(slices.Clone(gqaPrompt), gen...)
	ids[len(gqaPrompt)+5] = (ids[len(gqaPrompt)+5] + 7) % gqaConfig.VocabSize // not the argmax there
	from := len(gqaPrompt)
	want, err := m.Score(ids, from)
	if err != nil {
		t.Fatal(err)
	}
	for _, margin := range []float64{0, 0.3, 2} {
		lps, ahead, err := m.ScoreRanks(ids, from, margin)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(lps, want) {
			t.Fatalf("margin %v: log-probs %v, Score %v", margin, lps, want)
		}
		dist := make([]float64, gqaConfig.VocabSize)
		for i := range lps {
			p := from + i - 1
			logits, err := m.Forward(ids[p], p)
			if err != nil {
				t.Fatal(err)
			}
			LogSoftmax(dist, logits)
			n := 0
			for _, x := range dist {
				if x > dist[ids[p+1]]+margin+1e-12 {
					n++
				}
			}
			// Ties at the margin's edge may round either way in float64.
			if d := ahead[i] - n; d < -1 || d > 1 {
				t.Fatalf("margin %v, position %d: %d ahead, the full distribution says %d", margin, i, ahead[i], n)
			}
			if i < 5 && margin == 0 && ahead[i] != 0 { // after the swap the tokens are no longer greedy
				t.Fatalf("greedy token %d has %d tokens ahead", i, ahead[i])
			}
		}
		if margin == 0 && ahead[5] == 0 {
			t.Fatal("the swapped token counts as the argmax")
		}
	}
	if _, _, err := m.ScoreRanks(ids, from, -1); err == nil {
		t.Fatal("negative margin accepted")
	}
}
