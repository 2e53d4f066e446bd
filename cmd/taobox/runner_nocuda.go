//go:build !cuda

package main

import "taobox/gpu/runner"

func runRunner(*env, string, int, string, *runner.Shm) error { return errNoCUDA }
