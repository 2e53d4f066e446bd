package gateway

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"taobox/chain/state"
	"taobox/validator"
)

func TestStopper(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stops   []string
		pieces  []string
		out     []string // what each push emits
		stopped bool
		tail    string
	}{
		{"none", nil, []string{"a", "b"}, []string{"a", "b"}, false, ""},
		{"whole stop in one piece", []string{"\nUser:"}, []string{"hi\nUser: x"}, []string{"hi"}, true, ""},
		{"stop split over pieces", []string{"\nUser:"}, []string{"hi\n", "Us", "er:", "more"}, []string{"hi", "", "", ""}, true, ""},
		{"false start released", []string{"\nUser:"}, []string{"a\nU", "p"}, []string{"a", "\nUp"}, false, ""},
		{"held at the end", []string{"END"}, []string{"abcE", "N"}, []string{"abc", ""}, false, "EN"},
		{"earliest of two stops", []string{"b", "a"}, []string{"xab"}, []string{"x"}, true, ""},
		{"stop at the start", []string{"x"}, []string{"xy"}, []string{""}, true, ""},
	} {
		s := stopper{stops: tc.stops}
		var got []string
		var stopped bool
		for _, p := range tc.pieces {
			o, st := s.push(p)
			got = append(got, o)
			stopped = st
		}
		if !slices.Equal(got, tc.out) || stopped != tc.stopped || s.flush() != tc.tail {
			t.Errorf("%s: %q stopped=%v, want %q %v tail %q", tc.name, got, stopped, tc.out, tc.stopped, tc.tail)
		}
	}
}

func TestTemplates(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}
	p, stops := templatePlain.Render(msgs)
	if want := "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:"; p != want || !slices.Equal(stops, []string{"\nUser:", "\nSystem:"}) {
		t.Fatalf("plain %q %q", p, stops)
	}
	p, stops = templateChatML.Render(msgs[:2])
	if want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"; p != want || !slices.Equal(stops, []string{"<|im_end|>"}) {
		t.Fatalf("chatml %q %q", p, stops)
	}
	_, tok := loadTiny(t)
	chatml := "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
	if got := pickTemplate(chatml, tok); got != templatePlain {
		t.Fatal("ChatML picked for a tokenizer without its marker tokens")
	}
	if got := pickTemplate("", tok); got != templatePlain {
		t.Fatal("no template: plain expected")
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chat  bool
		body  string
		param string // "" for success
		check func(*params) bool
	}{
		{"minimal completion", false, `{"prompt":"hi"}`, "", func(p *params) bool {
			return p.prompt == "hi" && p.temperature == 1 && p.topP == 1 && p.maxTokens == 0 && !p.stream && p.seed == nil
		}},
		{"prompt array", false, `{"prompt":["hi"],"max_tokens":5,"seed":-1,"temperature":0,"top_p":0.5,"top_k":3,"stream":true}`, "", func(p *params) bool {
			return p.prompt == "hi" && p.maxTokens == 5 && *p.seed == ^uint64(0) && p.temperature == 0 && p.topP == 0.5 && p.topK == 3 && p.stream
		}},
		{"logprobs int", false, `{"prompt":"hi","logprobs":3}`, "", func(p *params) bool { return p.logprobs && p.topAlts == 3 }},
		{"logprobs 0", false, `{"prompt":"hi","logprobs":0}`, "", func(p *params) bool { return p.logprobs && p.topAlts == 0 }},
		{"stop string", false, `{"prompt":"hi","stop":"\n"}`, "", func(p *params) bool { return slices.Equal(p.stops, []string{"\n"}) }},
		{"chat", true, `{"messages":[{"role":"developer","content":"x"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"logprobs":true,"top_logprobs":2,"max_completion_tokens":9,"stop":["Z"]}`, "", func(p *params) bool {
			return p.prompt == "System: x\nUser: ab\nAssistant:" && p.logprobs && p.topAlts == 2 && p.maxTokens == 9 && slices.Equal(p.stops, []string{"\nUser:", "\nSystem:", "Z"})
		}},
		{"not json", false, `hello`, "body", nil},
		{"no prompt", false, `{}`, "prompt", nil},
		{"empty prompt", false, `{"prompt":""}`, "prompt", nil},
		{"token prompt", false, `{"prompt":[1,2,3]}`, "prompt", nil},
		{"two prompts", false, `{"prompt":["a","b"]}`, "prompt", nil},
		{"n=2", false, `{"prompt":"a","n":2}`, "n", nil},
		{"best_of", false, `{"prompt":"a","best_of":3}`, "best_of", nil},
		{"echo", false, `{"prompt":"a","echo":true}`, "echo", nil},
		{"suffix", false, `{"prompt":"a","suffix":"z"}`, "suffix", nil},
		{"max_tokens 0", false, `{"prompt":"a","max_tokens":0}`, "max_tokens", nil},
		{"temperature 3", false, `{"prompt":"a","temperature":3}`, "temperature", nil},
		{"top_p 0", false, `{"prompt":"a","top_p":0}`, "top_p", nil},
		{"top_k -1", false, `{"prompt":"a","top_k":-1}`, "top_k", nil},
		{"logprobs 17", false, `{"prompt":"a","logprobs":17}`, "logprobs", nil},
		{"logprobs bool on completions", false, `{"prompt":"a","logprobs":true}`, "logprobs", nil},
		{"five stops", false, `{"prompt":"a","stop":["1","2","3","4","5"]}`, "stop", nil},
		{"no messages", true, `{"messages":[]}`, "messages", nil},
		{"tool role", true, `{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].role", nil},
		{"image part", true, `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "messages[0].content", nil},
		{"tools", true, `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}`, "tools", nil},
		{"top_logprobs without logprobs", true, `{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}`, "top_logprobs", nil},
		{"logprobs int on chat", true, `{"messages":[{"role":"user","content":"x"}],"logprobs":2}`, "logprobs", nil},
	} {
		_, p, err := parseRequest([]byte(tc.body), tc.chat, templatePlain)
		var ie *errInvalid
		switch {
		case tc.param == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.param == "" && !tc.check(p):
			t.Errorf("%s: %+v", tc.name, p)
		case tc.param != "" && (!errors.As(err, &ie) || ie.param != tc.param):
			t.Errorf("%s: %v, want an error on %q", tc.name, err, tc.param)
		}
	}
}

