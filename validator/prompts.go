package validator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"taobox/model"
	"taobox/task"
)

// The prompt generator. Every round draws a fresh task set from a seed: the
// start of a story (one to three sentence openings from a small grammar of
// the same kind the tiny model was trained on, so the ids are real words of
// its vocabulary rather than junk), a length to generate, and either greedy
// decoding or seeded sampling with a top-k or nucleus cut. Miners cannot
// precompute answers: the seed comes from the validator's random source, and
// sampled requests carry their own sampling seed.
//
// Sampled requests always carry a filter (top-k ≤ 40 or top-p ≤ 0.95) and a
// temperature ≤ 0.9: a token outside the filter is then proof that the miner
// did not sample from the model, and the chance that honest sampling draws a
// token the validator finds implausible (below Tolerance.MinLogProb) is
// negligible (see verify.go).

var (
	genNames   = []string{"lily", "mia", "sara", "emma", "anna", "lucy", "zoe", "amy", "tom", "ben", "max", "sam", "leo", "tim", "jack", "finn"}
	genAnimals = []string{"cat", "dog", "bird", "bunny", "fox", "bear", "duck", "frog", "mouse", "owl"}
	genAdjs    = []string{"little", "brave", "happy", "kind", "small", "curious", "shy", "funny", "clever", "gentle"}
	genPlaces  = []string{"park", "forest", "beach", "garden", "river", "lake", "hill", "market", "school", "farm", "meadow", "pond"}
	genObjAdjs = []string{"big", "small", "shiny", "red", "blue", "green", "yellow", "soft", "old", "new", "pretty", "round"}
	genObjects = []string{"ball", "box", "kite", "hat", "book", "flower", "stone", "shell", "toy", "cake", "apple", "key", "boat", "drum", "star"}
)

func pick(r *rand.Rand, l []string) string { return l[r.IntN(len(l))] }

// opening returns one sentence start (ending in a full stop or cut mid-way).
func opening(r *rand.Rand) string {
	name, place := pick(r, genNames), pick(r, genPlaces)
	he := "she"
	if r.IntN(2) == 0 {
		he = "he"
	}
	obj := pick(r, genObjAdjs) + " " + pick(r, genObjects)
	switch r.IntN(9) {
	case 0:
		return "once upon a time, there was a " + pick(r, genAdjs) + " girl named " + name + "."
	case 1:
		return "once upon a time, there was a " + pick(r, genAdjs) + " " + pick(r, genAnimals) + " named " + name + "."
	case 2:
		return "one day, " + he + " went to the " + place + "."
	case 3:
		return he + " saw a " + obj + "."
	case 4:
		return name + " found a " + obj + " in the " + place + "."
	case 5:
		return "one day, " + name + " went to the"
	case 6:
		return he + " was very"
	case 7:
		return name + " and " + pick(r, genNames) + " went to the " + place + " together."
	default:
		return "then " + name + " met a " + pick(r, genAdjs) + " " + pick(r, genAnimals)
	}
}

// Generator makes seeded task sets for one model.
type Generator struct {
	tok       *model.Tokenizer
	seqLen    int
	modelHash [32]byte
	// MinTokens and MaxTokens bound the tokens asked for (defaults 8, 48).
	MinTokens, MaxTokens int
	// TopAlts is the number of alternatives asked per token (default 0).
	TopAlts uint8
}

// NewGenerator returns a generator for a model with tokenizer tok, context
// seqLen and file hash modelHash.
func NewGenerator(tok *model.Tokenizer, seqLen int, modelHash [32]byte) (*Generator, error) {
	if tok == nil {
		return nil, errors.New("validator: the model has no tokenizer; the prompt generator needs one")
	}
	if seqLen < 16 {
		return nil, fmt.Errorf("validator: context %d is too short for tasks", seqLen)
	}
	return &Generator{tok: tok, seqLen: seqLen, modelHash: modelHash, MinTokens: 8, MaxTokens: 48}, nil
}

// Prompt returns one story start of 1–3 openings.
func Prompt(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = opening(r)
	}
	return strings.Join(parts, " ")
}

// Tasks returns n task bodies drawn from seed: the same seed gives the same
// set. Half (rounded up) are greedy.
func (g *Generator) Tasks(seed uint64, n int) []task.Body {
	r := rand.New(rand.NewPCG(seed, 0x76616c6964617465)) // "validate"
	out := make([]task.Body, 0, n)
	for i := 0; i < n; i++ {
		ids := g.tok.Encode(Prompt(r), true)
		// leave room for at least MinTokens
		if lim := g.seqLen + 1 - g.MinTokens; len(ids) > lim {
			ids = ids[:lim]
		}
		lo, hi := g.MinTokens, min(g.MaxTokens, g.seqLen+1-len(ids))
		b := task.Body{
			PromptIDs: make([]uint32, len(ids)),
			MaxTokens: uint32(lo + r.IntN(max(hi-lo, 0)+1)),
			TopAlts:   g.TopAlts,
			ModelHash: g.modelHash,
		}
		for j, id := range ids {
			b.PromptIDs[j] = uint32(id)
		}
		if i%2 == 1 {
			b.Temperature = []float32{0.6, 0.7, 0.8, 0.9}[r.IntN(4)]
			b.Seed = r.Uint64()
			if r.IntN(2) == 0 {
				b.TopK = []uint32{10, 20, 40}[r.IntN(3)]
			} else {
				b.TopP = []float32{0.8, 0.9, 0.95}[r.IntN(3)]
			}
		}
		out = append(out, b)
	}
	return out
}
