package types

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"golang.org/x/crypto/blake2b"
)

// HashBytes returns the BLAKE2b-256 digest of the concatenation of b.
func HashBytes(b ...[]byte) Hash {
	d, _ := blake2b.New256(nil) // fails only for a key over 64 bytes
	for _, p := range b {
		d.Write(p)
	}
	var h Hash
	d.Sum(h[:0])
	return h
}

// Prefixes that separate Merkle leaves from inner nodes, so no inner node can
// be passed off as a leaf (the second-preimage trick of RFC 6962 §2.1).
const (
	merkleLeafPrefix  = 0x00
	merkleInnerPrefix = 0x01
)

// MerkleRoot returns the root of the binary Merkle tree over leaves, in order.
//
// A leaf's node is HashBytes(0x00 ‖ leaf) and an inner node is
// HashBytes(0x01 ‖ left ‖ right). The tree is built bottom up; at a level of
// odd length the last node is promoted unchanged to the next level (never
// paired with a copy of itself, which would let a list with its last element
// repeated share the root, as in Bitcoin's CVE-2012-2459). The result equals
// the Merkle Tree Hash of RFC 6962 §2.1 with BLAKE2b-256, except that the
// root of no leaves is the zero Hash. A single leaf's root is its leaf node,
// not the leaf itself.
//
// MerkleRoot does not modify leaves.
func MerkleRoot(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return Hash{}
	}
	level := make([]Hash, len(leaves))
	for i := range leaves {
		level[i] = HashBytes([]byte{merkleLeafPrefix}, leaves[i][:])
	}
	for len(level) > 1 {
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				break
			}
			next = append(next, HashBytes([]byte{merkleInnerPrefix}, level[i][:], level[i+1][:]))
		}
		level = next
	}
	return level[0]
}

// String returns h as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as in String (so JSON shows hex, not a byte array).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses text as ParseHash does.
func (h *Hash) UnmarshalText(text []byte) error {
	v, err := ParseHash(string(text))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses 64 hex digits (either case, with an optional "0x" prefix).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if err := parseHex("hash", s, h[:]); err != nil {
		return Hash{}, err
	}
	return h, nil
}

// String returns sig as 128 lowercase hex digits.
func (sig Signature) String() string { return hex.EncodeToString(sig[:]) }

// MarshalText encodes sig as in String.
func (sig Signature) MarshalText() ([]byte, error) { return []byte(sig.String()), nil }

// UnmarshalText parses 128 hex digits (with an optional "0x" prefix).
func (sig *Signature) UnmarshalText(text []byte) error {
	var v Signature
	if err := parseHex("signature", string(text), v[:]); err != nil {
		return err
	}
	*sig = v
	return nil
}

// parseHex decodes s (optionally "0x"-prefixed) into exactly len(dst) bytes.
func parseHex(what, s string, dst []byte) error {
	t := s
	if len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	if len(t) != 2*len(dst) {
		return fmt.Errorf("types: %s %s: %d hex digits, want %d", what, quote(s), len(t), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(t)); err != nil {
		return fmt.Errorf("types: %s %s: %v", what, quote(s), err)
	}
	return nil
}

// quote quotes s for an error message, shortened if long.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
