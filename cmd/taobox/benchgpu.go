package main

import (
	"flag"
	"fmt"
	"strings"
)

// `bench gpu`: the GPU's figures for the targets. The body is in
// benchgpu_cuda.go (taobox-cuda) and benchgpu_nocuda.go (plain taobox: exit 2).

var benchGPUCommand = &command{
	name:    "bench gpu",
	args:    "[--device N] [--iters 20] [--yuma-shapes 128x256,1x4096] [--model FILE] [--no-llama] [--no-yuma] [--json]",
	summary: "Yuma epochs/s, model tokens/s, GPU memory and runner boundary cost (taobox-cuda only)",
	help: "Opens --device and measures, printing each figure to stderr as it comes\n" +
		"and the report (or with --json one object) to stdout at the end:\n" +
		"  Yuma: each --yuma-shapes batch (SUBNETSxUIDS; default a 128×256 batch\n" +
		"    and one 4096-uid subnet) on the GPU engine, host packing and transfers\n" +
		"    included (gpu.BenchYuma, --iters timed batches after a checked\n" +
		"    warm-up), the same packed the way the node sends it, and the CPU\n" +
		"    engine on the same batch in the same run as the baseline;\n" +
		"  through the runner: the first shape sent by this process to a\n" +
		"    taobox-cuda runner subprocess on the same device, as yuma.packed and,\n" +
		"    as the baseline, as yuma.epochs (what a node pays per batch);\n" +
		"  the runner boundary: the first shape's round trip through the runner\n" +
		"    protocol over a unix socket and over shared memory (encode, socket,\n" +
		"    decode), with the host work of both Yuma ops, and a small request's\n" +
		"    round trip (about what a decode token would cost);\n" +
		"  inference: decode and prompt tokens/s of a Llama-3.2-1B-shaped F16 model\n" +
		"    with random weights (--decode, --prompt tokens; --no-llama skips it);\n" +
		"    the prompt batched (matrix-matrix products) and, as the baseline in\n" +
		"    the same run, one token at a time; a validator's teacher-forced pass\n" +
		"    over the prompt in one call and a forward per position,\n" +
		"    and of --model FILE (GGUF) when given, with the fraction of the HBM\n" +
		"    bandwidth bound reached by decode;\n" +
		"  GPU memory used (driver's total - free, highest seen between stages).",
	setup: func(fs *flag.FlagSet) func(*env) error {
		o := benchGPUOptions{}
		fs.IntVar(&o.device, "device", 0, "the CUDA device `ordinal`")
		fs.IntVar(&o.iters, "iters", 20, "timed Yuma batches per shape")
		fs.StringVar(&o.yumaShapes, "yuma-shapes", "128x256,1x4096", "the Yuma batches: comma-separated `SUBNETSxUIDS`")
		fs.StringVar(&o.model, "model", "", "also time this GGUF model `FILE`")
		fs.IntVar(&o.decode, "decode", 128, "tokens generated per decode run")
		fs.IntVar(&o.prompt, "prompt", 512, "tokens fed per prompt run (batched, and token by token as the baseline)")
		fs.BoolVar(&o.noLlama, "no-llama", false, "skip the synthetic 1B model")
		fs.BoolVar(&o.noYuma, "no-yuma", false, "skip Yuma and the runner boundary")
		fs.BoolVar(&o.asJSON, "json", false, "print one JSON object")
		return func(e *env) error {
			if o.iters < 1 {
				return &usageError{"--iters", "must be ≥ 1"}
			}
			if o.decode < 1 || o.prompt < 2 {
				return &usageError{"--decode", "--decode must be ≥ 1 and --prompt ≥ 2"}
			}
			var err error
			if o.shapes, err = parseYumaShapes(o.yumaShapes); err != nil {
				return &usageError{"--yuma-shapes", err.Error()}
			}
			return runBenchGPU(e, o)
		}
	},
}

type benchGPUOptions struct {
	device, iters, decode, prompt int
	model, yumaShapes             string
	shapes                        []yumaShape
	noLlama, noYuma, asJSON       bool
}

// yumaShape is a benchmark batch: subnets of uids each.
type yumaShape struct {
	name          string
	subnets, uids int
}

// parseYumaShapes reads "128x256,1x4096".
func parseYumaShapes(s string) ([]yumaShape, error) {
	var out []yumaShape
	for _, f := range strings.Split(s, ",") {
		var sh yumaShape
		if _, err := fmt.Sscanf(f, "%dx%d", &sh.subnets, &sh.uids); err != nil || fmt.Sprintf("%dx%d", sh.subnets, sh.uids) != f {
			return nil, fmt.Errorf("%q: want SUBNETSxUIDS, such as 128x256", f)
		}
		if sh.subnets < 1 || sh.subnets > 4096 || sh.uids < 1 || sh.uids > 4096 {
			return nil, fmt.Errorf("%q: subnets and uids must be in [1, 4096]", f)
		}
		sh.name = f
		out = append(out, sh)
	}
	return out, nil
}
