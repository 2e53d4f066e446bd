// LLaMA forward-pass kernels for gpu.Llama (gpu/llama_cuda.go).
//
// Conventions shared with the Go side:
//   * every scalar parameter is 64 bits wide (gorgonia.org/cu's Launch copies
//     exactly 8 bytes per parameter): integers are long long, float scalars
//     are passed as double;
//   * weight matrices are GGUF tensors uploaded byte for byte, row-major
//     [rows][n] with n (ne0) the row length; the element type is a GGML type
//     id (F32 0, F16 1, Q4_0 2, Q8_0 8, BF16 30) passed at launch;
//   * activations, the KV cache and the logits are float32;
//   * no float atomics: every reduction has a fixed order (lane-strided
//     partial sums, an xor-butterfly across the warp, warps combined in
//     index order), so repeated runs give identical bits.
//
// Kernel list:
//   embed           x = dequant(E[tok]), tok read from device memory
//   prep_input      a product's input, once: RMSNorm(x)*w or SwiGLU
//                   silu(g)*u or x, and its Q8 blocks for Q8_0/Q4_0 weights
//   matvec3         up to three y_s = W_s·in (+ b_s, or + y_s: the residual
//                   add) in one launch; F32, F16, BF16, Q8_0, Q4_0 rows;
//                   groups of 1-8 warps per row; optionally its own
//                   RMSNorm prologue (no prep_input launch), and the FFN's
//                   gate and up products with their SwiGLU in one pass
//   matvec3x2/x4    the same with 2 or 4 rows per warp group
//   matmul          Y = W·X for a batch of inputs (the batched prompt):
//                   64×64 tiles, F32/F16/BF16 in float, Q8_0/Q4_0 in int8
//   embed_rows, rope_rows, attention_rows
//                   embed, rope_pairs and attention for a batch of
//                   positions pos0.. (causal attention within the batch);
//                   prep_input takes a batch of rows too (gridDim.y)
//   rope_pairs      rotates q and the cached k (llama pairs or NEOX pairs)
//   attention       one block per query head over the KV cache (GQA)
//   argmax_partial  per-chunk best logit and sum of exp (two-pass greedy)
//   argmax_logprob  greedy token (lowest id on ties) and its log-softmax
//   advance_pos     position += 1 (the position lives on the device, so a
//                   decode step's launches are the same every step: one
//                   CUDA graph, replayed)
//   log_softmax     log-softmax of the logits (float64 out)
//   score_rows      per row of logits: a target's log-prob and how many
//                   tokens are ahead of it (the validator's pass)
//   fill_weights    seeded synthetic weights for the benchmark model
//   read_bytes      reads a buffer once (the benchmark's read ceiling)

// TAOBOX_HOST: compiled as C++ by scripts/fakecuda (hostcuda.h supplies
// the built-ins), where inline PTX has no meaning.
#ifndef TAOBOX_HOST
#include <cuda_fp16.h>
#endif

// Programmatic dependent launch (kernels/llama_sm90.cu builds this file for
// compute_90 with TAOBOX_SM90): a product launched with the
// programmatic-serialization attribute may start while the kernel before
// it finishes; pdl_wait() blocks until that kernel has completed and its
// writes are visible, so everything before it must not read what the
// previous kernel writes (a product does nothing before it: warming its
// first weights in L2 there measured slower on an H100).
// pdl_trigger() lets the next kernel's blocks start as this one's retire.
// For compute_80 both are no-ops and no launch uses the attribute.
#if defined(TAOBOX_SM90) && !defined(TAOBOX_HOST)
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
#else
__device__ __forceinline__ void pdl_wait() {}
__device__ __forceinline__ void pdl_trigger() {}
#endif

typedef long long i64;
typedef unsigned long long u64;

#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q8_0 8
#define T_BF16 30

#define FULL 0xffffffffu

// Dynamic shared memory of every kernel that uses it (16-byte aligned).
#ifndef TAOBOX_HOST
extern __shared__ float4 smem4[];
#endif

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
	return v;
}

// block_sum returns the same value to every thread. red holds 32 floats.
// blockDim.x must be a multiple of 32.
__device__ float block_sum(float v, float *red) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_sum(v);
	__syncthreads(); // red may still be read by an earlier call
	if (lane == 0) red[warp] = v;
	__syncthreads();
	float t = 0.f;
	for (int w = 0; w < nw; w++) t += red[w]; // fixed order, every thread alike
	return t;
}

__device__ float block_max(float v, float *red) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_max(v);
	__syncthreads();
	if (lane == 0) red[warp] = v;
	__syncthreads();
	float t = red[0];
	for (int w = 1; w < nw; w++) t = fmaxf(t, red[w]);
	return t;
}

// prefetch_l2: blocks [first, gridDim.x) of a kernel pull pfbytes at pf into
// L2 (one 128-byte line per thread and pass) and the caller returns: a
// small kernel that precedes a matrix-vector product warms the start of its
// weights, so the product does not begin with a cold ramp. A hint only.
__device__ __forceinline__ void prefetch_l2(const char *pf, i64 pfbytes, i64 first) {
	i64 nthreads = (gridDim.x - first) * (i64)blockDim.x;
#ifndef TAOBOX_HOST
	for (i64 off = ((blockIdx.x - first) * (i64)blockDim.x + threadIdx.x) * 128; off < pfbytes; off += nthreads * 128)
		asm volatile("prefetch.global.L2 [%0];" ::"l"(pf + off));
#endif
}

__device__ __forceinline__ float half_at(const unsigned short *p) {
	return __half2float(__ushort_as_half(*p));
}

// Bytes of one row of n elements of type t.
__device__ __forceinline__ i64 row_bytes(i64 t, i64 n) {
	switch (t) {
	case T_F32: return n * 4;
	case T_F16: case T_BF16: return n * 2;
	case T_Q8_0: return n / 32 * 34;
	case T_Q4_0: return n / 32 * 18;
	}
	return 0;
}

