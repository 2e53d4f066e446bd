//go:build !cuda

package main

import "errors"

// errNoCUDA is what the GPU commands of the plain taobox answer: exit 1, as
// for a missing GPU (2 is for malformed command lines).
var errNoCUDA = errors.New("cuda: this taobox is built without CUDA; use taobox-cuda (make cuda)")

func runGPUInfo(*env, bool) error { return errNoCUDA }

func runSelftest(*env, int, string) error { return errNoCUDA }
