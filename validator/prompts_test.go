package validator

import (
	"fmt"
	"testing"
)

func TestGeneratorTasks(t *testing.T) {
	fixtures(t)
	g, err := NewGenerator(fix.tok, fix.val.Config.SeqLen, fix.hash)
	if err != nil {
		t.Fatal(err)
	}
	a, b := g.Tasks(7, 40), g.Tasks(7, 40)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed gave different task sets")
	}
	if fmt.Sprint(g.Tasks(8, 40)) == fmt.Sprint(a) {
		t.Fatal("another seed gave the same task set")
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
