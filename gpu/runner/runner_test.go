package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"taobox/assets"
	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/internal/syncbuf"
	"taobox/model"
)

func cpuOutputs(t testing.TB, ins []yuma.Input) []yuma.Output {
	t.Helper()
	outs, err := yuma.NewCPUEngine(0).Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func sameOutputs(t testing.TB, got, want []yuma.Output) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for i := range got {
		if d := gpuplan.Diff(&got[i], &want[i]); d != "" {
			t.Fatalf("output %d: %s", i, d)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		ins := gpuplan.RandomBatch(seed, 12)
		if seed == 1 {
			ins = append(ins, gpuplan.AgedSynthetic(yuma.SynthConfig{N: 256, Validators: 64, Seed: 1, Yuma3: true, LiquidAlpha: true}, 2))
			ins[0].CommitBlocks = nil
			ins[1].ValidatorPermit = []bool{}
		}
		b := EncodeInputs(nil, ins)
		got, err := DecodeInputs(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ins) {
			t.Fatalf("seed %d: inputs differ after the round trip", seed)
		}
		// The server's in-place decoding gives the same inputs.
		if aliased, err := decodeInputs(b, true); err != nil || !reflect.DeepEqual(aliased, ins) {
			t.Fatalf("seed %d: aliased decoding differs: %v", seed, err)
		}
		outs := cpuOutputs(t, ins)
		ob := EncodeOutputs(nil, outs)
		gotOuts, err := DecodeOutputs(ob)
		if err != nil {
			t.Fatal(err)
		}
		sameOutputs(t, gotOuts, outs)
		if !bytes.Equal(EncodeOutputs(nil, gotOuts), ob) {
			t.Fatalf("seed %d: outputs re-encode differently", seed)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	ins := gpuplan.RandomBatch(7, 3)
	b := EncodeInputs(nil, ins)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "needs 4 bytes"},
		{"truncated", b[:len(b)-1], "left"},
		{"trailing", append(append([]byte{}, b...), 0), "after the last record"},
		{"huge count", []byte{0xff, 0xff, 0xff, 0x7f}, "more than the 0 bytes left hold"},
	} {
		_, err := DecodeInputs(tc.b)
		if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrBadPayload with %q", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeOutputs([]byte{1, 0, 0, 0}); !errors.Is(err, ErrBadPayload) {
		t.Errorf("outputs: err %v", err)
	}
	// llama.score: a count of distributions with a vocabulary of 0 (which
	// would allocate a header each from a few bytes), counts ahead that are
	// neither 0 nor one per log-prob, unknown flags.
	for _, b := range [][]byte{
		{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		if _, err := DecodeScored(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("score response % x: err %v", b, err)
		}
	}
	if _, err := DecodeScore(EncodeScore(nil, ScoreRequest{IDs: []int{1, 2}, From: 1})[:19]); !errors.Is(err, ErrBadPayload) {
		t.Errorf("short score request: err %v", err)
	}
	bad := EncodeScore(nil, ScoreRequest{IDs: []int{1, 2}, From: 1})
	bad[4] = 2
	if _, err := DecodeScore(bad); !errors.Is(err, ErrBadPayload) {
		t.Errorf("score request with unknown flags: err %v", err)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	f := Frame{Kind: KindRequest, Op: OpYumaEpochs, ID: 42, Payload: []byte("hello")}
	if err := WriteFrame(&buf, f); err != nil {
		t.Fatal(err)
	}
	raw := append([]byte{}, buf.Bytes()...)
	got, err := ReadFrame(&buf, 0)
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ReadFrame(bytes.NewReader(raw), 4); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("cap 4: %v, want ErrFrameTooLarge", err)
	}
	if _, err := ReadFrame(bytes.NewReader(raw[:len(raw)-1]), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	bad := append([]byte{}, raw...)
	bad[4] = 'X'
	if _, err := ReadFrame(bytes.NewReader(bad), 0); !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad magic: %v", err)
	}
	bad = append([]byte{}, raw...)
	bad[6] = 9
	if _, err := ReadFrame(bytes.NewReader(bad), 0); !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("bad version: %v", err)
	}
}

// serveInProcess serves s on a unix socket in a temporary directory and
// returns a client.
func serveInProcess(t testing.TB, s *Server) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "r.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cancel(); <-done })
	return c
}

