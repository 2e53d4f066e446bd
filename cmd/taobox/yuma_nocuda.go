//go:build !cuda

package main

func runYumaCheck(*env, int, int, uint64, bool) error { return errNoCUDA }
