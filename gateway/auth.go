package gateway

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"taobox/chain/types"
)

// Request signing (the "taobox-openai/2" scheme). A caller proves it holds
// the key of an account by five headers:
//
//	X-Taobox-Account    the SS58 address of the ed25519 key that signs
//	X-Taobox-Gateway    the SS58 address of the gateway the request is for:
//	                    the hotkey of the validator whose endpoint is called
//	X-Taobox-Timestamp  the caller's clock, Unix milliseconds (decimal)
//	X-Taobox-Nonce      16..64 characters of [A-Za-z0-9_-], fresh per request
//	X-Taobox-Signature  128 hex digits: ed25519 over SigningBytes
//
// SigningBytes = "taobox-openai/2 request" ‖ 0x00 ‖ gateway hotkey (32
// bytes) ‖ u16 len ‖ method ‖ u16 len ‖ request URI (path and query, as
// sent) ‖ SHA-256(body) ‖ i64 timestamp ‖ u8 len ‖ nonce, integers
// big-endian. The domain prefix keeps these signatures from ever being
// valid as a chain transaction or a task envelope, and the lengths make the
// encoding unambiguous. The gateway hotkey binds a request to one
// validator: a gateway refuses a request signed for another
// (ErrWrongGateway), so a request seen by one validator (or anyone between
// the caller and it) cannot be replayed to another validator's endpoint
// within the window. Version 1 signatures (no gateway) are not accepted.

// Header names.
const (
	HeaderAccount   = "X-Taobox-Account"
	HeaderGateway   = "X-Taobox-Gateway"
	HeaderTimestamp = "X-Taobox-Timestamp"
	HeaderNonce     = "X-Taobox-Nonce"
	HeaderSignature = "X-Taobox-Signature"
)

// Caps on the signed headers; ParseAuth rejects anything beyond them before
// decoding it.
const (
	MinNonceLen   = 16
	MaxNonceLen   = 64
	maxAccountLen = 64 // an SS58 address is 47–49 characters
	maxTimeLen    = 20
	maxMethodLen  = 16
	maxURILen     = 2048
)

const domainRequest = "taobox-openai/2 request\x00"

// Sentinel errors of authentication; each maps to HTTP 401 except where said.
var (
	// ErrUnsigned: a signed header is missing.
	ErrUnsigned = errors.New("gateway: request is not signed")
	// ErrBadHeader: a signed header does not parse.
	ErrBadHeader = errors.New("gateway: malformed auth header")
	// ErrBadSignature: the signature does not check.
	ErrBadSignature = errors.New("gateway: bad signature")
	// ErrStale: the timestamp is outside the window.
	ErrStale = errors.New("gateway: stale timestamp")
	// ErrReplay: the (account, nonce) pair was seen within the window.
	ErrReplay = errors.New("gateway: replayed nonce")
	// ErrWrongGateway: the request was signed for another gateway (another
	// validator's hotkey in X-Taobox-Gateway).
	ErrWrongGateway = errors.New("gateway: request signed for another gateway")
	// ErrReplayFull: the replay cache is full of live nonces (HTTP 503).
	ErrReplayFull = errors.New("gateway: replay cache full")
)

// Auth is the parsed signed headers of one request.
type Auth struct {
	Account types.AccountID
	Gateway types.AccountID // the gateway (validator hotkey) the caller signed for
	TimeMs  int64
	Nonce   string
	Sig     [64]byte
}

