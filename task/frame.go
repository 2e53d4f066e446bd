package task

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// Request frame: u16 envelope length (EnvelopeSize..MaxEnvelopeSize) | envelope |
// u32 body length (≤ MaxBodySize) | body. The client then closes its send
// side; a miner ignores anything after the body.
//
// Response frames: u8 type | u16 payload length | payload, repeated. A
// response is zero or more FrameToken frames followed by one FrameFinal, or
// a single FrameReject (possibly after some tokens, if the miner fails).

// Frame types.
const (
	FrameToken  = 1 // payload: u32 id | f32 logprob | u8 n | n×(u32 id | f32 logprob)
	FrameFinal  = 2 // payload: u32 count | [32]result hash | [64]sig [| u8 index | d×[32] batch proof]
	FrameReject = 3 // payload: u8 code | u32 retry-after ms | u16 n | n bytes UTF-8 message
)

// Payload caps per frame type.
const (
	maxTokenPayload  = 9 + 8*MaxTopAlts
	finalPayload     = 4 + 32 + 64 // signed alone
	maxFinalPayload  = finalPayload + maxProofSize
	maxRejectPayload = 7 + MaxRejectMessage
	// MaxResponseFrame is the largest response frame, header included.
	MaxResponseFrame = 3 + max(maxTokenPayload, maxFinalPayload, maxRejectPayload)
)

// AppendRequest appends the request frame for an encoded envelope and body.
func AppendRequest(dst []byte, env *Envelope, body []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(env.Size()))
	dst = append(dst, env.Encode()...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// ReadRequest reads one request frame from r. It checks each length prefix
// against its cap before reading what follows (CodeTooLarge), and decodes
// the envelope (CodeMalformed); it checks nothing else. On failure it
// returns the code to reject with and an error with context; an io error
// comes back with CodeMalformed (or CodeTimeout if the caller's deadline
// fired, which the caller knows better and may substitute).
func ReadRequest(r io.Reader) (Envelope, []byte, Code, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return Envelope{}, nil, CodeMalformed, fmt.Errorf("task: read request: envelope length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:2]))
	if n < EnvelopeSize || n > MaxEnvelopeSize {
		code := CodeMalformed
		if n > MaxEnvelopeSize {
			code = CodeTooLarge
		}
		return Envelope{}, nil, code, fmt.Errorf("task: read request: envelope length %d, want %d..%d", n, EnvelopeSize, MaxEnvelopeSize)
	}
	var eb [MaxEnvelopeSize]byte
	if _, err := io.ReadFull(r, eb[:n]); err != nil {
		return Envelope{}, nil, CodeMalformed, fmt.Errorf("task: read request: envelope: %w", err)
	}
	env, err := DecodeEnvelope(eb[:n])
	if err != nil {
		return Envelope{}, nil, CodeMalformed, fmt.Errorf("task: read request: %w", err)
	}
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return env, nil, CodeMalformed, fmt.Errorf("task: read request: body length: %w", err)
	}
	bn := binary.BigEndian.Uint32(hdr[:4])
	if bn > MaxBodySize {
		return env, nil, CodeTooLarge, fmt.Errorf("task: read request: body length %d > %d", bn, MaxBodySize)
	}
	if bn < bodyFixed {
		return env, nil, CodeMalformed, fmt.Errorf("task: read request: body length %d < %d", bn, bodyFixed)
	}
	body := make([]byte, bn)
	if _, err := io.ReadFull(r, body); err != nil {
		return env, nil, CodeMalformed, fmt.Errorf("task: read request: body: %w", err)
	}
	return env, body, CodeOK, nil
}

// AppendEncode appends the token frame payload (no frame header). It
// truncates Top to MaxTopAlts.
func (t *Token) AppendEncode(dst []byte) []byte {
	top := t.Top
	if len(top) > MaxTopAlts {
		top = top[:MaxTopAlts]
	}
	dst = binary.BigEndian.AppendUint32(dst, t.ID)
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(t.LogProb))
	dst = append(dst, byte(len(top)))
	for _, a := range top {
		dst = binary.BigEndian.AppendUint32(dst, a.ID)
		dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(a.LogProb))
	}
	return dst
}

// validLogProb: canonical log-probabilities are ≤ 0 or -Inf, never NaN or -0.
func validLogProb(bits uint32) bool {
	f := math.Float32frombits(bits)
	return bits != 0x80000000 && !math.IsNaN(float64(f)) && f <= 0
}

// DecodeToken decodes a token frame payload; it accepts only canonical
// encodings (so re-encoding gives the same bytes and the same result hash).
func DecodeToken(p []byte) (Token, error) {
	var t Token
	if len(p) < 9 || len(p) > maxTokenPayload {
		return t, fmt.Errorf("%w: token: %d bytes", ErrMalformed, len(p))
	}
	n := int(p[8])
	if n > MaxTopAlts || len(p) != 9+8*n {
		return t, fmt.Errorf("%w: token: %d bytes for %d alternatives", ErrMalformed, len(p), n)
	}
	t.ID = binary.BigEndian.Uint32(p)
	lb := binary.BigEndian.Uint32(p[4:])
	if !validLogProb(lb) {
		return t, fmt.Errorf("%w: token: logprob %v", ErrMalformed, math.Float32frombits(lb))
	}
	t.LogProb = math.Float32frombits(lb)
	if n > 0 {
		t.Top = make([]Alt, n)
		for i := range t.Top {
			q := p[9+8*i:]
			ab := binary.BigEndian.Uint32(q[4:])
			if !validLogProb(ab) {
				return t, fmt.Errorf("%w: token: alternative %d logprob %v", ErrMalformed, i, math.Float32frombits(ab))
			}
			t.Top[i] = Alt{ID: binary.BigEndian.Uint32(q), LogProb: math.Float32frombits(ab)}
		}
	}
	return t, nil
}

