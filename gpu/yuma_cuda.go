//go:build cuda

package gpu

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

// Page-locked host memory for the yuma engine's transfers.
static CUresult taobox_yuma_host_alloc(void **p, size_t n) { return cuMemAllocHost(p, n); }
static CUresult taobox_yuma_host_free(void *p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
	"taobox/internal/vectors"
)

// The batched Yuma engine: kernels/yuma.cu over the layout of
// chain/yuma/gpuplan, whose Go kernels are the CPU-side reference path of
// these kernels (same arrays, same per-thread bodies, same launch order).

const (
	yumaRowBlock = 128 // threads per block of the kernels with one thread per uid, entry or cell
)

// YumaEngine runs Yuma epochs on the GPU. It implements yuma.Engine: the
// outputs equal yuma.CPUEngine's bit for bit. The dense test-only variant,
// empty subnets and subnets above 5792 uids (gpuplan.Eligible) run on the
// CPU engine. Each chunk of the batch is one upload, the 17 kernels on one
// stream, and two downloads (outputs, then the bond entries).
type YumaEngine struct {
	d   *Device
	cpu *yuma.CPUEngine

	mu      sync.Mutex
	fns     []cu.Function
	last    YumaTimings
	debug   bool
	profile bool

	// page-locked staging buffers (grow-only; owned by the context thread)
	pinIn, pinOut pinned

	// scratch is epochsViaArena's arena, reused as the node reuses its
	// shared region (CheckYuma and the benchmark call it from one goroutine)
	scratch []int64
}

// pinned is a page-locked host buffer from cuMemAllocHost.
type pinned struct {
	p unsafe.Pointer
	n int64 // bytes
}

// ensure grows b to at least n bytes; it must run inside Device.Do.
func (b *pinned) ensure(n int64) error {
	if b.n >= n {
		return nil
	}
	b.free()
	n += n / 4
	var p unsafe.Pointer
	if r := C.taobox_yuma_host_alloc(&p, C.size_t(n)); r != C.CUDA_SUCCESS {
		return fmt.Errorf("gpu: yuma: %d bytes of page-locked host memory: CUresult %d", n, int(r))
	}
	b.p, b.n = p, n
	return nil
}

func (b *pinned) free() {
	if b.p != nil {
		C.taobox_yuma_host_free(b.p)
		b.p, b.n = nil, 0
	}
}

func (b *pinned) words() []int64 { return unsafe.Slice((*int64)(b.p), b.n/8) }

// outputs gives the download destinations of a batch with layout l: the
// output prefix (outWords words) and room for bondCap bond entries, in the
// page-locked buffer (a DMA at full speed; the views are valid until the
// next call, and Unpack copies what it keeps), or in Go memory if the
// driver refuses page-locked memory. It runs inside Device.Do.
func (e *YumaEngine) outputs(outWords, bondCap int64) ([]int64, []uint32) {
	if e.pinOut.ensure(outWords*8+bondCap*4) != nil {
		return make([]int64, outWords), make([]uint32, bondCap)
	}
	prefix := unsafe.Slice((*int64)(e.pinOut.p), outWords)
	bonds := unsafe.Slice((*uint32)(unsafe.Add(e.pinOut.p, outWords*8)), bondCap)
	return prefix, bonds
}

// Close frees the engine's page-locked host buffers (the device buffers
// belong to the Device). The engine must not be used afterwards.
func (e *YumaEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.d.Do(func() error {
		e.pinIn.free()
		e.pinOut.free()
		return nil
	})
}

// YumaTimings splits the last Epochs call's time.
type YumaTimings struct {
	Validate, Pack, Device, Unpack, CPU time.Duration
	Chunks, DevEpochs                   int
	InBytes, OutBytes                   int64
	// With TAOBOX_YUMA_PROFILE=1 (which synchronizes after every step):
	// upload, each kernel in launch order, download.
	Steps []YumaStep
}

// YumaStep is one profiled step of the device path.
type YumaStep struct {
	Name string
	Time time.Duration
}

