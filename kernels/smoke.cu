// smoke.cu: the build and driver smoke test. One known-answer integer kernel
// that `taobox-cuda selftest` compares with chain/fixed on the CPU, so a
// broken toolchain, JIT or launch path shows up before any real kernel runs.
//
// Kernels are extern "C" (no C++ name mangling: the Go side looks them up by
// name). gorgonia.org/cu copies exactly 8 bytes per launch parameter, so
// every scalar parameter is 64-bit.

// i32f32_satmul: out[i] = fixed.I32F32(a[i]).SatMul(fixed.I32F32(b[i])),
// substrate-fixed's saturating_mul: the 128-bit product shifted right by 32
// (floor), saturated to [Min, Max] by the sign of the exact product. Same
// steps as chain/fixed/i32f32.go CheckedMul: the unsigned high word, then the
// two sign corrections.
extern "C" __global__ void i32f32_satmul(const long long *a, const long long *b,
                                         long long *out, unsigned long long n)
{
	unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) {
		return;
	}
	long long x = a[i], y = b[i];
	unsigned long long ux = (unsigned long long)x, uy = (unsigned long long)y;
	unsigned long long lo = ux * uy;
	unsigned long long hi = __umul64hi(ux, uy);
	hi -= uy & (unsigned long long)(x >> 63);
	hi -= ux & (unsigned long long)(y >> 63);
	long long r;
	if ((unsigned long long)((long long)hi >> 31) + 1 > 1) {
		r = ((x < 0) != (y < 0)) ? (long long)0x8000000000000000ULL : 0x7fffffffffffffffLL;
	} else {
		r = (long long)(hi << 32 | lo >> 32);
	}
	out[i] = r;
}
