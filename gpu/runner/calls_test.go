package runner

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"taobox/chain/yuma/gpuplan"
	"taobox/internal/syncbuf"
)

// waitHeld waits until a call holds c's connection.
func waitHeld(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.sem) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no call holds the connection")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueuedCallNotSent: a call whose context or call timeout ends while
// another call holds the connection returns ErrNotSent and leaves the
// connection good (it broke it: review).
func TestQueuedCallNotSent(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Info: "x", Ops: map[Op]Handler{OpLlamaForward: func(_ context.Context, _, out []byte) ([]byte, error) {
		<-release
		return append(out, 1), nil
	}}}
	c := serveInProcess(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), OpLlamaForward, nil)
		done <- err
	}()
	waitHeld(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Health(ctx); !errors.Is(err, ErrNotSent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a deadline passed in the queue: %v, want ErrNotSent", err)
	}
	if _, err := c.Health(withCallTimeout(context.Background(), 20*time.Millisecond)); !errors.Is(err, ErrNotSent) {
		t.Fatalf("a call timeout passed in the queue: %v, want ErrNotSent", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the call holding the connection: %v", err)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatalf("after the queued calls gave up: %v", err)
	}
}

// TestEpochsDuringLoad: a Yuma batch that waits longer than CallTimeout
// behind a model load runs on the CPU and the runner stays in service (it
// was retired as hung, the load broken with it: review).
func TestEpochsDuringLoad(t *testing.T) {
	logs := &syncbuf.Buffer{}
	opts := fakeOptions(t, "slow-load")
	opts.Logger, opts.After = testLogger(logs), newFakeClock().After
	opts.CallTimeout = 100 * time.Millisecond
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	path, _ := tinyModelFile(t)
	loaded := make(chan error, 1)
	go func() {
		_, err := e.LoadModel(context.Background(), path, "")
		loaded <- err
	}()
	e.mu.Lock()
	c := e.proc.client
	e.mu.Unlock()
	waitHeld(t, c)
	ins := gpuplan.RandomBatch(2, 8)
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, ins))
	if err := <-loaded; err != nil {
		t.Fatalf("the load behind which the batch waited: %v", err)
	}
	if _, err := e.Epochs(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Failures != 0 || st.CPUBatches != 1 || st.RunnerBatches != 1 || st.ModelLoads != 1 || !e.ModelOnGPU() {
		t.Fatalf("stats %+v, model on the GPU %v; logs:\n%s", st, e.ModelOnGPU(), logs.String())
	}
}

// TestStaleDeadline: when a call's context ends just as its exchange
// finishes, the past deadline its end sets lands before the call returns,
// never on the next call (expireConn held back until the next call runs:
// the next call timed out; review).
func TestStaleDeadline(t *testing.T) {
	release, set := make(chan struct{}), make(chan struct{})
	expire := expireConn
	expireConn = func(c net.Conn) {
		select {
		case <-release: // the bug: the next call is under way
		case <-time.After(300 * time.Millisecond): // the fix: the call waits for us
		}
		expire(c)
		close(set)
	}
	defer func() { expireConn = expire }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Server{Info: "x", Ops: map[Op]Handler{
		OpLlamaLoad: func(_ context.Context, _, out []byte) ([]byte, error) {
			cancel() // the context ends as the exchange finishes
			return out, nil
		},
		OpLlamaForward: func(_ context.Context, _, out []byte) ([]byte, error) {
			close(release) // the next call set its deadline and sent its request
			select {
			case <-set:
			case <-time.After(2 * time.Second):
			}
			return append(out, 1), nil
		},
	}}
	c := serveInProcess(t, s)
	if _, err := c.Call(ctx, OpLlamaLoad, nil); err != nil {
		t.Fatalf("the call whose context ended as it finished: %v", err)
	}
	if _, err := c.Call(context.Background(), OpLlamaForward, nil); err != nil {
		t.Fatalf("the next call: %v", err)
	}
}

// TestCloseDuringHungCall: Engine.Close ends a call in flight on a hung
// runner at once (it waited for the call's deadline: review).
func TestCloseDuringHungCall(t *testing.T) {
	opts := fakeOptions(t, "hang")
	opts.After = newFakeClock().After
	opts.CallTimeout = 5 * time.Second
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	c := e.proc.client
	e.mu.Unlock()
	ins := gpuplan.RandomBatch(2, 8)
	batch := make(chan error, 1)
	go func() {
		_, err := e.Epochs(context.Background(), ins)
		batch <- err
	}()
	waitHeld(t, c)
	t0 := time.Now()
	e.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v: it waited for the hung call's deadline", d)
	}
	if err := <-batch; err != nil {
		t.Fatalf("the batch on the closed runner: %v", err)
	}
}

