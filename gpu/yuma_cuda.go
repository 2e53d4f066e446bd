//go:build cuda

package gpu

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

// Page-locked host memory for the yuma engine's transfers.
static CUresult taobox_yuma_host_alloc(void **p, size_t n) { return cuMemAllocHost(p, n); }
static CUresult taobox_yuma_host_free(void *p) { return cuMemFreeHost(p); }
// Page-locking memory the engine did not allocate (HostRegions).
static CUresult taobox_yuma_host_register(void *p, size_t n) { return cuMemHostRegister(p, n, 0); }
static CUresult taobox_yuma_host_unregister(void *p) { return cuMemHostUnregister(p); }
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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

	// regions is the host memory HostRegions named; regErr the driver's
	// first refusal to page-lock it (nil while it has not refused).
	// ownRegions are regions the engine mapped itself (epochsViaRegions).
	regions    []hostRegion
	regErr     error
	refused    atomic.Bool // regErr != nil, read without mu
	ownRegions [][]byte
	granule    int // regGranule; tests make it smaller before the first use

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

// hostRegion is host memory the engine may page-lock (HostRegions): the
// first reg bytes of mem are registered with the driver; capped once the
// driver refused to register more.
type hostRegion struct {
	mem    []byte
	reg    int
	capped bool
}

// regGranule rounds a region's registered prefix up; regSlack caps how
// far past a transfer's end a growing prefix doubles.
const (
	regGranule = 4 << 20
	regSlack   = 64 << 20
)

