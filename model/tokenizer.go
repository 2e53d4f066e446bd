package model

// Tokenizers built from GGUF metadata (the tokenizer.ggml.* keys), following
// llama.cpp's src/llama-vocab.cpp and src/unicode.cpp:
//
//   - tokenizer.ggml.model "llama": SentencePiece BPE (llm_tokenizer_spm).
//     Spaces become "▁" (U+2581), a space is prefixed to each run of text
//     when add_space_prefix is set, adjacent pieces merge best score first
//     (leftmost on ties), and what no token covers falls back to <0xXX> byte
//     tokens (or the unknown token when the vocabulary has none).
//   - tokenizer.ggml.model "gpt2": byte-level BPE (llm_tokenizer_bpe). Text
//     is split by the pre-tokenizer that tokenizer.ggml.pre names, each word's
//     bytes are mapped to printable runes (GPT-2's bytes_to_unicode), and
//     pairs merge by their rank in tokenizer.ggml.merges.
//
// Special tokens (token types control, user-defined and unknown) written
// literally in the text are matched before either algorithm runs, longest
// first, as llama.cpp does with parse_special=true.
//
// Round trip: Decode(Encode(s, true)) == s for every string s, given a
// vocabulary that can spell every byte (byte tokens, or all 256 byte runes
// for gpt2), provided, for SentencePiece, s holds no U+2581 (it cannot be
// told from a space). The same holds for
// Encode(s, false) unless s starts with the BOS token's text (when BOS is
// added) or ends with the EOS token's text (when EOS is added), because
// Decode drops one leading BOS and one trailing EOS. With add_space_prefix,
// Encode prefixes one space to the text at the start and after every special
// token, and Decode removes exactly that space: the first space of the first
// ordinary token at the start and after every special token.
//
// Deviations from llama.cpp, all on inputs or vocabularies llama.cpp
// mishandles: an invalid UTF-8 byte is a character of its own and keeps its
// value (llama.cpp substitutes U+FFFD in gpt2 mode and, in llama mode, reads
// as many bytes as the lead byte announces), so the round trip holds for any
// string, valid UTF-8 or not; a llama character that no token or byte token
// spells is one unknown token (llama.cpp aborts); a gpt2 symbol missing from
// the vocabulary falls back to its byte runes and then to the unknown token
// (llama.cpp drops it); and Decode writes control tokens as their text
// (llama.cpp writes nothing unless asked).

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"taobox/model/gguf"
)

// ErrNoTokenizer reports a model file without a usable vocabulary: no
// tokenizer.ggml.model key, "none"/"no_vocab", or ExportGGUF's placeholder
// vocabulary (written for a model without a tokenizer, such as a llama2.c
// checkpoint).
var ErrNoTokenizer = errors.New("model: the model file has no tokenizer")

// placeholderKey marks ExportGGUF's placeholder vocabulary. It is a
// tokenizer.* key so that tools replacing the tokenizer keys drop it too.
const placeholderKey = "tokenizer.taobox.placeholder"

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TokenUndefined   = 0
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// Tokenizer turns text into token ids and back. It is immutable after
// TokenizerFromGGUF and safe for concurrent use.
type Tokenizer struct {
	kind   string // "llama" or "gpt2"
	pre    string // gpt2 pre-tokenizer name as given ("" = default)
	tokens []string
	scores []float32
	types  []int32
	index  map[string]int

	bos, eos, unk, pad int // -1 when absent
	addBOS, addEOS     bool
	addSpacePrefix     bool
	ignoreMerges       bool
	eog                map[int]bool
	specials           []int // special-token ids, longest text first
	byteTok            [256]int
	ranks              map[mergeKey]int
	split              func(string) []string // gpt2 pre-tokenizer
	runeToByte         map[rune]byte
	byteToRune         [256]rune
}

type mergeKey struct{ a, b string }

// EOG token names llama.cpp recognises (llama_vocab::impl::load).
var eogNames = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
}

// TokenizerFromGGUF builds the tokenizer that f's tokenizer.ggml.* metadata
// describes. It returns ErrNoTokenizer (wrapped) when f has none, and an
// error naming the key for malformed metadata.
func TokenizerFromGGUF(f *gguf.File) (*Tokenizer, error) {
	c, err := TokenizerConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	return NewTokenizer(c)
}

