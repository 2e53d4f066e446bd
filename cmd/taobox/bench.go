package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"taobox/model"
	"taobox/model/gguf"
)

var benchCommand = &command{
	name:    "bench",
	args:    benchAllArgs,
	summary: "measure this machine for this network: Yuma on CPU and GPU, model tokens/s, QUIC, disk",
	help: benchAllHelp + "\n\nThe subcommands below go deeper into one side: model files beside\n" +
		"llama.cpp, and the GPU's own figures.",
	setup: benchAllSetup,
}

var benchModelCommand = &command{
	name:    "bench model",
	args:    "--model FILE[,FILE…] [--threads 1,2] [--decode 128] [--prompt 64] [--reps 3] [--llama-bench PATH] [--json]",
	summary: "decode and prompt tokens per second of model files, beside llama.cpp's",
	help: "Loads each --model (GGUF or llama2.c; repeat the flag or give a comma list)\n" +
		"and, for each --threads count, times --reps runs of:\n" +
		"  decode: --decode tokens generated greedily from position 0, one forward\n" +
		"          pass each, the argmax fed back (model.Model.BenchDecode),\n" +
		"  prompt: --prompt fixed token ids through the batched prompt path from\n" +
		"          position 0 (model.Model.BenchPrompt), what generation's prefill does,\n" +
		"after one untimed warm-up run of each, reporting the mean tokens per second\n" +
		"over the runs (± their standard deviation), as llama-bench's tg and pp tests\n" +
		"do.\n\n" +
		"With --llama-bench PATH it first runs 'PATH -m FILE -t THREADS -p PROMPT\n" +
		"-n DECODE -r REPS -o json' on each GGUF file and prints llama.cpp's figures in\n" +
		"the same rows (\"-\" for files llama.cpp cannot read, such as llama2.c).\n\n" +
		"Memory (Linux): RSS is the growth of the process's resident memory\n" +
		"(VmRSS in /proc/self/status) from before loading the model to after its\n" +
		"runs (weights, run state and KV cache), each read after a garbage\n" +
		"collection, and ×FILE its ratio to the file size; HWM is the process's\n" +
		"peak resident memory (VmHWM) after that model's runs, which includes\n" +
		"transient copies made while loading and every model measured before.\n\n" +
		"Progress goes to stderr; the table (or with --json one object, {\"results\":\n" +
		"[...]}) to stdout at the end. Run it on a quiet machine. Example:\n\n" +
		"  taobox bench model --model s15M-f32.gguf,s15M-q8_0.gguf --threads 1,2 \\\n" +
		"    --llama-bench /tmp/llama.cpp/build/bin/llama-bench",
	setup: func(fs *flag.FlagSet) func(*env) error {
		var files listFlag
		fs.Var(&files, "model", "model `FILE`s (repeatable; or comma-separated)")
		threadsFlag := fs.String("threads", "1", "comma-separated thread `counts`")
		decode := fs.Int("decode", 128, "tokens generated per decode run")
		prompt := fs.Int("prompt", 64, "tokens fed per prompt run (0: no prompt test)")
		reps := fs.Int("reps", 3, "timed runs of each test")
		llamaBench := fs.String("llama-bench", "", "run llama.cpp's llama-bench at `PATH` on the same files")
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env) error {
			if len(files) == 0 {
				return &usageError{"--model", "required: at least one model file"}
			}
			threads, err := parseCounts("--threads", *threadsFlag)
			if err != nil {
				return err
			}
			switch {
			case *decode < 1:
				return &usageError{"--decode", fmt.Sprintf("%d must be ≥ 1", *decode)}
			case *prompt < 0:
				return &usageError{"--prompt", fmt.Sprintf("%d must be ≥ 0", *prompt)}
			case *reps < 1:
				return &usageError{"--reps", fmt.Sprintf("%d must be ≥ 1", *reps)}
			}
			// Check every file's header before any work, so that a bad
			// file or size fails at once with one line.
			configs := make([]model.Config, len(files))
			for i, f := range files {
				if configs[i], err = peekConfig(f); err != nil {
					return &usageError{"--model", err.Error()}
				}
			}
			for i, f := range files {
				c := configs[i]
				if *decode > c.SeqLen {
					return &usageError{"--decode", fmt.Sprintf("%d tokens exceed the context of %s (%d)", *decode, f, c.SeqLen)}
				}
				if *prompt > c.SeqLen {
					return &usageError{"--prompt", fmt.Sprintf("%d tokens exceed the context of %s (%d)", *prompt, f, c.SeqLen)}
				}
			}
			if *llamaBench != "" {
				if _, err := exec.LookPath(*llamaBench); err != nil {
					return &usageError{"--llama-bench", err.Error()}
				}
			}
			b := &bencher{e: e, threads: threads, decode: *decode, prompt: *prompt, reps: *reps, llamaBench: *llamaBench}
			b.logLoad()
			var results []benchResult
			for _, f := range files {
				rs, err := b.model(f)
				if err != nil {
					return err
				}
				results = append(results, rs...)
			}
			b.logLoad()
			var out bytes.Buffer
			if *asJSON {
				if err := writeJSONLine(&out, struct {
					Decode  int           `json:"decode"`
					Prompt  int           `json:"prompt"`
					Reps    int           `json:"reps"`
					CPUs    int           `json:"cpus"`
					Results []benchResult `json:"results"`
				}{*decode, *prompt, *reps, runtime.NumCPU(), results}); err != nil {
					return err
				}
			} else {
				writeBenchTable(&out, results)
			}
			_, err = e.stdout.Write(out.Bytes())
			return err
		}
	},
}