// Lane part of the dot products of R weight rows (of one type t) with x
// (length n), for lane lid of the nl lanes (a multiple of 32) that share
// the rows; the caller sums the lanes' parts in a fixed order. Loading R
// rows in one loop keeps R times more bytes in flight. F32, F16 and BF16
// rows multiply the float32 x; Q8_0 and Q4_0 rows multiply x's Q8
// quantization (xq, xd: int8 values and a float32 scale per block of 32,
// see stage_q8), as the CPU engine and ggml do: per block the integer
// products are summed exactly (dp4a), then scaled by d_w*d_x.
template <int R>
__device__ __forceinline__ void lane_dot(const char *const *row, i64 t, i64 n, const float *x,
	const signed char *xq, const float *xd, int lid, int nl, float *acc) {
#pragma unroll
	for (int r = 0; r < R; r++) acc[r] = 0.f;
	switch (t) {
	case T_F32:
		if ((n & 3) == 0) {
#pragma unroll 8
			for (i64 i = lid * 4; i < n; i += nl * 4) {
				float4 b = *(const float4 *)(x + i);
#pragma unroll
				for (int r = 0; r < R; r++) {
					float4 a = __ldcs((const float4 *)((const float *)row[r] + i));
					acc[r] += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
				}
			}
		} else {
			for (i64 i = lid; i < n; i += nl)
#pragma unroll
				for (int r = 0; r < R; r++) acc[r] += ((const float *)row[r])[i] * x[i];
		}
		break;
	case T_F16:
		if ((n & 7) == 0) {
#pragma unroll 8
			for (i64 i = lid * 8; i < n; i += nl * 8) {
				uint4 raw[R];
#pragma unroll
				for (int r = 0; r < R; r++) raw[r] = __ldcs((const uint4 *)((const __half *)row[r] + i));
				float4 b0 = *(const float4 *)(x + i);
				float4 b1 = *(const float4 *)(x + i + 4);
#pragma unroll
				for (int r = 0; r < R; r++) {
					const __half2 *h = (const __half2 *)&raw[r];
					float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]);
					float2 f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
					acc[r] += f0.x * b0.x + f0.y * b0.y + f1.x * b0.z + f1.y * b0.w
					        + f2.x * b1.x + f2.y * b1.y + f3.x * b1.z + f3.y * b1.w;
				}
			}
		} else {
			for (i64 i = lid; i < n; i += nl)
#pragma unroll
				for (int r = 0; r < R; r++) acc[r] += __half2float(((const __half *)row[r])[i]) * x[i];
		}
		break;
	case T_BF16:
		for (i64 i = lid; i < n; i += nl)
#pragma unroll
			for (int r = 0; r < R; r++)
				acc[r] += __uint_as_float(((unsigned)((const unsigned short *)row[r])[i]) << 16) * x[i];
		break;
	case T_Q8_0: {
		// Units of 8 quants, 4 per block: neighbouring lanes read
		// neighbouring bytes. Blocks are 34 bytes, so 2-byte loads.
		i64 nu = n / 8;
#pragma unroll 8
		for (i64 u = lid; u < nu; u += nl) {
			i64 b = u >> 2, k = u & 3;
			const int *xv = (const int *)(xq + u * 8);
			int x0 = xv[0], x1 = xv[1];
			float dx = xd[b];
#pragma unroll
			for (int r = 0; r < R; r++) {
				const unsigned short *p = (const unsigned short *)(row[r] + b * 34);
				const unsigned short *qs = p + 1 + 4 * k;
				int w0 = (int)((unsigned)qs[0] | ((unsigned)qs[1] << 16));
				int w1 = (int)((unsigned)qs[2] | ((unsigned)qs[3] << 16));
				int sum = __dp4a(w0, x0, __dp4a(w1, x1, 0));
				acc[r] += (float)sum * (half_at(p) * dx);
			}
		}
		break;
	}
	case T_Q4_0: {
		// Units of 8 quant bytes (16 values), 2 per block: byte j holds
		// element j (low nibble) and j+16 (high nibble), both minus 8.
		i64 nu = n / 16;
#pragma unroll 8
		for (i64 u = lid; u < nu; u += nl) {
			i64 b = u >> 1, k = u & 1;
			const int *xv = (const int *)(xq + b * 32 + 8 * k);
			int x0 = xv[0], x1 = xv[1], x4 = xv[4], x5 = xv[5];
			float dx = xd[b];
#pragma unroll
			for (int r = 0; r < R; r++) {
				const unsigned short *p = (const unsigned short *)(row[r] + b * 18);
				const unsigned short *qs = p + 1 + 4 * k;
				unsigned v0 = (unsigned)qs[0] | ((unsigned)qs[1] << 16);
				unsigned v1 = (unsigned)qs[2] | ((unsigned)qs[3] << 16);
				int l0 = __vsub4(v0 & 0x0f0f0f0fu, 0x08080808u), h0 = __vsub4((v0 >> 4) & 0x0f0f0f0fu, 0x08080808u);
				int l1 = __vsub4(v1 & 0x0f0f0f0fu, 0x08080808u), h1 = __vsub4((v1 >> 4) & 0x0f0f0f0fu, 0x08080808u);
				int sum = __dp4a(l0, x0, __dp4a(l1, x1, __dp4a(h0, x4, __dp4a(h1, x5, 0))));
				acc[r] += (float)sum * (half_at(p) * dx);
			}
		}
		break;
	}
	}
}

// rms_scale is RMSNorm's 1/sqrt(mean(x^2) + eps), every block (of 256
// threads) summing in the same fixed order, so prep_input and matvec3's
// own prologue agree to the bit. Every thread of the block must call it.
__device__ __forceinline__ float rms_scale(const float *x, i64 n, double eps, float *red)
{
	float ss = 0.f;
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) ss += x[i] * x[i];
	ss = block_sum(ss, red);
	return 1.0f / sqrtf(ss / (float)n + (float)eps);
}

// q8_block quantizes v (lane's value of a 32-value block; the whole warp
// calls it) as the CPU engine's quantizeQ8: amax = max|v|, id = 127/amax
// (0 if amax is 0), q = round-half-even(v*id), d = amax/127 rounded to f16.
__device__ __forceinline__ void q8_block(float v, signed char *q, float *d)
{
	float amax = warp_max(fabsf(v));
	float id = amax != 0.f ? 127.0f / amax : 0.f;
	*q = (signed char)__float2int_rn(__fmul_rn(v, id));
	if ((threadIdx.x & 31) == 0) *d = __half2float(__float2half_rn(amax / 127.0f));
}

