package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"taobox/internal/vectors"
)

// The CLI contract is tested on the real binary, built once.
var taoboxBin string

const testVersion = "v0.0.0-clitest"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taobox-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	taoboxBin = filepath.Join(dir, "taobox")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", taoboxBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// taobox runs the binary with stdin and returns its exit status and output.
func taobox(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(taoboxBin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("taobox %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// vectorCase is one whole-epoch record of vectors/yuma/epochs.json.
type vectorCase struct {
	name    string
	input   json.RawMessage
	outputs map[string]any // python_port_outputs, the fields taobox writes
}

// loadVectors returns the whole-epoch vectors with the output fields
// taobox writes.
func loadVectors(t *testing.T) []vectorCase {
	t.Helper()
	eps, err := vectors.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	var cases []vectorCase
	for _, ep := range eps {
		out := decodeJSON(t, ep.Outputs).(map[string]any)
		delete(out, "last_tempo")
		delete(out, "raw_I32F32")
		cases = append(cases, vectorCase{ep.Name(), ep.Input, out})
	}
	return cases
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %.100q: %v", data, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value in %.100q", data)
	}
	return v
}

// outputKeys is the field order of an encoded output.
var outputKeys = []string{"stake_weight_u16", "consensus_u16", "incentive_u16", "dividends_u16",
	"validator_trust_u16", "server_emission", "validator_emission", "emission",
	"new_validator_permits", "inactive", "new_bonds_u16"}

// TestYumaEpochVectors feeds every input_state of epochs.json (all 80) through
// `taobox yuma epoch` and compares the output with python_port_outputs.
func TestYumaEpochVectors(t *testing.T) {
	cases := loadVectors(t)
	if len(cases) != 80 {
		t.Fatalf("%d vector epochs, want the 80 of epochs.json", len(cases))
	}
	for _, c := range cases {
		r := taobox(t, c.input, "yuma", "epoch")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", c.name, r.code, r.stderr)
		}
		if !strings.HasSuffix(r.stdout, "}\n") || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("%s: output is not one line of JSON: %.200q", c.name, r.stdout)
		}
		got := decodeJSON(t, []byte(r.stdout)).(map[string]any)
		if !reflect.DeepEqual(got, c.outputs) {
			for _, k := range outputKeys {
				if !reflect.DeepEqual(got[k], c.outputs[k]) {
					t.Errorf("%s: %s = %v, python port %v", c.name, k, got[k], c.outputs[k])
				}
			}
			t.Fatalf("%s: output differs from python_port_outputs", c.name)
		}
		// Field order is part of the contract.
		last := -1
		for _, k := range outputKeys {
			at := strings.Index(r.stdout, `"`+k+`":`)
			if at <= last {
				t.Fatalf("%s: field %s out of order in %.200s", c.name, k, r.stdout)
			}
			last = at
		}
	}
}

