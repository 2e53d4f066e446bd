package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// Backends that Options.Backend names.
const (
	BackendAuto = "auto" // the GPU runner when Detect finds one, else the CPU
	BackendCPU  = "cpu"  // never start a runner
	BackendCUDA = "cuda" // the GPU runner; an error if there is none
)

// Options configure Start. The zero value is BackendAuto with the defaults
// below.
type Options struct {
	// Backend is BackendAuto (""), BackendCPU or BackendCUDA.
	Backend string
	// Binary is the taobox-cuda to run; "" lets Detect find it (beside the
	// running executable, then on PATH).
	Binary string
	// Args are appended to `runner --socket PATH`; Env to the runner's
	// environment (os.Environ()).
	Args, Env []string
	// Logger gets the engine's few lines (and the runner's WarnPrefix
	// lines); nil discards them.
	Logger *slog.Logger
	// Workers is the CPU engine's goroutines (0: GOMAXPROCS).
	Workers int
	// StartTimeout bounds a runner's start, self-test included. Default 120 s.
	StartTimeout time.Duration
	// CallTimeout bounds one call on the runner (a Yuma batch, or each
	// chunk of a big one), counted from when it holds the connection;
	// past it the runner counts as hung. A batch that waits longer than
	// that for the connection (a model load holds it) runs on the CPU.
	// Default 30 s.
	CallTimeout time.Duration
	// ForwardTimeout bounds one token's llama.forward (Seq.Forward): a
	// hung GPU fails the answer over to the CPU within it. Default 5 s.
	ForwardTimeout time.Duration
	// LoadTimeout bounds a model's load (LoadModel, and reloads after a
	// restart). Default 10 min.
	LoadTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before restarting a failed
	// runner; it doubles after each failure and resets after a batch
	// succeeds. Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// After is the clock for the backoff; nil: time.After. Tests inject it.
	After func(time.Duration) <-chan time.Time
	// Detect finds the GPU; nil: DetectWith(DetectConfig{Binary: Binary}).
	Detect func() (GPU, error)
	// ShmSize is the shared region big payloads cross in (shm.go): 0:
	// DefaultShmSize (virtual: pages are allocated when written);
	// negative: none, everything goes over the socket.
	ShmSize int
	// EpochsOp sends Yuma batches as yuma.epochs even to a runner that
	// serves yuma.packed: the baseline of `bench gpu`'s comparison.
	EpochsOp bool
}

func (o *Options) ensureDefaults() error {
	switch o.Backend {
	case "":
		o.Backend = BackendAuto
	case BackendAuto, BackendCPU, BackendCUDA:
	default:
		return fmt.Errorf("runner: backend %q: want auto, cpu or cuda", o.Backend)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 120 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = 5 * time.Second
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 10 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.ShmSize == 0 {
		o.ShmSize = DefaultShmSize
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Detect == nil {
		bin := o.Binary
		o.Detect = func() (GPU, error) { return DetectWith(DetectConfig{Binary: bin}) }
	}
	return nil
}

// Engine is a yuma.Engine that runs batches on a GPU runner when one is up
// and on the CPU engine otherwise: its outputs are the CPU engine's, bit
// for bit, either way. It is safe for concurrent use.
type Engine struct {
	opts Options
	cpu  *yuma.CPUEngine
	gpu  GPU
	log  *slog.Logger

	mu         sync.Mutex
	proc       *process      // nil while no runner is up
	backoff    time.Duration // wait before the next restart
	restarting bool
	closed     bool
	stop       chan struct{} // closed by Close
	wg         sync.WaitGroup
	model      string        // LoadModel's path: every runner loads it
	modelSum   string        // its SHA-256 (hex), checked before each load
	seqSem     chan struct{} // one Seq at a time holds the runner's model

	stats Stats
}

// Stats count what the engine did.
type Stats struct {
	RunnerBatches  int // batches the runner answered
	PackedBatches  int // of those, the ones packed here (yuma.packed)
	CPUBatches     int // batches run on the CPU engine
	Failures       int // runner failures (start, self-test, call, death)
	Restarts       int // runners started after a failure
	RunnerForwards int // llama.forward calls the runner answered (Seq.Forward)
	ModelLoads     int // models the runners loaded (LoadModel, restarts)
}

// Start returns the engine for opts.Backend. With BackendCPU it is the CPU
// engine. With BackendAuto it logs one info line and uses the CPU when
// Detect finds no GPU; when it finds one it starts the runner and waits
// for it (its self-test included), falling back to the CPU with one warning
// and restarting in the background if the runner fails. BackendCUDA is the
// same, except that no GPU, or a first runner that fails to start, is an
// error saying what to do. Close stops the runner.
func Start(ctx context.Context, opts Options) (*Engine, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, cpu: yuma.NewCPUEngine(opts.Workers), log: opts.Logger, backoff: opts.MinBackoff,
		stop: make(chan struct{}), seqSem: make(chan struct{}, 1)}
	if opts.Backend == BackendCPU {
		return e, nil
	}
	g, err := opts.Detect()
	if err != nil {
		if opts.Backend == BackendCUDA {
			return nil, fmt.Errorf("--backend cuda: %w; use --backend cpu (or auto, which falls back to the CPU)", err)
		}
		e.log.Info("no GPU runner; Yuma epochs and inference run on the CPU", "reason", err)
		return e, nil
	}
	e.gpu = g
	p, err := startProcess(ctx, g.Binary, opts.Args, opts.Env, opts.StartTimeout, opts.ShmSize)
	if err != nil {
		if opts.Backend == BackendCUDA {
			return nil, fmt.Errorf("--backend cuda: the GPU runner failed to start: %w; run '%s selftest' to see why, or use --backend cpu", err, g.Binary)
		}
		e.mu.Lock()
		e.failLocked(nil, fmt.Errorf("start: %w", err))
		e.mu.Unlock()
		return e, nil
	}
	e.proc = p
	e.log.Info("GPU runner up; Yuma epochs run on the GPU", "runner", p.info, "binary", g.Binary)
	p.stderr.setWarn(e.runnerWarn)
	return e, nil
}

// Backend returns "cuda" while a runner is up, "cpu" otherwise.
func (e *Engine) Backend() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.upLocked() != nil {
		return BackendCUDA
	}
	return BackendCPU
}

