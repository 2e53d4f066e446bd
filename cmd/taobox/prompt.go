package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/charmbracelet/x/term"
)

var (
	// errInterrupted: Ctrl-C (or SIGTERM) at a password prompt.
	errInterrupted = errors.New("interrupted")
	// errEndOfInput: Ctrl-D (the end of input) before a password was typed.
	errEndOfInput = errors.New("no password given (end of input)")
)

// maxPromptLen bounds a typed password line; the wallet refuses anything
// longer anyway.
const maxPromptLen = 4096

// terminalPrompt returns a prompt that reads a password without echo from
// e.stdin, or nil when e.stdin is not a terminal. Ctrl-C (e.ctx ending)
// or SIGTERM returns errInterrupted at once, with the terminal's settings
// restored; Ctrl-D returns errEndOfInput.
func terminalPrompt(e *env) func(string) ([]byte, error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return nil
	}
	return func(prompt string) ([]byte, error) {
		saved, err := term.GetState(f.Fd())
		if err != nil {
			return nil, err
		}
		defer term.Restore(f.Fd(), saved)
		// SIGTERM too, so that a service manager's stop also restores the
		// echo (main catches only SIGINT).
		ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		read, err := hiddenReader(f, saved)
		if err != nil {
			return nil, err
		}
		return askPassword(ctx, e.stderr, prompt, read)
	}
}

// askPassword shows prompt on w and returns what read returns, or
// errInterrupted as soon as ctx ends. read runs in its own goroutine,
// which is left blocked in its read when ctx ends first (the command
// is about to exit then).
func askPassword(ctx context.Context, w io.Writer, prompt string, read func() ([]byte, error)) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	fmt.Fprint(w, prompt)
	type answer struct {
		pw  []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		pw, err := read()
		done <- answer{pw, err}
	}()
	select {
	case a := <-done:
		fmt.Fprintln(w) // the Enter was not echoed
		return a.pw, a.err
	case <-ctx.Done():
		fmt.Fprintln(w)
		return nil, errInterrupted
	}
}

// readPasswordLine reads up to the first newline, dropping it and a "\r"
// before it, one byte at a time. The end of input (io.EOF, or a read of
// 0 bytes, which is what a terminal's Ctrl-D gives) ends the line; with
// nothing typed it is errEndOfInput.
func readPasswordLine(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) == maxPromptLen {
				return nil, fmt.Errorf("longer than %d bytes", maxPromptLen)
			}
			line = append(line, b[0])
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) == 0 {
			return nil, errEndOfInput
		}
		break
	}
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
