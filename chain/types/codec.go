// Package types holds what the chain's parts exchange: blocks, headers,
// transactions, events, keys and addresses, and their one canonical binary
// encoding. Everything hashed or signed is encoded here.
//
// The encoding is explicit and order-fixed: integers are big-endian and of
// fixed width, variable-length fields carry a u32 length prefix and a cap,
// and there are no maps. Decoding then re-encoding gives back the same bytes;
// a decoder rejects trailing bytes, lengths over their cap and
// non-canonical values (e.g. a bool other than 0 or 1).
package types

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Writer appends canonical encodings to a byte slice. It never fails.
type Writer struct{ buf []byte }

// NewWriter returns a writer that appends to buf (which may be nil).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf} }

// Bytes returns the encoding written so far.
func (w *Writer) Bytes() []byte { return w.buf }

// U8 writes v as one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// U16 writes v as 2 bytes, big-endian.
func (w *Writer) U16(v uint16) { w.buf = binary.BigEndian.AppendUint16(w.buf, v) }

// U32 writes v as 4 bytes, big-endian.
func (w *Writer) U32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// U64 writes v as 8 bytes, big-endian.
func (w *Writer) U64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// Bool writes 1 or 0.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Fixed writes b as is (its length is known to the reader).
func (w *Writer) Fixed(b []byte) { w.buf = append(w.buf, b...) }

// VarBytes writes a u32 length, then b.
func (w *Writer) VarBytes(b []byte) {
	w.U32(uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// String writes a u32 length, then the bytes of s.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

// Len writes a u32 element count for a list that follows.
func (w *Writer) Len(n int) { w.U32(uint32(n)) }

// Errors a Reader reports (wrapped with the field that failed).
var (
	ErrShort     = errors.New("input ends early")
	ErrTooLong   = errors.New("length over its cap")
	ErrTrailing  = errors.New("trailing bytes after the value")
	ErrNonCanon  = errors.New("non-canonical encoding")
	ErrBadFormat = errors.New("malformed value")
)

// Reader decodes a canonical encoding. The first failure sticks: later reads
// return zero values, and Err reports the failure with the field it hit.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader returns a reader over b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first error, if any.
func (r *Reader) Err() error { return r.err }

// Fail records err (if none is recorded yet) for field.
func (r *Reader) Fail(field string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w (at byte %d)", field, err, r.off)
	}
}

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Done returns the first error, or ErrTrailing if bytes are left unread.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.buf) {
		r.err = fmt.Errorf("%w: %d bytes", ErrTrailing, len(r.buf)-r.off)
	}
	return r.err
}

func (r *Reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.off {
		r.Fail(field, ErrShort)
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

// U8 reads one byte.
func (r *Reader) U8(field string) uint8 {
	if b := r.take(field, 1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a big-endian u16.
func (r *Reader) U16(field string) uint16 {
	if b := r.take(field, 2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// U32 reads a big-endian u32.
func (r *Reader) U32(field string) uint32 {
	if b := r.take(field, 4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U64 reads a big-endian u64.
func (r *Reader) U64(field string) uint64 {
	if b := r.take(field, 8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool(field string) bool {
	switch r.U8(field) {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail(field, ErrNonCanon)
	return false
}

// Fixed reads exactly n bytes into dst.
func (r *Reader) Fixed(field string, dst []byte) {
	if b := r.take(field, len(dst)); b != nil {
		copy(dst, b)
	}
}

// VarBytes reads a u32 length (at most max) and that many bytes, copied.
func (r *Reader) VarBytes(field string, max int) []byte {
	n := r.Len(field, max)
	b := r.take(field, n)
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// String reads a u32 length (at most max) and that many bytes.
func (r *Reader) String(field string, max int) string {
	n := r.Len(field, max)
	return string(r.take(field, n))
}

// Len reads a u32 element count and checks it against max and against the
// bytes left (each element takes at least one byte), so a hostile count
// cannot make the caller allocate more than the input justifies.
func (r *Reader) Len(field string, max int) int {
	n := r.U32(field)
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.Fail(field, fmt.Errorf("%w: %d > %d", ErrTooLong, n, max))
		return 0
	}
	if int(n) > r.Remaining() {
		r.Fail(field, ErrShort)
		return 0
	}
	return int(n)
}