// prep_input makes a matrix-vector product's input once, in global memory
// (the product's warps then read it through L1):
//   normw != 0: out = RMSNorm(x)*normw, exactly o = w * (x * 1/sqrt(mean(x^2)
//               + eps)) as the CPU engine (every block sums x^2 itself, in
//               the same order, so all blocks use the same scale);
//   glu != 0:   out = SwiGLU silu(x)*glu, as the CPU engine (a *= 1/(1 +
//               exp(-a)), a *= glu);
//   neither:    out is x (not written).
// xq != 0: out is also quantized to Q8 blocks (xq, xd; n a multiple of 32)
// for Q8_0/Q4_0 weights, exactly as the CPU engine's quantizeQ8 (ggml's
// quantize_row_q8_0): per block amax = max|x|, id = 127/amax (0 if amax is
// 0), q = round-half-even(x*id), d = amax/127 rounded to f16. One warp per
// 32 values; grid: ceil(n/256) blocks of 256 threads, then any further
// blocks prefetch pfbytes at pf (the next product's weights) into L2.
// gridDim.y > 1: a batch of rows (x, out, glu: n floats apart; xq, xd: n
// bytes and n/32 floats apart), blockIdx.y the row.
extern "C" __global__ void prep_input(const float *x, const float *normw, const float *glu, double eps, i64 n,
	float *out, signed char *xq, float *xd, const char *pf, i64 pfbytes)
{
	pdl_trigger(); // the next product may start warming its weights
	__shared__ float red[32];
	if (blockIdx.y) { // row blockIdx.y of a batch (matmul's inputs; n % 32 == 0 when xq)
		i64 y = blockIdx.y;
		x += y * n;
		if (out) out += y * n;
		if (glu) glu += y * n;
		if (xq) {
			xq += y * n;
			xd += y * (n / 32);
		}
	}
	i64 main = (n + 255) / 256;
	if (blockIdx.x >= main) {
		prefetch_l2(pf, pfbytes, main);
		return;
	}
	float s = 0.f;
	if (normw) {
		s = rms_scale(x, n, eps, red);
	}
	int lane = threadIdx.x & 31;
	i64 b = blockIdx.x * (i64)(blockDim.x >> 5) + (threadIdx.x >> 5); // this warp's 32 values
	i64 i = b * 32 + lane;
	if (b * 32 >= n) return;
	float v = 0.f;
	if (i < n) {
		v = x[i];
		if (glu) {
			v *= 1.0f / (1.0f + expf(-v));
			v = v * glu[i];
			out[i] = v;
		} else if (normw) {
			v = normw[i] * (s * v);
			out[i] = v;
		}
	}
	if (xq) q8_block(v, &xq[i], &xd[b]);
}

// Rows are computed by groups of wpr warps (wpr = 1, 2, 4 or 8, dividing
// the 8 warps of a 256-thread block): short matrices split each row over
// several warps so that enough loads are in flight. group_dot computes R
// rows' dot products and returns them to lane 0 of the group's first warp
// (valid there only), summing the warps' parts in warp order. Every thread
// of the block must call it the same number of times (it synchronizes).
// part holds 8*R floats.
template <int R>
__device__ __forceinline__ void group_dot(const char *const *row, i64 t, i64 n, const float *x,
	const signed char *xq, const float *xd, int wpr, bool valid, float *part, float *v) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int gw = warp % wpr; // warp index within the group
	if (valid) {
		lane_dot<R>(row, t, n, x, xq, xd, gw * 32 + lane, wpr * 32, v);
#pragma unroll
		for (int r = 0; r < R; r++) v[r] = warp_sum(v[r]);
	} else {
#pragma unroll
		for (int r = 0; r < R; r++) v[r] = 0.f;
	}
	if (wpr == 1) return;
	__syncthreads(); // part may still be read by the previous row
	if (lane == 0)
#pragma unroll
		for (int r = 0; r < R; r++) part[warp * R + r] = v[r];
	__syncthreads();
	if (gw == 0)
#pragma unroll
		for (int r = 0; r < R; r++) {
			float s = part[warp * R + r];
			for (int k = 1; k < wpr; k++) s += part[(warp + k) * R + r];
			v[r] = s;
		}
}

// mv_input is a product's input for this block: x as given (and, for
// Q8_0/Q4_0 rows, its Q8 blocks *xq, *xd from prep_input) when normw == 0;
// otherwise the block's own copy of RMSNorm(x)*normw in dynamic shared
// memory (n floats), made exactly as prep_input makes it (rms_scale), and
// with qin != 0 its Q8 blocks there too (n bytes and n/32 floats more;
// *xq, *xd then point there). This saves prep_input's launch before the
// product; x must not be one of the product's outputs then (no block may
// write what another is still reading). Every thread must call it.
__device__ __forceinline__ const float *mv_input(const float *x, const float *normw, double eps, i64 n, i64 qin,
	const signed char **xq, const float **xd, float *red)
{
	if (!normw) return x;
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	float *xs = (float *)smem4;
	const int MAXV = 16; // values per thread held in registers
	if (n <= (i64)MAXV * blockDim.x) {
		// x and normw in one round of loads, then rms_scale's sum in its
		// order (a 0 past n adds nothing), then the same products.
		float xv[MAXV], wv[MAXV];
#pragma unroll
		for (int k = 0; k < MAXV; k++) {
			i64 i = threadIdx.x + (i64)k * blockDim.x;
			xv[k] = i < n ? x[i] : 0.f;
			wv[k] = i < n ? normw[i] : 0.f;
		}
		float ss = 0.f;
#pragma unroll
		for (int k = 0; k < MAXV; k++) ss += xv[k] * xv[k];
		ss = block_sum(ss, red);
		float s = 1.0f / sqrtf(ss / (float)n + (float)eps);
#pragma unroll
		for (int k = 0; k < MAXV; k++) {
			i64 i = threadIdx.x + (i64)k * blockDim.x;
			if (i < n) xs[i] = wv[k] * (s * xv[k]);
		}
	} else {
		float s = rms_scale(x, n, eps, red);
		for (i64 i = threadIdx.x; i < n; i += blockDim.x) xs[i] = normw[i] * (s * x[i]);
	}
	__syncthreads();
	if (qin) {
		signed char *sq = (signed char *)(xs + n);
		float *sd = (float *)(sq + n);
		for (i64 b = warp; b * 32 < n; b += blockDim.x >> 5) q8_block(xs[b * 32 + lane], &sq[b * 32 + lane], &sd[b]);
		__syncthreads();
		*xq = sq;
		*xd = sd;
	}
	return xs;
}

#define MV_SEGS w0, t0, y0, b0, rows0, w1, t1, y1, b1, rows1, w2, t2, y2, b2, rows2

