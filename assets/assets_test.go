package assets_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"taobox/assets"
	"taobox/model"
	"taobox/model/gguf"
)

func TestTinySHA256(t *testing.T) {
	sum := sha256.Sum256(assets.TinyModel())
	if got := hex.EncodeToString(sum[:]); got != assets.TinySHA256 {
		t.Fatalf("tiny.gguf has SHA-256 %s, TinySHA256 says %s", got, assets.TinySHA256)
	}
	if n := len(assets.TinyModel()); n > 3_000_000 {
		t.Fatalf("tiny.gguf is %d bytes, more than 3 MB", n)
	}
}

// The embedded model loads, and its greedy story from BOS + "once upon a
// time" is words (each a whole-word or punctuation piece of the grammar,
// never a byte or word-prefix piece) that end a sentence, not one token
// repeated.
func TestTinyGreedy(t *testing.T) {
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := model.TokenizerFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	prompt := tok.Encode("once upon a time", true)
	if len(prompt) != 5 || prompt[0] != tok.BOS() {
		t.Fatalf("prompt ids %v: want BOS and 4 words", prompt)
	}
	g, err := m.GenerateSampled(prompt, model.GenerateOptions{MaxTokens: m.Config.SeqLen, EOS: tok.EOS()})
	if err != nil {
		t.Fatal(err)
	}
	ids := g.IDs
	if len(ids) > 0 && ids[len(ids)-1] == tok.EOS() {
		ids = ids[:len(ids)-1]
	}
	text := tok.Decode(append(prompt, ids...))
	t.Logf("greedy: %s", text)
	distinct := map[int]bool{}
	for i, id := range ids {
		if !isWord(tok.Token(id)) {
			t.Errorf("token %d, id %d (%q), is not a whole word or punctuation", i, id, tok.Token(id))
		}
		distinct[id] = true
	}
	if len(ids) < 20 || len(distinct) < 10 {
		t.Errorf("%d tokens, %d distinct: want a story, not a repetition", len(ids), len(distinct))
	}
	if !strings.HasSuffix(text, ".") && !strings.HasSuffix(text, "!") {
		t.Errorf("the greedy text does not end a sentence: %q", text)
	}
}

// isWord reports whether piece is one of the tiny vocabulary's word pieces
// ("▁" and lowercase letters, a word the grammar uses; the vocabulary also
// holds every prefix of those, which the encoder needs but the model
// should never produce) or punctuation.
func isWord(piece string) bool {
	switch piece {
	case ".", ",", "!":
		return true
	}
	w, ok := strings.CutPrefix(piece, "▁")
	if !ok || w == "" || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" {
		return false
	}
	return grammarWords[w]
}

// grammarWords are the words of model/train's story grammar.
var grammarWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(words) {
		grammarWords[w] = true
	}
}

// words lists the 206 words of the grammar's vocabulary (model/train's
// GrammarVocab, not imported: that package needs gorgonia, which the cuda
// build leaves out).
const words = `
	a after again all amy and angry anna apple asked at bag ball be beach
	bear ben best big bird blue boat book books box boy brave broke bunny
	but by cake came cat cave clever climb cozy curious dance day did dog
	draw drum duck ella emma end ever everywhere excited farm fell felt
	finn fixed flower for forest found fox friend friends frog funny
	garden gave gentle girl give good got green happily happy hat he help
	helped her hid hill his home house in into it jack jump key kind kite
	lake laughed learned leo liked lily little lived look looked lost
	loved lucy luke market max meadow met mia mom mouse much named near
	nest never new noah not old on once one out owl park picked pictures
	play played pond pretty proud put quiet rain ran read red river rose
	round run sad sam sang sara sat saw scared school sea share shared she
	shell shiny showed shy sing small snack soft song songs star stars
	started stone sun surprised tall the then there they tim time tired to
	together tom took town toy toys tree trees under up upon very village
	warm was water went were wind with yellow zoe
`
