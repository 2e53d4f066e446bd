package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"taobox/bench"
	"taobox/gpu/runner"
	"taobox/wallet"
)

// `taobox bench` itself: every workload of package bench on this machine
// (the subcommands `bench model` and `bench gpu` go deeper into one side).

const benchAllArgs = "[--only yuma,model,quic,disk] [--model FILE] [--threads 1,N] [--json] [--plot FILE.png] [--no-save] [--data DIR] [--seed N] [--quick] [--backend auto|cpu|cuda]"

const benchAllHelp = "Measures this machine for this network, with the same seeded workloads on\n" +
	"every machine so that results compare (docs/bench.md):\n" +
	"  yuma:  epochs of a 256-uid and a 4096-uid subnet and a batch of 128\n" +
	"         256-uid subnets, on the CPU engine and on the GPU engine through\n" +
	"         the taobox-cuda runner when there is one (\"no GPU\" otherwise):\n" +
	"         ms/batch, ms/epoch, epochs/s;\n" +
	"  model: decode and prompt tokens/s of the embedded tiny model and each\n" +
	"         --model FILE, at each --threads count (as 'bench model');\n" +
	"  quic:  a QUIC handshake, 64-byte round trips (p50, p99) and one\n" +
	"         stream's throughput, on 127.0.0.1 with quic-go;\n" +
	"  disk:  4 KiB write+fsync latency (p50, p99) and goleveldb Sync batches\n" +
	"         of a block's size per second, in a temporary folder under --data.\n\n" +
	"Progress goes to stderr (a spinner on a terminal, one line per step\n" +
	"otherwise), the table (or with --json the report, schema taobox-bench/1)\n" +
	"to stdout. The report is saved as <data>/bench/<time>.json unless\n" +
	"--no-save; the table's CHANGE column and --plot compare this run with the\n" +
	"earlier saved runs of the same seed and --quick setting. --plot FILE.png\n" +
	"draws CPU against GPU and this run against up to 3 earlier ones.\n" +
	"Exit status 1 when a step failed (the report still prints).\n\n" +
	"  taobox bench --plot bench.png\n" +
	"  taobox bench --only yuma,disk --json"

