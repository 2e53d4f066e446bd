// hostcuda.h: the CUDA built-ins that kernels/llama.cu and kernels/yuma.cu
// use, for compiling them as C++ inside fakecuda (fakecuda.cc,
// fake_yuma.cc). The threads of a block are fibers on the calling OS
// thread (a hand-written context switch on x86-64, ucontext elsewhere),
// run by fakecuda.cc's launches, so __syncthreads, warp
// shuffles and __shared__ memory behave as on a GPU: a fiber that reaches a
// barrier yields until every live thread of its block (or warp) has reached
// it; a thread that has returned counts as arrived, as on the hardware.
// Blocks run one after another, so a static stands for __shared__.
// To show races and order assumptions rather than hide them, blocks and
// the fibers of each round run in a shuffled order (seeded: FAKECUDA_SEED,
// default 1, so a failure repeats), dynamic shared memory starts as 0xff
// bytes (NaN floats) in every block, fiber stacks have a guard page, and a
// block whose threads wait on barriers the others never reach (divergent
// __syncthreads or shuffles) aborts with a message instead of hanging.
//
// Every translation unit that includes it shares one runner (C++17 inline
// variables); the one that defines FAKECUDA_MAIN also defines the context
// switch.
//
// Arithmetic: float operations are IEEE single precision (build with
// -ffp-contract=off: nothing is fused unless the source asks), __half is
// _Float16 (round to nearest even, as __float2half_rn), __float2int_rn
// rounds half to even. Fast-math intrinsics are not emulated.
#pragma once

#include <sys/mman.h>
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#define TAOBOX_HOST 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __restrict__ __restrict

namespace fake {
struct uint3 {
	unsigned x, y, z;
};
}  // namespace fake
inline fake::uint3 blockIdx, blockDim, threadIdx, gridDim;

struct float2 {
	float x, y;
};
struct float4 {
	float x, y, z, w;
};
struct uint4 {
	unsigned x, y, z, w;
};

struct __half {
	unsigned short x;
};
struct __half2 {
	__half x, y;
};

static inline float __half2float(__half h)
{
	_Float16 f;
	memcpy(&f, &h.x, 2);
	return (float)f;
}
static inline __half __float2half_rn(float v)
{
	_Float16 f = (_Float16)v;
	__half h;
	memcpy(&h.x, &f, 2);
	return h;
}
static inline __half __float2half(float v) { return __float2half_rn(v); }
static inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
static inline unsigned short __half_as_ushort(__half h) { return h.x; }
static inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
static inline float __uint_as_float(unsigned u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}
static inline unsigned __float_as_uint(float f)
{
	unsigned u;
	memcpy(&u, &f, 4);
	return u;
}
static inline int __float2int_rn(float v) { return (int)nearbyintf(v); } // the default rounding mode: to nearest even
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
	return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <class T>
static inline T __ldcs(const T *p) { return *p; }
template <class T>
static inline T __ldg(const T *p) { return *p; }

// __dp4a: the sum of the four products of the signed bytes of a and b, plus c.
static inline int __dp4a(int a, int b, int c)
{
	for (int i = 0; i < 4; i++) c += (int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i));
	return c;
}

// __vsub4: bytewise a - b, each byte wrapping.
static inline unsigned __vsub4(unsigned a, unsigned b)
{
	unsigned r = 0;
	for (int i = 0; i < 4; i++) r |= ((((a >> (8 * i)) & 255) - ((b >> (8 * i)) & 255)) & 255) << (8 * i);
	return r;
}

template <class A, class B>
static inline std::common_type_t<A, B> min(A a, B b) { return a < b ? a : b; }
template <class A, class B>
static inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// Dynamic shared memory of the running launch (fakecuda sizes it).
inline float4 *smem4;

