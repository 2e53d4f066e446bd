//go:build cuda

package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"gorgonia.org/cu"

	"taobox/kernels"
)

// Device is one GPU with its CUDA context. A CUDA context is current per OS
// thread, so the context lives on one goroutine locked to its OS thread for
// the Device's whole life; every driver call that uses it runs there, through
// Do. Do serializes: one fn runs at a time.
//
// The module cache and the buffer pool belong to that thread too: Module and
// Buffer must be called inside Do (they return ErrNotInDo otherwise).
type Device struct {
	info Info
	tid  int // OS thread of the context goroutine (immutable after Open)

	req    chan func()   // work for the context thread
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the context thread has cleaned up
	exited atomic.Bool   // the context thread has returned (tid may be reused)
	once   sync.Once
	err    error // Close's result, set before done is closed

	// Owned by the context thread.
	ctx     cu.CUContext
	inDo    bool
	modules map[string]cu.Module
	buffers map[string]buffer
}

type buffer struct {
	ptr cu.DevicePtr
	n   int64
}

// DriverVersion returns the driver API version (12040 for CUDA 12.4), -1 if
// the driver does not say.
func DriverVersion() int { return cu.Version() }

// Devices describes every CUDA device without creating a context. A driver
// with no devices gives an empty list, not an error.
func Devices() ([]Info, error) {
	n, err := cu.NumDevices()
	if err == cu.NoDevice {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gpu: counting CUDA devices: %v", err)
	}
	out := make([]Info, n)
	for i := range out {
		if out[i], err = deviceInfo(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func deviceInfo(ordinal int) (Info, error) {
	info := Info{Ordinal: ordinal, Driver: cu.Version()}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return info, fmt.Errorf("gpu: device %d: %v", ordinal, err)
	}
	if info.Name, err = dev.Name(); err != nil {
		return info, fmt.Errorf("gpu: device %d: name: %v", ordinal, err)
	}
	if info.Major, info.Minor, err = dev.ComputeCapability(); err != nil {
		return info, fmt.Errorf("gpu: device %d: compute capability: %v", ordinal, err)
	}
	if info.TotalMem, err = dev.TotalMem(); err != nil {
		return info, fmt.Errorf("gpu: device %d: memory size: %v", ordinal, err)
	}
	if info.SMs, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return info, fmt.Errorf("gpu: device %d: SM count: %v", ordinal, err)
	}
	return info, nil
}

// Open creates a context on device ordinal (0 is the first GPU) and starts
// its thread. The errors say what to do and wrap ErrNoDevice,
// ErrDriverTooOld, ErrUnsupportedDevice or ErrOutOfMemory.
func Open(ordinal int) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		if err == cu.NoDevice {
			n = 0
		} else {
			return nil, fmt.Errorf("gpu: counting CUDA devices: %v", err)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the NVIDIA driver sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES); use the CPU build, taobox", ErrNoDevice)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: device %d does not exist; this machine has %d (0..%d)", ErrNoDevice, ordinal, n, n-1)
	}
	if driver := cu.Version(); driver < MinDriver {
		return nil, fmt.Errorf("%w: it supports CUDA %s, the kernels need CUDA %s or newer (driver 520+); upgrade the NVIDIA driver",
			ErrDriverTooOld, DriverString(driver), DriverString(MinDriver))
	}
	info, err := deviceInfo(ordinal)
	if err != nil {
		return nil, err
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("gpu: device %d: %v", ordinal, err)
	}
	if info.Major < MinMajor {
		return nil, fmt.Errorf("%w: %s is sm_%d%d; the kernels need compute capability %d.0 or newer (Ampere, Hopper, ...); use the CPU build, taobox",
			ErrUnsupportedDevice, info.Name, info.Major, info.Minor, MinMajor)
	}

	d := &Device{
		info:    info,
		req:     make(chan func()),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		modules: map[string]cu.Module{},
		buffers: map[string]buffer{},
	}
	started := make(chan error, 1)
	go d.loop(dev, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return d, nil
}

// loop is the context goroutine. It never unlocks its OS thread, so the
// runtime ends the thread (and whatever CUDA state it held) when loop returns.
func (d *Device) loop(dev cu.Device, started chan<- error) {
	runtime.LockOSThread()
	d.tid = syscall.Gettid()
	ctx, err := dev.MakeContext(cu.SchedBlockingSync)
	if err != nil {
		d.exited.Store(true)
		close(d.done)
		if err == cu.OutOfMemory {
			started <- fmt.Errorf("%w: creating a context on %s: other processes hold its memory (see nvidia-smi)", ErrOutOfMemory, d.info.Name)
		} else {
			started <- fmt.Errorf("gpu: creating a context on %s: %v (is the GPU in exclusive-process mode and busy? see nvidia-smi)", d.info.Name, err)
		}
		return
	}
	d.ctx = ctx
	started <- nil
	for {
		select {
		case fn := <-d.req:
			fn()
		case <-d.quit:
			d.err = d.cleanup()
			d.exited.Store(true)
			close(d.done)
			return
		}
	}
}

// cleanup frees the pool, unloads the modules and destroys the context.
func (d *Device) cleanup() error {
	var errs []error
	for k, b := range d.buffers {
		if err := cu.MemFree(b.ptr); err != nil {
			errs = append(errs, fmt.Errorf("gpu: freeing buffer %q: %v", k, err))
		}
	}
	for k, m := range d.modules {
		if err := m.Unload(); err != nil {
			errs = append(errs, fmt.Errorf("gpu: unloading module %q: %v", k, err))
		}
	}
	d.buffers, d.modules = nil, nil
	if err := d.ctx.Destroy(); err != nil {
		errs = append(errs, fmt.Errorf("gpu: destroying the context: %v", err))
	}
	return errors.Join(errs...)
}

