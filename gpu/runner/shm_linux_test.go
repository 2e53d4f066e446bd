package runner

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// mediumBatch: 8 subnets of the 128×256 batch's shape, about 1.1 MB out and
// 0.7 MB back, well above ShmThreshold both ways.
func mediumBatch() []yuma.Input {
	ins := make([]yuma.Input, 8)
	for i := range ins {
		ins[i] = gpuplan.AgedSynthetic(yuma.SynthConfig{N: 256, Validators: 64, Seed: uint64(i + 1), Yuma3: true, LiquidAlpha: true}, 1+i%2)
	}
	return ins
}

// shmPair is a parent's region and the runner's own mapping of the same
// memfd (through a duplicated descriptor, as fd 3 is in the runner).
func shmPair(t testing.TB, size int) (parent, child *Shm) {
	t.Helper()
	parent, err := CreateShm(size)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(parent.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	parent.CloseFile()
	child, err = OpenShm(fd, size)
	if err != nil {
		t.Fatal(err)
	}
	return parent, child
}

// serveShm serves s with the runner's mapping on a unix socket and returns
// a client that attached the parent's; both are unmapped after the test.
func serveShm(t testing.TB, s *Server, size int) *Client {
	t.Helper()
	parent, child := shmPair(t, size)
	s.Shm = child
	// Cleanups run last-in first-out: the mappings close after the server.
	t.Cleanup(func() { parent.Close(); child.Close() })
	c := serveInProcess(t, s)
	if err := c.AttachShm(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	return c
}

// The same batches over shared memory and over the socket: equal outputs,
// equal to the CPU engine's, and the big ones did cross in the region.
func TestShmEqualsSocket(t *testing.T) {
	ctx := context.Background()
	logits := make([]float32, TokenVocab)
	for i := range logits {
		logits[i] = float32(i) - 0.5
	}
	newServer := func() *Server {
		return &Server{Info: "shm test", Yuma: yuma.NewCPUEngine(0), Ops: map[Op]Handler{
			OpLlamaForward: func(_ context.Context, p, out []byte) ([]byte, error) {
				if _, _, err := DecodeForward(p); err != nil {
					return nil, err
				}
				return EncodeLogits(out, logits), nil
			},
		}}
	}
	viaShm := serveShm(t, newServer(), 64<<20)
	viaSocket := serveInProcess(t, newServer())
	big := mediumBatch()
	want := cpuOutputs(t, big)
	for round := range 3 { // the region is reused between calls
		for name, c := range map[string]*Client{"shm": viaShm, "socket": viaSocket} {
			got, err := c.Epochs(ctx, big)
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, name, err)
			}
			sameOutputs(t, got, want)
		}
	}
	// Small batches stay on the socket of the attached connection.
	small := gpuplan.RandomBatch(4, 3)
	got, err := viaShm.Epochs(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, cpuOutputs(t, small))
	// A response-only big payload: 128256 logits (513 KB) for 8 bytes.
	lg, err := viaShm.LlamaForward(ctx, 1, 2)
	if err != nil || !reflect.DeepEqual(lg, logits) {
		t.Fatalf("logits over shm: %d values, %v", len(lg), err)
	}
	if info, err := viaShm.Health(ctx); err != nil || info != "shm test" {
		t.Fatalf("health: %q, %v", info, err)
	}
	if req, resp := viaShm.ShmFrames(); req != 3 || resp != 4 {
		t.Fatalf("shm frames: %d requests, %d responses; want 3 and 4", req, resp)
	}
	if req, resp := viaSocket.ShmFrames(); req != 0 || resp != 0 {
		t.Fatalf("socket client used shm: %d, %d", req, resp)
	}
	// Outputs must not alias the region: the next call overwrites it.
	got, err = viaShm.Epochs(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viaShm.Epochs(ctx, gpuplan.RandomBatch(9, 12)); err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, got, want)
}