func benchAllSetup(fs *flag.FlagSet) func(*env) error {
	only := fs.String("only", "", "run only these `sections` (comma list of yuma, model, quic, disk)")
	var files listFlag
	fs.Var(&files, "model", "also measure model `FILE`s (repeatable; or comma-separated)")
	threadsFlag := fs.String("threads", "", "comma-separated thread `counts` for the model section (default 1 and the CPU count)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object instead of the table")
	plotFile := fs.String("plot", "", "write a chart of this run and earlier ones to `FILE.png`")
	save := fs.Bool("save", true, "save the report under <data>/bench")
	noSave := fs.Bool("no-save", false, "do not save the report")
	data := fs.String("data", "", "the data `DIR` (default $"+wallet.EnvHome+", else ~/.taobox)")
	seed := fs.Uint64("seed", 1, "seed of every generated workload (keep the default to compare machines)")
	quick := fs.Bool("quick", false, "small workloads, one repetition each (tests and CI; not for comparing machines)")
	backend := backendFlag(fs)
	return func(e *env) error {
		c := bench.Config{Seed: *seed, Quick: *quick, Version: version}
		if *seed == 0 {
			return &usageError{"--seed", "must be ≥ 1"}
		}
		if *only != "" {
			for _, s := range strings.Split(*only, ",") {
				s = strings.TrimSpace(s)
				if !contains(bench.Sections, s) {
					return &usageError{"--only", fmt.Sprintf("%q is not a section (want %s)", s, strings.Join(bench.Sections, ", "))}
				}
				c.Sections = append(c.Sections, s)
			}
		}
		if *threadsFlag != "" {
			var err error
			if c.Threads, err = parseCounts("--threads", *threadsFlag); err != nil {
				return err
			}
		} else {
			c.Threads = []int{1}
			if n := runtime.NumCPU(); n > 1 {
				c.Threads = append(c.Threads, n)
			}
		}
		if *plotFile != "" && !strings.EqualFold(filepath.Ext(*plotFile), ".png") {
			return &usageError{"--plot", fmt.Sprintf("%q: the chart is a PNG; name the file *.png", *plotFile)}
		}
		dir := *data
		if dir == "" {
			var err error
			if dir, err = wallet.DefaultRoot(); err != nil {
				return &usageError{"--data", err.Error() + " (give --data DIR)"}
			}
		}
		c.Dir = dir
		wants := func(s string) bool { return len(c.Sections) == 0 || contains(c.Sections, s) }

		// Models: check every file before any work.
		if wants(bench.SectionModel) {
			for _, f := range append([]string{""}, files...) {
				mf, err := loadModelFile("--model", f)
				if err != nil {
					return err
				}
				name := filepath.Base(mf.path)
				if f == "" {
					name = "tiny"
				}
				c.Models = append(c.Models, bench.Model{Name: name, Type: mf.quant, FileBytes: mf.size, SeqLen: mf.m.Config.SeqLen, Runner: mf.m})
			}
		} else if len(files) > 0 {
			return &usageError{"--model", "given, but --only leaves out the model section"}
		}

		// The GPU engine: the runner when one is here.
		if wants(bench.SectionYuma) {
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			eng, err := startEngine(e.ctx, *backend, log)
			if err != nil {
				return err
			}
			defer eng.Close()
			if eng.Backend() == runner.BackendCUDA {
				c.GPU = eng
				c.GPUName = fmt.Sprintf("NVIDIA GPU through the taobox-cuda runner (pid %d)", eng.RunnerPID())
				if g, err := runner.Detect(); err == nil {
					c.GPUName += " on " + strings.Join(g.Devices, ", ")
				}
			} else {
				c.NoGPU = "no GPU"
				if *backend == runner.BackendCPU {
					c.NoGPU += " (--backend cpu)"
				} else if _, err := runner.Detect(); err != nil {
					c.NoGPU += ": " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), runner.ErrNoGPU.Error()), ": ")
				} else {
					c.NoGPU += ": the runner did not start (run 'taobox-cuda selftest')"
				}
			}
		}

		history, skipped, err := bench.LoadHistory(dir)
		if err != nil {
			fmt.Fprintf(e.stderr, "bench: earlier runs not read: %v\n", err)
		}
		for _, s := range skipped {
			fmt.Fprintf(e.stderr, "bench: skipped %s\n", s)
		}

		tty := isTerminal(e.stderr)
		prog := bench.NewTextProgress(e.stderr, tty)
		c.Progress = prog
		r, runErr := bench.Run(e.ctx, c)
		prog.Close()
		if r == nil {
			return runErr
		}
		if runErr != nil {
			return runErr // cancelled: nothing saved or printed
		}
		if *save && !*noSave {
			p, err := bench.Save(dir, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "bench: saved %s\n", p)
		}
		earlier := bench.Comparable(r, history, len(history))
		if *plotFile != "" {
			var png bytes.Buffer
			if err := bench.Plot(&png, r, earlier); err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			if err := os.WriteFile(*plotFile, png.Bytes(), 0o644); err != nil {
				return &usageError{"--plot", err.Error()}
			}
			fmt.Fprintf(e.stderr, "bench: wrote %s (this run and %d earlier)\n", *plotFile, min(len(earlier), bench.MaxPlotRuns))
		}
		var out bytes.Buffer
		if *asJSON {
			if err := r.WriteJSON(&out); err != nil {
				return err
			}
		} else {
			var prev *bench.Report
			if len(earlier) > 0 {
				prev = &earlier[len(earlier)-1]
			}
			if err := bench.WriteTable(&out, r, prev); err != nil {
				return err
			}
		}
		if _, err := e.stdout.Write(out.Bytes()); err != nil {
			return err
		}
		if len(r.Errors) > 0 {
			return fmt.Errorf("%d of the steps failed; first: %s", len(r.Errors), r.Errors[0])
		}
		return nil
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
