package wallet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"taobox/chain/types"
)

// testKDF keeps tests fast; one test uses DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func testSeal(pw string) *Seal { return &Seal{Password: []byte(pw), KDF: testKDF} }

func seedOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSealRoundTrip(t *testing.T) {
	seed := seedOf(5)
	data, err := SealSeed(seed, *testSeal("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != sealedSize {
		t.Fatalf("%d bytes, want %d", len(data), sealedSize)
	}
	if bytes.Contains(data, seed[:8]) {
		t.Fatal("the sealed file contains the seed")
	}
	info, err := DecodeKeyInfo(data)
	want := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil || !info.Encrypted || info.Address != want || info.KDF != testKDF {
		t.Fatalf("DecodeKeyInfo = %+v, %v", info, err)
	}
	k, err := OpenSealed(data, []byte("correct horse"))
	if err != nil || !bytes.Equal(k.Seed(), seed) {
		t.Fatalf("OpenSealed = %v", err)
	}
	if _, err := OpenSealed(data, []byte("correct horsf")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	again, _ := SealSeed(seed, *testSeal("correct horse"))
	if bytes.Equal(again[19:59], data[19:59]) {
		t.Fatal("two seals share salt and nonce")
	}
	for _, pw := range []string{"", "short", strings.Repeat("x", 1025)} {
		if _, err := SealSeed(seed, *testSeal(pw)); !errors.Is(err, ErrWeakPassword) {
			t.Errorf("password of %d bytes: %v", len(pw), err)
		}
	}
	if _, err := SealSeed(seed, Seal{Password: []byte("long enough"), KDF: KDFParams{Time: 1, MemoryKiB: 1, Threads: 1}}); err == nil {
		t.Error("a KDF below its bounds sealed")
	}
}

// TestDefaultKDF seals and opens once with the real parameters.
func TestDefaultKDF(t *testing.T) {
	data, err := SealSeed(seedOf(9), Seal{Password: []byte("the real thing")})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := DecodeKeyInfo(data)
	if info.KDF != DefaultKDF {
		t.Fatalf("KDF %+v, want %+v", info.KDF, DefaultKDF)
	}
	if k, err := OpenSealed(data, []byte("the real thing")); err != nil || !bytes.Equal(k.Seed(), seedOf(9)) {
		t.Fatal(err)
	}
}

// fixSum recomputes the trailing checksum, as a deliberate tamperer would.
func fixSum(b []byte) []byte {
	c := append([]byte(nil), b...)
	sum := sha256.Sum256(c[:sealedSize-32])
	copy(c[sealedSize-32:], sum[:])
	return c
}

func TestSealedTampering(t *testing.T) {
	data, _ := SealSeed(seedOf(3), *testSeal("password1"))
	regions := []struct {
		name     string
		from, to int
	}{
		{"magic", 0, 8}, {"version", 8, 9}, {"kdf id", 9, 10}, {"kdf params", 10, 19}, {"salt", 19, 35},
		{"nonce", 35, 59}, {"address", 59, 91}, {"ciphertext", 91, 139}, {"checksum", 139, 171},
	}
	for _, r := range regions {
		for i := r.from; i < r.to; i++ {
			bad := append([]byte(nil), data...)
			bad[i] ^= 0x01
			// A damaged byte: the checksum (or the magic) catches it.
			if _, err := DecodeKey(bad, func() ([]byte, error) { return []byte("password1"), nil }); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s byte %d flipped: %v, want ErrCorrupt", r.name, i, err)
			}
			if r.name == "checksum" || r.name == "magic" {
				continue
			}
			// A deliberate edit with a fixed checksum: the header is
			// authenticated, so the box does not open (or the header is
			// refused), and never yields another key.
			fixed := fixSum(bad)
			k, err := DecodeKey(fixed, func() ([]byte, error) { return []byte("password1"), nil })
			if err == nil {
				t.Fatalf("%s byte %d edited with a fixed checksum opened to %x", r.name, i, k.Seed()[:4])
			}
			if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s byte %d: %v", r.name, i, err)
			}
		}
	}
}

