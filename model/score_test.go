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
