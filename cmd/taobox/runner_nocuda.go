//go:build !cuda && !fakerunner

package main

import "taobox/gpu/runner"

func runRunner(*env, string, int, string, *runner.Shm) error { return errNoCUDA }
