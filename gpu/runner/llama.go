package runner

// Inference over the runner: the llama ops.
//
//	llama.load     request: the GGUF file's path (UTF-8), read by the runner
//	               response: a UTF-8 description of the model now loaded
//	llama.forward  request: u32 token, u32 position
//	               response: u32 n, n float32 logits (IEEE bits, LE)
//	llama.generate request: u32 n (tokens to generate), u32 count, count × u32
//	               prompt tokens; response: u32 count, count × u32 tokens,
//	               count × f64 log-probs (IEEE bits, LE), greedy from
//	               position 0 (gpu.Llama.Generate)
//	llama.score    request: u32 from, u32 flags (bit 0: ranks), f64 margin,
//	               u32 nq, nq × u32 spot positions, u32 count, count × u32
//	               ids; response: u32 n, n × f64 log-probs, u32 na, na ×
//	               u32 counts ahead (na = n with ranks, else 0), u32 nd,
//	               u32 vocab, nd × vocab × f64 log-softmax: the validator's
//	               teacher-forced pass (model.AccelScorer; gpu.Llama.Score)
//	llama.sample   request: u32 pos, u32 count, count × u32 tokens, f64
//	               temperature, u32 top-k, f64 top-p, u64 seed, u64 draws,
//	               u32 alts; response: u32 id, f64 log-prob, u64 draws, u32
//	               n, n × (u32 id, f64 log-prob): the tokens fed, then one
//	               draw with the miner's sampler (model.AccelSampler)
//
// One model per runner: a load replaces the previous one. Forward extends
// the KV cache as model.Model.Forward does (positions below pos are reused).
// Generate is the op to use for serving: a whole answer in one round trip,
// 12 bytes per token back, where forward returns every logit (0.5 MB per
// token for a 128k vocabulary).

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"taobox/model"
)

// EncodeForward is llama.forward's request.
func EncodeForward(buf []byte, token, pos int) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(token))
	return binary.LittleEndian.AppendUint32(buf, uint32(pos))
}

// DecodeForward reads llama.forward's request.
func DecodeForward(p []byte) (token, pos int, err error) {
	if len(p) != 8 {
		return 0, 0, fmt.Errorf("%w: llama.forward request of %d bytes, want 8", ErrBadPayload, len(p))
	}
	return int(binary.LittleEndian.Uint32(p)), int(binary.LittleEndian.Uint32(p[4:])), nil
}

// EncodeLogits appends llama.forward's response.
func EncodeLogits(buf []byte, logits []float32) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(logits)))
	if littleEndian && len(logits) > 0 {
		return append(buf, unsafe.Slice((*byte)(unsafe.Pointer(&logits[0])), 4*len(logits))...)
	}
	for _, v := range logits {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	return buf
}

// DecodeLogits reads llama.forward's response into fresh memory.
func DecodeLogits(p []byte) ([]float32, error) { return AppendLogits(nil, p) }

// AppendLogits reads llama.forward's response, appending the logits to
// dst (pass dst[:0] to reuse its memory).
func AppendLogits(dst []float32, p []byte) ([]float32, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: llama.forward response of %d bytes", ErrBadPayload, len(p))
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(len(p)-4) != 4*uint64(n) {
		return nil, fmt.Errorf("%w: %d logits in %d bytes", ErrBadPayload, n, len(p)-4)
	}
	dst = slices.Grow(dst, int(n))
	vs := dst[len(dst) : len(dst)+int(n)]
	dst = dst[:len(dst)+int(n)]
	if littleEndian && n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), 4*len(vs)), p[4:])
		return dst, nil
	}
	for i := range vs {
		vs[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4+4*i:]))
	}
	return dst, nil
}

// LlamaLoad has the runner load the GGUF file at path (a path on the
// runner's machine: the same one) onto its GPU.
func (c *Client) LlamaLoad(ctx context.Context, path string) (string, error) {
	var s string
	err := c.call(ctx, OpLlamaLoad, func(b []byte) []byte { return append(b, path...) }, func(p []byte) error {
		s = string(p)
		return nil
	})
	return s, err
}

// LlamaForward runs one token at position pos on the runner's model and
// returns the logits in fresh memory.
func (c *Client) LlamaForward(ctx context.Context, token, pos int) ([]float32, error) {
	return c.LlamaForwardInto(ctx, nil, token, pos)
}

// LlamaForwardInto is LlamaForward returning the logits in dst's memory
// when it is large enough.
func (c *Client) LlamaForwardInto(ctx context.Context, dst []float32, token, pos int) ([]float32, error) {
	var logits []float32
	err := c.call(ctx, OpLlamaForward, func(b []byte) []byte { return EncodeForward(b, token, pos) }, func(p []byte) error {
		var err error
		logits, err = AppendLogits(dst[:0], p)
		return err
	})
	return logits, err
}

