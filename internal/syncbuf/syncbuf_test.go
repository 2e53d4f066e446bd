package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers and a reader at once (run with -race): every write lands whole.
func TestConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := b.Count("line\n"); n != 800 || len(b.String()) != 800*len("line\n") {
		t.Fatalf("%d lines, %d bytes; want 800 lines", n, len(b.String()))
	}
	if strings.Count(b.String(), "\n") != 800 {
		t.Fatal("a write was split")
	}
}
