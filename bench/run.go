package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"taobox/chain/yuma"
	"taobox/internal/fsutil"
)

// GPUEngine is the GPU side of the Yuma rows: the runner's engine
// (runner.Engine), which reports "cuda" from Backend while its runner
// serves and falls back to the CPU otherwise. A row measured while it
// was not on the GPU is an error, never a GPU figure.
type GPUEngine interface {
	yuma.Engine
	Backend() string
}

// Config is one run. The zero value measures every section with the
// full workloads, seed 1, on the CPU only, without models, with the disk
// section skipped for want of Dir.
type Config struct {
	// Sections to run (Section* names); nil or empty: all of Sections.
	Sections []string
	// Seed drives every generated workload (Yuma subnets, QUIC payloads,
	// leveldb keys). 0 means 1. The same seed gives the same work on
	// every machine.
	Seed uint64
	// Quick uses small workloads and one short repetition of each: for
	// tests and CI, not for comparing machines.
	Quick bool
	// Dir is the data folder: the disk section works in a temporary
	// folder under it (removed afterwards). Required for SectionDisk.
	Dir string

	// CPU is the Yuma CPU engine; nil: yuma.NewCPUEngine(CPUWorkers).
	CPU yuma.Engine
	// CPUWorkers is reported with the CPU rows (0: GOMAXPROCS).
	CPUWorkers int
	// GPU is the GPU engine; nil: no GPU rows are measured, and each
	// workload gets an unavailable GPU row saying NoGPU.
	GPU GPUEngine
	// GPUName describes the GPU (Machine.GPU); NoGPU says why there is
	// none when GPU is nil ("" : "no GPU").
	GPUName, NoGPU string

	// Models to measure; the caller loads them (the embedded tiny model
	// first, by convention).
	Models []Model
	// Threads are the thread counts for each model; nil: 1 only.
	Threads []int

	// MinTime is how long each Yuma, QUIC and disk measurement runs at
	// least (it stops earlier at its iteration cap). 0: 2 s, or 0 with
	// Quick (the minimum iteration count alone).
	MinTime time.Duration
	// Now is the clock every figure is timed with; nil: time.Now.
	Now func() time.Time
	// Progress gets each step as it runs; nil: nothing.
	Progress Progress
	// Version is written into the report.
	Version string
}

// Progress receives the steps of a run, in order: Begin, any number of
// Update, then End, for each step. Calls come from Run's goroutine.
type Progress interface {
	// Begin starts step i (1-based) of n.
	Begin(i, n int, name string)
	// Update reports the fraction of the step done, in [0, 1].
	Update(frac float64)
	// End finishes the step with a one-line summary, or the error.
	End(summary string, err error)
}

type nopProgress struct{}

func (nopProgress) Begin(int, int, string) {}
func (nopProgress) Update(float64)         {}
func (nopProgress) End(string, error)      {}