// listFlag collects a repeatable flag whose values may also be
// comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// parseCounts parses a comma-separated list of positive integers.
func parseCounts(field, s string) ([]int, error) {
	var out []int
	for i, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, &usageError{field, fmt.Sprintf("element %d, %q, is not a positive count", i, p)}
		}
		out = append(out, v)
	}
	return out, nil
}

// benchResult is one row: one model file at one thread count. Rates are
// tokens per second; the llama.cpp ones are absent when not measured.
type benchResult struct {
	Model          string   `json:"model"`
	Type           string   `json:"type"`
	FileBytes      int64    `json:"file_bytes"`
	Threads        int      `json:"threads"`
	DecodeTPS      float64  `json:"decode_tps"`
	DecodeSD       float64  `json:"decode_sd"`
	PromptTPS      float64  `json:"prompt_tps,omitempty"`
	PromptSD       float64  `json:"prompt_sd,omitempty"`
	LlamaDecodeTPS *float64 `json:"llama_decode_tps,omitempty"`
	LlamaDecodeSD  *float64 `json:"llama_decode_sd,omitempty"`
	LlamaPromptTPS *float64 `json:"llama_prompt_tps,omitempty"`
	LlamaPromptSD  *float64 `json:"llama_prompt_sd,omitempty"`
	RSSBytes       int64    `json:"rss_delta_bytes"` // 0 where /proc is absent
	HWMBytes       int64    `json:"hwm_bytes"`
}

type bencher struct {
	e                    *env
	threads              []int
	decode, prompt, reps int
	llamaBench           string
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.e.stderr, "bench: "+format+"\n", args...)
}

// logLoad reports the load average (Linux), to judge how quiet the machine
// was.
func (b *bencher) logLoad() {
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.logf("load average %s", strings.Join(strings.Fields(string(l))[:3], " "))
	}
}

// model measures one file at every thread count.
func (b *bencher) model(path string) ([]benchResult, error) {
	name := filepath.Base(path)
	var llama map[[2]int][2]float64 // (threads, 0 = decode / 1 = prompt) → tok/s mean, sd
	isGGUF := fileHasPrefix(path, "GGUF")
	if b.llamaBench != "" && isGGUF {
		b.logf("%s: running %s", name, filepath.Base(b.llamaBench))
		var err error
		if llama, err = b.runLlamaBench(path); err != nil {
			return nil, err
		}
	}

	rss0, _ := settledMemory()
	start := time.Now()
	mf, err := loadModelFile("--model", path)
	if err != nil {
		return nil, err
	}
	m := mf.m
	b.logf("%s: loaded in %.1f s (%s, %.1f MiB file)", name, time.Since(start).Seconds(), mf.quant, float64(mf.size)/(1<<20))

	var rows []benchResult
	for _, t := range b.threads {
		m.SetThreads(t)
		// Warm-up: caches, page faults, helper goroutines.
		if _, err := m.BenchDecode(b.decode); err != nil {
			return nil, err
		}
		if b.prompt > 0 {
			if _, err := m.BenchPrompt(b.prompt); err != nil {
				return nil, err
			}
		}
		r := benchResult{Model: name, Type: mf.quant, FileBytes: mf.size, Threads: t}
		var dec, pp []float64
		for rep := 0; rep < b.reps; rep++ {
			if err := b.e.ctx.Err(); err != nil {
				return nil, err
			}
			d, err := m.BenchDecode(b.decode)
			if err != nil {
				return nil, err
			}
			dec = append(dec, d)
			if b.prompt > 0 {
				p, err := m.BenchPrompt(b.prompt)
				if err != nil {
					return nil, err
				}
				pp = append(pp, p)
			}
		}
		r.DecodeTPS, r.DecodeSD = meanSD(dec)
		r.PromptTPS, r.PromptSD = meanSD(pp)
		if v, ok := llama[[2]int{t, 0}]; ok {
			r.LlamaDecodeTPS, r.LlamaDecodeSD = &v[0], &v[1]
		}
		if v, ok := llama[[2]int{t, 1}]; ok {
			r.LlamaPromptTPS, r.LlamaPromptSD = &v[0], &v[1]
		}
		b.logf("%s: %d thread(s): decode %.1f tok/s, prompt %.1f tok/s", name, t, r.DecodeTPS, r.PromptTPS)
		rows = append(rows, r)
	}
	// Resident memory with the model loaded and used: weights, run state
	// and KV cache, after a collection.
	rss1, hwm := settledMemory()
	for i := range rows {
		rows[i].RSSBytes, rows[i].HWMBytes = max(rss1-rss0, 0), hwm
	}
	b.logf("%s: resident +%.1f MiB (%.2f × the file), peak %.1f MiB", name, float64(rss1-rss0)/(1<<20), float64(rss1-rss0)/float64(mf.size), float64(hwm)/(1<<20))
	m.SetThreads(1) // stop the helpers
	runtime.KeepAlive(m)
	runtime.KeepAlive(mf)
	return rows, nil
}

