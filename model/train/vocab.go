//go:build !cuda

package train

import (
	"fmt"
	"slices"
	"strings"
)

// Token ids every Vocab shares: SentencePiece's LLaMA layout.
const (
	UNK       = 0
	BOS       = 1
	EOS       = 2
	byteFirst = 3 // <0x00> .. <0xFF> are ids 3..258
)

// Token types, as in GGUF's tokenizer.ggml.token_type (llama.cpp's
// llama_token_type).
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

// space is SentencePiece's word-boundary mark.
const space = "▁"

// Vocab is a word-level SentencePiece-style vocabulary: <unk>, <s>, </s>,
// the 256 byte-fallback tokens, one piece per word ("▁once") and per
// punctuation mark, and then every proper prefix of every word piece
// ("▁o", "▁on", "▁onc"), which the model never sees but SentencePiece's
// merge-by-score encoder needs: it merges adjacent pieces only into pieces
// of the vocabulary, so each word grows left to right from its "▁" and
// stops exactly at the word piece. Words have score 0 and prefixes
// negative scores.
type Vocab struct {
	Pieces []string
	Scores []float32
	Types  []int32
	ids    map[string]int
	nWords int // ids [byteFirst+256, byteFirst+256+nWords) are words and punctuation
}

// punctuation the grammar uses; each is its own piece.
var punctuation = []string{".", ",", "!"}

// NewVocab builds the vocabulary of every word in text (split on spaces,
// trailing punctuation split off), in sorted order.
func NewVocab(text string) *Vocab {
	v := &Vocab{ids: map[string]int{}}
	addPiece := func(p string, score float32, typ int32) {
		if _, ok := v.ids[p]; ok {
			return
		}
		v.ids[p] = len(v.Pieces)
		v.Pieces = append(v.Pieces, p)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	addPiece("<unk>", 0, typeUnknown)
	addPiece("<s>", 0, typeControl)
	addPiece("</s>", 0, typeControl)
	for b := 0; b < 256; b++ {
		addPiece(fmt.Sprintf("<0x%02X>", b), 0, typeByte)
	}
	var words []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(text) {
		w, _ := splitPunct(f)
		if w != "" && !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	slices.Sort(words)
	for _, p := range punctuation {
		addPiece(p, 0, typeNormal)
	}
	for _, w := range words {
		addPiece(space+w, 0, typeNormal)
	}
	v.nWords = len(v.Pieces) - byteFirst - 256
	for _, w := range words {
		r := []rune(space + w)
		for n := 2; n < len(r); n++ {
			addPiece(string(r[:n]), -float32(len(r)-n), typeNormal)
		}
	}
	return v
}

// splitPunct splits trailing punctuation off a field: "time," → "time", ",".
func splitPunct(f string) (word, punct string) {
	i := len(f)
	for i > 0 && strings.ContainsRune(".,!", rune(f[i-1])) {
		i--
	}
	return f[:i], f[i:]
}

// Len is the number of tokens.
func (v *Vocab) Len() int { return len(v.Pieces) }

// IsWord reports whether id is a word or punctuation piece (not a special,
// byte or prefix piece).
func (v *Vocab) IsWord(id int) bool {
	return id >= byteFirst+256 && id < byteFirst+256+v.nWords
}

// ID returns the id of a piece and whether it exists.
func (v *Vocab) ID(piece string) (int, bool) {
	id, ok := v.ids[piece]
	return id, ok
}

// Encode tokenizes text as SentencePiece with this vocabulary would (a
// space prefix, words to "▁word" pieces, punctuation on its own): each word
// of the grammar is one token. Unknown words become byte tokens. No BOS is
// added.
func (v *Vocab) Encode(text string) []int {
	var ids []int
	for _, f := range strings.Fields(text) {
		w, p := splitPunct(f)
		if w != "" {
			if id, ok := v.ids[space+w]; ok {
				ids = append(ids, id)
			} else {
				for _, b := range []byte(space + w) {
					ids = append(ids, byteFirst+int(b))
				}
			}
		}
		for _, c := range p {
			ids = append(ids, v.ids[string(c)])
		}
	}
	return ids
}

// Decode turns ids back into text: "▁" becomes a space, byte tokens their
// byte, <s> and </s> nothing; the leading space is dropped.
func (v *Vocab) Decode(ids []int) string {
	var b []byte
	for _, id := range ids {
		switch {
		case id < 0 || id >= len(v.Pieces):
			b = append(b, "<?>"...)
		case id == BOS || id == EOS:
		case id >= byteFirst && id < byteFirst+256:
			b = append(b, byte(id-byteFirst))
		default:
			b = append(b, v.Pieces[id]...)
		}
	}
	return strings.TrimPrefix(strings.ReplaceAll(string(b), space, " "), " ")
}

// GrammarVocab is the vocabulary of the story grammar.
func GrammarVocab() *Vocab { return NewVocab(grammarText()) }
