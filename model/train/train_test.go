//go:build !cuda

package train

import (
	"bytes"
	"math"
	"runtime"
	"slices"
	"testing"

	"taobox/model"
	"taobox/model/gguf"
)

// small is a configuration that trains in well under a second per step.
func small() Config {
	return Config{Dim: 16, Hidden: 32, Layers: 2, Heads: 2, SeqLen: 32, Batch: 2, Steps: 30, LR: 1e-2, Seed: 7}
}

func newTrainer(t *testing.T, c Config) *Trainer {
	t.Helper()
	tr, err := NewTrainer(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// scoreLoss is the mean cross-entropy of batch under m, from model.Score.
func scoreLoss(t *testing.T, m *model.Model, batch []int, rows int) float64 {
	t.Helper()
	n := len(batch) / rows
	var sum float64
	var count int
	for b := 0; b < rows; b++ {
		lps, err := m.Score(batch[b*n:(b+1)*n], 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, lp := range lps {
			sum -= lp
			count++
		}
	}
	return sum / float64(count)
}

// The trainer's graph and the inference engine compute the same function:
// the loss of a held-out batch equals the cross-entropy model.Score gives
// the exported GGUF file, before and after some training.
func TestLossMatchesEngine(t *testing.T) {
	c := small()
	tr := newTrainer(t, c)
	held := tr.HeldOutBatch()
	for round := 0; round < 2; round++ {
		loss, err := tr.Loss(held)
		if err != nil {
			t.Fatal(err)
		}
		_, m := exported(t, tr)
		want := scoreLoss(t, m, held, c.Batch)
		t.Logf("round %d: trainer %.7f engine %.7f", round, loss, want)
		if math.Abs(loss-want) > 1e-4 {
			t.Fatalf("round %d: trainer loss %.7f, engine cross-entropy %.7f", round, loss, want)
		}
		for range 10 {
			if _, err := tr.Step(tr.NextBatch()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestLossDecreases(t *testing.T) {
	c := small()
	tr := newTrainer(t, c)
	held := tr.HeldOutBatch()
	before, err := tr.Loss(held)
	if err != nil {
		t.Fatal(err)
	}
	for range c.Steps {
		if _, err := tr.Step(tr.NextBatch()); err != nil {
			t.Fatal(err)
		}
	}
	after, err := tr.Loss(held)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out loss %.4f → %.4f after %d steps", before, after, c.Steps)
	if !(after < before-0.5) {
		t.Fatalf("held-out loss %.4f → %.4f after %d steps: want a drop of more than 0.5", before, after, c.Steps)
	}
}

// Gorgonia's symbolic gradients agree with central finite differences of
// the loss, for the largest gradient entry of every parameter.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	c := small()
	tr := newTrainer(t, c)
	for range 5 { // off the initial point, where many gradients are tiny
		if _, err := tr.Step(tr.NextBatch()); err != nil {
			t.Fatal(err)
		}
	}
	batch := tr.HeldOutBatch()
	if _, err := tr.Loss(batch); err != nil {
		t.Fatal(err)
	}
	grads := make([][]float32, len(tr.params))
	for i, p := range tr.params {
		gv, err := p.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	const eps = 1e-2
	for i, p := range tr.params {
		w := p.Value().Data().([]float32)
		j := 0
		for k, g := range grads[i] {
			if math.Abs(float64(g)) > math.Abs(float64(grads[i][j])) {
				j = k
			}
		}
		orig := w[j]
		w[j] = orig + eps
		lp, err := tr.Loss(batch)
		if err != nil {
			t.Fatal(err)
		}
		w[j] = orig - eps
		lm, err := tr.Loss(batch)
		if err != nil {
			t.Fatal(err)
		}
		w[j] = orig
		fd := (lp - lm) / (2 * eps)
		g := float64(grads[i][j])
		if math.Abs(fd-g) > 0.05*math.Abs(g)+3e-4 {
			t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", tr.names[i], j, g, fd)
		}
	}
}

// The exported file loads in the engine to the same model, and its
// tokenizer metadata makes model.Tokenizer (SentencePiece merges by score)
// encode grammar text to exactly the trainer's word ids.
func TestGGUFExport(t *testing.T) {
	c := small()
	tr := newTrainer(t, c)
	for range 3 {
		if _, err := tr.Step(tr.NextBatch()); err != nil {
			t.Fatal(err)
		}
	}
	f, loaded := exported(t, tr)
	m, err := tr.Model()
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Config != m.Config {
		t.Fatalf("config %+v, want %+v", loaded.Config, m.Config)
	}
	held := tr.HeldOutBatch()[:c.SeqLen+1]
	a, err := loaded.Score(held, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Score(held, 1)
	if !slices.Equal(a, b) {
		t.Fatal("the loaded model scores differently from the trainer's")
	}

	tok, err := model.TokenizerFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != BOS || tok.EOS() != EOS || tok.VocabSize() != tr.Vocab.Len() {
		t.Fatalf("tokenizer bos %d eos %d vocab %d", tok.BOS(), tok.EOS(), tok.VocabSize())
	}
	for i, s := range Stories(99, 50) {
		want := tr.Vocab.Encode(s)
		got := tok.Encode(s, false)
		if !slices.Equal(got, want) {
			t.Fatalf("story %d: model.Tokenizer gives %v, the trainer %v\n%s", i, got, want, s)
		}
		if d := tok.Decode(want); d != s {
			t.Fatalf("story %d: model.Tokenizer decodes to %q, want %q", i, d, s)
		}
	}
}

func TestVocab(t *testing.T) {
	v := GrammarVocab()
	for i, s := range Stories(3, 200) {
		ids := v.Encode(s)
		for _, id := range ids {
			if !v.IsWord(id) {
				t.Fatalf("story %d: id %d (%q) is not a word piece: %s", i, id, v.Pieces[id], s)
			}
		}
		if d := v.Decode(ids); d != s {
			t.Fatalf("story %d: decodes to %q, want %q", i, d, s)
		}
	}
	if got := v.Decode(v.Encode("once upon a zebra!")); got != "once upon a zebra!" {
		t.Fatalf("byte fallback: %q", got)
	}
	if !slices.Equal(Stories(5, 3), Stories(5, 3)) || slices.Equal(Stories(5, 3), Stories(6, 3)) {
		t.Fatal("Stories is not a function of its seed")
	}
}

// Training is a function of the Config: two runs give the same weights bit
// for bit, here with 1 and 2 threads (GOMAXPROCS, which gonum's parallel
// matrix products use) at the shipped size, where the products do split.
func TestDeterministicAcrossThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the full-size model for a step, twice")
	}
	c := TinyConfig()
	weights := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		tr := newTrainer(t, c)
		for range 1 {
			if _, err := tr.Step(tr.NextBatch()); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := tr.GGUF()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	a, b := weights(1), weights(2)
	if !bytes.Equal(a, b) {
		t.Fatal("1 and 2 threads trained different weights")
	}
}

// exported returns the trainer's GGUF export parsed and loaded; it loads the trainer's current weights through the GGUF export, as
// the inference engine would.
func exported(t *testing.T, tr *Trainer) (*gguf.File, *model.Model) {
	t.Helper()
	raw, err := tr.GGUF()
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}
