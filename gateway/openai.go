package gateway

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

// The OpenAI request and response shapes this gateway speaks (the subset
// in docs/openai.md). Unknown request fields are ignored, as OpenAI's own
// clients send many; fields that would change the answer and are not
// supported (n > 1, echo, suffix, best_of > 1, tools) are refused with 400.

// apiRequest is the union of a completion and a chat completion request.
type apiRequest struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`   // completions: a string or a one-string array
	Messages            []chatMessage   `json:"messages"` // chat
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int64          `json:"top_k"` // extension (vLLM, llama.cpp)
	Seed                *int64          `json:"seed"`
	N                   *int64          `json:"n"`
	BestOf              *int64          `json:"best_of"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Logprobs    json.RawMessage `json:"logprobs"`     // completions: int; chat: bool
	TopLogprobs *int64          `json:"top_logprobs"` // chat
	Stop        json.RawMessage `json:"stop"`         // a string or up to 4 strings
	Echo        bool            `json:"echo"`
	Suffix      *string         `json:"suffix"`
	Tools       json.RawMessage `json:"tools"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or [{"type":"text","text":...}]
}

// Limits of a request's text fields.
const (
	maxStops      = 4
	maxStopLen    = 256
	maxMessages   = 256
	maxTopLogprob = 16 // task.MaxTopAlts
	// completions default to 16 tokens, as OpenAI's do; chat to the context
	// left, at most defaultChatTokens.
	defaultCompletionTokens = 16
	defaultChatTokens       = 512
)

// params is a request checked and turned into generation settings.
type params struct {
	chat        bool
	prompt      string
	maxTokens   int64 // 0: the default
	temperature float32
	topP        float32
	topK        uint32
	seed        *uint64
	stream      bool
	usageChunk  bool
	logprobs    bool
	topAlts     uint8
	stops       []string
}

// errInvalid is a 400 with the parameter at fault.
type errInvalid struct{ param, msg string }

func (e *errInvalid) Error() string { return e.param + ": " + e.msg }

func invalid(param, format string, args ...any) error {
	return &errInvalid{param, fmt.Sprintf(format, args...)}
}

// parseRequest decodes and checks a request body for the given endpoint.
func parseRequest(body []byte, chat bool, template chatTemplate) (*apiRequest, *params, error) {
	var r apiRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, invalid("body", "not a JSON request object: %v", err)
	}
	p := &params{chat: chat, stream: r.Stream, temperature: 1, topP: 1}
	if r.StreamOptions != nil {
		p.usageChunk = r.StreamOptions.IncludeUsage
	}
	if r.N != nil && *r.N != 1 {
		return nil, nil, invalid("n", "only n=1 is served (send n requests instead)")
	}
	if r.BestOf != nil && *r.BestOf != 1 {
		return nil, nil, invalid("best_of", "only best_of=1 is served")
	}
	if r.Echo {
		return nil, nil, invalid("echo", "echo is not supported")
	}
	if r.Suffix != nil && *r.Suffix != "" {
		return nil, nil, invalid("suffix", "suffix (insertion) is not supported")
	}
	if len(r.Tools) > 0 && string(r.Tools) != "null" && string(r.Tools) != "[]" {
		return nil, nil, invalid("tools", "tool calls are not supported")
	}
	if chat {
		if len(r.Messages) == 0 {
			return nil, nil, invalid("messages", "required: at least one message")
		}
		if len(r.Messages) > maxMessages {
			return nil, nil, invalid("messages", "%d messages, at most %d", len(r.Messages), maxMessages)
		}
		msgs := make([]Message, len(r.Messages))
		for i, m := range r.Messages {
			text, err := messageText(m.Content)
			if err != nil {
				return nil, nil, invalid(fmt.Sprintf("messages[%d].content", i), "%v", err)
			}
			switch m.Role {
			case "system", "developer":
				m.Role = "system"
			case "user", "assistant":
			default:
				return nil, nil, invalid(fmt.Sprintf("messages[%d].role", i), "%q: use system, developer, user or assistant", m.Role)
			}
			msgs[i] = Message{Role: m.Role, Content: text}
		}
		p.prompt, p.stops = template.Render(msgs)
	} else {
		s, err := promptText(r.Prompt)
		if err != nil {
			return nil, nil, invalid("prompt", "%v", err)
		}
		p.prompt = s
	}
	switch {
	case r.MaxCompletionTokens != nil:
		p.maxTokens = *r.MaxCompletionTokens
		if p.maxTokens < 1 {
			return nil, nil, invalid("max_completion_tokens", "must be at least 1")
		}
	case r.MaxTokens != nil:
		p.maxTokens = *r.MaxTokens
		if p.maxTokens < 1 {
			return nil, nil, invalid("max_tokens", "must be at least 1")
		}
	}
	if r.Temperature != nil {
		t := *r.Temperature
		if !(t >= 0 && t <= 2) {
			return nil, nil, invalid("temperature", "%v is outside [0, 2]", t)
		}
		p.temperature = float32(t)
	}
	if r.TopP != nil {
		t := *r.TopP
		if !(t > 0 && t <= 1) {
			return nil, nil, invalid("top_p", "%v is outside (0, 1]", t)
		}
		p.topP = float32(t)
	}
	if r.TopK != nil {
		if *r.TopK < 0 || *r.TopK > math.MaxInt32 {
			return nil, nil, invalid("top_k", "%d is out of range", *r.TopK)
		}
		p.topK = uint32(*r.TopK)
	}
	if r.Seed != nil {
		s := uint64(*r.Seed)
		p.seed = &s
	}
	if err := p.parseLogprobs(&r); err != nil {
		return nil, nil, err
	}
	stops, err := stopStrings(r.Stop)
	if err != nil {
		return nil, nil, invalid("stop", "%v", err)
	}
	p.stops = append(p.stops, stops...)
	return &r, p, nil
}

func (p *params) parseLogprobs(r *apiRequest) error {
	raw := strings.TrimSpace(string(r.Logprobs))
	if raw == "" || raw == "null" {
		if r.TopLogprobs != nil && *r.TopLogprobs > 0 && p.chat {
			return invalid("top_logprobs", "needs logprobs: true")
		}
		return nil
	}
	if p.chat {
		var b bool
		if err := json.Unmarshal(r.Logprobs, &b); err != nil {
			return invalid("logprobs", "a boolean for chat completions")
		}
		p.logprobs = b
		if r.TopLogprobs != nil {
			if *r.TopLogprobs < 0 || *r.TopLogprobs > maxTopLogprob {
				return invalid("top_logprobs", "%d is outside 0..%d", *r.TopLogprobs, maxTopLogprob)
			}
			if !b && *r.TopLogprobs > 0 {
				return invalid("top_logprobs", "needs logprobs: true")
			}
			p.topAlts = uint8(*r.TopLogprobs)
		}
		return nil
	}
	var n int64
	if err := json.Unmarshal(r.Logprobs, &n); err != nil {
		return invalid("logprobs", "an integer (the alternatives wanted per token) for completions")
	}
	if n < 0 || n > maxTopLogprob {
		return invalid("logprobs", "%d is outside 0..%d", n, maxTopLogprob)
	}
	p.logprobs, p.topAlts = true, uint8(n)
	return nil
}

func promptText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New("required: a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", errors.New("empty")
		}
		return s, nil
	}
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return "", errors.New("a string, or an array of one string (token-id prompts are not supported)")
	}
	if len(ss) != 1 || ss[0] == "" {
		return "", fmt.Errorf("an array of %d strings; send one non-empty prompt per request", len(ss))
	}
	return ss[0], nil
}

func messageText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("part type %q: only text is supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func stopStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ss []string
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		ss = []string{s}
	} else if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, errors.New("a string or an array of strings")
	}
	if len(ss) > maxStops {
		return nil, fmt.Errorf("%d stop strings, at most %d", len(ss), maxStops)
	}
	out := ss[:0]
	for _, s := range ss {
		if len(s) > maxStopLen {
			return nil, fmt.Errorf("a stop string of %d bytes, at most %d", len(s), maxStopLen)
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// Message is one chat message after parsing: role system, user or
// assistant.
type Message struct{ Role, Content string }

// chatTemplate renders chat messages into a prompt.
type chatTemplate int

const (
	// templatePlain: role-prefixed lines, for models without a chat
	// template (or with one this gateway does not interpret):
	//
	//	System: <content>
	//	User: <content>
	//	Assistant: <content>
	//	Assistant:
	//
	// with stop strings "\nUser:" and "\nSystem:" so the model does not
	// write the next turn itself.
	templatePlain chatTemplate = iota
	// templateChatML: "<|im_start|>role\ncontent<|im_end|>\n" per message,
	// then "<|im_start|>assistant\n"; stop "<|im_end|>".
	templateChatML
)

// pickTemplate chooses ChatML when the model's GGUF chat template
// (tokenizer.chat_template) is ChatML and its tokenizer has the two marker
// tokens as single tokens; role-prefixed lines otherwise. The Jinja
// template itself is never run.
func pickTemplate(ggufTemplate string, tok *model.Tokenizer) chatTemplate {
	if !strings.Contains(ggufTemplate, "<|im_start|>") || !strings.Contains(ggufTemplate, "<|im_end|>") || tok == nil {
		return templatePlain
	}
	for _, m := range []string{"<|im_start|>", "<|im_end|>"} {
		if ids := tok.Encode(m, false); len(ids) != 1 {
			return templatePlain
		}
	}
	return templateChatML
}

func (t chatTemplate) String() string {
	if t == templateChatML {
		return "chatml"
	}
	return "plain"
}

// Render returns the prompt for msgs and the stop strings that end the
// assistant's turn.
func (t chatTemplate) Render(msgs []Message) (string, []string) {
	var b strings.Builder
	if t == templateChatML {
		for _, m := range msgs {
			fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		}
		b.WriteString("<|im_start|>assistant\n")
		return b.String(), []string{"<|im_end|>"}
	}
	for _, m := range msgs {
		b.WriteString(strings.ToUpper(m.Role[:1]) + m.Role[1:])
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteString("\n")
	}
	b.WriteString("Assistant:")
	return b.String(), []string{"\nUser:", "\nSystem:"}
}

// stopper holds back text that may be the start of a stop string, and cuts
// the output at the first stop string.
type stopper struct {
	stops   []string
	pending string
	done    bool
}

// push adds s and returns what may be emitted now; stopped reports that a
// stop string was found (everything after it is dropped, and push returns
// "" from then on).
func (s *stopper) push(text string) (out string, stopped bool) {
	if s.done {
		return "", true
	}
	s.pending += text
	cut := -1
	for _, st := range s.stops {
		if i := strings.Index(s.pending, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out, s.pending, s.done = s.pending[:cut], "", true
		return out, true
	}
	// keep the longest suffix that is a proper prefix of a stop string
	keep := 0
	for _, st := range s.stops {
		for n := min(len(st)-1, len(s.pending)); n > keep; n-- {
			if strings.HasSuffix(s.pending, st[:n]) {
				keep = n
				break
			}
		}
	}
	out = s.pending[:len(s.pending)-keep]
	s.pending = s.pending[len(s.pending)-keep:]
	return out, false
}

// flush returns what is held back at the end of the text.
func (s *stopper) flush() string {
	out := s.pending
	s.pending = ""
	return out
}

// detok turns a growing list of generated ids into text deltas. It
// re-decodes the whole continuation each time (so SentencePiece byte
// tokens and leading-space rules come out as Decode gives them) and holds
// back a trailing incomplete UTF-8 sequence.
type detok struct {
	tok      *model.Tokenizer
	ids      []int
	out      string // text emitted so far
	trimLead bool   // chat: drop whitespace before the first text
}

// push adds id and returns the new text. End-of-generation ids add
// nothing.
func (d *detok) push(id int) string {
	if d.tok.IsEOG(id) {
		return ""
	}
	d.ids = append(d.ids, id)
	return d.delta(false)
}

// flush returns what was held back.
func (d *detok) flush() string { return d.delta(true) }

func (d *detok) delta(final bool) string {
	full := d.tok.DecodeContinuation(d.ids)
	if d.trimLead {
		full = strings.TrimLeft(full, " \t\n")
	}
	if !strings.HasPrefix(full, d.out) {
		return "" // the decoder revised earlier text; keep what was sent
	}
	s := full[len(d.out):]
	if !final {
		for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
			if utf8.RuneStart(s[i]) {
				if !utf8.FullRuneInString(s[i:]) {
					s = s[:i]
				}
				break
			}
		}
	}
	d.out += s
	return s
}

// Provenance is the "taobox" extension field of every response: which
// miner answered, and its signed final frame, so the caller can check
// (with the validator's request envelope) exactly what the miner sent.
type Provenance struct {
	MinerUID       uint16          `json:"miner_uid"`
	MinerHotkey    types.AccountID `json:"miner_hotkey"`
	Validator      types.AccountID `json:"validator"`
	RequestHash    string          `json:"request_hash"`          // hex SHA-256 of the task envelope
	ResultHash     string          `json:"result_hash"`           // hex, chains every token frame
	FinalSignature string          `json:"final_signature"`       // hex ed25519 by the miner hotkey
	BatchProof     string          `json:"batch_proof,omitempty"` // hex; set when the signature covers a batch of final frames (docs/task-protocol.md §8)
	Tokens         uint32          `json:"tokens"`                // token frames the miner sent
	Attempts       int             `json:"attempts"`              // miners tried, this one included
}

// Verify checks FinalSignature: that MinerHotkey signed the final frame
// (request hash, token count, result hash) this response names, alone or
// in the batch BatchProof places it in. It cannot
// check the result hash against the text (that needs the token frames); it
// proves which miner answered and binds it to what it answered.
func (p *Provenance) Verify() error {
	var req, res [32]byte
	var sig [64]byte
	for _, f := range []struct {
		dst  []byte
		hex  string
		name string
	}{{req[:], p.RequestHash, "request_hash"}, {res[:], p.ResultHash, "result_hash"}, {sig[:], p.FinalSignature, "final_signature"}} {
		if n, err := hex.Decode(f.dst, []byte(f.hex)); err != nil || n != len(f.dst) || len(f.hex) != 2*len(f.dst) {
			return fmt.Errorf("gateway: provenance: %s is not %d hex bytes", f.name, len(f.dst))
		}
	}
	pb, err := hex.DecodeString(p.BatchProof)
	if err != nil {
		return fmt.Errorf("gateway: provenance: batch_proof is not hex")
	}
	proof, err := task.DecodeProof(pb)
	if err != nil {
		return fmt.Errorf("gateway: provenance: %w", err)
	}
	msg, err := task.SignedBytes(task.FinalSigningBytes(req, p.Tokens, res), &proof)
	if err != nil {
		return fmt.Errorf("gateway: provenance: %w", err)
	}
	if !ed25519.Verify(p.MinerHotkey[:], msg, sig[:]) {
		return fmt.Errorf("gateway: provenance: the final frame is not signed by miner %s", types.SS58Encode(p.MinerHotkey))
	}
	return nil
}

// Usage is OpenAI's token accounting.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// CompletionLogprobs is the legacy completions logprobs object.
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// ChatLogprob is one entry of a chat choice's logprobs.content.
type ChatLogprob struct {
	Token       string        `json:"token"`
	Logprob     float64       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []ChatTopProb `json:"top_logprobs"`
}

// ChatTopProb is one alternative of a ChatLogprob.
type ChatTopProb struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// ChatLogprobs is a chat choice's logprobs object.
type ChatLogprobs struct {
	Content []ChatLogprob `json:"content"`
}

// CompletionChoice is one choice of a completion (or one chunk's delta).
type CompletionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// ChatDelta is a streamed chat message fragment; ChatMessage a whole one.
type ChatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// ChatMessage is the assistant's message in a chat completion.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatChoice is one choice of a chat completion or chunk.
type ChatChoice struct {
	Index        int           `json:"index"`
	Message      *ChatMessage  `json:"message,omitempty"`
	Delta        *ChatDelta    `json:"delta,omitempty"`
	Logprobs     *ChatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// Response is a completion, chat completion, or one streamed chunk of
// either; Choices holds []CompletionChoice or []ChatChoice.
type Response struct {
	ID      string      `json:"id"`
	Object  string      `json:"object"`
	Created int64       `json:"created"`
	Model   string      `json:"model"`
	Choices any         `json:"choices"`
	Usage   *Usage      `json:"usage,omitempty"`
	Taobox  *Provenance `json:"taobox,omitempty"`
}

// APIError is OpenAI's error object.
type APIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// ErrorBody is the JSON of every error response.
type ErrorBody struct {
	Error APIError `json:"error"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	SHA256  string `json:"sha256"` // extension: the GGUF file's hash, as tasks name it
	Netuid  uint16 `json:"netuid"` // extension
	Context int    `json:"context_length"`
}

// ModelList is GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}
