package p2p

// Frames. Every stream carries exactly one frame in each direction it is
// used:
//
//	gossip   (unidirectional stream): [type u8][len u32 BE][payload]          FIN
//	request  (bidirectional, opener):  [type u8][len u32 BE][payload]          FIN
//	response (bidirectional, answer):  [status u8][len u32 BE][payload]        FIN
//
// A reader learns the frame's cap from its first byte (the message type's
// MaxMessage or MaxResponse, or MaxErrorMsg for a non-OK status) and
// refuses a larger length before reading any payload; the payload is then
// read through an io.LimitReader of exactly that length, in growing
// buffers, so a peer that announces 8 MiB and sends nothing costs us one
// small buffer, not 8 MiB.
//
// Design note: a length prefix per stream is redundant with QUIC's FIN, but
// it lets the reader refuse an oversized message before buffering it and
// keeps the format identical if several frames ever share a stream.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"taobox/chain/types"
)

// FrameHeaderSize is the size of a frame header: kind u8, length u32.
const FrameHeaderSize = 5

// Response status bytes.
const (
	StatusOK         byte = 0 // payload: the response (≤ t.MaxResponse())
	StatusNotFound   byte = 1 // payload: a message (≤ MaxErrorMsg); Request returns ErrNotFound
	StatusError      byte = 2 // payload: a message; the server failed
	StatusBusy       byte = 3 // payload: a message; rate limited or serve slots full, retry later
	StatusRefused    byte = 4 // payload: a message; the request is not acceptable (e.g. no Hello yet, wrong chain)
	StatusBadRequest byte = 5 // payload: a message; the request body did not decode
)

// MaxErrorMsg caps the payload of a response whose status is not StatusOK.
const MaxErrorMsg = 256

// AppendFrame appends the frame [kind][len(payload)][payload] to dst.
func AppendFrame(dst []byte, kind byte, payload []byte) []byte {
	dst = append(dst, kind)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// ReadFrame reads one frame from r. capOf returns the largest payload
// allowed for a kind, or a negative number for a kind that may not appear
// here; either violation returns an error wrapping ErrMisbehaving before
// any payload is read. A frame cut short returns an error wrapping
// io.ErrUnexpectedEOF (io.EOF if r was empty); those are not misbehaviour
// (the connection may have dropped).
func ReadFrame(r io.Reader, capOf func(kind byte) int) (byte, []byte, error) {
	kind, n, err := readHeader(r)
	if err != nil {
		return 0, nil, err
	}
	if err := checkCap(kind, n, capOf(kind)); err != nil {
		return kind, nil, err
	}
	payload, err := readPayload(r, n)
	return kind, payload, err
}

// checkCap returns an ErrMisbehaving error if a frame of kind with n bytes
// exceeds max (max < 0: kind not allowed).
func checkCap(kind byte, n int, max int) error {
	if max < 0 {
		return fmt.Errorf("%w: frame kind %d not allowed here", ErrMisbehaving, kind)
	}
	if n > max {
		return fmt.Errorf("%w: frame kind %d announces %d bytes, cap %d", ErrMisbehaving, kind, n, max)
	}
	return nil
}

// readHeader reads the 5-byte frame header.
func readHeader(r io.Reader) (byte, int, error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, fmt.Errorf("p2p: read frame header: %w", err)
	}
	n := uint64(binary.BigEndian.Uint32(hdr[1:]))
	if n > uint64(maxInt) {
		n = uint64(maxInt) // only on 32-bit; every cap rejects it
	}
	return hdr[0], int(n), nil
}

const maxInt = int(^uint(0) >> 1)

// readPayload reads exactly n bytes through an io.LimitReader, growing the
// buffer as bytes arrive (first step 64 KiB).
func readPayload(r io.Reader, n int) ([]byte, error) {
	lr := io.LimitReader(r, int64(n))
	buf := make([]byte, 0, min(n, 64<<10))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), n))
			copy(nb, buf)
			buf = nb
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF && len(buf) < n {
				err = io.ErrUnexpectedEOF
			}
			if len(buf) < n {
				return nil, fmt.Errorf("p2p: read frame payload: %d of %d bytes: %w", len(buf), n, err)
			}
		}
	}
	return buf, nil
}

// ProtocolVersion is the p2p protocol version carried in Hello. A peer with
// another version is refused.
const ProtocolVersion = 1

// HelloSize is the size of an encoded Hello of this version; a Hello may
// carry more bytes (fields of a later minor revision), up to
// types.MaxHelloMsg, which this version ignores.
const HelloSize = 2 + 32 + 2 + 8 + 8 + 32

