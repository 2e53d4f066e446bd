package wallet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"taobox/chain/types"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestCreateLoadList(t *testing.T) {
	root := t.TempDir()
	w, err := Create(root, "alice")
	if err != nil {
		t.Fatal(err)
	}
	hk, err := CreateHotkey(root, "alice", "miner1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(root, "bob"); err != nil {
		t.Fatal(err)
	}

	if runtime.GOOS != "windows" {
		for path, want := range map[string]fs.FileMode{
			filepath.Join(root, "wallets", "alice"):                      0o700,
			filepath.Join(root, "wallets", "alice", "coldkey"):           0o600,
			filepath.Join(root, "wallets", "alice", "hotkeys"):           0o700,
			filepath.Join(root, "wallets", "alice", "hotkeys", "miner1"): 0o600,
		} {
			if got := mode(t, path); got != want {
				t.Errorf("%s: mode %04o, want %04o", path, got, want)
			}
		}
	}

	got, err := Load(root, "alice")
	if err != nil {
		t.Fatal(err)
	}
	gk, err := got.Coldkey()
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := w.Coldkey()
	if !bytes.Equal(gk, wk) || got.ColdkeyAddress() != w.ColdkeyAddress() {
		t.Fatal("loaded coldkey differs from the created one")
	}
	priv, err := got.Hotkey("miner1")
	if err != nil {
		t.Fatal(err)
	}
	if types.AccountIDFromPrivateKey(priv) != hk {
		t.Fatal("loaded hotkey differs from the created one")
	}
	names, err := got.HotkeyNames()
	if err != nil || !slices.Equal(names, []string{"miner1"}) {
		t.Fatalf("HotkeyNames = %v, %v", names, err)
	}
	list, err := List(root)
	if err != nil || !slices.Equal(list, []string{"alice", "bob"}) {
		t.Fatalf("List = %v, %v", list, err)
	}
	if list, err := List(filepath.Join(root, "missing")); err != nil || len(list) != 0 {
		t.Fatalf("List of a missing root = %v, %v", list, err)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Join(root, "wallets", "alice"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("left a temporary file %s", e.Name())
		}
	}
}

func TestImportIsDeterministic(t *testing.T) {
	root := t.TempDir()
	seed := bytes.Repeat([]byte{7}, 32)
	w, err := Import(root, "dev", seed)
	if err != nil {
		t.Fatal(err)
	}
	want := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed))
	if w.ColdkeyAddress() != want {
		t.Fatal("Import did not use the seed")
	}
	data, err := os.ReadFile(filepath.Join(root, "wallets", "dev", "coldkey"))
	if err != nil {
		t.Fatal(err)
	}
	wantFile := `{"address":"` + want.String() + `","seed":"` + hex.EncodeToString(seed) + "\"}\n"
	if string(data) != wantFile {
		t.Fatalf("key file = %q, want %q", data, wantFile)
	}
}

func TestRefusals(t *testing.T) {
	root := t.TempDir()
	if _, err := Create(root, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateHotkey(root, "alice", "h"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(root, "wallets", "alice", "coldkey"))
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"coldkey exists", func() error { _, err := Create(root, "alice"); return err }, ErrExists},
		{"hotkey exists", func() error { _, err := CreateHotkey(root, "alice", "h"); return err }, ErrExists},
		{"hotkey of a missing wallet", func() error { _, err := CreateHotkey(root, "nobody", "h"); return err }, ErrNotFound},
		{"load a missing wallet", func() error { _, err := Load(root, "nobody"); return err }, ErrNotFound},
		{"empty name", func() error { _, err := Create(root, ""); return err }, ErrBadName},
		{"path in name", func() error { _, err := Create(root, "../x"); return err }, ErrBadName},
		{"dot name", func() error { _, err := Create(root, ".hidden"); return err }, ErrBadName},
		{"dash name", func() error { _, err := Create(root, "-x"); return err }, ErrBadName},
		{"slash in hotkey", func() error { _, err := CreateHotkey(root, "alice", "a/b"); return err }, ErrBadName},
		{"long name", func() error { _, err := Create(root, strings.Repeat("a", 65)); return err }, ErrBadName},
		{"missing hotkey", func() error {
			w, err := Load(root, "alice")
			if err != nil {
				return err
			}
			_, err = w.Hotkey("nope")
			return err
		}, ErrNotFound},
	} {
		err := tc.op()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	after, _ := os.ReadFile(filepath.Join(root, "wallets", "alice", "coldkey"))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused Create changed the existing coldkey")
	}
}