func TestSealedTruncation(t *testing.T) {
	data, _ := SealSeed(seedOf(4), *testSeal("password1"))
	pw := func() ([]byte, error) { return []byte("password1"), nil }
	for n := 0; n < len(data); n++ {
		if _, err := DecodeKey(data[:n], pw); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v, want ErrCorrupt", n, err)
		}
		if _, err := DecodeKeyInfo(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("info of %d bytes: %v", n, err)
		}
	}
	if _, err := DecodeKey(append(data, 0), pw); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("padded: %v", err)
	}
	plain, _, _ := encodeKey(seedOf(4), nil)
	for n := 0; n < len(plain)-1; n++ { // all but the trailing newline
		if _, err := DecodeKey(plain[:n], pw); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("plain truncated to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
}

func TestEncryptedWalletRoundTrip(t *testing.T) {
	root := t.TempDir()
	w, err := SaveColdkey(root, "alice", seedOf(1), testSeal("coldpass1"))
	if err != nil {
		t.Fatal(err)
	}
	hk, err := SaveHotkey(root, "alice", "miner", seedOf(2), testSeal("coldpass1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveHotkey(root, "alice", "plain", seedOf(6), nil); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for _, p := range []string{"coldkey", "coldkeypub.txt", "hotkeys/miner"} {
			if m := mode(t, filepath.Join(w.Dir(), p)); m != 0o600 {
				t.Errorf("%s: mode %04o", p, m)
			}
		}
	}

	// Load reads addresses without a password.
	got, err := Load(root, "alice")
	if err != nil || got.ColdkeyAddress() != w.ColdkeyAddress() || !got.HasColdkey() {
		t.Fatalf("Load = %v", err)
	}
	if a, err := got.HotkeyAddress("miner"); err != nil || a != hk {
		t.Fatalf("HotkeyAddress = %v", err)
	}
	if info, _ := got.ColdkeyInfo(); !info.Encrypted {
		t.Fatal("coldkey not encrypted")
	}
	if info, _ := got.HotkeyInfo("plain"); info.Encrypted {
		t.Fatal("--no-encrypt hotkey is encrypted")
	}
	// No password source: a one-line ErrNoPassword.
	if _, err := got.Coldkey(); !errors.Is(err, ErrNoPassword) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "--password-file") || !strings.Contains(err.Error(), `coldkey of wallet "alice"`) {
		t.Fatalf("Coldkey without a password: %v", err)
	}
	// A plain hotkey needs none.
	if _, err := got.Hotkey("plain"); err != nil {
		t.Fatal(err)
	}
	// Wrong password, from a file: names the source.
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("nope-nope\n"), 0o600)
	got.Unlock = &Unlocker{PasswordFile: pwFile}
	if _, err := got.Coldkey(); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "--password-file "+pwFile) {
		t.Fatalf("wrong password: %v", err)
	}
	os.WriteFile(pwFile, []byte("coldpass1\n"), 0o600)
	got.Unlock = &Unlocker{PasswordFile: pwFile}
	ck, err := got.Coldkey()
	if err != nil || !bytes.Equal(ck.Seed(), seedOf(1)) {
		t.Fatalf("Coldkey = %v", err)
	}
	k, err := LoadHotkey(root, "alice", "miner", got.Unlock)
	if err != nil || types.AccountIDFromPrivateKey(k) != hk {
		t.Fatalf("LoadHotkey = %v", err)
	}
	if _, err := LoadHotkey(root, "alice", "nope", got.Unlock); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing hotkey: %v", err)
	}
}