// runLlamaBench runs llama-bench on path and returns its mean rates and
// their standard deviations by (threads, test): test 0 is tg (decode), 1 is
// pp (prompt).
func (b *bencher) runLlamaBench(path string) (map[[2]int][2]float64, error) {
	ts := make([]string, len(b.threads))
	for i, t := range b.threads {
		ts[i] = strconv.Itoa(t)
	}
	args := []string{"-m", path, "-t", strings.Join(ts, ","), "-n", strconv.Itoa(b.decode), "-r", strconv.Itoa(b.reps), "-o", "json"}
	args = append(args, "-p", strconv.Itoa(b.prompt))
	cmd := exec.CommandContext(b.e.ctx, b.llamaBench, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("llama-bench on %s: %v: %s", path, err, lastLine(stderr.String()))
	}
	var rows []struct {
		NThreads int     `json:"n_threads"`
		NPrompt  int     `json:"n_prompt"`
		NGen     int     `json:"n_gen"`
		AvgTS    float64 `json:"avg_ts"`
		StdTS    float64 `json:"stddev_ts"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		return nil, fmt.Errorf("llama-bench on %s: reading its JSON output: %v", path, err)
	}
	out := map[[2]int][2]float64{}
	for _, r := range rows {
		switch {
		case r.NGen > 0 && r.NPrompt == 0:
			out[[2]int{r.NThreads, 0}] = [2]float64{r.AvgTS, r.StdTS}
		case r.NPrompt > 0 && r.NGen == 0:
			out[[2]int{r.NThreads, 1}] = [2]float64{r.AvgTS, r.StdTS}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("llama-bench on %s: no pp or tg results in its output", path)
	}
	return out, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "(no message)"
	}
	return s
}

// peekConfig reads the hyper-parameters of a GGUF file or a llama2.c
// checkpoint without loading its weights.
func peekConfig(path string) (model.Config, error) {
	if fileHasPrefix(path, "GGUF") {
		f, err := gguf.Open(path)
		if err != nil {
			return model.Config{}, err
		}
		defer f.Close()
		c, err := model.GGUFConfig(f)
		if err != nil {
			return model.Config{}, fmt.Errorf("%s: %w", path, err)
		}
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return model.Config{}, err
	}
	defer f.Close()
	head := make([]byte, 7*4)
	if _, err := io.ReadFull(f, head); err != nil {
		return model.Config{}, fmt.Errorf("%s: not a GGUF file or llama2.c checkpoint: %v", path, err)
	}
	c, _, err := model.ParseLlama2CConfig(head)
	if err != nil {
		return model.Config{}, fmt.Errorf("%s: not a GGUF file or llama2.c checkpoint: %w", path, err)
	}
	return c, nil
}

func fileHasPrefix(path, prefix string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(prefix))
	n, _ := f.Read(buf)
	return string(buf[:n]) == prefix
}

func meanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// settledMemory collects garbage, returns freed memory to the OS and
// reports procMemory.
func settledMemory() (rss, hwm int64) {
	runtime.GC()
	debug.FreeOSMemory()
	return procMemory()
}

// procMemory reads VmRSS and VmHWM (bytes) from /proc/self/status; zeros
// where it is absent.
func procMemory() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

func writeBenchTable(w *bytes.Buffer, rows []benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tTYPE\tMiB\tTHREADS\tDECODE tok/s\tPROMPT tok/s\tLLAMA.CPP DECODE\tLLAMA.CPP PROMPT\tRSS MiB\t×FILE\tHWM MiB")
	opt := func(p, sd *float64) string {
		if p == nil || sd == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f ± %.1f", *p, *sd)
	}
	mib := func(n int64) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(n)/(1<<20))
	}
	for _, r := range rows {
		ratio := "-"
		if r.RSSBytes > 0 && r.FileBytes > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.RSSBytes)/float64(r.FileBytes))
		}
		prompt := "-"
		if r.PromptTPS > 0 {
			prompt = fmt.Sprintf("%.1f ± %.1f", r.PromptTPS, r.PromptSD)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%.1f ± %.1f\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Model, r.Type, float64(r.FileBytes)/(1<<20), r.Threads, r.DecodeTPS, r.DecodeSD, prompt,
			opt(r.LlamaDecodeTPS, r.LlamaDecodeSD), opt(r.LlamaPromptTPS, r.LlamaPromptSD), mib(r.RSSBytes), ratio, mib(r.HWMBytes))
	}
	tw.Flush()
}