namespace fake {

// One barrier: arrivals of the current generation and the number of live
// (not yet returned) threads it waits for.
struct barrier {
	int arrived, live;
	unsigned gen;
};

// Context switches: on x86-64 a few instructions that save the
// callee-saved registers and the stack pointer (swapcontext also makes a
// signal-mask system call per switch, which made the selftest ten times
// slower); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void fake_switch(void **save_sp, void *to_sp);
#ifdef FAKECUDA_MAIN
asm(R"(
	.text
	.globl fake_switch
	.hidden fake_switch
	.type fake_switch, @function
fake_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $8, %rsp
	stmxcsr (%rsp)
	fnstcw 4(%rsp)
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	ldmxcsr (%rsp)
	fldcw 4(%rsp)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size fake_switch, .-fake_switch
)");
#endif
#endif

struct fiber {
	char *stack; // fiber_stack bytes above a PROT_NONE guard page
	bool done;
#if defined(__x86_64__)
	void *sp;
#else
	ucontext_t ctx;
#endif
};

const size_t fiber_stack = 256 << 10;

struct block_run {
#if defined(__x86_64__)
	void *sched_sp;
#else
	ucontext_t sched;
#endif
	std::vector<fiber> fibers;
	unsigned cur;
	barrier block;
	std::vector<barrier> warps;
	std::vector<unsigned long long> slots; // 32 per warp: shuffle exchange
	int or_flag;                           // __syncthreads_or
	void (*body)(void **);
	void **params;
	const char *name; // the kernel's, for the deadlock message
	std::vector<unsigned> order;
	unsigned long long rng;
};
inline block_run run;

// next_rand: xorshift64* over run.rng, seeded by shuffle_seed.
static inline unsigned long long next_rand()
{
	run.rng ^= run.rng >> 12;
	run.rng ^= run.rng << 25;
	run.rng ^= run.rng >> 27;
	return run.rng * 0x2545f4914f6cdd1dull;
}

static inline void shuffle(std::vector<unsigned> &v)
{
	for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[next_rand() % i]);
}

// shuffle_seed reseeds the order from FAKECUDA_SEED (default 1).
static inline void shuffle_seed()
{
	const char *s = getenv("FAKECUDA_SEED");
	unsigned long long seed = s && *s ? strtoull(s, nullptr, 10) : 1;
	run.rng = seed * 0x9e3779b97f4a7c15ull + 1;
}

static inline void yield()
{
#if defined(__x86_64__)
	fake_switch(&run.fibers[run.cur].sp, run.sched_sp);
#else
	swapcontext(&run.fibers[run.cur].ctx, &run.sched);
#endif
}

static inline void arrive(barrier &b)
{
	unsigned g = b.gen;
	if (++b.arrived == b.live) {
		b.arrived = 0;
		b.gen++;
		return;
	}
	while (b.gen == g) yield();
}

// leave: a returning thread no longer holds its barriers back.
static inline void leave(barrier &b)
{
	b.live--;
	if (b.arrived > 0 && b.arrived == b.live) {
		b.arrived = 0;
		b.gen++;
	}
}

static inline unsigned thread_linear() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

static void fiber_entry()
{
	run.body(run.params);
	unsigned t = run.cur;
	run.fibers[t].done = true;
	leave(run.block);
	leave(run.warps[t / 32]);
#if defined(__x86_64__)
	void *dead;
	fake_switch(&dead, run.sched_sp); // never resumed
	abort();
#endif
	// ucontext: returning switches to uc_link (the scheduler)
}

static inline void set_thread(unsigned t)
{
	threadIdx.x = t % blockDim.x;
	threadIdx.y = (t / blockDim.x) % blockDim.y;
	threadIdx.z = t / (blockDim.x * blockDim.y);
}

// start_fiber prepares f to run fiber_entry when first switched to.
static void start_fiber(fiber &f)
{
	f.done = false;
#if defined(__x86_64__)
	// The stack as fake_switch leaves it: the control words (MXCSR's
	// default, x87 double extended precision), six zero registers, and
	// fiber_entry as the return address, entered with rsp = 8 mod 16 as
	// after a call.
	uintptr_t top = ((uintptr_t)f.stack + fiber_stack) & ~(uintptr_t)15;
	void **sp = (void **)(top - 8);
	*sp = nullptr;              // fiber_entry's own return address (never used)
	*--sp = (void *)fiber_entry;
	for (int i = 0; i < 6; i++) *--sp = nullptr;
	--sp;
	unsigned cw[2] = {0x1f80, 0x037f};
	memcpy(sp, cw, 8);
	f.sp = sp;
#else
	getcontext(&f.ctx);
	f.ctx.uc_stack.ss_sp = f.stack;
	f.ctx.uc_stack.ss_size = fiber_stack;
	f.ctx.uc_link = &run.sched;
	makecontext(&f.ctx, fiber_entry, 0);
#endif
}

static inline void resume(unsigned t)
{
#if defined(__x86_64__)
	fake_switch(&run.sched_sp, run.fibers[t].sp);
#else
	swapcontext(&run.sched, &run.fibers[t].ctx);
#endif
}

