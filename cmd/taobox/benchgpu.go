package main

import "flag"

// `bench gpu`: the GPU's figures for the targets. The body is in
// benchgpu_cuda.go (taobox-cuda) and benchgpu_nocuda.go (plain taobox: exit 2).

var benchGPUCommand = &command{
	name:    "bench gpu",
	args:    "[--device N] [--iters 20] [--model FILE] [--no-llama] [--no-yuma] [--json]",
	summary: "Yuma epochs/s, model tokens/s, GPU memory and runner boundary cost (taobox-cuda only)",
	help: "Opens --device and measures, printing each figure to stderr as it comes\n" +
		"and the report (or with --json one object) to stdout at the end:\n" +
		"  Yuma: a 128×256 batch (128 subnets of 256 uids) and one 4096-uid subnet\n" +
		"    on the GPU engine, host packing and transfers included (gpu.BenchYuma,\n" +
		"    --iters timed batches after a checked warm-up), and the CPU engine on\n" +
		"    the same batch in the same run as the baseline;\n" +
		"  the runner boundary: the 128×256 batch's round trip through the runner\n" +
		"    protocol over a unix socket (encode, socket, decode) and a small\n" +
		"    request's round trip (about what a decode token would cost);\n" +
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
			return runBenchGPU(e, o)
		}
	},
}

type benchGPUOptions struct {
	device, iters, decode, prompt int
	model                         string
	noLlama, noYuma, asJSON       bool
}