// MaxGenerate bounds llama.generate's prompt and output lengths.
const MaxGenerate = 1 << 20

// EncodeGenerate is llama.generate's request.
func EncodeGenerate(buf []byte, prompt []int, n int) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(prompt)))
	for _, t := range prompt {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	return buf
}

// DecodeGenerate reads llama.generate's request.
func DecodeGenerate(p []byte) (prompt []int, n int, err error) {
	if len(p) < 8 {
		return nil, 0, fmt.Errorf("%w: llama.generate request of %d bytes", ErrBadPayload, len(p))
	}
	n = int(binary.LittleEndian.Uint32(p))
	count := binary.LittleEndian.Uint32(p[4:])
	if uint64(len(p)-8) != 4*uint64(count) || n > MaxGenerate {
		return nil, 0, fmt.Errorf("%w: llama.generate request: %d prompt tokens in %d bytes, n = %d", ErrBadPayload, count, len(p)-8, n)
	}
	prompt = make([]int, count)
	for i := range prompt {
		prompt[i] = int(binary.LittleEndian.Uint32(p[8+4*i:]))
	}
	return prompt, n, nil
}

// EncodeGenerated appends llama.generate's response.
func EncodeGenerated(buf []byte, tokens []int, logprobs []float64) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(tokens)))
	for _, t := range tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	for i := range tokens {
		var lp float64
		if i < len(logprobs) {
			lp = logprobs[i]
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(lp))
	}
	return buf
}

// DecodeGenerated reads llama.generate's response.
func DecodeGenerated(p []byte) (tokens []int, logprobs []float64, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: llama.generate response of %d bytes", ErrBadPayload, len(p))
	}
	count := binary.LittleEndian.Uint32(p)
	if uint64(len(p)-4) != 12*uint64(count) {
		return nil, nil, fmt.Errorf("%w: %d generated tokens in %d bytes", ErrBadPayload, count, len(p)-4)
	}
	tokens, logprobs = make([]int, count), make([]float64, count)
	for i := range tokens {
		tokens[i] = int(binary.LittleEndian.Uint32(p[4+4*i:]))
		logprobs[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[4+4*int(count)+8*i:]))
	}
	return tokens, logprobs, nil
}

// ScoreRequest is llama.score's request: model.AccelScorer.Score's
// arguments.
type ScoreRequest struct {
	IDs    []int
	From   int
	Spots  []int
	Ranks  bool
	Margin float64
}

// Scored is llama.score's response.
type Scored struct {
	LogProbs []float64
	Ahead    []int       // nil without ranks
	Dists    [][]float64 // one per spot, Vocab values each
	Vocab    int
}

// EncodeScore is llama.score's request.
func EncodeScore(buf []byte, r ScoreRequest) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.From))
	var flags uint32
	if r.Ranks {
		flags = 1
	}
	buf = binary.LittleEndian.AppendUint32(buf, flags)
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(r.Margin))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.Spots)))
	for _, q := range r.Spots {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(q))
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.IDs)))
	for _, t := range r.IDs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	return buf
}

// DecodeScore reads llama.score's request. It checks the framing (counts
// within MaxGenerate, unknown flags refused), not the values against a
// model (model.CheckScore does).
func DecodeScore(p []byte) (ScoreRequest, error) {
	var r ScoreRequest
	if len(p) < 20 {
		return r, fmt.Errorf("%w: llama.score request of %d bytes", ErrBadPayload, len(p))
	}
	r.From = int(binary.LittleEndian.Uint32(p))
	flags := binary.LittleEndian.Uint32(p[4:])
	if flags&^1 != 0 {
		return r, fmt.Errorf("%w: llama.score request: unknown flags %#x", ErrBadPayload, flags)
	}
	r.Ranks = flags&1 != 0
	r.Margin = math.Float64frombits(binary.LittleEndian.Uint64(p[8:]))
	nq := uint64(binary.LittleEndian.Uint32(p[16:]))
	if nq > MaxGenerate || uint64(len(p)) < 24+4*nq {
		return r, fmt.Errorf("%w: llama.score request: %d spots in %d bytes", ErrBadPayload, nq, len(p))
	}
	r.Spots = make([]int, nq)
	for i := range r.Spots {
		r.Spots[i] = int(binary.LittleEndian.Uint32(p[20+4*i:]))
	}
	rest := p[20+4*nq:]
	count := uint64(binary.LittleEndian.Uint32(rest))
	if count > MaxGenerate || uint64(len(rest)-4) != 4*count {
		return r, fmt.Errorf("%w: llama.score request: %d ids in %d bytes", ErrBadPayload, count, len(rest)-4)
	}
	r.IDs = make([]int, count)
	for i := range r.IDs {
		r.IDs[i] = int(binary.LittleEndian.Uint32(rest[4+4*i:]))
	}
	return r, nil
}

