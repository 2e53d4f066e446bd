package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// TextProgress prints a run's steps to w. On a terminal (tty) the current
// step is one line redrawn with a spinner and its percentage, ticking
// every 100 ms, then replaced by its result; otherwise each step is one
// plain line when it ends. Close stops the spinner.
type TextProgress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	i, n    int
	name    string
	frac    float64
	began   time.Time
	spin    int
	stop    chan struct{}
	stopped chan struct{}
}

// NewTextProgress returns a TextProgress writing to w.
func NewTextProgress(w io.Writer, tty bool) *TextProgress {
	p := &TextProgress{w: w, tty: tty}
	if tty {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *TextProgress) tick() {
	defer close(p.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.name != "" {
				p.spin++
				p.drawLocked()
			}
			p.mu.Unlock()
		}
	}
}

func (p *TextProgress) drawLocked() {
	fmt.Fprintf(p.w, "\r\x1b[2K%s [%d/%d] %s %3.0f%%", spinner[p.spin%len(spinner)], p.i, p.n, p.name, p.frac*100)
}

// Begin implements Progress.
func (p *TextProgress) Begin(i, n int, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.i, p.n, p.name, p.frac, p.began = i, n, name, 0, time.Now()
	if p.tty {
		p.drawLocked()
	}
}

// Update implements Progress.
func (p *TextProgress) Update(frac float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frac = min(max(frac, 0), 1)
}

// End implements Progress.
func (p *TextProgress) End(summary string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mark, text := "✓", summary
	if err != nil {
		mark, text = "✗", "ERROR "+err.Error()
	}
	el := time.Since(p.began).Seconds()
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[2K%s [%d/%d] %s: %s (%.1f s)\n", mark, p.i, p.n, p.name, text, el)
	} else {
		fmt.Fprintf(p.w, "bench: [%d/%d] %s: %s (%.1f s)\n", p.i, p.n, p.name, text, el)
	}
	p.name = ""
}

// Close stops the spinner; call it once the run is over.
func (p *TextProgress) Close() {
	if p.tty {
		close(p.stop)
		<-p.stopped
	}
}
