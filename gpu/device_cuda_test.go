//go:build cuda

// These tests need a libcuda.so.1: the driver on a GPU machine, or the CPU
// fake that `make cuda` builds (scripts/fakecuda) and runs them with.

package gpu

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/cu"
)

func openDeviceForTest(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Skipf("no usable CUDA device: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDo(t *testing.T) {
	d := openDeviceForTest(t)
	if !Available() {
		t.Fatal("Available() = false in the cuda build")
	}
	if _, err := d.Module("smoke"); !errors.Is(err, ErrNotInDo) {
		t.Errorf("Module outside Do: %v, want ErrNotInDo", err)
	}
	if _, err := d.Buffer("x", 8); !errors.Is(err, ErrNotInDo) {
		t.Errorf("Buffer outside Do: %v, want ErrNotInDo", err)
	}
	sentinel := errors.New("fn's error")
	if err := d.Do(func() error { return sentinel }); err != sentinel {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	err := d.Do(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panic inside Device.Do: boom") {
		t.Errorf("Do with a panicking fn: %v", err)
	}
	// Nested Do runs at once; Module and Buffer work inside.
	err = d.Do(func() error {
		return d.Do(func() error {
			m1, err := d.Module("smoke")
			if err != nil {
				return err
			}
			m2, err := d.Module("smoke")
			if err != nil || m1 != m2 {
				return errors.New("module not cached")
			}
			if _, err := d.Module("nope"); err == nil {
				return errors.New("Module(nope): no error")
			}
			p1, err := d.Buffer("test.a", 64)
			if err != nil {
				return err
			}
			if p, _ := d.Buffer("test.a", 8); p != p1 {
				return errors.New("smaller request reallocated")
			}
			if _, err := d.Buffer("test.a", 1<<20); err != nil {
				return err
			}
			if n, _ := d.PoolBytes(); n != 1<<20 {
				return errors.New("pool does not hold 1 MiB")
			}
			_, err = d.Buffer("test.b", 0)
			if err == nil {
				return errors.New("Buffer of 0 bytes: no error")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent callers are serialized on the one thread.
	var wg sync.WaitGroup
	var mu sync.Mutex
	tids := map[bool]int{}
	for range 8 {
		wg.Go(func() {
			d.Do(func() error {
				mu.Lock()
				tids[d.onThread()]++
				mu.Unlock()
				_, err := cu.CurrentContext()
				return err
			})
		})
	}
	wg.Wait()
	if tids[true] != 8 {
		t.Errorf("fn ran off the context thread: %v", tids)
	}
	if err := d.Do(func() error { return d.Close() }); err == nil {
		t.Error("Close inside Do: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
}

func TestSelftests(t *testing.T) {
	d := openDeviceForTest(t)
	ran, failed := RunSelftests(d, func(n string) bool { return strings.HasPrefix(n, "smoke/") }, func(r SelftestResult) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	})
	if ran == 0 || failed != 0 {
		t.Errorf("ran %d, failed %d", ran, failed)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate RegisterSelftest did not panic")
		}
	}()
	RegisterSelftest("smoke/i32f32_satmul", selftestSmoke)
}
