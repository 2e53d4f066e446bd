package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"taobox/chain/yuma"
	"taobox/model"
)

// Boundary is what the process boundary costs, measured by MeasureBoundary.
type Boundary struct {
	Transport     string  `json:"transport"` // "socket", or "shm" (payloads in a shared region)
	Subnets       int     `json:"subnets"`
	UIDs          int     `json:"uids"` // of the first subnet
	RequestBytes  int     `json:"request_bytes"`
	ResponseBytes int     `json:"response_bytes"`
	BatchMs       float64 `json:"batch_ms"`         // encode + socket + decode, both ways, per batch (wall)
	BatchCPUMs    float64 `json:"batch_cpu_ms"`     // the CPU time that takes (client and server): robust on a busy machine
	SmallUs       float64 `json:"small_request_us"` // a health round trip: the floor per request
	TokenUs       float64 `json:"token_us"`         // a llama.forward round trip returning TokenVocab logits
	TokenVocab    int     `json:"token_vocab"`
	SampleUs      float64 `json:"sample_token_us"` // a llama.sample round trip: the drawn token and two alternatives back
}

// TokenVocab is the vocabulary MeasureBoundary's token round trip returns
// logits for: Llama 3's, 128256.
const TokenVocab = 128256

func (b Boundary) String() string {
	return fmt.Sprintf("%s: %d×%d Yuma batch %.2f ms wall, %.2f ms CPU (%.1f MB out, %.1f MB back); small request %.0f µs; decode token (%d logits) %.0f µs, drawn in the runner %.0f µs",
		b.Transport, b.Subnets, b.UIDs, b.BatchMs, b.BatchCPUMs, float64(b.RequestBytes)/1e6, float64(b.ResponseBytes)/1e6, b.SmallUs, b.TokenVocab, b.TokenUs, b.SampleUs)
}

// replayEngine returns fixed outputs: behind a server it makes a round
// trip cost only the boundary.
type replayEngine struct{ outs []yuma.Output }

func (r replayEngine) Epochs(context.Context, []yuma.Input) ([]yuma.Output, error) {
	return r.outs, nil
}

// MeasureBoundary times iters round trips of ins through a Server on a unix
// socket (in this process) whose engine returns precomputed outputs, so the
// time is the protocol's alone: encoding, the socket both ways, decoding.
func MeasureBoundary(ins []yuma.Input, iters int) (Boundary, error) {
	return measureBoundary(ins, iters, false)
}

// MeasureBoundaryShm is MeasureBoundary with the payloads in a shared
// region (DefaultShmSize, attached as the launcher does): what the
// launcher's runners use on Linux.
func MeasureBoundaryShm(ins []yuma.Input, iters int) (Boundary, error) {
	return measureBoundary(ins, iters, true)
}

func measureBoundary(ins []yuma.Input, iters int, useShm bool) (Boundary, error) {
	b := Boundary{Subnets: len(ins), Transport: "socket"}
	if len(ins) > 0 {
		b.UIDs = ins[0].N
	}
	outs, err := yuma.NewCPUEngine(0).Epochs(context.Background(), ins)
	if err != nil {
		return b, err
	}
	b.RequestBytes = len(EncodeInputs(nil, ins))
	b.ResponseBytes = len(EncodeOutputs(nil, outs))
	dir, err := os.MkdirTemp("", "taobox-boundary-")
	if err != nil {
		return b, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "b.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return b, err
	}
	var shm *Shm
	if useShm {
		if shm, err = CreateShm(DefaultShmSize); err != nil {
			ln.Close()
			return b, err
		}
		b.Transport = "shm"
		// After the server and the client are done with it.
		defer shm.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		logits := make([]float32, TokenVocab)
		for i := range logits {
			logits[i] = float32(i) / TokenVocab
		}
		fwd := func(_ context.Context, p, out []byte) ([]byte, error) {
			if _, _, err := DecodeForward(p); err != nil {
				return nil, err
			}
			return EncodeLogits(out, logits), nil
		}
		drawn := Sampled{ID: 7, LogProb: -0.5, Draws: 1, Alts: []model.Alt{{ID: 7, LogProb: -0.5}, {ID: 9, LogProb: -1.5}}}
		smp := func(_ context.Context, p, out []byte) ([]byte, error) {
			if _, err := DecodeSample(p); err != nil {
				return nil, err
			}
			return EncodeSampled(out, drawn), nil
		}
		(&Server{Info: "boundary", Yuma: replayEngine{outs}, Ops: map[Op]Handler{OpLlamaForward: fwd, OpLlamaSample: smp}, Shm: shm}).Serve(ctx, ln)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	c, err := Dial(ctx, sock)
	if err != nil {
		return b, err
	}
	defer c.Close()
	if shm != nil {
		if err := c.AttachShm(ctx, shm); err != nil {
			return b, err
		}
	}
	if _, err := c.Epochs(ctx, ins); err != nil { // warm-up
		return b, err
	}
	iters = max(iters, 1)
	start, cpu0 := time.Now(), cpuTime()
	for range iters {
		if _, err := c.Epochs(ctx, ins); err != nil {
			return b, err
		}
	}
	b.BatchMs = time.Since(start).Seconds() * 1000 / float64(iters)
	b.BatchCPUMs = (cpuTime() - cpu0).Seconds() * 1000 / float64(iters)
	const small = 2000
	start = time.Now()
	for range small {
		if _, err := c.Health(ctx); err != nil {
			return b, err
		}
	}
	b.SmallUs = time.Since(start).Seconds() * 1e6 / small
	const tokens = 200
	b.TokenVocab = TokenVocab
	start = time.Now()
	for i := range tokens {
		if _, err := c.LlamaForward(ctx, i, i); err != nil {
			return b, err
		}
	}
	b.TokenUs = time.Since(start).Seconds() * 1e6 / tokens
	var top []model.Alt
	start = time.Now()
	for i := range tokens {
		r := SampleRequest{Tokens: []int{i}, Pos: i, Temperature: 0.8, Seed: 1, Draws: uint64(i), Alts: 2}
		s, err := c.LlamaSample(ctx, r, top)
		if err != nil {
			return b, err
		}
		top = s.Alts
	}
	b.SampleUs = time.Since(start).Seconds() * 1e6 / tokens
	return b, nil
}
