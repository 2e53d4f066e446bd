package vectors

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestTestdataCopyIsCurrent: the copy in chain/yuma/testdata, which a fresh
// clone tests with, holds the same bytes as ../shared/vectors/yuma when that
// exists (skipped on a clone without ../shared).
func TestTestdataCopyIsCurrent(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	for _, name := range []string{"math.json", "epochs.json"} {
		local, err := os.ReadFile(filepath.Join(root, "chain", "yuma", "testdata", name))
		if err != nil {
			t.Fatalf("chain/yuma/testdata/%s: %v (a fresh clone needs it)", name, err)
		}
		shared, err := os.ReadFile(filepath.Join(root, "..", "shared", "vectors", "yuma", name))
		if os.IsNotExist(err) {
			t.Logf("no ../shared/vectors/yuma/%s; testing with the copy", name)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(local, shared) {
			t.Errorf("chain/yuma/testdata/%s differs from ../shared/vectors/yuma/%s: copy it over", name, name)
		}
	}
}

func TestEpochs(t *testing.T) {
	eps, err := Epochs()
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 80 {
		t.Fatalf("%d epochs, want the 80 of epochs.json", len(eps))
	}
	seen := map[string]bool{}
	for _, e := range eps {
		if len(e.Input) == 0 || len(e.Outputs) == 0 || e.Test == "" {
			t.Fatalf("%s: empty record", e.Name())
		}
		seen[e.Name()] = true
	}
	if len(seen) != len(eps) {
		t.Errorf("names are not unique: %d distinct of %d", len(seen), len(eps))
	}
	if _, err := Path("nope.json"); err == nil {
		t.Error("Path of a missing vector file succeeded")
	}
}
