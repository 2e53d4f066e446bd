package validator

import (
	"os"
	"path/filepath"
	"testing"

	"taobox/chain/types"
)

// FuzzLoadState: any file content gives a usable state or an error, never
// a panic, and a state that loads saves and loads back the same.
func FuzzLoadState(f *testing.F) {
	hk := types.AccountIDFromPrivateKey(keyN(0))
	dir := f.TempDir()
	good := filepath.Join(dir, "good.json")
	st := &State{Version: stateVersion, Netuid: 1, Hotkey: hk, Round: 3, Scores: []Record{{UID: 1, Hotkey: hk, Score: 0.5}}}
	if err := SaveState(good, st); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	f.Add(data)
	f.Add([]byte("{}"))
	f.Add([]byte(`{"version":1,"netuid":1,"scores":[{"uid":2,"score":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), StateFile)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadState(p, 1, hk)
		if err != nil {
			return
		}
		if err := SaveState(p, s); err != nil {
			t.Fatal(err)
		}
		s2, err := LoadState(p, 1, hk)
		if err != nil || len(s2.Scores) != len(s.Scores) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
