package firmware

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the fake roles and the updater: when
// FIRMWARE_TEST_CHILD is set, TestMain runs os.Args[1:] as
// `fwtest MODE NAME` instead of the tests. Files go to FIRMWARE_TEST_DIR.
//
//	crash     exit 3 at once
//	exit0     exit 0 at once
//	hang      make no progress, never exit by itself
//	ok        bump DIR/progress-NAME every 10 ms; on SIGTERM write
//	          DIR/clean-NAME and exit 0
//	super     run a Supervisor over the roles in FIRMWARE_TEST_ROLES
//	          ("name:mode,..."); exit 0 after SIGTERM stops them
//	update    run an Updater (see updaterChild) that SIGKILLs itself after
//	          step FIRMWARE_TEST_KILL
const childEnv = "FIRMWARE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" && len(os.Args) >= 3 && os.Args[1] == "fwtest" {
		os.Exit(child(os.Args[2], os.Args[3:]))
	}
	os.Exit(m.Run())
}

func child(mode string, args []string) int {
	dir := os.Getenv("FIRMWARE_TEST_DIR")
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	appendLine(filepath.Join(dir, "starts-"+name), strconv.Itoa(os.Getpid()))
	switch mode {
	case "crash":
		return 3
	case "exit0":
		return 0
	case "hang":
		signal.Ignore(syscall.SIGTERM) // a stuck process may not even honour SIGTERM
		select {}
	case "ok":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		tick := time.NewTicker(10 * time.Millisecond)
		for n := 1; ; n++ {
			select {
			case <-term:
				os.WriteFile(filepath.Join(dir, "clean-"+name), []byte("flushed\n"), 0o644)
				return 0
			case <-tick.C:
				writeFileAtomic(filepath.Join(dir, "progress-"+name), strconv.Itoa(n))
			}
		}
	case "super":
		return superChild(dir)
	case "update":
		return updaterChild(dir)
	}
	fmt.Fprintln(os.Stderr, "unknown test child mode", mode)
	return 99
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

func writeFileAtomic(path, s string) {
	os.WriteFile(path+".tmp", []byte(s), 0o644)
	os.Rename(path+".tmp", path)
}

// testRoles parses "name:mode,...".
func testRoles(spec string) []Role {
	var roles []Role
	for _, r := range strings.Split(spec, ",") {
		name, mode, _ := strings.Cut(r, ":")
		roles = append(roles, Role{Name: name, Args: []string{"fwtest", mode, name}})
	}
	return roles
}

func superChild(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s := &Supervisor{Binary: os.Args[0], Roles: testRoles(os.Getenv("FIRMWARE_TEST_ROLES")),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, StopTimeout: 20 * time.Second}
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// countLines returns the number of lines of a file (0 if missing).
func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// waitFor polls cond every 10 ms; it fails the test after a minute (a
// hang guard, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
