package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/quic-go/quic-go"

	"taobox/task"
)

// ALPN is the TLS application protocol both ends require.
const ALPN = "taobox/p2p/1"

// ErrKeyMismatch: the peer's certificate key is not the id that was dialled
// ("id@host:port").
var ErrKeyMismatch = errors.New("p2p: peer certificate key is not the expected peer id")

// certificate returns the node's self-signed certificate whose key is the
// node key (the same certificate the task protocol uses: wide dates, CN =
// SS58 of the key; peers pin the key, not a chain).
func certificate(key ed25519.PrivateKey) (tls.Certificate, error) {
	c, err := task.ServerTLS(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("p2p: certificate: %w", err)
	}
	return c.Certificates[0], nil
}

// peerIDFromCerts returns the PeerID of a peer's certificate list: exactly
// one certificate with an ed25519 key. The TLS handshake's CertificateVerify
// has proved (or will prove, before the handshake completes) that the peer
// holds the matching private key.
func peerIDFromCerts(raw [][]byte) (PeerID, error) {
	if len(raw) != 1 {
		return PeerID{}, fmt.Errorf("p2p: peer presented %d certificates, want 1", len(raw))
	}
	c, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return PeerID{}, fmt.Errorf("p2p: peer certificate: %w", err)
	}
	pub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return PeerID{}, fmt.Errorf("p2p: peer certificate key is %T, want ed25519", c.PublicKey)
	}
	var id PeerID
	copy(id[:], pub)
	return id, nil
}

// peerIDFromConn returns the PeerID of an established connection.
func peerIDFromConn(c *quic.Conn) (PeerID, error) {
	certs := c.ConnectionState().TLS.PeerCertificates
	if len(certs) != 1 {
		return PeerID{}, fmt.Errorf("p2p: connection has %d peer certificates, want 1", len(certs))
	}
	return peerIDFromCerts([][]byte{certs[0].Raw})
}

// serverTLS is the listener's configuration: TLS 1.3, our certificate,
// a client certificate required and checked by admit (ban list) — no CA, no
// names, no dates; no session tickets (so no 0-RTT). Once the client's
// certificate passes admit, charge is called with the connection's context
// (the one Transport.ConnContext returned, which carries its admission
// slot): the client can only send its certificate after reading our
// Handshake packets, so its source address is proven by then.
func serverTLS(cert tls.Certificate, admit func(PeerID) error, charge func(context.Context) error) *tls.Config {
	conf := func(ctx context.Context) *tls.Config {
		return &tls.Config{
			MinVersion:             tls.VersionTLS13,
			NextProtos:             []string{ALPN},
			Certificates:           []tls.Certificate{cert},
			ClientAuth:             tls.RequireAnyClientCert,
			SessionTicketsDisabled: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				id, err := peerIDFromCerts(raw)
				if err != nil {
					return err
				}
				if err := admit(id); err != nil {
					return err
				}
				return charge(ctx)
			},
		}
	}
	base := conf(nil)
	base.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		return conf(hi.Context()), nil
	}
	return base
}

// clientTLS is the dialler's configuration. want, if non-nil, is the key the
// server must present; admit checks the ban list. The first verification
// error is stored in *verr so the caller can report it (quic-go turns it
// into a generic CRYPTO_ERROR).
func clientTLS(cert tls.Certificate, want *PeerID, admit func(PeerID) error, verr *atomic.Pointer[error]) *tls.Config {
	fail := func(err error) error {
		verr.CompareAndSwap(nil, &err)
		return err
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		ServerName:             "taobox-p2p",
		SessionTicketsDisabled: true,
		InsecureSkipVerify:     true, // replaced by VerifyPeerCertificate: the key is the identity
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := peerIDFromCerts(raw)
			if err != nil {
				return fail(err)
			}
			if want != nil && id != *want {
				return fail(fmt.Errorf("%w: dialled %s, peer presented %s", ErrKeyMismatch, want, id))
			}
			if err := admit(id); err != nil {
				return fail(err)
			}
			return nil
		},
	}
}