func TestServerLimitsAndErrors(t *testing.T) {
	s := &Server{Info: "test", Yuma: yuma.NewCPUEngine(1), MaxFrame: 64 << 10}
	c := serveInProcess(t, s)
	ctx := context.Background()
	if info, err := c.Health(ctx); err != nil || info != "test" {
		t.Fatalf("health: %q, %v", info, err)
	}
	// An op the runner does not serve: a RemoteError, the connection stays.
	_, err := c.Call(ctx, OpLlamaForward, nil)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "llama.forward is not served") {
		t.Fatalf("unknown op: %v", err)
	}
	// A malformed payload: a RemoteError naming the problem.
	_, err = c.Call(ctx, OpYumaEpochs, []byte{1, 2, 3})
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "malformed payload") {
		t.Fatalf("bad payload: %v", err)
	}
	// An invalid input: the CPU engine's validation error.
	bad := gpuplan.RandomBatch(3, 2)
	bad[1].LastUpdate = bad[1].LastUpdate[:0]
	if _, err := c.Epochs(ctx, bad); !errors.As(err, &re) || !strings.Contains(err.Error(), "last_update") {
		t.Fatalf("invalid input: %v", err)
	}
	// A frame above the server's cap: a clear refusal, then the connection ends.
	_, err = c.Call(ctx, OpYumaEpochs, make([]byte, 65<<10))
	if err == nil || !strings.Contains(err.Error(), "frame too large") {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := c.Health(ctx); !errors.Is(err, ErrBroken) {
		t.Fatalf("after the refusal: %v, want ErrBroken", err)
	}
	// A request above the client's cap is not sent; the connection stays.
	c3 := serveInProcess(t, &Server{Info: "x", Yuma: yuma.NewCPUEngine(1)})
	c3.MaxFrame = 100
	if _, err := c3.Epochs(ctx, gpuplan.RandomBatch(1, 3)); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("client request cap: %v", err)
	}
	if _, err := c3.Health(ctx); err != nil {
		t.Fatalf("after a refused request: %v", err)
	}
	// A response above the client's cap.
	c2 := serveInProcess(t, &Server{Info: strings.Repeat("x", 100)})
	c2.MaxFrame = 10
	if _, err := c2.Health(ctx); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("client cap: %v", err)
	}
}

