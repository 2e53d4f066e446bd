package model

import (
	"container/heap"
	"unicode/utf8"
)

// SentencePiece BPE, as llama.cpp's llm_tokenizer_spm_session: the text is
// cut into UTF-8 characters (an invalid byte is a character of its own),
// then the adjacent pair whose concatenation is a token with the highest
// score merges first (the leftmost on ties), until no pair is a token.
// Symbols that are not tokens are split back along the merges that built
// them, and what is left falls back to byte tokens.

type spmSymbol struct {
	prev, next int
	start, n   int // byte range in the text; n == 0 once merged away
}

type spmBigram struct {
	left, right int
	score       float32
	size        int
}

type spmQueue []spmBigram

func (q spmQueue) Len() int { return len(q) }
func (q spmQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q spmQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *spmQueue) Push(x any)   { *q = append(*q, x.(spmBigram)) }
func (q *spmQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// utf8Len is llama.cpp's unicode_len_utf8: the sequence length a lead byte
// announces (1 for continuation bytes).
func utf8Len(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

type spmSession struct {
	t        *Tokenizer
	text     string
	symbols  []spmSymbol
	queue    spmQueue
	revMerge map[string][2]int
}

// encodeSPM appends the tokens of text (spaces already escaped to "▁").
func (t *Tokenizer) encodeSPM(text string, out []int) []int {
	if text == "" {
		return out
	}
	s := &spmSession{t: t, text: text, revMerge: map[string][2]int{}}
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		if r, size := utf8.DecodeRuneInString(text[off:]); r == utf8.RuneError && size == 1 {
			n = 1 // invalid UTF-8: one byte per symbol (llama.cpp takes what the lead byte announces)
		}
		i := len(s.symbols)
		next := i + 1
		if off+n == len(text) {
			next = -1
		}
		s.symbols = append(s.symbols, spmSymbol{prev: i - 1, next: next, start: off, n: n})
		off += n
	}
	for i := 1; i < len(s.symbols); i++ {
		s.tryAddBigram(i-1, i)
	}
	for s.queue.Len() > 0 {
		bg := heap.Pop(&s.queue).(spmBigram)
		l, r := &s.symbols[bg.left], &s.symbols[bg.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != bg.size {
			continue // stale
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			s.symbols[r.next].prev = bg.left
		}
		s.tryAddBigram(l.prev, bg.left)
		s.tryAddBigram(bg.left, l.next)
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		out = s.resegment(i, out)
	}
	return out
}

func (s *spmSession) tryAddBigram(left, right int) {
	if left == -1 || right == -1 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	text := s.text[l.start : l.start+l.n+r.n]
	id, ok := s.t.index[text]
	if !ok {
		return
	}
	heap.Push(&s.queue, spmBigram{left: left, right: right, score: s.t.scores[id], size: len(text)})
	s.revMerge[text] = [2]int{left, right}
}

func (s *spmSession) resegment(i int, out []int) []int {
	sym := s.symbols[i]
	text := s.text[sym.start : sym.start+sym.n]
	if id, ok := s.t.index[text]; ok {
		return append(out, id)
	}
	if p, ok := s.revMerge[text]; ok {
		out = s.resegment(p[0], out)
		return s.resegment(p[1], out)
	}
	for j := 0; j < len(text); j++ {
		if s.t.byteTok[text[j]] < 0 {
			// No byte token: the whole character is unknown (llama.cpp
			// aborts here).
			if s.t.unk >= 0 {
				out = append(out, s.t.unk)
			}
			return out
		}
	}
	for j := 0; j < len(text); j++ {
		out = append(out, s.t.byteTok[text[j]])
	}
	return out
}
