package firmware

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fileProbe reads the counter an "ok" child writes: the test's stand-in for
// a role's metrics endpoint (HeadProbe is tested against a real node).
type fileProbe struct{ path string }

func (p fileProbe) Progress(context.Context) (uint64, error) {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// eventLog collects supervisor events.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

func (l *eventLog) of(role string, k EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.ev {
		if e.Role == role && e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func childSupervisor(t *testing.T, dir string, roles []Role, log *eventLog) *Supervisor {
	t.Setenv(childEnv, "1")
	t.Setenv("FIRMWARE_TEST_DIR", dir)
	return &Supervisor{Binary: os.Args[0], Roles: roles, MinBackoff: 20 * time.Millisecond, MaxBackoff: 160 * time.Millisecond,
		StableAfter: time.Hour, ProbeInterval: 50 * time.Millisecond, StopTimeout: 10 * time.Second, Events: log.add}
}

func TestSupervisorRestartsCrashes(t *testing.T) {
	dir := t.TempDir()
	var log eventLog
	roles := append(testRoles("crasher:crash,quitter:exit0"), testRoles("steady:ok")...)
	s := childSupervisor(t, dir, roles, &log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "six restarts of each failing role", func() bool {
		return len(log.of("crasher", EventExit)) >= 6 && len(log.of("quitter", EventExit)) >= 6
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"crasher", "quitter"} {
		exits := log.of(role, EventExit)
		want := []time.Duration{20, 40, 80, 160, 160, 160}
		for i, w := range want {
			if exits[i].Backoff != w*time.Millisecond {
				t.Errorf("%s exit %d: backoff %v, want %v (doubling from min_backoff, capped)", role, i+1, exits[i].Backoff, w*time.Millisecond)
			}
		}
		if role == "crasher" && (exits[0].Err == nil || !strings.Contains(exits[0].Err.Error(), "exit status 3")) {
			t.Errorf("crasher's exit error %v, want exit status 3", exits[0].Err)
		}
		if role == "quitter" && exits[0].Err != nil {
			t.Errorf("quitter's exit error %v, want nil (exit 0 is restarted too)", exits[0].Err)
		}
		if starts := countLines(filepath.Join(dir, "starts-"+role)); starts < 6 {
			t.Errorf("%s ran %d times", role, starts)
		}
	}
	// The crashes did not touch the steady role: one run, stopped cleanly.
	if n := countLines(filepath.Join(dir, "starts-steady")); n != 1 {
		t.Errorf("steady role started %d times, want 1", n)
	}
	if st := log.of("steady", EventStop); len(st) != 1 || st[0].Err != nil {
		t.Errorf("steady stop events %+v, want one clean stop", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "clean-steady")); err != nil {
		t.Errorf("steady role did not shut down cleanly: %v", err)
	}
}

func TestSupervisorWatchdog(t *testing.T) {
	dir := t.TempDir()
	var log eventLog
	roles := []Role{
		{Name: "stuck", Args: []string{"fwtest", "hang", "stuck"}, Probe: fileProbe{filepath.Join(dir, "progress-stuck")}, StallAfter: time.Second},
		{Name: "busy", Args: []string{"fwtest", "ok", "busy"}, Probe: fileProbe{filepath.Join(dir, "progress-busy")}, StallAfter: 5 * time.Second},
	}
	s := childSupervisor(t, dir, roles, &log)
	s.StopTimeout = 200 * time.Millisecond // the hung role ignores SIGTERM
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "two watchdog restarts", func() bool { return len(log.of("stuck", EventStall)) >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stalls := log.of("stuck", EventStall)
	for i, e := range stalls {
		if e.Err == nil || !strings.Contains(e.Err.Error(), "killed") {
			t.Errorf("stall %d: %v, want killed after ignoring SIGTERM", i, e.Err)
		}
		if err := syscall.Kill(e.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("stalled pid %d still exists (%v)", e.PID, err)
		}
	}
	if n := countLines(filepath.Join(dir, "starts-stuck")); n < 2 {
		t.Errorf("stuck role started %d times, want ≥ 2 (restarted by the watchdog)", n)
	}
	if st := log.of("busy", EventStall); len(st) != 0 {
		t.Errorf("the busy role, which makes progress, was restarted: %+v", st)
	}
	if n := countLines(filepath.Join(dir, "starts-busy")); n != 1 {
		t.Errorf("busy role started %d times, want 1", n)
	}
}

func TestSupervisorBinaryMissing(t *testing.T) {
	var log eventLog
	s := &Supervisor{Binary: filepath.Join(t.TempDir(), "nope"), Roles: testRoles("x:ok"), MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Events: log.add}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "three failed starts", func() bool { return len(log.of("x", EventFailed)) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f := log.of("x", EventFailed); f[2].Backoff != 4*time.Millisecond {
		t.Errorf("third failed start: backoff %v, want 4ms", f[2].Backoff)
	}
}

// TestSupervisorSIGTERM runs a supervisor process with two roles, sends it
// SIGTERM, and requires exit status 0 with both roles having shut down
// cleanly (their SIGTERM handlers ran) and gone.
func TestSupervisorSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "fwtest", "super", "supervisor")
	cmd.Env = append(os.Environ(), childEnv+"=1", "FIRMWARE_TEST_DIR="+dir, "FIRMWARE_TEST_ROLES=r1:ok,r2:ok")
	out := &tail{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both roles running", func() bool {
		_, e1 := os.Stat(filepath.Join(dir, "progress-r1"))
		_, e2 := os.Stat(filepath.Join(dir, "progress-r2"))
		return e1 == nil && e2 == nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("supervisor exit: %v, want 0; output:\n%s", err, out)
	}
	for _, r := range []string{"r1", "r2"} {
		if b, err := os.ReadFile(filepath.Join(dir, "clean-"+r)); err != nil || string(b) != "flushed\n" {
			t.Errorf("role %s did not shut down cleanly: %q %v", r, b, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "starts-"+r))))
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("role %s (pid %d) outlived the supervisor", r, pid)
		}
		if n := countLines(filepath.Join(dir, "starts-"+r)); n != 1 {
			t.Errorf("role %s started %d times", r, n)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