// Info describes the device.
func (d *Device) Info() Info { return d.info }

// onThread reports whether the caller runs on the context thread, which
// (being locked to the context goroutine) means it is inside Do.
func (d *Device) onThread() bool {
	return !d.exited.Load() && syscall.Gettid() == d.tid
}

// Do runs fn on the context thread and returns its error; a panic in fn
// becomes an error that carries the stack. Calls are serialized. Do called
// from inside fn runs the inner fn at once (no deadlock). After Close, Do
// returns ErrClosed.
func (d *Device) Do(fn func() error) error {
	if d.onThread() {
		return d.call(fn)
	}
	errc := make(chan error, 1)
	select {
	case d.req <- func() { errc <- d.call(fn) }:
		return <-errc
	case <-d.done:
		return ErrClosed
	}
}

func (d *Device) call(fn func() error) (err error) {
	outer := d.inDo
	d.inDo = true
	defer func() {
		d.inDo = outer
		if p := recover(); p != nil {
			err = fmt.Errorf("gpu: panic inside Device.Do: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}

func (d *Device) inside() bool { return d.onThread() && d.inDo }

// Module returns the module made from the embedded kernels/NAME.ptx, loading
// (JIT-compiling) it on first use; later calls return the cached module. It
// must be called inside Do. A module the driver refuses gives an error that
// wraps ErrPTXRejected and quotes the JIT's error log.
func (d *Device) Module(name string) (cu.Module, error) {
	if !d.inside() {
		return cu.Module{}, ErrNotInDo
	}
	if m, ok := d.modules[name]; ok {
		return m, nil
	}
	src, err := kernels.PTX(name)
	if err != nil {
		return cu.Module{}, err
	}
	log := make([]byte, 16<<10)
	m, err := cu.LoadDataEx(src, &cu.JITErrorLogBuffer{Buffer: log})
	if err != nil {
		if err == cu.OutOfMemory {
			return cu.Module{}, fmt.Errorf("%w: loading kernels/%s.ptx", ErrOutOfMemory, name)
		}
		if i := bytes.IndexByte(log, 0); i >= 0 {
			log = log[:i]
		}
		msg := string(bytes.TrimSpace(log))
		if msg == "" {
			msg = "(empty JIT log)"
		}
		return cu.Module{}, fmt.Errorf("%w: kernels/%s.ptx: %v: %s; the PTX is ISA 7.8 for compute_80 and needs a driver for CUDA %s or newer on a GPU of compute capability %d.0+ (this one: driver CUDA %s, sm_%d%d); upgrade the NVIDIA driver, or regenerate the PTX with make ptx",
			ErrPTXRejected, name, err, msg, DriverString(MinDriver), MinMajor, DriverString(d.info.Driver), d.info.Major, d.info.Minor)
	}
	d.modules[name] = m
	return m, nil
}

// Buffer returns the device buffer named key, at least n bytes long: the
// memory pool. It grows but never shrinks; growing frees the old buffer and
// does not keep its contents. Buffers live until Close. It must be called
// inside Do. Keys are shared by all users of the Device: prefix them with
// the package or kernel ("yuma.weights").
func (d *Device) Buffer(key string, n int64) (cu.DevicePtr, error) {
	if !d.inside() {
		return 0, ErrNotInDo
	}
	if n <= 0 {
		return 0, fmt.Errorf("gpu: buffer %q: size %d, want > 0", key, n)
	}
	b, ok := d.buffers[key]
	if ok && b.n >= n {
		return b.ptr, nil
	}
	if ok {
		delete(d.buffers, key)
		if err := cu.MemFree(b.ptr); err != nil {
			return 0, fmt.Errorf("gpu: buffer %q: freeing %d bytes to grow: %v", key, b.n, err)
		}
	}
	p, err := cu.MemAlloc(n)
	if err != nil {
		if err == cu.OutOfMemory {
			free, total, _ := cu.MemInfo()
			return 0, fmt.Errorf("%w: buffer %q needs %d bytes, %d of %d are free (the pool holds %d); stop other GPU processes (nvidia-smi) or use smaller batches",
				ErrOutOfMemory, key, n, free, total, d.poolBytes())
		}
		return 0, fmt.Errorf("gpu: buffer %q: allocating %d bytes: %v", key, n, err)
	}
	d.buffers[key] = buffer{p, n}
	return p, nil
}

func (d *Device) poolBytes() int64 {
	var s int64
	for _, b := range d.buffers {
		s += b.n
	}
	return s
}

// PoolBytes returns the bytes held by Buffer's pool; call it inside Do.
func (d *Device) PoolBytes() (int64, error) {
	if !d.inside() {
		return 0, ErrNotInDo
	}
	return d.poolBytes(), nil
}

// Close waits for the running Do, frees the pool, unloads the modules and
// destroys the context. Later calls return the first call's result; Do then
// returns ErrClosed. Close must not be called inside Do.
func (d *Device) Close() error {
	if d.onThread() {
		return errors.New("gpu: Device.Close called inside Device.Do")
	}
	d.once.Do(func() { close(d.quit) })
	<-d.done
	return d.err
}
