package model

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// pool is a persistent worker pool for the forward pass. Its helper
// goroutines are started once and park on a channel receive between jobs:
// nothing ever spins, so an idle pool costs no CPU and a pool sharing a
// loaded 2-vCPU VM cannot collapse the way spin barriers do (see
// ../shared/specs/inference.md). A job splits [0, n) into contiguous
// chunks, one per participant; the caller runs the first chunk itself.
//
// Waking a parked helper costs ~20 µs on these VMs, so callers split only
// jobs well above that (see parallelMinWork).
//
// run does not allocate: the job function is passed in by the caller (build
// it once, e.g. as a method value stored in a struct) and the chunk bounds
// travel by value through buffered channels. A pool is used by one caller at
// a time (run is not safe for concurrent use); close may be called once the
// last run has returned.
type pool struct {
	threads int           // participants, the caller included
	start   []chan span   // one per helper goroutine, buffered 1
	done    chan struct{} // one token per finished helper chunk
	fn      func(lo, hi int)
	live    atomic.Int32 // helper goroutines running (for tests)

	closeOnce sync.Once
}

type span struct{ lo, hi int }

// newPool starts threads-1 helper goroutines (threads < 1 counts as 1).
func newPool(threads int) *pool {
	threads = max(threads, 1)
	p := &pool{
		threads: threads,
		start:   make([]chan span, threads-1),
		done:    make(chan struct{}, threads),
	}
	for i := range p.start {
		ch := make(chan span, 1)
		p.start[i] = ch
		p.live.Add(1)
		go p.worker(ch)
	}
	return p
}

// worker parks on its start channel; it exits when close closes it.
func (p *pool) worker(ch <-chan span) {
	defer p.live.Add(-1)
	for s := range ch {
		p.fn(s.lo, s.hi)
		p.done <- struct{}{}
	}
}

// run calls fn on min(threads, n) contiguous chunks that cover [0, n)
// exactly once, concurrently, and returns when all have returned. The chunk
// bounds depend only on n and the thread count.
func (p *pool) run(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	k := min(p.threads, n)
	if k == 1 {
		fn(0, n)
		return
	}
	p.fn = fn // published to the helpers by the channel sends below
	for i := 1; i < k; i++ {
		p.start[i-1] <- span{i * n / k, (i + 1) * n / k}
	}
	// The last helper woken sits in this P's runnext slot, where an idle P
	// steals it only after a timer sleep (~50 µs here): yield once so this
	// P runs it now and an idle P picks the caller up from the global queue.
	runtime.Gosched()
	fn(0, n/k)
	for i := 1; i < k; i++ {
		<-p.done
	}
	p.fn = nil // keep nothing the job refers to alive between jobs
}

// close stops the helper goroutines. It is idempotent.
func (p *pool) close() {
	p.closeOnce.Do(func() {
		for _, ch := range p.start {
			close(ch)
		}
	})
}