func testLogger(buf *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeClock hands each backoff wait to the test.
type fakeClock struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{waits: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

func (c *fakeClock) expect(t *testing.T, want time.Duration) {
	t.Helper()
	select {
	case d := <-c.waits:
		if d != want {
			t.Fatalf("backoff %v, want %v", d, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no backoff wait of %v", want)
	}
}

func waitBackend(t *testing.T, e *Engine, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.Backend() != want {
		if time.Now().After(deadline) {
			t.Fatalf("backend %s, want %s", e.Backend(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEngineEqualsCPU(t *testing.T) {
	for _, tc := range []struct {
		name          string
		shm, requests int // shared region size (-1: the socket), requests expected in it
	}{{"shm", 0, 30}, {"socket", -1, 0}} {
		t.Run(tc.name, func(t *testing.T) { engineEqualsCPU(t, tc.shm, tc.requests) })
	}
}

func engineEqualsCPU(t *testing.T, shmSize, shmRequests int) {
	opts := fakeOptions(t, "ok")
	opts.ShmSize = shmSize
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Backend() != BackendCUDA {
		t.Fatalf("backend %s", e.Backend())
	}
	e.mu.Lock()
	c := e.proc.client
	e.mu.Unlock()
	c.ShmThreshold = 1
	checkBatches(t, e, 30, 8)
	if req, _ := c.ShmFrames(); req != shmRequests {
		t.Fatalf("%d requests in shared memory, want %d", req, shmRequests)
	}
	// Invalid input: the CPU engine's error, without the runner.
	bad := gpuplan.RandomBatch(1, 2)
	bad[0].N++
	_, err = e.Epochs(context.Background(), bad)
	_, want := yuma.NewCPUEngine(1).Epochs(context.Background(), bad)
	if err == nil || err.Error() != want.Error() {
		t.Fatalf("invalid batch: %v, want %v", err, want)
	}
	// Nothing the kernels take (the dense variant): the CPU engine, no call.
	dense := gpuplan.RandomBatch(2, 3)
	for i := range dense {
		dense[i].Variant = yuma.Dense
	}
	got, err := e.Epochs(context.Background(), dense)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, dense))
	if st := e.Stats(); st.RunnerBatches != 30 || st.PackedBatches != 30 || st.CPUBatches != 1 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// checkBatches runs n random batches of k inputs (seeds 1..n) on e and
// compares each with the CPU engine.
func checkBatches(t *testing.T, e *Engine, n, k int) {
	t.Helper()
	for seed := range uint64(n) {
		ins := gpuplan.RandomBatch(seed+1, k)
		got, err := e.Epochs(context.Background(), ins)
		if err != nil {
			t.Fatal(err)
		}
		sameOutputs(t, got, cpuOutputs(t, ins))
	}
}

// An older runner without yuma.packed: one info line, and every batch
// goes as yuma.epochs, without a failure.
func TestEngineOlderRunnerEpochs(t *testing.T) {
	var logs syncbuf.Buffer
	opts := fakeOptions(t, "no-packed")
	opts.Logger = testLogger(&logs)
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	checkBatches(t, e, 3, 4)
	if st := e.Stats(); st.RunnerBatches != 3 || st.PackedBatches != 0 || st.Failures != 0 || st.CPUBatches != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := logs.Count("does not serve yuma.packed"); n != 1 {
		t.Fatalf("%d lines about yuma.packed, want 1:\n%s", n, logs.String())
	}
}

// A runner whose yuma.packed answer contradicts itself (a bond total that
// is not the entries it sent) is a failed runner: the batch runs on the
// CPU, the runner restarts.
func TestRunnerBadBonds(t *testing.T) {
	opts := fakeOptions(t, "bad-bonds,ok")
	opts.MinBackoff = 2 * time.Second
	failover(t, "bad-bonds", opts)
}

// failover runs the first batch on a runner that fails in mode, checks the
// CPU fallback's result and the one warning, then lets the restart happen.
func failover(t *testing.T, mode string, opts Options) {
	var logs syncbuf.Buffer
	clock := newFakeClock()
	opts.Logger = testLogger(&logs)
	opts.After = clock.After
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// The failing batch's request crosses in shared memory.
	e.mu.Lock()
	first := e.proc.client
	e.mu.Unlock()
	first.ShmThreshold = 1
	ins := gpuplan.RandomBatch(5, 10)
	want := cpuOutputs(t, ins)
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatalf("%s: %v", mode, err)
	}
	sameOutputs(t, got, want)
	if n := logs.Count("fall back to the CPU"); n != 1 {
		t.Fatalf("%s: %d fallback lines, want 1:\n%s", mode, n, logs.String())
	}
	if e.Backend() != BackendCPU {
		t.Fatalf("%s: backend %s after the failure", mode, e.Backend())
	}
	// While the runner is down: CPU, no more warnings.
	got, err = e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, want)
	clock.expect(t, opts.MinBackoff)
	clock.fire <- time.Now()
	waitBackend(t, e, BackendCUDA)
	got, err = e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, want)
	st := e.Stats()
	if st.RunnerBatches != 1 || st.CPUBatches != 2 || st.Failures != 1 || st.Restarts != 1 {
		t.Fatalf("%s: stats %+v", mode, st)
	}
	if req, _ := first.ShmFrames(); req != 1 {
		t.Fatalf("%s: %d requests in shared memory, want 1", mode, req)
	}
	if n := logs.Count("fall back"); n != 1 || logs.Count("restarted") != 1 {
		t.Fatalf("%s: logs:\n%s", mode, logs.String())
	}
	t.Logf("%s: %s", mode, logs.String())
}

func TestRunnerKilledMidBatch(t *testing.T) {
	opts := fakeOptions(t, "crash,ok")
	opts.MinBackoff = 250 * time.Millisecond
	failover(t, "crash", opts)
}

func TestRunnerHangs(t *testing.T) {
	opts := fakeOptions(t, "hang,ok")
	opts.MinBackoff = time.Second
	opts.CallTimeout = 300 * time.Millisecond
	failover(t, "hang", opts)
}

func TestRunnerGarbage(t *testing.T) {
	opts := fakeOptions(t, "garbage,ok")
	opts.MinBackoff = 2 * time.Second
	failover(t, "garbage", opts)
}

func TestSelftestFailFallsBackWithBackoff(t *testing.T) {
	var logs syncbuf.Buffer
	clock := newFakeClock()
	opts := fakeOptions(t, "selftest-fail,selftest-fail,selftest-fail,ok")
	opts.Backend = BackendAuto
	opts.Logger = testLogger(&logs)
	opts.After = clock.After
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Backend() != BackendCPU {
		t.Fatal("backend is not cpu after a failed self-test")
	}
	if !strings.Contains(logs.String(), "3 of 200 epochs differ") || logs.Count("level=WARN") != 1 {
		t.Fatalf("logs:\n%s", logs.String())
	}
	ins := gpuplan.RandomBatch(9, 6)
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, ins))
	// Two more failed starts: 1 s, 2 s, then 4 s before the one that works.
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clock.expect(t, d)
		clock.fire <- time.Now()
	}
	waitBackend(t, e, BackendCUDA)
	if st := e.Stats(); st.Failures != 3 || st.Restarts != 1 {
		t.Fatalf("stats %+v", st)
	}
	if logs.Count("level=WARN") != 1 {
		t.Fatalf("more than one warning:\n%s", logs.String())
	}
}

func TestBackendCUDAWithoutGPU(t *testing.T) {
	opts := Options{Backend: BackendCUDA, Detect: func() (GPU, error) {
		return DetectWith(DetectConfig{DevDir: t.TempDir()})
	}}
	_, err := Start(context.Background(), opts)
	if !errors.Is(err, ErrNoGPU) || !strings.Contains(err.Error(), "--backend cpu") || !strings.Contains(err.Error(), "nvidiactl is missing") {
		t.Fatalf("err %v", err)
	}
	// A runner that fails its self-test is an error too with --backend cuda.
	_, err = Start(context.Background(), fakeOptions(t, "selftest-fail"))
	if err == nil || !strings.Contains(err.Error(), "3 of 200 epochs differ") {
		t.Fatalf("err %v", err)
	}
}

func TestAutoWithoutGPU(t *testing.T) {
	var logs syncbuf.Buffer
	e, err := Start(context.Background(), Options{Logger: testLogger(&logs), Detect: func() (GPU, error) {
		return DetectWith(DetectConfig{DevDir: t.TempDir()})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Backend() != BackendCPU || logs.Count("level=INFO") != 1 || logs.Count("level=WARN") != 0 {
		t.Fatalf("backend %s, logs:\n%s", e.Backend(), logs.String())
	}
	ins := gpuplan.RandomBatch(2, 4)
	got, err := e.Epochs(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, ins))
	if _, err := Start(context.Background(), Options{Backend: "gpu"}); err == nil {
		t.Fatal("backend gpu accepted")
	}
}

func TestStartTimeout(t *testing.T) {
	opts := fakeOptions(t, "slow-start")
	opts.StartTimeout = 300 * time.Millisecond
	_, err := Start(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("err %v", err)
	}
}

// The runner exits when its stdin closes (the parent died or closed it).
func TestRunnerExitsOnStdinEOF(t *testing.T) {
	opts := fakeOptions(t, "ok")
	opts.ensureDefaults()
	g, _ := opts.Detect()
	p, err := startProcess(context.Background(), g.Binary, nil, opts.Env, 30*time.Second, DefaultShmSize)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	p.stdin.Close()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v", p.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runner still running after stdin EOF")
	}
	if _, err := os.Stat(filepath.Join(p.dir, "runner.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestDetect(t *testing.T) {
	dev, lib, bin := t.TempDir(), t.TempDir(), t.TempDir()
	exe := filepath.Join(bin, "taobox")
	touch := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DetectConfig{DevDir: dev, LibDirs: []string{lib}, LDCache: filepath.Join(lib, "ld.so.cache"), Executable: exe, Path: "/nonexistent"}
	check := func(want string) {
		t.Helper()
		g, err := DetectWith(cfg)
		if want == "" {
			if err != nil {
				t.Fatalf("detect: %v", err)
			}
			return
		}
		if !errors.Is(err, ErrNoGPU) || !strings.Contains(err.Error(), want) {
			t.Fatalf("detect: %+v, %v; want %q", g, err, want)
		}
	}
	check("nvidiactl is missing")
	touch(filepath.Join(dev, "nvidiactl"), 0o600)
	check("no " + filepath.Join(dev, "nvidia0"))
	touch(filepath.Join(dev, "nvidia0"), 0o600)
	check("libcuda.so.1 is not where the loader looks")
	touch(cfg.LDCache, 0o600)
	os.WriteFile(cfg.LDCache, []byte("ld.so-1.7.0\x00libcuda.so.1\x00"), 0o600)
	check("taobox-cuda is not")
	os.Remove(cfg.LDCache)
	touch(filepath.Join(lib, "libcuda.so.1"), 0o644)
	touch(filepath.Join(bin, BinaryName), 0o755)
	check("")
	g, _ := DetectWith(cfg)
	if g.Binary != filepath.Join(bin, BinaryName) || g.Library != filepath.Join(lib, "libcuda.so.1") {
		t.Fatalf("%+v", g)
	}
}

// A parent killed with SIGKILL takes the runner with it (PR_SET_PDEATHSIG,
// and the kernel closing the runner's stdin pipe). The parent's runner has
// attached the shared region (fakeParent checks), so the runner dies with
// a mapping and fd 3 open.
func TestRunnerDiesWithParent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "TAOBOX_FAKE_PARENT=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		cmd.Process.Kill()
		t.Fatalf("runner pid: %d, %v", pid, err)
	}
	alive := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// A zombie (state Z) has exited; its parent is gone, init reaps it.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(f) > 0 && f[0] != "Z"
	}
	if !alive() {
		t.Fatal("runner not running")
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive() {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("runner outlived its parent")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The inference ops' client side and payloads, against handlers that
// compute the answer from the request.
func TestLlamaOps(t *testing.T) {
	s := &Server{Ops: map[Op]Handler{
		OpLlamaLoad: func(_ context.Context, p, out []byte) ([]byte, error) {
			return append(append(out, "loaded "...), p...), nil
		},
		OpLlamaForward: func(_ context.Context, p, out []byte) ([]byte, error) {
			tok, pos, err := DecodeForward(p)
			if err != nil {
				return nil, err
			}
			return EncodeLogits(out, []float32{float32(tok), float32(pos), -1.5}), nil
		},
		OpLlamaGenerate: func(_ context.Context, p, out []byte) ([]byte, error) {
			prompt, n, err := DecodeGenerate(p)
			if err != nil {
				return nil, err
			}
			toks, lps := make([]int, n), make([]float64, n)
			for i := range toks {
				toks[i], lps[i] = prompt[len(prompt)-1]+i+1, -float64(i)/3
			}
			return EncodeGenerated(out, toks, lps), nil
		},
	}}
	c := serveInProcess(t, s)
	ctx := context.Background()
	if info, err := c.LlamaLoad(ctx, "/models/x.gguf"); err != nil || info != "loaded /models/x.gguf" {
		t.Fatalf("load: %q, %v", info, err)
	}
	logits, err := c.LlamaForward(ctx, 7, 3)
	if err != nil || !reflect.DeepEqual(logits, []float32{7, 3, -1.5}) {
		t.Fatalf("forward: %v, %v", logits, err)
	}
	toks, lps, err := c.LlamaGenerate(ctx, []int{1, 2, 40}, 3)
	if err != nil || !reflect.DeepEqual(toks, []int{41, 42, 43}) || !reflect.DeepEqual(lps, []float64{0, -1.0 / 3, -2.0 / 3}) {
		t.Fatalf("generate: %v %v, %v", toks, lps, err)
	}
	var re *RemoteError
	if _, err := c.Call(ctx, OpLlamaForward, []byte{1}); !errors.As(err, &re) || !strings.Contains(err.Error(), "want 8") {
		t.Fatalf("bad forward: %v", err)
	}
}

// tinyModelFile writes the embedded tiny model to a GGUF file and returns
// its path, with the CPU model for comparison.
func tinyModelFile(t testing.TB) (string, *model.Model) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(path, assets.TinyModel(), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := model.LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return path, m
}

// An answer's forward passes go through the runner's model: its logits
// are the model's; when the runner dies mid-answer, the Seq ends with an
// error, the model is off the GPU (Yuma falls back as usual), and the
// restarted runner loads the model again before it serves.
func TestSeqOnRunner(t *testing.T) {
	logs, clock, e := startFakeEngine(t, "llama-crash,ok")
	ctx := context.Background()
	if e.ModelOnGPU() || e.BeginSeq(ctx) != nil {
		t.Fatal("a Seq before any model was loaded")
	}
	path, cpu := tinyModelFile(t)
	desc, err := e.LoadModel(ctx, path, fileSum(t, path))
	if err != nil || !strings.Contains(desc, path) || !e.ModelOnGPU() {
		t.Fatalf("LoadModel: %q, %v", desc, err)
	}
	if _, err := e.LoadModel(ctx, filepath.Join(t.TempDir(), "missing.gguf"), ""); err == nil {
		t.Fatal("loading a missing file succeeded")
	}
	if e.ModelOnGPU() {
		t.Fatal("the model is still up after a failed load replaced it")
	}
	if _, err := e.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 50, 60, 70}
	s := e.BeginSeq(ctx)
	if s == nil {
		t.Fatal("no Seq with the model loaded")
	}
	// Exclusive: a second BeginSeq waits for End.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if e.BeginSeq(wctx) != nil {
		t.Fatal("two Seqs at once")
	}
	cancel()
	for pos, tok := range prompt {
		got, err := s.Forward(tok, pos)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := cpu.Forward(tok, pos)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pos %d: the runner's logits differ from the model's", pos)
		}
	}
	// The 5th forward kills the runner.
	if _, err := s.Forward(9, len(prompt)); err == nil {
		t.Fatal("forward on a crashed runner succeeded")
	}
	if _, err := s.Forward(9, len(prompt)); !errors.Is(err, errSeqEnded) {
		t.Fatalf("forward after the failure: %v", err)
	}
	s.End()
	if e.ModelOnGPU() || e.BeginSeq(ctx) != nil || e.Backend() != BackendCPU {
		t.Fatal("the model is still on the GPU after the runner died")
	}
	if n := logs.Count("fall back to the CPU"); n != 1 || !strings.Contains(logs.String(), "CUDA_ERROR_LAUNCH_FAILED") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	clock.expect(t, time.Second) // the default MinBackoff
	clock.fire <- time.Now()
	waitBackend(t, e, BackendCUDA)
	if !e.ModelOnGPU() {
		t.Fatal("the restarted runner has no model")
	}
	s = e.BeginSeq(ctx)
	if s == nil {
		t.Fatal("no Seq after the restart")
	}
	defer s.End()
	for pos, tok := range prompt {
		got, err := s.Forward(tok, pos)
		want, _ := cpu.Forward(tok, pos)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("after the restart, pos %d: %v", pos, err)
		}
	}
	// Greedy generation in one call: the CPU model's tokens and log-probs.
	toks, lps, err := s.Generate(prompt, 6)
	if err != nil {
		t.Fatal(err)
	}
	var logits []float32
	for pos, tok := range prompt {
		logits, _ = cpu.Forward(tok, pos)
	}
	for k := range toks {
		want := model.Argmax(logits)
		if toks[k] != want || lps[k] != model.LogProb(logits, want) {
			t.Fatalf("generated token %d: %d/%v, CPU %d/%v", k, toks[k], lps[k], want, model.LogProb(logits, want))
		}
		logits, _ = cpu.Forward(want, len(prompt)+k)
	}
	// A token the model cannot take is the runner's error response: the
	// sequence ends as a fault, the runner stays.
	if _, _, err := s.Generate([]int{1 << 20}, 2); err == nil || !e.ModelOnGPU() {
		t.Fatalf("generate from an out-of-vocabulary token: %v, model up %v", err, e.ModelOnGPU())
	}
	if s = e.BeginSeq(ctx); s == nil {
		t.Fatal("no Seq after a fault")
	}
	defer s.End()
	// A position the model cannot take is the runner's error, not a failure.
	if _, err := s.Forward(1, 1<<20); err == nil || !e.ModelOnGPU() {
		t.Fatalf("out-of-range position: %v, model up %v", err, e.ModelOnGPU())
	}
	st := e.Stats()
	if st.ModelLoads != 3 || st.RunnerForwards != 8+len(prompt)+5 || st.Failures != 1 || st.Restarts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Faults around the model: a restarted runner that dies loading it is a
// failed start (not put into service; the next restart loads it); a good
// sequence resets the backoff; sequences that keep failing without a
// transport error (error responses, logits the caller refused) retire the
// runner after maxSeqFaults, even when their forwards returned.
func TestSeqRunnerFaults(t *testing.T) {
	logs, clock, e := startFakeEngine(t, "llama-crash,load-crash,llama-crash,ok")
	ctx := context.Background()
	path, _ := tinyModelFile(t)
	if _, err := e.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	// forward runs a Seq until it fails, n tokens at most; it reports how
	// many went through.
	forward := func(n int) int {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq")
		}
		defer s.End()
		for pos := range n {
			if _, err := s.Forward(1, pos); err != nil {
				return pos
			}
		}
		return n
	}
	if got := forward(10); got != 4 { // start 0 dies at its 5th forward
		t.Fatalf("%d forwards before the crash, want 4", got)
	}
	clock.expect(t, time.Second)
	clock.fire <- time.Now() // start 1 dies loading the model: a failed start
	clock.expect(t, 2*time.Second)
	if e.Backend() != BackendCPU || e.ModelOnGPU() {
		t.Fatal("a runner that died loading the model was put into service")
	}
	clock.fire <- time.Now() // start 2 loads it (and dies at its 5th forward)
	waitBackend(t, e, BackendCUDA)
	if !e.ModelOnGPU() {
		t.Fatal("no model after the restart")
	}
	if got := forward(2); got != 2 { // a good sequence: the backoff starts over
		t.Fatalf("%d forwards, want 2", got)
	}
	if got := forward(10); got != 2 { // start 2 dies at its 5th forward
		t.Fatalf("%d forwards before the second crash, want 2", got)
	}
	clock.expect(t, time.Second)
	clock.fire <- time.Now()
	waitBackend(t, e, BackendCUDA)
	// badSeq is a sequence whose logits the caller refuses (NaN): a good
	// forward, then Fail.
	badSeq := func() {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("retired too early")
		}
		if _, err := s.Forward(1, 0); err != nil {
			t.Fatal(err)
		}
		s.Fail(errors.New("NaN logits"))
	}
	for range maxSeqFaults - 1 {
		badSeq()
	}
	if !e.ModelOnGPU() {
		t.Fatal("retired before maxSeqFaults")
	}
	if got := forward(2); got != 2 { // a good sequence resets the count
		t.Fatal("forward failed")
	}
	for range maxSeqFaults {
		badSeq()
	}
	if e.ModelOnGPU() || e.Backend() != BackendCPU {
		t.Fatal("a runner whose answers keep failing was not retired")
	}
	st := e.Stats()
	if st.Failures != 4 || st.Restarts != 2 || st.ModelLoads != 3 {
		t.Fatalf("stats %+v\n%s", st, logs.String())
	}
	if !strings.Contains(logs.String(), "answers in a row failed on the runner") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

