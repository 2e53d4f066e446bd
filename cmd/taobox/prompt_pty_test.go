//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"taobox/internal/syncbuf"
)

// openPTY opens a pseudo-terminal: its master and the path of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}

// TestPromptKeysPTY types Ctrl-C and Ctrl-D at the password prompt of
// 'taobox wallet create' on a real terminal (and sends SIGTERM): each ends
// the command at once with status 1 and says why, and the terminal echoes
// again after (Ctrl-C and Ctrl-D hung with echo off: SIGINT only ended the
// context, and the read looped on Ctrl-D's 0-byte reads; SIGTERM killed
// the process with echo off).
func TestPromptKeysPTY(t *testing.T) {
	for _, c := range []struct {
		name, key, want string
		sig             syscall.Signal // sent instead of key when set
	}{
		{"ctrl-c", "\x03", "reading the terminal: interrupted", 0},
		{"ctrl-c after typing", "pw12\x03", "reading the terminal: interrupted", 0},
		{"ctrl-d", "\x04", "reading the terminal: no password given (end of input)", 0},
		{"SIGTERM", "", "reading the terminal: interrupted", syscall.SIGTERM},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, slavePath := openPTY(t)
			s, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
			if err != nil {
				t.Skipf("open %s: %v", slavePath, err)
			}
			cmd := exec.Command(taoboxBin, "wallet", "create", "zed", "--wallets", t.TempDir())
			cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			var out syncbuf.Buffer
			go func() {
				b := make([]byte, 4096)
				for {
					n, err := m.Read(b)
					out.Write(b[:n])
					if err != nil {
						return
					}
				}
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Kill()
				<-exited
			}()

			for deadline := time.Now().Add(30 * time.Second); out.Count("Password for") == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no prompt after 30 s: %q", out.String())
				}
			}
			if c.sig != 0 {
				if err := cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
			} else if _, err := m.WriteString(c.key); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				exited <- err
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 {
					t.Fatalf("exit: %v, want status 1; output %q", err, out.String())
				}
			case <-time.After(10 * time.Second):
				tio, _ := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
				t.Fatalf("still running 10 s after %q (echo on: %v); output %q", c.key, tio != nil && tio.Lflag&unix.ECHO != 0, out.String())
			}
			tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if tio.Lflag&unix.ECHO == 0 {
				t.Error("the terminal's echo is still off after the command ended")
			}
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), c.want) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("output %q, want %q", out.String(), c.want)
			}
		})
	}
}
