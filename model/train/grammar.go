//go:build !cuda

// Package train makes taobox's own tiny model: a procedural story grammar
// (the corpus), a word-level SentencePiece-style vocabulary for it, and a
// trainer for a small LLaMA whose weights run unchanged in package model.
//
// Nothing here reads outside data: the corpus, the vocabulary and the
// initial weights all come from a seed, so `taobox model train-tiny`
// reproduces assets/tiny.gguf.
//
// Design note: the gradients come from gorgonia (gorgonia.org/gorgonia
// v0.9.18), whose symbolic differentiation is what it is good at (see
// inference.md §5). The whole batch is one graph, built once and re-run by a
// TapeMachine each step; on 2 cores a step of 8×128 tokens of the shipped
// shape takes about 0.4 s (gonum's BLAS does the matrix products). Two
// gorgonia traits shape the code: gradients accumulate across runs unless
// cleared (its solvers clear them; run does it here, since Adam is our
// own, for a learning-rate schedule), and there is no strided slicing, so
// RoPE's pair rotation is x·cos + (x·P)·sin with P a constant ±1
// permutation matrix, one extra dim×dim product for q and for k. Three
// tests pin the result to the engine: the trainer's loss equals model.Score's
// cross-entropy on the exported file, gorgonia's gradients equal finite
// differences, and model.Tokenizer encodes grammar text to the trainer's
// ids. The price is the binary: gorgonia and its dependencies (gonum,
// arrow, protobuf, ...) are linked into taobox for this one command.
//
// The package builds without the cuda tag only: with it, gorgonia links
// its own CUDA engine (cuDNN, cuBLAS), which taobox-cuda neither has nor
// needs.
package train

import (
	"math/rand/v2"
	"strings"
)

// The story grammar. Stories are lowercase, in the simple past, made of
// sentences that end in "." or "!", with "," inside; words are separated by
// one space and punctuation sticks to the word before it. Each story keeps
// one hero (name, kind, pronoun), one friend, one place and one object, so
// a model has agreement and repetition to learn, not only word order.

type person struct {
	name      string
	he, his   string // subject and possessive pronoun
	kind      string // "girl", "boy", "cat", ...
	kindAdj   string // "little", "brave", ...
	plainKind bool   // kind is an animal: "a cat named tom"
}