func fileSum(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// The runner reads the model file itself: LoadModel refuses a file whose
// sum is not the one given, and a restarted runner does not load a file
// that changed on disk (it would serve another model than the advertised).
func TestModelFileChanged(t *testing.T) {
	logs, clock, e := startFakeEngine(t, "llama-crash,ok")
	ctx := context.Background()
	path, _ := tinyModelFile(t)
	sum := fileSum(t, path)
	if _, err := e.LoadModel(ctx, path, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "changed on disk") {
		t.Fatalf("a wrong sum: %v", err)
	}
	if _, err := e.LoadModel(ctx, path, sum); err != nil {
		t.Fatal(err)
	}
	s := e.BeginSeq(ctx)
	for pos := range 5 { // the 5th kills the runner
		s.Forward(1, pos)
	}
	s.End()
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	clock.expect(t, time.Second)
	clock.fire <- time.Now()
	waitBackend(t, e, BackendCUDA)
	if e.ModelOnGPU() || !strings.Contains(logs.String(), "changed on disk") {
		t.Fatalf("the restarted runner loaded a changed file:\n%s", logs.String())
	}
}

// startFakeEngine starts an engine on the fake runner with modes, its log
// and its backoff clock in the test's hands; it is closed with the test.
func startFakeEngine(t *testing.T, modes string) (*syncbuf.Buffer, *fakeClock, *Engine) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	clock := newFakeClock()
	opts := fakeOptions(t, modes)
	opts.Logger, opts.After = testLogger(logs), clock.After
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return logs, clock, e
}

