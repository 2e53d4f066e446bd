package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/model"
)

// The fake runner: the test binary re-executed as `runner --socket PATH`
// with TAOBOX_FAKE_RUNNER set to a comma list of modes; the nth start uses
// the nth mode (the last one repeats), counted in the file
// TAOBOX_FAKE_RUNNER_STATE. It serves Yuma with the CPU engine, so the
// launcher's whole path (process, socket, protocol, fallback) runs without
// a GPU. Modes:
//
//	ok             serve
//	selftest-fail  print a selftest failure to stderr, exit 1
//	crash          exit(3) on the first Yuma request (yuma.epochs or yuma.packed), mid-batch
//	hang           never answer a Yuma request
//	garbage        answer Yuma requests with bytes that do not decode
//	bad-bonds      answer yuma.packed with a bond total that contradicts the entries sent
//	no-packed      an older runner: yuma.epochs only
//	slow-start     never become ready
//	llama-crash    exit(3) on the 5th llama.forward request
//	load-crash     exit(3) on llama.load
//
// Every mode serves the llama ops (LlamaOps) with the CPU model.
func TestMain(m *testing.M) {
	if os.Getenv("TAOBOX_FAKE_PARENT") != "" {
		os.Exit(fakeParent())
	}
	if modes := os.Getenv("TAOBOX_FAKE_RUNNER"); modes != "" {
		os.Exit(fakeRunner(modes))
	}
	os.Exit(m.Run())
}

func fakeRunner(modes string) int {
	var socket string
	shmFD, shmSize := -1, 0
	for i, a := range os.Args {
		if i+1 >= len(os.Args) {
			break
		}
		switch a {
		case "--socket":
			socket = os.Args[i+1]
		case "--shm-fd":
			shmFD, _ = strconv.Atoi(os.Args[i+1])
		case "--shm-size":
			shmSize, _ = strconv.Atoi(os.Args[i+1])
		}
	}
	if len(os.Args) < 2 || os.Args[1] != "runner" || socket == "" {
		fmt.Fprintln(os.Stderr, "fake runner: want runner --socket PATH, got", os.Args[1:])
		return 2
	}
	list := strings.Split(modes, ",")
	n := 0
	if st := os.Getenv("TAOBOX_FAKE_RUNNER_STATE"); st != "" {
		b, _ := os.ReadFile(st)
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		os.WriteFile(st, []byte(strconv.Itoa(n+1)), 0o600)
	}
	mode := list[min(n, len(list)-1)]
	fmt.Fprintf(os.Stderr, "fake runner start %d: %s\n", n, mode)
	cpu := yuma.NewCPUEngine(0)
	s := &Server{Info: "fake runner (CPU engine), mode " + mode, Yuma: cpu, YumaPacked: GoKernels{}}
	yumaOps := func(h Handler) map[Op]Handler { return map[Op]Handler{OpYumaEpochs: h, OpYumaPacked: h} }
	lm := &LlamaOps{Open: func(path string) (LlamaModel, string, error) {
		m, err := model.LoadGGUF(path)
		if err != nil {
			return nil, "", err
		}
		return cpuLlama{m}, fmt.Sprintf("%s on the CPU (fake runner)", path), nil
	}}
	defer lm.Close()
	s.Ops = lm.Handlers()
	if shmFD >= 0 {
		shm, err := OpenShm(shmFD, shmSize)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake runner:", err)
			return 1
		}
		defer shm.Close()
		s.Shm = shm
	}
	switch mode {
	case "ok":
	case "no-score": // an older runner, without llama.score (nor llama.sample)
		delete(s.Ops, OpLlamaScore)
		delete(s.Ops, OpLlamaSample)
	case "selftest-fail":
		fmt.Fprintln(os.Stderr, "FAIL yuma/epochs (12ms): 3 of 200 epochs differ from the CPU engine")
		return 1
	case "slow-start":
		select {}
	case "llama-crash":
		forward, n := s.Ops[OpLlamaForward], 0
		s.Ops[OpLlamaForward] = func(ctx context.Context, p, out []byte) ([]byte, error) {
			if n++; n == 5 {
				fmt.Fprintln(os.Stderr, "fake runner: CUDA_ERROR_LAUNCH_FAILED (simulated)")
				os.Exit(3)
			}
			return forward(ctx, p, out)
		}
	case "load-crash":
		s.Ops[OpLlamaLoad] = func(context.Context, []byte, []byte) ([]byte, error) {
			fmt.Fprintln(os.Stderr, "fake runner: out of memory loading the model (simulated)")
			os.Exit(3)
			return nil, nil
		}
	case "slow-load": // a model load that holds the connection for 600 ms
		load := s.Ops[OpLlamaLoad]
		s.Ops[OpLlamaLoad] = func(ctx context.Context, p, out []byte) ([]byte, error) {
			time.Sleep(600 * time.Millisecond)
			return load(ctx, p, out)
		}
	case "slow": // Yuma batches and model loads take 300 ms
		slow := func(h Handler) Handler {
			return func(ctx context.Context, p, out []byte) ([]byte, error) {
				time.Sleep(300 * time.Millisecond)
				return h(ctx, p, out)
			}
		}
		s.Ops[OpLlamaLoad] = slow(s.Ops[OpLlamaLoad])
		s.Ops[OpYumaPacked], s.Ops[OpYumaEpochs] = slow(s.yumaPacked), slow(s.yumaEpochs)
	case "grandchild": // a child that keeps the runner's stderr open
		cmd := exec.Command("sleep", "20")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fake runner:", err)
			return 1
		}
		if st := os.Getenv("TAOBOX_FAKE_RUNNER_STATE"); st != "" {
			os.WriteFile(st+".grandchild", []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		}
	case "load-refuse": // a GPU without the memory for the model
		s.Ops[OpLlamaLoad] = func(context.Context, []byte, []byte) ([]byte, error) {
			return nil, errors.New("out of GPU memory loading the model (simulated)")
		}
	case "no-packed":
		s.YumaPacked = nil
	case "bad-bonds":
		s.YumaPacked = badBonds{}
	case "crash":
		s.Ops = yumaOps(func(context.Context, []byte, []byte) ([]byte, error) {
			fmt.Fprintln(os.Stderr, "fake runner: CUDA_ERROR_ILLEGAL_ADDRESS (simulated)")
			os.Exit(3)
			return nil, nil
		})
	case "hang":
		s.Ops = yumaOps(func(ctx context.Context, _, _ []byte) ([]byte, error) {
			<-ctx.Done()
			select {}
		})
	case "garbage":
		s.Ops = yumaOps(func(context.Context, []byte, []byte) ([]byte, error) {
			return []byte{1, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}, nil
		})
	default:
		fmt.Fprintln(os.Stderr, "fake runner: unknown mode", mode)
		return 2
	}
	if err := ServeProcess(context.Background(), socket, s, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fake runner:", err)
		return 1
	}
	return 0
}

