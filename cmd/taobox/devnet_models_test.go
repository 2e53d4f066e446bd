package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The other-model cheater must be plausible (same vocabulary, log-probs of
// a real distribution) yet clearly another model: its greedy answers differ
// from the tiny model's, and where a token agrees its log-prob does not.
func TestOtherModelDiffers(t *testing.T) {
	tiny, _, err := devTinyModel()
	if err != nil {
		t.Fatal(err)
	}
	other, err := otherModel(1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if other.Config.VocabSize != tiny.Config.VocabSize {
		t.Fatalf("other model vocabulary %d, tiny %d", other.Config.VocabSize, tiny.Config.VocabSize)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const prompts, n = 20, 16
	differ, far := 0, 0
	for range prompts {
		prompt := make([]int, 8)
		for i := range prompt {
			prompt[i] = 3 + r.IntN(tiny.Config.VocabSize-3)
		}
		ids, lps, err := other.Generate(prompt, n)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := tiny.Generate(prompt, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			if ids[i] != want[i] {
				differ++
				break
			}
		}
		// What the validator computes: the tiny model's log-probs of the answer.
		score, err := tiny.Score(append(append([]int{}, prompt...), ids...), len(prompt))
		if err != nil {
			t.Fatal(err)
		}
		for i := range lps {
			if lps[i] > 0 || math.IsNaN(lps[i]) {
				t.Fatalf("log-prob %v", lps[i])
			}
			if math.Abs(lps[i]-score[i]) > 0.1 {
				far++
				break
			}
		}
	}
	t.Logf("%d of %d answers differ from the tiny model's greedy answer, %d have a log-prob off by > 0.1", differ, prompts, far)
	if differ < prompts*3/4 || far < prompts*3/4 {
		t.Errorf("the other model is too close to the tiny one: %d/%d answers differ, %d/%d log-probs off", differ, prompts, far, prompts)
	}
}