// TokenizerConfigFromGGUF decodes f's tokenizer.ggml.* metadata (as
// TokenizerFromGGUF, without building the tokenizer): what ExportGGUF
// writes back when a file is converted.
func TokenizerConfigFromGGUF(f *gguf.File) (TokenizerConfig, error) {
	var none TokenizerConfig
	if ph, err := f.Bool(placeholderKey); err == nil && ph {
		return none, fmt.Errorf("%w (its vocabulary is ExportGGUF's placeholder); give token ids instead of text", ErrNoTokenizer)
	}
	kind, err := f.String("tokenizer.ggml.model")
	if errors.Is(err, gguf.ErrNotFound) || kind == "none" || kind == "no_vocab" {
		return none, fmt.Errorf("%w (tokenizer.ggml.model is %q); give token ids instead of text", ErrNoTokenizer, kind)
	}
	if err != nil {
		return none, fmt.Errorf("model: tokenizer: %w", err)
	}
	if kind != "llama" && kind != "gpt2" {
		return none, fmt.Errorf("model: tokenizer.ggml.model %q is not supported (only \"llama\" and \"gpt2\"); give token ids instead of text", kind)
	}
	c := TokenizerConfig{Kind: kind}
	if c.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return none, fmt.Errorf("model: tokenizer: %w", err)
	}
	if f.Has("tokenizer.ggml.scores") {
		if c.Scores, err = f.Floats("tokenizer.ggml.scores"); err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
	}
	if f.Has("tokenizer.ggml.token_type") {
		tt, err := f.Ints("tokenizer.ggml.token_type")
		if err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
		c.Types = make([]int32, len(tt))
		for i, t := range tt {
			c.Types[i] = int32(t)
		}
	}
	if f.Has("tokenizer.ggml.merges") {
		if c.Merges, err = f.Strings("tokenizer.ggml.merges"); err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
	}
	if f.Has("tokenizer.ggml.pre") {
		if c.Pre, err = f.String("tokenizer.ggml.pre"); err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
	}
	ids := []struct {
		key string
		dst **int
	}{
		{"tokenizer.ggml.bos_token_id", &c.BOS},
		{"tokenizer.ggml.eos_token_id", &c.EOS},
		{"tokenizer.ggml.unknown_token_id", &c.UNK},
		{"tokenizer.ggml.padding_token_id", &c.PAD},
		{"tokenizer.ggml.eot_token_id", &c.EOT},
		{"tokenizer.ggml.eom_token_id", &c.EOM},
	}
	for _, k := range ids {
		if !f.Has(k.key) {
			continue
		}
		v, err := f.Int(k.key)
		if err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
		id := int(v)
		*k.dst = &id
	}
	bools := []struct {
		key string
		dst **bool
	}{
		{"tokenizer.ggml.add_bos_token", &c.AddBOS},
		{"tokenizer.ggml.add_eos_token", &c.AddEOS},
		{"tokenizer.ggml.add_space_prefix", &c.AddSpacePrefix},
	}
	for _, k := range bools {
		if !f.Has(k.key) {
			continue
		}
		v, err := f.Bool(k.key)
		if err != nil {
			return none, fmt.Errorf("model: tokenizer: %w", err)
		}
		*k.dst = &v
	}
	return c, nil
}

// TokenizerConfig is the content of the tokenizer.ggml.* keys. Nil pointers
// mean "key absent": llama.cpp's defaults apply.
type TokenizerConfig struct {
	Kind   string    // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre    string    // gpt2 pre-tokenizer; "" = "default"
	Tokens []string  // required, non-empty
	Scores []float32 // llama: merge priority (higher first); nil = all 0
	Types  []int32   // Token* constants; nil = all TokenNormal
	Merges []string  // gpt2: "left right", rank = index; required for gpt2

	BOS, EOS, UNK, PAD, EOT, EOM   *int // out-of-range ids are ignored, as llama.cpp does
	AddBOS, AddEOS, AddSpacePrefix *bool
}

