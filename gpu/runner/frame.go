// Package runner is the process boundary between taobox and the GPU: the
// wire protocol that a `taobox-cuda runner` subprocess speaks over a unix
// socket, the server loop it runs, the client, and the launcher that finds a
// usable NVIDIA GPU, starts the runner with the parent's lifetime and falls
// back to the CPU engines when the runner is missing, fails its self-test,
// times out or dies. Big payloads cross in a shared-memory region (a memfd
// the parent hands the runner; shm.go) instead of through the socket. It is
// pure Go and links no CUDA: the plain taobox uses it to drive taobox-cuda
// (see ../../docs/gpu-runner.md).
package runner

// Frames (docs/gpu-runner.md):
//
//	offset size field
//	0      4    payload length, bytes after the 20-byte header (u32 LE)
//	4      2    magic "TR"
//	6      1    version (1)
//	7      1    kind: 1 request, 2 response, 3 error response
//	8      2    op (u16 LE)
//	10     1    flags: bit 0 (FlagShm) the payload is a shared-memory
//	            descriptor (shm.go); other bits 0
//	11     1    reserved, 0
//	12     8    request id (u64 LE), echoed in the response
//	20     n    payload
//
// An error response's payload is a UTF-8 message. A frame with FlagShm has
// a 16-byte payload (u64 offset, u64 length) naming its real payload in the
// shared region; only a connection that attached the region sends one. A frame whose length is
// above the reader's cap is refused before anything is allocated.
//
// Design note: one request at a time per connection, answered in order; the
// id only catches a confused peer. The GPU serialises work anyway, and a
// second connection gives concurrency where it is wanted.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Version is the protocol version this package speaks.
const Version = 1

// HeaderSize is the size of a frame header.
const HeaderSize = 20

// DefaultMaxFrame caps a frame's payload unless a reader says otherwise:
// a dense 4096-uid subnet's weights and bonds are 128 MiB.
const DefaultMaxFrame = 512 << 20

// Kind is a frame's role.
type Kind uint8

const (
	KindRequest  Kind = 1
	KindResponse Kind = 2
	KindError    Kind = 3
)

// Op names a request.
type Op uint16

const (
	// OpHealth: empty request; the response is a UTF-8 description of the
	// runner (device, version).
	OpHealth Op = 1
	// OpYumaEpochs: the request is EncodeInputs of a batch, the response
	// EncodeOutputs of its outputs, in the same order.
	OpYumaEpochs Op = 2
	// OpShmAttach: the request is the u64 size of the shared region the
	// runner was started with (--shm-fd, --shm-size); the empty response
	// means this connection now owns the region (shm.go), an error
	// response that it keeps to the socket.
	OpShmAttach Op = 3
	// OpYumaPacked: a Yuma chunk the parent packed itself (packed.go): the
	// request is the chunk's gpuplan.Shape and input arena, the response
	// the kernels' output prefix and bond entries.
	OpYumaPacked Op = 4
	// OpLlamaLoad, OpLlamaForward, OpLlamaGenerate, OpLlamaScore and
	// OpLlamaSample run a model on the runner's GPU (llama.go); a runner
	// without one answers it with an error response.
	OpLlamaLoad     Op = 16
	OpLlamaForward  Op = 17
	OpLlamaGenerate Op = 18
	OpLlamaScore    Op = 19
	OpLlamaSample   Op = 20
)

func (o Op) String() string {
	switch o {
	case OpHealth:
		return "health"
	case OpYumaEpochs:
		return "yuma.epochs"
	case OpShmAttach:
		return "shm.attach"
	case OpYumaPacked:
		return "yuma.packed"
	case OpLlamaLoad:
		return "llama.load"
	case OpLlamaForward:
		return "llama.forward"
	case OpLlamaGenerate:
		return "llama.generate"
	case OpLlamaScore:
		return "llama.score"
	case OpLlamaSample:
		return "llama.sample"
	}
	return fmt.Sprintf("op(%d)", uint16(o))
}

// Frame is one message.
type Frame struct {
	Kind Kind
	Op   Op
	ID   uint64
	// Shm: Payload is a shared-memory descriptor (FlagShm).
	Shm     bool
	Payload []byte
}