func TestYumaEpochInFile(t *testing.T) {
	c := loadVectors(t)[0]
	path := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(path, c.input, 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile := taobox(t, nil, "yuma", "epoch", "--in", path)
	fromStdin := taobox(t, c.input, "yuma", "epoch")
	if fromFile.code != 0 || fromFile.stdout != fromStdin.stdout {
		t.Fatalf("--in FILE: exit %d, stdout %q, stderr %q; stdin gave %q", fromFile.code, fromFile.stdout, fromFile.stderr, fromStdin.stdout)
	}

	missing := taobox(t, nil, "yuma", "epoch", "--in", filepath.Join(t.TempDir(), "nope.json"))
	if missing.code != 1 || missing.stdout != "" || !strings.HasPrefix(missing.stderr, "taobox: yuma epoch: open ") {
		t.Fatalf("missing file: exit %d, stdout %q, stderr %q", missing.code, missing.stdout, missing.stderr)
	}
}

// editInput returns the first vector input with edit applied.
func editInput(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	m := decodeJSON(t, loadVectors(t)[0].input).(map[string]any)
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestYumaMalformedInput(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	valid := loadVectors(t)[0].input
	tests := []struct {
		name  string
		args  []string
		stdin []byte
		want  string // the whole stderr line up to the problem
	}{
		{"bad JSON", []string{"yuma", "epoch"}, []byte(`{"n": 4,,}`), "taobox: yuma epoch: input: "},
		{"empty input", []string{"yuma", "epoch"}, nil, "taobox: yuma epoch: input: "},
		{"wrong length", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["alpha_stake"] = []any{num("1")} }), "taobox: yuma epoch: alpha_stake: "},
		{"out of range", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["kappa"] = num("65536") }), "taobox: yuma epoch: kappa: "},
		{"negative", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["tempo"] = num("-1") }), "taobox: yuma epoch: tempo: "},
		{"float", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["rao_emission"] = num("1.5") }), "taobox: yuma epoch: rao_emission: "},
		{"wrong type", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["yuma3"] = "yes" }), "taobox: yuma epoch: yuma3: "},
		{"unknown field", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["extra"] = true }), "taobox: yuma epoch: extra: "},
		{"missing field", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { delete(m, "weights") }), "taobox: yuma epoch: weights: "},
		{"uid beyond n", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["weights"] = []any{[]any{}, []any{[]any{num("1"), num("5")}, []any{num("9"), num("7")}}, []any{}, []any{}}
		}), "taobox: yuma epoch: weights[1][1]: "},
		{"uid equal to n", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["weights"] = []any{[]any{[]any{num("4"), num("1")}}, []any{}, []any{}, []any{}}
		}), "taobox: yuma epoch: weights[0][0]: "},
		{"bond uid beyond n", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["bonds"] = []any{[]any{}, []any{}, []any{}, []any{[]any{num("65535"), num("1")}}}
		}), "taobox: yuma epoch: bonds[3][0]: "},
		{"weight value out of range", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["weights"] = []any{[]any{[]any{num("1"), num("65536")}}, []any{}, []any{}, []any{}}
		}), "taobox: yuma epoch: weights[0][0][1]: "},
		{"weight entry not a pair", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["weights"] = []any{[]any{[]any{num("1"), num("2"), num("3")}}, []any{}, []any{}, []any{}}
		}), "taobox: yuma epoch: weights[0][0]: "},
		{"weights row count", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["weights"] = []any{[]any{}} }), "taobox: yuma epoch: weights: "},
		{"permits longer than n", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			m["validator_permit"] = []any{true, true, true, true, true}
		}), "taobox: yuma epoch: validator_permit: "},
		{"permit not a bool", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["validator_permit"] = []any{num("1")} }), "taobox: yuma epoch: validator_permit[0]: "},
		{"commit blocks length", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["commit_blocks"] = []any{num("1")} }), "taobox: yuma epoch: commit_blocks: "},
		{"n beyond u16", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["n"] = num("65536") }), "taobox: yuma epoch: n: "},
		{"u64 overflow", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["current_block"] = num("18446744073709551616") }), "taobox: yuma epoch: current_block: "},
		{"exponent", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["tempo"] = num("1e3") }), "taobox: yuma epoch: tempo: "},
		{"number as string", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["tempo"] = "360" }), "taobox: yuma epoch: tempo: "},
		{"steepness out of i16", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["alpha_sigmoid_steepness"] = num("32768") }), "taobox: yuma epoch: alpha_sigmoid_steepness: "},
		{"alpha values shape", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["alpha_values"] = []any{num("1")} }), "taobox: yuma epoch: alpha_values: "},
		{"owner uid beyond n", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["owner_uid"] = num("4") }), "taobox: yuma epoch: owner_uid: "},
		{"cutoff disagrees with factor", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["activity_cutoff_blocks"] = num("7") }), "taobox: yuma epoch: activity_cutoff_blocks: "},
		{"unknown variant", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) { m["variant"] = "medium" }), "taobox: yuma epoch: variant: "},
		{"dense variant too large", []string{"yuma", "epoch"}, editInput(t, func(m map[string]any) {
			const n = 4097
			zeros, rows := make([]any, n), make([]any, n)
			for i := range n {
				zeros[i], rows[i] = num("0"), []any{}
			}
			m["n"], m["variant"], m["validator_permit"], m["commit_blocks"] = num("4097"), "dense", []any{}, nil
			for _, f := range []string{"last_update", "block_at_registration", "alpha_stake", "tao_stake"} {
				m[f] = zeros
			}
			m["weights"], m["bonds"] = rows, rows
		}), "taobox: yuma epoch: n: "},
		{"duplicate field", []string{"yuma", "epoch"}, append(bytes.TrimSuffix(bytes.TrimSpace(valid), []byte("}")), []byte(`, "kappa": 1}`)...), "taobox: yuma epoch: kappa: "},
		{"trailing garbage", []string{"yuma", "epoch"}, append(append([]byte{}, valid...), []byte(" x")...), "taobox: yuma epoch: input: "},
		{"two documents", []string{"yuma", "epoch"}, append(append([]byte{}, valid...), valid...), "taobox: yuma epoch: input: "},
		{"list for epoch", []string{"yuma", "epoch"}, []byte("[" + string(valid) + "]"), "taobox: yuma epoch: input: "},
		{"null document", []string{"yuma", "epoch"}, []byte("null"), "taobox: yuma epoch: input: "},
		{"white space only", []string{"yuma", "epoch"}, []byte(" \n\t"), "taobox: yuma epoch: input: "},
		{"invalid UTF-8 key", []string{"yuma", "epoch"}, []byte("{\"n\xff\": 1}"), "taobox: yuma epoch: \"n\\xff\": "},
		{"nesting too deep", []string{"yuma", "epoch"}, []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000)), "taobox: yuma epoch: input: "},
		{"batch empty input", []string{"yuma", "batch"}, nil, "taobox: yuma batch: input: "},
		{"batch trailing garbage", []string{"yuma", "batch"}, []byte("[" + string(valid) + "] ]"), "taobox: yuma batch: input: "},
		{"batch element not an object", []string{"yuma", "batch"}, []byte("[" + string(valid) + ", 7]"), "taobox: yuma batch: [1]: "},
		{"unknown flag", []string{"yuma", "epoch", "--bogus"}, valid, "taobox: yuma epoch: flags: "},
		{"extra argument", []string{"yuma", "epoch", "in.json"}, valid, "taobox: yuma epoch: args: "},
		{"batch not a list", []string{"yuma", "batch"}, valid, "taobox: yuma batch: input: "},
		{"batch element", []string{"yuma", "batch"}, []byte("[" + string(valid) + "," + string(editInput(t, func(m map[string]any) { m["n"] = num("5") })) + "]"), "taobox: yuma batch: [1].last_update: "},
		{"batch workers", []string{"yuma", "batch", "--workers", "-2"}, []byte("[]"), "taobox: yuma batch: --workers: "},
		{"bench negative time", []string{"yuma", "bench", "--time", "-1s"}, nil, "taobox: yuma bench: --time: "},
		{"batch workers syntax", []string{"yuma", "batch", "--workers", "many"}, []byte("[]"), "taobox: yuma batch: flags: "},
		{"demo uids", []string{"yuma", "demo", "--uids", "0"}, nil, "taobox: yuma demo: --uids: "},
		{"demo validators", []string{"yuma", "demo", "--uids", "8", "--validators", "9"}, nil, "taobox: yuma demo: --validators: "},
		{"unknown command", []string{"frobnicate"}, nil, "taobox: frobnicate: command: "},
		{"unknown subcommand", []string{"yuma", "frobnicate"}, nil, "taobox: yuma: command: "},
		{"help unknown command", []string{"help", "frobnicate"}, nil, "taobox: help: command: "},
		{"version flag", []string{"version", "--short"}, nil, "taobox: version: flags: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := taobox(t, tt.stdin, tt.args...)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr %q is not exactly one line", r.stderr)
			}
			if !strings.HasPrefix(r.stderr, tt.want) || len(strings.TrimSpace(r.stderr)) <= len(tt.want) {
				t.Errorf("stderr %q, want %q followed by the problem", r.stderr, tt.want)
			}
		})
	}
}