// group_rows resolves work item g of mv_groups: the R row addresses of its
// group (row), and the segment's type, output, bias, first row and row
// count; it returns the segment (0, 1, 2). glu: R/2 rows of w0 (gate), then
// the same rows of w1 (up). Rows past a segment's end repeat its last row
// (computed, never written).
template <int R>
__device__ __forceinline__ int group_rows(
	const char *w0, i64 t0, float *y0, const float *b0, i64 rows0,
	const char *w1, i64 t1, float *y1, const float *b1, i64 rows1,
	const char *w2, i64 t2, float *y2, const float *b2, i64 rows2,
	i64 n, i64 glu, i64 g, const char **row, i64 *t, float **y, const float **b, i64 *rr, i64 *segRows)
{
	const int H = R >= 2 ? R / 2 : 1;
	*t = t0; *y = y0; *b = b0; *segRows = rows0;
	if (glu) {
		*rr = g * H;
		i64 rb = row_bytes(t0, n);
#pragma unroll
		for (int k = 0; k < H; k++) {
			row[k] = w0 + (*rr + k) * rb;
			row[H + k] = w1 + (*rr + k) * rb;
		}
		return 0;
	}
	i64 r = g * R;
	const char *w = w0;
	int seg = 0;
	*rr = r;
	if (r >= rows0 && r < rows0 + rows1) { w = w1; *t = t1; *y = y1; *b = b1; *rr = r - rows0; *segRows = rows1; seg = 1; }
	else if (r >= rows0 + rows1) { w = w2; *t = t2; *y = y2; *b = b2; *rr = r - rows0 - rows1; *segRows = rows2; seg = 2; }
	i64 rb = row_bytes(*t, n);
#pragma unroll
	for (int k = 0; k < R; k++) row[k] = w + min(*rr + k, *segRows - 1) * rb;
	return seg;
}

// mv_groups is the body of the matvec kernels: rows of three products
// stacked (rows0, then rows1, then rows2; a segment with rows == 0 is
// absent), computed by groups of wpr warps (1, 2, 4 or 8 of the block's 8),
// each group R rows at once (R times the bytes in flight per warp), in a
// grid-stride loop. y_s[r] = dot + b_s[r] (accumulate == 0; b_s == 0: no
// bias) or y_s[r] + dot (accumulate != 0: the residual add). For R > 1 a
// group's R rows lie in one segment (the caller keeps rows0 and rows1
// multiples of R) and all segments have one type.
// glu != 0 (R even): segments 0 and 1 are the FFN's gate and up matrices
// (same rows, same type); a group computes R/2 rows of each and writes
// y0[r] = silu(gate·x)*(up·x), the SwiGLU exactly as prep_input computes
// it (a *= 1/(1 + exp(-a)), a *= u); y1 is unused.
// The input: see mv_input (normw, eps, qin).
// posp != 0: y1 and y2 are offset by *posp * kvstride values (the K and V
// cache rows of the current position, read on the device).
// cs != 0 (R even, posp != 0): segments 0 and 1 are q and k, and their
// rows are written rotated by RoPE at position *posp with llama's pairing
// (rows 2i and 2i+1 of each head of hs values; cs as rope_pairs reads it),
// exactly as rope_pairs would rotate them after this product: a group's
// rows hold whole pairs, so the rope_pairs launch is not needed.
template <int R>
__device__ __forceinline__ void mv_groups(
	const char *w0, i64 t0, float *y0, const float *b0, i64 rows0,
	const char *w1, i64 t1, float *y1, const float *b1, i64 rows1,
	const char *w2, i64 t2, float *y2, const float *b2, i64 rows2,
	const float *x, const signed char *xq, const float *xd, i64 n, i64 accumulate, i64 wpr,
	const i64 *posp, i64 kvstride, const float *normw, double eps, i64 qin, i64 glu, const float *cs, i64 hs)
{
	pdl_trigger();
	const int H = R >= 2 ? R / 2 : 1; // glu: rows of each matrix per group
	__shared__ float part[8 * R];
	__shared__ float red[32];
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int W = (int)wpr;
	i64 gpb = 8 / W; // groups per block and pass
	i64 total = rows0 + rows1 + rows2;
	i64 groups = glu ? rows0 / H : (total + R - 1) / R;
	pdl_wait();
	if (posp) { // segments 1 and 2 are the KV cache rows at position *posp
		i64 off = (*posp) * kvstride;
		y1 += off;
		y2 += off;
	}
	const float *xin = mv_input(x, normw, eps, n, qin, &xq, &xd, red);
	for (i64 base = blockIdx.x * gpb; base < groups; base += gridDim.x * gpb) {
		i64 g = base + warp / W;
		bool valid = g < groups;
		const char *row[R < 2 ? 2 : R]; // glu fills two even for R = 1 (never launched so)
		i64 t, rr, segRows;
		float *y;
		const float *b;
		int seg = group_rows<R>(MV_SEGS, n, glu, valid ? g : 0, row, &t, &y, &b, &rr, &segRows);
		float v[R];
		group_dot<R>(row, t, n, xin, xq, xd, W, valid, part, v);
		if (!valid || lane != 0 || warp % W != 0) continue;
		if (glu) {
#pragma unroll
			for (int k = 0; k < H; k++) {
				float a = v[k];
				a *= 1.0f / (1.0f + expf(-a));
				a = a * v[H + k];
				y0[rr + k] = a;
			}
			continue;
		}
		float o[R];
#pragma unroll
		for (int k = 0; k < R; k++) {
			o[k] = v[k];
			if (rr + k < segRows) {
				if (accumulate) o[k] = y[rr + k] + o[k];
				else if (b) o[k] = o[k] + b[rr + k];
			}
		}
		if (cs && seg < 2) {
			const float *c0 = cs + (*posp) * (hs / 2) * 2;
#pragma unroll
			for (int k = 0; k + 1 < R; k += 2) {
				const float *c = c0 + ((rr + k) % hs) / 2 * 2;
				float fcr = c[0], fci = c[1], a0 = o[k], a1 = o[k + 1];
				o[k] = __fsub_rn(__fmul_rn(a0, fcr), __fmul_rn(a1, fci));
				o[k + 1] = __fadd_rn(__fmul_rn(a0, fci), __fmul_rn(a1, fcr));
			}
		}
#pragma unroll
		for (int k = 0; k < R; k++)
			if (rr + k < segRows) y[rr + k] = o[k];
	}
}

#define MV_PARAMS \
	const char *w0, i64 t0, float *y0, const float *b0, i64 rows0, \
	const char *w1, i64 t1, float *y1, const float *b1, i64 rows1, \
	const char *w2, i64 t2, float *y2, const float *b2, i64 rows2, \
	const float *x, const signed char *xq, const float *xd, i64 n, i64 accumulate, i64 wpr, \
	const i64 *posp, i64 kvstride, const float *normw, double eps, i64 qin, i64 glu, const float *cs, i64 hs
#define MV_ARGS w0, t0, y0, b0, rows0, w1, t1, y1, b1, rows1, w2, t2, y2, b2, rows2, \
	x, xq, xd, n, accumulate, wpr, posp, kvstride, normw, eps, qin, glu, cs, hs