// HostRegions names host memory that lives longer than any call, such as
// a runner's shared region (its request half and its response half), that
// the engine may page-lock with the driver (cuMemHostRegister) so that an
// input arena lying in it uploads, and outputs bound for it download
// (RunArenaTo), by DMA without a copy through the engine's own page-locked
// buffers. Only whole pages count (a region is trimmed to those inside
// it). Each region is registered from its start at once as far as 4 MiB,
// and then as far as the transfers into or out of it reach (rounded up to
// 4 MiB, doubling up to 64 MiB past the need) when a transfer first needs
// more: locked pages stay resident, so only what is used gets locked. The
// memory must be mapped (mmap), not Go heap memory, and stay mapped until
// Close or the next HostRegions call, which unregister it. It returns the
// driver's refusal to page-lock the first 4 MiB, if any (the engine then
// stages every transfer, as without regions): a reason to report, not to
// stop. HostRegionErr gives the first refusal since.
func (e *YumaEngine) HostRegions(regions ...[]byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	page := uintptr(os.Getpagesize())
	var refused error
	err := e.d.Do(func() error {
		e.unregisterLocked()
		e.regions, e.regErr = e.regions[:0], nil
		e.refused.Store(false)
		for _, m := range regions {
			at := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
			lo := int((page - at%page) % page)
			if lo >= len(m) {
				continue
			}
			m = m[lo:]
			if m = m[:len(m)/int(page)*int(page)]; len(m) > 0 {
				e.regions = append(e.regions, hostRegion{mem: m})
				if !e.pinLocked(m[:min(len(m), e.granule)]) && refused == nil {
					refused = e.regErr
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}

// RegionRefused reports whether HostRegionErr is not nil, without waiting
// for a call in progress.
func (e *YumaEngine) RegionRefused() bool { return e.refused.Load() }

// HostRegionErr returns the driver's first refusal to page-lock a region
// named by HostRegions (nil if it has not refused).
func (e *YumaEngine) HostRegionErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.regErr
}

// unregisterLocked unregisters every region; it runs inside Device.Do.
func (e *YumaEngine) unregisterLocked() {
	for i := range e.regions {
		if r := &e.regions[i]; r.reg > 0 {
			C.taobox_yuma_host_unregister(unsafe.Pointer(unsafe.SliceData(r.mem)))
			r.reg = 0
		}
	}
}

// pinLocked reports whether p lies in a region named by HostRegions that
// is registered as far as p's end, registering it that far first (see
// HostRegions). A refusal caps the region where it was: the old prefix is
// registered again (transfers inside it stay direct, those beyond are
// staged) and e.regErr keeps the first refusal. It runs inside Device.Do.
func (e *YumaEngine) pinLocked(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	for i := range e.regions {
		r := &e.regions[i]
		start := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
		if at < start || at-start > uintptr(len(r.mem)) || uintptr(len(p)) > uintptr(len(r.mem))-(at-start) {
			continue
		}
		end := int(at-start) + len(p)
		if end <= r.reg {
			return true
		}
		if r.capped {
			return false
		}
		want := max(end, min(2*r.reg, end+regSlack))
		n := min(len(r.mem), (want+e.granule-1)/e.granule*e.granule)
		base := unsafe.Pointer(unsafe.SliceData(r.mem))
		old := r.reg
		if old > 0 {
			C.taobox_yuma_host_unregister(base)
			r.reg = 0
		}
		if res := C.taobox_yuma_host_register(base, C.size_t(n)); res != C.CUDA_SUCCESS {
			if e.regErr == nil {
				e.refused.Store(true)
				e.regErr = fmt.Errorf("gpu: yuma: page-locking %d bytes of a shared region: CUDA error %d (transfers there now go through the engine's own page-locked buffers: one copy more each way)", n, int(res))
			}
			r.capped = true
			if old > 0 && C.taobox_yuma_host_register(base, C.size_t(old)) == C.CUDA_SUCCESS {
				r.reg = old
			}
			return false
		}
		r.reg = n
		return true
	}
	return false
}

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
	err := e.d.Do(func() error {
		e.pinIn.free()
		e.pinOut.free()
		e.unregisterLocked()
		e.regions = nil
		return nil
	})
	for _, m := range e.ownRegions {
		unix.Munmap(m)
	}
	e.ownRegions = nil
	return err
}

// YumaTimings splits the last Epochs call's time.
type YumaTimings struct {
	Validate, Pack, Device, Unpack, CPU time.Duration
	Chunks, DevEpochs                   int
	InBytes, OutBytes                   int64
	// Staged is the bytes that went through the engine's own page-locked
	// buffers on the way to or from memory the caller handed over
	// (RunArena, RunArenaTo); 0 when every transfer was direct.
	Staged int64
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
	return &YumaEngine{d: d, cpu: yuma.NewCPUEngine(0), granule: regGranule,
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
// l.InWords native-endian words, left as they are): it uploads the arena
// (straight from a region named by HostRegions, else staged through
// page-locked memory), runs the device path and hands emit views of the
// output prefix and the bond entries, valid only during emit. Timings:
// Pack is the staging, Unpack the time in emit.
func (e *YumaEngine) RunArena(ctx context.Context, l *gpuplan.Layout, arena []byte, emit func(prefix []int64, bonds []uint32)) error {
	e.mu.Lock()
	defer e.mu.Unlock() // the views are the engine's buffers until emit returns
	prefix, bonds, err := e.runArenaLocked(ctx, l, arena, nil, nil)
	if err != nil {
		return err
	}
	t := time.Now()
	emit(prefix, bonds)
	e.last.Unpack = time.Since(t)
	return nil
}

// RunArenaTo is RunArena downloading into the caller's memory: the output
// prefix into prefix (l.OutWords words) and the bond entries into
// bonds[:T] (len(bonds) >= l.BondCap); it returns T. Outputs bound for a
// region named by HostRegions (a runner's response half) arrive there by
// DMA; others are staged and copied.
func (e *YumaEngine) RunArenaTo(ctx context.Context, l *gpuplan.Layout, arena []byte, prefix []int64, bonds []uint32) (int64, error) {
	if int64(len(prefix)) != l.OutWords || int64(len(bonds)) < l.BondCap {
		return 0, fmt.Errorf("gpu: yuma: room for %d prefix words and %d bond entries, the layout needs %d and %d", len(prefix), len(bonds), l.OutWords, l.BondCap)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, got, err := e.runArenaLocked(ctx, l, arena, prefix, bonds)
	return int64(len(got)), err
}

// runArenaLocked is RunArena and RunArenaTo up to the outputs; e.mu is
// held.
func (e *YumaEngine) runArenaLocked(ctx context.Context, l *gpuplan.Layout, arena []byte, dstPrefix []int64, dstBonds []uint32) ([]int64, []uint32, error) {
	e.last = YumaTimings{}
	if int64(len(arena)) != l.InWords*8 {
		return nil, nil, fmt.Errorf("gpu: yuma: an input arena of %d bytes for %d words", len(arena), l.InWords)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	t0 := time.Now()
	var prefix []int64
	var bonds []uint32
	err := e.d.Do(func() error {
		in, keep := gpuplan.Words(arena), true
		if in == nil || !e.pinLocked(arena) { // staged: a copy in page-locked memory (or Go memory if the driver refuses it)
			if e.pinIn.ensure(l.InWords*8) == nil {
				in = e.pinIn.words()[:l.InWords]
			} else {
				in = make([]int64, l.InWords)
			}
			gpuplan.CopyParallel(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(in))), len(arena)), arena)
			e.last.Staged += int64(len(arena))
			keep = false
		}
		e.last.Pack = time.Since(t0)
		var err error
		prefix, bonds, err = e.deviceLocked(l, in, keep, dstPrefix, dstBonds)
		return err
	})
	e.last.Device = time.Since(t0) - e.last.Pack
	e.last.Chunks, e.last.DevEpochs, e.last.InBytes = 1, int(l.S), l.InWords*8
	return prefix, bonds, err
}

// run runs b on the device and points b's output views at what it
// downloaded (SetOutputs, which checks every count and offset Unpack
// slices with).
func (e *YumaEngine) run(b *gpuplan.Batch) error {
	var prefix []int64
	var bonds []uint32
	err := e.d.Do(func() error {
		var err error
		prefix, bonds, err = e.deviceLocked(b.L, b.In, false, nil, nil)
		return err
	})
	if err != nil {
		return err
	}
	return b.SetOutputs(prefix, bonds)
}

// bytesOf is the memory of a word slice.
func bytesOf[T int64 | uint32](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// deviceLocked uploads hostIn (a batch's input arena in host memory,
// l.InWords words), runs the kernels and downloads the output prefix and
// the bond entries. Unless keepIn, hostIn's first gpuplan.DCount words are
// overwritten with the descriptor; with keepIn (memory the engine must
// not write, such as a runner's request half) the descriptor follows in a
// second, small upload. The outputs land in dstPrefix and dstBonds when
// given (len l.OutWords; room for l.BondCap entries): by DMA when they lie
// in a region named by HostRegions, else through the engine's download
// buffer and a copy. Without them they stay in the engine's page-locked
// download buffer (views valid until its next call). It runs inside
// Device.Do and reports in e.last.
func (e *YumaEngine) deviceLocked(l *gpuplan.Layout, hostIn []int64, keepIn bool, dstPrefix []int64, dstBonds []uint32) (prefix []int64, bonds []uint32, err error) {
	if e.fns == nil {
		m, err := e.d.Module("yuma")
		if err != nil {
			return nil, nil, err
		}
		fns := make([]cu.Function, len(gpuplan.Launches))
		for i, k := range gpuplan.Launches {
			if fns[i], err = m.Function(k.Name); err != nil {
				return nil, nil, fmt.Errorf("gpu: yuma.ptx: %s: %v", k.Name, err)
			}
		}
		e.fns = fns
	}
	in, err := e.d.Buffer("yuma.in", l.InWords*8)
	if err != nil {
		return nil, nil, err
	}
	work, err := e.d.Buffer("yuma.work", l.WorkWords*8)
	if err != nil {
		return nil, nil, err
	}
	desc := l.Descriptor(uint64(in), uint64(work))
	if !keepIn {
		copy(hostIn, desc)
	}
	ts := time.Now()
	step := func(name string) {
		if e.profile {
			e.last.Steps = append(e.last.Steps, YumaStep{name, time.Since(ts)})
			ts = time.Now()
		}
	}
	if err := cu.MemcpyHtoD(in, unsafe.Pointer(&hostIn[0]), l.InWords*8); err != nil {
		return nil, nil, fmt.Errorf("gpu: yuma: upload: %v", err)
	}
	if keepIn {
		if err := cu.MemcpyHtoD(in, unsafe.Pointer(&desc[0]), int64(len(desc))*8); err != nil {
			return nil, nil, fmt.Errorf("gpu: yuma: upload: %v", err)
		}
	}
	step("upload")
	args := []unsafe.Pointer{unsafe.Pointer(&in)} // the descriptor opens the input arena
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
			return nil, nil, fmt.Errorf("gpu: yuma: launch %s: %v", k.Name, err)
		}
		if e.debug {
			if err := cu.Synchronize(); err != nil {
				return nil, nil, fmt.Errorf("gpu: yuma: %s: %v", k.Name, err)
			}
			step(k.Name)
		}
	}
	// download copies n bytes from the device at src into dst: straight
	// when dst is page-locked (the engine's buffer, or a registered region),
	// else into the engine's buffer at stage and on with a copy.
	download := func(what string, dst, stage []byte, src cu.DevicePtr, direct bool) error {
		to := dst
		if !direct {
			to = stage[:len(dst)]
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&to[0]), src, int64(len(to))); err != nil {
			return fmt.Errorf("gpu: yuma: download %s: %v", what, err)
		}
		if !direct {
			gpuplan.CopyParallel(dst, to)
			e.last.Staged += int64(len(dst))
		}
		return nil
	}
	// The engine's download buffer only when something lands there.
	var stagePrefix []int64
	var stageBonds []uint32
	stage := func() {
		if stagePrefix == nil {
			stagePrefix, stageBonds = e.outputs(l.OutWords, l.BondCap)
		}
	}
	prefix, bonds = dstPrefix, dstBonds
	direct := true
	if prefix == nil {
		stage()
		prefix, bonds = stagePrefix, stageBonds
	} else if direct = e.pinLocked(gpuplan.Bytes(prefix)); !direct {
		stage()
	}
	if err := download("outputs", gpuplan.Bytes(prefix), gpuplan.Bytes(stagePrefix), work, direct); err != nil {
		return nil, nil, err
	}
	total := prefix[len(prefix)-1] // the output prefix ends with the bond entry count
	if total < 0 || total > l.BondCap {
		return nil, nil, fmt.Errorf("gpu: yuma: kernels report %d bond entries, capacity %d", total, l.BondCap)
	}
	bonds = bonds[:total]
	if total > 0 {
		direct := dstBonds == nil || e.pinLocked(gpuplan.Bytes(bonds))
		if !direct {
			stage()
		}
		src := work + cu.DevicePtr(l.BondOffset()*8)
		if err := download("bonds", gpuplan.Bytes(bonds), gpuplan.Bytes(stageBonds), src, direct); err != nil {
			return nil, nil, err
		}
	}
	step("download")
	e.last.OutBytes += l.OutWords*8 + total*4
	return prefix, bonds, nil
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
	// The comparisons take turns between the in-process engine and the
	// two ways a runner serves its parent: the arena staged (RunArena) and
	// through shared regions page-locked in place (RunArenaTo).
	modes := []struct {
		suffix string
		run    func(context.Context, []yuma.Input) ([]yuma.Output, error)
	}{{"", e.Epochs}, {" (arena)", e.epochsViaArena}, {" (regions)", e.epochsViaRegions}}
	mode := 0
	compare := func(name string, ins []yuma.Input) error {
		want, err := cpu.Epochs(context.Background(), ins)
		if err != nil {
			return fmt.Errorf("%s: cpu: %v", name, err)
		}
		m := modes[mode%len(modes)]
		mode++
		run := m.run
		name += m.suffix
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
		for m := range modes {
			mode = m
			if err := compare("128x256", BigYumaBatch(128, 256, true)); err != nil {
				return nil, err
			}
			mode = m
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

// regionBytes is the size of each region epochsViaRegions maps: a
// runner's half of the default shared region (its pages are allocated
// when first touched).
const regionBytes = 512 << 20

// epochsViaRegions runs ins the way a runner with a shared region serves
// its parent: each chunk packed into one mapped region (as the node packs
// into the request half), uploaded from there, and its outputs downloaded
// by RunArenaTo into a second region (the response half), both named by
// HostRegions, then checked and unpacked from there. The regions are
// mapped on first use and kept until Close. One goroutine at a time.
func (e *YumaEngine) epochsViaRegions(ctx context.Context, ins []yuma.Input) ([]yuma.Output, error) {
	if e.ownRegions == nil {
		var regions [][]byte
		for range 2 {
			m, err := unix.Mmap(-1, 0, regionBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
			if err != nil {
				for _, r := range regions {
					unix.Munmap(r)
				}
				return nil, fmt.Errorf("gpu: yuma: mapping %d bytes: %w", regionBytes, err)
			}
			regions = append(regions, m)
		}
		e.mu.Lock()
		e.ownRegions = regions
		e.mu.Unlock()
		e.HostRegions(regions...) // a refusal stays in HostRegionErr: the transfers are staged
	}
	req, resp := e.ownRegions[0], e.ownRegions[1]
	scratch := gpuplan.Words(req)
	return gpuplan.RunChunks(ctx, ins, e.cpu, &scratch, func(b *gpuplan.Batch, _ int, chunk []int, outs []yuma.Output) error {
		l, err := b.L.Shape().Layout()
		if err != nil {
			return err
		}
		if l.OutWords*8+l.BondCap*4 > int64(len(resp)) {
			return fmt.Errorf("gpu: yuma: outputs of %d words and %d bond entries exceed a %d-byte region", l.OutWords, l.BondCap, len(resp))
		}
		prefix := gpuplan.Words(resp[:l.OutWords*8])
		bonds := unsafe.Slice((*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(resp)), l.OutWords*8)), l.BondCap)
		// The descriptor words are the runner's to fill, in its own copy:
		// they go out zero (as the node sends them) and must come back so.
		clear(b.In[:gpuplan.DCount])
		t, err := e.RunArenaTo(ctx, l, gpuplan.Bytes(b.In), prefix, bonds)
		if err != nil {
			return err
		}
		for i, w := range b.In[:gpuplan.DCount] {
			if w != 0 {
				return fmt.Errorf("gpu: yuma: the engine wrote word %d of an arena it must leave as it is", i)
			}
		}
		if err := b.SetOutputs(prefix, bonds[:t]); err != nil {
			return err
		}
		b.Unpack(chunk, outs)
		return nil
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

// BenchYumaRegions is BenchYumaArena the way a runner with a shared
// region serves it (epochsViaRegions: no staging copies once the driver
// has page-locked the regions). It also returns the bytes the last call
// still staged and the driver's refusal to page-lock, if any.
func BenchYumaRegions(d *Device, subnets, uids int, iters int) (msPerBatch float64, staged int64, regErr, err error) {
	var e *YumaEngine
	_, msPerBatch, err = benchYumaWith(d, subnets, uids, iters, func(y *YumaEngine) func(context.Context, []yuma.Input) ([]yuma.Output, error) {
		e = y
		return y.epochsViaRegions
	})
	if e != nil {
		staged, regErr = e.LastTimings().Staged, e.HostRegionErr()
	}
	return msPerBatch, staged, regErr, err
}

func benchYuma(d *Device, subnets, uids int, iters int, arena bool) (epochsPerSec float64, msPerBatch float64, err error) {
	return benchYumaWith(d, subnets, uids, iters, func(e *YumaEngine) func(context.Context, []yuma.Input) ([]yuma.Output, error) {
		if arena {
			return e.epochsViaArena
		}
		return e.Epochs
	})
}

// benchYumaWith times the way pick chooses to run a fresh engine (see
// BenchYuma); the engine is closed on return.
func benchYumaWith(d *Device, subnets, uids int, iters int, pick func(*YumaEngine) func(context.Context, []yuma.Input) ([]yuma.Output, error)) (epochsPerSec float64, msPerBatch float64, err error) {
	if iters < 1 {
		iters = 1
	}
	ins := BigYumaBatch(subnets, uids, false)
	e := NewYumaEngine(d)
	defer e.Close()
	run := pick(e)
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