// AppendFrame appends a response frame header and payload.
func AppendFrame(dst []byte, typ byte, payload []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)))
	return append(dst, payload...)
}

// AppendTokenFrame appends a whole token frame.
func AppendTokenFrame(dst []byte, t *Token) []byte {
	start := len(dst)
	dst = append(dst, FrameToken, 0, 0)
	dst = t.AppendEncode(dst)
	binary.BigEndian.PutUint16(dst[start+1:], uint16(len(dst)-start-3))
	return dst
}

// AppendFinalFrame appends a whole final frame.
func AppendFinalFrame(dst []byte, f *Final) []byte {
	dst = append(dst, FrameFinal)
	dst = binary.BigEndian.AppendUint16(dst, uint16(finalPayload+f.Proof.size()))
	dst = binary.BigEndian.AppendUint32(dst, f.Count)
	dst = append(dst, f.ResultHash[:]...)
	dst = append(dst, f.Sig[:]...)
	return f.Proof.appendEncode(dst)
}

// AppendRejectFrame appends a whole reject frame. A message longer than
// MaxRejectMessage is cut at a rune boundary.
func AppendRejectFrame(dst []byte, r *Reject) []byte {
	msg := r.Message
	if len(msg) > MaxRejectMessage {
		msg = msg[:MaxRejectMessage]
		for len(msg) > 0 && !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	dst = append(dst, FrameReject)
	dst = binary.BigEndian.AppendUint16(dst, uint16(7+len(msg)))
	dst = append(dst, byte(r.Code))
	dst = binary.BigEndian.AppendUint32(dst, r.RetryAfterMs)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

// DecodeFinal decodes a final frame payload.
func DecodeFinal(p []byte) (Final, error) {
	var f Final
	if len(p) < finalPayload || len(p) > maxFinalPayload {
		return f, fmt.Errorf("%w: final: %d bytes, want %d..%d", ErrMalformed, len(p), finalPayload, maxFinalPayload)
	}
	pr, err := DecodeProof(p[finalPayload:])
	if err != nil {
		return f, fmt.Errorf("final: %w", err)
	}
	f.Count = binary.BigEndian.Uint32(p)
	copy(f.ResultHash[:], p[4:36])
	copy(f.Sig[:], p[36:100])
	f.Proof = pr
	return f, nil
}

// DecodeReject decodes a reject frame payload.
func DecodeReject(p []byte) (Reject, error) {
	var r Reject
	if len(p) < 7 || len(p) > maxRejectPayload {
		return r, fmt.Errorf("%w: reject: %d bytes", ErrMalformed, len(p))
	}
	n := int(binary.BigEndian.Uint16(p[5:]))
	if len(p) != 7+n {
		return r, fmt.Errorf("%w: reject: %d bytes for a %d-byte message", ErrMalformed, len(p), n)
	}
	r.Code = Code(p[0])
	if r.Code == CodeOK {
		return r, fmt.Errorf("%w: reject: code 0", ErrMalformed)
	}
	r.RetryAfterMs = binary.BigEndian.Uint32(p[1:])
	if !utf8.Valid(p[7:]) {
		return r, fmt.Errorf("%w: reject: message is not UTF-8", ErrMalformed)
	}
	r.Message = string(p[7:])
	return r, nil
}

// FrameReader reads response frames with a reusable buffer.
type FrameReader struct {
	r   io.Reader
	buf [MaxResponseFrame]byte
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next returns the next frame's type and payload. The payload is valid until
// the next call. It rejects unknown types and payloads over their type's cap
// before reading them. At a clean end of stream it returns io.EOF.
func (f *FrameReader) Next() (byte, []byte, error) {
	if _, err := io.ReadFull(f.r, f.buf[:3]); err != nil {
		return 0, nil, err
	}
	typ, n := f.buf[0], int(binary.BigEndian.Uint16(f.buf[1:3]))
	var max int
	switch typ {
	case FrameToken:
		max = maxTokenPayload
	case FrameFinal:
		max = maxFinalPayload
	case FrameReject:
		max = maxRejectPayload
	default:
		return 0, nil, fmt.Errorf("%w: frame type %d", ErrMalformed, typ)
	}
	if n > max {
		return 0, nil, fmt.Errorf("%w: frame type %d: %d bytes > %d", ErrTooLarge, typ, n, max)
	}
	if _, err := io.ReadFull(f.r, f.buf[3:3+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("task: read frame: %w", err)
	}
	return typ, f.buf[3 : 3+n], nil
}
