package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"taobox/gpu/runner"
	"taobox/internal/vectors"
	"taobox/wallet"
)

func TestSelftestPasses(t *testing.T) {
	rs := Selftest(context.Background(), SelftestOptions{})
	if !Passed(rs) || len(rs) != len(CheckNames()) {
		t.Fatalf("self-test on this machine: %+v", rs)
	}
	for _, r := range rs {
		if r.Name == "gpu/kernels" != r.Skipped {
			t.Errorf("%s skipped=%v: only the GPU check is skipped without a GPU", r.Name, r.Skipped)
		}
	}
	if rs := Selftest(context.Background(), SelftestOptions{Only: "yuma"}); len(rs) != 2 {
		t.Fatalf("Only: yuma ran %d checks", len(rs))
	}
}

// TestKATYumaMatchesVectors: the embedded epochs are a verbatim copy of the
// ground-truth vectors.
func TestKATYumaMatchesVectors(t *testing.T) {
	data, err := vectors.Read("epochs.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Epoch []struct {
			Test   string `json:"test"`
			Epochs []struct {
				Input json.RawMessage `json:"input_state"`
				Port  json.RawMessage `json:"python_port_outputs"`
			} `json:"epochs"`
		} `json:"epoch"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Epochs []struct {
			Test  string          `json:"test"`
			Epoch int             `json:"epoch"`
			Input json.RawMessage `json:"input_state"`
			Port  json.RawMessage `json:"python_port_outputs"`
		} `json:"epochs"`
	}
	if err := json.Unmarshal(katYuma, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Epochs) < 20 {
		t.Fatalf("only %d embedded epochs", len(raw.Epochs))
	}
	canon := func(b []byte) string {
		var v any
		json.Unmarshal(b, &v)
		out, _ := json.Marshal(v)
		return string(out)
	}
	for _, k := range raw.Epochs {
		found := false
		for _, rec := range file.Epoch {
			if rec.Test == k.Test && k.Epoch < len(rec.Epochs) {
				src := rec.Epochs[k.Epoch]
				if canon(src.Input) == canon(k.Input) && canon(src.Port) == canon(k.Port) {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("embedded %s/%d is not in the vectors (or differs from them)", k.Test, k.Epoch)
		}
	}
}

// TestYumaKATCatchesAWrongAnswer: one changed expected value fails the
// comparison, so the check can fail.
func TestYumaKATCatchesAWrongAnswer(t *testing.T) {
	eps, err := loadKATYuma()
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if len(ep.Port.Incentive) == 0 {
			continue
		}
		ep.Port.Incentive[0]++
		if _, err := checkYumaVectorsOf([]katEpoch{ep}); err == nil || !strings.Contains(err.Error(), "incentive") {
			t.Fatalf("a wrong incentive passed: %v", err)
		}
		return
	}
	t.Fatal("no epoch with incentives")
}

func fakeCuda(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "taobox-cuda")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const fakeGPUInfo = `if [ "$1" = gpu ]; then echo '[{"Name":"NVIDIA H100 80GB HBM3","Major":9,"Minor":0,"TotalMem":85520809984,"SMs":132,"Driver":12040,"Ordinal":0}]'; exit 0; fi`

func TestPrepareBackendChoice(t *testing.T) {
	good := fakeCuda(t, fakeGPUInfo+"\necho 'PASS: 7 selftests'")
	bad := fakeCuda(t, fakeGPUInfo+"\necho 'FAIL yuma/epoch: 3 outputs differ' >&2; exit 1")
	gpuAt := func(bin string) func() (runner.GPU, error) {
		return func() (runner.GPU, error) {
			return runner.GPU{Devices: []string{"/dev/nvidia0"}, Library: "x", Binary: bin}, nil
		}
	}
	noGPU := func() (runner.GPU, error) { return runner.GPU{}, runner.ErrNoGPU }
	for _, tc := range []struct {
		name, backend string
		detect        func() (runner.GPU, error)
		wantBackend   string
		wantErr       error
		wantText      string
	}{
		{"auto with a good GPU", "auto", gpuAt(good), "cuda", nil, "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.6 GiB, driver CUDA 12.4"},
		{"auto with a GPU failing its kernels", "auto", gpuAt(bad), "cpu", nil, "GPU kernel self-test failed"},
		{"auto without a GPU", "auto", noGPU, "cpu", nil, "none usable"},
		{"cpu ignores the GPU", "cpu", gpuAt(bad), "cpu", nil, "skip gpu/kernels"},
		{"cuda with a failing GPU", "cuda", gpuAt(bad), "cuda", ErrSelftestFailed, "FAIL gpu/kernels"},
		{"cuda without a GPU", "cuda", noGPU, "cuda", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{DataDir: t.TempDir(), Backend: tc.backend, SkipModelSelftest: true,
				Roles: []RoleConfig{{Kind: KindNode, Args: []string{"--data", "/x"}}, {Kind: KindMiner, Args: []string{"--backend", "cpu"}}}}
			c.EnsureDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			r, err := Prepare(context.Background(), BootOptions{Config: c, Version: "v9", Installed: "/usr/bin/taobox", Detect: tc.detect})
			if tc.name == "cuda without a GPU" {
				if err == nil || !strings.Contains(err.Error(), "no usable GPU") {
					t.Fatalf("want a no-GPU error, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			text := r.Text()
			if r.Backend != tc.wantBackend || !strings.Contains(text, tc.wantText) {
				t.Fatalf("backend %s (want %s); report:\n%s", r.Backend, tc.wantBackend, text)
			}
			if r.Firmware.Slot != "installed" || r.Firmware.Version != "v9" || len(r.Roles) != 2 ||
				r.Roles[0] != "node: taobox node --data /x --backend "+r.Backend || r.Roles[1] != "miner: taobox miner --backend cpu" {
				t.Fatalf("report: %+v", r)
			}
			if lines := strings.Count(text, "\n"); lines > 24 {
				t.Errorf("boot report is %d lines, want one screen:\n%s", lines, text)
			}
			j, _ := json.Marshal(r)
			var back Report
			if err := json.Unmarshal(j, &back); err != nil || back.Backend != r.Backend || len(back.Selftest) != len(r.Selftest) {
				t.Fatalf("JSON round trip: %v", err)
			}
		})
	}
}

func TestPrepareRollsBackATrial(t *testing.T) {
	c := &Config{DataDir: t.TempDir(), Backend: "cpu"}
	c.EnsureDefaults()
	s := &Slots{Dir: c.FirmwareDir(), Installed: "/usr/bin/taobox"}
	if err := s.Store(Pointer{Slot: "a", Status: StatusTrial, Version: "3.0"}, t0); err != nil {
		t.Fatal(err)
	}
	r, err := Prepare(context.Background(), BootOptions{Config: c, Version: "v1", Installed: "/usr/bin/taobox", SkipSelftest: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Firmware.RolledBack || r.Firmware.Slot != "installed" || !strings.Contains(r.Text(), "ROLLED BACK: trial of slot a (version 3.0) never finished") {
		t.Fatalf("report:\n%s", r.Text())
	}
}

func TestRecoverDamage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pointer []byte
		prep    func(s *Slots)
		want    string // slot booted
	}{
		{"no pointer", nil, nil, ""},
		{"garbage pointer", []byte("{\"slot\": \"a\", "), nil, ""},
		{"unknown slot", []byte(`{"slot":"c","status":"good"}`), nil, ""},
		{"good slot whose binary vanished", []byte(`{"slot":"b","status":"good","previous":""}`), nil, ""},
		{"good slot b damaged, a whole", []byte(`{"slot":"b","status":"good","previous":"a"}`), func(s *Slots) {
			installSlot(t, s, "a", []byte("#!/bin/sh\nexit 0\n"))
			installSlot(t, s, "b", []byte("#!/bin/sh\nexit 0\n"))
			os.WriteFile(filepath.Join(s.SlotDir("b"), BinaryName), []byte("#!/bin/sh\nexit 1\n"), 0o755)
		}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Slots{Dir: t.TempDir(), Installed: "/usr/bin/taobox"}
			if tc.prep != nil {
				tc.prep(s)
			}
			if tc.pointer != nil {
				os.WriteFile(filepath.Join(s.Dir, PointerName), tc.pointer, 0o644)
			}
			p, _, err := s.Recover(t0)
			if err != nil || p.Slot != tc.want || p.Status != StatusGood {
				t.Fatalf("Recover: %+v %v, want slot %q", p, err, tc.want)
			}
			if again, changed, err := s.Recover(t0); err != nil || changed || again.Slot != p.Slot {
				t.Fatalf("second Recover changed it again: %+v %v %v", again, changed, err)
			}
		})
	}
}

// installSlot writes a slot as an update does.
func installSlot(t *testing.T, s *Slots, slot string, bin []byte) {
	t.Helper()
	raw, _, err := SignBundle(testReleaseKey(0), bin, "1.0-"+slot, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ReadBundle(bytes.NewReader(raw))
	os.MkdirAll(s.SlotDir(slot), 0o755)
	os.WriteFile(filepath.Join(s.SlotDir(slot), BinaryName), bin, 0o755)
	os.WriteFile(filepath.Join(s.SlotDir(slot), ManifestName), b.ManifestRaw, 0o644)
}

func TestInstall(t *testing.T) {
	root := t.TempDir()
	paths, err := Install(InstallOptions{Prefix: root, Binary: "/usr/local/bin/taobox"})
	if err != nil || len(paths) != 2 {
		t.Fatalf("%v %v", paths, err)
	}
	unit := readFile(t, filepath.Join(root, UnitPath))
	// The credential the unit suggests is the one the roles read.
	// ProtectHome hides ~/.taobox: the roles' default wallets root is the
	// data dir (UX walkthrough: '--wallet default' looked in /root/.taobox).
	for _, want := range []string{"ExecStart=/usr/local/bin/taobox firmware boot --config /etc/taobox/taobox.toml", "ReadWritePaths=/var/lib/taobox", "KillMode=mixed",
		"# LoadCredential=" + wallet.DefaultCredName + ":", "ProtectHome=yes", "\nEnvironment=" + wallet.EnvHome + "=/var/lib/taobox\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if got := readFile(t, filepath.Join(root, "etc/taobox/taobox.toml")); got != string(ExampleConfig) {
		t.Fatal("config is not the example")
	}
	// A second install keeps the edited config and writes the example beside it.
	os.WriteFile(filepath.Join(root, "etc/taobox/taobox.toml"), []byte("backend = \"cpu\"\n"), 0o644)
	paths, err = Install(InstallOptions{Prefix: root, Binary: "/usr/local/bin/taobox"})
	if err != nil || !strings.HasSuffix(paths[1], "taobox.toml.example") || readFile(t, filepath.Join(root, "etc/taobox/taobox.toml")) != "backend = \"cpu\"\n" {
		t.Fatalf("reinstall: %v %v", paths, err)
	}
	if _, err := Install(InstallOptions{Prefix: root, Binary: "taobox"}); err == nil {
		t.Fatal("a relative binary path was accepted")
	}
}
