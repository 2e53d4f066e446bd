package firmware

import (
	"bytes"
	"crypto/ed25519"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ExampleConfig is the documented example configuration (every option, with
// its default), what `taobox firmware install` writes.
//
//go:embed taobox.example.toml
var ExampleConfig []byte

// Role kinds: the taobox subcommand a role runs.
const (
	KindNode      = "node"
	KindMiner     = "miner"
	KindValidator = "validator"
)

// Progress probe kinds of RoleConfig.Progress.
const (
	ProgressNone    = "none"    // no watchdog
	ProgressHead    = "head"    // the node API's GET /v1/head height
	ProgressMetrics = "metrics" // a Prometheus counter at ProgressURL
)

// maxConfigBytes caps a config file.
const maxConfigBytes = 1 << 20

// Duration is a time.Duration written as "12s" or "5m" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration ("1m30s").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\" or \"5m\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the Go duration form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the appliance's configuration (the TOML file of
// `taobox firmware boot --config`). Zero fields take the defaults that
// EnsureDefaults states; Validate reports every remaining problem.
type Config struct {
	// DataDir holds the chain, the wallets and firmware/ (the update
	// slots). Default /var/lib/taobox.
	DataDir string `toml:"data_dir"`
	// Backend is the compute backend: auto (the GPU when a usable one and
	// taobox-cuda are present, else the CPU), cpu or cuda. Default auto.
	Backend string `toml:"backend"`
	// NodeURL is the local node's API, asked whether governance approved a
	// release. Default http://127.0.0.1:7744.
	NodeURL string `toml:"node_url"`
	// ReleaseKeys are the hex ed25519 public keys (64 hex digits) whose
	// signatures on an update bundle are accepted. Empty: updates refused.
	ReleaseKeys []string `toml:"release_keys"`
	// SelftestTimeout bounds the boot self-test and an update's self-test of
	// the new binary. Default 3m.
	SelftestTimeout Duration `toml:"selftest_timeout"`
	// SkipModelSelftest leaves the model engine out of the boot self-test
	// (small boxes that only run a node). Default false.
	SkipModelSelftest bool `toml:"skip_model_selftest"`

	Supervisor SupervisorConfig `toml:"supervisor"`
	Roles      []RoleConfig     `toml:"role"`
}

// SupervisorConfig tunes restarts and shutdown.
type SupervisorConfig struct {
	// MinBackoff is the wait before the first restart of a failed role; it
	// doubles with each further failure up to MaxBackoff. Defaults 1s, 5m.
	MinBackoff Duration `toml:"min_backoff"`
	MaxBackoff Duration `toml:"max_backoff"`
	// StableAfter: a role that ran this long before it failed starts again
	// from MinBackoff. Default 10m.
	StableAfter Duration `toml:"stable_after"`
	// ProbeInterval is how often the watchdog reads each role's progress.
	// Default 15s.
	ProbeInterval Duration `toml:"probe_interval"`
	// StopTimeout is how long a SIGTERM'd role may take to exit before it
	// is killed. Default 30s.
	StopTimeout Duration `toml:"stop_timeout"`
}

// RoleConfig is one supervised role.
type RoleConfig struct {
	// Name labels the role in logs; unique. Default: Kind.
	Name string `toml:"name"`
	// Kind is node, miner or validator: the taobox subcommand to run.
	Kind string `toml:"kind"`
	// Args follow the subcommand: `taobox <kind> <args...>`.
	Args []string `toml:"args"`
	// Progress is the watchdog's probe: "head" (the node API's height; the
	// default for a node), "metrics" (a Prometheus counter; needs
	// ProgressURL and Metric) or "none" (the default for miner and
	// validator: an idle miner is not a stuck one).
	Progress string `toml:"progress"`
	// ProgressURL is the node API for "head" (default NodeURL) or the
	// metrics URL for "metrics" (http://127.0.0.1:9100/metrics).
	ProgressURL string `toml:"progress_url"`
	// Metric is the counter that must grow, for "metrics"
	// (taobox_miner_tasks_served_total).
	Metric string `toml:"metric"`
	// StallAfter: no progress for this long gets the role killed and
	// restarted. Default for "head": 10 × BlockTime; for "metrics": 30m.
	StallAfter Duration `toml:"stall_after"`
	// BlockTime is the chain's block interval, for the "head" default.
	// Default 12s.
	BlockTime Duration `toml:"block_time"`
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	if c.DataDir == "" {
		c.DataDir = "/var/lib/taobox"
	}
	if c.Backend == "" {
		c.Backend = "auto"
	}
	if c.NodeURL == "" {
		c.NodeURL = "http://127.0.0.1:7744"
	}
	if c.SelftestTimeout == 0 {
		c.SelftestTimeout = Duration(3 * time.Minute)
	}
	s := &c.Supervisor
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&s.MinBackoff, time.Second)
	def(&s.MaxBackoff, 5*time.Minute)
	def(&s.StableAfter, 10*time.Minute)
	def(&s.ProbeInterval, 15*time.Second)
	def(&s.StopTimeout, 30*time.Second)
	for i := range c.Roles {
		r := &c.Roles[i]
		if r.Name == "" {
			r.Name = r.Kind
		}
		if r.Progress == "" {
			r.Progress = ProgressNone
			if r.Kind == KindNode {
				r.Progress = ProgressHead
			}
		}
		def(&r.BlockTime, 12*time.Second)
		if r.Progress == ProgressHead && r.ProgressURL == "" {
			r.ProgressURL = c.NodeURL
		}
		switch r.Progress {
		case ProgressHead:
			def(&r.StallAfter, 10*r.BlockTime.D())
		case ProgressMetrics:
			def(&r.StallAfter, 30*time.Minute)
		}
	}
}

// Validate reports every problem of a config after EnsureDefaults, one per
// line, each naming the option.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !filepath.IsAbs(c.DataDir) {
		bad("data_dir", "%q: want an absolute path", c.DataDir)
	}
	if !slices.Contains([]string{"auto", "cpu", "cuda"}, c.Backend) {
		bad("backend", "%q: want auto, cpu or cuda", c.Backend)
	}
	if err := checkURL(c.NodeURL); err != nil {
		bad("node_url", "%v", err)
	}
	if _, err := ParseReleaseKeys(c.ReleaseKeys); err != nil {
		bad("release_keys", "%v", err)
	}
	if c.SelftestTimeout.D() < time.Second {
		bad("selftest_timeout", "%v: want at least 1s", c.SelftestTimeout.D())
	}
	s := c.Supervisor
	if s.MinBackoff.D() <= 0 {
		bad("supervisor.min_backoff", "%v: want more than 0", s.MinBackoff.D())
	}
	if s.MaxBackoff < s.MinBackoff {
		bad("supervisor.max_backoff", "%v is below min_backoff %v", s.MaxBackoff.D(), s.MinBackoff.D())
	}
	if s.StableAfter.D() <= 0 {
		bad("supervisor.stable_after", "%v: want more than 0", s.StableAfter.D())
	}
	if s.ProbeInterval.D() <= 0 {
		bad("supervisor.probe_interval", "%v: want more than 0", s.ProbeInterval.D())
	}
	if s.StopTimeout.D() <= 0 {
		bad("supervisor.stop_timeout", "%v: want more than 0", s.StopTimeout.D())
	}
	names := map[string]bool{}
	for i, r := range c.Roles {
		f := fmt.Sprintf("role[%d]", i)
		if !slices.Contains([]string{KindNode, KindMiner, KindValidator}, r.Kind) {
			bad(f+".kind", "%q: want node, miner or validator", r.Kind)
		}
		if names[r.Name] {
			bad(f+".name", "%q is used twice; give each role its own name", r.Name)
		}
		names[r.Name] = true
		for _, a := range r.Args {
			if strings.ContainsRune(a, 0) {
				bad(f+".args", "an argument contains a NUL byte")
			}
		}
		switch r.Progress {
		case ProgressNone:
		case ProgressHead:
			if r.Kind != KindNode {
				bad(f+".progress", "\"head\" is for a node; use \"metrics\" or \"none\" for a %s", r.Kind)
			}
			if err := checkURL(r.ProgressURL); err != nil {
				bad(f+".progress_url", "%v", err)
			}
		case ProgressMetrics:
			if err := checkURL(r.ProgressURL); err != nil {
				bad(f+".progress_url", "%v (the role's metrics endpoint, such as http://127.0.0.1:9100/metrics)", err)
			}
			if r.Metric == "" {
				bad(f+".metric", "empty: name the counter that must grow, such as taobox_miner_tasks_served_total")
			}
		default:
			bad(f+".progress", "%q: want head, metrics or none", r.Progress)
		}
		if r.Progress != ProgressNone && r.StallAfter.D() < time.Second {
			bad(f+".stall_after", "%v: want at least 1s", r.StallAfter.D())
		}
		if r.BlockTime.D() <= 0 {
			bad(f+".block_time", "%v: want more than 0", r.BlockTime.D())
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an http:// or https:// URL with a host", s)
	}
	return nil
}

// ParseReleaseKeys decodes hex ed25519 public keys.
func ParseReleaseKeys(keys []string) ([]ed25519.PublicKey, error) {
	out := make([]ed25519.PublicKey, 0, len(keys))
	for i, k := range keys {
		b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(k), "0x"))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d %q: want 64 hex digits (an ed25519 public key)", i, k)
		}
		out = append(out, ed25519.PublicKey(b))
	}
	return out, nil
}

// ParseConfig decodes a TOML config (unknown keys are an error, so a typo
// does not silently keep a default), fills the defaults and validates it.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config: %d bytes, at most %d", len(data), maxConfigBytes)
	}
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config: unknown option(s) %s (see taobox.example.toml)", strings.Join(keys, ", "))
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

// FirmwareDir is <DataDir>/firmware, where the update slots live.
func (c *Config) FirmwareDir() string { return filepath.Join(c.DataDir, "firmware") }
