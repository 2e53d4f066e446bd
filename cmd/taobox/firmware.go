package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"taobox/chain/types"
	"taobox/firmware"
)

// The appliance commands (package firmware; docs/firmware.md).

// firmwareExecEnv marks a boot that already exec'd into the current slot.
const firmwareExecEnv = "TAOBOX_FIRMWARE_EXEC"

var firmwareCommand = &command{
	name:    "firmware",
	summary: "boot, self-test, supervise and update the appliance",
	help: "The appliance layer: 'firmware boot' probes the hardware, runs the self-test\n" +
		"and supervises the roles of the config; 'firmware update' installs a signed,\n" +
		"governance-approved release into the inactive slot with automatic rollback.\n" +
		"See docs/firmware.md.",
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "the appliance config `FILE` (TOML; default: built-in defaults, see 'taobox firmware install')")
}

// loadFirmwareConfig reads --config, or the defaults when it is empty.
func loadFirmwareConfig(path string) (*firmware.Config, error) {
	if path == "" {
		c := &firmware.Config{}
		c.EnsureDefaults()
		return c, c.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{"config", err.Error()}
	}
	c, err := firmware.ParseConfig(b)
	if err != nil {
		return nil, &usageError{"config", fmt.Sprintf("%s: %v", path, err)}
	}
	return c, nil
}

func executable() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		return p
	}
	return exe
}

func writeJSONOut(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

var firmwareBootCommand = &command{
	name:    "firmware boot",
	args:    "[--config FILE] [--json] [--log-level info]",
	summary: "boot the appliance: recover, probe, self-test, then supervise the roles",
	help: "The appliance's main process (the systemd unit runs it). It rolls back an\n" +
		"update left unfinished, switches to the current slot's binary, probes the\n" +
		"hardware, chooses the backend, runs the self-test and prints the boot report;\n" +
		"if every check passed it runs the config's roles (node, miner, validator) as\n" +
		"child processes, restarting a crashed or stalled one with backoff. SIGTERM\n" +
		"or Ctrl-C stops the roles (SIGTERM, then SIGKILL after stop_timeout) and\n" +
		"exits 0. Exit status 1 when the self-test fails (no role is started).",
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		asJSON := fs.Bool("json", false, "print the boot report as JSON")
		level := logLevelFlag(fs, "info")
		return func(e *env) error {
			lvl, err := parseLogLevel(*level)
			if err != nil {
				return err
			}
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
			self := executable()
			installed := self
			if os.Getenv(firmwareExecEnv) != "" {
				installed = os.Getenv(firmwareExecEnv)
			}
			slots := &firmware.Slots{Dir: c.FirmwareDir(), Installed: installed, Logger: log}
			p, rolledBack, err := slots.Recover(time.Now())
			if err != nil {
				return err
			}
			if bin := slots.Binary(p); bin != self && os.Getenv(firmwareExecEnv) == "" {
				log.Info("boot: switching to the current slot's binary", "slot", p.Slot, "version", p.Version, "binary", bin)
				env := append(os.Environ(), firmwareExecEnv+"="+installed)
				if err := syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), env); err != nil {
					log.Error("boot: cannot run the slot's binary; continuing with this one", "binary", bin, "err", err)
				}
			}
			r, err := firmware.Prepare(e.ctx, firmware.BootOptions{Config: c, Version: version, Installed: installed, Logger: log, RolledBack: rolledBack})
			if r != nil {
				if *asJSON {
					writeJSONOut(e, r)
				} else {
					fmt.Fprint(e.stdout, r.Text())
				}
			}
			if err != nil {
				return err
			}
			if len(c.Roles) == 0 {
				log.Warn("boot: no roles configured; nothing to supervise (add [[role]] sections to the config)")
			}
			sup := firmware.NewSupervisor(c, self, r.Backend, log)
			ctx, stop := withTermSignal(e.ctx)
			defer stop()
			return sup.Run(ctx)
		}
	},
}

var firmwareProbeCommand = &command{
	name:    "firmware probe",
	args:    "[--config FILE] [--json]",
	summary: "print the hardware the appliance sees: CPU, memory, disk, GPUs",
	help: "Prints the CPU model and the features the engines use, memory, the free\n" +
		"disk of the data directory, and the NVIDIA GPUs (with taobox-cuda: name,\n" +
		"memory and driver version; otherwise why none is usable).",
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		asJSON := fs.Bool("json", false, "print JSON")
		return func(e *env) error {
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			hw := firmware.Probe(e.ctx, firmware.ProbeOptions{DataDir: c.DataDir})
			if *asJSON {
				return writeJSONOut(e, hw)
			}
			_, err = fmt.Fprint(e.stdout, hw.Text())
			return err
		}
	},
}

