package main

import (
	"crypto/sha256"
	"math/rand/v2"
	"slices"

	"taobox/assets"
	"taobox/model"
	"taobox/model/gguf"
)

// The devnet's models: every honest miner and every validator runs its own
// copy of the embedded tiny model (a Model is not safe for concurrent use);
// the other-model cheater runs a perturbed copy (miner.OtherModelAnswer)
// and the random cheater makes up its tokens (miner.RandomAnswer).

// Miner behaviours of the devnet cast, as --json reports them.
const (
	behaviourHonest     = "honest"      // answers from the tiny model
	behaviourRandom     = "random"      // random tokens with made-up log-probs
	behaviourOtherModel = "other-model" // answers from another model of the same shape and vocabulary
)

// devTinyModel returns a fresh copy of the embedded tiny model and the
// SHA-256 of its file, the model hash miners advertise and validators ask
// for. The copy aliases the embedded bytes (read-only) and owns its run
// state.
func devTinyModel() (*model.Model, [32]byte, error) {
	data := assets.TinyModel()
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, [32]byte{}, err
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		return nil, [32]byte{}, err
	}
	m.SetThreads(1)
	return m, sha256.Sum256(data), nil
}

// otherModel returns the tiny model with every weight scaled by its own
// seeded random factor in [1-spread, 1+spread]: the same shape, vocabulary
// and tokenizer, so its tokens and log-probs look plausible, but another
// model — what a miner that swaps in a cheaper or different model serves
// while claiming the tiny model's hash.
func otherModel(seed uint64, spread float32) (*model.Model, error) {
	tiny, _, err := devTinyModel()
	if err != nil {
		return nil, err
	}
	defer tiny.Close()
	w := tiny.F32Weights()
	r := rand.New(rand.NewPCG(seed, 0x6f74_6865_72)) // "other"
	perturb := func(s []float32) []float32 {
		s = slices.Clone(s) // F32Weights may alias the model's own slices
		for i := range s {
			s[i] *= 1 - spread + 2*spread*r.Float32()
		}
		return s
	}
	tied := tiny.Config.SharedClassifier
	w.TokenEmbedding = perturb(w.TokenEmbedding)
	if tied {
		w.WCls = w.TokenEmbedding
	} else {
		w.WCls = perturb(w.WCls)
	}
	w.RMSAtt, w.RMSFFN, w.RMSFinal = perturb(w.RMSAtt), perturb(w.RMSFFN), perturb(w.RMSFinal)
	w.WQ, w.WK, w.WV, w.WO = perturb(w.WQ), perturb(w.WK), perturb(w.WV), perturb(w.WO)
	w.W1, w.W2, w.W3 = perturb(w.W1), perturb(w.W2), perturb(w.W3)
	m, err := model.NewModel(tiny.Config, w)
	if err != nil {
		return nil, err
	}
	m.SetThreads(1)
	return m, nil
}
