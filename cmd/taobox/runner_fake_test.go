package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The devnet with --backend cuda on the fakerunner build (runner_fake.go:
// a runner process with CPU engines whose logits differ from the CPU
// model's by a relative 1e-5): the honest miners answer through the
// runner, one validator per subnet re-scores there and the other on the
// CPU, both pass them, and the outcome holds. The first runner exits at
// its 1,500th forward, in the middle of an answer or a verification pass:
// the engine logs one failure, that answer or pass finishes on the CPU,
// and the restarted runner loads the model again.
func TestDevnetOnGPURunner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a second binary and runs a live devnet")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "taobox")
	build := exec.Command("go", "build", "-tags", "fakerunner", "-ldflags", "-X main.version="+testVersion, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags fakerunner: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "devnet", "--cast", "live", "--epochs", "4", "--block-time", "250ms", "--json",
		"--backend", "cuda", "--log-level", "info")
	cmd.Env = append(os.Environ(), "TAOBOX_FAKERUNNER_CRASH_AT=1500", "TAOBOX_FAKERUNNER_CRASHED="+filepath.Join(dir, "crashed"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	all := stderr.String()
	if err != nil {
		t.Fatalf("devnet: %v\n%s", err, all)
	}
	var s devSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("devnet --json printed %q: %v", stdout.String(), err)
	}
	checkIncentive(t, &s)
	count := func(sub string) int { return strings.Count(all, sub) }
	if count("GPU runner failed") != 1 || count("GPU runner restarted") != 1 || count("simulated crash") != 1 {
		t.Errorf("want one crash, one failure and one restart:\n%s", all)
	}
	stop := regexp.MustCompile(`GPU runner stopped" gpu_batches=(\d+) packed_batches=(\d+) .* gpu_forwards=(\d+) model_loads=(\d+)`).FindStringSubmatch(all)
	if stop == nil {
		t.Fatalf("no stop line:\n%s", all)
	}
	// The chain's Yuma batches went to the runner packed here (yuma.packed).
	if stop[1] == "0" || stop[2] != stop[1] {
		t.Errorf("%s Yuma batches on the runner, %s of them packed by the node; want some, all packed:\n%s", stop[1], stop[2], all)
	}
	stop = append(stop[:1], stop[3:]...)
	if fw, _ := strconv.Atoi(stop[1]); fw < 1500 || stop[2] != "2" {
		t.Errorf("%s forwards on the runners, %s model loads; want at least 1,500 (the crash comes at the first runner's 1,500th), and 2:\n%s", stop[1], stop[2], all)
	}
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("error logged: %s", l)
		}
	}
	// The last validator of each subnet verified on the runner.
	verified := regexp.MustCompile(`msg="verified on the GPU runner".* passes=(\d+) cpu_fallbacks=(\d+)`).FindAllStringSubmatch(all, -1)
	if len(verified) != 2 {
		t.Errorf("%d validators verified on the runner, want one per subnet:\n%s", len(verified), all)
	}
	fallbacks := 0
	for _, v := range verified {
		if n, _ := strconv.Atoi(v[1]); n == 0 {
			t.Errorf("a validator with the runner verified nothing there: %s", v[0])
		}
		n, _ := strconv.Atoi(v[2])
		fallbacks += n
	}
	// The crash came in the middle of a sequence: an answer finished on
	// the CPU, or a verification pass ran again there.
	failovers := count("the accelerator failed") // mid-answer, or a greedy answer in one call
	if failovers+fallbacks != 1 {
		t.Errorf("%d answers and %d verification passes moved to the CPU at the crash, want 1 in all:\n%s", failovers, fallbacks, all)
	}
	t.Logf("runner: %s forwards; at the crash %d answer and %d verification pass moved to the CPU", stop[1], failovers, fallbacks)
}