// EncodeScored appends llama.score's response; every distribution must
// have s.Vocab values.
func EncodeScored(buf []byte, s Scored) []byte {
	vocab := s.Vocab
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.LogProbs)))
	for _, v := range s.LogProbs {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.Ahead)))
	for _, a := range s.Ahead {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(a))
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.Dists)))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(vocab))
	for _, d := range s.Dists {
		for _, v := range d[:vocab] {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
	}
	return buf
}

// DecodeScored reads llama.score's response.
func DecodeScored(p []byte) (Scored, error) {
	var s Scored
	bad := func(what string) (Scored, error) {
		return Scored{}, fmt.Errorf("%w: llama.score response: %s in %d bytes", ErrBadPayload, what, len(p))
	}
	rest := p
	u32 := func() (uint64, bool) {
		if len(rest) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		return uint64(v), true
	}
	n, ok := u32()
	if !ok || n > MaxGenerate || uint64(len(rest)) < 8*n {
		return bad("log-probs")
	}
	s.LogProbs = make([]float64, n)
	for i := range s.LogProbs {
		s.LogProbs[i] = math.Float64frombits(binary.LittleEndian.Uint64(rest[8*i:]))
	}
	rest = rest[8*n:]
	na, ok := u32()
	if !ok || na != 0 && na != n || uint64(len(rest)) < 4*na {
		return bad("counts ahead")
	}
	if na > 0 {
		s.Ahead = make([]int, na)
		for i := range s.Ahead {
			s.Ahead[i] = int(binary.LittleEndian.Uint32(rest[4*i:]))
		}
	}
	rest = rest[4*na:]
	nd, ok1 := u32()
	vocab, ok2 := u32()
	// nd > 0 needs vocab > 0, so that every distribution's header is paid
	// for by 8·vocab bytes of payload (no allocation beyond the payload).
	if !ok1 || !ok2 || nd > MaxGenerate || vocab > MaxGenerate || nd > 0 && vocab == 0 || uint64(len(rest)) != 8*nd*vocab {
		return bad("distributions")
	}
	s.Vocab = int(vocab)
	s.Dists = make([][]float64, nd)
	all := make([]float64, nd*vocab)
	for i := range all {
		all[i] = math.Float64frombits(binary.LittleEndian.Uint64(rest[8*i:]))
	}
	for i := range s.Dists {
		s.Dists[i] = all[uint64(i)*vocab : uint64(i+1)*vocab : uint64(i+1)*vocab]
	}
	return s, nil
}

// LlamaScore has the runner's model run a validator's teacher-forced pass
// (from position 0, replacing its KV cache) and returns its results.
func (c *Client) LlamaScore(ctx context.Context, r ScoreRequest) (Scored, error) {
	var s Scored
	err := c.call(ctx, OpLlamaScore, func(b []byte) []byte { return EncodeScore(b, r) }, func(p []byte) error {
		var err error
		s, err = DecodeScored(p)
		return err
	})
	return s, err
}

// LlamaGenerate has the runner's model generate n tokens greedily after
// prompt (from position 0) and returns them with their log-probs.
func (c *Client) LlamaGenerate(ctx context.Context, prompt []int, n int) ([]int, []float64, error) {
	var toks []int
	var lps []float64
	err := c.call(ctx, OpLlamaGenerate, func(b []byte) []byte { return EncodeGenerate(b, prompt, n) }, func(p []byte) error {
		var err error
		toks, lps, err = DecodeGenerated(p)
		return err
	})
	return toks, lps, err
}

// SampleRequest is llama.sample's request: feed Tokens at positions Pos,
// Pos+1, … then draw the next token from the last logits with a
// model.Sampler of these settings resumed after Draws draws, and the top
// Alts alternatives (model.AccelSampler.Sample's arguments).
type SampleRequest struct {
	Tokens      []int
	Pos         int
	Temperature float64
	TopK        int
	TopP        float64
	Seed        uint64
	Draws       uint64
	Alts        int
}

// Sampled is llama.sample's response: the drawn id, its log-prob, the
// sampler's draws after the step, and the alternatives.
type Sampled struct {
	ID      int
	LogProb float64
	Draws   uint64
	Alts    []model.Alt
}

// MaxSampleAlts bounds llama.sample's alternatives.
const MaxSampleAlts = 1024