// One connection owns the region; a second stays on the socket, and a
// runner without a region, or with one of another size, refuses attach
// without breaking the connection.
func TestShmAttachRules(t *testing.T) {
	ctx := context.Background()
	s := &Server{Info: "x", Yuma: yuma.NewCPUEngine(1)}
	serveShm(t, s, 1<<20) // the first connection owns the region
	sock := filepath.Join(t.TempDir(), "more.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Serve(sctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	same, err := CreateShm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	other, err := CreateShm(2 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	plain := serveInProcess(t, &Server{Info: "plain", Yuma: yuma.NewCPUEngine(1)})
	for _, tc := range []struct {
		name string
		c    *Client
		shm  *Shm
		want string
	}{
		{"second connection", nil, same, "attached to another connection"},
		{"wrong size", nil, other, "shm.attach for a 2097152-byte region, this runner mapped 1048576"},
		{"runner without a region", plain, same, "no shared-memory region"},
	} {
		c := tc.c
		if c == nil {
			if c, err = Dial(ctx, sock); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		var re *RemoteError
		if err := c.AttachShm(ctx, tc.shm); !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want a RemoteError with %q", tc.name, err, tc.want)
		}
		if _, err := c.Epochs(ctx, gpuplan.RandomBatch(2, 2)); err != nil {
			t.Fatalf("%s: after a refused attach: %v", tc.name, err)
		}
		if req, resp := c.ShmFrames(); req != 0 || resp != 0 {
			t.Fatalf("%s: %d, %d frames in shm after a refused attach", tc.name, req, resp)
		}
	}
}

// connPair is two ends of a unix socket (net.Pipe blocks on an empty
// write, which WriteFrame does for an empty payload).
func connPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "pair.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, err = net.Dial("unix", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if b, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// rawExchange sends f on a fresh connection to s and returns the answer.
func rawExchange(t *testing.T, c net.Conn, f Frame) Frame {
	t.Helper()
	if err := WriteFrame(c, f); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A descriptor out of bounds, or one on a connection that did not attach,
// is refused with a clear error and ends the connection, on both sides.
func TestShmBadDescriptors(t *testing.T) {
	const size = 1 << 20
	parent, child := shmPair(t, size)
	defer parent.Close()
	defer child.Close()
	s := &Server{Info: "x", Yuma: yuma.NewCPUEngine(1), Shm: child}

	// Server side: no attach, then out of bounds after attaching.
	for _, tc := range []struct {
		name   string
		attach bool
		desc   []byte
		want   string
	}{
		{"before attach", false, shmRef(0, 10), "did not attach"},
		{"past the request half", true, shmRef(size/2-5, 10), "outside the request half"},
		{"overflow", true, shmRef(8, 1<<64-4), "outside the request half"},
	} {
		a, b := connPair(t)
		served := make(chan struct{})
		go func() { s.ServeConn(context.Background(), b); close(served) }()
		if tc.attach {
			if got := rawExchange(t, a, Frame{Kind: KindRequest, Op: OpShmAttach, ID: 1, Payload: encodeAttach(nil, size)}); got.Kind != KindResponse {
				t.Fatalf("%s: attach: %+v", tc.name, got)
			}
		}
		got := rawExchange(t, a, Frame{Kind: KindRequest, Op: OpYumaEpochs, ID: 2, Shm: true, Payload: tc.desc})
		if got.Kind != KindError || !strings.Contains(string(got.Payload), tc.want) {
			t.Fatalf("%s: %v %q, want an error with %q", tc.name, got.Kind, got.Payload, tc.want)
		}
		if _, err := ReadFrame(a, 0); err == nil {
			t.Fatalf("%s: connection still open", tc.name)
		}
		a.Close()
		<-served // the server is done with the region before it is unmapped
	}

	// Client side: a peer answering with a descriptor outside the
	// response half, and one answering in shm to a client without a region.
	for _, tc := range []struct {
		name   string
		attach bool
		desc   []byte
		want   string
	}{
		{"request half", true, shmRef(0, 10), "outside the response half"},
		{"past the end", true, shmRef(size-1, 2), "outside the response half"},
		{"no region", false, shmRef(size/2, 10), "without a region"},
	} {
		a, b := connPair(t)
		c := NewClient(a)
		if tc.attach {
			c.shm = parent
		}
		go func() {
			f, err := ReadFrame(b, 0)
			if err == nil {
				WriteFrame(b, Frame{Kind: KindResponse, Op: f.Op, ID: f.ID, Shm: true, Payload: tc.desc})
			}
		}()
		_, err := c.Epochs(context.Background(), gpuplan.RandomBatch(1, 1))
		if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want ErrBadFrame with %q", tc.name, err, tc.want)
		}
		if _, err := c.Health(context.Background()); !errors.Is(err, ErrBroken) {
			t.Fatalf("%s: after a bad descriptor: %v, want ErrBroken", tc.name, err)
		}
		b.Close()
	}
}

// The launcher's runner: a child process mapping the parent's memfd (fd 3),
// with a batch big enough to cross in the region both ways; and the same
// with shared memory off.
func TestEngineShmProcess(t *testing.T) {
	ins := mediumBatch()
	want := cpuOutputs(t, ins)
	for _, size := range []int{0, -1} {
		opts := fakeOptions(t, "ok")
		opts.ShmSize = size
		e, err := Start(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			got, err := e.Epochs(context.Background(), ins)
			if err != nil {
				t.Fatal(err)
			}
			sameOutputs(t, got, want)
		}
		e.mu.Lock()
		p := e.proc
		e.mu.Unlock()
		req, resp := p.client.ShmFrames()
		if size == 0 && (p.shm == nil || req != 2 || resp != 2) {
			t.Errorf("shm on: region %v, %d requests and %d responses in shm, want 2 and 2", p.shm != nil, req, resp)
		}
		if size < 0 && (p.shm != nil || req != 0 || resp != 0) {
			t.Errorf("shm off: region %v, %d and %d frames in shm", p.shm != nil, req, resp)
		}
		if st := e.Stats(); st.RunnerBatches != 2 || st.CPUBatches != 0 {
			t.Errorf("stats %+v", st)
		}
		e.Close()
	}
}