// RunnerPID returns the runner's process id, 0 while none is up.
func (e *Engine) RunnerPID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil {
		return 0
	}
	return e.proc.cmd.Process.Pid
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Epochs implements yuma.Engine: on the runner when it is up, on the CPU
// engine when it is not or when it fails during the batch (the batch is
// then rerun on the CPU, the runner killed and restarted with backoff).
// The caller's cancellation returns at once and is no failure of the
// runner.
// Invalid inputs get the CPU engine's error without reaching the runner.
// The batch goes as yuma.packed (packed and unpacked here, the CPU-only
// inputs computed here meanwhile), or as yuma.epochs to a runner without
// that op.
func (e *Engine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	valid := gpuplan.Validate(ins) == nil
	dev, _ := gpuplan.Split(ins)
	e.mu.Lock()
	p := e.upLocked()
	packed := p != nil && !p.noPacked && !e.opts.EpochsOp
	e.mu.Unlock()
	if p != nil && valid && len(dev) > 0 { // nothing for the kernels: the CPU engine
		// The timeout starts once the call holds the connection: a batch
		// queued behind a model load is not a hung runner.
		cctx := withCallTimeout(ctx, e.opts.CallTimeout)
		var outs []yuma.Output
		var err error
		if packed {
			outs, err = p.client.epochsPacked(cctx, ctx, ins, e.cpu)
			if re := (*RemoteError)(nil); errors.As(err, &re) && re.NotServed() {
				e.mu.Lock()
				p.noPacked = true
				e.mu.Unlock()
				e.log.Info("the GPU runner does not serve yuma.packed (an older taobox-cuda); Yuma batches go as yuma.epochs")
				packed = false
			}
		}
		if !packed {
			outs, err = p.client.Epochs(cctx, ins)
		}
		if errors.Is(err, errCPUShare) {
			return nil, err // the caller's cancellation, in this process: the runner answered
		}
		if err == nil {
			e.mu.Lock()
			e.stats.RunnerBatches++
			if packed {
				e.stats.PackedBatches++
			}
			e.backoff = e.opts.MinBackoff
			e.mu.Unlock()
			return outs, nil
		}
		if errors.Is(err, ErrRequestTooLarge) {
			// Not the runner's fault: this batch runs on the CPU.
			e.log.Debug("Yuma batch too large for the GPU runner; it runs on the CPU", "err", err)
			return e.cpuEpochs(ctx, ins)
		}
		if errors.Is(err, ErrNotSent) && ctx.Err() == nil {
			// The runner was busy (a model load) past the call timeout;
			// nothing was sent and the connection is good.
			e.log.Debug("GPU runner busy; this Yuma batch runs on the CPU", "err", err)
			return e.cpuEpochs(ctx, ins)
		}
		if ctx.Err() != nil {
			// The caller gave up: not the runner's failure. The connection
			// is still good (a call under way finishes in the background
			// within CallTimeout; if that fails, the next call finds the
			// connection broken and retires the runner).
			e.log.Debug("Yuma batch cancelled by the caller", "err", err)
			return nil, ctx.Err()
		}
		e.callFailed(p, err)
	}
	return e.cpuEpochs(ctx, ins)
}

