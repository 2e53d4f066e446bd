package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadCapped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max     int64
		want    string
		wantErr string
	}{
		{5, "12345", ""},
		{10, "12345", ""},
		{4, "", "larger than the 4-byte cap"},
		{0, "", "larger than the 0-byte cap"},
	} {
		b, err := ReadCapped(p, tc.max)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("max %d: err %v, want %q", tc.max, err, tc.wantErr)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("max %d: %q, %v", tc.max, b, err)
		}
	}
	if _, err := ReadCapped(filepath.Join(t.TempDir(), "missing"), 10); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}
