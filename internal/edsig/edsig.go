// Package edsig signs and verifies the ed25519 signatures of the task
// protocol (requests and final frames) about twice as fast as
// crypto/ed25519, with github.com/oasisprotocol/curve25519-voi.
//
// Signatures are RFC 8032's deterministic ones, byte for byte those of
// crypto/ed25519 for the same private key and message, so a signature made
// here verifies anywhere. Verification uses crypto/ed25519's equation
// (cofactorless: [S]B = R + [k]A, with S < ℓ and R canonical) and in
// addition rejects public keys that are non-canonical encodings or of small
// order, under which signatures can be forged or made to verify under
// several keys. So what Verify accepts, crypto/ed25519 accepts too, and a
// signature a validator accepted from a miner verifies for anyone it is
// shown to. Chain transactions and blocks keep crypto/ed25519 itself, so
// that every node decides exactly as before.
//
// Verify keeps each public key's decompressed point and tables in a
// bounded cache: a miner sees the same few validators and a validator the
// same pinned miners, request after request.
package edsig

import (
	"crypto/ed25519"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// verifyOptions: crypto/ed25519's cofactorless equation (small-order R
// allowed, as it does), voi's default checks on A (canonical, not of small
// order) and on R (canonical).
var verifyOptions = &voi.Options{Verify: &voi.VerifyOptions{AllowSmallOrderR: true, CofactorlessVerify: true}}

// Sign returns the deterministic ed25519 signature of msg by key, equal to
// crypto/ed25519.Sign(key, msg). It panics if key is not
// ed25519.PrivateKeySize bytes, as crypto/ed25519 does.
func Sign(key ed25519.PrivateKey, msg []byte) (sig [64]byte) {
	copy(sig[:], voi.Sign(voi.PrivateKey(key), msg))
	return sig
}

// DefaultCacheKeys bounds the package-level cache Verify uses. An expanded
// key takes about 1.5 KiB.
const DefaultCacheKeys = 4096

var defaultCache = NewCache(DefaultCacheKeys)

// Verify reports whether sig is pub's signature of msg, using the
// package-level key cache.
func Verify(pub [32]byte, msg []byte, sig *[64]byte) bool {
	return defaultCache.Verify(pub, msg, sig)
}

// Cache verifies signatures with the expanded forms of up to a fixed number
// of public keys. It is safe for concurrent use; a cached key is found
// without a lock.
type Cache struct {
	max  int
	keys sync.Map // [32]byte → *voi.ExpandedPublicKey, immutable once stored
	mu   sync.Mutex
	n    atomic.Int64 // keys stored; changed under mu
}

// NewCache returns a cache of at most maxKeys keys (at least 1).
func NewCache(maxKeys int) *Cache {
	return &Cache{max: max(maxKeys, 1)}
}

// Verify reports whether sig is pub's signature of msg. A key that is not
// a canonical encoding of a point of large order verifies nothing.
func (c *Cache) Verify(pub [32]byte, msg []byte, sig *[64]byte) bool {
	x := c.expanded(pub)
	if x == nil {
		return false
	}
	return voi.VerifyExpandedWithOptions(x, msg, sig[:], verifyOptions)
}

// Len is the number of cached keys.
func (c *Cache) Len() int { return int(c.n.Load()) }

func (c *Cache) expanded(pub [32]byte) *voi.ExpandedPublicKey {
	if x, ok := c.keys.Load(pub); ok {
		return x.(*voi.ExpandedPublicKey)
	}
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(pub[:]))
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys.Load(pub); ok {
		return x // another goroutine stored it meanwhile
	}
	if int(c.n.Load()) >= c.max {
		c.keys.Range(func(k, _ any) bool { // evict one key (the first Range yields)
			c.keys.Delete(k)
			c.n.Add(-1)
			return false
		})
	}
	c.keys.Store(pub, x)
	c.n.Add(1)
	return x
}
