//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package gguf

func openSource(path string) (source, error) { return readSource(path) }
