package firmware

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func testReleaseKey(i byte) ed25519.PrivateKey {
	seed := bytes.Repeat([]byte{i + 1}, ed25519.SeedSize)
	return ed25519.NewKeyFromSeed(seed)
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func TestBundleRoundTrip(t *testing.T) {
	key := testReleaseKey(0)
	bin := []byte("#!/bin/sh\nexit 0\n")
	raw, m, err := SignBundle(key, bin, "1.2.3", 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadBundle(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest != *m || !bytes.Equal(b.Binary, bin) || m.Created != "2023-11-14T22:13:20Z" {
		t.Fatalf("round trip: %+v", b.Manifest)
	}
	if err := b.Verify([]ed25519.PublicKey{pub(testReleaseKey(9)), pub(key)}); err != nil {
		t.Fatalf("verify with the key among others: %v", err)
	}
}

// rewrite re-tars a bundle's entries after edit.
func rewrite(t *testing.T, raw []byte, edit func(name string, data []byte) []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(raw))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		data = edit(h.Name, data)
		h.Size = int64(len(data))
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	return out.Bytes()
}

func TestBundleRefusals(t *testing.T) {
	key := testReleaseKey(0)
	keys := []ed25519.PublicKey{pub(key)}
	bin := []byte("#!/bin/sh\nexit 0\n")
	raw, _, err := SignBundle(key, bin, "1.2.3", 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := SignBundle(testReleaseKey(5), bin, "1.2.3", 1, t0)
	for _, tc := range []struct {
		name   string
		bundle []byte
		keys   []ed25519.PublicKey
		want   error
		msg    string
	}{
		{"signed by another key", other, keys, ErrBadSignature, "not from a configured releaser"},
		{"no keys configured", raw, nil, ErrBadSignature, "release_keys"},
		{"binary swapped", rewrite(t, raw, func(n string, d []byte) []byte {
			if n == BinaryName {
				return []byte("#!/bin/sh\nrm -rf /\n")
			}
			return d
		}), keys, ErrHashMismatch, "manifest says"},
		{"manifest edited", rewrite(t, raw, func(n string, d []byte) []byte {
			if n == ManifestName {
				return bytes.Replace(d, []byte("1.2.3"), []byte("1.2.4"), 1)
			}
			return d
		}), keys, ErrBadSignature, ""},
		{"signature of the raw manifest without domain", rewrite(t, raw, func(n string, d []byte) []byte {
			if n == SignatureName {
				b, _ := ReadBundle(bytes.NewReader(raw))
				return ed25519.Sign(key, b.ManifestRaw)
			}
			return d
		}), keys, ErrBadSignature, ""},
		{"truncated", raw[:len(raw)/2], keys, ErrBadBundle, ""},
		{"empty", nil, keys, ErrBadBundle, ""},
		{"extra entry", append(bytes.TrimRight(raw, "\x00"), raw...), keys, ErrBadBundle, ""},
		{"unknown manifest field", rewrite(t, raw, func(n string, d []byte) []byte {
			if n == ManifestName {
				return bytes.Replace(d, []byte("{"), []byte(`{"run":"x",`), 1)
			}
			return d
		}), keys, ErrBadBundle, "manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadBundle(bytes.NewReader(tc.bundle))
			if err == nil {
				err = b.Verify(tc.keys)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestManifestValidate(t *testing.T) {
	good := Manifest{Version: "1.0", SHA256: strings.Repeat("ab", 32), Size: 10, Created: "2026-01-01T00:00:00Z"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Manifest){
		"empty version": func(m *Manifest) { m.Version = "" },
		"long version":  func(m *Manifest) { m.Version = strings.Repeat("v", 65) },
		"slash":         func(m *Manifest) { m.Version = "../x" },
		"upper hex":     func(m *Manifest) { m.SHA256 = strings.Repeat("AB", 32) },
		"short hash":    func(m *Manifest) { m.SHA256 = "ab" },
		"zero size":     func(m *Manifest) { m.Size = 0 },
		"bad time":      func(m *Manifest) { m.Created = "yesterday" },
	} {
		m := good
		edit(&m)
		if err := m.Validate(); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadBundle(f *testing.F) {
	key := testReleaseKey(0)
	raw, _, _ := SignBundle(key, []byte("bin"), "1", 1, time.Unix(0, 0))
	f.Add(raw)
	f.Add(raw[:700])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(b.Signature) != ed25519.SignatureSize || b.Manifest.Validate() != nil {
			t.Fatalf("accepted a bundle with a bad signature length or manifest: %+v", b.Manifest)
		}
		b.Verify([]ed25519.PublicKey{pub(key)}) // must not panic
	})
}
