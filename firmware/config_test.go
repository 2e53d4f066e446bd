package firmware

import (
	"strings"
	"testing"
	"time"
)

func TestExampleConfigParses(t *testing.T) {
	c, err := ParseConfig(ExampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/taobox" || c.Backend != "auto" || len(c.Roles) != 1 || c.Roles[0].Kind != KindNode ||
		c.Roles[0].StallAfter.D() != 2*time.Minute || c.Supervisor.MaxBackoff.D() != 5*time.Minute {
		t.Fatalf("example config decoded as %+v", c)
	}
	// Every value the example shows outside [[role]] is the default.
	var bare Config
	bare.EnsureDefaults()
	if bare.DataDir != c.DataDir || bare.Backend != c.Backend || bare.NodeURL != c.NodeURL || bare.SelftestTimeout != c.SelftestTimeout ||
		bare.Supervisor != c.Supervisor || bare.SkipModelSelftest != c.SkipModelSelftest || len(c.ReleaseKeys) != 0 {
		t.Fatalf("example values differ from the defaults:\nexample  %+v\ndefaults %+v", c, bare)
	}
}

// TestExampleRolesNameWallets: every role of the example (the commented
// ones uncommented) that picks a wallet also says where wallets live, the
// data dir: under the unit's ProtectHome=yes, ~/.taobox is hidden (UX
// walkthrough).
func TestExampleRolesNameWallets(t *testing.T) {
	var b strings.Builder
	inRole := false
	for _, line := range strings.Split(string(ExampleConfig), "\n") {
		if line == "# [[role]]" {
			inRole = true
		} else if !strings.HasPrefix(line, "# ") {
			inRole = false
		}
		if inRole {
			line = strings.TrimPrefix(line, "# ")
		}
		b.WriteString(line + "\n")
	}
	c, err := ParseConfig([]byte(b.String()))
	if err != nil {
		t.Fatalf("the example with its roles uncommented: %v\n%s", err, b.String())
	}
	kinds := map[string]bool{}
	for _, r := range c.Roles {
		kinds[r.Kind] = true
		args := strings.Join(r.Args, " ")
		if strings.Contains(args, "--wallet ") && !strings.Contains(args, "--wallets "+c.DataDir+" ") {
			t.Errorf("role %s picks a wallet without --wallets %s: %q", r.Kind, c.DataDir, args)
		}
	}
	if !kinds[KindMiner] || !kinds[KindValidator] {
		t.Errorf("uncommented roles %v: want the miner and the validator examples", kinds)
	}
}

func TestConfigValidate(t *testing.T) {
	key := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, toml string
		errs       []string // substrings; empty: valid
	}{
		{"empty is valid", ``, nil},
		{"full", `data_dir = "/data"
backend = "cuda"
release_keys = ["` + key + `"]
[[role]]
kind = "node"
[[role]]
kind = "miner"
progress = "metrics"
progress_url = "http://127.0.0.1:9100/metrics"
metric = "taobox_miner_tasks_served_total"`, nil},
		{"relative data dir", `data_dir = "data"`, []string{"data_dir"}},
		{"bad backend", `backend = "rocm"`, []string{"backend"}},
		{"bad node url", `node_url = "127.0.0.1:7744"`, []string{"node_url"}},
		{"bad release key", `release_keys = ["abc"]`, []string{"release_keys"}},
		{"bad duration", `selftest_timeout = "soon"`, []string{"duration"}},
		{"short selftest", `selftest_timeout = "10ms"`, []string{"selftest_timeout"}},
		{"max below min", "[supervisor]\nmin_backoff = \"1m\"\nmax_backoff = \"1s\"", []string{"max_backoff"}},
		{"unknown key", `datadir = "/x"`, []string{"unknown option", "datadir"}},
		{"unknown role kind", "[[role]]\nkind = \"gateway\"", []string{"role[0].kind"}},
		{"duplicate names", "[[role]]\nkind = \"miner\"\n[[role]]\nkind = \"miner\"", []string{"role[1].name"}},
		{"head on a miner", "[[role]]\nkind = \"miner\"\nprogress = \"head\"", []string{"role[0].progress"}},
		{"metrics without url or metric", "[[role]]\nkind = \"miner\"\nprogress = \"metrics\"", []string{"role[0].progress_url", "role[0].metric"}},
		{"unknown probe", "[[role]]\nkind = \"node\"\nprogress = \"ping\"", []string{"role[0].progress"}},
		{"every problem at once", "backend = \"x\"\nnode_url = \"ftp://h\"\n[supervisor]\nstop_timeout = \"-1s\"", []string{"backend", "node_url", "stop_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.toml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tc.errs)
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestConfigRoleDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("node_url = \"http://127.0.0.1:9\"\n[[role]]\nkind = \"node\"\nblock_time = \"2s\"\n[[role]]\nkind = \"validator\""))
	if err != nil {
		t.Fatal(err)
	}
	n, v := c.Roles[0], c.Roles[1]
	if n.Name != "node" || n.Progress != ProgressHead || n.ProgressURL != "http://127.0.0.1:9" || n.StallAfter.D() != 20*time.Second {
		t.Fatalf("node role defaults: %+v", n)
	}
	if v.Progress != ProgressNone || v.StallAfter != 0 {
		t.Fatalf("validator role defaults: %+v", v)
	}
	roles := RolesFromConfig(c)
	if roles[0].Probe == nil || roles[1].Probe != nil || roles[0].Args[0] != "node" {
		t.Fatalf("roles: %+v", roles)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(ExampleConfig)
	f.Add([]byte("[[role]]\nkind = \"miner\"\nprogress = \"metrics\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that does not validate: %v", err)
		}
	})
}
