package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"taobox/internal/obs"
	"taobox/wallet"
)

// waitHealthy asks base/healthz until it answers 200, for up to 30 s. A
// node is healthy with a head younger than 5 block times, a fraction of a
// second in these tests, which a loaded machine misses now and then.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := obsScrape(t, base+"/healthz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("healthz %d for 30 s", code)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// obsScrape GETs a URL of a metrics listener with a real HTTP client: the
// status and, for /metrics, the samples by series (obs.Scrape).
func obsScrape(t *testing.T, url string) (int, map[string]float64) {
	t.Helper()
	code, m, err := obs.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil {
		m = map[string]float64{}
	}
	return code, m
}

// jsonLogRecords reads a JSON log file: every line must be one JSON
// object.
func jsonLogRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var recs []map[string]any
	for line := range bytes.Lines(b) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break // being written
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// A live devnet with --metrics on a free port and JSON logs in a file: the
// log names the metrics address; one scrape serves the node, the miners
// and the validators (told apart by the neuron label) and their values
// move; /healthz is 200; Ctrl-C ends it cleanly.
func TestDevnetMetricsAndJSONLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a live devnet")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "devnet.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"devnet", "--block-time", "100ms", "--metrics", "127.0.0.1:0",
			"--log-level", "info", "--log-format", "json", "--log-file", logPath}, nil, &stdout, &stderr)
	}()
	// Every wait below ends when the devnet does (exit), or fails after 2 minutes.
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 2 minutes", what)
			}
			select {
			case code := <-done:
				t.Fatalf("devnet exited %d before %s; stderr %q", code, what, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	var base string
	wait("the metrics address is logged", func() bool {
		for _, r := range jsonLogRecords(t, logPath) {
			if r["msg"] == "metrics serving" {
				base = "http://" + r["addr"].(string)
				return true
			}
		}
		return false
	})
	var got map[string]float64
	served := `taobox_miner_tasks_served_total{neuron="frank/alice-miner1"}`
	// carol validates on alice's subnet, netuid 1 or 2: whichever owner's
	// registration the block proposer ordered first gets netuid 1.
	carol := ""
	sent := func() float64 {
		n := 0.0
		for s, v := range got {
			if strings.HasPrefix(s, `taobox_validator_tasks_sent_total{neuron="`+carol+`",uid=`) {
				n += v
			}
		}
		return n
	}
	wait("a validator round over the miners and a served task", func() bool {
		_, got = obsScrape(t, base+"/metrics")
		for s, v := range got {
			if strings.HasPrefix(s, `taobox_validator_rounds_total{neuron="carol/validator@`) && strings.HasSuffix(s, `,result="ok"}`) && v > 0 {
				carol = strings.TrimSuffix(strings.TrimPrefix(s, `taobox_validator_rounds_total{neuron="`), `",result="ok"}`)
			}
		}
		return got[served] > 0 && carol != "" && sent() >= 6 // at least one task to each of the 6 miners
	})
	if got["taobox_node_height"] < 1 || got["taobox_node_blocks_total"] < 1 || got["go_goroutines"] <= 0 {
		t.Errorf("node series: height %v, blocks %v", got["taobox_node_height"], got["taobox_node_blocks_total"])
	}
	if _, ok := got[`taobox_gpu_backend_info{backend="cpu"}`]; !ok {
		t.Errorf("no GPU backend info")
	}
	if pr := got[`taobox_validator_verification_pass_ratio{neuron="`+carol+`"}`]; pr <= 0 {
		t.Errorf("pass ratio of %s: %v", carol, pr)
	}
	waitHealthy(t, base)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("devnet exit %d, stderr %q", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("logs went to stderr despite --log-file: %q", stderr.String())
	}
	var blocks int
	for _, r := range jsonLogRecords(t, logPath) {
		if r["msg"] == "block" {
			blocks++
		}
	}
	if blocks == 0 {
		t.Error("no block records in the JSON log")
	}
}

func TestObsFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"devnet", "--log-format", "xml"}, "log-format"},
		{[]string{"devnet", "--log-level", "loud"}, "log-level"},
		{[]string{"devnet", "--log-max-size", "0"}, "log-max-size"},
		{[]string{"devnet", "--metrics", "no-port"}, "metrics"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr.String())
		}
	}
	// A taken port is no usage error: exit 1, and what to do.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"devnet", "--metrics", ln.Addr().String()}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "pick another with --metrics") {
		t.Errorf("a taken --metrics port: exit %d, stderr %q", code, stderr.String())
	}
}

// 'taobox node --metrics' serves the node's series and /healthz, and its
// height moves between scrapes; its text log goes to --log-file only.
func TestNodeMetricsCLI(t *testing.T) {
	dir := t.TempDir()
	w, err := wallet.Create(dir, "authority")
	if err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(dir, "genesis.json")
	if r := taobox(t, nil, "genesis", "--devnet", "--out", gen); r.code != 0 {
		t.Fatalf("genesis: exit %d, stderr %q", r.code, r.stderr)
	}
	logPath := filepath.Join(dir, "node.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"node", "--data", filepath.Join(dir, "chain"), "--genesis", gen,
			"--authority", w.ColdkeyPath(), "--block-time", "20ms", "--api", "127.0.0.1:0",
			"--metrics", "127.0.0.1:0", "--log-file", logPath, "--log-max-size", "1", "--log-keep", "2"}, nil, &stdout, &stderr)
	}()
	var base string
	for base == "" {
		select {
		case code := <-done:
			t.Fatalf("node exited %d; stderr %q", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		b, _ := os.ReadFile(logPath)
		for line := range strings.Lines(string(b)) {
			if _, rest, ok := strings.Cut(line, `msg="metrics serving" addr=`); ok {
				base = "http://" + strings.Fields(rest)[0]
			}
		}
	}
	_, first := obsScrape(t, base+"/metrics")
	for {
		_, got := obsScrape(t, base+"/metrics")
		if got["taobox_node_height"] > first["taobox_node_height"] && got["taobox_node_blocks_total"] > 0 {
			if got[`taobox_gpu_backend_info{backend="cpu"}`] != 1 || got["taobox_node_consensus_validators"] != 1 {
				t.Errorf("node series: %v", got)
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("node exited %d; stderr %q", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	waitHealthy(t, base)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("node exit %d, stderr %q", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("the node wrote to stderr despite --log-file: %q", stderr.String())
	}
}
