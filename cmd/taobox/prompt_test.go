package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// zeroReader gives bytes, then reads of 0 bytes and no error forever, as
// a terminal's file descriptor does after Ctrl-D.
type zeroReader struct{ b []byte }

func (z *zeroReader) Read(p []byte) (int, error) {
	if len(z.b) == 0 {
		return 0, nil
	}
	n := copy(p, z.b)
	z.b = z.b[n:]
	return n, nil
}

func TestReadPasswordLine(t *testing.T) {
	for _, c := range []struct {
		name string
		r    io.Reader
		want string
		err  error
	}{
		{"line", strings.NewReader("secret\nrest"), "secret", nil},
		{"crlf", strings.NewReader("secret\r\n"), "secret", nil},
		{"eof after text", strings.NewReader("secret"), "secret", nil},
		{"eof", strings.NewReader(""), "", errEndOfInput},
		{"zero-byte read", &zeroReader{}, "", errEndOfInput},
		{"zero-byte read after text", &zeroReader{[]byte("abc")}, "abc", nil},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("a b\n")), "a b", nil},
		{"read error", iotest.ErrReader(io.ErrClosedPipe), "", io.ErrClosedPipe},
	} {
		done := make(chan struct{})
		var got []byte
		var err error
		go func() { got, err = readPasswordLine(c.r); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: readPasswordLine still reading after 5 s", c.name)
		}
		if string(got) != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := readPasswordLine(strings.NewReader(strings.Repeat("x", maxPromptLen+1))); err == nil {
		t.Error("an overlong line was accepted")
	}
}

// TestAskPasswordInterrupt: an ended context (Ctrl-C) answers a prompt
// blocked in its read at once with errInterrupted.
func TestAskPasswordInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	block := make(chan struct{})
	defer close(block)
	read := func() ([]byte, error) { <-block; return []byte("late"), nil }
	var w bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		_, err := askPassword(ctx, &w, "Password: ", read)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, errInterrupted) {
			t.Fatalf("got %v, want errInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("askPassword still waiting 5 s after the context ended")
	}
	if w.String() != "Password: \n" {
		t.Errorf("wrote %q", w.String())
	}
	if _, err := askPassword(ctx, &w, "Again: ", read); !errors.Is(err, errInterrupted) {
		t.Fatalf("with an ended context: %v, want errInterrupted", err)
	}

	pw, err := askPassword(context.Background(), io.Discard, "Password: ", func() ([]byte, error) { return readPasswordLine(strings.NewReader("pw\n")) })
	if string(pw) != "pw" || err != nil {
		t.Fatalf("got %q, %v", pw, err)
	}
	if _, err := askPassword(context.Background(), io.Discard, "Password: ", func() ([]byte, error) { return readPasswordLine(&zeroReader{}) }); !errors.Is(err, errEndOfInput) {
		t.Fatalf("end of input: %v, want errEndOfInput", err)
	}
}
