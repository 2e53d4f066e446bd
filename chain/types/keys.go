package types

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/crypto/blake2b"
)

// SS58Prefix is the network prefix of taobox addresses: 42, Substrate's
// generic prefix (Bittensor uses it too), so addresses start with "5".
const SS58Prefix = 42

// ErrBadAddress marks every error ParseAddress returns.
var ErrBadAddress = errors.New("types: bad address")

// ss58Len is the decoded length of a prefix-42 address of a 32-byte key:
// one prefix byte, the key, two checksum bytes.
const ss58Len = 1 + 32 + 2

// ss58TextLen is the length of every prefix-42 address: its 35 bytes lie in
// [42·2^272, 43·2^272), where every number has 48 base58 digits. ParseAddress
// decodes nothing longer.
const ss58TextLen = 48

// SS58Encode returns the SS58 address of id with prefix 42 (the one-byte
// prefix form), exactly as Substrate writes it: base58 (Bitcoin alphabet)
// of prefix ‖ id ‖ the first two bytes of BLAKE2b-512("SS58PRE" ‖ prefix ‖ id).
func SS58Encode(id AccountID) string {
	var buf [ss58Len]byte
	buf[0] = SS58Prefix
	copy(buf[1:], id[:])
	sum := ss58Checksum(buf[:33])
	buf[33], buf[34] = sum[0], sum[1]
	return base58Encode(buf[:])
}

func ss58Checksum(payload []byte) [64]byte {
	d, _ := blake2b.New512(nil)
	d.Write([]byte("SS58PRE"))
	d.Write(payload)
	var sum [64]byte
	d.Sum(sum[:0])
	return sum
}

// ParseAddress parses an SS58 address with prefix 42 into an AccountID.
// It rejects (with an error wrapping ErrBadAddress that says why) a
// character outside the base58 alphabet, a decoded length other than 35
// bytes (1 prefix byte, a 32-byte key, 2 checksum bytes; this also rejects
// the two-byte prefix forms), any other prefix, and a bad checksum.
// ParseAddress(SS58Encode(id)) == id, and an address it accepts is exactly
// SS58Encode of the result.
func ParseAddress(s string) (AccountID, error) {
	if s == "" {
		return AccountID{}, fmt.Errorf("%w: empty", ErrBadAddress)
	}
	if err := base58Check(s); err != nil {
		return AccountID{}, fmt.Errorf("%w: %s: %v", ErrBadAddress, quote(s), err)
	}
	if len(s) > ss58TextLen {
		return AccountID{}, fmt.Errorf("%w: %s: %d characters, an address has %d", ErrBadAddress, quote(s), len(s), ss58TextLen)
	}
	raw, err := base58Decode(s)
	if err != nil {
		return AccountID{}, fmt.Errorf("%w: %s: %v", ErrBadAddress, quote(s), err)
	}
	if len(raw) != ss58Len {
		return AccountID{}, fmt.Errorf("%w: %s: decodes to %d bytes, want %d (prefix, 32-byte key, checksum)", ErrBadAddress, quote(s), len(raw), ss58Len)
	}
	if raw[0] != SS58Prefix {
		return AccountID{}, fmt.Errorf("%w: %s: network prefix %d, want %d", ErrBadAddress, quote(s), raw[0], SS58Prefix)
	}
	sum := ss58Checksum(raw[:33])
	if raw[33] != sum[0] || raw[34] != sum[1] {
		return AccountID{}, fmt.Errorf("%w: %s: checksum mismatch (mistyped?)", ErrBadAddress, quote(s))
	}
	var id AccountID
	copy(id[:], raw[1:33])
	return id, nil
}

// String returns the SS58 address of a (prefix 42, the "5…" form).
func (a AccountID) String() string { return SS58Encode(a) }

// IsZero reports whether a is all zero bytes (no account).
func (a AccountID) IsZero() bool { return a == AccountID{} }

// PublicKey returns a as an ed25519 public key (a fresh copy).
func (a AccountID) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), a[:]...)
}

// MarshalText encodes a as its SS58 address (so JSON shows "5…").
func (a AccountID) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses an SS58 address as ParseAddress does.
func (a *AccountID) UnmarshalText(text []byte) error {
	v, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// AccountIDFromPublicKey returns the account of an ed25519 public key. It
// panics if len(pub) is not ed25519.PublicKeySize (a programmer error, as in
// crypto/ed25519).
func AccountIDFromPublicKey(pub ed25519.PublicKey) AccountID {
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("types: public key of %d bytes, want %d", len(pub), ed25519.PublicKeySize))
	}
	var a AccountID
	copy(a[:], pub)
	return a
}

// AccountIDFromPrivateKey returns the account of an ed25519 private key. It
// panics if len(priv) is not ed25519.PrivateKeySize.
func AccountIDFromPrivateKey(priv ed25519.PrivateKey) AccountID {
	if len(priv) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("types: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize))
	}
	return AccountIDFromPublicKey(priv.Public().(ed25519.PublicKey))
}

// GenerateKey makes an ed25519 key pair from 32 bytes of rand (crypto/rand
// when rand is nil) and returns its account and private key. The result is
// a deterministic function of the bytes read, so a seeded reader gives
// reproducible keys in tests and devnets.
func GenerateKey(rand io.Reader) (AccountID, ed25519.PrivateKey, error) {
	if rand == nil {
		rand = cryptoRand
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return AccountID{}, nil, fmt.Errorf("types: generate key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return AccountIDFromPrivateKey(priv), priv, nil
}

var cryptoRand = rand.Reader

// base58Alphabet is Bitcoin's alphabet (no 0, O, I, l).
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		t[base58Alphabet[i]] = int8(i)
	}
	return t
}()

// base58Encode writes b in base 58; each leading zero byte becomes a '1'.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) < 1.37: digits needed for the rest.
	digits := make([]byte, 0, (len(b)-zeros)*137/100+1)
	for _, c := range b[zeros:] {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := 0; i < zeros; i++ {
		out[i] = '1'
	}
	for i, d := range digits { // digits are little-endian
		out[len(out)-1-i] = base58Alphabet[d]
	}
	return string(out)
}

// base58Check returns an error naming the first character of s outside the
// base58 alphabet.
func base58Check(s string) error {
	for i := 0; i < len(s); i++ {
		if base58Index[s[i]] >= 0 {
			continue
		}
		if s[i] >= utf8.RuneSelf {
			return fmt.Errorf("non-ASCII character at byte %d (base58 has only letters and digits)", i)
		}
		return fmt.Errorf("character %q at %d is not base58 (no 0, O, I or l)", s[i], i)
	}
	return nil
}

// base58Decode inverts base58Encode; each leading '1' becomes a zero byte.
func base58Decode(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	bytes := make([]byte, 0, len(s)) // little-endian
	for i := zeros; i < len(s); i++ {
		v := base58Index[s[i]]
		if v < 0 {
			return nil, base58Check(s)
		}
		carry := int(v)
		for j := range bytes {
			carry += int(bytes[j]) * 58
			bytes[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			bytes = append(bytes, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(bytes))
	for i, c := range bytes {
		out[len(out)-1-i] = c
	}
	return out, nil
}