// Hello is the first request on a connection, sent by both sides, and the
// response to it. Encoding (big-endian): version u16 | chainID [32] |
// listenPort u16 | head u64 | finalized u64 | headHash [32].
type Hello struct {
	Version    uint16
	ChainID    types.Hash
	ListenPort uint16 // the UDP port the sender accepts connections on (0: none)
	Status     Status
}

// Encode returns the HelloSize-byte encoding of m.
func (m Hello) Encode() []byte {
	b := make([]byte, 0, HelloSize)
	b = binary.BigEndian.AppendUint16(b, m.Version)
	b = append(b, m.ChainID[:]...)
	b = binary.BigEndian.AppendUint16(b, m.ListenPort)
	b = binary.BigEndian.AppendUint64(b, m.Status.Head)
	b = binary.BigEndian.AppendUint64(b, m.Status.Finalized)
	return append(b, m.Status.HeadHash[:]...)
}

// ErrBadHello: a Hello that does not decode.
var ErrBadHello = errors.New("p2p: malformed hello")

// DecodeHello decodes a Hello. It needs at least HelloSize bytes and at most
// types.MaxHelloMsg; bytes after HelloSize are ignored. A payload of at
// least 2 bytes always yields the Version, even with an error, so a caller
// can tell "another protocol version" from "garbage".
func DecodeHello(b []byte) (Hello, error) {
	var m Hello
	if len(b) >= 2 {
		m.Version = binary.BigEndian.Uint16(b)
	}
	if len(b) > types.MaxHelloMsg {
		return m, fmt.Errorf("%w: %d bytes > %d", ErrBadHello, len(b), types.MaxHelloMsg)
	}
	if len(b) < HelloSize {
		return m, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadHello, len(b), HelloSize)
	}
	copy(m.ChainID[:], b[2:34])
	m.ListenPort = binary.BigEndian.Uint16(b[34:])
	m.Status.Head = binary.BigEndian.Uint64(b[36:])
	m.Status.Finalized = binary.BigEndian.Uint64(b[44:])
	copy(m.Status.HeadHash[:], b[52:84])
	return m, nil
}

// PeerAddr is one entry of a ReqPeers response: a peer's ID and the
// "host:port" it accepts connections on.
type PeerAddr struct {
	ID   PeerID
	Addr string
}

// MaxPeersPerResponse caps the entries of a ReqPeers response.
const MaxPeersPerResponse = 64

// maxAddrLen caps one address string ("[ipv6%zone]:65535" fits).
const maxAddrLen = 80

// ErrBadPeers: a ReqPeers response that does not decode.
var ErrBadPeers = errors.New("p2p: malformed peers response")

// EncodePeers encodes a ReqPeers response: count u16 | count × (id [32] |
// addrLen u8 | addr). Entries past MaxPeersPerResponse and entries whose
// address is longer than 80 bytes are left out.
func EncodePeers(ps []PeerAddr) []byte {
	var keep []PeerAddr
	for _, p := range ps {
		if len(p.Addr) <= maxAddrLen && len(keep) < MaxPeersPerResponse {
			keep = append(keep, p)
		}
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(keep)))
	for _, p := range keep {
		b = append(b, p.ID[:]...)
		b = append(b, byte(len(p.Addr)))
		b = append(b, p.Addr...)
	}
	return b
}

// DecodePeers decodes a ReqPeers response. It rejects more than
// MaxPeersPerResponse entries, an address longer than 80 bytes or one that
// is not host:port with a numeric port, and trailing bytes.
func DecodePeers(b []byte) ([]PeerAddr, error) {
	if len(b) > types.MaxPeersResp {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrBadPeers, len(b), types.MaxPeersResp)
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 2", ErrBadPeers, len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > MaxPeersPerResponse {
		return nil, fmt.Errorf("%w: %d entries > %d", ErrBadPeers, n, MaxPeersPerResponse)
	}
	b = b[2:]
	out := make([]PeerAddr, 0, n)
	for i := range n {
		if len(b) < 33 {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrBadPeers, i)
		}
		var p PeerAddr
		copy(p.ID[:], b)
		l := int(b[32])
		b = b[33:]
		if l > maxAddrLen || l > len(b) {
			return nil, fmt.Errorf("%w: entry %d: address of %d bytes (max %d, %d left)", ErrBadPeers, i, l, maxAddrLen, len(b))
		}
		p.Addr = string(b[:l])
		b = b[l:]
		if err := checkHostPort(p.Addr); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrBadPeers, i, err)
		}
		out = append(out, p)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadPeers, len(b))
	}
	return out, nil
}

// checkHostPort reports an error unless s is "host:port" with a non-empty
// host and a port in 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("address %q: %v", s, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("address %q: port must be 1..65535", s)
	}
	return nil
}
