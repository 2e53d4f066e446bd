package wallet

// Encrypted key files.
//
// An encrypted key file is 171 bytes of binary, all of it fixed-size:
//
//	off len
//	  0   8  magic "TAOBOXKF"
//	  8   1  format version, 1
//	  9   1  KDF, 1 = Argon2id
//	 10   4  Argon2 time (passes), big-endian
//	 14   4  Argon2 memory in KiB, big-endian
//	 18   1  Argon2 threads
//	 19  16  salt, random per file
//	 35  24  XChaCha20-Poly1305 nonce, random per file
//	 59  32  the public key (account) of the sealed seed
//	 91  48  the sealed 32-byte ed25519 seed and its 16-byte Poly1305 tag
//	139  32  SHA-256 of bytes 0..138
//
// The key is Argon2id(password, salt, time, memory, threads) truncated to
// 32 bytes; the AEAD's additional data is the header (bytes 0..90), so the
// KDF parameters, salt, nonce and address cannot be changed without the
// tag failing. The trailing SHA-256 is not a secret check: it tells a
// damaged file (ErrCorrupt) from a wrong password (ErrWrongPassword), which
// the AEAD alone cannot. Someone who edits the file on purpose and fixes the
// checksum gets ErrWrongPassword, never a different key.
//
// Design note: a fixed-size binary file, rather than JSON with base64
// fields, makes truncation and trailing data the same check (the length)
// and leaves the decoder no choices to fuzz beyond the header's ranges.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"taobox/chain/types"
)

// Sealed key file layout (see the comment at the top of this file).
const (
	sealedMagic    = "TAOBOXKF"
	sealedVersion  = 1
	kdfArgon2id    = 1
	saltSize       = 16
	headerSize     = 8 + 1 + 1 + 4 + 4 + 1 + saltSize + chacha20poly1305.NonceSizeX + 32
	sealedSize     = headerSize + ed25519.SeedSize + chacha20poly1305.Overhead + sha256.Size
	maxPasswordLen = 1024
	// MinPasswordLen is the shortest password a new encrypted key accepts.
	MinPasswordLen = 8
)

var (
	// ErrWrongPassword: the password does not open an encrypted key file
	// (whose checksum is intact, so the file itself is not damaged).
	ErrWrongPassword = errors.New("wallet: wrong password")
	// ErrNoPassword: an encrypted key is needed and no password source
	// gave a password.
	ErrNoPassword = errors.New("wallet: no password")
	// ErrWeakPassword: a new password that is too short or too long.
	ErrWeakPassword = errors.New("wallet: password not accepted")
)

// KDFParams are the Argon2id parameters of an encrypted key file. They are
// stored in the file's header, so a file sealed with other parameters
// still opens.
type KDFParams struct {
	Time      uint32 // passes over the memory; 1 to 64
	MemoryKiB uint32 // memory in KiB; 8*Threads to 4 GiB (4<<20)
	Threads   uint8  // lanes; 1 to 64
}

// DefaultKDF is what new key files use: Argon2id with 5 passes over 128
// MiB in 4 lanes (RFC 9106's second option, with more memory and passes).
// One unlock took 0.44 to 1.03 s on the 2 shared, loaded AMD EPYC cores
// of the development machine (BenchmarkOpenDefaultKDF); an attacker pays
// as much per guess. Small devices may seal with less memory ('taobox wallet ...
// --kdf-memory'); the parameters are stored in each file.
var DefaultKDF = KDFParams{Time: 5, MemoryKiB: 128 << 10, Threads: 4}