// TestSeqScoreOlderRunner: a runner without llama.score (an older
// taobox-cuda) answers it as an op it does not serve: Score returns
// model.ErrScoreUnsupported, the Seq and the runner stay good (no fault,
// however often), and the runner is not asked again.
func TestSeqScoreOlderRunner(t *testing.T) {
	_, _, e := startFakeEngine(t, "no-score")
	ctx := context.Background()
	path, cpu := tinyModelFile(t)
	if _, err := e.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 50, 60, 70}
	for range maxSeqFaults + 2 {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq: the runner was retired")
		}
		if _, _, _, err := s.Score(ids, 1, nil, true, 0); !errors.Is(err, model.ErrScoreUnsupported) {
			t.Fatalf("score on an older runner: %v", err)
		}
		got, err := s.Forward(1, 0)
		want, _ := cpu.Forward(1, 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("forward after the unsupported score: %v", err)
		}
		s.End()
	}
	if st := e.Stats(); st.Failures != 0 || st.Restarts != 0 || !e.ModelOnGPU() {
		t.Fatalf("stats %+v, model up %v", st, e.ModelOnGPU())
	}
}

// TestSeqSampleOnRunner: llama.sample feeds tokens and draws the next one
// in the runner with the miner's sampler code, resumed at the caller's
// sampler state: a whole generation (greedy, sampled, top-k/top-p, with
// alternatives; the prompt in the first call) gives exactly what the same
// steps on the model's own logits give, and the caller's sampler advances
// as its Step would. Arguments the model cannot take are the runner's
// error response; a runner without the op (an older taobox-cuda) returns
// model.ErrSampleUnsupported and the Seq stays usable.
func TestSeqSampleOnRunner(t *testing.T) {
	_, _, e := startFakeEngine(t, "ok")
	ctx := context.Background()
	path, cpu := tinyModelFile(t)
	if _, err := e.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 50, 60, 70}
	for _, c := range []struct {
		smp  model.Sampler
		alts int
	}{
		{model.Sampler{}, 0},
		{model.Sampler{Temperature: 0.9, Seed: 7}, 3},
		{model.Sampler{Temperature: 1.3, TopK: 8, TopP: 0.8, Seed: 11}, 0},
		{model.Sampler{Temperature: 0.7, TopP: 0.5, Seed: 5}, 1},
		{model.Sampler{Temperature: 0.9, TopK: 1<<32 - 1, Seed: 9}, 0}, // any u32 a task body may carry
	} {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq")
		}
		var as model.AccelSampler = s
		got, want := c.smp, c.smp
		got.Reset()
		want.Reset()
		feed, pos := prompt, 0
		var logits []float32
		for k := range 10 {
			id, lp, alt, err := as.Sample(feed, pos, &got, c.alts, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, tok := range feed {
				logits, _ = cpu.Forward(tok, pos+i)
			}
			wid, wlp, walt := model.SampleFrom(logits, &want, c.alts, nil)
			if id != wid || lp != wlp || !reflect.DeepEqual(alt, walt) || got.Draws() != want.Draws() {
				t.Fatalf("%+v step %d: %d %v %v (%d draws), want %d %v %v (%d)", c.smp, k, id, lp, alt, got.Draws(), wid, wlp, walt, want.Draws())
			}
			pos += len(feed)
			feed = []int{id}
		}
		s.End()
	}
	for _, bad := range []struct {
		name   string
		tokens []int
		smp    model.Sampler
	}{
		{"token outside the vocabulary", []int{1 << 20}, model.Sampler{}},
		{"temperature below 0", []int{1}, model.Sampler{Temperature: -1}},
		{"past the context", make([]int, cpu.Config.SeqLen+1), model.Sampler{}},
	} {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq")
		}
		before := bad.smp
		if _, _, _, err := s.Sample(bad.tokens, 0, &bad.smp, 0, nil); err == nil || !e.ModelOnGPU() || bad.smp.Draws() != before.Draws() {
			t.Fatalf("%s: %v, model up %v", bad.name, err, e.ModelOnGPU())
		}
		s.End()
		if s = e.BeginSeq(ctx); s == nil { // a good sequence between faults
			t.Fatal("no Seq after a fault")
		}
		var smp model.Sampler
		if _, _, _, err := s.Sample(prompt, 0, &smp, 0, nil); err != nil {
			t.Fatal(err)
		}
		s.End()
	}

	_, _, old := startFakeEngine(t, "no-score")
	if _, err := old.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	for range maxSeqFaults + 2 {
		s := old.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq: the older runner was retired")
		}
		var smp model.Sampler
		if _, _, _, err := s.Sample(prompt, 0, &smp, 0, nil); !errors.Is(err, model.ErrSampleUnsupported) {
			t.Fatalf("sample on an older runner: %v", err)
		}
		if _, err := s.Forward(1, 0); err != nil {
			t.Fatalf("forward after the unsupported sample: %v", err)
		}
		s.End()
	}
	if st := old.Stats(); st.Failures != 0 || st.Restarts != 0 {
		t.Fatalf("older runner stats %+v", st)
	}
}