// NewYumaEngine returns the engine on d.
func NewYumaEngine(d *Device) *YumaEngine {
	// TAOBOX_YUMA_DEBUG=1 synchronizes after every kernel, so that a fault
	// names its kernel.
	// TAOBOX_YUMA_PROFILE=1 also times every step.
	return &YumaEngine{d: d, cpu: yuma.NewCPUEngine(0),
		debug:   os.Getenv("TAOBOX_YUMA_DEBUG") != "" || os.Getenv("TAOBOX_YUMA_PROFILE") != "",
		profile: os.Getenv("TAOBOX_YUMA_PROFILE") != ""}
}

// LastTimings returns the breakdown of the last Epochs call.
func (e *YumaEngine) LastTimings() YumaTimings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// Epochs implements yuma.Engine.
func (e *YumaEngine) Epochs(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	tv := time.Now()
	if err := gpuplan.Validate(ins); err != nil {
		return nil, err
	}
	validate := time.Since(tv)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = YumaTimings{Validate: validate}
	outs := make([]yuma.Output, len(ins))
	dev, cpuIdx := gpuplan.Split(ins)
	for _, chunk := range gpuplan.Chunks(ins, dev) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Pack writes straight into the page-locked input buffer (or Go
		// memory, if the driver refuses page-locked memory).
		need := gpuplan.InWords(ins, chunk) * 8
		var arena []int64
		if err := e.d.Do(func() error { return e.pinIn.ensure(need) }); err == nil {
			arena = e.pinIn.words()
		}
		t0 := time.Now()
		b := gpuplan.Pack(ins, chunk, false, arena)
		t1 := time.Now()
		if err := e.run(b); err != nil {
			return nil, err
		}
		t2 := time.Now()
		b.Unpack(chunk, outs)
		t3 := time.Now()
		e.last.Pack += t1.Sub(t0)
		e.last.Device += t2.Sub(t1)
		e.last.Unpack += t3.Sub(t2)
		e.last.Chunks++
		e.last.DevEpochs += len(chunk)
		e.last.InBytes += b.L.InWords * 8
	}
	t := time.Now()
	if err := gpuplan.RunCPU(ctx, e.cpu, ins, cpuIdx, outs); err != nil {
		return nil, err
	}
	e.last.CPU = time.Since(t)
	return outs, ctx.Err()
}

// RunArena runs the kernels over arena, the input arena of a batch with
// layout l that another process packed (the runner's yuma.packed op;
// l.InWords native-endian words): it stages the arena in page-locked
// memory, runs the device path and hands emit views of the output prefix
// and the bond entries, valid only during emit. Timings: Pack is the
// staging copy, Unpack the time in emit.
func (e *YumaEngine) RunArena(ctx context.Context, l *gpuplan.Layout, arena []byte, emit func(prefix []int64, bonds []uint32)) error {
	if int64(len(arena)) != l.InWords*8 {
		return fmt.Errorf("gpu: yuma: an input arena of %d bytes for %d words", len(arena), l.InWords)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = YumaTimings{}
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	var in []int64
	if err := e.d.Do(func() error { return e.pinIn.ensure(l.InWords * 8) }); err == nil {
		in = e.pinIn.words()[:l.InWords]
	} else {
		in = make([]int64, l.InWords)
	}
	gpuplan.CopyParallel(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(in))), len(arena)), arena)
	t1 := time.Now()
	prefix, bonds, err := e.device(l, in)
	if err != nil {
		return err
	}
	t2 := time.Now()
	emit(prefix, bonds)
	e.last.Pack, e.last.Device, e.last.Unpack = t1.Sub(t0), t2.Sub(t1), time.Since(t2)
	e.last.Chunks, e.last.DevEpochs, e.last.InBytes = 1, int(l.S), l.InWords*8
	return nil
}

// run runs b on the device and points b's output views at what it
// downloaded (SetOutputs, which checks every count and offset Unpack
// slices with).
func (e *YumaEngine) run(b *gpuplan.Batch) error {
	prefix, bonds, err := e.device(b.L, b.In)
	if err != nil {
		return err
	}
	return b.SetOutputs(prefix, bonds)
}

