package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

const jsonContract = `The input is one JSON object with the fields of an input_state in
subtensor's epoch vectors (chain/yuma/testdata/epochs.json in the taobox
source): n, current_block, tempo, activity_cutoff_blocks (or
activity_cutoff_factor_milli), last_update, block_at_registration,
alpha_stake, tao_stake, tao_weight_u64, stake_threshold, owner_uid (uid or
null), validator_permit, max_allowed_validators, kappa, bonds_penalty,
bonds_moving_average, yuma3, liquid_alpha, alpha_values ([low, high]),
alpha_sigmoid_steepness, last_mechanism_step_block, commit_reveal,
commit_blocks (optional: null, or a block or null per uid), weights and
bonds (per uid, a list of [uid, u16] pairs in stored order), rao_emission
and variant ("sparse", or "dense" for subtensor's test-only dense epoch, at
most 4096 uids).
Every other field is an error; integers are exact up to 2^64-1.

The output is one JSON object: stake_weight_u16, consensus_u16,
incentive_u16, dividends_u16, validator_trust_u16, server_emission,
validator_emission, emission (rao), new_validator_permits, inactive and
new_bonds_u16 (per uid, a list of [uid, u16] pairs).`

var yumaCommand = &command{
	name:    "yuma",
	summary: "the Yuma consensus epoch, bit for bit as subtensor runs it",
	help: "Runs subtensor's Yuma consensus epoch (epoch_mechanism, or the dense test\n" +
		"variant) on chain state given as JSON, or on a synthetic subnet.",
}

var yumaEpochCommand = &command{
	name:    "yuma epoch",
	args:    "[--in FILE]",
	summary: "run one epoch: JSON input on stdin or --in, JSON output on stdout",
	help: "Reads one epoch input, runs the epoch and writes the output as one line\n" +
		"of JSON. Example:\n\n" +
		"  taobox yuma epoch --in state.json > terms.json\n\n" + jsonContract,
	setup: func(fs *flag.FlagSet) func(*env) error {
		in := fs.String("in", "-", "read the input from `FILE` (- for stdin)")
		return func(e *env) error {
			data, err := readInput(e, *in)
			if err != nil {
				return err
			}
			input, err := yuma.DecodeInput(data)
			if err != nil {
				return err
			}
			out, err := yuma.Epoch(input)
			if err != nil {
				return err
			}
			enc, err := yuma.EncodeOutput(out)
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(append(enc, '\n'))
			return err
		}
	},
}

