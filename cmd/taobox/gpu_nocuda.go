//go:build !cuda

package main

// errNoCUDA is what the GPU commands of the plain taobox answer (exit 2).
var errNoCUDA = &usageError{"cuda", "this taobox is built without CUDA; use taobox-cuda (make cuda)"}

func runGPUInfo(*env, bool) error { return errNoCUDA }

func runSelftest(*env, int, string) error { return errNoCUDA }