// NewTokenizer builds a tokenizer from decoded metadata (see
// TokenizerFromGGUF); it copies what it keeps of c. Defaults follow llama.cpp: for "llama" BOS 1, EOS 2,
// unknown 0, BOS added, a space prefixed; for "gpt2" BOS = EOS = 11, no
// space prefix, BOS added only for the llama3 pre-tokenizer family.
func NewTokenizer(c TokenizerConfig) (*Tokenizer, error) {
	n := len(c.Tokens)
	if n == 0 {
		return nil, errors.New("model: tokenizer.ggml.tokens is empty; the file has no usable vocabulary")
	}
	if c.Scores != nil && len(c.Scores) != n {
		return nil, fmt.Errorf("model: tokenizer.ggml.scores has %d entries, want %d (one per token); the file is inconsistent, re-convert it", len(c.Scores), n)
	}
	if c.Types != nil && len(c.Types) != n {
		return nil, fmt.Errorf("model: tokenizer.ggml.token_type has %d entries, want %d (one per token); the file is inconsistent, re-convert it", len(c.Types), n)
	}
	t := &Tokenizer{kind: c.Kind, pre: c.Pre, bos: -1, eos: -1, unk: -1, pad: -1, eog: map[int]bool{}}
	t.tokens = make([]string, n)
	t.index = make(map[string]int, n)
	for i, s := range c.Tokens {
		if s == "" {
			s = fmt.Sprintf("[EMPTY_%d]", i) // as llama.cpp
		}
		t.tokens[i] = s
		t.index[s] = i // a later duplicate wins, as in llama.cpp's token_to_id
	}
	t.scores = make([]float32, n) // copies: the caller keeps c
	copy(t.scores, c.Scores)
	t.types = make([]int32, n)
	for i := range t.types {
		t.types[i] = TokenNormal
	}
	copy(t.types, c.Types)
	valid := func(p *int, def int) int {
		id := def
		if p != nil && *p >= 0 && *p < n {
			id = *p
		}
		if id < 0 || id >= n {
			return -1
		}
		return id
	}
	eot, eom := -1, -1
	switch c.Kind {
	case "llama":
		t.bos, t.eos, t.unk = valid(c.BOS, 1), valid(c.EOS, 2), valid(c.UNK, 0)
		t.addBOS, t.addSpacePrefix = true, true
		for b := 0; b < 256; b++ {
			t.byteTok[b] = -1
			if id, ok := t.index[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteTok[b] = id
			} else if id, ok := t.index[string([]byte{byte(b)})]; ok {
				t.byteTok[b] = id
			}
		}
	case "gpt2":
		t.bos, t.eos, t.unk = valid(c.BOS, 11), valid(c.EOS, 11), valid(c.UNK, -1)
		split, addBOS, ignore, ok := preTokenizer(c.Pre)
		if !ok {
			return nil, fmt.Errorf("model: tokenizer.ggml.pre %q is not supported (known: %s); the text cannot be split as the model expects", c.Pre, strings.Join(knownPre(), ", "))
		}
		t.split, t.addBOS, t.ignoreMerges = split, addBOS, ignore
		if c.Merges == nil {
			return nil, errors.New("model: tokenizer.ggml.merges is missing; a gpt2 tokenizer needs its merges")
		}
		t.ranks = make(map[mergeKey]int, len(c.Merges))
		for i, m := range c.Merges {
			// llama.cpp splits at the first space after the first byte.
			var k mergeKey
			if p := strings.IndexByte(m[min(1, len(m)):], ' '); p >= 0 {
				p += min(1, len(m))
				k = mergeKey{m[:p], m[p+1:]}
			}
			if _, dup := t.ranks[k]; !dup {
				t.ranks[k] = i
			}
		}
		t.byteToRune, t.runeToByte = byteRunes()
		for b := 0; b < 256; b++ {
			t.byteTok[b] = -1
			if id, ok := t.index[string(t.byteToRune[b])]; ok {
				t.byteTok[b] = id
			}
		}
	default:
		return nil, fmt.Errorf("model: tokenizer.ggml.model %q is not supported (only \"llama\" and \"gpt2\")", c.Kind)
	}
	t.pad = valid(c.PAD, -1)
	eot, eom = valid(c.EOT, -1), valid(c.EOM, -1)
	if c.AddBOS != nil {
		t.addBOS = *c.AddBOS
	}
	if c.AddEOS != nil {
		t.addEOS = *c.AddEOS
	}
	if c.AddSpacePrefix != nil {
		t.addSpacePrefix = *c.AddSpacePrefix
	}
	if t.addBOS && t.bos < 0 {
		t.addBOS = false // llama.cpp asserts; we cannot add what does not exist
	}
	if t.addEOS && t.eos < 0 {
		t.addEOS = false
	}
	// End-of-generation tokens: llama.cpp forces the named ones to control.
	for _, name := range eogNames {
		if id, ok := t.index[name]; ok {
			t.eog[id] = true
			t.types[id] = TokenControl
		}
	}
	for _, id := range []int{t.eos, eot, eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	for id, ty := range t.types {
		if ty == TokenControl || ty == TokenUserDefined || ty == TokenUnknown {
			t.specials = append(t.specials, id)
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool {
		return len(t.tokens[t.specials[i]]) > len(t.tokens[t.specials[j]])
	})
	return t, nil
}

// Kind is the tokenizer.ggml.model value: "llama" (SentencePiece) or "gpt2"
// (byte-level BPE).
func (t *Tokenizer) Kind() string { return t.kind }

// Pre is the gpt2 pre-tokenizer name (tokenizer.ggml.pre; "" for llama).
func (t *Tokenizer) Pre() string { return t.pre }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, or -1 when there is none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, or -1 when there is none.
func (t *Tokenizer) EOS() int { return t.eos }

// AddsBOS reports whether Encode(text, true) starts with BOS.
func (t *Tokenizer) AddsBOS() bool { return t.addBOS }

// IsEOG reports whether id ends generation: EOS, EOT/EOM, or a token named
// like one (<|im_end|>, <|endoftext|>, <|eot_id|>, ...).
func (t *Tokenizer) IsEOG(id int) bool { return t.eog[id] }

// Token is the raw vocabulary entry of id ("" when out of range).
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

func (t *Tokenizer) isSpecial(id int) bool {
	ty := t.types[id]
	return ty == TokenControl || ty == TokenUserDefined || ty == TokenUnknown
}

// Encode tokenizes text. addSpecial adds BOS (and EOS) as the metadata says.
// Special tokens written literally in text are emitted as themselves.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	return t.encode(text, addSpecial, true)
}

type tokFragment struct {
	text string
	tok  int // >= 0: a special token; -1: raw text
}

// encode is llama_vocab::impl::tokenize. parseSpecial false matches only
// user-defined tokens in the text, as llama.cpp does.
func (t *Tokenizer) encode(text string, addSpecial, parseSpecial bool) []int {
	var frags []tokFragment
	if text != "" {
		frags = t.partition(text, parseSpecial)
	}
	var out []int
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	prevSpecial := true
	for _, fr := range frags {
		if fr.tok >= 0 {
			out = append(out, fr.tok)
			prevSpecial = true
			continue
		}
		if t.kind == "llama" {
			s := fr.text
			if t.addSpacePrefix && prevSpecial {
				s = " " + s
			}
			out = t.encodeSPM(strings.ReplaceAll(s, " ", "▁"), out)
		} else {
			out = t.encodeBPE(fr.text, out)
		}
		prevSpecial = false
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}

// partition splits text at special tokens, longest token first
// (tokenizer_st_partition).
func (t *Tokenizer) partition(text string, parseSpecial bool) []tokFragment {
	frags := []tokFragment{{text, -1}}
	for _, id := range t.specials {
		if !parseSpecial && t.types[id] != TokenUserDefined {
			continue
		}
		tok := t.tokens[id]
		var next []tokFragment
		changed := false
		for _, fr := range frags {
			if fr.tok >= 0 || !strings.Contains(fr.text, tok) {
				next = append(next, fr)
				continue
			}
			changed = true
			s := fr.text
			for {
				i := strings.Index(s, tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, tokFragment{s[:i], -1})
				}
				next = append(next, tokFragment{tok, id})
				s = s[i+len(tok):]
			}
			if s != "" {
				next = append(next, tokFragment{s, -1})
			}
		}
		if changed {
			frags = next
		}
	}
	return frags
}

// Decode turns ids back into text: one leading BOS and one trailing EOS are
// dropped when the tokenizer adds them, out-of-range ids are skipped, special
// tokens are written as their text, and with add_space_prefix the space
// Encode prefixed (at the start and after each special token) is removed.
// For SentencePiece, "▁" becomes a space after byte tokens are joined, so a
// "▁" spelled in byte tokens reads as a space too.
func (t *Tokenizer) Decode(ids []int) string {
	if t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		ids = ids[1:]
	}
	if t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	return t.decode(ids, true)
}