// FlagShm is header byte 10's bit for a payload in shared memory.
const FlagShm = 1

// Errors of the framing layer.
var (
	// ErrFrameTooLarge: a frame's length is above the cap.
	ErrFrameTooLarge = errors.New("runner: frame too large")
	// ErrBadFrame: a header that is not this protocol's (magic, version,
	// kind or reserved bits).
	ErrBadFrame = errors.New("runner: malformed frame")
)

// AppendFrame appends f's encoding to buf.
func AppendFrame(buf []byte, f Frame) []byte {
	var h [HeaderSize]byte
	putHeader(h[:], f, len(f.Payload))
	buf = append(buf, h[:]...)
	return append(buf, f.Payload...)
}

func putHeader(h []byte, f Frame, n int) {
	binary.LittleEndian.PutUint32(h[0:], uint32(n))
	h[4], h[5] = 'T', 'R'
	h[6] = Version
	h[7] = byte(f.Kind)
	binary.LittleEndian.PutUint16(h[8:], uint16(f.Op))
	h[10], h[11] = 0, 0
	if f.Shm {
		h[10] = FlagShm
	}
	binary.LittleEndian.PutUint64(h[12:], f.ID)
}

// WriteFrame writes f to w without copying the payload (writev on a
// net.Conn).
func WriteFrame(w io.Writer, f Frame) error {
	if uint64(len(f.Payload)) > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes of payload", ErrFrameTooLarge, len(f.Payload))
	}
	h := make([]byte, HeaderSize)
	putHeader(h, f, len(f.Payload))
	bufs := net.Buffers{h, f.Payload}
	_, err := bufs.WriteTo(w)
	return err
}

// ParseHeader checks a frame header and returns the frame without its
// payload and the payload's length. max caps the length (0: DefaultMaxFrame).
func ParseHeader(h []byte, max int) (Frame, int, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if len(h) < HeaderSize {
		return Frame{}, 0, fmt.Errorf("%w: %d-byte header", ErrBadFrame, len(h))
	}
	if h[4] != 'T' || h[5] != 'R' {
		return Frame{}, 0, fmt.Errorf("%w: bad magic %#x %#x (not a taobox runner peer)", ErrBadFrame, h[4], h[5])
	}
	if h[6] != Version {
		return Frame{}, 0, fmt.Errorf("%w: protocol version %d, want %d (taobox and taobox-cuda from different builds?)", ErrBadFrame, h[6], Version)
	}
	k := Kind(h[7])
	if k < KindRequest || k > KindError {
		return Frame{}, 0, fmt.Errorf("%w: kind %d", ErrBadFrame, k)
	}
	if h[10]&^FlagShm != 0 || h[11] != 0 {
		return Frame{}, 0, fmt.Errorf("%w: reserved bits set", ErrBadFrame)
	}
	n := binary.LittleEndian.Uint32(h[0:])
	if uint64(n) > uint64(max) {
		return Frame{}, 0, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, max)
	}
	f := Frame{Kind: k, Op: Op(binary.LittleEndian.Uint16(h[8:])), ID: binary.LittleEndian.Uint64(h[12:]), Shm: h[10]&FlagShm != 0}
	if f.Shm && n != shmRefSize {
		return Frame{}, 0, fmt.Errorf("%w: shared-memory frame with a %d-byte descriptor, want %d", ErrBadFrame, n, shmRefSize)
	}
	return f, int(n), nil
}

// ReadFrame reads one frame whose payload is at most max bytes (0:
// DefaultMaxFrame). A clean EOF before the header is io.EOF; EOF inside a
// frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	return ReadFrameInto(r, max, nil)
}

// ReadFrameInto is ReadFrame reading the payload into buf's memory when it
// is large enough (the payload then aliases buf).
func ReadFrameInto(r io.Reader, max int, buf []byte) (Frame, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f, n, err := ParseHeader(h[:], max)
	if err != nil {
		return Frame{}, err
	}
	if cap(buf) >= n {
		f.Payload = buf[:n]
	} else {
		f.Payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}
