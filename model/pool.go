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
// ../shared/specs/inference.md).
//
// A job splits [0, n) into a fixed set of contiguous chunks (about four per
// thread) that the caller and the woken helpers claim one at a time with a
// compare-and-swap. A helper the OS has not scheduled yet therefore delays
// nothing: the caller (and the other helpers) take its chunks, and the job
// ends when every chunk is done, not when every helper has run. A helper
// that wakes after its job ended finds no chunk of it to claim (the claim
// word names the job) and parks again. Which thread computes a chunk never
// changes what it computes, so results are bit-identical for every thread
// count and schedule.
//
// Waking a parked helper costs ~20 µs on these VMs, so callers split only
// jobs well above that (see parallelMinWork).
//
// run does not allocate: the job function is passed in by the caller (build
// it once, e.g. as a method value stored in a struct) and wake-ups carry no
// data. A pool is used by one caller at a time (run is not safe for
// concurrent use); close may be called once the last run has returned.
type pool struct {
	threads int             // participants, the caller included
	start   []chan struct{} // one per helper goroutine, buffered 1
	done    chan struct{}   // the job's last chunk finished; buffered 1
	live    atomic.Int32    // helper goroutines running (for tests)

	// The job. claim packs job<<40 | chunks<<20 | next chunk; n and fn are
	// written before claim publishes a job and read only after a chunk of
	// it has been claimed, so they are never seen half-updated.
	claim    atomic.Uint64
	finished atomic.Int64
	n        int
	fn       func(lo, hi int)

	closeOnce sync.Once
}

const (
	claimBits  = 20
	claimMask  = 1<<claimBits - 1
	chunksPerT = 4 // chunks per thread: small enough to rebalance, large enough to stay cheap
)

// newPool starts threads-1 helper goroutines (threads < 1 counts as 1).
func newPool(threads int) *pool {
	threads = max(threads, 1)
	p := &pool{
		threads: threads,
		start:   make([]chan struct{}, threads-1),
		done:    make(chan struct{}, 1),
	}
	for i := range p.start {
		ch := make(chan struct{}, 1)
		p.start[i] = ch
		p.live.Add(1)
		go p.worker(ch)
	}
	return p
}

// worker parks on its start channel; it exits when close closes it.
func (p *pool) worker(ch <-chan struct{}) {
	defer p.live.Add(-1)
	for range ch {
		p.help()
	}
}

// help claims and runs chunks of the current job until none is left.
func (p *pool) help() {
	for {
		w := p.claim.Load()
		next, chunks := int(w&claimMask), int(w>>claimBits&claimMask)
		if next >= chunks {
			return
		}
		if !p.claim.CompareAndSwap(w, w+1) {
			continue
		}
		n := p.n
		p.fn(next*n/chunks, (next+1)*n/chunks)
		if p.finished.Add(1) == int64(chunks) {
			p.done <- struct{}{}
		}
	}
}

// run calls fn on contiguous chunks that cover [0, n) exactly once,
// concurrently, and returns when all have returned. The chunk bounds
// depend only on n and the thread count; which goroutine runs a chunk
// depends on scheduling.
func (p *pool) run(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := min(n, chunksPerT*p.threads, claimMask)
	if p.threads == 1 || chunks == 1 {
		fn(0, n)
		return
	}
	p.fn, p.n = fn, n
	p.finished.Store(0)
	job := p.claim.Load()>>(2*claimBits) + 1
	p.claim.Store(job<<(2*claimBits) | uint64(chunks)<<claimBits)
	for _, ch := range p.start[:min(len(p.start), chunks-1)] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending; it will see this job
		}
	}
	// The last helper woken sits in this P's runnext slot, where an idle P
	// steals it only after a timer sleep (~50 µs here): yield once so this
	// P runs it now and an idle P picks the caller up from the global queue.
	runtime.Gosched()
	p.help()
	<-p.done
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
