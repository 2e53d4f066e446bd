package bench

import (
	"context"
	"fmt"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// YumaWorkload is one shape of Yuma work: Subnets synthetic subnets of
// UIDs uids each, Validators of them validators weighting every other uid
// (the shapes of `taobox-cuda bench gpu`).
type YumaWorkload struct {
	Name                      string // "<subnets>x<uids>"
	Subnets, UIDs, Validators int
}

// YumaWorkloads returns the Yuma shapes of a run: one 256-uid subnet,
// one 4096-uid subnet and a batch of 128 subnets of 256 uids; with quick,
// 256, 1024 and 8×256.
func YumaWorkloads(quick bool) []YumaWorkload {
	if quick {
		return []YumaWorkload{mkYuma(1, 256), mkYuma(1, 1024), mkYuma(8, 256)}
	}
	return []YumaWorkload{mkYuma(1, 256), mkYuma(1, 4096), mkYuma(128, 256)}
}

func mkYuma(subnets, uids int) YumaWorkload {
	v := 64
	if uids > 1024 {
		v = 128
	}
	return YumaWorkload{Name: fmt.Sprintf("%dx%d", subnets, uids), Subnets: subnets, UIDs: uids, Validators: min(v, uids)}
}

// Inputs returns the workload's epoch inputs for seed: subnet i is
// yuma.Synthetic (Yuma 3 with liquid alpha, subtensor's new-subnet
// defaults) seeded from seed and i, aged by 1 + i%2 epochs on the CPU so
// that it carries bonds. The same seed gives the same inputs everywhere.
func (w YumaWorkload) Inputs(seed uint64) []yuma.Input {
	ins := make([]yuma.Input, w.Subnets)
	for i := range ins {
		cfg := yuma.SynthConfig{
			N: w.UIDs, Validators: w.Validators, Yuma3: true, LiquidAlpha: true,
			Seed: seed*0x9e37_79b9_7f4a_7c15 + uint64(i+1),
		}
		ins[i] = gpuplan.AgedSynthetic(cfg, 1+i%2)
	}
	return ins
}

func yumaIters(c *Config) (minIters, maxIters int) {
	if c.Quick {
		return 1, 1
	}
	return 5, 100_000
}

func yumaSteps(c *Config, r *Report) []step {
	var steps []step
	for _, w := range YumaWorkloads(c.Quick) {
		var ins []yuma.Input
		var want []yuma.Output
		steps = append(steps, step{"yuma " + w.Name + " cpu", func(ctx context.Context) (string, error) {
			ins = w.Inputs(c.Seed)
			row := YumaResult{Workload: w.Name, Subnets: w.Subnets, UIDs: w.UIDs, Engine: "cpu", Available: true, Workers: c.CPUWorkers}
			var err error
			if want, err = c.CPU.Epochs(ctx, ins); err != nil {
				row.Error = err.Error()
				r.Yuma = append(r.Yuma, row)
				return "", err
			}
			err = timeYuma(ctx, c, &row, ins, c.CPU.Epochs)
			r.Yuma = append(r.Yuma, row)
			return yumaSummary(row), err
		}})
		steps = append(steps, step{"yuma " + w.Name + " gpu", func(ctx context.Context) (string, error) {
			row := YumaResult{Workload: w.Name, Subnets: w.Subnets, UIDs: w.UIDs, Engine: "gpu"}
			if c.GPU == nil {
				row.Note = "no GPU" // Machine.GPU says why
				r.Yuma = append(r.Yuma, row)
				return "no GPU", nil
			}
			row.Available = true
			err := gpuYuma(ctx, c, &row, ins, want)
			if err != nil {
				row.Error = err.Error()
			}
			r.Yuma = append(r.Yuma, row)
			return yumaSummary(row), err
		}})
	}
	return steps
}

// gpuYuma checks that the GPU engine is on the GPU and agrees with the
// CPU's outputs, then times it.
func gpuYuma(ctx context.Context, c *Config, row *YumaResult, ins []yuma.Input, want []yuma.Output) error {
	if ins == nil {
		return fmt.Errorf("no inputs (the CPU step failed)")
	}
	onGPU := func() error {
		if b := c.GPU.Backend(); b != "cuda" {
			return fmt.Errorf("the GPU runner is not serving (backend %q): the figures would be the CPU's; run 'taobox-cuda selftest' to see why", b)
		}
		return nil
	}
	if err := onGPU(); err != nil {
		return err
	}
	got, err := c.GPU.Epochs(ctx, ins)
	if err != nil {
		return err
	}
	if err := onGPU(); err != nil {
		return err
	}
	if want != nil && len(got) != len(want) {
		return fmt.Errorf("the GPU engine returned %d outputs for %d inputs", len(got), len(want))
	}
	for i := range want {
		if d := gpuplan.Diff(&got[i], &want[i]); d != "" {
			return fmt.Errorf("subnet %d: the GPU's outputs differ from the CPU engine's (%s); this is a bug, report it", i, d)
		}
	}
	if err := timeYuma(ctx, c, row, ins, c.GPU.Epochs); err != nil {
		return err
	}
	return onGPU()
}

func timeYuma(ctx context.Context, c *Config, row *YumaResult, ins []yuma.Input, epochs func(context.Context, []yuma.Input) ([]yuma.Output, error)) error {
	lo, hi := yumaIters(c)
	ds, err := loop(ctx, c, lo, hi, func() error {
		_, err := epochs(ctx, ins)
		return err
	})
	if len(ds) > 0 {
		t := total(ds)
		row.Batches = len(ds)
		row.MsPerBatch = ms(t) / float64(len(ds))
		row.MsPerEpoch = row.MsPerBatch / float64(len(ins))
		if t > 0 {
			row.EpochsPerS = float64(len(ins)*len(ds)) / t.Seconds()
		}
	}
	if err != nil {
		row.Error = err.Error()
	}
	return err
}

func yumaSummary(y YumaResult) string {
	if !y.Available {
		return y.Note
	}
	if y.Batches == 0 {
		return "failed"
	}
	return fmt.Sprintf("%.3f ms/epoch, %.0f epochs/s (%d batches)", y.MsPerEpoch, y.EpochsPerS, y.Batches)
}
