package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// process is one running `taobox-cuda runner` and the client connected to it.
type process struct {
	cmd      *exec.Cmd
	stdin    *os.File // closing it tells the runner to exit
	dir      string   // holds the socket
	client   *Client
	info     string
	done     chan struct{} // closed when the process has exited
	err      error         // its exit status, after done
	stderr   *tailWriter
	shm      *Shm // the region the client attached; nil: the socket only
	shmOnce  sync.Once
	model    string // the GGUF path its llama ops hold (Engine.LoadModel); guarded by Engine.mu
	faults   int    // sequences in a row that ended in a fault (Seq.Fail); guarded by Engine.mu
	noScore  bool   // it does not serve llama.score (an older taobox-cuda); guarded by Engine.mu
	noSample bool   // nor llama.sample; guarded by Engine.mu
	noPacked bool   // it does not serve yuma.packed (an older taobox-cuda); guarded by Engine.mu
}

// WarnPrefix opens a line that a runner writes to its stderr for the
// node's log: once the runner is in service the node logs the rest of the
// line at WARN as it arrives (each such line in one write). Every other
// line is only kept for the error message of a runner that fails.
const WarnPrefix = "taobox-cuda warning: "

// tailWriter keeps the last bytes written to it (the runner's stderr, for
// error messages) and hands the WarnPrefix lines to warn, once set.
type tailWriter struct {
	mu   sync.Mutex
	buf  []byte
	warn func(string)
}

const tailBytes = 2048

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > tailBytes {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-tailBytes:]...)
	}
	warn := w.warn
	w.mu.Unlock()
	if warn != nil {
		for line := range strings.SplitSeq(string(p), "\n") {
			if rest, ok := strings.CutPrefix(line, WarnPrefix); ok {
				warn(rest)
			}
		}
	}
	return len(p), nil
}

// setWarn makes w hand the WarnPrefix lines written from now on to f.
func (w *tailWriter) setWarn(f func(string)) {
	w.mu.Lock()
	w.warn = f
	w.mu.Unlock()
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(string(w.buf))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && len(s)-i < 400 {
		// The last line says why; the rest is progress.
		if j := strings.LastIndexByte(s[:i], '\n'); j >= 0 {
			s = s[j+1:]
		}
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// startProcess runs `bin runner --socket DIR/runner.sock [--shm-fd 3
// --shm-size N] args...`, waits for its ready line (after its self-test)
// and connects. With shmSize > 0 it first creates a shared region of that
// size for the runner (fd 3) and attaches it after the health check; when
// that fails (no memfd, a runner without a region) the process talks over
// the socket alone. On any failure the process is gone when it returns.
func startProcess(ctx context.Context, bin string, args, env []string, timeout time.Duration, shmSize int) (*process, error) {
	dir, err := os.MkdirTemp("", "taobox-runner-")
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	socket := filepath.Join(dir, "runner.sock")
	p := &process{dir: dir, done: make(chan struct{}), stderr: &tailWriter{}}
	argv := []string{"runner", "--socket", socket}
	if shmSize > 0 {
		if shm, err := CreateShm(shmSize); err == nil {
			p.shm = shm
			argv = append(argv, shmArgs(shm)...)
		}
	}
	p.cmd = exec.Command(bin, append(argv, args...)...)
	if p.shm != nil {
		p.cmd.ExtraFiles = []*os.File{p.shm.File()}
	}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	// Wait returns at most this long after the runner exits even if a child
	// of it still holds the stderr pipe (kill also kills its group).
	p.cmd.WaitDelay = waitDelay
	setParentDeath(p.cmd)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		p.shm.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		p.shm.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: %w", err)
	}
	p.cmd.Stdin, p.cmd.Stdout, p.stdin = stdinR, outW, stdinW
	err = p.cmd.Start()
	stdinR.Close()
	outW.Close()
	if p.shm != nil {
		p.shm.CloseFile() // the runner has its own descriptor now
	}
	if err != nil {
		stdinW.Close()
		outR.Close()
		p.shm.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()

	ready := make(chan string, 1)
	go func() {
		defer outR.Close()
		r := bufio.NewReader(outR)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, ReadyPrefix) {
				ready <- strings.TrimSpace(strings.TrimPrefix(line, ReadyPrefix))
				break
			}
			if err != nil {
				return
			}
		}
		// Drain whatever else it prints so that it never blocks on stdout.
		r.WriteTo(discard{})
	}()

	fail := func(err error) (*process, error) {
		p.kill()
		return nil, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p.info = <-ready:
	case <-p.done:
		return fail(fmt.Errorf("runner: %s exited before it was ready (%v): %s", bin, p.err, p.stderr))
	case <-timer.C:
		return fail(fmt.Errorf("runner: %s not ready after %v (self-test or driver hung?): %s", bin, timeout, p.stderr))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := Dial(dctx, socket)
	if err != nil {
		return fail(err)
	}
	p.client = c
	if _, err := c.Health(dctx); err != nil {
		return fail(fmt.Errorf("runner: health check: %w", err))
	}
	if p.shm != nil {
		var re *RemoteError
		if err := c.AttachShm(dctx, p.shm); errors.As(err, &re) {
			// A runner without the region: the socket carries everything.
			p.shm.Close()
			p.shm = nil
		} else if err != nil {
			return fail(fmt.Errorf("runner: attaching shared memory: %w", err))
		}
	}
	return p, nil
}

// waitDelay is exec.Cmd.WaitDelay for the runner.
const waitDelay = 5 * time.Second

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// kill stops the runner (stdin EOF, then SIGKILL), waits for it and
// removes its socket directory and shared region (the client is closed
// first, which ends a call in flight at once, hung runner or not, and
// waits for it: no call decodes from the region any more). It may be
// called more than once.
func (p *process) kill() {
	if p.client != nil {
		p.client.Close()
	}
	p.stdin.Close()
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		killGroup(p.cmd)
		<-p.done
	}
	p.shmOnce.Do(func() { p.shm.Close() })
	os.RemoveAll(p.dir)
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("runner exited")
		}
		return true, p.err
	default:
		return false, nil
	}
}