// callFailed retires p after a call on it failed with err (not a
// cancellation by the caller), with the runner's exit status and last
// words in the log line when it died.
func (e *Engine) callFailed(p *process, err error) {
	var re *RemoteError
	if !errors.As(err, &re) {
		// A transport error: give a dying runner a moment to be
		// reaped, so that the log line has its status and last words.
		select {
		case <-p.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if dead, why := p.exited(); dead {
		err = fmt.Errorf("%w (%v): %s", err, why, p.stderr)
	}
	e.mu.Lock()
	e.failLocked(p, err)
	e.mu.Unlock()
}

func (e *Engine) cpuEpochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	outs, err := e.cpu.Epochs(ctx, ins)
	if err == nil {
		e.mu.Lock()
		e.stats.CPUBatches++
		e.mu.Unlock()
	}
	return outs, err
}

// upLocked returns the runner that is up, or nil; a runner that has
// exited since the last call is retired here (failLocked) rather than by
// a call that would fail on it. e.mu must be held.
func (e *Engine) upLocked() *process {
	p := e.proc
	if p == nil {
		return nil
	}
	if dead, why := p.exited(); dead {
		e.failLocked(p, fmt.Errorf("the runner exited (%v): %s", why, p.stderr))
		return nil
	}
	return p
}

// failLocked retires p (nil: a start that failed) after err: it logs the
// one warning, kills the runner and schedules its restart. e.mu must be held.
func (e *Engine) failLocked(p *process, err error) {
	if p != nil && e.proc != p {
		return // someone else retired it already
	}
	e.stats.Failures++
	if p != nil {
		e.proc = nil
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			p.kill()
		}()
	}
	if e.closed {
		return
	}
	e.log.Warn("GPU runner failed; Yuma epochs (bit-identical) and inference fall back to the CPU until it restarts",
		"err", err, "restart_in", e.backoff)
	if !e.restarting {
		e.restarting = true
		e.wg.Add(1)
		go e.restartLoop()
	}
}

// restartLoop waits the backoff and starts a runner until one is up or
// the engine is closed; the backoff doubles after each failed start.
func (e *Engine) restartLoop() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		wait := e.backoff
		e.backoff = min(2*e.backoff, e.opts.MaxBackoff)
		e.mu.Unlock()
		select {
		case <-e.stop:
			e.finishRestart()
			return
		case <-e.opts.After(wait):
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		p, err := startProcess(ctx, e.gpu.Binary, e.opts.Args, e.opts.Env, e.opts.StartTimeout, e.opts.ShmSize)
		if err == nil {
			// A model load that broke the connection (a timeout, a crash)
			// is a failed start: the runner is not put into service.
			if err = e.reloadModel(ctx, p); err != nil {
				p.kill()
				p = nil
			}
		}
		cancel()
		e.mu.Lock()
		if err == nil && !e.closed {
			what := "Yuma epochs and inference run"
			if p.model == "" {
				what = "Yuma epochs run"
			}
			// Logged before the runner is in service: whoever sees
			// it serve has the line.
			e.log.Info("GPU runner restarted; "+what+" on the GPU again", "runner", p.info, "model", p.model)
			p.stderr.setWarn(e.runnerWarn)
			e.proc = p
			e.restarting = false
			e.stats.Restarts++
			e.mu.Unlock()
			return
		}
		closed := e.closed
		if err != nil {
			e.stats.Failures++
		}
		next := e.backoff
		e.mu.Unlock()
		if closed {
			if p != nil {
				p.kill()
			}
			e.finishRestart()
			return
		}
		e.log.Debug("GPU runner restart failed", "err", err, "next_try_in", next)
	}
}

func (e *Engine) finishRestart() {
	e.mu.Lock()
	e.restarting = false
	e.mu.Unlock()
}

// Close stops the runner and the restarts. The engine keeps working on the
// CPU afterwards.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop)
	p := e.proc
	e.proc = nil
	st := e.stats
	e.mu.Unlock()
	if p != nil {
		p.kill()
	}
	e.wg.Wait()
	if e.gpu.Binary != "" {
		e.log.Info("GPU runner stopped", "gpu_batches", st.RunnerBatches, "packed_batches", st.PackedBatches, "cpu_batches", st.CPUBatches,
			"gpu_forwards", st.RunnerForwards, "model_loads", st.ModelLoads, "failures", st.Failures, "restarts", st.Restarts)
	}
	return nil
}

var _ yuma.Engine = (*Engine)(nil)

// runnerWarn logs a WarnPrefix line of the runner's stderr.
func (e *Engine) runnerWarn(line string) {
	e.log.Warn("GPU runner: " + line)
}
