package wallet

// BIP-39 mnemonics and the Substrate way of turning one into an ed25519 key.
//
// A phrase of 12, 15, 18, 21 or 24 words from the BIP-39 English list
// encodes 128 to 256 bits of entropy plus a checksum (the first
// entropy-bits/32 bits of its SHA-256). Bitcoin-style wallets stretch the
// phrase's text; Substrate (substrate-bip39's seed_from_entropy, used by
// sp_core's Pair::from_phrase and by subkey) stretches the entropy instead:
//
//	seed = PBKDF2-HMAC-SHA512(password = entropy, salt = "mnemonic" + passphrase, 2048 rounds, 64 bytes)
//
// and an ed25519 key's secret seed (the "mini secret") is seed[:32]. taobox
// does the same with an empty passphrase, so a phrase restores the same
// account in taobox, subkey --scheme ed25519 and polkadot.js (ed25519).

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cosmos/go-bip39"
)

// ErrMnemonic: a phrase that is not a valid BIP-39 English mnemonic.
var ErrMnemonic = errors.New("wallet: bad mnemonic")

// MnemonicWords lists the phrase lengths NewMnemonic accepts.
var MnemonicWords = []int{12, 15, 18, 21, 24}

var wordIndex = func() map[string]int {
	m := make(map[string]int, len(bip39.EnglishWordList))
	for i, w := range bip39.EnglishWordList {
		m[w] = i
	}
	return m
}()

// NewMnemonic returns a new phrase of words words (12, 15, 18, 21 or 24)
// from entropy read from r (nil: crypto/rand).
func NewMnemonic(words int, r io.Reader) (string, error) {
	if words%3 != 0 || words < 12 || words > 24 {
		return "", fmt.Errorf("%w: %d words; a phrase has 12, 15, 18, 21 or 24", ErrMnemonic, words)
	}
	if r == nil {
		r = rand.Reader
	}
	entropy := make([]byte, words/3*4)
	if _, err := io.ReadFull(r, entropy); err != nil {
		return "", fmt.Errorf("wallet: random entropy: %w", err)
	}
	return EntropyToMnemonic(entropy)
}

// EntropyToMnemonic returns the phrase of entropy (16, 20, 24, 28 or 32
// bytes).
func EntropyToMnemonic(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("%w: entropy of %d bytes; want 16, 20, 24, 28 or 32", ErrMnemonic, n)
	}
	sum := sha256.Sum256(entropy)
	bits := append(append([]byte{}, entropy...), sum[0]) // checksum: the first n/4 bits of sum
	words := make([]string, n*8/32*3)
	for i := range words {
		words[i] = bip39.EnglishWordList[bitsAt(bits, i*11)]
	}
	return strings.Join(words, " "), nil
}

// bitsAt returns the 11 bits of b starting at bit off (big-endian).
func bitsAt(b []byte, off int) int {
	v := 0
	for i := off; i < off+11; i++ {
		v = v<<1 | int(b[i/8]>>(7-i%8)&1)
	}
	return v
}

// MnemonicToEntropy checks phrase (words separated by any white space, any
// case) and returns its entropy. Errors wrap ErrMnemonic and say which
// problem: the word count, an unknown word and its position, or a bad
// checksum (a word mistyped as another valid word, or words swapped).
func MnemonicToEntropy(phrase string) ([]byte, error) {
	words := strings.Fields(strings.ToLower(phrase))
	n := len(words)
	if n%3 != 0 || n < 12 || n > 24 {
		return nil, fmt.Errorf("%w: %d words; a phrase has 12, 15, 18, 21 or 24", ErrMnemonic, n)
	}
	bits := make([]byte, (n*11+7)/8)
	for i, w := range words {
		idx, ok := wordIndex[w]
		if !ok {
			return nil, fmt.Errorf("%w: unknown word %q at position %d (not in the BIP-39 English list; check its spelling)", ErrMnemonic, w, i+1)
		}
		for j := range 11 {
			if idx>>(10-j)&1 == 1 {
				p := i*11 + j
				bits[p/8] |= 1 << (7 - p%8)
			}
		}
	}
	entLen := n / 3 * 4 // bytes
	entropy := bits[:entLen]
	csBits := n / 3
	sum := sha256.Sum256(entropy)
	want := sum[0] >> (8 - csBits)
	got := bits[entLen] >> (8 - csBits)
	if got != want {
		return nil, fmt.Errorf("%w: bad checksum; a word is mistyped as another list word, or two words are swapped", ErrMnemonic)
	}
	return append([]byte(nil), entropy...), nil
}

// SubstrateSeed returns substrate-bip39's 64-byte seed_from_entropy of
// entropy with passphrase (the "password" of a Substrate secret URI).
func SubstrateSeed(entropy []byte, passphrase string) []byte {
	seed, err := pbkdf2.Key(sha512.New, string(entropy), []byte("mnemonic"+passphrase), 2048, 64)
	if err != nil {
		panic(err) // only for lengths PBKDF2 cannot give; 64 is fine
	}
	return seed
}

// SeedFromMnemonic checks phrase and returns the 32-byte ed25519 seed that
// Substrate's ed25519 Pair::from_phrase(phrase, None) derives from it.
func SeedFromMnemonic(phrase string) ([]byte, error) {
	entropy, err := MnemonicToEntropy(phrase)
	if err != nil {
		return nil, err
	}
	return SubstrateSeed(entropy, "")[:32], nil
}
