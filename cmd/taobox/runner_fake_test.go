package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The devnet with --backend cuda on the fakerunner build (runner_fake.go:
// a runner process with CPU engines whose logits differ from the CPU
// model's by a relative 1e-5): the honest miners answer through the
// runner, one validator per subnet re-scores there and the other on the
// CPU, both pass them, and the outcome holds. Mid-run the test kills the runner with SIGKILL: the
// engine logs one failure, answers go on on the CPU (an answer cut
// mid-way finishes there), and the restarted runner loads the model again.
func TestDevnetOnGPURunner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a second binary and runs a live devnet")
	}
	bin := filepath.Join(t.TempDir(), "taobox")
	build := exec.Command("go", "build", "-tags", "fakerunner", "-ldflags", "-X main.version="+testVersion, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags fakerunner: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "devnet", "--cast", "live", "--epochs", "4", "--block-time", "250ms", "--json",
		"--backend", "cuda", "--log-level", "info")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs []string
	killed := make(chan int, 1)
	pidRE := regexp.MustCompile(`GPU runner up.* pid (\d+)`)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(errPipe)
		pid := 0
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			logs = append(logs, line)
			mu.Unlock()
			if m := pidRE.FindStringSubmatch(line); m != nil && pid == 0 {
				pid, _ = strconv.Atoi(m[1])
			}
			if strings.Contains(line, "model loaded on the GPU runner") && pid != 0 {
				go func(pid int) {
					time.Sleep(time.Second) // the miners are answering by now
					syscall.Kill(pid, syscall.SIGKILL)
					killed <- pid
				}(pid)
				pid = -1
			}
		}
	}()
	werr := cmd.Wait()
	<-scanned
	all := strings.Join(logs, "\n")
	if werr != nil {
		t.Fatalf("devnet: %v\n%s", werr, all)
	}
	select {
	case pid := <-killed:
		t.Logf("killed the runner, pid %d", pid)
	default:
		t.Fatalf("the runner was never up with the model:\n%s", all)
	}
	var s devSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("devnet --json printed %q: %v", stdout.String(), err)
	}
	checkIncentive(t, &s)
	count := func(sub string) int { return strings.Count(all, sub) }
	if count("GPU runner failed") != 1 || count("GPU runner restarted") != 1 {
		t.Errorf("want one failure and one restart:\n%s", all)
	}
	stop := regexp.MustCompile(`GPU runner stopped.* gpu_forwards=(\d+) model_loads=(\d+)`).FindStringSubmatch(all)
	if stop == nil {
		t.Fatalf("no stop line:\n%s", all)
	}
	if fw, _ := strconv.Atoi(stop[1]); fw == 0 || stop[2] != "2" {
		t.Errorf("%s forwards on the runners, %s model loads; want some, and 2:\n%s", stop[1], stop[2], all)
	}
	for _, l := range logs {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("error logged: %s", l)
		}
	}
	// The last validator of each subnet verified on the runner.
	verified := regexp.MustCompile(`msg="verified on the GPU runner".* passes=(\d+)`).FindAllStringSubmatch(all, -1)
	if len(verified) != 2 {
		t.Errorf("%d validators verified on the runner, want one per subnet:\n%s", len(verified), all)
	}
	for _, v := range verified {
		if n, _ := strconv.Atoi(v[1]); n == 0 {
			t.Errorf("a validator with the runner verified nothing there: %s", v[0])
		}
	}
	t.Logf("runner: %s forwards, %d answers finished on the CPU after the kill; %d validators verified there", stop[1], count("the accelerator failed mid-answer"), len(verified))
}
