package types

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashBytes(t *testing.T) {
	for _, tc := range []struct {
		in   [][]byte
		want string
	}{
		// Reference values from Python's hashlib.blake2b(digest_size=32).
		{nil, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
		{[][]byte{[]byte("abc")}, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
		{[][]byte{[]byte("a"), nil, []byte("bc")}, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
	} {
		if got := HashBytes(tc.in...).String(); got != tc.want {
			t.Errorf("HashBytes(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// rfc6962 is the recursive Merkle Tree Hash of RFC 6962 §2.1 (with a zero
// root for no leaves): the reference MerkleRoot must equal.
func rfc6962(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return Hash{}
	case 1:
		return HashBytes([]byte{0}, leaves[0][:])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := rfc6962(leaves[:k]), rfc6962(leaves[k:])
	return HashBytes([]byte{1}, l[:], r[:])
}

func leavesN(n int) []Hash {
	l := make([]Hash, n)
	for i := range l {
		l[i] = HashBytes([]byte{byte(i), byte(i >> 8)})
	}
	return l
}

func TestMerkleRootMatchesRFC6962(t *testing.T) {
	for n := 0; n <= 70; n++ {
		leaves := leavesN(n)
		orig := append([]Hash(nil), leaves...)
		if got, want := MerkleRoot(leaves), rfc6962(leaves); got != want {
			t.Errorf("n=%d: MerkleRoot = %s, RFC 6962 = %s", n, got, want)
		}
		for i := range leaves {
			if leaves[i] != orig[i] {
				t.Fatalf("n=%d: MerkleRoot modified its input", n)
			}
		}
	}
}

func TestMerkleRootProperties(t *testing.T) {
	a, b, c := HashBytes([]byte("a")), HashBytes([]byte("b")), HashBytes([]byte("c"))
	if !MerkleRoot(nil).IsZero() {
		t.Error("root of no leaves is not the zero hash")
	}
	if MerkleRoot([]Hash{a}) == a {
		t.Error("a single leaf's root is the leaf itself (no leaf prefix)")
	}
	// The odd node is promoted, not duplicated: [a b c] and [a b c c] differ.
	if MerkleRoot([]Hash{a, b, c}) == MerkleRoot([]Hash{a, b, c, c}) {
		t.Error("[a b c] and [a b c c] share a root")
	}
	// An inner node cannot pose as a leaf: the root of [a b] is not the
	// root of the one leaf whose node would be H(0x01 ‖ a' ‖ b').
	la, lb := HashBytes([]byte{0}, a[:]), HashBytes([]byte{0}, b[:])
	inner := HashBytes([]byte{1}, la[:], lb[:])
	if MerkleRoot([]Hash{a, b}) != inner {
		t.Fatal("two-leaf root is not H(1 ‖ H(0 ‖ a) ‖ H(0 ‖ b))")
	}
	if MerkleRoot([]Hash{inner}) == inner {
		t.Error("an inner node taken as a leaf gives the same root")
	}
	if MerkleRoot([]Hash{a, b}) == MerkleRoot([]Hash{b, a}) {
		t.Error("order does not matter")
	}
}

func TestParseHash(t *testing.T) {
	h := HashBytes([]byte("x"))
	for _, s := range []string{h.String(), "0x" + h.String(), strings.ToUpper(h.String())} {
		got, err := ParseHash(s)
		if err != nil || got != h {
			t.Errorf("ParseHash(%q) = %s, %v; want %s", s, got, err, h)
		}
	}
	for _, s := range []string{"", "0x", h.String()[:62], h.String() + "00", "zz" + h.String()[2:], "0x0x" + h.String()[4:]} {
		if _, err := ParseHash(s); err == nil {
			t.Errorf("ParseHash(%q) accepted", s)
		}
	}
}

func TestTextMarshalling(t *testing.T) {
	type doc struct {
		H Hash
		A AccountID
		S Signature
	}
	in := doc{H: HashBytes([]byte("h")), A: alice(t), S: Signature{1, 2, 3}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"A":"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"`) {
		t.Errorf("JSON %s does not show the SS58 address", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("JSON round trip: %+v, %v; want %+v", out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"A":"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ"}`), &out); err == nil {
		t.Error("JSON accepted an address with a bad checksum")
	}
}
