package edsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

func key(i uint64) ed25519.PrivateKey {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], i)
	return ed25519.NewKeyFromSeed(seed[:])
}

func pubOf(k ed25519.PrivateKey) (p [32]byte) {
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}

// Signatures are crypto/ed25519's, byte for byte, and verify both ways.
func TestSignMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		k := key(uint64(i))
		msg := make([]byte, r.IntN(300))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		sig := Sign(k, msg)
		if want := ed25519.Sign(k, msg); !bytes.Equal(sig[:], want) {
			t.Fatalf("key %d, %d-byte message: signature %x, crypto/ed25519 %x", i, len(msg), sig, want)
		}
		if !Verify(pubOf(k), msg, &sig) {
			t.Fatalf("key %d: own signature rejected", i)
		}
	}
}

// RFC 8032 §7.1, test 2.
func TestRFC8032Vector(t *testing.T) {
	seed, _ := hex.DecodeString("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
	wantSig, _ := hex.DecodeString("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
	k := ed25519.NewKeyFromSeed(seed)
	sig := Sign(k, []byte{0x72})
	if !bytes.Equal(sig[:], wantSig) {
		t.Fatalf("signature %x, want %x", sig, wantSig)
	}
	if !Verify(pubOf(k), []byte{0x72}, &sig) {
		t.Fatal("RFC 8032 signature rejected")
	}
}

// Any change to the key, the message or the signature is rejected.
func TestVerifyRejectsChanges(t *testing.T) {
	k := key(7)
	pub, msg := pubOf(k), []byte("a request envelope")
	sig := Sign(k, msg)
	for bit := range 64 * 8 {
		s := sig
		s[bit/8] ^= 1 << (bit % 8)
		if Verify(pub, msg, &s) {
			t.Fatalf("signature with bit %d flipped accepted", bit)
		}
	}
	for bit := range len(msg) * 8 {
		m := bytes.Clone(msg)
		m[bit/8] ^= 1 << (bit % 8)
		if Verify(pub, m, &sig) {
			t.Fatalf("message with bit %d flipped accepted", bit)
		}
	}
	for bit := range 32 * 8 {
		p := pub
		p[bit/8] ^= 1 << (bit % 8)
		if Verify(p, msg, &sig) {
			t.Fatalf("key with bit %d flipped accepted", bit)
		}
	}
	if Verify(pubOf(key(8)), msg, &sig) {
		t.Fatal("another key's signature accepted")
	}
}

// S must be reduced: the same signature with S+ℓ is rejected (malleability).
func TestVerifyRejectsUnreducedS(t *testing.T) {
	k := key(3)
	msg := []byte("final frame")
	sig := Sign(k, msg)
	// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	var carry uint16
	for i := range 32 {
		v := uint16(sig[32+i]) + uint16(l[i]) + carry
		sig[32+i], carry = byte(v), v>>8
	}
	if carry != 0 {
		t.Fatal("S+ℓ overflowed 256 bits")
	}
	if Verify(pubOf(k), msg, &sig) {
		t.Fatal("signature with S+ℓ accepted")
	}
	if ed25519.Verify(k.Public().(ed25519.PublicKey), msg, sig[:]) {
		t.Fatal("crypto/ed25519 accepted S+ℓ (test is wrong)")
	}
}

// A small-order public key (here the identity) would let anyone forge a
// signature with R = the identity and S = 0, which cofactorless
// crypto/ed25519 accepts; it is rejected here.
func TestVerifyRejectsSmallOrderKey(t *testing.T) {
	var identity [32]byte
	identity[0] = 1
	var sig [64]byte
	sig[0] = 1 // R = identity, S = 0
	msg := []byte("anything")
	if !ed25519.Verify(identity[:], msg, sig[:]) {
		t.Fatal("crypto/ed25519 rejects the forgery (test is wrong)")
	}
	if Verify(identity, msg, &sig) {
		t.Fatal("forgery under the identity key accepted")
	}
}

// The cache holds at most its bound and verifies the same with or
// without the key cached.
func TestCacheBound(t *testing.T) {
	c := NewCache(3)
	msg := []byte("m")
	for round := range 3 {
		for i := range 10 {
			k := key(uint64(i))
			sig := Sign(k, msg)
			if !c.Verify(pubOf(k), msg, &sig) {
				t.Fatalf("round %d key %d rejected", round, i)
			}
			other := Sign(key(uint64(i+1)), msg)
			if c.Verify(pubOf(k), msg, &other) {
				t.Fatalf("round %d key %d accepted another key's signature", round, i)
			}
			if n := c.Len(); n > 3 {
				t.Fatalf("cache holds %d keys, bound 3", n)
			}
		}
	}
}

// Concurrent verifiers share the cache (run with -race).
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(4)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				k := key(uint64((g + i) % 6))
				msg := sha512.Sum512([]byte{byte(g), byte(i)})
				sig := Sign(k, msg[:])
				if !c.Verify(pubOf(k), msg[:], &sig) {
					errs <- "good signature rejected"
					return
				}
				sig[5] ^= 1
				if c.Verify(pubOf(k), msg[:], &sig) {
					errs <- "bad signature accepted"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// torsion8 is a point of order 8 (RFC 8032 keys are multiples of B; adding
// it makes R or A carry a torsion component).
var torsion8 = func() curve.EdwardsPoint {
	b, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	var c curve.CompressedEdwardsY
	if _, err := c.SetBytes(b); err != nil {
		panic(err)
	}
	var t curve.EdwardsPoint
	if _, err := t.SetCompressedY(&c); err != nil {
		panic(err)
	}
	return t
}()

// craft signs msg with the secret scalar and nonce derived from seed, but
// with iR·T added to the nonce point R and iA·T to the public key A (T of
// order 8), S computed honestly for that R and A: the signatures a signer
// who knows its key can make that cofactored and cofactorless verifiers
// judge differently.
func craft(seed uint64, msg []byte, iR, iA int) (pub [32]byte, sig [64]byte) {
	k := key(seed)
	h := sha512.Sum512(k[:32])
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	var a scalar.Scalar
	if _, err := a.SetBits(h[:32]); err != nil {
		panic(err)
	}
	tors := func(i int) *curve.EdwardsPoint {
		var p curve.EdwardsPoint
		p.Identity()
		for range i % 8 {
			p.Add(&p, &torsion8)
		}
		return &p
	}
	var A curve.EdwardsPoint
	A.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &a)
	A.Add(&A, tors(iA))
	var ac curve.CompressedEdwardsY
	ac.SetEdwardsPoint(&A)
	copy(pub[:], ac[:])

	rh := sha512.Sum512(append(bytes.Clone(h[32:]), msg...))
	var r scalar.Scalar
	if _, err := r.SetBytesModOrderWide(rh[:]); err != nil {
		panic(err)
	}
	var R curve.EdwardsPoint
	R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &r)
	R.Add(&R, tors(iR))
	var rc curve.CompressedEdwardsY
	rc.SetEdwardsPoint(&R)
	d := sha512.New()
	d.Write(rc[:])
	d.Write(pub[:])
	d.Write(msg)
	var kk, S scalar.Scalar
	if _, err := kk.SetBytesModOrderWide(d.Sum(nil)); err != nil {
		panic(err)
	}
	S.Mul(&kk, &a)
	S.Add(&S, &r)
	copy(sig[:32], rc[:])
	if err := S.ToBytes(sig[32:]); err != nil {
		panic(err)
	}
	return pub, sig
}

// Signatures with torsion in R or A: Verify decides as crypto/ed25519
// does (cofactorless), never accepting what it rejects; a cofactored
// verifier would accept all of them.
func TestTorsionAgreesWithStdlib(t *testing.T) {
	accepted := map[bool]int{}
	for i := range 64 {
		msg := []byte{byte(i), 'm'}
		for _, c := range []struct{ iR, iA int }{{0, 0}, {1, 0}, {3, 0}, {0, 1}, {2, 5}} {
			pub, sig := craft(uint64(i%4), msg, c.iR, c.iA)
			got, want := Verify(pub, msg, &sig), ed25519.Verify(pub[:], msg, sig[:])
			if got != want {
				t.Fatalf("R+%dT, A+%dT, message %d: Verify %v, crypto/ed25519 %v", c.iR, c.iA, i, got, want)
			}
			if c.iR%8 != 0 && c.iA%8 == 0 && got {
				t.Fatalf("R+%dT under an honest key accepted", c.iR)
			}
			accepted[c.iR == 0 && c.iA == 0] = accepted[c.iR == 0 && c.iA == 0] + b2i(got)
		}
	}
	if accepted[true] != 64 {
		t.Fatalf("honest signatures accepted %d of 64", accepted[true])
	}
	if accepted[false] == 0 {
		t.Fatal("no signature under a mixed-order key verified: the test no longer tells cofactorless from strict")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Whatever Verify accepts, crypto/ed25519 accepts (for any key, honest or
// with torsion); a changed signature byte is rejected by both.
func FuzzVerify(f *testing.F) {
	f.Add(uint64(1), []byte("hello"), uint8(0), uint8(1), uint8(0))
	f.Add(uint64(99), []byte{}, uint8(63), uint8(0x80), uint8(0x13))
	f.Fuzz(func(t *testing.T, seed uint64, msg []byte, at, mask, tors uint8) {
		pub, sig := craft(seed, msg, int(tors&7), int(tors>>3&7))
		if Verify(pub, msg, &sig) && !ed25519.Verify(pub[:], msg, sig[:]) {
			t.Fatalf("torsion %#x: accepted here, rejected by crypto/ed25519", tors)
		}
		if tors&0x3f == 0 {
			k := key(seed)
			if !bytes.Equal(sig[:], ed25519.Sign(k, msg)) {
				t.Fatal("crafted signature without torsion differs from crypto/ed25519")
			}
			if s := Sign(k, msg); s != sig {
				t.Fatal("signature differs from crypto/ed25519")
			}
			if !Verify(pub, msg, &sig) {
				t.Fatal("good signature rejected")
			}
		}
		if mask == 0 {
			return
		}
		sig[at%64] ^= mask
		if Verify(pub, msg, &sig) && !ed25519.Verify(pub[:], msg, sig[:]) {
			t.Fatalf("signature with byte %d ^ %#x accepted here only", at%64, mask)
		}
		if tors&0x3f == 0 && (Verify(pub, msg, &sig) || ed25519.Verify(pub[:], msg, sig[:])) {
			t.Fatalf("signature with byte %d ^ %#x accepted", at%64, mask)
		}
	})
}

// Sign panics on a key of the wrong size, as crypto/ed25519 does.
func TestSignBadKeyPanics(t *testing.T) {
	for _, n := range []int{0, 32, 63} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%d-byte key: no panic", n)
				}
			}()
			Sign(make(ed25519.PrivateKey, n), []byte("m"))
		}()
	}
}

func BenchmarkSign(b *testing.B) {
	k, msg := key(1), make([]byte, 200)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(k, msg)
		}
	})
	b.Run("edsig", func(b *testing.B) {
		for b.Loop() {
			Sign(k, msg)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	k, msg := key(1), make([]byte, 200)
	sig, pub := Sign(k, msg), pubOf(k)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub[:], msg, sig[:])
		}
	})
	b.Run("edsig-cached", func(b *testing.B) {
		for b.Loop() {
			Verify(pub, msg, &sig)
		}
	})
	b.Run("edsig-uncached", func(b *testing.B) {
		c := NewCache(1)
		other := pubOf(key(2))
		for i := 0; b.Loop(); i++ { // every verify finds the other key cached
			if i%2 == 0 {
				c.Verify(pub, msg, &sig)
			} else {
				c.Verify(other, msg, &sig)
			}
		}
	})
}