// FuzzParseRequest: any body gives a request or a 400 naming a parameter,
// never a panic, and accepted settings are in range.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"prompt":"hi","max_tokens":5,"logprobs":2,"stop":["a"]}`), false)
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":3}`), true)
	f.Add([]byte(`{"prompt":[""],"temperature":-0}`), false)
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		_, p, err := parseRequest(body, chat, templatePlain)
		if err != nil {
			var ie *errInvalid
			if !errors.As(err, &ie) || ie.param == "" {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if p.prompt == "" && !chat || p.temperature < 0 || p.temperature > 2 || p.topP <= 0 || p.topP > 1 || p.topAlts > maxTopLogprob || p.maxTokens < 0 || len(p.stops) > maxStops+2 {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func TestDetokHoldsPartialRunes(t *testing.T) {
	_, tok := loadTiny(t)
	ids := tok.Encode(" héllo wörld ✓", false)
	d := detok{tok: tok}
	var got strings.Builder
	for _, id := range ids {
		s := d.push(id)
		if !utf8Valid(s) {
			t.Fatalf("delta %q is not valid UTF-8", s)
		}
		got.WriteString(s)
	}
	got.WriteString(d.flush())
	if got.String() != tok.DecodeContinuation(ids) {
		t.Fatalf("deltas %q, decode %q", got.String(), tok.DecodeContinuation(ids))
	}
	if d.push(tok.EOS()) != "" {
		t.Fatal("end of sequence produced text")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestRank(t *testing.T) {
	mg := &state.Metagraph{}
	add := func(uid uint16, k int, host string, port uint16) {
		n := state.NeuronInfo{UID: uid}
		n.Hotkey = idN(k)
		n.Axon = state.Axon{Host: host, Port: port}
		mg.Neurons = append(mg.Neurons, n)
	}
	add(0, 0, "10.0.0.1", 1)  // self
	add(1, 1, "10.0.0.2", 2)  // score .5
	add(2, 2, "10.0.0.3", 3)  // score .9
	add(3, 3, "", 0)          // not serving
	add(4, 4, "10.0.0.5", 5)  // score 0
	add(5, 5, "10.0.0.6", 6)  // not scored
	add(6, 16, "10.0.0.7", 7) // hotkey replaced since scoring
	add(7, 7, "::1", 8)       // score .5, after uid 1
	scores := []validator.Record{
		{UID: 0, Hotkey: idN(0), Score: 1}, {UID: 1, Hotkey: idN(1), Score: .5}, {UID: 2, Hotkey: idN(2), Score: .9},
		{UID: 3, Hotkey: idN(3), Score: .7}, {UID: 4, Hotkey: idN(4)}, {UID: 6, Hotkey: idN(6), Score: .8}, {UID: 7, Hotkey: idN(7), Score: .5},
	}
	got := Rank(mg, scores, idN(0))
	var uids []uint16
	for _, c := range got {
		uids = append(uids, c.UID)
	}
	if !slices.Equal(uids, []uint16{2, 1, 7}) || got[0].Addr != "10.0.0.3:3" || got[2].Addr != "[::1]:8" || got[0].Hotkey != idN(2) {
		t.Fatalf("ranked %+v", got)
	}
}

func TestReadStream(t *testing.T) {
	for _, tc := range []struct {
		name, in, text, err string
	}{
		{"ok", "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", "ab", ""},
		{"chat", ": comment\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n", "hi", ""},
		{"error event", "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"error\":{\"message\":\"m\",\"code\":\"miner_failed\"}}\n\n", "a", "miner_failed"},
		{"no done", "data: {\"choices\":[{\"text\":\"a\"}]}\n\n", "", "without [DONE]"},
		{"no finish", "data: [DONE]\n", "", "finish reason"},
		{"not json", "data: {oops\n", "", "bad event"},
		{"line too long", "data: " + strings.Repeat("x", maxEventSize+1) + "\n", "", "reading the stream"},
	} {
		res, err := ReadStream(strings.NewReader(tc.in), nil)
		switch {
		case tc.err == "" && err != nil, tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.text != "" && (res == nil || res.Text != tc.text):
			t.Errorf("%s: %+v, want text %q", tc.name, res, tc.text)
		}
	}
}

// FuzzReadStream: whatever an endpoint sends, the reader returns a result
// or an error, and the text it reports is what it passed to onText.
func FuzzReadStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":\"stop\"}],\"taobox\":{\"miner_uid\":3}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"error\":{\"message\":\"m\"}}\n"))
	f.Add([]byte("data: [DONE]"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var seen strings.Builder
		res, err := ReadStream(bytes.NewReader(in), func(s string) { seen.WriteString(s) })
		if err == nil && (res == nil || res.FinishReason == "") {
			t.Fatalf("success without a finish reason: %+v", res)
		}
		if res != nil && res.Text != seen.String() {
			t.Fatalf("text %q, passed on %q", res.Text, seen.String())
		}
	})
}
