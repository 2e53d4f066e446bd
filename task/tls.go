package task

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"taobox/chain/types"
)

// ServerTLS returns the miner's TLS 1.3 configuration: a self-signed
// certificate whose public key is the miner's ed25519 hotkey, ALPN only.
// The certificate's dates are wide; clients pin the key, not a chain.
func ServerTLS(key ed25519.PrivateKey) (*tls.Config, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("task: server tls: private key has %d bytes", len(key))
	}
	pub := key.Public().(ed25519.PublicKey)
	var id types.AccountID
	copy(id[:], pub)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: types.SS58Encode(id)},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	// ed25519 signing is deterministic, so rand is not used for the key; it
	// only feeds x509's own choices.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("task: server tls: certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPNBatch, ALPN},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}, nil
}

// ErrKeyMismatch: the peer's certificate key is not the pinned key.
var ErrKeyMismatch = errors.New("task: peer certificate key is not the pinned miner key")

// ClientTLS returns a TLS 1.3 client configuration that accepts only a peer
// whose single certificate carries exactly the ed25519 key pinned (the key
// the miner registered with serve). The handshake's CertificateVerify proves
// the peer holds that key; names, chains and dates are not checked.
func ClientTLS(pinned types.AccountID) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{ALPNBatch, ALPN},
		ServerName:         "taobox-miner",
		InsecureSkipVerify: true, // replaced by VerifyPeerCertificate below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) != 1 {
				return fmt.Errorf("%w: %d certificates", ErrKeyMismatch, len(raw))
			}
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return fmt.Errorf("task: peer certificate: %w", err)
			}
			pub, ok := c.PublicKey.(ed25519.PublicKey)
			if !ok || !bytes.Equal(pub, pinned[:]) {
				return fmt.Errorf("%w: want %s", ErrKeyMismatch, types.SS58Encode(pinned))
			}
			return nil
		},
	}
}
