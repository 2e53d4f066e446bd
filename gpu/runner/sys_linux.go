package runner

import (
	"os/exec"
	"syscall"
	"time"
)

// setParentDeath makes the kernel kill the runner when the thread that
// started it exits (PR_SET_PDEATHSIG; Go never retires an unlocked thread,
// so in practice when the parent process dies), and puts it in its own
// process group so that a terminal's Ctrl-C reaches only the parent, which
// then closes the runner after its last batch. Stdin's EOF is the second signal:
// the runner also stops when its stdin pipe closes, which covers the case
// where the starting OS thread ends before the process does.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killGroup kills the runner's process group (setParentDeath made it its
// own), so that a child of the runner still holding its stderr pipe goes
// with it.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// cpuTime returns the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