func TestLoadKeyFileRejects(t *testing.T) {
	seed := bytes.Repeat([]byte{1}, 32)
	addr := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(seed)).String()
	other := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))).String()
	good := `{"address":"` + addr + `","seed":"` + hex.EncodeToString(seed) + `"}`
	for _, tc := range []struct {
		name    string
		content string
		mode    fs.FileMode
		want    error  // nil: loads
		mention string // in the message
	}{
		{"good", good, 0o600, nil, ""},
		{"good read-only", good, 0o400, nil, ""},
		{"group readable", good, 0o640, ErrPermissions, "chmod 600"},
		{"world readable", good, 0o644, ErrPermissions, "chmod 600"},
		{"group writable", good, 0o620, ErrPermissions, "chmod 600"},
		{"not JSON", "hello", 0o600, ErrCorrupt, "not a key file"},
		{"truncated", good[:40], 0o600, ErrCorrupt, "not a key file"},
		{"empty", "", 0o600, ErrCorrupt, "not a key file"},
		{"unknown field", `{"address":"` + addr + `","seed":"` + hex.EncodeToString(seed) + `","x":1}`, 0o600, ErrCorrupt, "x"},
		{"two objects", good + good, 0o600, ErrCorrupt, "after"},
		{"short seed", `{"address":"` + addr + `","seed":"0101"}`, 0o600, ErrCorrupt, "64 hex digits"},
		{"bad hex", `{"address":"` + addr + `","seed":"` + strings.Repeat("zz", 32) + `"}`, 0o600, ErrCorrupt, "64 hex digits"},
		{"wrong address", `{"address":"` + other + `","seed":"` + hex.EncodeToString(seed) + `"}`, 0o600, ErrCorrupt, "not the seed's"},
		{"flipped seed bit", `{"address":"` + addr + `","seed":"` + "03" + hex.EncodeToString(seed)[2:] + `"}`, 0o600, ErrCorrupt, "not the seed's"},
		{"too big", `{"address":"` + addr + `","seed":"` + hex.EncodeToString(seed) + `"}` + strings.Repeat(" ", 5000), 0o600, ErrCorrupt, "bytes"},
	} {
		if runtime.GOOS == "windows" && tc.want == ErrPermissions {
			continue
		}
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		priv, err := LoadKeyFile(path, nil)
		if tc.want == nil {
			if err != nil || types.AccountIDFromPrivateKey(priv).String() != addr {
				t.Errorf("%s: LoadKeyFile = %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.want, tc.mention)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(t.TempDir(), "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := LoadKeyFile(t.TempDir(), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a directory: err = %v", err)
	}
}

func TestLoadRefusesOpenPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	root := t.TempDir()
	if _, err := Create(root, "alice"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "wallets", "alice", "coldkey")
	os.Chmod(p, 0o644)
	if _, err := Load(root, "alice"); !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+p) {
		t.Fatalf("Load = %v, want ErrPermissions telling to chmod 600 %s", err, p)
	}
	os.Chmod(p, 0o600)
	if _, err := Load(root, "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without replace: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("file = %q after a refused write", b)
	}
	if err := WriteFileAtomic(p, []byte("three"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("file = %q after a replacing write", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want 1 (no temporary files)", len(ents))
	}
	if runtime.GOOS != "windows" && mode(t, p) != 0o600 {
		t.Fatalf("mode %04o", mode(t, p))
	}
}

func TestCommitRoundTrip(t *testing.T) {
	root := t.TempDir()
	w, err := Create(root, "v")
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := w.Coldkey()
	hk := types.AccountIDFromPrivateKey(ck)
	c := &Commit{Netuid: 3, Hotkey: hk, UIDs: []uint16{1, 2}, Weights: []uint16{65535, 100}, VersionKey: 7}
	c.Salt[0] = 9
	c.Hash = types.CommitHash(hk, 3, c.UIDs, c.Weights, c.Salt[:], 7)
	p, err := w.SaveCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && mode(t, p) != 0o600 {
		t.Fatalf("commit file mode %04o", mode(t, p))
	}
	got, err := w.LoadCommit(3, hk)
	if err != nil || got.Hash != c.Hash || !slices.Equal(got.UIDs, c.UIDs) {
		t.Fatalf("LoadCommit = %+v, %v", got, err)
	}
	if _, err := w.LoadCommit(4, hk); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadCommit of another subnet: %v", err)
	}
	os.WriteFile(p, []byte(strings.Replace(mustRead(t, p), `"version_key": 7`, `"version_key": 8`, 1)), 0o600)
	if _, err := w.LoadCommit(3, hk); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("LoadCommit of an edited commit: %v", err)
	}
	if err := w.DeleteCommit(3, hk); err != nil {
		t.Fatal(err)
	}
	if _, err := w.LoadCommit(3, hk); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadCommit after delete: %v", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefaultRoot(t *testing.T) {
	t.Setenv(EnvHome, "/some/where")
	if r, err := DefaultRoot(); err != nil || r != "/some/where" {
		t.Fatalf("DefaultRoot = %q, %v", r, err)
	}
	t.Setenv(EnvHome, "")
	t.Setenv("HOME", "/home/x")
	if r, err := DefaultRoot(); err != nil || r != filepath.Join("/home/x", ".taobox") {
		t.Fatalf("DefaultRoot = %q, %v", r, err)
	}
}

// A damaged coldkey does not hide its wallet: the address comes from
// coldkeypub.txt, the hotkeys load, and only the coldkey's own use fails,
// saying how to restore it.
func TestLoadDamagedColdkey(t *testing.T) {
	root := t.TempDir()
	w0, err := Create(root, "alice")
	if err != nil {
		t.Fatal(err)
	}
	hk, err := CreateHotkey(root, "alice", "miner1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w0.ColdkeyPath(), []byte(`{"address": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Load(root, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if w.ColdkeyAddress() != w0.ColdkeyAddress() || !errors.Is(w.ColdkeyErr(), ErrCorrupt) || w.HasColdkey() {
		t.Fatalf("address %v (want %v), coldkey error %v, has coldkey %v", w.ColdkeyAddress(), w0.ColdkeyAddress(), w.ColdkeyErr(), w.HasColdkey())
	}
	if k, err := w.Hotkey("miner1"); err != nil || types.AccountIDFromPrivateKey(k) != hk {
		t.Fatalf("hotkey: %v", err)
	}
	if _, err := w.Coldkey(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "regen-coldkey") {
		t.Fatalf("Coldkey = %v", err)
	}
	// Without coldkeypub.txt there is nothing to fall back on.
	os.Remove(filepath.Join(w.Dir(), "coldkeypub.txt"))
	if _, err := Load(root, "alice"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load without coldkeypub.txt = %v", err)
	}
}

// The coldkey's own seed is refused as a hotkey (it would put the coldkey
// on the serving machine).
func TestSaveHotkeyRefusesColdkeySeed(t *testing.T) {
	root := t.TempDir()
	if _, err := SaveColdkey(root, "alice", seedOf(7), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveHotkey(root, "alice", "miner1", seedOf(7), nil); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "coldkey's own seed") {
		t.Fatalf("SaveHotkey with the coldkey's seed = %v", err)
	}
	if _, err := SaveHotkey(root, "alice", "miner1", seedOf(8), nil); err != nil {
		t.Fatal(err)
	}
}

// A prompt for an unlabelled key names its file, and the label does not
// stick to the unlocker for the next key.
func TestPromptNamesKeyFile(t *testing.T) {
	root := t.TempDir()
	w, err := SaveColdkey(root, "alice", seedOf(3), testSeal("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	var prompts []string
	u := &Unlocker{Prompt: func(p string) ([]byte, error) {
		prompts = append(prompts, p)
		return []byte("correct horse battery"), nil
	}}
	if _, err := LoadKeyFile(w.ColdkeyPath(), u); err != nil {
		t.Fatal(err)
	}
	if len(prompts) != 1 || !strings.Contains(prompts[0], w.ColdkeyPath()) {
		t.Fatalf("prompts %q, want one naming %s", prompts, w.ColdkeyPath())
	}
	if u.what() != "the key" {
		t.Fatalf("the label stuck: %q", u.what())
	}
}