// Validate reports whether p is within the bounds a key file may carry; a
// header outside them is corrupt (and could otherwise make a reader
// allocate gigabytes).
func (p KDFParams) Validate() error {
	switch {
	case p.Time < 1 || p.Time > 64:
		return fmt.Errorf("argon2 time %d out of range 1..64", p.Time)
	case p.Threads < 1 || p.Threads > 64:
		return fmt.Errorf("argon2 threads %d out of range 1..64", p.Threads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 4<<20:
		return fmt.Errorf("argon2 memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), 4<<20)
	}
	return nil
}

func (p KDFParams) String() string {
	return fmt.Sprintf("argon2id t=%d m=%dMiB p=%d", p.Time, p.MemoryKiB>>10, p.Threads)
}

// Seal says how a new key file is encrypted.
type Seal struct {
	// Password encrypts the key; MinPasswordLen to 1024 bytes.
	Password []byte
	// KDF is the Argon2id cost; the zero value means DefaultKDF.
	KDF KDFParams
	// Rand supplies the salt and nonce; nil means crypto/rand.
	Rand io.Reader
}

// KeyInfo is what a key file says without its password.
type KeyInfo struct {
	Address   types.AccountID
	Encrypted bool
	KDF       KDFParams // of an encrypted file
}

// SealSeed returns the encrypted key file of seed (32 bytes) under s.
func SealSeed(seed []byte, s Seal) ([]byte, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("wallet: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	if err := CheckNewPassword(s.Password); err != nil {
		return nil, err
	}
	kdf := s.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDF
	}
	if err := kdf.Validate(); err != nil {
		return nil, fmt.Errorf("wallet: %v", err)
	}
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	out := make([]byte, headerSize, sealedSize)
	copy(out, sealedMagic)
	out[8], out[9] = sealedVersion, kdfArgon2id
	binary.BigEndian.PutUint32(out[10:], kdf.Time)
	binary.BigEndian.PutUint32(out[14:], kdf.MemoryKiB)
	out[18] = kdf.Threads
	salt, nonce := out[19:19+saltSize], out[35:35+chacha20poly1305.NonceSizeX]
	if _, err := io.ReadFull(r, out[19:59]); err != nil {
		return nil, fmt.Errorf("wallet: random salt and nonce: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	copy(out[59:91], pub)
	aead, err := chacha20poly1305.NewX(argon2.IDKey(s.Password, salt, kdf.Time, kdf.MemoryKiB, kdf.Threads, chacha20poly1305.KeySize))
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	out = aead.Seal(out, nonce, seed, out[:headerSize])
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// CheckNewPassword reports whether password may seal a new key: at least
// MinPasswordLen bytes and at most 1024.
func CheckNewPassword(password []byte) error {
	if len(password) < MinPasswordLen {
		return fmt.Errorf("%w: %d characters, use at least %d (a passphrase of several words is best)", ErrWeakPassword, len(password), MinPasswordLen)
	}
	if len(password) > maxPasswordLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, maxPasswordLen)
	}
	return nil
}

// isSealed reports whether data starts like an encrypted key file.
func isSealed(data []byte) bool { return bytes.HasPrefix(data, []byte(sealedMagic)) }

// parseSealedHeader checks an encrypted key file's length, version, KDF
// bounds and checksum, without a password. Errors wrap ErrCorrupt.
func parseSealedHeader(data []byte) (KeyInfo, error) {
	if len(data) != sealedSize {
		return KeyInfo{}, fmt.Errorf("%w: encrypted key file of %d bytes, want %d (truncated or padded)", ErrCorrupt, len(data), sealedSize)
	}
	if data[8] != sealedVersion {
		return KeyInfo{}, fmt.Errorf("%w: key file format version %d; this taobox reads version %d (upgrade taobox)", ErrCorrupt, data[8], sealedVersion)
	}
	sum := sha256.Sum256(data[:sealedSize-sha256.Size])
	if !bytes.Equal(sum[:], data[sealedSize-sha256.Size:]) {
		return KeyInfo{}, fmt.Errorf("%w: checksum mismatch, the file is damaged (restore it from a backup or regenerate it from its mnemonic)", ErrCorrupt)
	}
	if data[9] != kdfArgon2id {
		return KeyInfo{}, fmt.Errorf("%w: unknown KDF %d", ErrCorrupt, data[9])
	}
	kdf := KDFParams{Time: binary.BigEndian.Uint32(data[10:]), MemoryKiB: binary.BigEndian.Uint32(data[14:]), Threads: data[18]}
	if err := kdf.Validate(); err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	info := KeyInfo{Encrypted: true, KDF: kdf}
	copy(info.Address[:], data[59:91])
	return info, nil
}

// OpenSealed decrypts an encrypted key file with password. A damaged file
// (bad length, version, KDF bounds or checksum, or a seed that is not the
// header's address) gives ErrCorrupt; a password that does not open an
// intact file gives ErrWrongPassword.
func OpenSealed(data, password []byte) (ed25519.PrivateKey, error) {
	info, err := parseSealedHeader(data)
	if err != nil {
		return nil, err
	}
	key := argon2.IDKey(password, data[19:19+saltSize], info.KDF.Time, info.KDF.MemoryKiB, info.KDF.Threads, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	seed, err := aead.Open(nil, data[35:59], data[headerSize:sealedSize-sha256.Size], data[:headerSize])
	if err != nil {
		return nil, ErrWrongPassword
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if types.AccountIDFromPrivateKey(priv) != info.Address {
		return nil, fmt.Errorf("%w: the sealed seed is not the header's address", ErrCorrupt)
	}
	return priv, nil
}

// DecodeKeyInfo reads what a key file's bytes say without a password: the
// address, and whether (and how) it is encrypted. A plain file's seed is
// checked against its address. Errors wrap ErrCorrupt.
func DecodeKeyInfo(data []byte) (KeyInfo, error) {
	if isSealed(data) {
		return parseSealedHeader(data)
	}
	priv, err := parsePlain(data)
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{Address: types.AccountIDFromPrivateKey(priv)}, nil
}

// DecodeKey returns the private key of a key file's bytes: a plain file
// directly, an encrypted one with the password that password returns (it
// is called only for an encrypted file). Errors wrap ErrCorrupt,
// ErrWrongPassword, or what password returned.
func DecodeKey(data []byte, password func() ([]byte, error)) (ed25519.PrivateKey, error) {
	if !isSealed(data) {
		return parsePlain(data)
	}
	if _, err := parseSealedHeader(data); err != nil {
		return nil, err
	}
	pw, err := password()
	if err != nil {
		return nil, err
	}
	return OpenSealed(data, pw)
}
