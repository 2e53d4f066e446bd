package firmware

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestBackoffSchedule(t *testing.T) {
	p := Policy{MinBackoff: time.Second, MaxBackoff: 20 * time.Second}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second},
		{5, 16 * time.Second}, {6, 20 * time.Second}, {7, 20 * time.Second}, {1000, 20 * time.Second},
	} {
		if got := p.Backoff(tc.failures); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestExitedSchedule(t *testing.T) {
	p := Policy{MinBackoff: time.Second, MaxBackoff: time.Minute, StableAfter: 10 * time.Minute}
	var s RoleState
	// Crash loop: each run lasts 1 s; restarts wait 1, 2, 4, 8 s.
	now := t0
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		p.Started(&s, now)
		now = now.Add(time.Second)
		at := p.Exited(&s, now)
		if at.Sub(now) != want || s.Failures != i+1 {
			t.Fatalf("crash %d: restart after %v (failures %d), want %v", i+1, at.Sub(now), s.Failures, want)
		}
		now = at
	}
	// A run of StableAfter resets the series: the next wait is MinBackoff.
	p.Started(&s, now)
	now = now.Add(10 * time.Minute)
	if at := p.Exited(&s, now); at.Sub(now) != time.Second || s.Failures != 1 {
		t.Fatalf("after a stable run: wait %v failures %d, want 1s and 1", at.Sub(now), s.Failures)
	}
	// Just short of stable keeps doubling.
	p.Started(&s, now)
	now = now.Add(10*time.Minute - time.Nanosecond)
	if at := p.Exited(&s, now); at.Sub(now) != 2*time.Second || s.Failures != 2 {
		t.Fatalf("short run: wait %v failures %d, want 2s and 2", at.Sub(now), s.Failures)
	}
}

func TestWatchdogVerdicts(t *testing.T) {
	p := Policy{MinBackoff: time.Second, MaxBackoff: time.Minute, StableAfter: time.Hour, StallAfter: 2 * time.Minute}
	type obs struct {
		at    time.Duration // since the start
		value uint64
		ok    bool
		want  Verdict
	}
	for _, tc := range []struct {
		name string
		p    Policy
		seq  []obs
	}{
		{"advancing", p, []obs{{30 * time.Second, 1, true, Healthy}, {90 * time.Second, 2, true, Healthy}, {200 * time.Second, 3, true, Healthy}, {300 * time.Second, 4, true, Healthy}}},
		{"stuck after one block", p, []obs{{30 * time.Second, 5, true, Healthy}, {60 * time.Second, 6, true, Healthy}, {179 * time.Second, 6, true, Healthy}, {180 * time.Second, 6, true, Stalled}}},
		{"never a reading", p, []obs{{60 * time.Second, 0, false, Healthy}, {119 * time.Second, 0, false, Healthy}, {120 * time.Second, 0, false, Stalled}}},
		{"first reading is only a baseline", p, []obs{{100 * time.Second, 9, true, Healthy}, {120 * time.Second, 9, true, Stalled}}},
		{"probe errors do not reset the clock", p, []obs{{10 * time.Second, 1, true, Healthy}, {20 * time.Second, 2, true, Healthy}, {100 * time.Second, 0, false, Healthy}, {140 * time.Second, 0, false, Stalled}}},
		{"going backwards is a change", p, []obs{{10 * time.Second, 1, true, Healthy}, {20 * time.Second, 7, true, Healthy}, {130 * time.Second, 3, true, Healthy}, {249 * time.Second, 3, true, Healthy}, {250 * time.Second, 3, true, Stalled}}},
		{"watchdog off", Policy{MinBackoff: time.Second, MaxBackoff: time.Second}, []obs{{time.Hour, 1, true, Healthy}, {48 * time.Hour, 1, false, Healthy}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s RoleState
			tc.p.Started(&s, t0)
			for i, o := range tc.seq {
				if got := tc.p.Observe(&s, t0.Add(o.at), o.value, o.ok); got != o.want {
					t.Fatalf("observation %d (%v, %d, ok %v): %v, want %v", i, o.at, o.value, o.ok, got, o.want)
				}
			}
		})
	}
}

func TestStartedResetsWatch(t *testing.T) {
	p := Policy{MinBackoff: time.Second, MaxBackoff: time.Second, StableAfter: time.Hour, StallAfter: time.Minute}
	var s RoleState
	p.Started(&s, t0)
	p.Observe(&s, t0.Add(time.Second), 10, true)
	if p.Observe(&s, t0.Add(time.Minute), 10, true) != Stalled {
		t.Fatal("want stalled")
	}
	p.Exited(&s, t0.Add(time.Minute))
	p.Started(&s, t0.Add(2*time.Minute))
	if v := p.Observe(&s, t0.Add(2*time.Minute+59*time.Second), 10, true); v != Healthy {
		t.Fatalf("a new run gets a fresh StallAfter: %v", v)
	}
}