var (
	girlNames = []string{"lily", "mia", "sara", "emma", "anna", "lucy", "zoe", "amy", "ella", "rose"}
	boyNames  = []string{"tom", "ben", "max", "sam", "leo", "tim", "jack", "finn", "noah", "luke"}
	animals   = []string{"cat", "dog", "bird", "bunny", "fox", "bear", "duck", "frog", "mouse", "owl"}
	heroAdjs  = []string{"little", "brave", "happy", "kind", "small", "curious", "shy", "funny", "clever", "gentle"}
	homes     = []string{"a small house", "a big house", "a little town", "a quiet village", "a warm nest", "a cozy cave", "a tall tree", "a farm"}
	nearby    = []string{"near the forest", "by the river", "near the sea", "on a hill", "by the lake", "near the park"}
	places    = []string{"park", "forest", "beach", "garden", "river", "lake", "hill", "market", "school", "farm", "meadow", "pond"}
	objAdjs   = []string{"big", "small", "shiny", "red", "blue", "green", "yellow", "soft", "old", "new", "pretty", "round"}
	objects   = []string{"ball", "box", "kite", "hat", "book", "flower", "stone", "shell", "toy", "cake", "apple", "key", "boat", "drum", "star"}
	likes     = []string{"play with toys", "run in the sun", "sing songs", "read books", "draw pictures", "dance", "jump and play", "look at the stars", "help her mom", "climb trees"}
	feelings  = []string{"happy", "sad", "scared", "surprised", "excited", "tired", "proud", "angry"}
	finds     = []string{"saw", "found", "looked at", "picked up"}
	actions   = []string{"played with the %o", "showed the %o to %f", "gave the %o to %f", "took the %o home", "hid the %o under a tree", "put the %o in a bag"}
	friendOps = []string{"played together all day", "laughed and ran", "shared a snack", "went home together", "sat under a tree", "sang a song"}
	problems  = []string{"it started to rain", "the %o fell into the water", "a big wind took the %o", "%h lost the %o", "the %o broke"}
	fixes     = []string{"%f helped %h", "%h asked %f for help", "%h did not give up", "%h and %f looked everywhere"}
	goods     = []string{"they found the %o again", "the sun came out", "they fixed the %o", "%h got a new %o"}
	morals    = []string{"%h learned to share", "%h learned to be kind", "%h was never scared again", "they were best friends", "%h loved the %o very much"}
	endings   = []string{"the end", "they lived happily ever after", "it was a good day"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func newPerson(r *rand.Rand, animal bool) person {
	var p person
	if r.IntN(2) == 0 {
		p.name, p.he, p.his, p.kind = pick(r, girlNames), "she", "her", "girl"
	} else {
		p.name, p.he, p.his, p.kind = pick(r, boyNames), "he", "his", "boy"
	}
	if animal {
		p.kind, p.plainKind = pick(r, animals), true
	}
	p.kindAdj = pick(r, heroAdjs)
	return p
}

// story writes one story to b.
func story(r *rand.Rand, b *strings.Builder) {
	hero := newPerson(r, r.IntN(3) == 0)
	friend := newPerson(r, r.IntN(2) == 0)
	for friend.name == hero.name {
		friend = newPerson(r, friend.plainKind)
	}
	place := pick(r, places)
	obj := pick(r, objects)
	objAdj := pick(r, objAdjs)

	var sent []string
	fill := func(s string) string {
		s = strings.ReplaceAll(s, "%o", obj)
		s = strings.ReplaceAll(s, "%f", friend.name)
		s = strings.ReplaceAll(s, "%h", hero.name)
		return s
	}
	add := func(s, end string) { sent = append(sent, fill(s)+end) }

	switch r.IntN(3) {
	case 0:
		add("once upon a time, there was a "+hero.kindAdj+" "+hero.kind+" named "+hero.name, ".")
	case 1:
		add("once upon a time, there lived a "+hero.kindAdj+" "+hero.kind+" named "+hero.name, ".")
	default:
		add("once upon a time, in "+pick(r, homes)+", there was a "+hero.kind+" named "+hero.name, ".")
	}
	if r.IntN(2) == 0 {
		add(hero.he+" lived in "+pick(r, homes)+" "+pick(r, nearby), ".")
	}
	like := pick(r, likes)
	if like == "help her mom" {
		like = "help " + hero.his + " mom"
	}
	add(hero.he+" liked to "+like, ".")
	add("one day, %h went to the "+place, ".")
	add(hero.he+" "+pick(r, finds)+" a "+objAdj+" "+obj, ".")
	if r.IntN(2) == 0 {
		add(hero.he+" was very "+pick(r, feelings), "!")
	} else {
		add("the %o was "+objAdj+" and "+pick(r, objAdjs), ".")
	}
	if friend.plainKind {
		add("then %h met a "+friend.kindAdj+" "+friend.kind+" named %f", ".")
	} else {
		add("then %h met "+hero.his+" friend %f", ".")
	}
	add("%h "+pick(r, actions), ".")
	if r.IntN(2) == 0 {
		add("but "+pick(r, problems), "!")
		add(pick(r, fixes), ".")
		add(pick(r, goods), ".")
	}
	add("%h and %f "+pick(r, friendOps), ".")
	if r.IntN(2) == 0 {
		add(hero.he+" felt "+pick(r, feelings[:2])+" and "+pick(r, feelings[4:7]), ".")
	}
	add(pick(r, morals), ".")
	add(pick(r, endings), ".")
	for i, s := range sent {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
}

// Stories returns n stories from the grammar with the given seed: the same
// seed gives the same stories.
func Stories(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	out := make([]string, n)
	var b strings.Builder
	for i := range out {
		b.Reset()
		story(r, &b)
		out[i] = b.String()
	}
	return out
}

// grammarText lists every word the grammar can produce (with punctuation),
// for building the vocabulary.
func grammarText() string {
	lists := [][]string{girlNames, boyNames, animals, heroAdjs, homes, nearby, places, objAdjs, objects,
		likes, feelings, finds, actions, friendOps, problems, fixes, goods, morals, endings,
		{"once upon a time, there was a girl boy named lived in liked to help his her mom one day, went to the",
			"he she saw found a was very! the and then met friend but. together felt lived"}}
	var b strings.Builder
	for _, l := range lists {
		for _, s := range l {
			b.WriteString(strings.NewReplacer("%o", "", "%f", "", "%h", "").Replace(s))
			b.WriteString(" . , ! ")
		}
	}
	return b.String()
}