// DecodeContinuation is Decode for ids that continue earlier text, such as
// generated tokens: no BOS or EOS is dropped and the first token keeps its
// leading space (the space after a special token is still removed).
func (t *Tokenizer) DecodeContinuation(ids []int) string { return t.decode(ids, false) }

func (t *Tokenizer) decode(ids []int, atStart bool) string {
	var b strings.Builder
	spm := t.kind == "llama"
	var seg []byte // SentencePiece: raw pieces since the last special token
	strip := atStart && spm && t.addSpacePrefix
	flush := func() {
		if len(seg) == 0 {
			return
		}
		s := strings.ReplaceAll(string(seg), "▁", " ")
		if strip {
			s = strings.TrimPrefix(s, " ")
		}
		b.WriteString(s)
		seg, strip = seg[:0], false
	}
	for _, id := range ids {
		switch {
		case id < 0 || id >= len(t.tokens):
		case t.isSpecial(id):
			flush()
			b.WriteString(t.tokens[id])
			strip = spm && t.addSpacePrefix
		case spm:
			seg = append(seg, t.rawPiece(id)...)
		default:
			b.WriteString(t.TokenText(id))
		}
	}
	flush()
	return b.String()
}

// rawPiece is a SentencePiece token's bytes before "▁" is unescaped.
func (t *Tokenizer) rawPiece(id int) string {
	switch t.types[id] {
	case TokenUnused:
		return ""
	case TokenByte:
		if b, ok := parseByteToken(t.tokens[id]); ok {
			return string([]byte{b})
		}
	}
	return t.tokens[id]
}

