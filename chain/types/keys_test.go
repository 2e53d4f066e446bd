package types

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

const (
	alicePub  = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
	aliceAddr = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
)

func alice(t testing.TB) AccountID {
	t.Helper()
	b, err := hex.DecodeString(alicePub)
	if err != nil {
		t.Fatal(err)
	}
	return AccountIDFromPublicKey(b)
}

func TestSS58Vectors(t *testing.T) {
	for _, tc := range []struct{ pub, addr string }{
		{alicePub, aliceAddr}, // Substrate's //Alice
		{"8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"}, // //Bob
		{strings.Repeat("00", 32), "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"},
		{strings.Repeat("ff", 32), "5HrN7fHLXWcFiXPwwtq2EkSGns9eMt5P7SpeTPewumZy6ftb"},
	} {
		var id AccountID
		hex.Decode(id[:], []byte(tc.pub))
		if got := SS58Encode(id); got != tc.addr {
			t.Errorf("SS58Encode(%s) = %s, want %s", tc.pub, got, tc.addr)
		}
		if got := id.String(); got != tc.addr {
			t.Errorf("String() = %s, want %s", got, tc.addr)
		}
		back, err := ParseAddress(tc.addr)
		if err != nil || back != id {
			t.Errorf("ParseAddress(%s) = %x, %v; want %s", tc.addr, back, err, tc.pub)
		}
	}
}

func TestParseAddressRejects(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "checksum"},
		{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQ0", "not base58"},
		{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQl", "not base58"},
		{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQé", "non-ASCII"},
		{"15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5", "network prefix 0"}, // Alice on Polkadot
		{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKut", "bytes"},
		{"1" + aliceAddr, "49 characters"},
		{aliceAddr + "1", "49 characters"},
		{"1111", "4 bytes"},
		{strings.Repeat("5", 200), "characters"},
		{" " + aliceAddr, "not base58"},
	} {
		_, err := ParseAddress(tc.in)
		if err == nil {
			t.Errorf("ParseAddress(%q) accepted", tc.in)
			continue
		}
		if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseAddress(%q) = %v; want ErrBadAddress saying %q", tc.in, err, tc.why)
		}
	}
}

func TestBase58RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range [][]byte{nil, {0}, {0, 0, 1}, {57}, {58}, {255, 255}} {
		if got, err := base58Decode(base58Encode(b)); err != nil || !bytes.Equal(got, b) {
			t.Errorf("base58 round trip of %x: %x, %v", b, got, err)
		}
	}
	for range 500 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) > 0 {
				b[i] = byte(rng.Uint32())
			}
		}
		got, err := base58Decode(base58Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("base58 round trip of %x: %x, %v", b, got, err)
		}
	}
	// Vectors from Bitcoin Core's base58_encode_decode.json.
	for _, tc := range []struct{ hex, b58 string }{
		{"", ""},
		{"572e4794", "3EFU7m"},
		{"516b6fcd0f", "ABnLTmg"},
		{"00000000000000000000", "1111111111"},
		{"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		if got := base58Encode(b); got != tc.b58 {
			t.Errorf("base58Encode(%s) = %s, want %s", tc.hex, got, tc.b58)
		}
		if got, err := base58Decode(tc.b58); err != nil || hex.EncodeToString(got) != tc.hex {
			t.Errorf("base58Decode(%s) = %x, %v; want %s", tc.b58, got, err, tc.hex)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	id, priv, err := GenerateKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	want := ed25519.NewKeyFromSeed(seed)
	if !priv.Equal(want) || id != AccountIDFromPublicKey(want.Public().(ed25519.PublicKey)) {
		t.Error("GenerateKey is not NewKeyFromSeed of the bytes read")
	}
	if !bytes.Equal(id.PublicKey(), want.Public().(ed25519.PublicKey)) {
		t.Error("PublicKey() differs")
	}
	if _, _, err := GenerateKey(bytes.NewReader(seed[:10])); err == nil {
		t.Error("GenerateKey accepted a short reader")
	}
	a, _, err := GenerateKey(nil)
	b, _, err2 := GenerateKey(nil)
	if err != nil || err2 != nil || a == b {
		t.Errorf("GenerateKey(nil): %v %v, distinct=%v", err, err2, a != b)
	}
}

func TestAccountIDFromPublicKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic on a 31-byte key")
		}
	}()
	AccountIDFromPublicKey(make([]byte, 31))
}