const sampleFixed = 4 + 4 + 8 + 4 + 8 + 8 + 8 + 4

// EncodeSample is llama.sample's request: u32 pos | u32 count | count ×
// u32 tokens | f64 temperature | u32 top-k | f64 top-p | u64 seed | u64
// draws | u32 alts.
func EncodeSample(buf []byte, r SampleRequest) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.Pos))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.Tokens)))
	for _, t := range r.Tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(r.Temperature))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(r.TopK))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(r.TopP))
	buf = binary.LittleEndian.AppendUint64(buf, r.Seed)
	buf = binary.LittleEndian.AppendUint64(buf, r.Draws)
	return binary.LittleEndian.AppendUint32(buf, uint32(r.Alts))
}

// DecodeSample reads llama.sample's request. It checks the framing (at
// least one token, counts within MaxGenerate, alternatives within
// MaxSampleAlts), not the values against a model or the sampler's ranges.
func DecodeSample(p []byte) (SampleRequest, error) {
	var r SampleRequest
	if len(p) < sampleFixed {
		return r, fmt.Errorf("%w: llama.sample request of %d bytes", ErrBadPayload, len(p))
	}
	r.Pos = int(binary.LittleEndian.Uint32(p))
	count := uint64(binary.LittleEndian.Uint32(p[4:]))
	if count == 0 || count > MaxGenerate || uint64(len(p)) != sampleFixed+4*count {
		return r, fmt.Errorf("%w: llama.sample request: %d tokens in %d bytes", ErrBadPayload, count, len(p))
	}
	r.Tokens = make([]int, count)
	for i := range r.Tokens {
		r.Tokens[i] = int(binary.LittleEndian.Uint32(p[8+4*i:]))
	}
	q := p[8+4*count:]
	r.Temperature = math.Float64frombits(binary.LittleEndian.Uint64(q))
	r.TopK = int(binary.LittleEndian.Uint32(q[8:]))
	r.TopP = math.Float64frombits(binary.LittleEndian.Uint64(q[12:]))
	r.Seed = binary.LittleEndian.Uint64(q[20:])
	r.Draws = binary.LittleEndian.Uint64(q[28:])
	r.Alts = int(binary.LittleEndian.Uint32(q[36:]))
	// Top-k is any u32 (the task body's; the sampler treats one past the
	// vocabulary as no limit).
	if r.Draws > MaxGenerate || r.Alts > MaxSampleAlts {
		return r, fmt.Errorf("%w: llama.sample request: %d draws, %d alternatives", ErrBadPayload, r.Draws, r.Alts)
	}
	return r, nil
}

// EncodeSampled appends llama.sample's response: u32 id | f64 log-prob |
// u64 draws | u32 n | n × (u32 id | f64 log-prob).
func EncodeSampled(buf []byte, s Sampled) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(s.ID))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(s.LogProb))
	buf = binary.LittleEndian.AppendUint64(buf, s.Draws)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.Alts)))
	for _, a := range s.Alts {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(a.ID))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.LogProb))
	}
	return buf
}

// DecodeSampled reads llama.sample's response into dst's memory for the
// alternatives.
func DecodeSampled(p []byte, dst []model.Alt) (Sampled, error) {
	var s Sampled
	if len(p) < 24 {
		return s, fmt.Errorf("%w: llama.sample response of %d bytes", ErrBadPayload, len(p))
	}
	n := uint64(binary.LittleEndian.Uint32(p[20:]))
	if n > MaxSampleAlts || uint64(len(p)) != 24+12*n {
		return s, fmt.Errorf("%w: llama.sample response: %d alternatives in %d bytes", ErrBadPayload, n, len(p))
	}
	s.ID = int(binary.LittleEndian.Uint32(p))
	s.LogProb = math.Float64frombits(binary.LittleEndian.Uint64(p[4:]))
	s.Draws = binary.LittleEndian.Uint64(p[12:])
	s.Alts = dst[:0]
	for i := range n {
		q := p[24+12*i:]
		s.Alts = append(s.Alts, model.Alt{ID: int(binary.LittleEndian.Uint32(q)), LogProb: math.Float64frombits(binary.LittleEndian.Uint64(q[4:]))})
	}
	return s, nil
}

// LlamaSample has the runner's model feed r.Tokens and draw the next token
// (llama.sample); the alternatives come back in dst's memory.
func (c *Client) LlamaSample(ctx context.Context, r SampleRequest, dst []model.Alt) (Sampled, error) {
	var s Sampled
	err := c.call(ctx, OpLlamaSample, func(b []byte) []byte { return EncodeSample(b, r) }, func(p []byte) error {
		var err error
		s, err = DecodeSampled(p, dst)
		return err
	})
	return s, err
}
