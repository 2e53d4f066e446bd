package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// packedRequest is the yuma.packed request for ins (one chunk, all
// eligible), at offset off of a fresh buffer, and its batch.
func packedRequest(t testing.TB, ins []yuma.Input, off int) ([]byte, *gpuplan.Batch, []int) {
	dev, _ := gpuplan.Split(ins)
	chunks := gpuplan.Chunks(ins, dev)
	if len(chunks) != 1 {
		t.Fatalf("%d chunks", len(chunks))
	}
	buf, b := appendPacked(make([]byte, off, off+64), ins, chunks[0])
	return buf[off:], b, chunks[0]
}

// The request decodes to the packer's layout and arena, wherever the
// sender's buffer started; the response of the Go kernels unpacks to the
// CPU engine's outputs.
func TestPackedRoundTrip(t *testing.T) {
	ins := gpuplan.RandomBatch(7, 6)
	dev, _ := gpuplan.Split(ins)
	want := cpuOutputs(t, ins)
	for off := range 8 {
		p, b, chunk := packedRequest(t, ins, off)
		l, arena, err := decodePackedRequest(p)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if *l != *b.L || len(arena) != len(b.In)*8 || &arena[0] != (*byte)(unsafePointer(&b.In[0])) {
			t.Fatalf("offset %d: the decoded request is not the packed batch", off)
		}
		resp, err := GoKernels{}.RunPacked(context.Background(), l, arena, make([]byte, off))
		if err != nil {
			t.Fatal(err)
		}
		outs := make([]yuma.Output, len(ins))
		if err := unpackPacked(resp[off:], b, chunk, outs); err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		for _, i := range dev {
			sameOutputs(t, outs[i:i+1], want[i:i+1])
		}
	}
}

// PackedResponseRoom lays out in place the bytes AppendPackedResponse
// appends, and declines a buffer without room or with misaligned words.
func TestPackedResponseRoom(t *testing.T) {
	ins := gpuplan.RandomBatch(7, 6)
	p, _, _ := packedRequest(t, ins, 0)
	l, arena, err := decodePackedRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gpuplan.FromArena(l, gpuplan.Words(arena))
	if err != nil {
		t.Fatal(err)
	}
	b.Run()
	prefix, bonds := b.Outputs()
	want := AppendPackedResponse(nil, prefix, bonds)
	need := 8 + int(l.OutWords)*8 + int(l.BondCap)*4
	words := make([]int64, need/8+2)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	room, roomBonds, finish, ok := PackedResponseRoom(mem[:8], l) // 8 bytes already there
	if !ok {
		t.Fatal("PackedResponseRoom declined a buffer with room")
	}
	copy(room, prefix)
	copy(roomBonds, bonds)
	if got := finish(int64(len(bonds))); string(got[8:]) != string(want) || len(got) != 8+len(want) {
		t.Fatalf("in place: %d bytes, unlike the %d AppendPackedResponse appends", len(got)-8, len(want))
	}
	if _, _, _, ok := PackedResponseRoom(mem[:8:need], l); ok {
		t.Fatal("PackedResponseRoom took a buffer without room")
	}
	if _, _, _, ok := PackedResponseRoom(mem[1:1:len(mem)], l); ok {
		t.Fatal("PackedResponseRoom took misaligned words")
	}
}

func TestDecodePackedRequestRejects(t *testing.T) {
	good, _, _ := packedRequest(t, []yuma.Input{tinyInput()}, 0)
	if _, _, err := decodePackedRequest(good); err != nil {
		t.Fatal(err)
	}
	put := func(p []byte, at int, v uint64) []byte { binary.NativeEndian.PutUint64(p[at:], v); return p }
	for name, mut := range map[string]func([]byte) []byte{
		"empty":         func(p []byte) []byte { return nil },
		"short header":  func(p []byte) []byte { return p[:packedHeader-1] },
		"offset low":    func(p []byte) []byte { binary.NativeEndian.PutUint32(p, packedHeader-1); return p },
		"offset high":   func(p []byte) []byte { binary.NativeEndian.PutUint32(p, packedHeader+8); return p },
		"reserved":      func(p []byte) []byte { binary.NativeEndian.PutUint32(p[4:], 1); return p },
		"no subnets":    func(p []byte) []byte { return put(p, 8, 0) },
		"uids":          func(p []byte) []byte { return put(p, 16, 1<<40) },
		"cells":         func(p []byte) []byte { return put(p, 40, gpuplan.MaxCells+1) },
		"arena short":   func(p []byte) []byte { return p[:len(p)-8] },
		"arena long":    func(p []byte) []byte { return append(p, make([]byte, 8)...) },
		"weights grown": func(p []byte) []byte { return put(p, 24, binary.NativeEndian.Uint64(p[24:])+2) },
	} {
		p := mut(append([]byte(nil), good...))
		if _, _, err := decodePackedRequest(p); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v, want ErrBadPayload", name, err)
		}
	}
}

func FuzzPackedRequest(f *testing.F) {
	good, _, _ := packedRequest(f, []yuma.Input{tinyInput()}, 0)
	f.Add(good)
	f.Add(good[:packedHeader])
	f.Fuzz(func(t *testing.T, p []byte) {
		l, arena, err := decodePackedRequest(p)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if again, err := l.Shape().Layout(); err != nil || *again != *l || int64(len(arena)) != l.InWords*8 {
			t.Fatalf("decoded layout %+v does not stand: %v", l.Shape(), err)
		}
	})
}

// Whatever the runner answers, the parent unpacks it or refuses it with
// ErrBadPayload; it never panics.
func FuzzPackedResponse(f *testing.F) {
	ins := []yuma.Input{tinyInput(), tinyInput()}
	p, _, _ := packedRequest(f, ins, 0)
	l, arena, err := decodePackedRequest(p)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := GoKernels{}.RunPacked(context.Background(), l, arena, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add(resp[:8])
	f.Fuzz(func(t *testing.T, resp []byte) {
		_, b, chunk := packedRequest(t, ins, 0)
		outs := make([]yuma.Output, len(ins))
		if err := unpackPacked(resp, b, chunk, outs); err != nil && !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func unsafePointer(p *int64) unsafe.Pointer { return unsafe.Pointer(p) }
