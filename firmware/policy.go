package firmware

import "time"

// Policy is the supervisor's pure decision logic: when to restart a role
// and when the watchdog calls it stuck. It holds no clock: every method
// takes the current time, so the schedule is table-tested without waiting.
type Policy struct {
	MinBackoff  time.Duration // wait before the first restart (> 0)
	MaxBackoff  time.Duration // cap of the doubling wait (>= MinBackoff)
	StableAfter time.Duration // a run this long resets the failure count
	StallAfter  time.Duration // no progress this long: stuck; 0 disables the watchdog
}

// RoleState is what the policy remembers about one role between events.
// The zero value is a role that never ran.
type RoleState struct {
	Failures       int       // consecutive failures since the last stable run
	StartedAt      time.Time // when the current run started
	Progress       uint64    // last progress value the probe read
	ProgressSeen   bool      // whether Progress holds a reading of this run
	LastProgressAt time.Time // when Progress last changed (or the run started)
}

// Started records a new run at now.
func (p Policy) Started(s *RoleState, now time.Time) {
	s.StartedAt, s.LastProgressAt, s.ProgressSeen, s.Progress = now, now, false, 0
}

// Backoff is the wait before restart number `failures` (1 for the first
// failure): MinBackoff·2^(failures-1), capped at MaxBackoff.
func (p Policy) Backoff(failures int) time.Duration {
	d := p.MinBackoff
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// Exited records that the run ended at now (a crash, an exit of any status,
// or a watchdog kill) and returns when to start the next run. A run that
// lasted StableAfter or longer counts as the first failure of a new series.
func (p Policy) Exited(s *RoleState, now time.Time) (restartAt time.Time) {
	if !s.StartedAt.IsZero() && now.Sub(s.StartedAt) >= p.StableAfter {
		s.Failures = 0
	}
	s.Failures++
	return now.Add(p.Backoff(s.Failures))
}

// Verdict is the watchdog's answer for one probe reading.
type Verdict int

const (
	Healthy Verdict = iota // progress, or not yet StallAfter without it
	Stalled                // no progress for StallAfter: kill and restart
)

func (v Verdict) String() string {
	if v == Stalled {
		return "stalled"
	}
	return "healthy"
}

// Observe records a probe reading at now (ok false: the probe failed, which
// counts as no progress) and returns the verdict. Progress is any change of
// the value; the first reading of a run sets the baseline. With StallAfter
// zero the verdict is always Healthy.
func (p Policy) Observe(s *RoleState, now time.Time, value uint64, ok bool) Verdict {
	if ok && (!s.ProgressSeen || value != s.Progress) {
		if s.ProgressSeen {
			s.LastProgressAt = now
		}
		s.Progress, s.ProgressSeen = value, true
	}
	if p.StallAfter > 0 && now.Sub(s.LastProgressAt) >= p.StallAfter {
		return Stalled
	}
	return Healthy
}
