package kernels

import (
	"errors"
	"strings"
	"testing"
)

func TestPTX(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no embedded PTX")
	}
	for _, n := range names {
		p, err := PTX(n)
		if err != nil {
			t.Fatalf("PTX(%q): %v", n, err)
		}
		// make ptx targets compute_80 (NAME_sm90: compute_90); the driver
		// needs ISA <= its own.
		target := "sm_80"
		if strings.HasSuffix(n, "_sm90") {
			target = "sm_90"
		}
		if !strings.Contains(p, "\n.target "+target+"\n") || !strings.Contains(p, "\n.version 7.8\n") {
			t.Errorf("%s.ptx: not nvcc 11.8 -arch=compute_%s output (run make ptx)", n, strings.TrimPrefix(target, "sm_"))
		}
	}
	if _, err := PTX("smoke"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"nope", "", "smoke.ptx", "../smoke"} {
		if _, err := PTX(bad); err == nil {
			t.Errorf("PTX(%q): no error", bad)
		}
	}
	if _, err := PTX("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PTX(nope): %v, want ErrNotFound", err)
	}
}