// TestYumaInputTooLarge: an input over the size cap exits 2 with one line
// and nothing on stdout, for a file and for stdin, for epoch and batch. The
// cap is lowered in-process; TAOBOX_LONG=1 also sends a real 256 MiB + 1
// byte document through the binary.
func TestYumaInputTooLarge(t *testing.T) {
	valid := loadVectors(t)[0].input
	saved := yumaInputLimit
	yumaInputLimit = len(valid) + 10
	defer func() { yumaInputLimit = saved }()
	path := filepath.Join(t.TempDir(), "big.json")
	big := append(append([]byte{}, valid...), bytes.Repeat([]byte(" "), 11)...)
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"yuma", "epoch"}, {"yuma", "epoch", "--in", path}, {"yuma", "batch"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, bytes.NewReader(big), &stdout, &stderr)
		want := "taobox: " + strings.Join(args[:2], " ") + ": input: is larger than the limit of "
		if code != 2 || stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	// Exactly at the cap it is read (and here runs: trailing spaces are JSON white space).
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"yuma", "epoch"}, bytes.NewReader(big[:yumaInputLimit]), &stdout, &stderr); code != 0 {
		t.Errorf("input of exactly the cap: exit %d, stderr %q", code, stderr.String())
	}

	if os.Getenv("TAOBOX_LONG") == "" {
		return
	}
	huge := bytes.Repeat([]byte(" "), saved+1)
	copy(huge, valid)
	r := taobox(t, huge, "yuma", "epoch")
	if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "taobox: yuma epoch: input: is larger than the limit of 268435456 bytes") {
		t.Fatalf("256 MiB + 1: exit %d, stdout %.100q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestYumaBench runs the benchmark table on small subnets: every scenario
// gets a row with figures and the engine's outputs equal the reference's
// (the command checks that before timing). It asserts no timing.
func TestYumaBench(t *testing.T) {
	r := taobox(t, nil, "yuma", "bench", "--quick")
	if r.code != 0 {
		t.Fatalf("yuma bench --quick: exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "SCENARIO") {
			header = i
		}
	}
	if header < 0 {
		t.Fatalf("no table header in:\n%s", r.stdout)
	}
	for _, col := range []string{"WORKERS", "ENGINE ms", "REFERENCE ms", "SPEEDUP", "ENGINE ALLOCS", "REFERENCE ALLOCS", "TARGET", "MET"} {
		if !strings.Contains(lines[header], col) {
			t.Errorf("header %q lacks %s", lines[header], col)
		}
	}
	// --quick ignores --time: the first line says so instead of "--time 0s".
	if !strings.Contains(lines[0], "--quick") || !strings.Contains(lines[0], "--time ignored") || strings.Contains(lines[0], "--time 0s") {
		t.Errorf("first line %q does not say that --quick ignores --time", lines[0])
	}
	rows := lines[header+1:]
	if want := len(yumaBenchScenarios(true, 1)); len(rows) != want {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), want, r.stdout)
	}
	for i, s := range yumaBenchScenarios(true, 1) {
		if !strings.HasPrefix(rows[i], s.name) || !strings.HasSuffix(rows[i], "report  -") {
			t.Errorf("row %d %q, want scenario %q", i, rows[i], s.name)
		}
		f := strings.Fields(strings.TrimPrefix(rows[i], s.name))
		if len(f) != 8 || f[0] != fmt.Sprint(max(s.workers, 1)) || !strings.HasSuffix(f[3], "x") {
			t.Errorf("row %d %q: want workers, 2 times, a speedup, 2 allocation counts, target and met", i, rows[i])
			continue
		}
		for _, num := range []string{f[1], f[2], strings.TrimSuffix(f[3], "x"), f[4], f[5]} {
			if _, err := strconv.ParseFloat(num, 64); err != nil {
				t.Errorf("row %d %q: %q is not a number", i, rows[i], num)
			}
		}
	}
}

