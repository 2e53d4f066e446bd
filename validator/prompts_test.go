package validator

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestGeneratorTasks(t *testing.T) {
	fixtures(t)
	g, err := NewGenerator(fix.tok, fix.val.Config.SeqLen, fix.hash)
	if err != nil {
		t.Fatal(err)
	}
	a, b := g.Tasks(7, 3, 40), g.Tasks(7, 3, 40)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed gave different task sets")
	}
	if fmt.Sprint(g.Tasks(8, 3, 40)) == fmt.Sprint(a) {
		t.Fatal("another seed gave the same task set")
	}
	// Another miner of the round: the same shapes, its own prompts and
	// sampling seeds.
	for i, o := range g.Tasks(7, 4, 40) {
		s := a[i]
		if o.MaxTokens != s.MaxTokens || o.Temperature != s.Temperature || o.TopK != s.TopK || o.TopP != s.TopP {
			t.Fatalf("task %d: miner 4's shape %d/%v/%d/%v differs from miner 3's %d/%v/%d/%v", i,
				o.MaxTokens, o.Temperature, o.TopK, o.TopP, s.MaxTokens, s.Temperature, s.TopK, s.TopP)
		}
		if fmt.Sprint(o.PromptIDs) == fmt.Sprint(s.PromptIDs) || (s.Temperature > 0 && o.Seed == s.Seed) {
			t.Fatalf("task %d: miners 3 and 4 got the same prompt or sampling seed", i)
		}
	}
	prompts, lengths, maxTok := map[string]bool{}, map[int]bool{}, map[uint32]bool{}
	var greedy, topK, topP int
	for _, b := range a {
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		if b.ModelHash != fix.hash {
			t.Fatal("model hash not set")
		}
		if len(b.PromptIDs)+int(b.MaxTokens) > fix.val.Config.SeqLen+1 || b.MaxTokens < 8 || b.MaxTokens > 48 {
			t.Fatalf("prompt %d + %d tokens do not fit the context %d", len(b.PromptIDs), b.MaxTokens, fix.val.Config.SeqLen)
		}
		ids := make([]int, len(b.PromptIDs))
		for i, id := range b.PromptIDs {
			if int(id) >= fix.val.Config.VocabSize || id == 0 {
				t.Fatalf("prompt id %d (unknown or outside the vocabulary)", id)
			}
			ids[i] = int(id)
		}
		prompts[fix.tok.Decode(ids)] = true
		lengths[len(ids)] = true
		maxTok[b.MaxTokens] = true
		switch {
		case b.Temperature == 0:
			greedy++
		case b.TopK > 0:
			topK++
		case b.TopP > 0 && b.TopP < 1:
			topP++
		default:
			t.Fatalf("sampled task without a filter: %+v", b)
		}
		if b.Temperature > 0.9 {
			t.Fatalf("temperature %v", b.Temperature)
		}
	}
	t.Logf("%d distinct prompts, %d prompt lengths, %d max-token values; greedy %d, top-k %d, top-p %d", len(prompts), len(lengths), len(maxTok), greedy, topK, topP)
	if len(prompts) < 35 || len(lengths) < 10 || len(maxTok) < 10 || greedy != 20 || topK == 0 || topP == 0 {
		t.Fatal("the task set is not diverse enough")
	}
}

// TestPromptSpace: a miner that records every prompt it is sent cannot
// answer later ones from its records. 40,000 prompts (a validator's 8 tasks
// for 5,000 rounds) are recorded, and the next 40,000 looked up. With the
// space's collision entropy of about 2^35 the expected number of hits is
// 40,000² / 2^35 ≈ 0.05; the generator this replaced (1-3 openings of any
// form, 41,000 openings drawn by form first) repeated 20 % of its prompts.
func TestPromptSpace(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const n = 40000
	seen := make(map[string]bool, n)
	for range n {
		seen[Prompt(r, r.IntN(2) == 0)] = true
	}
	hits := 0
	for range n {
		if seen[Prompt(r, r.IntN(2) == 0)] {
			hits++
		}
	}
	t.Logf("%d distinct of %d recorded prompts; %d of the next %d seen before", len(seen), n, hits, n)
	if len(seen) < n-2 || hits > 2 {
		t.Fatalf("prompts repeat: %d distinct of %d, %d hits (expected none)", len(seen), n, hits)
	}
}
