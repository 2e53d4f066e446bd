//go:build !linux

package runner

import (
	"os/exec"
	"time"
)

// setParentDeath: only Linux has PR_SET_PDEATHSIG; elsewhere the runner
// stops when its stdin closes.
func setParentDeath(*exec.Cmd) {}

// killGroup: the runner has no process group of its own here.
func killGroup(*exec.Cmd) {}

// cpuTime is unknown here.
func cpuTime() time.Duration { return 0 }