func TestYumaBatchOrder(t *testing.T) {
	cases := loadVectors(t) // all 80, in one batch
	for _, reverse := range []bool{false, true} {
		var doc bytes.Buffer
		var want []any
		doc.WriteString("[")
		for k := range cases {
			c := cases[k]
			if reverse {
				c = cases[len(cases)-1-k]
			}
			if k > 0 {
				doc.WriteString(",")
			}
			doc.Write(c.input)
			want = append(want, c.outputs)
		}
		doc.WriteString("]")
		for _, workers := range []string{"1", "3", "0"} {
			r := taobox(t, doc.Bytes(), "yuma", "batch", "--workers", workers)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("batch --workers %s: exit %d, stderr %q", workers, r.code, r.stderr)
			}
			if got := decodeJSON(t, []byte(r.stdout)).([]any); !reflect.DeepEqual(got, want) {
				t.Fatalf("batch --workers %s (reverse %v): outputs differ from the vectors, in order", workers, reverse)
			}
		}
	}

	r := taobox(t, []byte(" [] "), "yuma", "batch")
	if r.code != 0 || r.stdout != "[]\n" {
		t.Fatalf("empty batch: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestHelpCitesRealFiles: a file of the source tree that a command's help
// names exists (yuma epoch cited vectors/yuma/epochs.json, which is not in
// the repository), and no help speaks of "the issue", which users do not
// know (UX walkthrough).
func TestHelpCitesRealFiles(t *testing.T) {
	path := regexp.MustCompile(`\b(?:docs|chain|cmd|gpu|wallet|internal|vectors|miner|validator)/[A-Za-z0-9_./-]*[A-Za-z0-9_]\.(?:md|json|go|toml)\b`)
	cited := 0
	for _, c := range commands {
		for _, p := range path.FindAllString(c.help, -1) {
			cited++
			if _, err := os.Stat(filepath.Join("..", "..", p)); err != nil {
				t.Errorf("taobox help %s cites %s: %v", c.name, p, err)
			}
		}
		if m := regexp.MustCompile(`(?i)\bissues?\b`).FindString(c.help); m != "" {
			t.Errorf("taobox help %s speaks of %q", c.name, m)
		}
	}
	if cited == 0 {
		t.Fatal("no help cites a file; the pattern is wrong")
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}, {}} {
		r := taobox(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("taobox %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, c := range commands {
			if !strings.Contains(r.stdout, "  "+c.name+"  ") || !strings.Contains(r.stdout, c.summary) {
				t.Errorf("taobox %v does not list %q with its summary:\n%s", args, c.name, r.stdout)
			}
		}
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		viaHelp := taobox(t, nil, append([]string{"help"}, words...)...)
		if viaHelp.code != 0 || !strings.HasPrefix(viaHelp.stdout, "Usage: taobox "+c.name) || !strings.Contains(viaHelp.stdout, c.help) {
			t.Errorf("taobox help %s: exit %d, stdout %q", c.name, viaHelp.code, viaHelp.stdout)
		}
		if c.setup != nil {
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.setup(fs)
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(viaHelp.stdout, "-"+f.Name) || !strings.Contains(viaHelp.stdout, strings.Fields(f.Usage)[0]) {
					t.Errorf("taobox help %s does not explain flag --%s", c.name, f.Name)
				}
			})
		}
		if c == helpCommand {
			continue
		}
		viaFlag := taobox(t, nil, append(words, "--help")...)
		if viaFlag.code != 0 || viaFlag.stdout != viaHelp.stdout {
			t.Errorf("taobox %s --help: exit %d, stdout differs from taobox help %s", c.name, viaFlag.code, c.name)
		}
	}

	r := taobox(t, nil, "yuma")
	for _, sub := range []string{"yuma epoch", "yuma batch", "yuma demo"} {
		if r.code != 0 || !strings.Contains(r.stdout, sub) {
			t.Errorf("taobox yuma: exit %d, does not list %s:\n%s", r.code, sub, r.stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	r := taobox(t, nil, "version")
	want := fmt.Sprintf("taobox %s %s %s/%s\n", testVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("taobox version: exit %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

func TestYumaDemo(t *testing.T) {
	args := []string{"yuma", "demo", "--uids", "48", "--validators", "6", "--epochs", "2", "--seed", "5"}
	r := taobox(t, nil, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("demo: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"48 uids (6 validators, 42 miners)", "Epoch 1 at block 10000", "Epoch 2 at block 10360",
		"emission (rao)", "--all shows every uid", "total"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if again := taobox(t, nil, args...); again.stdout != r.stdout {
		t.Error("demo output differs between two runs of the same seed")
	}

	all := taobox(t, nil, append(args, "--all", "--epochs", "1", "--yuma3=false", "--dense")...)
	if all.code != 0 {
		t.Fatalf("demo --all: exit %d, stderr %q", all.code, all.stderr)
	}
	rows := 0
	for _, line := range strings.Split(all.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && (f[1] == "V" || f[1] == "M") {
			rows++
		}
	}
	if rows != 48 || !strings.Contains(all.stdout, "original Yuma bonds, dense epoch") {
		t.Fatalf("demo --all printed %d uid rows, want 48:\n%s", rows, all.stdout)
	}
}

// TestPanicIsReported runs a command that panics in-process: exit status 1,
// a request to report the bug, and nothing on stdout.
func TestPanicIsReported(t *testing.T) {
	boom := &command{name: "boom", summary: "panics", setup: func(*flag.FlagSet) func(*env) error {
		return func(e *env) error { panic("kaboom") }
	}}
	commands = append(commands, boom)
	defer func() { commands = commands[:len(commands)-1] }()

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"boom"}, nil, &stdout, &stderr)
	if code != 1 || stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "taobox: boom: internal error: kaboom\n") ||
		!strings.Contains(stderr.String(), "report") {
		t.Fatalf("panic: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestDedupPrefix(t *testing.T) {
	for _, tc := range []struct{ name, msg, want string }{
		{"node", "node: node: the API address: in use", "the API address: in use"},
		{"validator", "validator: metagraph: refused", "metagraph: refused"},
		{"miner", "metrics: metrics: listening", "metrics: listening"},
		{"wallet regen-hotkey", "hotkey: bad", "hotkey: bad"},
		{"wallet show", "show: x: y", "x: y"},
		{"tx", "nonce 3: too low", "nonce 3: too low"},
		{"node", "a: b: c", "a: b: c"},
	} {
		if got := dedupPrefix(tc.name, tc.msg); got != tc.want {
			t.Errorf("dedupPrefix(%q, %q) = %q, want %q", tc.name, tc.msg, got, tc.want)
		}
	}
}
