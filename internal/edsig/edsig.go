// Package edsig signs and verifies the ed25519 signatures of the task
// protocol (requests, final frames, gateway receipts) about twice as fast
// as crypto/ed25519, with github.com/oasisprotocol/curve25519-voi.
//
// Signatures are RFC 8032's deterministic ones, byte for byte those of
// crypto/ed25519 for the same key and message, so a signature made here
// verifies anywhere. Verification is cofactored (RFC 8032 §5.1.7, FIPS
// 186-5) and rejects public keys that are non-canonical or of small order;
// it accepts every signature an honest signer produces. It may differ from
// crypto/ed25519's cofactorless check only on crafted signatures, so it is
// not used where every node must decide alike (chain transactions and
// blocks keep crypto/ed25519).
//
// Verify keeps each public key's decompressed point and tables in a
// bounded cache: a miner sees the same few validators and a validator the
// same pinned miners, request after request.
package edsig

import (
	"crypto/ed25519"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

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
// of public keys. It is safe for concurrent use.
type Cache struct {
	max  int
	mu   sync.RWMutex
	keys map[[32]byte]*voi.ExpandedPublicKey // immutable once stored
}

// NewCache returns a cache of at most max keys (at least 1).
func NewCache(maxKeys int) *Cache {
	return &Cache{max: max(maxKeys, 1), keys: make(map[[32]byte]*voi.ExpandedPublicKey)}
}

// Verify reports whether sig is pub's signature of msg. A key that is not
// a canonical encoding of a point of large order verifies nothing.
func (c *Cache) Verify(pub [32]byte, msg []byte, sig *[64]byte) bool {
	x := c.expanded(pub)
	if x == nil {
		return false
	}
	return voi.VerifyExpanded(x, msg, sig[:])
}

// Len is the number of cached keys.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

func (c *Cache) expanded(pub [32]byte) *voi.ExpandedPublicKey {
	c.mu.RLock()
	x := c.keys[pub]
	c.mu.RUnlock()
	if x != nil {
		return x
	}
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(pub[:]))
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= c.max {
		for k := range c.keys { // map order is random: evict one key at random
			delete(c.keys, k)
			break
		}
	}
	c.keys[pub] = x
	return x
}
