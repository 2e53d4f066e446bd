// Package task is the wire protocol between validators and miners: a signed
// request envelope, a canonical request body, the streamed response frames
// (tokens, a miner-signed final frame, or a reject), the rejection codes, the
// TLS set-up that pins a miner's key, and a QUIC client.
//
// The byte layouts, caps and admission order are written down in
// docs/task-protocol.md; this file and frame.go are the normative source.
// All integers are big-endian. The package is pure except for tls.go and
// client.go, which touch sockets; time and randomness are inputs.
package task

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"taobox/chain/types"
	"taobox/internal/edsig"
)

// ALPN is the task protocol's TLS application protocol as first
// specified: every envelope and final frame signed alone.
const ALPN = "taobox-task/1"

// ALPNBatch is ALPN with batch signatures (batch.go, docs/task-protocol.md
// §8): envelopes and final frames may carry batch proofs. Both ends offer
// it before ALPN; on a connection that negotiated ALPN (a peer from before
// batch signatures) everything is signed alone, so old and new validators
// and miners keep talking.
const ALPNBatch = "taobox-task/2"

// BatchOK reports whether a connection that negotiated protocol proto may
// carry batch-signed envelopes and final frames.
func BatchOK(proto string) bool { return proto == ALPNBatch }

// Version is the envelope version this package speaks.
const Version = 1

// Hard caps. A decoder rejects anything beyond them before allocating.
const (
	// MaxPromptTokens bounds Body.PromptIDs.
	MaxPromptTokens = 4096
	// MaxGenTokens bounds Body.MaxTokens.
	MaxGenTokens = 4096
	// MaxTopAlts bounds Body.TopAlts and the alternatives in one token frame.
	MaxTopAlts = 16
	// MaxBodySize is the largest encoded body: the fixed fields plus
	// MaxPromptTokens ids.
	MaxBodySize = bodyFixed + 4*MaxPromptTokens
	// EnvelopeSize is the size of an encoded envelope signed alone (no
	// batch proof).
	EnvelopeSize = 2 + 2 + 32 + 32 + 16 + 8 + 32 + 64
	// MaxEnvelopeSize is the size of an envelope with the deepest batch
	// proof.
	MaxEnvelopeSize = EnvelopeSize + maxProofSize
	// MaxRequestSize is the largest request frame on the wire (both length
	// prefixes, the envelope and the largest body).
	MaxRequestSize = 2 + MaxEnvelopeSize + 4 + MaxBodySize
	// MaxRejectMessage bounds Reject.Message in bytes.
	MaxRejectMessage = 256
)

// bodyFixed is the encoded size of a body with no prompt ids.
const bodyFixed = 4 + 4 + 4 + 4 + 4 + 8 + 1 + 32

// maxProofSize is the encoded size of the deepest batch proof.
const maxProofSize = 1 + 32*MaxBatchDepth

// Domain-separation prefixes for what is signed or hashed.
const (
	domainRequest = "taobox-task/1 request\x00"
	domainResult  = "taobox-task/1 result\x00"
	domainFinal   = "taobox-task/1 final\x00"
)

// Sentinel errors; decoders wrap them with context.
var (
	// ErrTooLarge: a length or count is over its cap.
	ErrTooLarge = errors.New("task: too large")
	// ErrMalformed: bytes that do not decode to a valid value.
	ErrMalformed = errors.New("task: malformed")
	// ErrBadSignature: a signature or a hash it covers does not check.
	ErrBadSignature = errors.New("task: bad signature")
)

// Alt is one alternative token with its log-probability.
type Alt struct {
	ID      uint32
	LogProb float32
}

// Body is what the validator asks for. Its encoding is canonical:
// DecodeBody(p) succeeds only if Encode of the result gives back p.
//
// Layout (big-endian): u32 n | n×u32 PromptIDs | u32 MaxTokens |
// f32 Temperature | u32 TopK | f32 TopP | u64 Seed | u8 TopAlts |
// [32]ModelHash.
type Body struct {
	PromptIDs   []uint32 // 1..MaxPromptTokens token ids
	MaxTokens   uint32   // 1..MaxGenTokens tokens to generate
	Temperature float32  // ≥ 0, finite; 0 means greedy (argmax)
	TopK        uint32   // 0 = no top-k
	TopP        float32  // in [0,1]; 0 or 1 = no nucleus cut
	Seed        uint64   // sampling seed
	TopAlts     uint8    // alternatives wanted per token (0..MaxTopAlts)
	ModelHash   [32]byte // SHA-256 of the GGUF file the validator expects
}