// TestSeqScoreOnRunner: llama.score, the validator's teacher-forced pass
// in one round trip, gives what the same pass over the model's forwards
// gives (model.ScoreForward: log-probs, counts ahead, spot
// distributions), with ranks and without; arguments the model cannot take
// are the runner's error response, a fault of the sequence, not of the
// runner.
func TestSeqScoreOnRunner(t *testing.T) {
	_, _, e := startFakeEngine(t, "ok")
	ctx := context.Background()
	path, cpu := tinyModelFile(t)
	if _, err := e.LoadModel(ctx, path, ""); err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 50, 60, 70, 80, 90, 100, 110}
	qs := []int{2, 6, 4}
	for _, ranks := range []bool{true, false} {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq")
		}
		var sc model.AccelScorer = s
		lps, ahead, dists, err := sc.Score(ids, 3, qs, ranks, 0.25)
		s.End()
		if err != nil {
			t.Fatal(err)
		}
		wd := make([][]float64, len(qs))
		for i := range wd {
			wd[i] = make([]float64, cpu.Config.VocabSize)
		}
		wl, wa, err := model.ScoreForward(cpu.Forward, ids, 3, qs, wd, ranks, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(lps, wl) || !reflect.DeepEqual(ahead, wa) || !reflect.DeepEqual(dists, wd) {
			t.Fatalf("ranks %v: the runner's score differs from the model's:\n%v %v\n%v %v", ranks, lps, ahead, wl, wa)
		}
		if len(lps) != len(ids)-3 || ranks != (ahead != nil) {
			t.Fatalf("ranks %v: %d log-probs, counts %v", ranks, len(lps), ahead)
		}
	}
	for _, bad := range []struct {
		ids  []int
		from int
		qs   []int
	}{
		{ids, 0, nil},                 // from must be ≥ 1
		{ids, 3, []int{len(ids) - 1}}, // a spot with no next token
		{[]int{1, 1 << 20}, 1, nil},   // outside the vocabulary
	} {
		s := e.BeginSeq(ctx)
		if s == nil {
			t.Fatal("no Seq")
		}
		if _, _, _, err := s.Score(bad.ids, bad.from, bad.qs, true, 0); err == nil || !e.ModelOnGPU() {
			t.Fatalf("score of %v from %d spots %v: %v, model up %v", bad.ids, bad.from, bad.qs, err, e.ModelOnGPU())
		}
		s.End()
		// A good sequence between faults (maxSeqFaults in a row retire
		// the runner).
		if s = e.BeginSeq(ctx); s == nil {
			t.Fatal("no Seq after a fault")
		}
		if _, _, _, err := s.Score(ids, 1, nil, false, 0); err != nil {
			t.Fatal(err)
		}
		s.End()
	}
}

