package model

import (
	"container/heap"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Byte-level BPE, as llama.cpp's llm_tokenizer_bpe_session, and the
// pre-tokenizers of tokenizer.ggml.pre written by hand after llama.cpp's
// unicode.cpp (Go's regexp has no lookahead, which \s+(?!\S) needs).
//
// Character classes follow llama.cpp's unicode_cpt_flags, approximated by
// Go's unicode tables: \p{L} = unicode.IsLetter, \p{N} = unicode.IsNumber,
// \p{P} = unicode.IsPunct, \s = unicode.IsSpace (the White_Space property,
// the set llama.cpp uses). Invalid UTF-8 bytes count as one character each
// with none of these classes (llama.cpp reads them as U+FFFD, a symbol).

// cpt is one character of the text being split: its byte range and rune.
type tokChar struct {
	r     rune
	start int
}

type tokFlags uint8

const (
	fLetter tokFlags = 1 << iota
	fNumber
	fSpace
	fPunct
	fInRange // llama.cpp's flags.as_uint() != 0: a character, not past the end
)

func flagsOf(r rune) tokFlags {
	f := fInRange
	if unicode.IsLetter(r) {
		f |= fLetter
	}
	if unicode.IsNumber(r) {
		f |= fNumber
	}
	if unicode.IsSpace(r) {
		f |= fSpace
	}
	if unicode.IsPunct(r) {
		f |= fPunct
	}
	return f
}

// cpts splits text into characters; an invalid byte is one character with
// rune utf8.RuneError.
func tokChars(text string) []tokChar {
	out := make([]tokChar, 0, len(text))
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		out = append(out, tokChar{r, i})
		i += n
	}
	return out
}

// A preSplitter refines a list of words (byte ranges of the text, as character
// counts) into smaller words; a pre-tokenizer is a chain of them, like
// llama.cpp's list of regexes.
type preSplitter func(c []tokChar, fl []tokFlags, lo, hi int, emit func(end int))

// chain runs splitters in order over text and returns the words.
func preSplit(text string, steps ...preSplitter) []string {
	c := tokChars(text)
	fl := make([]tokFlags, len(c))
	for i, x := range c {
		if x.r == utf8.RuneError {
			_, n := utf8.DecodeRuneInString(text[x.start:])
			if n == 1 {
				fl[i] = fInRange
				continue
			}
		}
		fl[i] = flagsOf(x.r)
	}
	bounds := []int{len(c)} // word ends, in characters
	for _, step := range steps {
		var next []int
		start := 0
		for _, end := range bounds {
			prev := start
			step(c, fl, start, end, func(e int) {
				if e > prev {
					next = append(next, e)
					prev = e
				}
			})
			if prev < end { // a preSplitter must cover its word; keep the rest
				next = append(next, end)
			}
			start = end
		}
		bounds = next
	}
	words := make([]string, 0, len(bounds))
	start := 0
	for _, end := range bounds {
		if end == start {
			continue
		}
		b0 := c[start].start
		b1 := len(text)
		if end < len(c) {
			b1 = c[end].start
		}
		words = append(words, text[b0:b1])
		start = end
	}
	return words
}

// charWindow is the characters [lo, hi) of a pre-tokenizer's input; reads
// outside it see rune -1 with no flags, as llama.cpp's splitters do.
type charWindow struct {
	c      []tokChar
	fl     []tokFlags
	lo, hi int
}

// accessors returns the window's rune and flag readers.
func (w charWindow) accessors() (get func(int) rune, flags func(int) tokFlags) {
	get = func(p int) rune {
		if p >= w.lo && p < w.hi {
			return w.c[p].r
		}
		return -1
	}
	flags = func(p int) tokFlags {
		if p >= w.lo && p < w.hi {
			return w.fl[p]
		}
		return 0
	}
	return get, flags
}

// splitGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (unicode_regex_split_custom_gpt2).
func splitGPT2(c []tokChar, fl []tokFlags, lo, hi int, emit func(int)) {
	get, flags := charWindow{c, fl, lo, hi}.accessors()
	for pos := lo; pos < hi; {
		r := get(pos)
		if r == '\'' && pos+1 < hi {
			n := get(pos + 1)
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				emit(pos)
				continue
			}
			if pos+2 < hi {
				nn := get(pos + 2)
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					emit(pos)
					continue
				}
			}
		}
		f2 := flags(pos)
		if r == ' ' {
			f2 = flags(pos + 1)
		}
		sp := 0
		if r == ' ' {
			sp = 1
		}
		if f2&fLetter != 0 {
			pos += sp
			for flags(pos)&fLetter != 0 {
				pos++
			}
			emit(pos)
			continue
		}
		if f2&fNumber != 0 {
			pos += sp
			for flags(pos)&fNumber != 0 {
				pos++
			}
			emit(pos)
			continue
		}
		other := func(f tokFlags) bool { return f&(fSpace|fLetter|fNumber) == 0 && f&fInRange != 0 }
		if other(f2) {
			pos += sp
			for other(flags(pos)) {
				pos++
			}
			emit(pos)
			continue
		}
		nws := 0
		for flags(pos+nws)&fSpace != 0 {
			nws++
		}
		if nws > 1 && get(pos+nws) != -1 {
			pos += nws - 1
			emit(pos)
			continue
		}
		if nws > 0 {
			pos += nws
			emit(pos)
			continue
		}
		pos++
		emit(pos)
	}
}