// matvec3, matvec3x2, matvec3x4: mv_groups with 1, 2 and 4 rows per group
// (glu needs 2 or 4).
extern "C" __global__ void __launch_bounds__(256) matvec3(MV_PARAMS) { mv_groups<1>(MV_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 4) matvec3x2(MV_PARAMS) { mv_groups<2>(MV_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 3) matvec3x4(MV_PARAMS) { mv_groups<4>(MV_ARGS); }

// The batched prompt: matmul multiplies a weight matrix by a batch of
// inputs (the prompt's tokens, rows of a [T][n] matrix), reading each
// weight once per MM_COLS tokens instead of once per token.
//
// matmul: y[c*ldy + r] = W_r · in_c (+ bias[r]; bias == 0: none), or
// y[c*ldy + r] + W_r · in_c (acc != 0: the residual add; bias is not
// added then), for the rows
// r < rows of W (type t, row length n) and the inputs c < T. F32, F16 and
// BF16 rows multiply in (float32, [T][n]); Q8_0 and Q4_0 rows multiply its
// Q8 blocks (xq [T][n] int8, xd [T][n/32], as prep_input makes them; n a
// multiple of 32), per block the exact integer sum (dp4a) times d_w*d_x,
// blocks summed in order, as the CPU engine's and matvec's products do.
// Block (bx, by): rows bx*MM_ROWS.., inputs by*MM_COLS..; 256 threads, each
// computing 4 rows (tr + 16i) by 4 inputs (tc + 16j) over k tiles of 32
// staged in shared memory (float values, or int8 quads and scales).
// Rows past the end repeat the last row (computed, never written).
#define MM_ROWS 64
#define MM_COLS 64

__device__ __forceinline__ float weight_value(const char *row, i64 t, i64 k)
{
	switch (t) {
	case T_F32: return ((const float *)row)[k];
	case T_F16: return half_at((const unsigned short *)row + k);
	case T_BF16: return __uint_as_float(((unsigned)((const unsigned short *)row)[k]) << 16);
	}
	return 0.f;
}

__device__ __forceinline__ int pack4(const signed char *v)
{
	return (int)((unsigned)(unsigned char)v[0] | (unsigned)(unsigned char)v[1] << 8 |
		(unsigned)(unsigned char)v[2] << 16 | (unsigned)(unsigned char)v[3] << 24);
}

extern "C" __global__ void __launch_bounds__(256) matmul(const char *W, i64 t, i64 n, i64 rows,
	const float *in, const signed char *xq, const float *xd, i64 T, float *y, i64 ldy, const float *bias, i64 acc)
{
	__shared__ float ws[32][MM_ROWS + 1];
	__shared__ float xs[32][MM_COLS + 1];
	__shared__ int wq[MM_ROWS][9];
	__shared__ float wd[MM_ROWS];
	__shared__ int xqs[MM_COLS][9];
	__shared__ float xds[MM_COLS];
	int tid = threadIdx.x, tr = tid & 15, tc = tid >> 4;
	i64 r0 = blockIdx.x * (i64)MM_ROWS, c0 = blockIdx.y * (i64)MM_COLS;
	bool quant = t == T_Q8_0 || t == T_Q4_0;
	// What this thread stages: 8 values of W row r0 + lr from k0 + 8*lq, and
	// of input c0 + lc 8 values (or 2 int8 quads) from k0 + 8*lq.
	int lr = tid >> 2, lq = tid & 3, lc = tid >> 2;
	const char *wrow = W + min(r0 + lr, rows - 1) * row_bytes(t, n);
	i64 c = c0 + lc;
	float a[4][4];
#pragma unroll
	for (int i = 0; i < 4; i++)
#pragma unroll
		for (int j = 0; j < 4; j++) a[i][j] = 0.f;
	for (i64 k0 = 0; k0 < n; k0 += 32) {
		if (quant) {
			i64 b = k0 / 32;
			signed char v[8];
			const unsigned char *blk;
			if (t == T_Q8_0) {
				blk = (const unsigned char *)wrow + b * 34;
#pragma unroll
				for (int e = 0; e < 8; e++) v[e] = (signed char)blk[2 + lq * 8 + e];
			} else {
				blk = (const unsigned char *)wrow + b * 18;
#pragma unroll
				for (int e = 0; e < 8; e++) {
					int j = lq * 8 + e;
					unsigned char q = blk[2 + (j & 15)];
					v[e] = (signed char)((j < 16 ? (q & 15) : (q >> 4)) - 8);
				}
			}
			wq[lr][2 * lq] = pack4(v);
			wq[lr][2 * lq + 1] = pack4(v + 4);
			if (lq == 0) wd[lr] = half_at((const unsigned short *)blk);
			const int *xrow = (const int *)(xq + c * n + k0);
			xqs[lc][2 * lq] = c < T ? xrow[2 * lq] : 0;
			xqs[lc][2 * lq + 1] = c < T ? xrow[2 * lq + 1] : 0;
			if (lq == 0) xds[lc] = c < T ? xd[c * (n / 32) + b] : 0.f;
		} else {
			// 16-byte loads where the row allows them (F16 rows with n % 8
			// == 0, F32 rows and inputs with n % 4 == 0: every row then
			// starts 16-byte aligned), else one value at a time.
			i64 kb = k0 + lq * 8;
			bool full = kb + 8 <= n;
			float wv[8], xv[8];
			if (full && t == T_F16 && (n & 7) == 0) {
				uint4 raw = *(const uint4 *)((const unsigned short *)wrow + kb);
				const __half2 *h = (const __half2 *)&raw;
#pragma unroll
				for (int e = 0; e < 4; e++) {
					float2 f = __half22float2(h[e]);
					wv[2 * e] = f.x;
					wv[2 * e + 1] = f.y;
				}
			} else if (full && t == T_F32 && (n & 3) == 0) {
				float4 a = *(const float4 *)((const float *)wrow + kb), b = *(const float4 *)((const float *)wrow + kb + 4);
				wv[0] = a.x; wv[1] = a.y; wv[2] = a.z; wv[3] = a.w;
				wv[4] = b.x; wv[5] = b.y; wv[6] = b.z; wv[7] = b.w;
			} else {
#pragma unroll
				for (int e = 0; e < 8; e++) wv[e] = kb + e < n ? weight_value(wrow, t, kb + e) : 0.f;
			}
			if (full && c < T && (n & 3) == 0) {
				float4 a = *(const float4 *)(in + c * n + kb), b = *(const float4 *)(in + c * n + kb + 4);
				xv[0] = a.x; xv[1] = a.y; xv[2] = a.z; xv[3] = a.w;
				xv[4] = b.x; xv[5] = b.y; xv[6] = b.z; xv[7] = b.w;
			} else {
#pragma unroll
				for (int e = 0; e < 8; e++) xv[e] = kb + e < n && c < T ? in[c * n + kb + e] : 0.f;
			}
#pragma unroll
			for (int e = 0; e < 8; e++) {
				ws[lq * 8 + e][lr] = wv[e];
				xs[lq * 8 + e][lc] = xv[e];
			}
		}
		__syncthreads();
		if (quant) {
			int si[4][4];
#pragma unroll
			for (int i = 0; i < 4; i++)
#pragma unroll
				for (int j = 0; j < 4; j++) si[i][j] = 0;
#pragma unroll
			for (int q = 0; q < 8; q++) {
				int w[4], x[4];
#pragma unroll
				for (int i = 0; i < 4; i++) w[i] = wq[tr + 16 * i][q];
#pragma unroll
				for (int j = 0; j < 4; j++) x[j] = xqs[tc + 16 * j][q];
#pragma unroll
				for (int i = 0; i < 4; i++)
#pragma unroll
					for (int j = 0; j < 4; j++) si[i][j] = __dp4a(w[i], x[j], si[i][j]);
			}
#pragma unroll
			for (int i = 0; i < 4; i++)
#pragma unroll
				for (int j = 0; j < 4; j++) a[i][j] += (float)si[i][j] * (wd[tr + 16 * i] * xds[tc + 16 * j]);
		} else {
#pragma unroll 8
			for (int k = 0; k < 32; k++) {
				float w[4], x[4];
#pragma unroll
				for (int i = 0; i < 4; i++) w[i] = ws[k][tr + 16 * i];
#pragma unroll
				for (int j = 0; j < 4; j++) x[j] = xs[k][tc + 16 * j];
#pragma unroll
				for (int i = 0; i < 4; i++)
#pragma unroll
					for (int j = 0; j < 4; j++) a[i][j] += w[i] * x[j];
			}
		}
		__syncthreads();
	}
#pragma unroll
	for (int j = 0; j < 4; j++) {
		i64 cc = c0 + tc + 16 * j;
		if (cc >= T) continue;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			i64 r = r0 + tr + 16 * i;
			if (r >= rows) continue;
			float *p = y + cc * ldy + r;
			float o = a[i][j];
			if (acc) o = *p + o;
			else if (bias) o = o + bias[r];
			*p = o;
		}
	}
}

// rope_pairs (pair p: rope_at) rotates the pairs of q (dim values) and of k (kvdim values)
// at position pos: consecutive pairs (i, i+1) of each head (neox == 0;
// llama, run.c) or (i, i+hs/2) within each head (neox != 0; qwen2); pair p
// of a head turns by the angle of cs[pos][p] = (cos, sin), computed on the
// host exactly as the CPU engine does. Products are rounded separately (no
// FMA), as in the CPU engine. One thread per pair of q. pos = *posp; k is
// kc + pos*kvdim (kc: this layer's key cache).
__device__ __forceinline__ void rope_at(float *q, float *k, const float *cs, i64 pos, i64 p, i64 dim, i64 kvdim, i64 hs, i64 neox)
{
	if (p * 2 >= dim) return;
	i64 half = hs / 2, i0, i1, j;
	if (neox) {
		i64 h = p / half;
		j = p % half;
		i0 = h * hs + j;
		i1 = i0 + half;
	} else {
		i0 = p * 2;
		i1 = i0 + 1;
		j = (i0 % hs) / 2;
	}
	const float *c = cs + (pos * half + j) * 2;
	float fcr = c[0], fci = c[1];
	float v0 = q[i0], v1 = q[i1];
	q[i0] = __fsub_rn(__fmul_rn(v0, fcr), __fmul_rn(v1, fci));
	q[i1] = __fadd_rn(__fmul_rn(v0, fci), __fmul_rn(v1, fcr));
	if (i1 < kvdim) {
		v0 = k[i0]; v1 = k[i1];
		k[i0] = __fsub_rn(__fmul_rn(v0, fcr), __fmul_rn(v1, fci));
		k[i1] = __fadd_rn(__fmul_rn(v0, fci), __fmul_rn(v1, fcr));
	}
}

extern "C" __global__ void rope_pairs(float *q, float *kc, const float *cs, const i64 *posp, i64 dim, i64 kvdim, i64 hs, i64 neox)
{
	i64 pos = *posp;
	rope_at(q, kc + pos * kvdim, cs, pos, blockIdx.x * (i64)blockDim.x + threadIdx.x, dim, kvdim, hs, neox);
}

// rope_rows is rope_pairs for a batch: row blockIdx.y of q (dim values
// apart) and the cached k at position pos0 + blockIdx.y.
extern "C" __global__ void rope_rows(float *q, float *kc, const float *cs, i64 pos0, i64 dim, i64 kvdim, i64 hs, i64 neox)
{
	i64 pos = pos0 + blockIdx.y;
	rope_at(q + blockIdx.y * dim, kc + pos * kvdim, cs, pos, blockIdx.x * (i64)blockDim.x + threadIdx.x, dim, kvdim, hs, neox);
}

// attend computes head h of the query q at position pos over the cache
// (positions 0..pos) into out (the head's hs values at out + h*hs); a is
// the head's score scratch (pos+1 floats). Every thread of the block calls it.
__device__ __forceinline__ void attend(const float *q, const float *kc, const float *vc, float *a, float *out,
	i64 pos, i64 h, i64 hs, i64 kvdim, i64 kvmul)
{
	__shared__ float red[32];
	float *qs = (float *)smem4;
	float *part = qs + hs;
	for (i64 i = threadIdx.x; i < hs; i += blockDim.x) qs[i] = q[h * hs + i];
	__syncthreads();
	i64 kvoff = (h / kvmul) * hs;
	float scale = sqrtf((float)hs);
	float m = -INFINITY;
	for (i64 t = threadIdx.x; t <= pos; t += blockDim.x) {
		const float *kt = kc + t * kvdim + kvoff;
		float s = 0.f;
		if ((hs & 3) == 0 && (kvdim & 3) == 0) {
#pragma unroll 8
			for (i64 i = 0; i < hs; i += 4) {
				float4 kv = *(const float4 *)(kt + i);
				s += qs[i] * kv.x + qs[i + 1] * kv.y + qs[i + 2] * kv.z + qs[i + 3] * kv.w;
			}
		} else {
			for (i64 i = 0; i < hs; i++) s += qs[i] * kt[i];
		}
		s = s / scale;
		a[t] = s;
		m = fmaxf(m, s);
	}
	m = block_max(m, red);
	float sum = 0.f;
	for (i64 t = threadIdx.x; t <= pos; t += blockDim.x) {
		float e = expf(a[t] - m);
		a[t] = e;
		sum += e;
	}
	sum = block_sum(sum, red);
	for (i64 t = threadIdx.x; t <= pos; t += blockDim.x) a[t] = a[t] / sum;
	__syncthreads();
	i64 G = blockDim.x / hs;
	if (G < 1) G = 1;
	for (i64 idx = threadIdx.x; idx < G * hs; idx += blockDim.x) {
		i64 g = idx / hs, i = idx % hs;
		float acc = 0.f;
#pragma unroll 8
		for (i64 t = g; t <= pos; t += G) acc += a[t] * vc[t * kvdim + kvoff + i];
		part[idx] = acc;
	}
	__syncthreads();
	for (i64 i = threadIdx.x; i < hs; i += blockDim.x) {
		float acc = 0.f;
		for (i64 g = 0; g < G; g++) acc += part[g * hs + i];
		out[h * hs + i] = acc;
	}
}

// attention: block h computes head h over positions 0..pos (pos = *posp). kc and vc point
// at this layer's cache [seq][kvdim]; att is scratch [n_heads][seq]. Scores:
// one thread per position (the head's q from shared memory, k read as
// float4 when hs is a multiple of 4); softmax with max subtraction (block
// reductions in a fixed order); output: G = blockDim.x/hs groups of hs
// threads each sum every G-th position, then the groups are added in order.
// Dynamic shared memory: (hs + G*hs) floats. Blocks past the n_heads ones
// prefetch pfbytes at pf (the output projection's weights) into L2.
extern "C" __global__ void attention(
	const float *q, const float *kc, const float *vc, float *att, float *out,
	const i64 *posp, i64 hs, i64 kvdim, i64 kvmul, i64 seq, i64 nheads, const char *pf, i64 pfbytes)
{
	pdl_trigger(); // the next product may start warming its weights
	if (blockIdx.x >= nheads) {
		prefetch_l2(pf, pfbytes, nheads);
		return;
	}
	attend(q, kc, vc, att + blockIdx.x * seq, out, *posp, blockIdx.x, hs, kvdim, kvmul);
}

// attention_rows is attention for a batch of queries: block (h, y)
// computes head h of query row y (q and out rows dim values apart) at
// position pos0 + y, so causally over positions 0..pos0+y; att is scratch
// [rows][n_heads][stride], stride ≥ pos0 + rows (the chunk's last
// position + 1).
extern "C" __global__ void attention_rows(
	const float *q, const float *kc, const float *vc, float *att, float *out,
	i64 pos0, i64 hs, i64 kvdim, i64 kvmul, i64 stride, i64 nheads, i64 dim)
{
	i64 y = blockIdx.y;
	attend(q + y * dim, kc, vc, att + (y * nheads + blockIdx.x) * stride, out + y * dim, pos0 + y, blockIdx.x, hs, kvdim, kvmul);
}

// embed_value is element i of an embedding row of type t.
__device__ __forceinline__ float embed_value(const char *row, i64 t, i64 i)
{
	switch (t) {
	case T_F32: return ((const float *)row)[i];
	case T_F16: return half_at((const unsigned short *)row + i);
	case T_BF16: return __uint_as_float(((unsigned)((const unsigned short *)row)[i]) << 16);
	case T_Q8_0: {
		const char *b = row + (i / 32) * 34;
		return (float)(signed char)b[2 + i % 32] * half_at((const unsigned short *)b);
	}
	case T_Q4_0: {
		const char *b = row + (i / 32) * 18;
		int j = i % 32;
		unsigned char q = (unsigned char)b[2 + (j & 15)];
		int qi = j < 16 ? (q & 15) : (q >> 4);
		return (float)(qi - 8) * half_at((const unsigned short *)b);
	}
	}
	return 0.f;
}

// embed: x = row toks[*posp] of the embedding table E (type t, row length
// dim): the token at the current position.
extern "C" __global__ void embed(const char *E, i64 t, const i64 *toks, const i64 *posp, float *x, i64 dim)
{
	pdl_trigger(); // the next product may start warming its weights
	const char *row = E + toks[*posp] * row_bytes(t, dim);
	for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < dim; i += gridDim.x * (i64)blockDim.x) x[i] = embed_value(row, t, i);
}

