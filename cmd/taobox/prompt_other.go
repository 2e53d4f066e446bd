//go:build !unix

package main

import (
	"os"

	"github.com/charmbracelet/x/term"
)

// hiddenReader returns a reader of one line from the terminal f without
// echo.
func hiddenReader(f *os.File, _ *term.State) (func() ([]byte, error), error) {
	return func() ([]byte, error) { return term.ReadPassword(f.Fd()) }, nil
}
