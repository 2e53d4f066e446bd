package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// yuma.packed: the parent validates and packs a Yuma batch itself
// (gpuplan.Pack, straight into the request half of the shared region) and
// unpacks the answer (gpuplan.Batch.SetOutputs, Unpack); the runner only
// stages the arena, runs the kernels and returns what they downloaded.
// yuma.epochs sends every input field across and back instead, and packs
// and unpacks in the runner: four full passes over the batch that this op
// does not make.
//
// Payloads are native-endian words (both ends are one machine: the runner
// is the parent's child).
//
//	request  = u32 A (the arena's offset in the payload, 56..63, chosen so
//	           that the arena is 8-byte aligned in the sender's memory),
//	           u32 0, 6 × u64 shape (S, U, NW, NB, Cells, BondCap),
//	           A − 56 zero bytes, the input arena (Layout.InWords words;
//	           the first gpuplan.DCount are the runner's to fill)
//	response = u64 T (bond entries), the output prefix (Layout.OutWords
//	           words), T × u32 bond entries

// packedHeader is the request's fixed part.
const packedHeader = 8 + 6*8

// PackedEngine runs the kernels of a batch the parent packed: the runner
// side of OpYumaPacked.
type PackedEngine interface {
	// RunPacked runs the kernels over arena, the input arena of a batch
	// with layout l (l.InWords native-endian words; the first
	// gpuplan.DCount are the engine's to overwrite in its own copy), and
	// appends the response (T, the output prefix, T bond entries) to out.
	// arena is valid only during the call.
	RunPacked(ctx context.Context, l *gpuplan.Layout, arena []byte, out []byte) ([]byte, error)
}

// GoKernels is a PackedEngine on the CPU: gpuplan's Go kernels, the CUDA
// kernels' reference (bit for bit the CPU engine's). The fake runners serve
// yuma.packed with it.
type GoKernels struct{}

// RunPacked implements PackedEngine.
func (GoKernels) RunPacked(_ context.Context, l *gpuplan.Layout, arena []byte, out []byte) ([]byte, error) {
	in := gpuplan.Words(arena)
	if in == nil { // misaligned: a copy
		in = make([]int64, len(arena)/8)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(in))), len(in)*8), arena)
	}
	b, err := gpuplan.FromArena(l, in) // the kernels only read the input arena
	if err != nil {
		return nil, err
	}
	b.Run()
	prefix, bonds := b.Outputs()
	return AppendPackedResponse(out, prefix, bonds), nil
}

// AppendPackedResponse appends a yuma.packed response: the bond entry
// count, the output prefix and the bond entries (copied on several cores:
// megabytes into the shared region).
func AppendPackedResponse(out []byte, prefix []int64, bonds []uint32) []byte {
	start, np, nb := len(out), len(prefix)*8, len(bonds)*4
	out = slices.Grow(out, 8+np+nb)[:start+8+np+nb]
	binary.NativeEndian.PutUint64(out[start:], uint64(len(bonds)))
	gpuplan.CopyParallel(out[start+8:start+8+np], gpuplan.Bytes(prefix))
	if nb > 0 {
		gpuplan.CopyParallel(out[start+8+np:], unsafe.Slice((*byte)(unsafe.Pointer(&bonds[0])), nb))
	}
	return out
}

// PackedResponseRoom lays out a yuma.packed response for l in place after
// out's length, for an engine that downloads straight into it: when out's
// capacity holds the largest one (the bond capacity's worth of entries;
// the shared region's response half does) with its words aligned, it
// returns views of where the output prefix and the bond entries go, and
// finish, which writes the bond entry count t and returns out grown to
// the response. ok false: append the response with AppendPackedResponse.
func PackedResponseRoom(out []byte, l *gpuplan.Layout) (prefix []int64, bonds []uint32, finish func(t int64) []byte, ok bool) {
	start, np := len(out), int(l.OutWords)*8
	need := 8 + np + int(l.BondCap)*4
	if cap(out)-start < need {
		return nil, nil, nil, false
	}
	buf := out[start : start+need]
	b := buf[8+np:]
	if prefix = gpuplan.Words(buf[8 : 8+np]); prefix == nil || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil, nil, nil, false
	}
	bonds = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), l.BondCap)
	return prefix, bonds, func(t int64) []byte {
		binary.NativeEndian.PutUint64(buf, uint64(t))
		return out[:start+8+np+int(t)*4]
	}, true
}

// decodePackedRequest returns the layout and the input arena of a
// yuma.packed request (the arena aliases p).
func decodePackedRequest(p []byte) (*gpuplan.Layout, []byte, error) {
	if len(p) < packedHeader {
		return nil, nil, fmt.Errorf("%w: yuma.packed request of %d bytes", ErrBadPayload, len(p))
	}
	a := binary.NativeEndian.Uint32(p)
	if a < packedHeader || a > packedHeader+7 || int(a) > len(p) || binary.NativeEndian.Uint32(p[4:]) != 0 {
		return nil, nil, fmt.Errorf("%w: yuma.packed arena offset %d", ErrBadPayload, a)
	}
	var v [6]int64
	for i := range v {
		v[i] = int64(binary.NativeEndian.Uint64(p[8+8*i:]))
	}
	sh := gpuplan.Shape{S: v[0], U: v[1], NW: v[2], NB: v[3], Cells: v[4], BondCap: v[5]}
	l, err := sh.Layout()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	arena := p[a:]
	if int64(len(arena)) != l.InWords*8 {
		return nil, nil, fmt.Errorf("%w: yuma.packed arena of %d bytes, shape %+v needs %d", ErrBadPayload, len(arena), sh, l.InWords*8)
	}
	return l, arena, nil
}