// run_block runs the current block (blockIdx) with blockDim threads, each a
// fiber, round robin until all have returned.
static void run_block(void (*body)(void **), void **params)
{
	unsigned n = blockDim.x * blockDim.y * blockDim.z;
	unsigned nw = (n + 31) / 32;
	run.body = body;
	run.params = params;
	while (run.fibers.size() < n) {
		fiber f{};
		char *m = (char *)mmap(nullptr, fiber_stack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) != 0) abort();
		f.stack = m + 4096;
		run.fibers.push_back(f);
	}
	run.block = barrier{0, (int)n, 0};
	run.warps.assign(nw, barrier{0, 0, 0});
	for (unsigned w = 0; w < nw; w++) run.warps[w].live = (int)(w + 1 < nw ? 32 : n - 32 * w);
	run.slots.assign(nw * 32, 0);
	for (unsigned t = 0; t < n; t++) start_fiber(run.fibers[t]);
	run.order.resize(n);
	for (unsigned t = 0; t < n; t++) run.order[t] = t;
	// progress: barrier generations passed and threads finished; a round
	// that moves neither is a deadlock.
	auto progress = [nw]() {
		unsigned long long p = run.block.gen;
		for (unsigned w = 0; w < nw; w++) p += run.warps[w].gen;
		return p;
	};
	for (unsigned left = n; left > 0;) {
		unsigned long long before = progress();
		unsigned was = left;
		left = 0;
		shuffle(run.order);
		for (unsigned t : run.order) {
			if (run.fibers[t].done) continue;
			run.cur = t;
			set_thread(t);
			resume(t);
			if (!run.fibers[t].done) left++;
		}
		if (left > 0 && left == was && progress() == before) {
			fprintf(stderr, "fakecuda: kernel %s, block (%u,%u,%u): %u threads wait on barriers the others never reach (divergent __syncthreads or warp shuffle)\n",
				run.name, blockIdx.x, blockIdx.y, blockIdx.z, left);
			abort();
		}
	}
}

}  // namespace fake

static inline void __syncthreads() { fake::arrive(fake::run.block); }

// __syncthreads_or: a barrier that returns whether any thread passed a
// non-zero p.
static inline int __syncthreads_or(int p)
{
	if (p) fake::run.or_flag = 1;
	fake::arrive(fake::run.block);
	int r = fake::run.or_flag;
	fake::arrive(fake::run.block);
	if (fake::thread_linear() == 0) fake::run.or_flag = 0;
	fake::arrive(fake::run.block);
	return r;
}

// One OS thread runs every fiber, so an atomic is a plain update.
static inline unsigned long long atomicAdd(unsigned long long *a, unsigned long long v)
{
	unsigned long long old = *a;
	*a = old + v;
	return old;
}
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }

// A kernel as fakecuda finds and launches it: launch_of<F> calls kernel F
// with its parameters read from params (every one 8 bytes, the kernels'
// convention).
typedef void (*launcher)(void **params);

template <class... A, size_t... I>
static void call_with(void (*f)(A...), void **p, std::index_sequence<I...>)
{
	f(*(A *)p[I]...);
}
template <class... A>
static constexpr int arity(void (*)(A...))
{
	return (int)sizeof...(A);
}
template <auto F>
static void launch_of(void **p)
{
	call_with(F, p, std::make_index_sequence<arity(F)>());
}

struct kernel {
	const char *module;  // a string the PTX text must contain
	const char *name;
	launcher run;
	int nparams;
};

#define KERNEL(name) {".globl\t" #name, #name, launch_of<name>, arity(name)},

// The kernels of one translation unit (fakecuda.cc: smoke and llama;
// fake_yuma.cc: yuma), listed by build.sh from the sources.
struct kernel_table {
	const kernel *k;
	int n;
};

template <class T>
static inline T __shfl_xor_sync(unsigned, T v, int o)
{
	static_assert(sizeof(T) <= 8, "shuffle of a value over 8 bytes");
	unsigned t = fake::thread_linear(), w = t / 32, lane = t % 32;
	unsigned long long *s = &fake::run.slots[w * 32];
	memcpy(&s[lane], &v, sizeof(T));
	fake::arrive(fake::run.warps[w]);
	T r;
	memcpy(&r, &s[lane ^ (unsigned)o], sizeof(T));
	fake::arrive(fake::run.warps[w]);
	return r;
}