// device uploads hostIn (a batch's input arena in host memory, l.InWords
// words; its first gpuplan.DCount words are overwritten with the
// descriptor), runs the kernels and downloads the output prefix and the
// bond entries: views of the engine's download buffer, valid until its
// next call. It reports in e.last.
func (e *YumaEngine) device(l *gpuplan.Layout, hostIn []int64) (prefix []int64, bonds []uint32, err error) {
	err = e.d.Do(func() error {
		if e.fns == nil {
			m, err := e.d.Module("yuma")
			if err != nil {
				return err
			}
			fns := make([]cu.Function, len(gpuplan.Launches))
			for i, k := range gpuplan.Launches {
				if fns[i], err = m.Function(k.Name); err != nil {
					return fmt.Errorf("gpu: yuma.ptx: %s: %v", k.Name, err)
				}
			}
			e.fns = fns
		}
		in, err := e.d.Buffer("yuma.in", l.InWords*8)
		if err != nil {
			return err
		}
		work, err := e.d.Buffer("yuma.work", l.WorkWords*8)
		if err != nil {
			return err
		}
		copy(hostIn, l.Descriptor(uint64(in), uint64(work)))
		ts := time.Now()
		step := func(name string) {
			if e.profile {
				e.last.Steps = append(e.last.Steps, YumaStep{name, time.Since(ts)})
				ts = time.Now()
			}
		}
		if err := cu.MemcpyHtoD(in, unsafe.Pointer(&hostIn[0]), l.InWords*8); err != nil {
			return fmt.Errorf("gpu: yuma: upload: %v", err)
		}
		step("upload")
		desc := in // the descriptor opens the input arena
		args := []unsafe.Pointer{unsafe.Pointer(&desc)}
		for i, k := range gpuplan.Launches {
			n := l.Threads(k.Grid)
			if n == 0 {
				continue // no weight entries at all
			}
			gx, bx := int((n+yumaRowBlock-1)/yumaRowBlock), yumaRowBlock
			switch k.Grid {
			case gpuplan.GridSubnet:
				gx, bx = int(n), gpuplan.SubnetBlock
			case gpuplan.GridRow: // a block per row
				gx, bx = int(n), l.RowThreads()
			case gpuplan.GridOne:
				gx, bx = 1, 1
			}
			if err := e.fns[i].Launch(gx, 1, 1, bx, 1, 1, 0, cu.NoStream, args); err != nil {
				return fmt.Errorf("gpu: yuma: launch %s: %v", k.Name, err)
			}
			if e.debug {
				if err := cu.Synchronize(); err != nil {
					return fmt.Errorf("gpu: yuma: %s: %v", k.Name, err)
				}
				step(k.Name)
			}
		}
		var all []uint32
		prefix, all = e.outputs(l.OutWords, l.BondCap)
		if err := cu.MemcpyDtoH(unsafe.Pointer(&prefix[0]), work, l.OutWords*8); err != nil {
			return fmt.Errorf("gpu: yuma: download: %v", err)
		}
		total := prefix[len(prefix)-1] // the output prefix ends with the bond entry count
		if total < 0 || total > l.BondCap {
			return fmt.Errorf("gpu: yuma: kernels report %d bond entries, capacity %d", total, l.BondCap)
		}
		bonds = all[:total]
		if total > 0 {
			src := work + cu.DevicePtr(l.BondOffset()*8)
			if err := cu.MemcpyDtoH(unsafe.Pointer(&bonds[0]), src, total*4); err != nil {
				return fmt.Errorf("gpu: yuma: download bonds: %v", err)
			}
		}
		step("download")
		e.last.OutBytes += l.OutWords*8 + total*4
		return nil
	})
	return prefix, bonds, err
}

// ---- check, selftest, bench ----

// YumaCheckReport is what CheckYuma found.
type YumaCheckReport struct {
	Vectors    int // vector epochs compared (0 if the vector file is absent)
	Batches    int
	Epochs     int // epochs compared, vectors included
	Mismatches []string
}