// feedingLlama is cpuLlama with Feed (as gpu.Llama has it), counting its
// calls.
type feedingLlama struct {
	cpuLlama
	feeds *int
}

func (f feedingLlama) Feed(tokens []int, pos int) ([]float32, error) {
	*f.feeds++
	var logits []float32
	for i, t := range tokens {
		var err error
		if logits, err = f.m.Forward(t, pos+i); err != nil {
			return nil, err
		}
	}
	return logits, nil
}

// llama.sample feeds through the model's Feed when it has one (a prompt
// as one batched call on the GPU), with the same draws as token by token.
func TestSampleUsesFeeder(t *testing.T) {
	path, cpu := tinyModelFile(t)
	feeds := 0
	o := &LlamaOps{Open: func(p string) (LlamaModel, string, error) {
		m, err := model.LoadGGUF(p)
		if err != nil {
			return nil, "", err
		}
		return feedingLlama{cpuLlama{m}, &feeds}, "feeding", nil
	}}
	defer o.Close()
	h := o.Handlers()
	ctx := context.Background()
	if _, err := h[OpLlamaLoad](ctx, []byte(path), nil); err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 50, 60, 70}
	out, err := h[OpLlamaSample](ctx, EncodeSample(nil, SampleRequest{Tokens: prompt, Temperature: 0.9, Seed: 5, Alts: 2}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSampled(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logits []float32
	for i, tok := range prompt {
		logits, _ = cpu.Forward(tok, i)
	}
	s := model.Sampler{Temperature: 0.9, Seed: 5}
	s.Reset()
	id, lp, alt := model.SampleFrom(logits, &s, 2, nil)
	if feeds != 1 || got.ID != id || got.LogProb != lp || !reflect.DeepEqual(got.Alts, alt) || got.Draws != 1 {
		t.Fatalf("%d feeds; drew %+v, want %d %v %v", feeds, got, id, lp, alt)
	}
}

// Options.EpochsOp: yuma.epochs to a runner that serves yuma.packed too.
func TestEngineEpochsOp(t *testing.T) {
	opts := fakeOptions(t, "ok")
	opts.EpochsOp = true
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	checkBatches(t, e, 1, 6)
	if st := e.Stats(); st.RunnerBatches != 1 || st.PackedBatches != 0 || st.CPUBatches != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestTailWriterWarn: the runner's WarnPrefix lines reach the node's log
// once the hook is set, other lines only the tail.
func TestTailWriterWarn(t *testing.T) {
	w := &tailWriter{}
	var got []string
	fmt.Fprintf(w, "%searly\n", WarnPrefix) // during the self-test: tail only
	w.setWarn(func(s string) { got = append(got, s) })
	fmt.Fprintf(w, "ok   smoke/x (1ms)\n")
	fmt.Fprintf(w, "%sgpu: yuma: page-locking 8 bytes: CUDA error 800\nnext line\n%ssecond\n", WarnPrefix, WarnPrefix)
	if want := []string{"gpu: yuma: page-locking 8 bytes: CUDA error 800", "second"}; !slices.Equal(got, want) {
		t.Fatalf("warned %q, want %q", got, want)
	}
	if !strings.Contains(w.String(), "second") {
		t.Fatalf("tail %q lacks the last line", w.String())
	}
}
