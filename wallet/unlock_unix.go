//go:build unix

package wallet

import (
	"os"
	"syscall"
)

// readFD reads the password line from file descriptor fd, through a
// duplicate, so that fd itself stays open and owned by whoever opened it.
func readFD(fd int) ([]byte, error) {
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "password fd")
	defer f.Close()
	return readLine(f)
}
