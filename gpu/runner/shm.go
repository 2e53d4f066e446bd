package runner

// The shared-memory payload path (docs/gpu-runner.md, "The boundary's cost").
//
// The parent creates a memfd of a fixed capacity (DefaultShmSize; its pages
// are allocated lazily, when first written), maps it and hands it to the
// runner as fd 3 with `--shm-fd 3 --shm-size N`; the runner maps it too.
// After the health check the client sends shm.attach on its connection;
// from then on a frame whose payload is at least ShmThreshold bytes carries
// only a 16-byte descriptor (u64 offset, u64 length, LE) on the socket, with
// flag bit 0 of header byte 10 set, and its payload lies in the region.
//
// Ownership (who may touch which half when). The region's first half is the
// request half, its second half the response half. One connection at a time
// owns the region (the one whose shm.attach succeeded, until it closes), and
// on it requests and responses alternate:
//
//   - the client writes the request half only while it has no request
//     outstanding (under Client.mu, before it sends the request frame), and
//     reads the response half only between receiving a response frame and
//     sending its next request;
//   - the server reads the request half only between receiving a request
//     frame and sending its response, and writes the response half only in
//     that same window (before the response frame goes out).
//
// So the two sides never touch the same bytes at the same time, and a frame
// goes on the socket only after the bytes it describes are written: a runner
// that dies mid-write sends no descriptor, and the client sees the socket's
// EOF, never a half-written answer. Because the request half is stable for
// the whole handler, the server decodes big slices of a request in place
// (aliasing the mapping, no copy); the client copies a response once, into
// the memory it returns, since its next request may follow at any time.
//
// A descriptor is untrusted input: the receiver checks that it lies inside
// the sender's half and below its frame cap before slicing the mapping.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// DefaultShmSize is the shared region's capacity: 512 MiB per direction,
// the default frame cap. Pages are allocated lazily, so a runner that moves
// 30 MB per batch holds about 30 MB of it.
const DefaultShmSize = 1 << 30

// ShmThreshold is the smallest payload that goes through the shared region
// by default; smaller ones are cheaper on the socket.
const ShmThreshold = 256 << 10

// MaxShmSize caps the region a runner accepts with --shm-size.
const MaxShmSize = 1 << 40

// shmRefSize is the size of a descriptor: u64 offset, u64 length.
const shmRefSize = 16

// ErrNoShm: shared memory is not available on this platform.
var ErrNoShm = errors.New("runner: shared-memory payloads need Linux (memfd)")

// Shm is a shared-memory region mapped by the parent and the runner. Its
// first half carries requests, its second half responses (see the
// ownership rule at the top of shm.go). Close unmaps it: only once nothing
// decodes from it any more.
type Shm struct {
	mem  []byte
	file *os.File // the parent's memfd, until CloseFile
}

// Size returns the region's capacity in bytes.
func (s *Shm) Size() int { return len(s.mem) }

func (s *Shm) reqHalf() []byte  { return s.mem[: len(s.mem)/2 : len(s.mem)/2] }
func (s *Shm) respHalf() []byte { return s.mem[len(s.mem)/2:] }

// Halves returns the request half and the response half of the mapping,
// for a GPU engine to page-lock in place (gpu.YumaEngine.HostRegions);
// the ownership rule above still governs who touches them when.
func (s *Shm) Halves() (req, resp []byte) { return s.reqHalf(), s.respHalf() }

// halfBounds returns the region offsets [lo, hi) of the request half
// (resp false) or of the response half.
func halfBounds(size int, resp bool) (lo, hi uint64) {
	if resp {
		return uint64(size / 2), uint64(size)
	}
	return 0, uint64(size / 2)
}

// appendShmRef appends the descriptor of the payload at offset off.
func appendShmRef(b []byte, off, n int) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(off))
	return binary.LittleEndian.AppendUint64(b, uint64(n))
}

// parseShmRef checks a descriptor against a region of size bytes: the
// payload must lie inside the sender's half ([lo, hi) of halfBounds) and be
// at most max bytes. It returns the payload's offset and length. Errors
// wrap ErrBadFrame.
func parseShmRef(desc []byte, size int, resp bool, max int) (off, n int, err error) {
	if len(desc) != shmRefSize {
		return 0, 0, fmt.Errorf("%w: shared-memory descriptor of %d bytes, want %d", ErrBadFrame, len(desc), shmRefSize)
	}
	o := binary.LittleEndian.Uint64(desc)
	l := binary.LittleEndian.Uint64(desc[8:])
	lo, hi := halfBounds(size, resp)
	half := "request"
	if resp {
		half = "response"
	}
	if o < lo || o > hi || l > hi-o {
		return 0, 0, fmt.Errorf("%w: shared-memory descriptor [%d, +%d) is outside the %s half [%d, %d) of the %d-byte region (a confused or corrupt peer)",
			ErrBadFrame, o, l, half, lo, hi, size)
	}
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if l > uint64(max) {
		return 0, 0, fmt.Errorf("%w: %d bytes in shared memory, cap %d", ErrFrameTooLarge, l, max)
	}
	return int(o), int(l), nil
}

// payload returns the bytes a descriptor names, aliasing the mapping.
func (s *Shm) payload(desc []byte, resp bool, max int) ([]byte, error) {
	off, n, err := parseShmRef(desc, len(s.mem), resp, max)
	if err != nil {
		return nil, err
	}
	return s.mem[off : off+n : off+n], nil
}

// offsetIn returns p's offset in half (which starts at region offset base)
// when p lies inside it.
func offsetIn(p, half []byte, base int) (int, bool) {
	if len(p) == 0 || len(half) == 0 {
		return 0, false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(half)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if at < start || at-start > uintptr(len(half)) || uintptr(len(p)) > uintptr(len(half))-(at-start) {
		return 0, false
	}
	return base + int(at-start), true
}

// shmArgs are the runner's flags for a region (fd 3, its first ExtraFile).
func shmArgs(s *Shm) []string {
	return []string{"--shm-fd", "3", "--shm-size", fmt.Sprint(s.Size())}
}

// encodeAttach and decodeAttach are shm.attach's request: u64 region size.
func encodeAttach(b []byte, size int) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(size))
}

func decodeAttach(p []byte) (int, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: shm.attach request of %d bytes, want 8", ErrBadPayload, len(p))
	}
	v := binary.LittleEndian.Uint64(p)
	if v > MaxShmSize {
		return 0, fmt.Errorf("%w: shm.attach size %d above %d", ErrBadPayload, v, uint64(MaxShmSize))
	}
	return int(v), nil
}