// embed_rows is embed for a batch: row y of x (dim values apart) is the
// token toks[pos0 + y], y = blockIdx.y.
extern "C" __global__ void embed_rows(const char *E, i64 t, const i64 *toks, i64 pos0, float *x, i64 dim)
{
	const char *row = E + toks[pos0 + blockIdx.y] * row_bytes(t, dim);
	x += blockIdx.y * dim;
	for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < dim; i += gridDim.x * (i64)blockDim.x) x[i] = embed_value(row, t, i);
}

// argmax_partial: block b of the grid scans its chunk [b*chunk, (b+1)*chunk)
// of the logits and writes its best (value, lowest index on ties; NaN never
// wins) and sum of exp(logit - its best) in float64. argmax_logprob (one
// block) merges the partials in block order: the best of the bests, and
// sum = Σ s_b * exp(m_b - m), then the log-softmax of the winner in float64:
// -log(sum). Fixed orders throughout, so the result is deterministic.
__device__ __forceinline__ void better(float &v, i64 &id, float ov, i64 oi) {
	if (ov > v || (ov == v && oi < id)) { v = ov; id = oi; }
}

__device__ void block_argmax(float &v, i64 &id, float *bv, i64 *bi) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) better(v, id, __shfl_xor_sync(FULL, v, o), __shfl_xor_sync(FULL, id, o));
	__syncthreads();
	if (lane == 0) { bv[warp] = v; bi[warp] = id; }
	__syncthreads();
	v = bv[0]; id = bi[0];
	for (int w = 1; w < nw; w++) better(v, id, bv[w], bi[w]);
}

