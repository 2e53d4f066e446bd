//go:build !cuda

package main

func runRunner(*env, string, int, string) error { return errNoCUDA }
