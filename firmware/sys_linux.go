package firmware

import "syscall"

// childAttr puts a role in its own process group (so only the supervisor
// forwards signals to it) and has the kernel kill it if the supervisor dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
