package runner

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func shmRef(off, n uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, off)
	return binary.LittleEndian.AppendUint64(b, n)
}

// Descriptors are untrusted: anything outside the sender's half, past the
// region, overflowing, or above the frame cap is refused.
func TestShmRefBounds(t *testing.T) {
	const size = 1 << 20 // halves [0, 512 KiB) and [512 KiB, 1 MiB)
	const half = size / 2
	for _, tc := range []struct {
		name    string
		desc    []byte
		resp    bool
		max     int
		off, n  int
		wantErr string
	}{
		{name: "request at 0", desc: shmRef(0, 100), off: 0, n: 100},
		{name: "whole request half", desc: shmRef(0, half), off: 0, n: half},
		{name: "empty at the end", desc: shmRef(half, 0), off: half, n: 0},
		{name: "response half", desc: shmRef(half, 10), resp: true, off: half, n: 10},
		{name: "response to the end", desc: shmRef(half+5, half-5), resp: true, off: half + 5, n: half - 5},
		{name: "request crosses into the response half", desc: shmRef(half-4, 8), wantErr: "outside the request half"},
		{name: "request in the response half", desc: shmRef(half, 1), wantErr: "outside the request half"},
		{name: "response in the request half", desc: shmRef(0, 10), resp: true, wantErr: "outside the response half"},
		{name: "past the mapping", desc: shmRef(size-2, 4), resp: true, wantErr: "outside"},
		{name: "offset past the mapping", desc: shmRef(size+1, 0), resp: true, wantErr: "outside"},
		{name: "offset+length overflows", desc: shmRef(half+8, math.MaxUint64-4), resp: true, wantErr: "outside"},
		{name: "huge offset", desc: shmRef(math.MaxUint64, 2), wantErr: "outside"},
		{name: "above the cap", desc: shmRef(0, 1000), max: 999, wantErr: "cap 999"},
		{name: "short descriptor", desc: shmRef(0, 1)[:15], wantErr: "descriptor of 15 bytes"},
		{name: "long descriptor", desc: append(shmRef(0, 1), 0), wantErr: "descriptor of 17 bytes"},
	} {
		off, n, err := parseShmRef(tc.desc, size, tc.resp, tc.max)
		if tc.wantErr == "" {
			if err != nil || off != tc.off || n != tc.n {
				t.Errorf("%s: %d, %d, %v; want %d, %d", tc.name, off, n, err, tc.off, tc.n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) ||
			!(errors.Is(err, ErrBadFrame) || errors.Is(err, ErrFrameTooLarge)) {
			t.Errorf("%s: err %v, want ErrBadFrame/ErrFrameTooLarge with %q", tc.name, err, tc.wantErr)
		}
	}
}

// FuzzShmRef: an accepted descriptor always names bytes inside the
// sender's half and re-encodes to itself.
func FuzzShmRef(f *testing.F) {
	f.Add(shmRef(0, 100), uint32(1<<20), false, uint32(0))
	f.Add(shmRef(1<<19, 10), uint32(1<<20), true, uint32(5))
	f.Add(shmRef(math.MaxUint64, math.MaxUint64), uint32(64), true, uint32(0))
	f.Add([]byte{1, 2, 3}, uint32(2), false, uint32(0))
	f.Fuzz(func(t *testing.T, desc []byte, size uint32, resp bool, max uint32) {
		sz := int(size &^ 1)
		off, n, err := parseShmRef(desc, sz, resp, int(max))
		if err != nil {
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		lo, hi := halfBounds(sz, resp)
		if off < 0 || n < 0 || uint64(off) < lo || uint64(off)+uint64(n) > hi || (max > 0 && n > int(max)) {
			t.Fatalf("accepted [%d, +%d) outside [%d, %d) or above %d", off, n, lo, hi, max)
		}
		if re := appendShmRef(nil, off, n); string(re) != string(desc) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func TestAttachDecode(t *testing.T) {
	if n, err := decodeAttach(encodeAttach(nil, 1<<30)); err != nil || n != 1<<30 {
		t.Fatalf("%d, %v", n, err)
	}
	for _, p := range [][]byte{nil, {1, 2, 3}, encodeAttach(nil, MaxShmSize+2)} {
		if _, err := decodeAttach(p); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%x: %v, want ErrBadPayload", p, err)
		}
	}
}