// TestOversizedRefusal: a request above the server's cap gets the
// server's refusal, not a broken pipe, whether the server drains the rest
// of the frame (Server) or closes at once (a raw peer; the client reads
// the refusal after its write failed): the refusal was lost (review).
func TestOversizedRefusal(t *testing.T) {
	c := serveInProcess(t, &Server{Info: "x", MaxFrame: 64 << 10})
	_, err := c.Call(context.Background(), OpYumaEpochs, make([]byte, 8<<20))
	if err == nil || !strings.Contains(err.Error(), "refused the request: runner: frame too large: 8388608 bytes, cap 65536") {
		t.Fatalf("the server's refusal: %v", err)
	}
	// The server reads the refused payload: the whole frame is written.
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go (&Server{MaxFrame: 64 << 10}).Serve(t.Context(), ln)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(AppendFrame(nil, Frame{Kind: KindRequest, Op: OpYumaEpochs, ID: 1, Payload: make([]byte, 8<<20)})); err != nil {
		t.Fatalf("writing the refused frame: %v", err)
	}
	if f, err := ReadFrame(conn, 0); err != nil || f.Kind != KindError {
		t.Fatalf("the refusal: %+v, %v", f, err)
	}
	sock = filepath.Join(t.TempDir(), "raw.sock")
	ln, err = net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		var h [HeaderSize]byte
		io.ReadFull(conn, h[:])
		WriteFrame(conn, Frame{Kind: KindError, Payload: []byte("too large for me")})
		conn.Close()
	}()
	c2, err := Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = c2.Call(context.Background(), OpYumaEpochs, make([]byte, 8<<20))
	if err == nil || !strings.Contains(err.Error(), "refused the request: too large for me") {
		t.Fatalf("a refusal before a close: %v", err)
	}
}

// TestReloadRefusedNotRetried: a model a restarted runner refuses is not
// loaded again by the restarts after it, as LoadModel's refusal (every
// restart reloaded it and warned again: review).
func TestReloadRefusedNotRetried(t *testing.T) {
	logs, clock, e := startFakeEngine(t, "ok,load-refuse,ok")
	path, _ := tinyModelFile(t)
	if _, err := e.LoadModel(context.Background(), path, ""); err != nil {
		t.Fatal(err)
	}
	restart := func() {
		t.Helper()
		syscall.Kill(e.RunnerPID(), syscall.SIGKILL)
		waitBackend(t, e, BackendCPU)
		select {
		case <-clock.waits:
		case <-time.After(10 * time.Second):
			t.Fatal("no restart")
		}
		clock.fire <- time.Now()
		waitBackend(t, e, BackendCUDA)
	}
	restart() // the runner refuses the model
	e.mu.Lock()
	model := e.model
	e.mu.Unlock()
	if model != "" {
		t.Fatalf("the engine still loads %s into every runner", model)
	}
	restart()
	if st, n := e.Stats(), logs.Count("could not load"); st.ModelLoads != 1 || n != 1 || e.ModelOnGPU() {
		t.Fatalf("stats %+v, %d refusals logged; logs:\n%s", st, n, logs.String())
	}
}

// TestCallerCancelNotAFailure: a caller that gives up during a Yuma batch
// or a model load gets its context's error at once; the runner stays in
// service and finishes the call in the background (it was retired, with
// the fall-back warning: review).
func TestCallerCancelNotAFailure(t *testing.T) {
	logs, _, e := startFakeEngine(t, "slow")
	ins := gpuplan.RandomBatch(2, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Epochs(ctx, ins); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a cancelled batch: %v", err)
	}
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, ins))
	path, _ := tinyModelFile(t)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.LoadModel(ctx, path, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a cancelled load: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !e.ModelOnGPU() {
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled load did not finish; logs:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := e.Stats(); st.Failures != 0 || st.RunnerBatches != 1 || st.CPUBatches != 0 || st.ModelLoads != 1 || logs.Count("fall back") != 0 {
		t.Fatalf("stats %+v; logs:\n%s", st, logs.String())
	}
}

// TestCloseWithGrandchild: a child of the runner that holds its stderr
// pipe does not keep Close waiting (Wait waited for the pipe: review).
func TestCloseWithGrandchild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the runner has its own process group on Linux only")
	}
	opts := fakeOptions(t, "grandchild")
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var state string
	for _, kv := range opts.Env {
		if s, ok := strings.CutPrefix(kv, "TAOBOX_FAKE_RUNNER_STATE="); ok {
			state = s
		}
	}
	b, err := os.ReadFile(state + ".grandchild")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		e.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-closed
		t.Fatal("Close waited for the runner's child")
	}
	for deadline := time.Now().Add(2 * time.Second); running(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("the runner's child outlived it")
		}
	}
}

// running reports whether process pid exists and is no zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