// badBonds answers yuma.packed with a well-formed response whose bond
// total (the prefix's last word) is one more than the entries it carries:
// the parent's SetOutputs must refuse it.
type badBonds struct{}

func (badBonds) RunPacked(ctx context.Context, l *gpuplan.Layout, arena, out []byte) ([]byte, error) {
	start := len(out)
	out, err := GoKernels{}.RunPacked(ctx, l, arena, out)
	if err != nil {
		return nil, err
	}
	total := out[start+8+int(l.OutWords-1)*8:]
	binary.NativeEndian.PutUint64(total, binary.NativeEndian.Uint64(total)+1)
	return out, nil
}

// cpuLlama serves the llama ops with the CPU model.
type cpuLlama struct{ m *model.Model }

func (c cpuLlama) Forward(token, pos int) ([]float32, error) { return c.m.Forward(token, pos) }
func (c cpuLlama) Close() error                              { return c.m.Close() }
func (c cpuLlama) Config() model.Config                      { return c.m.Config }

func (c cpuLlama) Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	return ScoreByForward(c, ids, from, qs, ranks, margin)
}

func (c cpuLlama) Generate(prompt []int, n int) ([]int, []float64, error) {
	var logits []float32
	var err error
	for i, t := range prompt {
		if logits, err = c.m.Forward(t, i); err != nil {
			return nil, nil, err
		}
	}
	toks, lps := make([]int, 0, n), make([]float64, 0, n)
	for pos := len(prompt); len(toks) < n; pos++ {
		next := model.Argmax(logits)
		lp := model.LogProb(logits, next)
		toks, lps = append(toks, next), append(lps, lp)
		if len(toks) < n {
			if logits, err = c.m.Forward(next, pos); err != nil {
				return nil, nil, err
			}
		}
	}
	return toks, lps, nil
}

// fakeParent starts the engine with a fake runner, checks that it attached
// the shared region, prints the runner's pid and waits to be killed
// (TestRunnerDiesWithParent).
func fakeParent() int {
	exe, _ := os.Executable()
	e, err := Start(context.Background(), Options{Backend: BackendCUDA, Env: []string{"TAOBOX_FAKE_PARENT=", "TAOBOX_FAKE_RUNNER=ok"},
		Detect: func() (GPU, error) { return GPU{Binary: exe}, nil }})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	e.mu.Lock()
	shm := e.proc.shm
	e.mu.Unlock()
	if shm == nil {
		fmt.Println("error: the runner did not attach the shared region")
		return 1
	}
	fmt.Println(e.RunnerPID())
	select {}
}

// fakeOptions are Options that start the fake runner with modes.
func fakeOptions(t testing.TB, modes string) Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir() + "/starts"
	return Options{
		Backend: BackendCUDA,
		Env:     []string{"TAOBOX_FAKE_RUNNER=" + modes, "TAOBOX_FAKE_RUNNER_STATE=" + state},
		Detect:  func() (GPU, error) { return GPU{Devices: []string{"/dev/nvidia0"}, Library: "fake", Binary: exe}, nil },
	}
}