// Validate reports the first field outside its range.
func (b *Body) Validate() error {
	switch {
	case len(b.PromptIDs) == 0:
		return fmt.Errorf("%w: body: empty prompt", ErrMalformed)
	case len(b.PromptIDs) > MaxPromptTokens:
		return fmt.Errorf("%w: body: %d prompt tokens > %d", ErrTooLarge, len(b.PromptIDs), MaxPromptTokens)
	case b.MaxTokens == 0:
		return fmt.Errorf("%w: body: max_tokens is 0", ErrMalformed)
	case b.MaxTokens > MaxGenTokens:
		return fmt.Errorf("%w: body: max_tokens %d > %d", ErrTooLarge, b.MaxTokens, MaxGenTokens)
	case !finite(b.Temperature) || b.Temperature < 0:
		return fmt.Errorf("%w: body: temperature %v", ErrMalformed, b.Temperature)
	case !finite(b.TopP) || b.TopP < 0 || b.TopP > 1:
		return fmt.Errorf("%w: body: top_p %v", ErrMalformed, b.TopP)
	case b.TopAlts > MaxTopAlts:
		return fmt.Errorf("%w: body: top_alts %d > %d", ErrTooLarge, b.TopAlts, MaxTopAlts)
	}
	return nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// Encode returns the canonical encoding. It does not validate.
func (b *Body) Encode() []byte {
	p := make([]byte, 0, bodyFixed+4*len(b.PromptIDs))
	p = binary.BigEndian.AppendUint32(p, uint32(len(b.PromptIDs)))
	for _, id := range b.PromptIDs {
		p = binary.BigEndian.AppendUint32(p, id)
	}
	p = binary.BigEndian.AppendUint32(p, b.MaxTokens)
	p = binary.BigEndian.AppendUint32(p, math.Float32bits(b.Temperature))
	p = binary.BigEndian.AppendUint32(p, b.TopK)
	p = binary.BigEndian.AppendUint32(p, math.Float32bits(b.TopP))
	p = binary.BigEndian.AppendUint64(p, b.Seed)
	p = append(p, b.TopAlts)
	return append(p, b.ModelHash[:]...)
}

// DecodeBody decodes and validates a body. It rejects inputs over
// MaxBodySize before reading them, trailing bytes, -0 and NaN floats, and
// any field outside Validate's ranges.
func DecodeBody(p []byte) (Body, error) {
	var b Body
	if len(p) > MaxBodySize {
		return b, fmt.Errorf("%w: body: %d bytes > %d", ErrTooLarge, len(p), MaxBodySize)
	}
	if len(p) < bodyFixed {
		return b, fmt.Errorf("%w: body: %d bytes < %d", ErrMalformed, len(p), bodyFixed)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxPromptTokens {
		return b, fmt.Errorf("%w: body: %d prompt tokens > %d", ErrTooLarge, n, MaxPromptTokens)
	}
	if want := bodyFixed + 4*int(n); len(p) != want {
		return b, fmt.Errorf("%w: body: %d bytes, want %d for %d prompt tokens", ErrMalformed, len(p), want, n)
	}
	p = p[4:]
	b.PromptIDs = make([]uint32, n)
	for i := range b.PromptIDs {
		b.PromptIDs[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	p = p[4*n:]
	b.MaxTokens = binary.BigEndian.Uint32(p)
	tb := binary.BigEndian.Uint32(p[4:])
	b.TopK = binary.BigEndian.Uint32(p[8:])
	pb := binary.BigEndian.Uint32(p[12:])
	b.Seed = binary.BigEndian.Uint64(p[16:])
	b.TopAlts = p[24]
	copy(b.ModelHash[:], p[25:57])
	const negZero = 0x80000000
	if tb == negZero || pb == negZero {
		return b, fmt.Errorf("%w: body: negative zero", ErrMalformed)
	}
	b.Temperature, b.TopP = math.Float32frombits(tb), math.Float32frombits(pb)
	if err := b.Validate(); err != nil {
		return b, err
	}
	return b, nil
}

// Envelope authenticates a request. Its encoding: u16 Version | u16 Netuid
// | [32]Validator | [32]Miner | [16]Nonce | i64 TimeMs | [32]BodyHash |
// [64]Sig (EnvelopeSize bytes), then the batch proof when Sig covers a
// batch (u8 index | d×[32] siblings; see batch.go), so EnvelopeSize or
// EnvelopeSize+1+32d bytes, 1 ≤ d ≤ MaxBatchDepth.
type Envelope struct {
	Version   uint16
	Netuid    uint16
	Validator types.AccountID // sender hotkey; Sig is by this key
	Miner     types.AccountID // the miner it is addressed to
	Nonce     [16]byte        // random; replay key together with Validator
	TimeMs    int64           // sender's clock, Unix milliseconds
	BodyHash  [32]byte        // SHA-256 of the encoded body
	Sig       [64]byte        // ed25519 over SignedBytes(SigningBytes, &Proof)
	Proof     Proof           // where SigningBytes sits in the signed batch; Depth 0: signed alone
}

// NewEnvelope builds and signs an envelope for an encoded body. now and rnd
// are inputs: rnd supplies the 16-byte nonce.
func NewEnvelope(key ed25519.PrivateKey, netuid uint16, miner types.AccountID, body []byte, now time.Time, rnd io.Reader) (Envelope, error) {
	var e Envelope
	if len(key) != ed25519.PrivateKeySize {
		return e, fmt.Errorf("task: new envelope: private key has %d bytes", len(key))
	}
	return newEnvelope(key.Public().(ed25519.PublicKey), netuid, miner, body, now, rnd, func(msg []byte) ([64]byte, Proof) {
		return edsig.Sign(key, msg), Proof{}
	})
}

// newEnvelope fills an envelope from validator key pub and signs it with
// sign (one key alone, or a BatchSigner's batch).
func newEnvelope(pub ed25519.PublicKey, netuid uint16, miner types.AccountID, body []byte, now time.Time, rnd io.Reader, sign func([]byte) ([64]byte, Proof)) (Envelope, error) {
	var e Envelope
	e.Version, e.Netuid, e.Miner = Version, netuid, miner
	copy(e.Validator[:], pub)
	if _, err := io.ReadFull(rnd, e.Nonce[:]); err != nil {
		return e, fmt.Errorf("task: new envelope: nonce: %w", err)
	}
	e.TimeMs = now.UnixMilli()
	e.BodyHash = sha256.Sum256(body)
	e.Sig, e.Proof = sign(e.SigningBytes())
	return e, nil
}

// SigningBytes is the domain prefix followed by every encoded field but Sig
// and Proof: the message that is signed alone, or is the leaf of a batch.
func (e *Envelope) SigningBytes() []byte {
	p := make([]byte, 0, len(domainRequest)+EnvelopeSize-64)
	p = append(p, domainRequest...)
	return e.appendUnsigned(p)
}

func (e *Envelope) appendUnsigned(p []byte) []byte {
	p = binary.BigEndian.AppendUint16(p, e.Version)
	p = binary.BigEndian.AppendUint16(p, e.Netuid)
	p = append(p, e.Validator[:]...)
	p = append(p, e.Miner[:]...)
	p = append(p, e.Nonce[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(e.TimeMs))
	return append(p, e.BodyHash[:]...)
}

// Size is the length of e's encoding.
func (e *Envelope) Size() int { return EnvelopeSize + e.Proof.size() }

// Encode returns the encoding (Size bytes).
func (e *Envelope) Encode() []byte {
	p := e.appendUnsigned(make([]byte, 0, e.Size()))
	p = append(p, e.Sig[:]...)
	return e.Proof.appendEncode(p)
}

// DecodeEnvelope decodes a whole envelope. It checks the length and the
// batch proof's shape; Verify checks the signature.
func DecodeEnvelope(p []byte) (Envelope, error) {
	var e Envelope
	if len(p) < EnvelopeSize || len(p) > MaxEnvelopeSize {
		return e, fmt.Errorf("%w: envelope: %d bytes, want %d..%d", ErrMalformed, len(p), EnvelopeSize, MaxEnvelopeSize)
	}
	pr, err := DecodeProof(p[EnvelopeSize:])
	if err != nil {
		return e, fmt.Errorf("envelope: %w", err)
	}
	e.Proof = pr
	e.Version = binary.BigEndian.Uint16(p)
	e.Netuid = binary.BigEndian.Uint16(p[2:])
	copy(e.Validator[:], p[4:36])
	copy(e.Miner[:], p[36:68])
	copy(e.Nonce[:], p[68:84])
	e.TimeMs = int64(binary.BigEndian.Uint64(p[84:92]))
	copy(e.BodyHash[:], p[92:124])
	copy(e.Sig[:], p[124:188])
	return e, nil
}

// Verify checks Sig (and Proof) against Validator. It does not check the
// body hash (VerifyBody does), the time window, or who the sender is. A
// batch root already verified is not verified again (batch.go).
func (e *Envelope) Verify() error {
	if !batchRoots.verify(e.Validator, e.SigningBytes(), &e.Proof, &e.Sig) {
		return fmt.Errorf("%w: envelope from %s", ErrBadSignature, types.SS58Encode(e.Validator))
	}
	return nil
}

// VerifyBody checks that body hashes to BodyHash.
func (e *Envelope) VerifyBody(body []byte) error {
	if sha256.Sum256(body) != e.BodyHash {
		return fmt.Errorf("%w: body hash mismatch", ErrBadSignature)
	}
	return nil
}

// Hash is the request hash: SHA-256 of the full encoded envelope
// (signature included). The envelope commits to the body through BodyHash.
func (e *Envelope) Hash() [32]byte { return sha256.Sum256(e.Encode()) }

// Token is one generated token with its log-probability under the miner's
// sampling distribution and up to TopAlts alternatives.
type Token struct {
	ID      uint32
	LogProb float32
	Top     []Alt
}

// Final ends a successful response. ResultHash chains every token frame
// (see ResultChain); Sig is the miner's ed25519 over
// SignedBytes(FinalSigningBytes, &Proof).
type Final struct {
	Count      uint32
	ResultHash [32]byte
	Sig        [64]byte
	Proof      Proof // Depth 0: signed alone
}

// ResultChain accumulates the result hash over token frames:
// h0 = SHA-256(domainResult ‖ request hash), h(i) = SHA-256(h(i-1) ‖ the
// encoded token frame payload i).
type ResultChain struct{ h [32]byte }

// NewResultChain starts a chain for request hash req.
func NewResultChain(req [32]byte) ResultChain {
	p := make([]byte, 0, len(domainResult)+32)
	p = append(append(p, domainResult...), req[:]...)
	return ResultChain{h: sha256.Sum256(p)}
}

// Add folds one encoded token payload into the chain.
func (c *ResultChain) Add(tokenPayload []byte) {
	s := sha256.New()
	s.Write(c.h[:])
	s.Write(tokenPayload)
	s.Sum(c.h[:0])
}

// Sum is the current hash.
func (c *ResultChain) Sum() [32]byte { return c.h }

// FinalSigningBytes is what the miner signs (alone, or as the leaf of a
// batch): the domain prefix, the request hash, u32 count and the result
// hash.
func FinalSigningBytes(req [32]byte, count uint32, result [32]byte) []byte {
	p := make([]byte, 0, len(domainFinal)+32+4+32)
	p = append(append(p, domainFinal...), req[:]...)
	p = binary.BigEndian.AppendUint32(p, count)
	return append(p, result[:]...)
}

// NewFinal hashes tokens and signs the final frame with the miner's key.
func NewFinal(key ed25519.PrivateKey, req [32]byte, tokens []Token) Final {
	c := NewResultChain(req)
	var buf []byte
	for i := range tokens {
		buf = tokens[i].AppendEncode(buf[:0])
		c.Add(buf)
	}
	return SignFinal(key, req, uint32(len(tokens)), c.Sum())
}

// SignFinal signs an already computed result hash.
func SignFinal(key ed25519.PrivateKey, req [32]byte, count uint32, result [32]byte) Final {
	f := Final{Count: count, ResultHash: result}
	f.Sig = edsig.Sign(key, FinalSigningBytes(req, count, result))
	return f
}

// SignFinal signs an already computed result hash in s's next batch, or
// alone (SignAlone) when batch is false.
func (s *BatchSigner) SignFinal(req [32]byte, count uint32, result [32]byte, batch bool) Final {
	f := Final{Count: count, ResultHash: result}
	sign := s.Sign
	if !batch {
		sign = s.SignAlone
	}
	f.Sig, f.Proof = sign(FinalSigningBytes(req, count, result))
	return f
}

// Verify checks that f is the miner's signed final frame for request req
// and exactly these tokens.
func (f *Final) Verify(miner types.AccountID, req [32]byte, tokens []Token) error {
	if int(f.Count) != len(tokens) {
		return fmt.Errorf("%w: final: count %d but %d tokens", ErrBadSignature, f.Count, len(tokens))
	}
	c := NewResultChain(req)
	var buf []byte
	for i := range tokens {
		buf = tokens[i].AppendEncode(buf[:0])
		c.Add(buf)
	}
	if c.Sum() != f.ResultHash {
		return fmt.Errorf("%w: final: result hash does not match the tokens", ErrBadSignature)
	}
	if !batchRoots.verify(miner, FinalSigningBytes(req, f.Count, f.ResultHash), &f.Proof, &f.Sig) {
		return fmt.Errorf("%w: final: not signed by miner %s", ErrBadSignature, types.SS58Encode(miner))
	}
	return nil
}

// Code is a rejection code. Values are stable on the wire.
type Code uint8

// Rejection codes, roughly in the order the miner's admission checks them
// (the body's checks, model-mismatch and malformed, come before the rate
// and concurrency limits; docs/task-protocol.md §5 has the order).
// CodeOK is never sent.
const (
	CodeOK             Code = iota // 0: not a rejection
	CodeTooLarge                   // 1: a length prefix over its cap
	CodeMalformed                  // 2: bytes that do not decode, or a body out of range
	CodeBadVersion                 // 3: envelope version not spoken
	CodeWrongNetuid                // 4: envelope netuid is not the miner's
	CodeWrongMiner                 // 5: envelope addressed to another hotkey
	CodeUnregistered               // 6: sender hotkey not registered on the netuid
	CodeNoPermit                   // 7: sender has no validator permit
	CodeLowStake                   // 8: sender's stake below the miner's floor
	CodeStale                      // 9: timestamp outside the window
	CodeBadSignature               // 10: signature or body hash does not check
	CodeReplay                     // 11: (validator, nonce) seen within the window
	CodeRateLimited                // 12: sender over its request rate
	CodeTooManyStreams             // 13: sender over its concurrent requests
	CodeBusy                       // 14: queue full (or evicted by higher stake); see RetryAfterMs
	CodeModelMismatch              // 15: body.ModelHash is not the model served
	CodeInternal                   // 16: the miner failed while answering
	CodeShuttingDown               // 17: the miner is stopping
	CodeTimeout                    // 18: the request did not arrive in time
	codeEnd
)

var codeNames = [...]string{
	"ok", "too-large", "malformed", "bad-version", "wrong-netuid", "wrong-miner",
	"unregistered", "no-permit", "low-stake", "stale", "bad-signature", "replay",
	"rate-limited", "too-many-streams", "busy", "model-mismatch", "internal",
	"shutting-down", "timeout",
}

// NumCodes is one past the largest defined code.
const NumCodes = int(codeEnd)

// SenderFault reports whether c refuses a request for a fault of its sender
// (its bytes, signature, freshness, addressing or model), as opposed to the
// miner's load or state (rate-limited, too-many-streams, busy, internal,
// shutting-down) or the miner's view of the chain (unregistered,
// no-permit, low-stake: a validator that just got its permit may be
// refused until the miner's view catches up, and these checks cost the
// miner nothing). A connection that keeps sending such requests is closed
// (CloseBadRequests).
func (c Code) SenderFault() bool {
	switch c {
	case CodeTooLarge, CodeMalformed, CodeBadVersion, CodeWrongNetuid, CodeWrongMiner,
		CodeStale, CodeBadSignature, CodeReplay, CodeModelMismatch, CodeTimeout:
		return true
	}
	return false
}

// The QUIC application error codes a miner closes a connection with.
const (
	CloseNormal       = 0 // the miner is stopping, or the client closed
	CloseTooManyConns = 1 // the miner holds its MaxConns connections
	CloseBadRequests  = 2 // the connection's last requests were all refused for sender faults
	CloseUnserved     = 3 // no request was admitted within the miner's UnservedTimeout of the handshake
)

// String is the code's stable lower-case name, used in metrics.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code-%d", uint8(c))
}

// Reject ends a response that was not answered.
type Reject struct {
	Code         Code
	RetryAfterMs uint32 // > 0 with CodeBusy, CodeRateLimited, CodeTooManyStreams
	Message      string // ≤ MaxRejectMessage bytes, for humans
}

// Error makes a Reject usable as an error.
func (r *Reject) Error() string {
	s := "task: rejected: " + r.Code.String()
	if r.RetryAfterMs > 0 {
		s += fmt.Sprintf(" (retry after %d ms)", r.RetryAfterMs)
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}

// Result is what a Query got back: tokens and a final frame, or a reject.
type Result struct {
	Request    [32]byte // the request hash (Envelope.Hash)
	Tokens     []Token
	Final      *Final
	Reject     *Reject
	FirstToken time.Duration // from sending the request to the first frame
	Total      time.Duration // from sending the request to the last frame
}

// Verified reports whether r carries a final frame that miner signed over
// request req and exactly r.Tokens. A reject comes back as the *Reject.
func (r *Result) Verified(miner types.AccountID, req [32]byte) error {
	if r.Reject != nil {
		return r.Reject
	}
	if r.Final == nil {
		return fmt.Errorf("task: result has no final frame")
	}
	return r.Final.Verify(miner, req, r.Tokens)
}