// findVectors returns the epochs of epochs.json from the source tree, the
// working directory (the repository root on a GPU machine) or
// $TAOBOX_VECTORS (a directory); nil when none is found.
func findVectors() ([]yuma.Input, error) {
	var data []byte
	if p, err := vectors.Path("epochs.json"); err == nil {
		data, _ = os.ReadFile(p)
	}
	for _, dir := range []string{os.Getenv("TAOBOX_VECTORS"), "chain/yuma/testdata", "../shared/vectors/yuma"} {
		if data != nil || dir == "" {
			continue
		}
		data, _ = os.ReadFile(filepath.Join(dir, "epochs.json"))
	}
	if data == nil {
		return nil, nil
	}
	var file struct {
		Epoch []struct {
			Epochs []struct {
				Input json.RawMessage `json:"input_state"`
			} `json:"epochs"`
		} `json:"epoch"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("gpu: yuma vectors: %v", err)
	}
	var ins []yuma.Input
	for _, rec := range file.Epoch {
		for _, ep := range rec.Epochs {
			in, err := yuma.DecodeInput(ep.Input)
			if err != nil {
				return nil, fmt.Errorf("gpu: yuma vectors: %v", err)
			}
			ins = append(ins, *in)
			if in.Variant == yuma.Dense { // the dense records also run as sparse epochs
				sp := *in
				sp.Variant = yuma.Sparse
				ins = append(ins, sp)
			}
		}
	}
	return ins, nil
}

// CheckYuma compares the GPU engine with the CPU engine on the vectors (when
// found), on `batches` random batches (gpuplan.RandomBatch with seed) and, if
// big, on a 128×256 batch in every bonds regime and a 4096-uid subnet. It
// returns the report; mismatches are listed, not returned as an error.
func CheckYuma(d *Device, batches int, seed uint64, big bool, progress func(string)) (*YumaCheckReport, error) {
	e := NewYumaEngine(d)
	defer e.Close()
	cpu := yuma.NewCPUEngine(0)
	rep := &YumaCheckReport{}
	arena := false // every other comparison runs the way a runner's parent sends it (RunArena)
	compare := func(name string, ins []yuma.Input) error {
		want, err := cpu.Epochs(context.Background(), ins)
		if err != nil {
			return fmt.Errorf("%s: cpu: %v", name, err)
		}
		run := e.Epochs
		if arena {
			run, name = e.epochsViaArena, name+" (arena)"
		}
		arena = !arena
		got, err := run(context.Background(), ins)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i := range ins {
			rep.Epochs++
			if diff := gpuplan.Diff(&got[i], &want[i]); diff != "" {
				in := &ins[i]
				rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s input %d (n=%d yuma3=%v liquid=%v bonds_penalty=%d): %s",
					name, i, in.N, in.Yuma3, in.LiquidAlpha, in.BondsPenalty, diff))
			}
		}
		return nil
	}
	vecs, err := findVectors()
	if err != nil {
		return nil, err
	}
	if len(vecs) > 0 {
		if err := compare("vectors", vecs); err != nil {
			return nil, err
		}
		rep.Vectors = len(vecs)
	}
	for k := range batches {
		if err := compare(fmt.Sprintf("seed %d batch %d", seed, k), gpuplan.RandomBatch(seed, k)); err != nil {
			return nil, err
		}
		rep.Batches++
		if progress != nil && (k+1)%100 == 0 {
			progress(fmt.Sprintf("%d/%d batches, %d epochs, %d mismatches", k+1, batches, rep.Epochs, len(rep.Mismatches)))
		}
	}
	if big {
		for _, a := range []bool{false, true} {
			arena = a
			if err := compare("128x256", BigYumaBatch(128, 256, true)); err != nil {
				return nil, err
			}
			arena = a
			if err := compare("4096", BigYumaBatch(1, 4096, true)); err != nil {
				return nil, err
			}
			rep.Batches += 2
		}
	}
	return rep, nil
}

// epochsViaArena runs ins the way a runner's yuma.packed op serves its
// parent: packed in ordinary Go memory (reused between calls, as the
// node's shared region is), handed to RunArena as bytes under the layout
// its Shape gives, the outputs checked and unpacked by the packer, the
// inputs the kernels do not take on the CPU engine. One goroutine at a
// time.
func (e *YumaEngine) epochsViaArena(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	return gpuplan.RunChunks(ctx, ins, e.cpu, &e.scratch, func(b *gpuplan.Batch, _ int, chunk []int, outs []yuma.Output) error {
		l, err := b.L.Shape().Layout()
		if err != nil {
			return err
		}
		arena := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b.In))), len(b.In)*8)
		var unpackErr error
		err = e.RunArena(ctx, l, arena, func(prefix []int64, bonds []uint32) {
			if unpackErr = b.SetOutputs(prefix, bonds); unpackErr == nil {
				b.Unpack(chunk, outs)
			}
		})
		if err == nil {
			err = unpackErr
		}
		return err
	})
}

// BigYumaBatch is `subnets` synthetic subnets of `uids` uids aged by one or
// two epochs: 64 validators (128 for more than 1024 uids) weighting every
// uid. mixed varies the regime per subnet (Yuma 3 with and without liquid
// alpha, original Yuma, β = 0, 1 and in between); otherwise every subnet is
// Yuma 3 with liquid alpha, the maintainers' mainnet model (BenchmarkBatch128).
func BigYumaBatch(subnets, uids int, mixed bool) []yuma.Input {
	ins := make([]yuma.Input, subnets)
	v := 64
	if uids > 1024 {
		v = 128
	}
	v = min(v, uids)
	for i := range ins {
		cfg := yuma.SynthConfig{N: uids, Validators: v, Seed: uint64(i + 1), Yuma3: true, LiquidAlpha: true}
		if mixed {
			cfg.Yuma3, cfg.LiquidAlpha = i%4 != 3, i%2 == 0
		}
		ins[i] = gpuplan.AgedSynthetic(cfg, 1+i%2)
		if mixed && i%8 == 5 {
			ins[i].BondsPenalty = 30000
		}
		if mixed && i%16 == 9 {
			ins[i].BondsPenalty = 0
		}
	}
	return ins
}

func init() {
	RegisterSelftest("yuma/epochs", func(d *Device) error {
		rep, err := CheckYuma(d, 200, 0x79756d61, true, nil)
		if err != nil {
			return err
		}
		if len(rep.Mismatches) > 0 {
			return fmt.Errorf("%d of %d epochs differ from the CPU engine; first: %s", len(rep.Mismatches), rep.Epochs, rep.Mismatches[0])
		}
		return nil
	})
}

// BenchYuma times the GPU engine on BigYumaBatch(subnets, uids, false),
// transfers and host packing included: one warm-up call, then iters timed
// calls. It checks the warm-up's outputs against the CPU engine first.
func BenchYuma(d *Device, subnets, uids int, iters int) (epochsPerSec float64, msPerBatch float64, err error) {
	return benchYuma(d, subnets, uids, iters, false)
}

// BenchYumaArena is BenchYuma the way a runner's parent sends a batch
// (yuma.packed without the socket): validated, packed, checked and
// unpacked in ordinary Go memory, the arena staged by RunArena.
func BenchYumaArena(d *Device, subnets, uids int, iters int) (msPerBatch float64, err error) {
	_, msPerBatch, err = benchYuma(d, subnets, uids, iters, true)
	return msPerBatch, err
}

func benchYuma(d *Device, subnets, uids int, iters int, arena bool) (epochsPerSec float64, msPerBatch float64, err error) {
	if iters < 1 {
		iters = 1
	}
	ins := BigYumaBatch(subnets, uids, false)
	e := NewYumaEngine(d)
	defer e.Close()
	run := e.Epochs
	if arena {
		run = e.epochsViaArena
	}
	got, err := run(context.Background(), ins)
	if err != nil {
		return 0, 0, err
	}
	want, err := yuma.NewCPUEngine(0).Epochs(context.Background(), ins)
	if err != nil {
		return 0, 0, err
	}
	for i := range ins {
		if diff := gpuplan.Diff(&got[i], &want[i]); diff != "" {
			return 0, 0, fmt.Errorf("gpu: BenchYuma: subnet %d differs from the CPU engine: %s", i, diff)
		}
	}
	start := time.Now()
	for range iters {
		if _, err := run(context.Background(), ins); err != nil {
			return 0, 0, err
		}
	}
	el := time.Since(start)
	msPerBatch = el.Seconds() * 1000 / float64(iters)
	return float64(subnets*iters) / el.Seconds(), msPerBatch, nil
}

// BenchYumaTimings is the breakdown of one call on BenchYuma's batch, with
// every device step timed (synchronized after each, so the sum is a little
// above an unprofiled call).
func BenchYumaTimings(d *Device, subnets, uids int) (YumaTimings, error) {
	ins := BigYumaBatch(subnets, uids, false)
	e := NewYumaEngine(d)
	defer e.Close()
	e.debug, e.profile = true, true
	for range 2 {
		if _, err := e.Epochs(context.Background(), ins); err != nil {
			return YumaTimings{}, err
		}
	}
	return e.LastTimings(), nil
}
