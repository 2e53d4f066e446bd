package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
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
	// Everything a batch costs besides the kernels and the device copies,
	// both ways a parent can send it: yuma.epochs (the boundary, plus the
	// GPU engine's validate, pack, check and unpack in the runner) and
	// yuma.packed (validate and pack in the parent, the boundary, the
	// runner's staging copy and response, check and unpack in the parent).
	// The kernels' outputs are precomputed (gpuplan's Go kernels).
	EpochsHostMs    float64 `json:"epochs_host_ms"`
	EpochsHostCPUMs float64 `json:"epochs_host_cpu_ms"`
	PackedHostMs    float64 `json:"packed_host_ms"`
	PackedHostCPUMs float64 `json:"packed_host_cpu_ms"`
	PackedBytes     int     `json:"packed_bytes"` // request and response of yuma.packed
}

// TokenVocab is the vocabulary MeasureBoundary's token round trip returns
// logits for: Llama 3's, 128256.
const TokenVocab = 128256

func (b Boundary) String() string {
	return fmt.Sprintf("%s: %d×%d Yuma batch %.2f ms wall, %.2f ms CPU (%.1f MB out, %.1f MB back); with the host work, as yuma.epochs %.2f ms wall, %.2f ms CPU, as yuma.packed %.2f ms wall, %.2f ms CPU (%.1f MB both ways); small request %.0f µs; decode token (%d logits) %.0f µs, drawn in the runner %.0f µs",
		b.Transport, b.Subnets, b.UIDs, b.BatchMs, b.BatchCPUMs, float64(b.RequestBytes)/1e6, float64(b.ResponseBytes)/1e6,
		b.EpochsHostMs, b.EpochsHostCPUMs, b.PackedHostMs, b.PackedHostCPUMs, float64(b.PackedBytes)/1e6,
		b.SmallUs, b.TokenVocab, b.TokenUs, b.SampleUs)
}

// kernelOutputs are the Go kernels' outputs of each chunk of ins: what a
// device would download.
type kernelOutputs struct {
	prefix [][]int64
	bonds  [][]uint32
}

func precompute(ins []yuma.Input) kernelOutputs {
	var k kernelOutputs
	dev, _ := gpuplan.Split(ins)
	for _, chunk := range gpuplan.Chunks(ins, dev) {
		b := gpuplan.Pack(ins, chunk, true)
		b.Run()
		p, bo := b.Outputs()
		k.prefix, k.bonds = append(k.prefix, slices.Clone(p)), append(k.bonds, slices.Clone(bo))
	}
	return k
}

// hostEngine is what the GPU engine does on the host for yuma.epochs
// (validate, pack into a reused staging arena, check, unpack), with the
// precomputed outputs in place of the device's.
type hostEngine struct {
	k       kernelOutputs
	cpu     *yuma.CPUEngine
	staging []int64
}

func (h *hostEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	return gpuplan.RunChunks(ctx, ins, h.cpu, &h.staging, func(b *gpuplan.Batch, k int, chunk []int, outs []yuma.Output) error {
		if err := b.SetOutputs(h.k.prefix[k], h.k.bonds[k]); err != nil {
			return err
		}
		b.Unpack(chunk, outs)
		return nil
	})
}

// packedHost is what the GPU engine does on the host for yuma.packed (the
// staging copy, the response), with precomputed outputs; it serves
// one-chunk batches.
type packedHost struct {
	k       kernelOutputs
	staging []byte
}

func (p *packedHost) RunPacked(_ context.Context, l *gpuplan.Layout, arena, out []byte) ([]byte, error) {
	if len(p.staging) < len(arena) {
		p.staging = make([]byte, len(arena))
	}
	gpuplan.CopyParallel(p.staging[:len(arena)], arena)
	return AppendPackedResponse(out, p.k.prefix[0], p.k.bonds[0]), nil
}

// switchEngine serves yuma.epochs with replay or, once host is set, with
// hostEngine.
type switchEngine struct {
	host   atomic.Bool
	replay replayEngine
	he     *hostEngine
}

func (s *switchEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	if s.host.Load() {
		return s.he.Epochs(ctx, ins)
	}
	return s.replay.Epochs(ctx, ins)
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
	k := precompute(ins)
	cpuEngine := yuma.NewCPUEngine(0)
	sw := &switchEngine{replay: replayEngine{outs}, he: &hostEngine{k: k, cpu: cpuEngine}}
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
		(&Server{Info: "boundary", Yuma: sw, YumaPacked: &packedHost{k: k}, Ops: map[Op]Handler{OpLlamaForward: fwd, OpLlamaSample: smp}, Shm: shm}).Serve(ctx, ln)
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
	// The host paths, alternating (one warm-up each first).
	sw.host.Store(true)
	dev, _ := gpuplan.Split(ins)
	if len(gpuplan.Chunks(ins, dev)) == 1 { // packedHost serves one chunk
		var epochsWall, epochsCPU, packedWall, packedCPU time.Duration
		for i := -1; i < iters; i++ {
			t, c0 := time.Now(), cpuTime()
			if _, err := c.Epochs(ctx, ins); err != nil {
				return b, err
			}
			t1, c1 := time.Now(), cpuTime()
			if _, err := c.EpochsPacked(ctx, ins, cpuEngine); err != nil {
				return b, err
			}
			if i >= 0 {
				epochsWall, epochsCPU = epochsWall+t1.Sub(t), epochsCPU+c1-c0
				packedWall, packedCPU = packedWall+time.Since(t1), packedCPU+cpuTime()-c1
			}
		}
		per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(iters) }
		b.EpochsHostMs, b.EpochsHostCPUMs = per(epochsWall), per(epochsCPU)
		b.PackedHostMs, b.PackedHostCPUMs = per(packedWall), per(packedCPU)
		p, _, _ := packedSizes(ins, dev, k)
		b.PackedBytes = p
	}
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

// packedSizes is the size of a one-chunk batch's yuma.packed request and
// response together (and each).
func packedSizes(ins []yuma.Input, dev []int, k kernelOutputs) (total, req, resp int) {
	l := gpuplan.Pack(ins, dev, false).L
	req = packedHeader + int(l.InWords)*8
	resp = 8 + len(k.prefix[0])*8 + len(k.bonds[0])*4
	return req + resp, req, resp
}
