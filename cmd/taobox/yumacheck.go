package main

import "flag"

// `yuma check`: the batched GPU Yuma engine against the CPU engine. The body
// is in yuma_cuda.go (taobox-cuda) and yuma_nocuda.go (plain taobox: exit 2).

var yumaCheckCommand = &command{
	name:    "yuma check",
	args:    "[--batches 1000] [--seed S] [--device N] [--big]",
	summary: "compare GPU and CPU Yuma epochs on random batches (taobox-cuda only)",
	help: "Runs the Yuma vectors (when chain/yuma/testdata is in the working directory)\n" +
		"and --batches random batches (adversarial subnets, and every fourth batch\n" +
		"aged synthetic subnets; chain/yuma/gpuplan.RandomBatch with --seed) through\n" +
		"the GPU engine and the CPU engine and compares every output bit for bit.\n" +
		"--big adds a 128×256 batch in every bonds regime and a 4096-uid subnet.\n" +
		"Prints each mismatch and a summary; exit status 1 if any epoch differs.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		batches := fs.Int("batches", 1000, "random `batches` to compare")
		seed := fs.Uint64("seed", 1, "random `seed`")
		device := fs.Int("device", 0, "the CUDA device `ordinal`")
		big := fs.Bool("big", false, "also compare a 128x256 batch and a 4096-uid subnet")
		return func(e *env) error { return runYumaCheck(e, *device, *batches, *seed, *big) }
	},
}