// TestHotkeyOnlyWallet is the appliance: coldkeypub.txt and a hotkey, no
// coldkey.
func TestHotkeyOnlyWallet(t *testing.T) {
	root := t.TempDir()
	addr := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seedOf(1)))
	if _, err := SaveHotkey(root, "box", "miner", seedOf(2), testSeal("hotpass12")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("hotkey of a missing wallet: %v", err)
	}
	if err := SaveColdkeyPub(root, "box", addr); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveHotkey(root, "box", "miner", seedOf(2), testSeal("hotpass12")); err != nil {
		t.Fatal(err)
	}
	w, err := Load(root, "box")
	if err != nil || w.HasColdkey() || w.ColdkeyAddress() != addr {
		t.Fatalf("Load = %+v, %v", w, err)
	}
	if names, _ := List(root); len(names) != 1 || names[0] != "box" {
		t.Fatalf("List = %v", names)
	}
	if _, err := w.Coldkey(); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "--offline") {
		t.Fatalf("Coldkey on a hotkey-only box: %v", err)
	}
	// Restoring a different coldkey into it is refused.
	if _, err := SaveColdkey(root, "box", seedOf(7), testSeal("coldpass1")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("mismatched coldkey: %v", err)
	}
	if _, err := SaveColdkey(root, "box", seedOf(1), testSeal("coldpass1")); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptKeyFile(t *testing.T) {
	root := t.TempDir()
	if _, err := Create(root, "old"); err != nil { // a plain (legacy) coldkey
		t.Fatal(err)
	}
	w, _ := Load(root, "old")
	before, err := w.Coldkey() // legacy plain file still loads
	if err != nil {
		t.Fatal(err)
	}
	changed, err := EncryptKeyFile(w.ColdkeyPath(), *testSeal("newpass12"))
	if err != nil || !changed {
		t.Fatalf("EncryptKeyFile = %v, %v", changed, err)
	}
	if changed, err := EncryptKeyFile(w.ColdkeyPath(), *testSeal("newpass12")); err != nil || changed {
		t.Fatalf("second EncryptKeyFile = %v, %v", changed, err)
	}
	if runtime.GOOS != "windows" && mode(t, w.ColdkeyPath()) != 0o600 {
		t.Fatal("mode changed")
	}
	data, _ := os.ReadFile(w.ColdkeyPath())
	if !isSealed(data) {
		t.Fatal("not sealed")
	}
	k, err := OpenSealed(data, []byte("newpass12"))
	if err != nil || !bytes.Equal(k, before) {
		t.Fatalf("after encrypt: %v", err)
	}
	ents, _ := os.ReadDir(w.Dir())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left", e.Name())
		}
	}
	if _, err := EncryptKeyFile(filepath.Join(root, "missing"), *testSeal("newpass12")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestSealedFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	root := t.TempDir()
	w, _ := SaveColdkey(root, "a", seedOf(1), testSeal("password1"))
	os.Chmod(w.ColdkeyPath(), 0o640)
	if _, err := Load(root, "a"); !errors.Is(err, ErrPermissions) {
		t.Fatalf("Load of a 0640 encrypted coldkey: %v", err)
	}
}

// FuzzKeyFile feeds arbitrary bytes to the key-file decoders: they must
// not panic, must classify every failure, and anything that decodes must
// re-encode to a file that decodes to the same key.
func FuzzKeyFile(f *testing.F) {
	sealed, _ := SealSeed(seedOf(1), *testSeal("password1"))
	plain, _, _ := encodeKey(seedOf(1), nil)
	f.Add(sealed)
	f.Add(plain)
	f.Add([]byte("TAOBOXKF"))
	f.Add([]byte(`{"address":"","seed":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := DecodeKeyInfo(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeKeyInfo error not ErrCorrupt: %v", err)
			}
			return
		}
		if info.Encrypted && (info.KDF.MemoryKiB > 1024 || info.KDF.Time > 2) {
			return // a valid but costly header; the bounds were checked
		}
		k, err := DecodeKey(data, func() ([]byte, error) { return []byte("password1"), nil })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("DecodeKey error unclassified: %v", err)
			}
			return
		}
		if types.AccountIDFromPrivateKey(k) != info.Address {
			t.Fatal("key is not the header's address")
		}
		re, _, err := encodeKey(k.Seed(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if k2, err := parsePlain(re); err != nil || !bytes.Equal(k2, k) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func BenchmarkOpenDefaultKDF(b *testing.B) {
	data, _ := SealSeed(seedOf(1), Seal{Password: []byte("benchmark pw")})
	for b.Loop() {
		if _, err := OpenSealed(data, []byte("benchmark pw")); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzColdkeyPub: coldkeypub.txt decodes or fails with ErrCorrupt, and a
// decoded address re-encodes to one that decodes the same.
func FuzzColdkeyPub(f *testing.F) {
	f.Add([]byte(`{"address":"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := parseColdkeyPub(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if again, err := parseColdkeyPub([]byte(`{"address":"` + id.String() + `"}`)); err != nil || again != id {
			t.Fatalf("round trip: %v", err)
		}
	})
}
