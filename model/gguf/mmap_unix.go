//go:build linux || darwin || freebsd || netbsd || openbsd

package gguf

import (
	"os"
	"syscall"
)

type mmapSource []byte

func (m mmapSource) Bytes() []byte { return m }
func (m mmapSource) Close() error  { return syscall.Munmap(m) }

func openSource(path string) (source, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size <= 0 || size != int64(int(size)) || !st.Mode().IsRegular() {
		return readSource(path) // empty or special file: no mapping
	}
	b, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readSource(path)
	}
	return mmapSource(b), nil
}
