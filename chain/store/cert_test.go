package store

import (
	"bytes"
	"fmt"
	"testing"
)

// TestCertificatesAndEpochData: a block's certificate is kept with its body
// and pruned with it, except at an epoch boundary, whose certificate and
// epoch data stay forever; both survive a reopen.
func TestCertificatesAndEpochData(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, Buckets: 4, KeepBlocks: 3})
	for h := uint64(0); h <= 10; h++ {
		c := testBlock(h, nil, h%4 == 0)
		if h > 0 {
			c.Cert = fmt.Appendf(nil, "cert %d", h)
		}
		if c.EpochBoundary {
			c.EpochData = fmt.Appendf(nil, "set after %d", h)
		}
		mustCommit(t, s, c)
	}
	s.Close()
	s = openTest(t, dir, Options{KeepBlocks: 3})
	for h := uint64(0); h <= 10; h++ {
		cert, ok, err := s.Cert(h)
		if err != nil {
			t.Fatal(err)
		}
		kept := h > 0 && (h >= 8 || h%4 == 0)
		if ok != kept || (ok && !bytes.Equal(cert, fmt.Appendf(nil, "cert %d", h))) {
			t.Errorf("cert %d: %q %v, want kept=%v", h, cert, ok, kept)
		}
		data, ok, err := s.EpochData(h)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (h%4 == 0) || (ok && !bytes.Equal(data, fmt.Appendf(nil, "set after %d", h))) {
			t.Errorf("epoch data %d: %q %v", h, data, ok)
		}
	}
}

func TestHardState(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, Buckets: 4})
	if _, ok, err := s.HardState(); ok || err != nil {
		t.Fatalf("empty store has a hard state: %v %v", ok, err)
	}
	mustCommit(t, s, testBlock(0, nil, true))
	for _, v := range []string{"one", "two"} {
		if err := s.PutHardState([]byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutHardState(make([]byte, MaxBlobSize+1)); err == nil {
		t.Fatal("an oversized hard state was stored")
	}
	s.Close()
	if err := s.PutHardState([]byte("x")); err == nil {
		t.Fatal("PutHardState on a closed store succeeded")
	}
	s = openTest(t, dir, Options{})
	if b, ok, err := s.HardState(); !ok || err != nil || string(b) != "two" {
		t.Fatalf("hard state after reopen: %q %v %v", b, ok, err)
	}
}
