package gpu

import "testing"

func TestInfoString(t *testing.T) {
	i := Info{Name: "NVIDIA H100 80GB HBM3", Major: 9, Minor: 0, TotalMem: 85 << 30, SMs: 132, Driver: 12040, Ordinal: 0}
	want := "0: NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 85.0 GiB, driver CUDA 12.4"
	if got := i.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := DriverString(13000); got != "13.0" {
		t.Errorf("DriverString(13000) = %q", got)
	}
}
