//go:build cuda

package gpu

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// A Selftest is a known-answer test of one kernel (or a group): it runs the
// kernel on d and compares the result with the CPU code, returning an error
// that names the first mismatch.
type Selftest struct {
	Name string
	Run  func(d *Device) error
}

var (
	selftestMu sync.Mutex
	selftests  = map[string]Selftest{}
)

// RegisterSelftest adds a test for `taobox-cuda selftest`; call it from an
// init function of a cuda-tagged file. Names look like "smoke/i32f32_satmul"
// (the PTX module, then the kernel or feature). It panics on an empty or
// duplicate name or a nil fn.
func RegisterSelftest(name string, fn func(d *Device) error) {
	selftestMu.Lock()
	defer selftestMu.Unlock()
	if name == "" || fn == nil {
		panic("gpu: RegisterSelftest: empty name or nil fn")
	}
	if _, dup := selftests[name]; dup {
		panic("gpu: RegisterSelftest: duplicate name " + name)
	}
	selftests[name] = Selftest{name, fn}
}

// Selftests returns the registered tests sorted by name.
func Selftests() []Selftest {
	selftestMu.Lock()
	defer selftestMu.Unlock()
	out := make([]Selftest, 0, len(selftests))
	for _, t := range selftests {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SelftestResult is the outcome of one Selftest.
type SelftestResult struct {
	Name     string
	Duration time.Duration
	Err      error // nil: passed
}

// RunSelftests runs the registered tests whose name match accepts (all of
// them if match is nil) on d in name order, a panic in a test being its
// failure, and calls report after each if report is not nil. It returns how
// many ran and how many failed.
func RunSelftests(d *Device, match func(name string) bool, report func(SelftestResult)) (ran, failed int) {
	for _, t := range Selftests() {
		if match != nil && !match(t.Name) {
			continue
		}
		ran++
		start := time.Now()
		err := runOne(t, d)
		if err != nil {
			failed++
		}
		if report != nil {
			report(SelftestResult{t.Name, time.Since(start), err})
		}
	}
	return ran, failed
}

func runOne(t Selftest, d *Device) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return t.Run(d)
}
