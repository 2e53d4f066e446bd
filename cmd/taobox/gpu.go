package main

import "flag"

// The GPU commands. Their bodies are in gpu_cuda.go (taobox-cuda, built with
// -tags cuda by make cuda) and gpu_nocuda.go (the plain taobox, where they
// only say to use taobox-cuda).

var gpuCommand = &command{
	name:    "gpu",
	summary: "inspect the NVIDIA GPUs (taobox-cuda only)",
	help: "Commands for the CUDA build, taobox-cuda ('make cuda'). The plain taobox\n" +
		"links no CUDA and answers them with exit status 2. taobox-cuda needs the\n" +
		"NVIDIA driver's libcuda.so.1 to start at all.",
}

var gpuInfoCommand = &command{
	name:    "gpu info",
	args:    "[--json]",
	summary: "list the CUDA devices and the driver version (taobox-cuda only)",
	help: "Prints one line per CUDA device: ordinal, name, compute capability, SMs,\n" +
		"memory and the driver's CUDA version, and whether the embedded kernels\n" +
		"(compute_80 PTX) can run on it.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		asJSON := fs.Bool("json", false, "print JSON instead of text")
		return func(e *env) error { return runGPUInfo(e, *asJSON) }
	},
}

var selftestCommand = &command{
	name:    "selftest",
	args:    "[--device N] [--run SUBSTRING]",
	summary: "run every GPU kernel's known-answer test against the CPU code (taobox-cuda only)",
	help: "Opens --device, prints its description, then runs each registered\n" +
		"known-answer test (the kernel on the GPU against the CPU code, bit for bit\n" +
		"where consensus needs it) and prints one line per test: ok or FAIL, with\n" +
		"its time. Exit status 1 if any test fails or the GPU cannot be opened.",
	setup: func(fs *flag.FlagSet) func(*env) error {
		device := fs.Int("device", 0, "the CUDA device `ordinal` to test")
		only := fs.String("run", "", "run only the tests whose name contains this `substring`")
		return func(e *env) error { return runSelftest(e, *device, *only) }
	},
}
