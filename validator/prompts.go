package validator

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"taobox/model"
	"taobox/task"
)

// The prompt generator. Every round draws a fresh task set from a seed: the
// start of a story (three sentence openings from a small grammar of the same
// kind the tiny model was trained on, so the ids are real words of its
// vocabulary rather than junk, and half the time a fourth, unfinished one), a
// length to generate, and either greedy decoding or seeded sampling with a
// top-k or nucleus cut.
//
// Miners cannot answer from a cache. Each of the three openings is one of
// about 41,000 (the forms with hundreds to thousands of variants, the form
// drawn uniformly), about 2^11.7 by collision entropy, so a prompt is one
// of about 2^36: a miner that recorded 10 million prompts (a year of one
// validator's rounds) would find about 1 in 10,000 of the next ones among
// them (TestPromptSpace measures the repeats). And no two
// miners of a round get the same prompt: the round's seed fixes the shapes
// (the lengths to generate and the decoding rules, so speeds compare), and
// each miner's prompts and sampling seeds come from the seed and its uid, so
// two hotkeys of one operator cannot share answers (an earlier version sent
// one task set to every miner: the second of a colluding pair answered from
// the first's answers at once and set the round's best speed).
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

// The forms of opening: richForms have 160 to 34,560 variants each, cutForms
// (a sentence cut mid-way, for the model to continue) a handful.
var (
	richForms = []int{0, 1, 3, 4, 7, 8}
	cutForms  = []int{2, 5, 6}
)

// opening returns one sentence start of the given form (ending in a full
// stop or cut mid-way).
func opening(r *rand.Rand, form int) string {
	name, place := pick(r, genNames), pick(r, genPlaces)
	he := "she"
	if r.IntN(2) == 0 {
		he = "he"
	}
	obj := pick(r, genObjAdjs) + " " + pick(r, genObjects)
	switch form {
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

// Prompt returns one story start: three openings of the rich forms, each
// form equally likely, and with cut a fourth of the cut forms.
func Prompt(r *rand.Rand, cut bool) string {
	parts := make([]string, 3, 4)
	for i := range parts {
		parts[i] = opening(r, richForms[r.IntN(len(richForms))])
	}
	if cut {
		parts = append(parts, opening(r, cutForms[r.IntN(len(cutForms))]))
	}
	return strings.Join(parts, " ")
}

// Tasks returns the n task bodies of one miner in the round of seed: the
// same (seed, miner) gives the same set. The shapes (tokens to generate,
// greedy or the sampling rule) come from seed alone, the same for every
// miner of the round; the prompts and sampling seeds from seed and miner.
// Half (rounded up) are greedy, the others sampled. Only a prompt too
// long for the context (none of Prompt's, for the tiny model's 128) makes
// a miner's task shorter than its shape. Both streams are ChaCha8 keyed by
// a hash of the seed (and the miner): a miner learns nothing of the seed
// from its tasks (PCG's state, and so the seed, follows from a few of its
// outputs, such as a sampling seed), so it cannot work out another
// miner's tasks or its own later ones.
func (g *Generator) Tasks(seed, miner uint64, n int) []task.Body {
	shape := rand.New(rand.NewChaCha8(streamKey("shape", seed, 0)))
	content := rand.New(rand.NewChaCha8(streamKey("tasks", seed, miner)))
	out := make([]task.Body, 0, n)
	for i := 0; i < n; i++ {
		b := task.Body{
			MaxTokens: uint32(g.MinTokens + shape.IntN(max(g.MaxTokens-g.MinTokens, 0)+1)),
			TopAlts:   g.TopAlts,
			ModelHash: g.modelHash,
		}
		if i%2 == 1 {
			b.Temperature = []float32{0.6, 0.7, 0.8, 0.9}[shape.IntN(4)]
			if shape.IntN(2) == 0 {
				b.TopK = []uint32{10, 20, 40}[shape.IntN(3)]
			} else {
				b.TopP = []float32{0.8, 0.9, 0.95}[shape.IntN(3)]
			}
			b.Seed = content.Uint64()
		}
		ids := g.tok.Encode(Prompt(content, shape.IntN(2) == 0), true)
		// leave room for at least MinTokens
		if lim := g.seqLen + 1 - g.MinTokens; len(ids) > lim {
			ids = ids[:lim]
		}
		b.MaxTokens = min(b.MaxTokens, uint32(g.seqLen+1-len(ids)))
		b.PromptIDs = make([]uint32, len(ids))
		for j, id := range ids {
			b.PromptIDs[j] = uint32(id)
		}
		out = append(out, b)
	}
	return out
}

// streamKey is the ChaCha8 key of one of Tasks' random streams:
// SHA-256("taobox-validator " ‖ name ‖ seed ‖ miner).
func streamKey(name string, seed, miner uint64) [32]byte {
	b := append([]byte("taobox-validator "+name), make([]byte, 16)...)
	binary.LittleEndian.PutUint64(b[len(b)-16:], seed)
	binary.LittleEndian.PutUint64(b[len(b)-8:], miner)
	return sha256.Sum256(b)
}