__device__ double block_sum_d(double s, double *bs) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
	__syncthreads();
	if (lane == 0) bs[warp] = s;
	__syncthreads();
	double t = 0.0;
	for (int w = 0; w < nw; w++) t += bs[w];
	return t;
}

extern "C" __global__ void argmax_partial(const float *logits, i64 n, i64 chunk, float *pv, i64 *pi, double *ps)
{
	__shared__ float bv[32];
	__shared__ i64 bi[32];
	__shared__ double bs[32];
	i64 lo = blockIdx.x * chunk, hi = min(n, lo + chunk);
	float v = -INFINITY;
	i64 id = n; // sentinel: larger than any index
	for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
		float x = logits[i];
		if (x > v || (id == n && x == x)) { v = x; id = i; }
	}
	block_argmax(v, id, bv, bi);
	double s = 0.0;
	if (id < n) {
		double m = (double)v;
		for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) s += exp((double)logits[i] - m);
	}
	s = block_sum_d(s, bs);
	if (threadIdx.x == 0) { pv[blockIdx.x] = v; pi[blockIdx.x] = id; ps[blockIdx.x] = s; }
}

// The winner goes to toks[*posp + 1] and its log-prob to lps[*posp + 1]:
// the next position's token.
extern "C" __global__ void argmax_logprob(const float *pv, const i64 *pi, const double *ps, i64 nb, i64 n, i64 *toks, double *lps, const i64 *posp)
{
	__shared__ float bv[32];
	__shared__ i64 bi[32];
	__shared__ double bs[32];
	float v = -INFINITY;
	i64 id = n;
	for (i64 b = threadIdx.x; b < nb; b += blockDim.x) better(v, id, pv[b], pi[b]);
	block_argmax(v, id, bv, bi);
	double s = 0.0;
	if (id < n) {
		double m = (double)v;
		for (i64 b = threadIdx.x; b < nb; b += blockDim.x)
			if (pi[b] < n) s += ps[b] * exp((double)pv[b] - m);
	}
	s = block_sum_d(s, bs);
	if (threadIdx.x == 0) {
		i64 next = *posp + 1;
		toks[next] = id < n ? id : 0;
		lps[next] = -log(s); // logits[id] - m == 0
	}
}