// Validate reports every problem with c.
func (c *Config) Validate() error {
	var errs []error
	for _, s := range c.Sections {
		if !slices.Contains(Sections, s) {
			errs = append(errs, fmt.Errorf("unknown section %q (want %s)", s, strings.Join(Sections, ", ")))
		}
	}
	if c.wants(SectionDisk) && c.Dir == "" {
		errs = append(errs, errors.New("the disk section needs Dir, the data folder"))
	}
	for _, t := range c.Threads {
		if t < 1 {
			errs = append(errs, fmt.Errorf("thread count %d must be ≥ 1", t))
		}
	}
	if c.MinTime < 0 {
		errs = append(errs, fmt.Errorf("MinTime %v must not be negative", c.MinTime))
	}
	for i, m := range c.Models {
		if m.Runner == nil || m.Name == "" {
			errs = append(errs, fmt.Errorf("model %d: Name and Runner are required", i))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) wants(s string) bool {
	return len(c.Sections) == 0 || slices.Contains(c.Sections, s)
}

func (c *Config) withDefaults() Config {
	o := *c
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.CPU == nil {
		o.CPU = yuma.NewCPUEngine(o.CPUWorkers)
	}
	if o.CPUWorkers <= 0 {
		if ce, ok := o.CPU.(*yuma.CPUEngine); ok {
			o.CPUWorkers = ce.Workers()
		} else {
			o.CPUWorkers = runtime.GOMAXPROCS(0)
		}
	}
	if len(o.Threads) == 0 {
		o.Threads = []int{1}
	}
	if o.MinTime == 0 && !o.Quick {
		o.MinTime = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.NoGPU == "" {
		o.NoGPU = "no GPU"
	}
	return o
}

// step is one line of progress: a name and the work.
type step struct {
	name string
	run  func(ctx context.Context) (summary string, err error)
}

// Run measures the sections of c and returns the report. A step that
// fails is recorded in Report.Errors and the run goes on; Run returns an
// error only for an invalid c or a cancelled ctx (with the report so far).
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	c = c.withDefaults()
	start := c.Now()
	r := &Report{
		Schema: Schema, Version: c.Version, Time: start.UTC(), Seed: c.Seed, Quick: c.Quick,
		Machine: machine(c),
	}
	for _, s := range Sections {
		if c.wants(s) {
			r.Sections = append(r.Sections, s)
		}
	}
	var steps []step
	for _, s := range r.Sections {
		switch s {
		case SectionYuma:
			steps = append(steps, yumaSteps(&c, r)...)
		case SectionModel:
			steps = append(steps, modelSteps(&c, r)...)
		case SectionQUIC:
			steps = append(steps, quicSteps(&c, r)...)
		case SectionDisk:
			steps = append(steps, diskSteps(&c, r)...)
		}
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			r.Seconds = c.Now().Sub(start).Seconds()
			return r, err
		}
		c.Progress.Begin(i+1, len(steps), s.name)
		sum, err := s.run(ctx)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", s.name, err))
		}
		c.Progress.End(sum, err)
	}
	r.Seconds = c.Now().Sub(start).Seconds()
	return r, ctx.Err()
}

func machine(c Config) Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(), GPU: c.GPUName}
	m.Hostname, _ = os.Hostname()
	if b, err := fsutil.ReadCapped("/proc/cpuinfo", 1<<20); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if c.GPU == nil {
		m.GPU = c.NoGPU
	}
	return m
}

// loop times f: one untimed warm-up call, then calls until at least
// minIters calls and c.MinTime have passed, or maxIters calls. It
// reports progress and returns each timed call's duration.
func loop(ctx context.Context, c *Config, minIters, maxIters int, f func() error) ([]time.Duration, error) {
	return loopPrep(ctx, c, minIters, maxIters, f, nil)
}

// loopPrep is loop with prep (if not nil) called after each call of f,
// outside the timing: it readies the next call's work.
func loopPrep(ctx context.Context, c *Config, minIters, maxIters int, f func() error, prep func()) ([]time.Duration, error) {
	if err := f(); err != nil {
		return nil, err
	}
	if prep != nil {
		prep()
	}
	var ds []time.Duration
	var timed time.Duration // the sum of ds: MinTime counts the work, not prep
	for len(ds) < maxIters {
		if err := ctx.Err(); err != nil {
			return ds, err
		}
		t0 := c.Now()
		if err := f(); err != nil {
			return ds, err
		}
		d := c.Now().Sub(t0)
		ds = append(ds, d)
		timed += d
		if prep != nil {
			prep()
		}
		if len(ds) >= minIters && timed >= c.MinTime {
			break
		}
		frac := float64(len(ds)) / float64(minIters)
		if c.MinTime > 0 {
			frac = min(frac, float64(timed)/float64(c.MinTime))
		}
		c.Progress.Update(min(frac, 1))
	}
	return ds, nil
}

// percentile returns the p-th percentile (0..100) of ds by the
// nearest-rank method; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.9999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

func total(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
