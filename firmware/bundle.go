package firmware

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// An update bundle is a POSIX tar with exactly three regular files, in
// this order:
//
//	manifest.json  the Manifest, as JSON (at most MaxManifestBytes)
//	manifest.sig   the ed25519 signature (64 bytes) of SignDomain || manifest.json
//	taobox         the binary (at most MaxBinaryBytes)
//
// The signature covers the manifest's exact bytes, and the manifest names
// the binary's SHA-256, so the signature covers the binary too. The
// domain prefix keeps a release key's signature from being valid for
// anything else (a transaction, a task).
//
// Design note: a tar, not a custom container, so that `tar tvf` shows what
// is inside; the order and the caps make the decoder simple and bounded.

// Bundle format constants.
const (
	SignDomain       = "taobox-firmware-manifest-v1\x00"
	MaxManifestBytes = 64 << 10
	MaxBinaryBytes   = 1 << 30
	ManifestName     = "manifest.json"
	SignatureName    = "manifest.sig"
	BinaryName       = "taobox"
)

// Errors of bundle verification; each returned error wraps one.
var (
	ErrBadBundle    = errors.New("firmware: malformed bundle")
	ErrBadSignature = errors.New("firmware: bundle signature not valid for any release key")
	ErrHashMismatch = errors.New("firmware: binary does not match the manifest's sha256")
	ErrNotApproved  = errors.New("firmware: release not approved by governance")
)

// Manifest describes a release.
type Manifest struct {
	Version         string `json:"version"`           // "1.4.0", at most 64 bytes (the governance field's cap)
	SHA256          string `json:"sha256"`            // of the binary, 64 lowercase hex digits: the release hash governance approves
	Size            int64  `json:"size"`              // of the binary, bytes
	MinChainVersion uint16 `json:"min_chain_version"` // the chain (header) version the release needs
	Created         string `json:"created"`           // RFC 3339 UTC
}

// Validate checks the manifest's fields.
func (m *Manifest) Validate() error {
	if m.Version == "" || len(m.Version) > 64 || strings.ContainsAny(m.Version, "\x00\n/") {
		return fmt.Errorf("%w: manifest version %q: want 1 to 64 bytes, no '/' or control characters", ErrBadBundle, m.Version)
	}
	if b, err := hex.DecodeString(m.SHA256); err != nil || len(b) != sha256.Size || strings.ToLower(m.SHA256) != m.SHA256 {
		return fmt.Errorf("%w: manifest sha256 %q: want 64 lowercase hex digits", ErrBadBundle, m.SHA256)
	}
	if m.Size <= 0 || m.Size > MaxBinaryBytes {
		return fmt.Errorf("%w: manifest size %d: want 1 to %d bytes", ErrBadBundle, m.Size, MaxBinaryBytes)
	}
	if _, err := time.Parse(time.RFC3339, m.Created); err != nil {
		return fmt.Errorf("%w: manifest created %q: want RFC 3339", ErrBadBundle, m.Created)
	}
	return nil
}

// Bundle is a decoded, not yet verified, update bundle.
type Bundle struct {
	Manifest    Manifest
	ManifestRaw []byte // the signed bytes
	Signature   []byte
	Binary      []byte
}

// SignBundle builds a bundle for binary, signed with key. created is the
// manifest's timestamp (an input, so builds are reproducible).
func SignBundle(key ed25519.PrivateKey, binary []byte, version string, minChain uint16, created time.Time) ([]byte, *Manifest, error) {
	sum := sha256.Sum256(binary)
	m := &Manifest{Version: version, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(binary)),
		MinChainVersion: minChain, Created: created.UTC().Format(time.RFC3339)}
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	sig := ed25519.Sign(key, append([]byte(SignDomain), raw...))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{ManifestName, 0o644, raw}, {SignatureName, 0o644, sig}, {BinaryName, 0o755, binary}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: created.UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), m, nil
}

// ReadBundle decodes a bundle: the three files in order, within their
// caps, and a manifest that parses and validates. It checks no signature
// or hash (Verify does).
func ReadBundle(r io.Reader) (*Bundle, error) {
	tr := tar.NewReader(r)
	var b Bundle
	for i, want := range []struct {
		name string
		max  int64
	}{{ManifestName, MaxManifestBytes}, {SignatureName, ed25519.SignatureSize}, {BinaryName, MaxBinaryBytes}} {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (%s): %v", ErrBadBundle, i, want.name, err)
		}
		if h.Name != want.name || h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: entry %d is %q (type %q), want the regular file %s", ErrBadBundle, i, h.Name, h.Typeflag, want.name)
		}
		if h.Size < 0 || h.Size > want.max {
			return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrBadBundle, want.name, h.Size, want.max)
		}
		// Read what is there rather than allocating the claimed size, so a
		// short bundle claiming a huge entry costs nothing.
		data, err := io.ReadAll(tr)
		if err != nil || int64(len(data)) != h.Size {
			return nil, fmt.Errorf("%w: %s: %d of %d bytes (%v)", ErrBadBundle, want.name, len(data), h.Size, err)
		}
		switch i {
		case 0:
			b.ManifestRaw = data
		case 1:
			b.Signature = data
		case 2:
			b.Binary = data
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, fmt.Errorf("%w: more than three entries (or a damaged end: %v)", ErrBadBundle, err)
	}
	if len(b.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrBadBundle, SignatureName, len(b.Signature), ed25519.SignatureSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b.ManifestRaw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Manifest); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrBadBundle, err)
	}
	if err := b.Manifest.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Verify checks the signature against keys (any one may have signed) and
// the binary against the manifest's size and SHA-256.
func (b *Bundle) Verify(keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no release keys configured (release_keys in the config)", ErrBadSignature)
	}
	msg := append([]byte(SignDomain), b.ManifestRaw...)
	ok := false
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, b.Signature) {
			ok = true
			break
		}
	}
	if !ok {
		return fmt.Errorf("%w (%d key(s) tried); the bundle is not from a configured releaser or was altered", ErrBadSignature, len(keys))
	}
	sum := sha256.Sum256(b.Binary)
	if int64(len(b.Binary)) != b.Manifest.Size || hex.EncodeToString(sum[:]) != b.Manifest.SHA256 {
		return fmt.Errorf("%w: binary is %d bytes with sha256 %x, manifest says %d bytes, %s", ErrHashMismatch, len(b.Binary), sum, b.Manifest.Size, b.Manifest.SHA256)
	}
	return nil
}
