//go:build !cuda

package main

func runBenchGPU(*env, benchGPUOptions) error { return errNoCUDA }