// advance_pos moves the current position on by one.
extern "C" __global__ void advance_pos(i64 *posp)
{
	if (threadIdx.x == 0 && blockIdx.x == 0) *posp += 1;
}

// log_softmax: one block; out[i] = logits[i] - max - log(sum exp(logits - max))
// in float64.
extern "C" __global__ void log_softmax(const float *logits, i64 n, double *out)
{
	__shared__ float red[32];
	__shared__ double bs[32];
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
	float m = -INFINITY;
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, logits[i]);
	m = block_max(m, red);
	double s = 0.0;
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) s += exp((double)logits[i] - (double)m);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(FULL, s, o);
	if (lane == 0) bs[warp] = s;
	__syncthreads();
	double t = 0.0;
	for (int w = 0; w < nw; w++) t += bs[w];
	double ls = (double)m + log(t);
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) out[i] = (double)logits[i] - ls;
}

// score_rows: block y scores row y of logits (n values each) against its
// target token targets[y], as the CPU engine's LogProbAhead: the log-prob
// (float64: logit - max - log(sum exp(logit - max))) into lps[y] and the
// count of tokens whose logit exceeds the target's by more than margin
// into ahead[y]. The validator's teacher-forced pass (gpu.Llama.Score).
extern "C" __global__ void score_rows(const float *logits, i64 n, const i64 *targets, double margin, double *lps, i64 *ahead)
{
	__shared__ float red[32];
	__shared__ double bs[32];
	const float *row = logits + blockIdx.x * n;
	float m = -INFINITY;
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, row[i]);
	m = block_max(m, red);
	double tl = (double)row[targets[blockIdx.x]], bar = tl + margin;
	double s = 0.0, c = 0.0;
	for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
		s += exp((double)row[i] - (double)m);
		if ((double)row[i] > bar) c += 1.0;
	}
	s = block_sum_d(s, bs);
	c = block_sum_d(c, bs);
	if (threadIdx.x == 0) {
		lps[blockIdx.x] = tl - (double)m - log(s);
		ahead[blockIdx.x] = (i64)c;
	}
}

__device__ __forceinline__ u64 splitmix64(u64 z) {
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// uniform in [-1, 1) from 24 random bits
__device__ __forceinline__ float unif(u64 h) {
	return (float)(i64)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

// fill_weights writes n elements of type t at w: uniform values in
// [offset - scale, offset + scale) from a hash of (seed, index), so the
// result depends only on the arguments. Quantized types get one scale per
// block (d = scale/127 for Q8_0, scale/8 for Q4_0) and random quants; offset
// applies to F32/F16/BF16 only.
extern "C" __global__ void fill_weights(char *w, i64 t, i64 n, u64 seed, double scale, double offset)
{
	i64 stride = gridDim.x * (i64)blockDim.x;
	i64 start = blockIdx.x * (i64)blockDim.x + threadIdx.x;
	float sc = (float)scale, off = (float)offset;
	switch (t) {
	case T_F32:
		for (i64 i = start; i < n; i += stride) ((float *)w)[i] = off + sc * unif(splitmix64(seed ^ (u64)i));
		break;
	case T_F16:
		for (i64 i = start; i < n; i += stride) ((__half *)w)[i] = __float2half(off + sc * unif(splitmix64(seed ^ (u64)i)));
		break;
	case T_BF16:
		for (i64 i = start; i < n; i += stride) {
			float f = off + sc * unif(splitmix64(seed ^ (u64)i));
			((unsigned short *)w)[i] = (unsigned short)(__float_as_uint(f) >> 16);
		}
		break;
	case T_Q8_0:
		for (i64 b = start; b < n / 32; b += stride) {
			char *p = w + b * 34;
			__half d = __float2half(sc / 127.0f);
			*(unsigned short *)p = __half_as_ushort(d);
			u64 h = splitmix64(seed ^ (u64)b);
			for (int j = 0; j < 32; j++) {
				if ((j & 7) == 0) h = splitmix64(h);
				p[2 + j] = (char)(signed char)((int)((h >> (8 * (j & 7))) & 0xff) % 255 - 127);
			}
		}
		break;
	case T_Q4_0:
		for (i64 b = start; b < n / 32; b += stride) {
			char *p = w + b * 18;
			__half d = __float2half(sc / 8.0f);
			*(unsigned short *)p = __half_as_ushort(d);
			u64 h = splitmix64(splitmix64(seed ^ (u64)b));
			for (int j = 0; j < 16; j++) p[2 + j] = (char)((h >> (4 * j)) & 0xff);
		}
		break;
	}
}

// read_bytes reads n 16-byte words at p once, four loads in flight per
// thread (streaming, as the products read weights), and folds them into
// one word that is written only if it equals a key: the benchmark's
// measured ceiling for a kernel that only reads device memory.
extern "C" __global__ void read_bytes(const uint4 *p, i64 n, unsigned *out)
{
	unsigned acc = 0;
	i64 stride = (i64)gridDim.x * blockDim.x;
	i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x;
	for (; i + 3 * stride < n; i += 4 * stride) {
		uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
		acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
	}
	for (; i < n; i += stride) {
		uint4 a = __ldcs(p + i);
		acc ^= a.x ^ a.y ^ a.z ^ a.w;
	}
	if (acc == 0x9e3779b9u) out[0] = acc;
}