var firmwareSelftestCommand = &command{
	name:    "firmware selftest",
	args:    "[--config FILE] [--json] [--run SUBSTRING]",
	summary: "run the known-answer tests: fixed-point, Yuma vectors, model engine, GPU kernels",
	help: "Runs the appliance self-test: fixed-point arithmetic against math/big,\n" +
		"subtensor's Yuma epoch vectors (single and batched) and the reference\n" +
		"epoch, the embedded tiny model (greedy anchor and bit-identical rescoring)\n" +
		"and, where a usable GPU and taobox-cuda are present, 'taobox-cuda selftest'.\n" +
		"An update runs the new binary's 'firmware selftest' before keeping it.\n" +
		"Exit status 1 if any check fails.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		asJSON := fs.Bool("json", false, "print JSON")
		only := fs.String("run", "", "run only the checks whose name contains this `substring`")
		return func(e *env) error {
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			o := firmware.SelftestOptions{SkipModel: c.SkipModelSelftest, GPUTimeout: c.SelftestTimeout.D(), Only: *only}
			if c.Backend != "cpu" {
				if hw := firmware.Probe(e.ctx, firmware.ProbeOptions{DataDir: c.DataDir}); hw.GPU.Usable {
					o.GPU = hw.GPU.Binary
				}
			}
			rs := firmware.Selftest(e.ctx, o)
			if len(rs) == 0 {
				return &usageError{"run", fmt.Sprintf("no check name contains %q (checks: %s)", *only, strings.Join(firmware.CheckNames(), ", "))}
			}
			var b bytes.Buffer
			if *asJSON {
				j, _ := json.MarshalIndent(rs, "", "  ")
				b.Write(append(j, '\n'))
			} else {
				for _, r := range rs {
					mark := "ok  "
					switch {
					case r.Skipped:
						mark = "skip"
					case !r.OK:
						mark = "FAIL"
					}
					fmt.Fprintf(&b, "%s %-15s %8.1f ms  %s\n", mark, r.Name, r.Ms, r.Detail)
				}
			}
			if !firmware.Passed(rs) {
				e.stderr.Write(b.Bytes())
				return errors.New("self-test failed")
			}
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

var firmwareReportCommand = &command{
	name:    "firmware report",
	args:    "[--config FILE] [--json]",
	summary: "print the boot report (probe, backend, self-test) without starting roles",
	help: "Runs the boot sequence up to the roles (slot recovery, hardware probe,\n" +
		"backend choice, self-test) and prints the one-screen report, or JSON.\n" +
		"Exit status 1 if the self-test fails.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		asJSON := fs.Bool("json", false, "print JSON")
		return func(e *env) error {
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			r, perr := firmware.Prepare(e.ctx, firmware.BootOptions{Config: c, Version: version, Installed: executable()})
			if r != nil {
				if *asJSON {
					writeJSONOut(e, r)
				} else {
					fmt.Fprint(e.stdout, r.Text())
				}
			}
			return perr
		}
	},
}

var firmwareKeygenCommand = &command{
	name:    "firmware keygen",
	args:    "--out KEYFILE",
	summary: "create a release signing key (for releasers; keep it offline)",
	help: "Writes a new ed25519 release key to KEYFILE (the 32-byte seed as 64 hex\n" +
		"digits, mode 0600; refuses to overwrite) and prints its public key, the\n" +
		"value for release_keys in the appliances' configs.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		out := fs.String("out", "", "the key `FILE` to create (required)")
		return func(e *env) error {
			if *out == "" {
				return &usageError{"out", "required"}
			}
			seed := make([]byte, ed25519.SeedSize)
			if _, err := rand.Read(seed); err != nil {
				return err
			}
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return &usageError{"out", err.Error()}
			}
			if _, err := fmt.Fprintln(f, hex.EncodeToString(seed)); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
			_, err = fmt.Fprintf(e.stdout, "%x\n", pub)
			return err
		}
	},
}

// readReleaseKey reads a key file of 'firmware keygen'.
func readReleaseKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{"key", err.Error()}
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, &usageError{"key", fmt.Sprintf("%s: want 64 hex digits (a file of 'taobox firmware keygen')", path)}
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

var firmwareSignCommand = &command{
	name:    "firmware sign",
	args:    "--key KEYFILE --binary FILE --version V --out BUNDLE [--min-chain-version N]",
	summary: "build a signed update bundle (for releasers)",
	help: "Writes BUNDLE: a tar of the manifest (version, the binary's sha256 and size,\n" +
		"minimum chain version, creation time), its ed25519 signature with the\n" +
		"release key, and the binary. Prints the sha256 to put to a governance vote:\n\n" +
		"  taobox tx propose --wallet NAME --firmware-hash SHA256 --firmware-version V",
	setup: func(fs *flag.FlagSet) func(*env) error {
		keyPath := fs.String("key", "", "the release key `FILE` ('taobox firmware keygen')")
		binPath := fs.String("binary", "", "the taobox binary `FILE` to ship")
		ver := fs.String("version", "", "the release `V`ersion")
		out := fs.String("out", "", "the bundle `FILE` to write")
		minChain := fs.Uint("min-chain-version", uint(types.HeaderVersion), "the chain (block header) version `N` the release needs")
		return func(e *env) error {
			if err := need("key", keyPath, "binary", binPath, "version", ver, "out", out); err != nil {
				return err
			}
			if *minChain > 0xffff {
				return &usageError{"min-chain-version", "at most 65535"}
			}
			key, err := readReleaseKey(*keyPath)
			if err != nil {
				return err
			}
			bin, err := os.ReadFile(*binPath)
			if err != nil {
				return &usageError{"binary", err.Error()}
			}
			b, m, err := firmware.SignBundle(key, bin, *ver, uint16(*minChain), time.Now())
			if err != nil {
				return &usageError{"version", err.Error()}
			}
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\nversion %s, %d bytes, signed by %x\npropose it: taobox tx propose --wallet NAME --firmware-hash %s --firmware-version %s\n",
				m.SHA256, m.Version, m.Size, key.Public(), m.SHA256, m.Version)
			return err
		}
	},
}