// ParseAuth reads the five signed headers. It checks their syntax only
// (caps, charset, address checksum); Verify checks the signature and
// Window the time. A missing header gives ErrUnsigned, a bad one
// ErrBadHeader.
func ParseAuth(h http.Header) (Auth, error) {
	var a Auth
	acct, gw, ts, nonce, sig := h.Get(HeaderAccount), h.Get(HeaderGateway), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature)
	if acct == "" || gw == "" || ts == "" || nonce == "" || sig == "" {
		return a, fmt.Errorf("%w: send %s, %s, %s, %s and %s (taobox chat does; see docs/openai.md)", ErrUnsigned, HeaderAccount, HeaderGateway, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	if len(acct) > maxAccountLen {
		return a, fmt.Errorf("%w: %s: %d characters", ErrBadHeader, HeaderAccount, len(acct))
	}
	id, err := types.ParseAddress(acct)
	if err != nil {
		return a, fmt.Errorf("%w: %s: %v", ErrBadHeader, HeaderAccount, err)
	}
	a.Account = id
	if len(gw) > maxAccountLen {
		return a, fmt.Errorf("%w: %s: %d characters", ErrBadHeader, HeaderGateway, len(gw))
	}
	if a.Gateway, err = types.ParseAddress(gw); err != nil {
		return a, fmt.Errorf("%w: %s: %v", ErrBadHeader, HeaderGateway, err)
	}
	if len(ts) > maxTimeLen {
		return a, fmt.Errorf("%w: %s: %d characters", ErrBadHeader, HeaderTimestamp, len(ts))
	}
	for _, c := range []byte(ts) {
		if c < '0' || c > '9' {
			return a, fmt.Errorf("%w: %s: not a decimal number of milliseconds", ErrBadHeader, HeaderTimestamp)
		}
	}
	if a.TimeMs, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return a, fmt.Errorf("%w: %s: %v", ErrBadHeader, HeaderTimestamp, err)
	}
	if err := checkNonce(nonce); err != nil {
		return a, err
	}
	a.Nonce = nonce
	if len(sig) != 2*ed25519.SignatureSize {
		return a, fmt.Errorf("%w: %s: %d characters, want %d hex digits", ErrBadHeader, HeaderSignature, len(sig), 2*ed25519.SignatureSize)
	}
	if _, err := hex.Decode(a.Sig[:], []byte(sig)); err != nil {
		return a, fmt.Errorf("%w: %s: %v", ErrBadHeader, HeaderSignature, err)
	}
	return a, nil
}

func checkNonce(n string) error {
	if len(n) < MinNonceLen || len(n) > MaxNonceLen {
		return fmt.Errorf("%w: %s: %d characters, want %d..%d", ErrBadHeader, HeaderNonce, len(n), MinNonceLen, MaxNonceLen)
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %s: only A-Z a-z 0-9 - _ allowed", ErrBadHeader, HeaderNonce)
		}
	}
	return nil
}

