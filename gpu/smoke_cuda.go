//go:build cuda

package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"unsafe"

	"gorgonia.org/cu"

	"taobox/chain/fixed"
)

func init() {
	RegisterSelftest("smoke/i32f32_satmul", selftestSmoke)
}

// smokeSatMul runs kernels/smoke.cu's i32f32_satmul on a and b.
func smokeSatMul(d *Device, a, b []int64) ([]int64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("gpu: smokeSatMul: %d and %d values", len(a), len(b))
	}
	out := make([]int64, len(a))
	if len(a) == 0 {
		return out, nil
	}
	err := d.Do(func() error {
		m, err := d.Module("smoke")
		if err != nil {
			return err
		}
		fn, err := m.Function("i32f32_satmul")
		if err != nil {
			return fmt.Errorf("gpu: smoke.ptx: i32f32_satmul: %v", err)
		}
		bytes := int64(len(a)) * 8
		var p [3]cu.DevicePtr
		for i, k := range []string{"selftest.smoke.a", "selftest.smoke.b", "selftest.smoke.out"} {
			if p[i], err = d.Buffer(k, bytes); err != nil {
				return err
			}
		}
		if err := cu.MemcpyHtoD(p[0], unsafe.Pointer(&a[0]), bytes); err != nil {
			return fmt.Errorf("gpu: copy to device: %v", err)
		}
		if err := cu.MemcpyHtoD(p[1], unsafe.Pointer(&b[0]), bytes); err != nil {
			return fmt.Errorf("gpu: copy to device: %v", err)
		}
		n := uint64(len(a))
		const block = 256
		args := []unsafe.Pointer{unsafe.Pointer(&p[0]), unsafe.Pointer(&p[1]), unsafe.Pointer(&p[2]), unsafe.Pointer(&n)}
		if err := fn.Launch(int((n+block-1)/block), 1, 1, block, 1, 1, 0, cu.NoStream, args); err != nil {
			return fmt.Errorf("gpu: launch i32f32_satmul: %v", err)
		}
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: i32f32_satmul: %v", err)
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&out[0]), p[2], bytes); err != nil {
			return fmt.Errorf("gpu: copy from device: %v", err)
		}
		return nil
	})
	return out, err
}

// smokeInputs returns the edge cases crossed with each other, then n seeded
// random pairs (wide, then small magnitudes, so both saturating and exact
// products occur).
func smokeInputs(n int) (a, b []int64) {
	edges := []int64{0, 1, -1, 2, -2, 1 << 31, -(1 << 31), 1 << 32, -(1 << 32), 3 << 31,
		1<<62 + 12345, -(1 << 62), math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32,
		0x7fffffff_ffffffff >> 16, -0x7fffffff_ffffffff >> 16, 0x123456789abcdef, -0x123456789abcdef}
	for _, x := range edges {
		for _, y := range edges {
			a, b = append(a, x), append(b, y)
		}
	}
	r := rand.New(rand.NewPCG(6, 0x5eed))
	for i := range n {
		x, y := int64(r.Uint64()), int64(r.Uint64())
		if i%2 == 1 {
			x >>= r.IntN(48)
			y >>= r.IntN(48)
		}
		a, b = append(a, x), append(b, y)
	}
	return a, b
}

func selftestSmoke(d *Device) error {
	a, b := smokeInputs(1 << 20)
	got, err := smokeSatMul(d, a, b)
	if err != nil {
		return err
	}
	bad, first := 0, -1
	for i := range a {
		if got[i] != int64(fixed.I32F32(a[i]).SatMul(fixed.I32F32(b[i]))) {
			if bad == 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		i := first
		return fmt.Errorf("%d of %d products differ from chain/fixed; first: %#x * %#x = %#x on the GPU, %#x on the CPU",
			bad, len(a), a[i], b[i], got[i], int64(fixed.I32F32(a[i]).SatMul(fixed.I32F32(b[i]))))
	}
	return nil
}