var firmwareUpdateCommand = &command{
	name:    "firmware update",
	args:    "BUNDLE [--config FILE] [--node URL]",
	summary: "install a signed, governance-approved release, with automatic rollback",
	help: "Verifies BUNDLE's signature against release_keys and its binary against\n" +
		"the manifest, asks the node (--node, default node_url) whether a passed\n" +
		"governance proposal approved the binary's sha256, installs it into the\n" +
		"inactive slot, switches to it, runs its 'firmware selftest' within\n" +
		"selftest_timeout and keeps it, or switches back and says why. The chain,\n" +
		"wallets and other data are not touched. Restart the service to run the\n" +
		"new version. Every step is logged on stderr.",
	minArgs: 1, maxArgs: 1,
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		nodeURL := fs.String("node", "", "the node API `URL` asked for the approval (default: node_url of the config)")
		level := logLevelFlag(fs, "info")
		return func(e *env) error {
			lvl, err := parseLogLevel(*level)
			if err != nil {
				return err
			}
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			keys, err := firmware.ParseReleaseKeys(c.ReleaseKeys)
			if err != nil {
				return &usageError{"config", err.Error()}
			}
			f, err := os.Open(e.args[0])
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					return &usageError{"BUNDLE", err.Error()}
				}
				return err
			}
			defer f.Close()
			url := c.NodeURL
			if *nodeURL != "" {
				url = *nodeURL
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
			u := &firmware.Updater{
				Slots: &firmware.Slots{Dir: c.FirmwareDir(), Installed: executable(), Logger: log},
				Keys:  keys, NodeURL: url, SelftestTimeout: c.SelftestTimeout.D(), Logger: log,
			}
			res, err := u.Update(e.ctx, f)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "installed %s in slot %s; it passed its self-test and is current\nrestart the appliance to run it: systemctl restart taobox\n",
				res.Manifest.Version, res.Slot)
			return err
		}
	},
}

var firmwareStatusCommand = &command{
	name:    "firmware status",
	args:    "[--config FILE]",
	summary: "print the slot pointer: current slot, status, version, last rollback",
	help: "Prints the firmware pointer (<data>/firmware/current) as JSON: the slot\n" +
		"that boots (\"\" is the installed binary), good or trial, its version and\n" +
		"the reason of the last rollback, and the binary it names.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		cfgPath := configFlag(fs)
		return func(e *env) error {
			c, err := loadFirmwareConfig(*cfgPath)
			if err != nil {
				return err
			}
			s := &firmware.Slots{Dir: c.FirmwareDir(), Installed: executable()}
			p, err := s.Load()
			if err != nil {
				return err
			}
			return writeJSONOut(e, map[string]any{"pointer": p, "binary": s.Binary(p)})
		}
	},
}

var firmwareInstallCommand = &command{
	name:    "firmware install",
	args:    "[--prefix DIR] [--binary PATH] [--config-path PATH]",
	summary: "write the systemd unit and the documented example config",
	help: "Writes DIR/etc/systemd/system/taobox.service (running 'BINARY firmware boot\n" +
		"--config CONFIG') and the example config at DIR/CONFIG (or CONFIG.example\n" +
		"beside an existing one, which is kept). Then: edit the config, and\n" +
		"systemctl daemon-reload && systemctl enable --now taobox.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		prefix := fs.String("prefix", "/", "the root `DIR` to write under (a staging tree)")
		bin := fs.String("binary", "", "the taobox `PATH` the unit runs (default: this binary)")
		cfg := fs.String("config-path", "/etc/taobox/taobox.toml", "the config `PATH` the unit names")
		return func(e *env) error {
			b := *bin
			if b == "" {
				b = executable()
			}
			paths, err := firmware.Install(firmware.InstallOptions{Prefix: *prefix, Binary: b, ConfigPath: *cfg})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\nnext: edit the config, then systemctl daemon-reload && systemctl enable --now taobox\n", strings.Join(paths, "\n"))
			return err
		}
	},
}