// splitLlama3 is (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ with D = maxDigits
// (unicode_regex_split_custom_llama3; D = 1 is qwen2's pattern).
func splitLlama3(maxDigits int) preSplitter {
	return func(c []tokChar, fl []tokFlags, lo, hi int, emit func(int)) {
		get, flags := charWindow{c, fl, lo, hi}.accessors()
		lower := func(r rune) rune {
			if r < 0 {
				return r
			}
			return unicode.ToLower(r)
		}
		for pos := lo; pos < hi; {
			r := get(pos)
			f := flags(pos)
			if r == '\'' && pos+1 < hi {
				n := lower(get(pos + 1))
				if n == 's' || n == 't' || n == 'm' || n == 'd' {
					pos += 2
					emit(pos)
					continue
				}
				if pos+2 < hi {
					nn := lower(get(pos + 2))
					if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
						pos += 3
						emit(pos)
						continue
					}
				}
			}
			if !(r == '\r' || r == '\n' || f&fNumber != 0) {
				if f&fLetter != 0 || flags(pos+1)&fLetter != 0 {
					pos++
					for flags(pos)&fLetter != 0 {
						pos++
					}
					emit(pos)
					continue
				}
			}
			if f&fNumber != 0 {
				ini := pos
				for flags(pos)&fNumber != 0 {
					pos++
					if pos-ini >= maxDigits {
						emit(pos)
						ini = pos
					}
				}
				emit(pos)
				continue
			}
			f2 := f
			if r == ' ' {
				f2 = flags(pos + 1)
			}
			other := func(f tokFlags) bool { return f&(fSpace|fLetter|fNumber) == 0 && f&fInRange != 0 }
			if f2&(fSpace|fLetter|fNumber) == 0 && f&fInRange != 0 {
				if r == ' ' {
					pos++
				}
				for other(flags(pos)) {
					pos++
				}
				for r2 := get(pos); r2 == '\r' || r2 == '\n'; r2 = get(pos) {
					pos++
				}
				emit(pos)
				continue
			}
			nws, lastRN := 0, 0
			for flags(pos+nws)&fSpace != 0 {
				if r2 := get(pos + nws); r2 == '\r' || r2 == '\n' {
					lastRN = pos + nws + 1
				}
				nws++
			}
			if lastRN > 0 {
				pos = lastRN
				emit(pos)
				continue
			}
			if nws > 1 && get(pos+nws) != -1 {
				pos += nws - 1
				emit(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				emit(pos)
				continue
			}
			pos++
			emit(pos)
		}
	}
}

// splitRuns isolates maximal runs of characters in the class, keeping the
// text between runs as words: a regex like [\p{P}$+<=>^~|]+ or \p{N}+ run
// through llama.cpp's unicode_regex_split_stl. single isolates each
// character of the class instead (\p{N}).
func splitRuns(in func(r rune, f tokFlags) bool, single bool) preSplitter {
	return func(c []tokChar, fl []tokFlags, lo, hi int, emit func(int)) {
		for pos := lo; pos < hi; {
			if !in(c[pos].r, fl[pos]) {
				for pos < hi && !in(c[pos].r, fl[pos]) {
					pos++
				}
				emit(pos)
				continue
			}
			pos++
			for !single && pos < hi && in(c[pos].r, fl[pos]) {
				pos++
			}
			emit(pos)
		}
	}
}

// splitDigits3 is [0-9][0-9][0-9]: each group of three ASCII digits, left to
// right, is a word.
func splitDigits3(c []tokChar, fl []tokFlags, lo, hi int, emit func(int)) {
	digit := func(p int) bool { return p < hi && c[p].r >= '0' && c[p].r <= '9' }
	for pos := lo; pos < hi; {
		if digit(pos) && digit(pos+1) && digit(pos+2) {
			pos += 3
			emit(pos)
			continue
		}
		pos++
		for pos < hi && !(digit(pos) && digit(pos+1) && digit(pos+2)) {
			pos++
		}
		emit(pos)
	}
}