var yumaBatchCommand = &command{
	name:    "yuma batch",
	args:    "[--in FILE] [--workers N]",
	summary: "run a JSON list of epochs in parallel on the CPU engine",
	help: "Reads a JSON list of epoch inputs (see 'taobox help yuma epoch') and writes\n" +
		"the JSON list of their outputs in the same order, one output per line.\n" +
		"Results do not depend on --workers. A malformed input fails the whole\n" +
		"batch, naming its index: \"[3].weights[0][1]: ...\".",
	setup: func(fs *flag.FlagSet) func(*env) error {
		in := fs.String("in", "-", "read the inputs from `FILE` (- for stdin)")
		workers := fs.Int("workers", 0, "run `N` epochs at a time (0: one per CPU)")
		return func(e *env) error {
			if *workers < 0 {
				return &usageError{"--workers", fmt.Sprintf("must be 0 (one per CPU) or more, got %d", *workers)}
			}
			data, err := readInput(e, *in)
			if err != nil {
				return err
			}
			ins, err := yuma.DecodeInputs(data)
			if err != nil {
				return err
			}
			outs, err := yuma.NewCPUEngine(*workers).Epochs(e.ctx, ins)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			b.WriteString("[")
			for i := range outs {
				enc, err := yuma.EncodeOutput(&outs[i])
				if err != nil {
					return err
				}
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString("\n")
				b.Write(enc)
			}
			if len(outs) > 0 {
				b.WriteString("\n")
			}
			b.WriteString("]\n")
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// yumaInputLimit caps what `yuma epoch|batch` read: yuma.MaxJSONSize (tests
// lower it to exercise the cap without a 256 MiB document).
var yumaInputLimit = yuma.MaxJSONSize

// readInput reads the named file, or stdin for "-" or "", up to
// yumaInputLimit bytes; a larger input is a *yuma.FieldError (exit 2).
func readInput(e *env, name string) ([]byte, error) {
	r := e.stdin
	if name != "-" && name != "" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(yumaInputLimit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > yumaInputLimit {
		return nil, &yuma.FieldError{Field: "input", Problem: fmt.Sprintf("is larger than the limit of %d bytes; split a batch into smaller ones", yumaInputLimit)}
	}
	return data, nil
}

// demoRows is how many uids the demo shows per epoch without --all.
// Validators and miners share the rows, so both roles show.
const demoRows = 20

var yumaDemoCommand = &command{
	name:    "yuma demo",
	args:    "[--uids 256] [--validators 64] [--epochs 3] [--seed 1] [--yuma3=true] [--liquid-alpha=true] [--all]",
	summary: "run a few epochs of a synthetic subnet and print who earns what",
	help: "Builds a deterministic synthetic subnet (uids 0..validators-1 are validators\n" +
		"with large stake and weights; the rest are miners) with subtensor's defaults\n" +
		"for a new subnet, runs the epoch, carries bonds and permits over to the next\n" +
		"epoch and repeats. For each epoch it prints the 10 validators and the 10\n" +
		"miners with the most emission (--all: every uid), with their role\n" +
		"(V validator, M miner), share of stake, incentive, dividends, emission in rao,\n" +
		"validator trust and permit, then the totals over all uids.\n" +
		"Boolean flags take their value with '=': --yuma3=false.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		uids := fs.Int("uids", 256, "number of uids in the subnet (1..65535)")
		validators := fs.Int("validators", 64, "number of validators (0..uids)")
		epochs := fs.Int("epochs", 3, "number of epochs to run (1..1000)")
		seed := fs.Uint64("seed", 1, "random seed of the synthetic subnet")
		weights := fs.Int("weights", 0, "uids each validator weights (0: every other uid)")
		yuma3 := fs.Bool("yuma3", true, "use Yuma 3 bonds (false: original Yuma)")
		liquid := fs.Bool("liquid-alpha", true, "use liquid alpha (only with Yuma 3)")
		dense := fs.Bool("dense", false, "run the dense test variant instead of the production sparse epoch")
		all := fs.Bool("all", false, "print every uid, not only the 10 validators and 10 miners with the most emission")
		return func(e *env) error {
			switch {
			case *uids < 1 || *uids > yuma.MaxUIDs:
				return &usageError{"--uids", fmt.Sprintf("must be in [1, %d], got %d", yuma.MaxUIDs, *uids)}
			case *validators < 0 || *validators > *uids:
				return &usageError{"--validators", fmt.Sprintf("must be in [0, --uids = %d], got %d", *uids, *validators)}
			case *epochs < 1 || *epochs > 1000:
				return &usageError{"--epochs", fmt.Sprintf("must be in [1, 1000], got %d", *epochs)}
			case *weights < 0:
				return &usageError{"--weights", fmt.Sprintf("must be 0 (every other uid) or more, got %d", *weights)}
			}
			cfg := yuma.SynthConfig{
				N: *uids, Validators: *validators, Seed: *seed,
				Yuma3: *yuma3, LiquidAlpha: *liquid, WeightsPerValidator: *weights,
			}
			if *dense {
				cfg.Variant = yuma.Dense
			}
			var b bytes.Buffer
			writeDemoHeader(&b, cfg)
			in := yuma.Synthetic(cfg)
			for epoch := 1; epoch <= *epochs; epoch++ {
				if err := e.ctx.Err(); err != nil {
					return err
				}
				out, err := yuma.Epoch(&in)
				if err != nil {
					return err
				}
				writeDemoEpoch(&b, epoch, &in, out, cfg.Validators, *all)
				yuma.Advance(&in, out)
			}
			_, err := e.stdout.Write(b.Bytes())
			return err
		}
	},
}

func writeDemoHeader(b *bytes.Buffer, cfg yuma.SynthConfig) {
	bonds := "original Yuma bonds"
	if cfg.Yuma3 {
		bonds = "Yuma 3 bonds"
		if cfg.LiquidAlpha {
			bonds += " with liquid alpha"
		}
	}
	fmt.Fprintf(b, "Synthetic subnet: %d uids (%d validators, %d miners), seed %d, %s, %s epoch.\n",
		cfg.N, cfg.Validators, cfg.N-cfg.Validators, cfg.Seed, bonds, cfg.Variant)
	b.WriteString("Shares are fractions of 1 (u16/65535 as the chain stores them); emission is in rao (1 TAO = 1e9 rao).\n")
}

// writeDemoEpoch prints one epoch: a header, the top uids by emission (or
// all of them) and a totals line.
func writeDemoEpoch(b *bytes.Buffer, epoch int, in *yuma.Input, out *yuma.Output, validators int, all bool) {
	var toMiners, toValidators, total uint64
	for i := range in.N {
		toMiners += out.ServerEmission[i]
		toValidators += out.ValidatorEmission[i]
		total += out.Emission[i]
	}
	fmt.Fprintf(b, "\nEpoch %d at block %d: %s rao to distribute; miners get %s, validators %s.\n",
		epoch, in.CurrentBlock, groupDigits(in.RaoEmission), groupDigits(toMiners), groupDigits(toValidators))

	order := make([]int, in.N)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(out.Emission[y], out.Emission[x]) })
	shown := order
	if !all && len(shown) > demoRows {
		shown = demoPick(order, validators, in.N-validators)
	}

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "uid\trole\tstake\tincentive\tdividends\temission (rao)\tvtrust\tpermit\t\n")
	var stake, incentive, dividends uint64
	permits := 0
	for i := range in.N {
		stake += uint64(out.StakeWeight[i])
		incentive += uint64(out.Incentive[i])
		dividends += uint64(out.Dividends[i])
		if out.NewValidatorPermits[i] {
			permits++
		}
	}
	for _, i := range shown {
		role := "M"
		if i < validators {
			role = "V"
		}
		permit := "-"
		if out.NewValidatorPermits[i] {
			permit = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", i, role,
			fraction(uint64(out.StakeWeight[i])), fraction(uint64(out.Incentive[i])),
			fraction(uint64(out.Dividends[i])), groupDigits(out.Emission[i]),
			fraction(uint64(out.ValidatorTrust[i])), permit)
	}
	fmt.Fprintf(tw, "total\t\t%s\t%s\t%s\t%s\t\t%d\t\n",
		fraction(stake), fraction(incentive), fraction(dividends), groupDigits(total), permits)
	tw.Flush()
	if len(shown) < in.N {
		nv := demoPickedValidators(shown, validators)
		fmt.Fprintf(b, "(the %d validators and %d miners with the most emission, of %d uids; --all shows every uid)\n",
			nv, len(shown)-nv, in.N)
	}
}