// SigningBytes is what the caller signs for a request to the gateway whose
// hotkey is gateway (see the file comment). It panics if method, uri or
// nonce are over their caps, which ParseAuth and Sign rule out.
func SigningBytes(gateway types.AccountID, method, uri string, body []byte, timeMs int64, nonce string) []byte {
	if len(method) > maxMethodLen || len(uri) > maxURILen || len(nonce) > MaxNonceLen {
		panic("gateway: SigningBytes: method, uri or nonce over its cap")
	}
	sum := sha256.Sum256(body)
	p := make([]byte, 0, len(domainRequest)+32+2+len(method)+2+len(uri)+32+8+1+len(nonce))
	p = append(p, domainRequest...)
	p = append(p, gateway[:]...)
	p = binary.BigEndian.AppendUint16(p, uint16(len(method)))
	p = append(p, method...)
	p = binary.BigEndian.AppendUint16(p, uint16(len(uri)))
	p = append(p, uri...)
	p = append(p, sum[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(timeMs))
	p = append(p, byte(len(nonce)))
	return append(p, nonce...)
}

// For checks that a was signed for the gateway whose hotkey is self; the
// error (ErrWrongGateway) names both, so the caller can re-sign for the
// endpoint it calls.
func (a *Auth) For(self types.AccountID) error {
	if a.Gateway != self {
		return fmt.Errorf("%w: signed for gateway %s, but this gateway is %s; sign for the endpoint you call (taobox chat --gateway %s, docs/openai.md)",
			ErrWrongGateway, types.SS58Encode(a.Gateway), types.SS58Encode(self), types.SS58Encode(self))
	}
	return nil
}

// Verify checks a's signature over the request (a.Gateway, method, uri,
// body). Whether a.Gateway is this gateway is For's check.
func (a *Auth) Verify(method, uri string, body []byte) error {
	if len(method) > maxMethodLen || len(uri) > maxURILen {
		return fmt.Errorf("%w: method or URI too long", ErrBadSignature)
	}
	if !ed25519.Verify(a.Account[:], SigningBytes(a.Gateway, method, uri, body, a.TimeMs, a.Nonce), a.Sig[:]) {
		return fmt.Errorf("%w: not signed by %s over %s %s, this body and gateway %s (sign the exact bytes sent)", ErrBadSignature, types.SS58Encode(a.Account), method, uri, types.SS58Encode(a.Gateway))
	}
	return nil
}

// Fresh checks that a's timestamp is within window of now, either way.
func (a *Auth) Fresh(now time.Time, window time.Duration) error {
	d := now.UnixMilli() - a.TimeMs
	if d > window.Milliseconds() || -d > window.Milliseconds() {
		return fmt.Errorf("%w: %s is %d ms from this server's clock (window ±%v); check the caller's clock", ErrStale, HeaderTimestamp, d, window)
	}
	return nil
}

// Sign sets the five signed headers on r for body (the exact bytes r will
// send), for the gateway whose hotkey is gateway (the validator r goes
// to), signing with key at time now with nonce (MinNonceLen..MaxNonceLen
// characters of [A-Za-z0-9_-]).
func Sign(r *http.Request, body []byte, gateway types.AccountID, key ed25519.PrivateKey, now time.Time, nonce string) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("gateway: sign: private key has %d bytes", len(key))
	}
	if err := checkNonce(nonce); err != nil {
		return err
	}
	uri := r.URL.RequestURI()
	if len(r.Method) > maxMethodLen || len(uri) > maxURILen {
		return fmt.Errorf("gateway: sign: method or URI too long")
	}
	ms := now.UnixMilli()
	if gateway == (types.AccountID{}) {
		return fmt.Errorf("gateway: sign: no gateway hotkey: name the validator whose endpoint you call")
	}
	sig := ed25519.Sign(key, SigningBytes(gateway, r.Method, uri, body, ms, nonce))
	r.Header.Set(HeaderAccount, types.SS58Encode(types.AccountIDFromPrivateKey(key)))
	r.Header.Set(HeaderGateway, types.SS58Encode(gateway))
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ms, 10))
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, hex.EncodeToString(sig))
	return nil
}

// replayCache remembers (account, nonce) pairs until they expire. It is
// not safe for concurrent use; the caller locks.
type replayCache struct {
	max  int
	seen map[string]time.Time // account ‖ nonce → expiry
	next time.Time            // earliest time a prune can free something
}

// add records the pair, expiring at exp. It fails with ErrReplay when the
// pair is live, and ErrReplayFull when max live pairs are held.
// check reports ErrReplay when a's nonce was used within its window,
// without storing it (add stores it).
func (c *replayCache) check(a *Auth, now time.Time) error {
	if e, ok := c.seen[string(a.Account[:])+a.Nonce]; ok && now.Before(e) {
		return fmt.Errorf("%w: nonce %q of %s was already used; send a fresh nonce with every request", ErrReplay, a.Nonce, types.SS58Encode(a.Account))
	}
	return nil
}

func (c *replayCache) add(a *Auth, now, exp time.Time) error {
	k := string(a.Account[:]) + a.Nonce
	if err := c.check(a, now); err != nil {
		return err
	}
	if len(c.seen) >= c.max && !now.Before(c.next) {
		c.next = exp
		for k, e := range c.seen {
			if !now.Before(e) {
				delete(c.seen, k)
			} else if e.Before(c.next) {
				c.next = e
			}
		}
	}
	if len(c.seen) >= c.max {
		return ErrReplayFull
	}
	c.seen[k] = exp
	return nil
}