// appendPacked appends a yuma.packed request for ins[chunk] to buf, packing
// the chunk straight into it, and returns the batch (for Unpack).
func appendPacked(buf []byte, ins []yuma.Input, chunk []int) ([]byte, *gpuplan.Batch) {
	inWords := gpuplan.InWords(ins, chunk)
	start := len(buf)
	buf = slices.Grow(buf, packedHeader+7+int(inWords)*8)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf))) + uintptr(start+packedHeader)
	a := packedHeader + int((8-addr%8)%8)
	buf = buf[:start+a+int(inWords)*8]
	arena := gpuplan.Words(buf[start+a:])
	clear(arena[:gpuplan.DCount])
	b := gpuplan.Pack(ins, chunk, false, arena) // in place: arena holds exactly InWords
	h := buf[start : start+a]
	clear(h)
	binary.NativeEndian.PutUint32(h, uint32(a))
	sh := b.L.Shape()
	for i, v := range []int64{sh.S, sh.U, sh.NW, sh.NB, sh.Cells, sh.BondCap} {
		binary.NativeEndian.PutUint64(h[8+8*i:], uint64(v))
	}
	return buf, b
}

// unpackPacked checks a yuma.packed response against b and decodes it
// into outs[chunk].
func unpackPacked(p []byte, b *gpuplan.Batch, chunk []int, outs []yuma.Output) error {
	l := b.L
	if len(p) < 8 {
		return fmt.Errorf("%w: yuma.packed response of %d bytes", ErrBadPayload, len(p))
	}
	t := binary.NativeEndian.Uint64(p)
	if t > uint64(l.BondCap) || int64(len(p)) != 8+l.OutWords*8+int64(t)*4 {
		return fmt.Errorf("%w: yuma.packed response of %d bytes for %d bond entries (capacity %d, prefix %d words)", ErrBadPayload, len(p), t, l.BondCap, l.OutWords)
	}
	pb, bb := p[8:8+l.OutWords*8], p[8+l.OutWords*8:]
	prefix := gpuplan.Words(pb)
	if prefix == nil {
		prefix = make([]int64, l.OutWords)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(prefix))), len(pb)), pb)
	}
	var bonds []uint32
	switch {
	case t == 0:
	case uintptr(unsafe.Pointer(&bb[0]))%4 == 0:
		bonds = unsafe.Slice((*uint32)(unsafe.Pointer(&bb[0])), t)
	default: // misaligned: a copy
		bonds = make([]uint32, t)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&bonds[0])), len(bb)), bb)
	}
	if err := b.SetOutputs(prefix, bonds); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	b.Unpack(chunk, outs)
	return nil
}

// EpochsPacked runs a Yuma batch through yuma.packed: validated and packed
// here (into the request half of the shared region when one is attached),
// the kernels on the runner, unpacked here; the inputs the kernels do not
// take (gpuplan.Eligible) run on cpu meanwhile. Invalid inputs get the CPU
// engine's error and send nothing. A runner without the op answers a
// RemoteError whose NotServed is true.
func (c *Client) EpochsPacked(ctx context.Context, ins []yuma.Input, cpu *yuma.CPUEngine) ([]yuma.Output, error) {
	if err := gpuplan.Validate(ins); err != nil {
		return nil, err
	}
	return c.epochsPacked(ctx, ctx, ins, cpu)
}

// errCPUShare marks an error of the node's own share of a yuma.packed
// batch (the inputs the kernels do not take), not the runner's.
var errCPUShare = errors.New("runner: the CPU's share of the batch")

// epochsPacked is EpochsPacked for validated inputs: the runner's share
// under ctx, the CPU's under cpuCtx (an error there wraps errCPUShare).
func (c *Client) epochsPacked(ctx, cpuCtx context.Context, ins []yuma.Input, cpu *yuma.CPUEngine) ([]yuma.Output, error) {
	outs := make([]yuma.Output, len(ins))
	dev, cpuIdx := gpuplan.Split(ins)
	var wg sync.WaitGroup
	var cpuErr error
	cctx, cancel := context.WithCancel(cpuCtx) // a failed call stops the CPU's share: the batch reruns anyway
	defer cancel()
	if len(cpuIdx) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cpuErr = gpuplan.RunCPU(cctx, cpu, ins, cpuIdx, outs)
		}()
	}
	var err error
	for _, chunk := range gpuplan.Chunks(ins, dev) {
		var b *gpuplan.Batch
		err = c.call(ctx, OpYumaPacked, func(buf []byte) []byte {
			buf, b = appendPacked(buf, ins, chunk)
			return buf
		}, func(p []byte) error { return unpackPacked(p, b, chunk, outs) })
		if err != nil {
			cancel()
			break
		}
	}
	wg.Wait()
	if err == nil && cpuErr != nil {
		err = fmt.Errorf("%w: %w", errCPUShare, cpuErr)
	}
	if err != nil {
		return nil, err
	}
	return outs, nil
}