// TokenText is one token decoded on its own: special tokens as their text,
// byte tokens as their byte, "▁" as a space (llama), byte runes as bytes
// (gpt2). Unused tokens and out-of-range ids give "". The result need not be
// valid UTF-8 (a byte token, or part of a multi-byte character).
func (t *Tokenizer) TokenText(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	s := t.tokens[id]
	switch ty := t.types[id]; {
	case t.isSpecial(id):
		return s
	case ty == TokenUnused:
		return ""
	case t.kind == "llama" && ty == TokenByte:
		return t.rawPiece(id)
	case t.kind == "llama":
		return strings.ReplaceAll(s, "▁", " ")
	default:
		var b strings.Builder
		for _, r := range s {
			if c, ok := t.runeToByte[r]; ok {
				b.WriteByte(c)
			} else {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
}

// parseByteToken reads "<0xXX>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// byteRunes is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 onward, in byte order.
func byteRunes() (b2r [256]rune, r2b map[rune]byte) {
	r2b = make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}

// addTokenizerKVs writes c as the tokenizer.ggml.* keys TokenizerFromGGUF
// reads (ExportGGUF's writer side). Nil fields are left out.
func addTokenizerKVs(w *gguf.Writer, c *TokenizerConfig) error {
	var first error
	check := func(err error) {
		if first == nil {
			first = err
		}
	}
	check(w.AddString("tokenizer.ggml.model", c.Kind))
	if c.Pre != "" {
		check(w.AddString("tokenizer.ggml.pre", c.Pre))
	}
	check(w.AddArray("tokenizer.ggml.tokens", c.Tokens))
	if c.Scores != nil {
		check(w.AddArray("tokenizer.ggml.scores", c.Scores))
	}
	if c.Types != nil {
		check(w.AddArray("tokenizer.ggml.token_type", c.Types))
	}
	if c.Merges != nil {
		check(w.AddArray("tokenizer.ggml.merges", c.Merges))
	}
	for _, k := range []struct {
		key string
		v   *int
	}{
		{"tokenizer.ggml.bos_token_id", c.BOS},
		{"tokenizer.ggml.eos_token_id", c.EOS},
		{"tokenizer.ggml.unknown_token_id", c.UNK},
		{"tokenizer.ggml.padding_token_id", c.PAD},
		{"tokenizer.ggml.eot_token_id", c.EOT},
		{"tokenizer.ggml.eom_token_id", c.EOM},
	} {
		if k.v != nil {
			if *k.v < 0 || int64(*k.v) > 1<<32-1 {
				return fmt.Errorf("model: %s %d is not a token id", k.key, *k.v)
			}
			check(w.AddUint32(k.key, uint32(*k.v)))
		}
	}
	for _, k := range []struct {
		key string
		v   *bool
	}{
		{"tokenizer.ggml.add_bos_token", c.AddBOS},
		{"tokenizer.ggml.add_eos_token", c.AddEOS},
		{"tokenizer.ggml.add_space_prefix", c.AddSpacePrefix},
	} {
		if k.v != nil {
			check(w.AddBool(k.key, *k.v))
		}
	}
	return first
}
