package firmware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Role is one supervised child process: Binary Args[0] Args[1:]...
type Role struct {
	Name       string        // label in logs and events
	Args       []string      // argv after the binary: ["node", "--data", "/var/lib/taobox/chain", ...]
	Probe      ProgressProbe // nil: no watchdog
	StallAfter time.Duration // no progress this long: restart (0 disables the watchdog)
}

// EventKind says what happened to a role.
type EventKind int

const (
	EventStart  EventKind = iota // a run started (PID set)
	EventExit                    // a run ended by itself (Err: its status), restart after Backoff
	EventStall                   // the watchdog found no progress and stopped the run
	EventStop                    // the role was stopped at shutdown (Err: nil when it exited by itself after SIGTERM)
	EventFailed                  // the binary could not be started (Err), restart after Backoff
)

func (k EventKind) String() string {
	return [...]string{"start", "exit", "stall", "stop", "failed"}[k]
}

// Event is one supervisor event, for logs and tests.
type Event struct {
	Role    string
	Kind    EventKind
	PID     int
	Err     error
	Backoff time.Duration // EventExit, EventStall, EventFailed: wait before the restart
}

// Supervisor runs roles as child processes of Binary and keeps them up.
// A role that exits (with any status) or fails to start is started again
// after Policy.Backoff; a role whose Probe shows no progress for its
// StallAfter is stopped (SIGTERM, then SIGKILL after StopTimeout) and
// started again. Run returns when its context is cancelled and every role
// has stopped.
type Supervisor struct {
	Binary string   // the taobox to run (required)
	Env    []string // added to os.Environ() for the children
	Roles  []Role

	MinBackoff, MaxBackoff time.Duration // restart waits (defaults 1s, 5m)
	StableAfter            time.Duration // a run this long resets the backoff (default 10m)
	ProbeInterval          time.Duration // how often probes are read (default 15s)
	StopTimeout            time.Duration // SIGTERM to SIGKILL (default 30s)

	Logger *slog.Logger // nil: discard
	Events func(Event)  // optional; called from the roles' goroutines
	Output io.Writer    // the children's stdout and stderr; nil: os.Stderr
}

func (s *Supervisor) ensureDefaults() error {
	if s.Binary == "" {
		return errors.New("supervisor: no binary to run")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.MinBackoff, time.Second)
	def(&s.MaxBackoff, 5*time.Minute)
	s.MaxBackoff = max(s.MaxBackoff, s.MinBackoff)
	def(&s.StableAfter, 10*time.Minute)
	def(&s.ProbeInterval, 15*time.Second)
	def(&s.StopTimeout, 30*time.Second)
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.Output == nil {
		s.Output = os.Stderr
	}
	for i, r := range s.Roles {
		if r.Name == "" || len(r.Args) == 0 {
			return fmt.Errorf("supervisor: role %d: needs a name and args", i)
		}
	}
	return nil
}

// Run supervises until ctx is cancelled, then stops every role (SIGTERM,
// waiting up to StopTimeout each, in parallel; SIGKILL after that) and
// returns nil. It returns an error only for a bad Supervisor.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := s.ensureDefaults(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, r := range s.Roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runRole(ctx, r)
		}()
	}
	wg.Wait()
	s.Logger.Info("all roles stopped")
	return nil
}

func (s *Supervisor) emit(e Event) {
	if s.Events != nil {
		s.Events(e)
	}
}

func (s *Supervisor) policy(r Role) Policy {
	return Policy{MinBackoff: s.MinBackoff, MaxBackoff: s.MaxBackoff, StableAfter: s.StableAfter, StallAfter: r.StallAfter}
}

// runRole is one role's loop: start, watch, restart after the backoff.
func (s *Supervisor) runRole(ctx context.Context, r Role) {
	pol := s.policy(r)
	log := s.Logger.With("role", r.Name)
	var st RoleState
	for ctx.Err() == nil {
		cmd := exec.Command(s.Binary, r.Args...)
		cmd.Env = append(os.Environ(), s.Env...)
		cmd.Stdout, cmd.Stderr = s.Output, s.Output
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			now := time.Now()
			pol.Started(&st, now)
			wait := pol.Exited(&st, now).Sub(now)
			log.Error("role failed to start", "binary", s.Binary, "err", err, "retry_in", wait)
			s.emit(Event{Role: r.Name, Kind: EventFailed, Err: err, Backoff: wait})
			if !sleepCtx(ctx, wait) {
				return
			}
			continue
		}
		pid := cmd.Process.Pid
		pol.Started(&st, time.Now())
		log.Info("role started", "pid", pid, "args", r.Args)
		s.emit(Event{Role: r.Name, Kind: EventStart, PID: pid})
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		var tick <-chan time.Time
		var ticker *time.Ticker
		if r.Probe != nil && r.StallAfter > 0 {
			ticker = time.NewTicker(s.ProbeInterval)
			tick = ticker.C
		}
		var kind EventKind
		var exitErr error
	watch:
		for {
			select {
			case exitErr = <-done:
				kind = EventExit
				break watch
			case <-tick:
				pctx, cancel := context.WithTimeout(ctx, s.ProbeInterval)
				v, perr := r.Probe.Progress(pctx)
				cancel()
				if ctx.Err() != nil {
					continue // shutting down: the Done case stops the role
				}
				if pol.Observe(&st, time.Now(), v, perr == nil) == Stalled {
					log.Warn("watchdog: no progress, restarting the role", "pid", pid,
						"stalled_for", time.Since(st.LastProgressAt).Round(time.Millisecond), "last_progress", st.Progress, "probe_err", perr)
					exitErr = s.stop(cmd, done)
					kind = EventStall
					break watch
				}
			case <-ctx.Done():
				log.Info("stopping role", "pid", pid)
				err := s.stop(cmd, done)
				if err != nil {
					log.Warn("role stopped with an error", "pid", pid, "err", err)
				} else {
					log.Info("role stopped cleanly", "pid", pid)
				}
				s.emit(Event{Role: r.Name, Kind: EventStop, PID: pid, Err: err})
				if ticker != nil {
					ticker.Stop()
				}
				return
			}
		}
		if ticker != nil {
			ticker.Stop()
		}
		now := time.Now()
		wait := pol.Exited(&st, now).Sub(now)
		if kind == EventExit {
			log.Warn("role exited; restarting after the backoff", "pid", pid, "status", exitStatus(exitErr), "failures", st.Failures, "retry_in", wait)
		}
		s.emit(Event{Role: r.Name, Kind: kind, PID: pid, Err: exitErr, Backoff: wait})
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// stop sends SIGTERM (and SIGCONT), waits up to StopTimeout for the exit,
// then SIGKILLs.
// It returns the run's exit error (nil for a clean exit after SIGTERM).
func (s *Supervisor) stop(cmd *exec.Cmd, done <-chan error) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped (SIGSTOP, ^Z) process must run to handle it
	t := time.NewTimer(s.StopTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = cmd.Process.Kill()
		err := <-done
		return fmt.Errorf("did not exit within %v of SIGTERM, killed: %w", s.StopTimeout, err)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RolesFromConfig turns config roles into supervisor roles.
func RolesFromConfig(c *Config) []Role {
	out := make([]Role, 0, len(c.Roles))
	for _, rc := range c.Roles {
		r := Role{Name: rc.Name, Args: append([]string{rc.Kind}, rc.Args...), Probe: probeFor(rc)}
		if r.Probe != nil {
			r.StallAfter = rc.StallAfter.D()
		}
		out = append(out, r)
	}
	return out
}
