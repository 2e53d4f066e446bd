package wallet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"taobox/chain/types"
)

// Vectors: BIP-39's (Trezor) entropy/phrase pairs; substrate-bip39's
// seed_from_entropy seeds with the passphrase "Substrate"
// (paritytech/substrate-bip39 src/lib.rs, vectors_are_correct).
var substrateVectors = []struct{ entropy, phrase, seed string }{
	{"00000000000000000000000000000000",
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
		"44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e33f50c3d5c84fa3e5399c72d6cbbbbc4a49bf76f76d952f479d74655a2ef2d453"},
	{"7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
		"legal winner thank year wave sausage worth useful legal winner thank yellow",
		"4313249608fe8ac10fd5886c92c4579007272cb77c21551ee5b8d60b780416850f1e26c1f4b8d88ece681cb058ab66d6182bc2ce5a03181f7b74c27576b5c8bf"},
	{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote", ""},
	{"8080808080808080808080808080808080808080808080808080808080808080",
		"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless", ""},
}

func TestMnemonicVectors(t *testing.T) {
	for _, v := range substrateVectors {
		ent, _ := hex.DecodeString(v.entropy)
		phrase, err := EntropyToMnemonic(ent)
		if err != nil || phrase != v.phrase {
			t.Errorf("EntropyToMnemonic(%s) = %q, %v; want %q", v.entropy, phrase, err, v.phrase)
		}
		got, err := MnemonicToEntropy(strings.ToUpper(v.phrase) + "\n")
		if err != nil || !bytes.Equal(got, ent) {
			t.Errorf("MnemonicToEntropy(%q) = %x, %v", v.phrase, got, err)
		}
		if v.seed != "" {
			if s := hex.EncodeToString(SubstrateSeed(ent, "Substrate")); s != v.seed {
				t.Errorf("SubstrateSeed(%s, Substrate) = %s, want %s", v.entropy, s, v.seed)
			}
		}
	}
}

// TestSubkeyVectors checks SeedFromMnemonic against subkey's output
// (docs.substrate.io, "subkey inspect"): the secret seed is the scheme's
// mini secret, and with --scheme ed25519 the public key is ed25519's.
func TestSubkeyVectors(t *testing.T) {
	seed, err := SeedFromMnemonic("caution juice atom organ advance problem want pledge someone senior holiday very")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(seed); got != "c8fa03532fb22ee1f7f6908b9c02b4e72483f0dbd66e4cd456b8f34c6230b849" {
		t.Errorf("secret seed %s", got)
	}
	seed, err = SeedFromMnemonic("infant salmon buzz patrol maple subject turtle cute legend song vital leisure")
	if err != nil {
		t.Fatal(err)
	}
	id := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed))
	if hex.EncodeToString(id[:]) != "1a0e2bf1e0195a1f5396c5fd209a620a48fe90f6f336d89c89405a0183a857a3" ||
		id.String() != "5CesK3uTmn4NGfD3oyGBd1jrp4EfRyYdtqL3ERe9SXv8jUHb" {
		t.Errorf("ed25519 account %x %s", id[:], id)
	}
}

func TestNewMnemonicRoundTrip(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{7})
	for _, n := range MnemonicWords {
		for range 50 {
			phrase, err := NewMnemonic(n, rng)
			if err != nil {
				t.Fatal(err)
			}
			if w := len(strings.Fields(phrase)); w != n {
				t.Fatalf("%d words, want %d", w, n)
			}
			ent, err := MnemonicToEntropy(phrase)
			if err != nil || len(ent) != n/3*4 {
				t.Fatalf("%q: %v", phrase, err)
			}
			if again, _ := EntropyToMnemonic(ent); again != phrase {
				t.Fatalf("round trip %q -> %q", phrase, again)
			}
		}
	}
	for _, n := range []int{0, 11, 13, 27} {
		if _, err := NewMnemonic(n, nil); !errors.Is(err, ErrMnemonic) {
			t.Errorf("NewMnemonic(%d) = %v", n, err)
		}
	}
	a, _ := NewMnemonic(12, nil)
	b, _ := NewMnemonic(12, nil)
	if a == b {
		t.Fatal("two phrases from crypto/rand are equal")
	}
}

func TestMnemonicErrors(t *testing.T) {
	good := substrateVectors[1].phrase
	words := strings.Fields(good)
	swap := append([]string{}, words...)
	swap[0], swap[1] = swap[1], swap[0]
	other := append([]string{}, words...)
	other[3] = "abandon"
	for _, tc := range []struct{ name, phrase, mention string }{
		{"empty", "", "0 words"},
		{"eleven", strings.Join(words[:11], " "), "11 words"},
		{"thirteen", good + " zoo", "13 words"},
		{"unknown word", strings.Replace(good, "sausage", "sausag", 1), `unknown word "sausag" at position 6`},
		{"unknown last", strings.Join(words[:11], " ") + " yellowx", `unknown word "yellowx" at position 12`},
		{"swapped", strings.Join(swap, " "), "bad checksum"},
		{"wrong word", strings.Join(other, " "), "bad checksum"},
	} {
		_, err := MnemonicToEntropy(tc.phrase)
		if !errors.Is(err, ErrMnemonic) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v, want ErrMnemonic mentioning %q", tc.name, err, tc.mention)
		}
		if _, err := SeedFromMnemonic(tc.phrase); !errors.Is(err, ErrMnemonic) {
			t.Errorf("%s: SeedFromMnemonic = %v", tc.name, err)
		}
	}
	// Every single-word substitution of the last word but the right one
	// fails the checksum or, for the 1 in 16 that pass, gives other
	// entropy; none gives the same key.
	ent, _ := MnemonicToEntropy(good)
	for _, w := range []string{"abandon", "zoo", "wrong", "year"} {
		e, err := MnemonicToEntropy(strings.Join(append(append([]string{}, words[:11]...), w), " "))
		if err == nil && bytes.Equal(e, ent) {
			t.Errorf("last word %q gives the same entropy", w)
		}
	}
}

// FuzzMnemonic: any text either fails with ErrMnemonic or decodes to
// entropy whose phrase decodes back to it.
func FuzzMnemonic(f *testing.F) {
	for _, v := range substrateVectors {
		f.Add(v.phrase)
	}
	f.Add("abandon")
	f.Fuzz(func(t *testing.T, phrase string) {
		ent, err := MnemonicToEntropy(phrase)
		if err != nil {
			if !errors.Is(err, ErrMnemonic) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		again, err := EntropyToMnemonic(ent)
		if err != nil {
			t.Fatal(err)
		}
		if e2, err := MnemonicToEntropy(again); err != nil || !bytes.Equal(e2, ent) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
