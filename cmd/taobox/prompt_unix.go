//go:build unix

package main

import (
	"os"

	"github.com/charmbracelet/x/term"
	"golang.org/x/sys/unix"
)

// hiddenReader turns echo off on the terminal f (line editing and Ctrl-C
// stay on; the caller restores saved) and returns a reader of one line.
func hiddenReader(f *os.File, saved *term.State) (func() ([]byte, error), error) {
	noEcho := *saved
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	noEcho.Iflag |= unix.ICRNL
	if err := term.SetState(f.Fd(), &noEcho); err != nil {
		return nil, err
	}
	return func() ([]byte, error) { return readPasswordLine(f) }, nil
}