// splitGPT4o is GPT-4o's (and llama4's) pattern, which llama.cpp runs
// through std::regex:
//
//	[^\r\n\p{L}\p{N}]?U*L+C?|[^\r\n\p{L}\p{N}]?U+L*C?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with U a letter other than a-z, L a letter other than A-Z and C an English
// contraction ('s, 't, 're, 've, 'm, 'll, 'd, any case). The alternatives
// are tried in order with the backtracking a regex engine does.
func splitGPT4o(c []tokChar, fl []tokFlags, lo, hi int, emit func(int)) {
	get, flags := charWindow{c, fl, lo, hi}.accessors()
	isU := func(p int) bool { r := get(p); return flags(p)&fLetter != 0 && !(r >= 'a' && r <= 'z') }
	isL := func(p int) bool { r := get(p); return flags(p)&fLetter != 0 && !(r >= 'A' && r <= 'Z') }
	run := func(p int, in func(int) bool) int {
		n := 0
		for in(p + n) {
			n++
		}
		return n
	}
	contraction := func(p int) int {
		if get(p) != '\'' {
			return 0
		}
		n, nn := unicode.ToLower(get(p+1)), unicode.ToLower(get(p+2))
		if get(p+1) < 0 {
			return 0
		}
		switch {
		case get(p+1) < 128 && (n == 's' || n == 't' || n == 'm' || n == 'd'):
			return 2
		case get(p+2) >= 0 && get(p+1) < 128 && get(p+2) < 128 &&
			((n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l')):
			return 3
		}
		return 0
	}
	for pos := lo; pos < hi; {
		r, f := get(pos), flags(pos)
		var starts []int // candidate starts of the letter part: with the prefix, then without
		if r != '\r' && r != '\n' && f&(fLetter|fNumber) == 0 {
			starts = append(starts, pos+1)
		}
		starts = append(starts, pos)
		end := -1
		for _, p0 := range starts { // U*L+C?
			a := run(p0, isU)
			for i := a; i >= 0 && end < 0; i-- {
				if isL(p0 + i) {
					e := p0 + i + run(p0+i, isL)
					end = e + contraction(e)
				}
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			for _, p0 := range starts { // U+L*C?
				if a := run(p0, isU); a > 0 {
					e := p0 + a
					e += run(e, isL)
					end = e + contraction(e)
					break
				}
			}
		}
		if end < 0 && f&fNumber != 0 { // \p{N}{1,3}
			end = pos + min(3, run(pos, func(p int) bool { return flags(p)&fNumber != 0 }))
		}
		other := func(p int) bool { f := flags(p); return f&(fSpace|fLetter|fNumber) == 0 && f&fInRange != 0 }
		if end < 0 { // ' '?[^\s\p{L}\p{N}]+[\r\n/]*
			p0 := pos
			if r == ' ' && other(pos+1) {
				p0 = pos + 1
			}
			if other(p0) {
				e := p0 + run(p0, other)
				end = e + run(e, func(p int) bool { r := get(p); return r == '\r' || r == '\n' || r == '/' })
			}
		}
		if end < 0 {
			n, lastRN := 0, -1
			for flags(pos+n)&fSpace != 0 {
				if r2 := get(pos + n); r2 == '\r' || r2 == '\n' {
					lastRN = pos + n + 1
				}
				n++
			}
			switch {
			case lastRN >= 0:
				end = lastRN
			case n > 1 && get(pos+n) != -1:
				end = pos + n - 1
			case n > 0:
				end = pos + n
			default:
				end = pos + 1
			}
		}
		pos = end
		emit(pos)
	}
}

func punctOr(extra string) func(rune, tokFlags) bool {
	return func(r rune, f tokFlags) bool { return f&fPunct != 0 || strings.ContainsRune(extra, r) }
}

var isNumberClass = func(_ rune, f tokFlags) bool { return f&fNumber != 0 }

// preTokenizers maps tokenizer.ggml.pre to its preSplitter chain, whether the
// family adds BOS by default, and whether a word that is a whole token skips
// the merges (llama.cpp's ignore_merges).
type preTok struct {
	steps        []preSplitter
	addBOS       bool
	ignoreMerges bool
}

var (
	preDefault = preTok{steps: []preSplitter{splitRuns(punctOr("$+<=>^~|"), false), splitGPT2, splitRuns(isNumberClass, false), splitDigits3}}
	preGPT2    = preTok{steps: []preSplitter{splitGPT2}}
	preLlama3  = preTok{steps: []preSplitter{splitLlama3(3)}, addBOS: true, ignoreMerges: true}
	preLlama3L = preTok{steps: []preSplitter{splitLlama3(3)}} // dbrx, smaug, chatglm: llama3's regex only
	preQwen2   = preTok{steps: []preSplitter{splitLlama3(1)}}
	preSmolLM  = preTok{steps: []preSplitter{splitRuns(isNumberClass, true), splitGPT2}}
	preFalcon  = preTok{steps: []preSplitter{splitRuns(punctOr("$+<=>^~|`"), false), splitGPT2, splitDigits3}}
	preGPT4o   = preTok{steps: []preSplitter{splitGPT4o}}
)

var preTokenizers = map[string]preTok{
	"": preDefault, "default": preDefault,
	"gpt-2": preGPT2, "gpt2": preGPT2, "phi-2": preGPT2, "mpt": preGPT2, "olmo": preGPT2,
	"jais": preGPT2, "trillion": preGPT2, "roberta-bpe": preGPT2, "exaone4": preGPT2,
	"jina-es": preGPT2, "jina-de": preGPT2, "jina-v1-en": preGPT2, "jina-v2-es": preGPT2,
	"jina-v2-de": preGPT2, "jina-v2-code": preGPT2, "gigachat": preGPT2, "a.x-4.0": preGPT2,
	"llama3": preLlama3, "llama-v3": preLlama3, "llama-bpe": preLlama3, "falcon3": preLlama3,
	"falcon-h1": preLlama3, "pixtral": preLlama3, "midm-2.0": preLlama3, "lfm2": preLlama3,
	"dbrx": preLlama3L, "smaug-bpe": preLlama3L, "chatglm-bpe": preLlama3L, "glm4": preLlama3L,
	"qwen2": preQwen2, "deepseek-r1-qwen": preQwen2, "stablelm2": preQwen2, "megrez": preQwen2,
	"hunyuan":   preQwen2,
	"starcoder": preSmolLM, "refact": preSmolLM, "command-r": preSmolLM, "smollm": preSmolLM,
	"codeshell": preSmolLM, "exaone": preSmolLM, "minerva-7b": preSmolLM,
	"falcon": preFalcon,
	"gpt-4o": preGPT4o, "llama4": preGPT4o,
}

func preTokenizer(name string) (split func(string) []string, addBOS, ignoreMerges, ok bool) {
	p, ok := preTokenizers[name]
	if !ok {
		return nil, false, false, false
	}
	return func(s string) []string { return preSplit(s, p.steps...) }, p.addBOS, p.ignoreMerges, true
}

func knownPre() []string {
	var names []string
	for k := range preTokenizers {
		if k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// BPE merging.

type bpeSymbol struct {
	prev, next int
	text       string
}

type bpeBigram struct {
	left, right int
	text        string
	rank        int
}

type bpeQueue []bpeBigram

func (q bpeQueue) Len() int { return len(q) }
func (q bpeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].left < q[j].left
}
func (q bpeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bpeQueue) Push(x any)   { *q = append(*q, x.(bpeBigram)) }
func (q *bpeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// encodeBPE appends the tokens of raw text (no special tokens in it).
func (t *Tokenizer) encodeBPE(text string, out []int) []int {
	for _, word := range t.split(text) {
		var enc strings.Builder
		for i := 0; i < len(word); i++ {
			enc.WriteRune(t.byteToRune[word[i]])
		}
		w := enc.String()
		if t.ignoreMerges {
			if id, ok := t.index[w]; ok {
				out = append(out, id)
				continue
			}
		}
		var syms []bpeSymbol
		for _, r := range w {
			i := len(syms)
			syms = append(syms, bpeSymbol{prev: i - 1, next: i + 1, text: string(r)})
		}
		syms[len(syms)-1].next = -1
		var q bpeQueue
		add := func(l, r int) {
			if l < 0 || r < 0 {
				return
			}
			rank, ok := t.ranks[mergeKey{syms[l].text, syms[r].text}]
			if !ok {
				return
			}
			heap.Push(&q, bpeBigram{left: l, right: r, text: syms[l].text + syms[r].text, rank: rank})
		}
		for i := 1; i < len(syms); i++ {
			add(i-1, i)
		}
		for q.Len() > 0 {
			bg := heap.Pop(&q).(bpeBigram)
			l, r := &syms[bg.left], &syms[bg.right]
			if l.text == "" || r.text == "" || l.text+r.text != bg.text {
				continue // stale
			}
			l.text += r.text
			r.text = ""
			l.next = r.next
			if r.next >= 0 {
				syms[r.next].prev = bg.left
			}
			add(l.prev, bg.left)
			add(bg.left, l.next)
		}
		for i := 0; i != -1; i = syms[i].next {
			s := syms[i].text
			if id, ok := t.index[s]; ok {
				out = append(out, id)
				continue
			}
			for _, r := range s { // not a token: its bytes, one by one
				if id := t.byteTok[t.runeToByte[r]]; id >= 0 {
					out = append(out, id)
				} else if t.unk >= 0 {
					out = append(out, t.unk)
				}
			}
		}
	}
	return out
}