// demoPick returns the first demoRows uids of order (uids by emission,
// highest first) with validators and miners sharing the rows evenly, so that
// both roles show even though validators earn more per uid.
func demoPick(order []int, validators, miners int) []int {
	vq := min(demoRows/2, validators)
	mq := min(demoRows-vq, miners)
	vq = min(demoRows-mq, validators)
	var picked []int
	for _, i := range order {
		if i < validators && vq > 0 {
			picked = append(picked, i)
			vq--
		} else if i >= validators && mq > 0 {
			picked = append(picked, i)
			mq--
		}
	}
	return picked
}

// demoPickedValidators counts the validators among uids.
func demoPickedValidators(uids []int, validators int) int {
	n := 0
	for _, i := range uids {
		if i < validators {
			n++
		}
	}
	return n
}

// fraction formats v/65535 with four decimals, in integers: the demo shows
// consensus values without rounding them through floats.
func fraction(v uint64) string {
	q := v * 10_000 / 65_535
	return fmt.Sprintf("%d.%04d", q/10_000, q%10_000)
}

// groupDigits writes v with a comma every three digits: 1,234,567.
func groupDigits(v uint64) string {
	s := fmt.Sprint(v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

var yumaBenchCommand = &command{
	name:    "yuma bench",
	args:    "[--time 1s] [--seed 1] [--quick]",
	summary: "time the Yuma engine beside the literal port of subtensor's code, as a table",
	help: "Times Yuma epochs of typical subnet sizes on this machine and prints one\n" +
		"table: the production engine (flat slices, warm workspace) beside the\n" +
		"reference, a literal port of subtensor's Vec<Vec<_>> code (yuma.Reference),\n" +
		"on the same aged synthetic subnets in the same run. Rows: one 256-uid epoch\n" +
		"with 64 validators weighting every other uid (Yuma 3 with liquid alpha;\n" +
		"Yuma 3; original Yuma) on one goroutine; a batch of 128 such subnets on\n" +
		"1 and 2 workers (the reference runs them one after the other); one 4096-uid\n" +
		"epoch with 256 validators. ENGINE and REFERENCE are milliseconds per epoch\n" +
		"(per batch on the batch rows), ALLOCS are heap allocations per epoch (per\n" +
		"batch) once warm. TARGET is taobox's performance goal where it has one (at\n" +
		"most 1 ms for the 256-uid Yuma 3 + liquid alpha epoch on one goroutine,\n" +
		"60 ms for the 128-subnet batch on 2 workers; other rows only report) and MET\n" +
		"whether this run meets it. Each figure is the mean over at least --time of\n" +
		"repetitions (and at least 10 of the engine, 1 of the reference) after a\n" +
		"warm-up run; before timing, the engine's outputs must equal the reference's\n" +
		"bit for bit. Run it on a quiet machine. --quick uses subnets of 64 and 128\n" +
		"uids and the fewest repetitions, ignoring --time, and has no targets (tests\n" +
		"and CI; not for comparing machines).",
	setup: func(fs *flag.FlagSet) func(*env) error {
		minTime := fs.Duration("time", time.Second, "time each figure over at least `DURATION` of repetitions")
		seed := fs.Uint64("seed", 1, "the `seed` of the synthetic subnets")
		quick := fs.Bool("quick", false, "small subnets, fewest repetitions, --time ignored (tests and CI; not for comparing machines)")
		return func(e *env) error {
			if *minTime < 0 {
				return &usageError{"--time", fmt.Sprintf("must not be negative, got %v", *minTime)}
			}
			if *quick {
				*minTime = 0
			}
			return runYumaBench(e, yumaBenchScenarios(*quick, *seed), *minTime, *quick)
		}
	},
}

// yumaBenchScenario is one row of `yuma bench`.
type yumaBenchScenario struct {
	name     string
	subnets  int
	cfg      yuma.SynthConfig
	workers  int     // engine workers; 0: one epoch on the calling goroutine
	targetMs float64 // the goal for ENGINE, 0: report only
}

// yumaBenchScenarios returns the performance scenarios (quick:
// the same shapes scaled down to 64 uids and 8 subnets).
func yumaBenchScenarios(quick bool, seed uint64) []yumaBenchScenario {
	n, nv, batch, bigN, bigV := 256, 64, 128, 4096, 256
	if quick {
		n, nv, batch, bigN, bigV = 64, 16, 8, 128, 16
	}
	cfg := func(n, nv int, y3, la bool) yuma.SynthConfig {
		return yuma.SynthConfig{N: n, Validators: nv, Seed: seed, Yuma3: y3, LiquidAlpha: la}
	}
	one := fmt.Sprintf("1 epoch, %d uids, %d validators", n, nv)
	many := fmt.Sprintf("%d x %d uids, %d validators", batch, n, nv)
	s := []yumaBenchScenario{
		{one + ", Yuma 3 + liquid alpha", 1, cfg(n, nv, true, true), 0, 1},
		{one + ", Yuma 3", 1, cfg(n, nv, true, false), 0, 0},
		{one + ", original Yuma", 1, cfg(n, nv, false, false), 0, 0},
		{many + ", Yuma 3 + liquid alpha", batch, cfg(n, nv, true, true), 1, 0},
		{many + ", Yuma 3 + liquid alpha", batch, cfg(n, nv, true, true), 2, 60},
		{fmt.Sprintf("1 epoch, %d uids, %d validators, Yuma 3 + liquid alpha", bigN, bigV), 1, cfg(bigN, bigV, true, true), 0, 0},
	}
	if quick {
		for i := range s {
			s[i].targetMs = 0
		}
	}
	return s
}

// yumaBenchInputs builds a scenario's subnets: subnet i is the synthetic
// subnet of seed cfg.Seed+i, aged by 3 epochs so that bonds, permits and
// liquid alpha are in a steady state (gpuplan.AgedSynthetic).
func yumaBenchInputs(s yumaBenchScenario) []yuma.Input {
	ins := make([]yuma.Input, s.subnets)
	for i := range ins {
		cfg := s.cfg
		cfg.Seed += uint64(i)
		ins[i] = gpuplan.AgedSynthetic(cfg, 3)
	}
	return ins
}

// yumaBenchFigure is one timed function: mean time and heap allocations
// (runtime.MemStats.Mallocs, process-wide) per call, over iters calls after
// one warm-up call.
type yumaBenchFigure struct {
	ms, allocs float64
	iters      int
}

func measureYuma(ctx context.Context, minTime time.Duration, minIters int, f func() error) (yumaBenchFigure, error) {
	if err := f(); err != nil { // warm-up: workspaces, outputs, caches
		return yumaBenchFigure{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	iters := 0
	for iters < max(minIters, 1) || time.Since(start) < minTime {
		if err := ctx.Err(); err != nil {
			return yumaBenchFigure{}, err
		}
		if err := f(); err != nil {
			return yumaBenchFigure{}, err
		}
		iters++
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return yumaBenchFigure{
		ms:     float64(elapsed.Nanoseconds()) / 1e6 / float64(iters),
		allocs: float64(after.Mallocs-before.Mallocs) / float64(iters),
		iters:  iters,
	}, nil
}

func runYumaBench(e *env, scenarios []yumaBenchScenario, minTime time.Duration, quick bool) error {
	var b bytes.Buffer
	timing := fmt.Sprintf("--time %v", minTime)
	if quick {
		timing = "--quick (small subnets, fewest repetitions, --time ignored, no targets)"
	}
	fmt.Fprintf(&b, "Yuma epoch benchmarks: taobox %s, %s, %s/%s, %d CPUs, GOMAXPROCS %d, %s.\n",
		version, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), timing)
	b.WriteString("ENGINE: the production engine, warm. REFERENCE: the literal port of subtensor's code (yuma.Reference).\n" +
		"Milliseconds and allocations are per epoch, or per batch on batch rows.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "SCENARIO\tWORKERS\tENGINE ms\tREFERENCE ms\tSPEEDUP\tENGINE ALLOCS\tREFERENCE ALLOCS\tTARGET\tMET\n")
	built := map[string][]yuma.Input{} // rows that differ only in workers share inputs
	for _, s := range scenarios {
		fmt.Fprintf(e.stderr, "yuma bench: %s, %d worker(s)\n", s.name, max(s.workers, 1))
		key := fmt.Sprintf("%d %+v", s.subnets, s.cfg)
		ins, ok := built[key]
		if !ok {
			ins = yumaBenchInputs(s)
			built[key] = ins
		}
		var err error
		// The reference's outputs, which the engine must equal before it is timed.
		want := make([]*yuma.Output, len(ins))
		for i := range ins {
			if want[i], err = yuma.Reference(&ins[i]); err != nil {
				return err
			}
		}
		var engine func() error
		outs := make([]yuma.Output, len(ins))
		if s.workers == 0 {
			var ws yuma.Workspace
			engine = func() error { return ws.Epoch(&ins[0], &outs[0]) }
		} else {
			eng := yuma.NewCPUEngine(s.workers)
			engine = func() error { return eng.EpochsInto(e.ctx, ins, outs) }
		}
		if err := engine(); err != nil {
			return err
		}
		for i := range outs {
			if d := gpuplan.Diff(&outs[i], want[i]); d != "" {
				return fmt.Errorf("%s: subnet %d: the engine's outputs differ from the reference's (%s); this is a bug, report it", s.name, i, d)
			}
		}
		// At least 10 engine calls, so that the runtime's own occasional
		// allocations do not show as the engine's.
		eng, err := measureYuma(e.ctx, minTime, 10, engine)
		if err != nil {
			return err
		}
		ref, err := measureYuma(e.ctx, minTime, 1, func() error {
			for i := range ins {
				if _, err := yuma.Reference(&ins[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		target, met := "report", "-"
		if s.targetMs > 0 {
			target, met = fmt.Sprintf("<= %g ms", s.targetMs), "no"
			if eng.ms <= s.targetMs {
				met = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.1fx\t%.0f\t%.0f\t%s\t%s\n", s.name, max(s.workers, 1),
			eng.ms, ref.ms, ref.ms/eng.ms, eng.allocs, ref.allocs, target, met)
	}
	tw.Flush()
	_, err := e.stdout.Write(b.Bytes())
	return err
}
