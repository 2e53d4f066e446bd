// yuma.cu: batched Yuma consensus epochs (subtensor's epoch_mechanism), many
// subnets per launch, bit for bit equal to chain/yuma's CPU engine.
//
// This file is a line-by-line port of the Go reference path in
// chain/yuma/gpuplan (kernels.go: one Go function per kernel here, same
// names; fx.go: the fixed-point section below). The batch layout, the launch
// sequence and the reasons each step is exact are documented there
// (layout.go); CI tests that Go path against the CPU engine, and
// `taobox-cuda selftest --run yuma` tests this file against the CPU engine.
//
// Integer fixed point only (raw I32F32 in long long). Wrapping sums are done
// in unsigned long long because signed overflow is undefined in C++.
// Every kernel takes one parameter: the device address of the descriptor
// (DCount 64-bit words: scalars and array addresses, gpuplan.Layout).

typedef long long i64;
typedef unsigned long long u64;
typedef int i32;
typedef unsigned int u32;

// ---- descriptor slots (gpuplan/layout.go D*; same order) ----
enum {
	D_S, D_U, D_NW, D_NB,
	D_SUB, D_USUB, D_LU, D_BAR, D_COMMIT, D_UFLAG, D_ACTIVE, D_STAKE, D_USEIDX, D_USESTAKE,
	D_WPTR, D_BPTR, D_WENT, D_BENT,
	D_CONS, D_VTRUST, D_INC, D_DIVS, D_SEM, D_VEM, D_EM, D_ROWOFF, D_SSTATE, D_TOTAL,
	D_WV, D_CV, D_XV, D_BV, D_COLA, D_COLB, D_COLM, D_ROWCNT, D_D1, D_D2, D_D3,
	D_WFLAG, D_NEXTW, D_BFLAG, D_NEXTB, D_HW, D_HB, D_BONDOUT, D_ROWT, D_PMW, D_PMB,
	D_COUNT
};

// ---- per-subnet table fields (gpuplan SF*) ----
enum {
	SF_N, SF_UID, SF_CELL, SF_OWNER, SF_CR, SF_MINORITY, SF_USEK, SF_YUMA3, SF_LIQIN,
	SF_MODE, SF_BETA, SF_EMAA, SF_LOW, SF_HIGH, SF_SCALE, SF_LT, SF_ACTZERO, SF_RAO,
	SUB_FIELDS
};
enum { SS_LIQ, SS_BONDN, SS_BONDBASE, STATE_FIELDS };
enum { UF_ROWFORBID = 1, UF_NEWPERMIT = 2, UF_USE = 4 };
enum { WF_ALIVE = 1, WF_CLIP = 2, WF_EMA = 4 };

#define ARR(T, k) ((T *)(D[k]))

// ======================= device fixed point (gpuplan/fx.go) =======================

#define FX_ONE ((i64)1 << 32)
#define FX_HALF ((i64)1 << 31)
#define FX_MAX ((i64)0x7fffffffffffffffLL)
#define FX_MIN ((i64)(-0x7fffffffffffffffLL - 1))

__device__ __forceinline__ i64 fx_sat_add(i64 a, i64 b)
{
	i64 s = (i64)((u64)a + (u64)b);
	if ((a >= 0) == (b >= 0) && (s >= 0) != (a >= 0)) {
		return a >= 0 ? FX_MAX : FX_MIN;
	}
	return s;
}

__device__ __forceinline__ i64 fx_sat_sub(i64 a, i64 b)
{
	i64 s = (i64)((u64)a - (u64)b);
	if ((a >= 0) != (b >= 0) && (s >= 0) != (a >= 0)) {
		return a >= 0 ? FX_MAX : FX_MIN;
	}
	return s;
}

// floor(a*b / 2^32); returns false when it does not fit 64 bits.
__device__ __forceinline__ bool fx_checked_mul(i64 a, i64 b, i64 *r)
{
	u64 ua = (u64)a, ub = (u64)b;
	u64 lo = ua * ub;
	u64 hi = __umul64hi(ua, ub);
	hi -= ub & (u64)(a >> 63);
	hi -= ua & (u64)(b >> 63);
	if ((u64)((i64)hi >> 31) + 1 > 1) {
		*r = 0;
		return false;
	}
	*r = (i64)(hi << 32 | lo >> 32);
	return true;
}

__device__ __forceinline__ i64 fx_sat_mul(i64 a, i64 b)
{
	i64 r;
	if (fx_checked_mul(a, b, &r)) {
		return r;
	}
	return ((a < 0) != (b < 0)) ? FX_MIN : FX_MAX;
}

// floor((u1*2^64 + u0) / v) for u1 < v: Hacker's Delight divlu (two 32-bit
// quotient digits, each estimated by one 64/32 division and corrected).
__device__ __forceinline__ u64 fx_div128(u64 u1, u64 u0, u64 v)
{
	const u64 b = (u64)1 << 32;
	int s = __clzll((i64)v);
	v <<= s;
	u64 vn1 = v >> 32, vn0 = v & (b - 1);
	u64 un32 = u1 << s;
	if (s > 0) {
		un32 |= u0 >> (64 - s);
	}
	u64 un10 = u0 << s;
	u64 un1 = un10 >> 32, un0 = un10 & (b - 1);
	u64 q1 = un32 / vn1;
	u64 rhat = un32 - q1 * vn1;
	while (q1 >= b || q1 * vn0 > b * rhat + un1) {
		q1--;
		rhat += vn1;
		if (rhat >= b) {
			break;
		}
	}
	u64 un21 = un32 * b + un1 - q1 * v;
	u64 q0 = un21 / vn1;
	rhat = un21 - q0 * vn1;
	while (q0 >= b || q0 * vn0 > b * rhat + un0) {
		q0--;
		rhat += vn1;
		if (rhat >= b) {
			break;
		}
	}
	return q1 * b + q0;
}

// trunc((a << 32) / b); false on b == 0 and on overflow.
__device__ __forceinline__ bool fx_checked_div(i64 a, i64 b, i64 *r)
{
	*r = 0;
	if (b == 0) {
		return false;
	}
	u64 ua = (u64)a, ub = (u64)b;
	bool na = a < 0, nb = b < 0;
	if (na) {
		ua = 0 - ua;
	}
	if (nb) {
		ub = 0 - ub;
	}
	u64 hi = ua >> 32, lo = ua << 32;
	if (hi >= ub) {
		return false;
	}
	u64 q = fx_div128(hi, lo, ub);
	if (na != nb) {
		if (q > ((u64)1 << 63)) {
			return false;
		}
		*r = (i64)(0 - q);
		return true;
	}
	if (q > (((u64)1 << 63) - 1)) {
		return false;
	}
	*r = (i64)q;
	return true;
}

__device__ __forceinline__ i64 fx_safe_div(i64 a, i64 b)
{
	i64 r;
	fx_checked_div(a, b, &r);
	return r;
}

__device__ __forceinline__ i64 fx_sat_div(i64 a, i64 b)
{
	i64 r;
	if (fx_checked_div(a, b, &r)) {
		return r;
	}
	return ((a < 0) != (b < 0)) ? FX_MIN : FX_MAX;
}

// The 31-term exp series for 0 < x <= 20 (fixed.expSeries), unrolled so
// that every divisor is a constant.
__device__ u64 fx_exp_series(u64 x)
{
	u64 r = x + ((u64)1 << 32);
	u64 t = x;
#pragma unroll
	for (u64 i = 2; i < 32; i++) {
		u64 hi = __umul64hi(t, x), lo = t * x;
		t = (hi << 32 | lo >> 32) / i;
		if (t == 0) {
			return r;
		}
		r += t;
	}
	return r;
}

__device__ i64 fx_exp_safe(i64 x)
{
	const i64 lim = (i64)20 << 32;
	if (x > lim) {
		x = lim;
	}
	if (x < -lim) {
		x = -lim;
	}
	if (x == 0) {
		return FX_ONE;
	}
	if (x == FX_ONE) {
		return (i64)22802600 << 9;
	}
	if (x < 0) {
		i64 q;
		fx_checked_div(FX_ONE, (i64)fx_exp_series((u64)(-x)), &q);
		return q;
	}
	return (i64)fx_exp_series((u64)x);
}

__device__ __forceinline__ i64 fx_min(i64 a, i64 b) { return a < b ? a : b; }
__device__ __forceinline__ i64 fx_max(i64 a, i64 b) { return a > b ? a : b; }

__device__ i64 fx_alpha_sigmoid(i64 cons, i64 w, i64 b, i64 scale, i64 low, i64 high)
{
	i64 d;
	if (w >= b) {
		d = fx_max(fx_min(fx_sat_sub(w, cons), FX_ONE), 0);
	} else {
		d = fx_max(fx_min(fx_sat_sub(b, w), FX_ONE), 0);
	}
	i64 x = fx_sat_mul(scale, fx_sat_sub(d, FX_HALF));
	i64 sig = fx_sat_div(FX_ONE, fx_sat_add(FX_ONE, fx_exp_safe(x)));
	i64 a = fx_sat_add(low, fx_sat_mul(sig, fx_sat_sub(high, low)));
	return fx_max(fx_min(a, high), low);
}

__device__ __forceinline__ u32 fx_prop_u16(i64 x)
{
	if ((u64)x <= ((u64)1 << 32)) {
		return (u32)(((u64)x * 65535) >> 32);
	}
	i64 v = fx_sat_mul(x, (i64)65535 << 32) >> 32;
	if (v < 0) {
		return 0;
	}
	if (v > 65535) {
		return 65535;
	}
	return (u32)v;
}

__device__ __forceinline__ i64 fx_u16_prop(u64 x) { return (i64)((x << 32) / 65535); }

__device__ __forceinline__ u64 fx_rao(i64 x, u64 rao)
{
	if (x <= 0) {
		return 0;
	}
	u64 hi = __umul64hi((u64)x, rao), lo = (u64)x * rao;
	if (hi >> 32 != 0) {
		return ~(u64)0;
	}
	return hi << 32 | lo >> 32;
}

// ======================= kernels (gpuplan/kernels.go) =======================

__device__ __forceinline__ i64 gtid() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }

struct Ctx {
	i64 s, n, u0, c0;
	const i64 *sub;
};

__device__ __forceinline__ Ctx sub_of(const i64 *D, i64 u)
{
	Ctx c;
	c.s = ARR(const i64, D_USUB)[u];
	c.sub = ARR(const i64, D_SUB) + c.s * SUB_FIELDS;
	c.n = c.sub[SF_N];
	c.u0 = c.sub[SF_UID];
	c.c0 = c.sub[SF_CELL];
	return c;
}

__device__ __forceinline__ bool wfb_alive(const i64 *D, i64 mode, i64 e)
{
	i32 f = ARR(const i32, D_WFLAG)[e];
	return mode == 0 ? (f & WF_ALIVE) != 0 : (f & WF_CLIP) != 0;
}

__device__ __forceinline__ i64 wfb_val(const i64 *D, i64 mode, i64 e)
{
	return mode == 0 ? ARR(const i64, D_WV)[e] : ARR(const i64, D_CV)[e];
}

#define WCOL(e) ((i64)(went[e] & 0xffff))

// yuma_clear (kClear): thread per dense cell.
extern "C" __global__ void yuma_clear(const i64 *D)
{
	i64 c = gtid();
	const i64 *last = ARR(const i64, D_SUB) + (D[D_S] - 1) * SUB_FIELDS;
	if (c >= last[SF_CELL] + last[SF_N] * last[SF_N]) {
		return;
	}
	ARR(i32, D_HW)[c] = -1;
	ARR(i32, D_HB)[c] = -1;
}

// row_of_entry (rowOfEntry): the last row u with WPtr[u] <= e.
__device__ __forceinline__ i64 row_of_entry(const i64 *D, i64 e)
{
	const i64 *wptr = ARR(const i64, D_WPTR);
	i64 lo = 0, hi = D[D_U];
	while (lo < hi) {
		i64 mid = (lo + hi + 1) / 2;
		if (wptr[mid] <= e) {
			lo = mid;
		} else {
			hi = mid - 1;
		}
	}
	return lo;
}

// ---- block-per-row kernels (GridRow) ----
//
// yuma_load, yuma_wfb, yuma_ema, yuma_divs and yuma_bond_write run one block
// per row u = blockIdx.x (gpuplan.GridRow) whose threads stride over the
// row's entries or columns, so that neighbouring threads touch neighbouring
// words. They are written for any blockDim.x <= ROWBLOCK (the device uses
// gpuplan Layout.RowThreads, a multiple of 32 from 32 to ROWBLOCK; the host
// harness also runs them with other sizes). Every
// __syncthreads is reached by the whole block: the early returns depend only
// on per-row values. Everything that depends on the order of a row (chains,
// prefix maxima, bond positions, saturating sums) is done in stored (or
// column) order, in steps of blockDim.x entries with block scans between.

#define ROWBLOCK 128 // gpuplan.RowBlock

// row_sum: wrapping sum of v over the block (exact modulo 2^64 in any order).
__device__ u64 row_sum(u64 v)
{
	__shared__ u64 sh[ROWBLOCK];
	unsigned t = threadIdx.x, bd = blockDim.x;
	sh[t] = v;
	__syncthreads();
	for (unsigned w = 1; w < bd; w <<= 1) {
		if ((t & (2 * w - 1)) == 0 && t + w < bd) {
			sh[t] += sh[t + w];
		}
		__syncthreads();
	}
	u64 r = sh[0];
	__syncthreads();
	return r;
}

// row_scan: the inclusive prefix of v over threads 0..threadIdx.x, with
// op 0: + (small non-negative counts), op 1: max; *total gets the whole
// block's.
__device__ i64 row_scan(i64 v, int op, i64 *total)
{
	__shared__ i64 sh[ROWBLOCK];
	unsigned t = threadIdx.x, bd = blockDim.x;
	sh[t] = v;
	__syncthreads();
	for (unsigned w = 1; w < bd; w <<= 1) {
		i64 o = t >= w ? sh[t - w] : 0;
		__syncthreads();
		if (t >= w) {
			v = op ? fx_max(v, o) : v + o;
			sh[t] = v;
		}
		__syncthreads();
	}
	*total = sh[bd - 1];
	__syncthreads();
	return v;
}

// link_tail appends entry e to the chain of one cell, given its head and
// tail words (the tail is valid when the head is >= 0).
__device__ __forceinline__ void link_tail(i32 *head, i32 *tail, i32 *next, i64 e)
{
	next[e] = -1;
	if (*head < 0) {
		*head = (i32)e;
	} else {
		next[*tail] = (i32)e;
	}
	*tail = (i32)e;
}

// link_row (the chain loop of kLoad): appends the entries e in [lo, hi)
// whose flag has bit 1 (alive) to the chains of their cells (head[column])
// in stored order, blockDim.x entries per step. A step whose alive entries
// have distinct columns links them in parallel (every chain is touched by
// one thread, after the chains of the earlier steps); a step holding two
// alive entries of one column (unsorted rows with duplicates) is linked by
// thread 0 alone in stored order. tail and slot are n-word scratch tables of
// the row: the last entry of each chain, and the thread claiming a column in
// the step (a plain store: some claimer wins, and any other sees a duplicate).
__device__ void link_row(i32 *head, i32 *next, i32 *tail, i32 *slot, const u32 *ent, const i32 *flag, i64 lo, i64 hi)
{
	unsigned t = threadIdx.x, bd = blockDim.x;
	for (i64 base = lo; base < hi; base += bd) {
		i64 e = base + t;
		bool mine = e < hi && (flag[e] & 1) != 0;
		i64 j = mine ? (i64)(ent[e] & 0xffff) : 0;
		if (mine) {
			slot[j] = (i32)t;
		}
		__syncthreads();
		int dup = __syncthreads_or(mine && slot[j] != (i32)t);
		if (!dup) {
			if (mine) {
				link_tail(head + j, tail + j, next, e);
			}
		} else if (t == 0) {
			i64 end = base + bd < hi ? base + bd : hi;
			for (i64 f = base; f < end; f++) {
				if (flag[f] & 1) {
					i64 jf = (i64)(ent[f] & 0xffff);
					link_tail(head + jf, tail + jf, next, f);
				}
			}
		}
		__syncthreads();
	}
}

// yuma_load (kLoad): block per row. The weight masks and values and the
// bond loads per entry, the wrapping row sum by a block reduction, then the
// chains in stored order (link_row, scratch in the row's D1 words: D1 is
// first written by yuma_consensus).
extern "C" __global__ void yuma_load(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 i = u - c.u0, n = c.n, row = c.c0 + i * n;
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	i64 blo = ARR(const i64, D_BPTR)[u], bhi = ARR(const i64, D_BPTR)[u + 1];
	if (wlo == whi && blo == bhi) {
		if (t == 0) {
			ARR(i64, D_ROWT)[u] = 0;
			ARR(i64, D_VTRUST)[u] = 0;
		}
		return;
	}
	i64 owner = c.sub[SF_OWNER];
	bool cr = c.sub[SF_CR] != 0;
	bool forbid = (ARR(const i64, D_UFLAG)[u] & UF_ROWFORBID) != 0;
	u64 lu = ARR(const u64, D_LU)[u], cm = ARR(const u64, D_COMMIT)[u];
	const u64 *BAR = ARR(const u64, D_BAR);
	const u32 *went = ARR(const u32, D_WENT), *bent = ARR(const u32, D_BENT);
	i32 *wflag = ARR(i32, D_WFLAG), *nextw = ARR(i32, D_NEXTW);
	i64 *WV = ARR(i64, D_WV);
	u64 part = 0;
	for (i64 e = wlo + t; e < whi; e += bd) {
		u32 ent = went[e];
		i64 j = (i64)(ent & 0xffff), v = (i64)(ent >> 16);
		u64 bar = BAR[c.u0 + j];
		bool alive = !forbid && !(j == i && i != owner) && !(lu <= bar) && !(cr && cm < bar);
		wflag[e] = alive ? WF_ALIVE : 0;
		WV[e] = alive ? v << 32 : 0;
		if (alive) {
			part += (u64)(v << 32);
		}
	}
	u64 lt = (u64)c.sub[SF_LT];
	bool y3 = c.sub[SF_YUMA3] != 0;
	i32 *bflag = ARR(i32, D_BFLAG), *nextb = ARR(i32, D_NEXTB);
	i64 *BV = ARR(i64, D_BV);
	for (i64 e = blo + t; e < bhi; e += bd) {
		u32 ent = bent[e];
		i64 j = (i64)(ent & 0xffff);
		u64 v = (u64)(ent >> 16);
		bool alive = !(lt <= BAR[c.u0 + j]);
		bflag[e] = alive ? 1 : 0;
		BV[e] = alive ? (y3 ? fx_u16_prop(v) : (i64)(v << 32)) : 0;
	}
	u64 sum = row_sum(part); // also the barrier after the flags
	if (t == 0) {
		ARR(i64, D_ROWT)[u] = (i64)sum; // the row sum for yuma_wnorm
		ARR(i64, D_VTRUST)[u] = 0;      // accumulated by yuma_clip
	}
	i32 *scr = ARR(i32, D_D1) + 2 * row;
	link_row(ARR(i32, D_HW) + row, nextw, scr, scr + n, went, wflag, wlo, whi);
	link_row(ARR(i32, D_HB) + row, nextb, scr, scr + n, bent, bflag, blo, bhi);
}

// dev_weighted_median (weightedMedian): math.rs quickselect over indices.
// The column's arrays are interleaved with the other columns' of its subnet:
// element r of score, cur, lower and upper is at [r * st], so that the
// threads of neighbouring columns touch neighbouring words.
__device__ i64 dev_weighted_median(const i64 *score, const i64 *stake, i32 *cur, i32 *lower, i32 *upper, i64 st,
                                   i64 m, i64 minority, i64 lo, i64 hi)
{
	i64 k0 = m;
	for (i64 iter = 0;;) {
		if (m == 0) {
			return 0;
		}
		if (m == 1) {
			return score[(i64)cur[0] * st];
		}
		i64 pivot = score[(i64)cur[(m / 2) * st] * st];
		u64 loS = 0, hiS = 0;
		i64 nl = 0, nh = 0;
		for (i64 t = 0; t < m; t++) {
			i32 r = cur[t * st];
			i64 sc = score[(i64)r * st];
			if (sc < pivot) {
				lower[(nl++) * st] = r;
				loS += (u64)stake[r];
			} else if (sc > pivot) {
				upper[(nh++) * st] = r;
				hiS += (u64)stake[r];
			}
		}
		if (minority < (i64)((u64)lo + loS) && nl > 0) {
			hi = (i64)((u64)lo + loS);
			i32 *t = cur;
			cur = lower;
			lower = t;
			m = nl;
		} else if ((i64)((u64)hi - hiS) <= minority && nh > 0) {
			lo = (i64)((u64)hi - hiS);
			i32 *t = cur;
			cur = upper;
			upper = t;
			m = nh;
		} else {
			return pivot;
		}
		iter++;
		if (iter > k0) {
			return 0;
		}
	}
}

// yuma_consensus (kConsensus): thread per column. Scratch: the scores in the
// subnet's D1 cells, the index partitions A and B in its D2 cells and C in
// its D3 cells (int32), all interleaved by column (stride n).
extern "C" __global__ void yuma_consensus(const i64 *D)
{
	i64 u = gtid();
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 j = u - c.u0, n = c.n;
	i64 k = c.sub[SF_USEK], minority = c.sub[SF_MINORITY];
	i64 *score = ARR(i64, D_D1) + c.c0 + j;
	i32 *idxA = ARR(i32, D_D2) + 2 * c.c0 + j;
	i32 *idxB = idxA + n * n;
	i32 *idxC = ARR(i32, D_D3) + 2 * c.c0 + j;
	const i64 *useIdx = ARR(const i64, D_USEIDX) + c.u0;
	const i64 *use = ARR(const i64, D_USESTAKE) + c.u0;
	const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW);
	const i64 *WV = ARR(const i64, D_WV);
	u64 hi = 0;
	for (i64 r = 0; r < k; r++) {
		i64 i = useIdx[r];
		i64 sc = 0;
		for (i32 p = HW[c.c0 + i * n + j]; p >= 0; p = nextw[p]) {
			sc = WV[p];
		}
		score[r * n] = sc;
		idxA[r * n] = (i32)r;
		hi += (u64)use[r];
	}
	ARR(i64, D_CONS)[u] = dev_weighted_median(score, use, idxA, idxB, idxC, n, k, minority, 0, (i64)hi);
}

// yuma_wnorm (kWnorm): thread per weight entry.
extern "C" __global__ void yuma_wnorm(const i64 *D)
{
	i64 e = gtid();
	if (e >= D[D_NW] || (ARR(const i32, D_WFLAG)[e] & WF_ALIVE) == 0) {
		return;
	}
	i64 sum = ARR(const i64, D_ROWT)[row_of_entry(D, e)];
	if (sum > 0) {
		i64 *WV = ARR(i64, D_WV);
		WV[e] = fx_safe_div(WV[e], sum);
	}
}

// yuma_clip (kClip): block per row; the validator trust (a wrapping sum) is
// a block reduction, so no atomics.
extern "C" __global__ void yuma_clip(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	if (wlo == whi) {
		if (t == 0) {
			ARR(i64, D_VTRUST)[u] = 0;
		}
		return;
	}
	i64 u0 = ARR(const i64, D_SUB)[ARR(const i64, D_USUB)[u] * SUB_FIELDS + SF_UID];
	const u32 *went = ARR(const u32, D_WENT);
	const i64 *cons = ARR(const i64, D_CONS) + u0, *WV = ARR(const i64, D_WV);
	i32 *wflag = ARR(i32, D_WFLAG);
	i64 *CV = ARR(i64, D_CV);
	u64 part = 0;
	for (i64 e = wlo + t; e < whi; e += bd) {
		i32 f = wflag[e] & ~WF_CLIP;
		i64 cv = 0;
		if (f & WF_ALIVE) {
			i64 th = cons[WCOL(e)], v = WV[e];
			if (!(th < v && th <= 0)) {
				f |= WF_CLIP;
				cv = fx_min(th, v);
				part += (u64)cv;
			}
		}
		CV[e] = cv;
		wflag[e] = f;
	}
	u64 sum = row_sum(part);
	if (t == 0) {
		ARR(i64, D_VTRUST)[u] = (i64)sum;
	}
}

// ROW_EMPTY(PTR, i): row i of the subnet has no stored entries (PTR is the
// WPtr or BPtr array): its cells' chains are empty (yuma_clear), and the
// column kernels skip it without loading its heads. Rows are empty for most
// uids (miners), so this cuts the head traffic to the validator rows; the
// pointer words are the same for all threads of a subnet (cached).
#define ROW_EMPTY(PTR, i) (PTR[c.u0 + (i)] == PTR[c.u0 + (i) + 1])

// CHAIN_COLUMN(HEAD, NEXT, PTR, body): for i = 0..n-1 and, inside, the chain
// of cell (i, j) in stored order, run body with p set (the row is i0 + t_):
// the CPU's row-major order restricted to column j. The heads are loaded 8
// rows at a time so that the loads overlap (rows without entries in PTR are
// skipped: their chains are empty); the order of the bodies is unchanged.
#define CHAIN_COLUMN(HEAD, NEXT, PTR, BODY)                                    \
	for (i64 i0 = 0; i0 < n; i0 += 8) {                                    \
		i32 h_[8];                                                         \
		_Pragma("unroll") for (int t_ = 0; t_ < 8; t_++)                   \
		{                                                                  \
			h_[t_] = (i0 + t_ < n && !ROW_EMPTY(PTR, i0 + t_))             \
				     ? HEAD[c.c0 + (i0 + t_) * n + j]                      \
				     : -1;                                                 \
		}                                                                  \
		_Pragma("unroll") for (int t_ = 0; t_ < 8; t_++)                   \
		{                                                                  \
			for (i32 p = h_[t_]; p >= 0; p = NEXT[p]) {                    \
				BODY                                                       \
			}                                                              \
		}                                                                  \
	}

// yuma_cols_a (kColsA): thread per column.
extern "C" __global__ void yuma_cols_a(const i64 *D)
{
	i64 u = gtid();
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 j = u - c.u0, n = c.n;
	const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW), *wflag = ARR(const i32, D_WFLAG);
	const i64 *CV = ARR(const i64, D_CV), *act = ARR(const i64, D_ACTIVE);
	const i64 *wptr = ARR(const i64, D_WPTR), *bptr = ARR(const i64, D_BPTR);
	i64 acc = 0;
	CHAIN_COLUMN(HW, nextw, wptr, if (wflag[p] & WF_CLIP) { acc = fx_sat_add(acc, fx_sat_mul(act[c.u0 + i0 + t_], CV[p])); })
	ARR(i64, D_INC)[u] = acc;
	if (c.sub[SF_YUMA3] == 0) {
		const i32 *HB = ARR(const i32, D_HB), *nextb = ARR(const i32, D_NEXTB);
		const i64 *BV = ARR(const i64, D_BV);
		i64 cs = 0;
		CHAIN_COLUMN(HB, nextb, bptr, cs = fx_sat_add(cs, BV[p]);)
		ARR(i64, D_COLB)[u] = cs;
	}
}

#define BLOCK 256

// Block-wide wrapping sum (exact modulo 2^64 in any order).
__device__ u64 block_sum(u64 v)
{
	__shared__ u64 sh[BLOCK];
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int w = BLOCK / 2; w > 0; w >>= 1) {
		if ((int)threadIdx.x < w) {
			sh[threadIdx.x] += sh[threadIdx.x + w];
		}
		__syncthreads();
	}
	u64 r = sh[0];
	__syncthreads();
	return r;
}

// yuma_subnet1 (kSubnet1): block (BLOCK threads) per subnet.
extern "C" __global__ void yuma_subnet1(const i64 *D)
{
	i64 s = blockIdx.x;
	const i64 *sub = ARR(const i64, D_SUB) + s * SUB_FIELDS;
	i64 n = sub[SF_N], u0 = sub[SF_UID];
	i64 *inc = ARR(i64, D_INC) + u0;
	const i64 *cons = ARR(const i64, D_CONS) + u0;
	u64 part = 0;
	int any = 0;
	for (i64 i = threadIdx.x; i < n; i += BLOCK) {
		part += (u64)inc[i];
		any |= cons[i] != 0;
	}
	u64 sum = block_sum(part);
	any = __syncthreads_or(any);
	if (sum != 0) {
		for (i64 i = threadIdx.x; i < n; i += BLOCK) {
			inc[i] = fx_safe_div(inc[i], (i64)sum);
		}
	}
	if (threadIdx.x == 0) {
		ARR(i64, D_SSTATE)[s * STATE_FIELDS + SS_LIQ] = (sub[SF_LIQIN] != 0 && any) ? 1 : 0;
	}
}

// yuma_wfb (kWfb): block per row; every column and entry is independent.
extern "C" __global__ void yuma_wfb(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 i = u - c.u0, n = c.n, row = c.c0 + i * n;
	i64 mode = c.sub[SF_MODE];
	bool y3 = c.sub[SF_YUMA3] != 0;
	i64 act = ARR(const i64, D_ACTIVE)[u];
	if (t == 0) {
		ARR(i64, D_ROWT)[u] = 0; // accumulated by yuma_divs_e
		ARR(i64, D_ROWCNT)[u] = 0;
	}
	const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW), *wflag = ARR(const i32, D_WFLAG);
	const i64 *WV = ARR(const i64, D_WV), *CV = ARR(const i64, D_CV);
	if (mode == 2) {
		i64 beta = c.sub[SF_BETA];
		i64 *D1 = ARR(i64, D_D1);
		for (i64 j = t; j < n; j += bd) {
			i64 a = 0, cl = 0;
			for (i32 p = HW[row + j]; p >= 0; p = nextw[p]) {
				a = WV[p];
				if (wflag[p] & WF_CLIP) {
					cl = CV[p];
				}
			}
			i64 v = fx_sat_add(a, fx_sat_mul(beta, fx_sat_sub(cl, a)));
			if (v < 0) {
				v = 0;
			}
			if (!y3) {
				v = fx_sat_mul(v, act);
			}
			D1[row + j] = v;
		}
	}
	if (y3) {
		return;
	}
	i64 *XV = ARR(i64, D_XV);
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	if (mode != 2) {
		for (i64 e = wlo + t; e < whi; e += bd) {
			if (wfb_alive(D, mode, e)) {
				XV[e] = fx_sat_mul(wfb_val(D, mode, e), act);
			}
		}
	}
	const u32 *bent = ARR(const u32, D_BENT);
	const i32 *bflag = ARR(const i32, D_BFLAG);
	const i64 *colB = ARR(const i64, D_COLB);
	i64 *BV = ARR(i64, D_BV);
	i64 blo = ARR(const i64, D_BPTR)[u], bhi = ARR(const i64, D_BPTR)[u + 1];
	for (i64 e = blo + t; e < bhi; e += bd) {
		if (bflag[e] != 0) {
			i64 cs = colB[c.u0 + (i64)(bent[e] & 0xffff)];
			if (cs != 0) {
				BV[e] = fx_safe_div(BV[e], cs);
			}
		}
	}
}

// yuma_cols_b (kColsB): thread per column, original Yuma only.
extern "C" __global__ void yuma_cols_b(const i64 *D)
{
	i64 u = gtid();
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	if (c.sub[SF_YUMA3] != 0) {
		return;
	}
	i64 j = u - c.u0, n = c.n, mode = c.sub[SF_MODE];
	const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW);
	const i64 *D1 = ARR(const i64, D_D1), *XV = ARR(const i64, D_XV);
	const i64 *wptr = ARR(const i64, D_WPTR);
	i64 acc = 0;
	for (i64 i = 0; i < n; i++) {
		if (ROW_EMPTY(wptr, i)) {
			continue; // no chains; in mode 2 its D1 row is 0 (yuma_wfb: a = c = 0)
		}
		if (mode == 2) {
			acc = fx_sat_add(acc, D1[c.c0 + i * n + j]);
			continue;
		}
		for (i32 p = HW[c.c0 + i * n + j]; p >= 0; p = nextw[p]) {
			if (wfb_alive(D, mode, p)) {
				acc = fx_sat_add(acc, XV[p]);
			}
		}
	}
	ARR(i64, D_COLA)[u] = acc;
}

__device__ __forceinline__ bool ema_dense(const i64 *D, const Ctx &c)
{
	return !(c.sub[SF_YUMA3] != 0 && ARR(const i64, D_SSTATE)[c.s * STATE_FIELDS + SS_LIQ] != 0 && c.sub[SF_MODE] != 2);
}

// liquid value of one wfb entry (liquidRow's val).
__device__ __forceinline__ i64 liquid_val(const i64 *D, const Ctx &c, i64 row, i64 j, i64 w, i64 wl, i64 bl)
{
	i64 a = fx_alpha_sigmoid(ARR(const i64, D_CONS)[c.u0 + j], wl, bl, c.sub[SF_SCALE], c.sub[SF_LOW], c.sub[SF_HIGH]);
	const i32 *HB = ARR(const i32, D_HB), *nextb = ARR(const i32, D_NEXTB);
	const i64 *BV = ARR(const i64, D_BV);
	bool has = false;
	i64 old = 0, decayed = 0;
	for (i32 p = HB[row + j]; p >= 0; p = nextb[p]) {
		has = true;
		old = BV[p];
	}
	if (has) {
		decayed = fx_sat_mul(fx_sat_sub(FX_ONE, a), old);
	}
	i64 inc = fx_max(fx_sat_mul(a, w), 0);
	return fx_min(fx_sat_add(decayed, inc), FX_ONE);
}

// walk_first (walkFirst): first p in [lo, hi) with pm[p] >= j, else hi.
__device__ __forceinline__ i64 walk_first(const i32 *pm, i64 lo, i64 hi, i64 j)
{
	while (lo < hi) {
		i64 mid = (lo + hi) / 2;
		if ((i64)pm[mid] >= j) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	return lo;
}

// prefix_max_row (liquidRow's prefix maxima): pm[e] = the largest column of
// the entries in [lo, e] whose flag has a bit of mask, else -1; a block scan
// per step of blockDim.x entries, carried across steps. Ends with a barrier.
__device__ void prefix_max_row(i32 *pm, const u32 *ent, const i32 *flag, i32 mask, i64 lo, i64 hi)
{
	unsigned t = threadIdx.x, bd = blockDim.x;
	i64 carry = -1;
	for (i64 base = lo; base < hi; base += bd) {
		i64 e = base + t;
		i64 v = (e < hi && (flag[e] & mask) != 0) ? (i64)(ent[e] & 0xffff) : -1;
		i64 tot;
		v = fx_max(row_scan(v, 1, &tot), carry);
		if (e < hi) {
			pm[e] = (i32)v;
		}
		carry = fx_max(carry, tot);
	}
	__syncthreads();
}

// yuma_ema (kEma + liquidRow): block per row. The scalar-rate EMA is
// independent per column (thread j walks the chains of cell (i, j)); with
// liquid alpha the prefix maxima are block scans, and for a dense wfb
// (mode 2) the bond merge walk at column j is the binary search walk_first
// over the bonds' prefix maxima (PMB, free in that mode), the entry the
// sequential walk of liquidRow stands on.
extern "C" __global__ void yuma_ema(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 i = u - c.u0, n = c.n, row = c.c0 + i * n;
	i64 mode = c.sub[SF_MODE];
	bool y3 = c.sub[SF_YUMA3] != 0;
	const u32 *went = ARR(const u32, D_WENT), *bent = ARR(const u32, D_BENT);
	i64 *D1 = ARR(i64, D_D1), *D3 = ARR(i64, D_D3);
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	if (y3 && ARR(const i64, D_SSTATE)[c.s * STATE_FIELDS + SS_LIQ] != 0) {
		const i32 *bflag = ARR(const i32, D_BFLAG);
		i64 blo = ARR(const i64, D_BPTR)[u], bhi = ARR(const i64, D_BPTR)[u + 1];
		i32 *pmb = ARR(i32, D_PMB);
		prefix_max_row(pmb, bent, bflag, 1, blo, bhi);
		if (mode != 2) {
			prefix_max_row(ARR(i32, D_PMW), went, ARR(const i32, D_WFLAG), mode == 0 ? WF_ALIVE : WF_CLIP, wlo, whi);
			return; // yuma_liquid computes the entries, one thread each
		}
		const i64 *BV = ARR(const i64, D_BV);
		for (i64 j = t; j < n; j += bd) {
			i64 p = walk_first(pmb, blo, bhi, j);
			i64 bl = (p < bhi && (i64)(bent[p] & 0xffff) == j) ? BV[p] : 0;
			i64 v = 0, w = D1[row + j];
			if (w > 0) {
				v = fx_max(liquid_val(D, c, row, j, w, w, bl), 0);
			}
			D3[row + j] = v;
		}
		return;
	}
	i64 alpha = c.sub[SF_EMAA];
	i64 oneMinus = fx_sat_sub(FX_ONE, alpha);
	const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW);
	const i32 *HB = ARR(const i32, D_HB), *nextb = ARR(const i32, D_NEXTB);
	const i64 *BV = ARR(const i64, D_BV), *XV = ARR(const i64, D_XV), *colA = ARR(const i64, D_COLA);
	for (i64 j = t; j < n; j += bd) {
		i64 acc = 0;
		if (mode == 2) {
			i64 x = D1[row + j];
			if (!y3) {
				i64 cs = colA[c.u0 + j];
				if (cs != 0) {
					x = fx_safe_div(x, cs);
				}
			}
			acc = fx_sat_add(acc, fx_sat_mul(alpha, x));
		} else {
			for (i32 p = HW[row + j]; p >= 0; p = nextw[p]) {
				if (!wfb_alive(D, mode, p)) {
					continue;
				}
				i64 x = wfb_val(D, mode, p);
				if (!y3) {
					x = XV[p];
					i64 cs = colA[c.u0 + j];
					if (cs != 0) {
						x = fx_safe_div(x, cs);
					}
				}
				acc = fx_sat_add(acc, fx_sat_mul(alpha, x));
			}
		}
		for (i32 p = HB[row + j]; p >= 0; p = nextb[p]) {
			acc = fx_sat_add(acc, fx_sat_mul(oneMinus, BV[p]));
		}
		D3[row + j] = acc < 0 ? 0 : acc;
	}
}

// yuma_liquid (kLiquid): thread per weight entry.
extern "C" __global__ void yuma_liquid(const i64 *D)
{
	i64 e = gtid();
	if (e >= D[D_NW]) {
		return;
	}
	i64 u = row_of_entry(D, e);
	Ctx c = sub_of(D, u);
	i64 mode = c.sub[SF_MODE];
	if (c.sub[SF_YUMA3] == 0 || ARR(const i64, D_SSTATE)[c.s * STATE_FIELDS + SS_LIQ] == 0 || mode == 2) {
		return;
	}
	i32 *wflag = ARR(i32, D_WFLAG);
	wflag[e] &= ~WF_EMA;
	if (!wfb_alive(D, mode, e)) {
		return;
	}
	const u32 *went = ARR(const u32, D_WENT), *bent = ARR(const u32, D_BENT);
	i64 row = c.c0 + (u - c.u0) * c.n;
	i64 j = WCOL(e), wl = 0, bl = 0;
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	i64 p = walk_first(ARR(const i32, D_PMW), wlo, whi, j);
	if (p < whi && WCOL(p) == j) {
		wl = wfb_val(D, mode, p);
	}
	i64 blo = ARR(const i64, D_BPTR)[u], bhi = ARR(const i64, D_BPTR)[u + 1];
	p = walk_first(ARR(const i32, D_PMB), blo, bhi, j);
	if (p < bhi && (i64)(bent[p] & 0xffff) == j) {
		bl = ARR(const i64, D_BV)[p];
	}
	i64 v = liquid_val(D, c, row, j, wfb_val(D, mode, e), wl, bl);
	ARR(i64, D_XV)[e] = v;
	if (v > 0) {
		wflag[e] |= WF_EMA;
	}
}

// yuma_cols_c (kColsC): thread per column.
extern "C" __global__ void yuma_cols_c(const i64 *D)
{
	i64 u = gtid();
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 j = u - c.u0, n = c.n;
	const i64 *D3 = ARR(const i64, D_D3);
	const i64 *wptr = ARR(const i64, D_WPTR), *bptr = ARR(const i64, D_BPTR);
	i64 acc = 0;
	// A row without weights and bonds has a zero dense EMA row (yuma_ema:
	// no new terms, no old terms, a zero D1 row in mode 2): it adds 0 to the
	// saturating sum and is not > 0 for the maximum, so it is skipped.
#define DENSE_ROW(i) (!ROW_EMPTY(wptr, i) || !ROW_EMPTY(bptr, i))
	if (ema_dense(D, c)) {
#pragma unroll 8
		for (i64 i = 0; i < n; i++) {
			if (DENSE_ROW(i)) {
				acc = fx_sat_add(acc, D3[c.c0 + i * n + j]);
			}
		}
	} else {
		const i32 *HW = ARR(const i32, D_HW), *nextw = ARR(const i32, D_NEXTW), *wflag = ARR(const i32, D_WFLAG);
		const i64 *XV = ARR(const i64, D_XV);
		CHAIN_COLUMN(HW, nextw, wptr, if (wflag[p] & WF_EMA) { acc = fx_sat_add(acc, XV[p]); })
	}
	ARR(i64, D_COLA)[u] = acc;
	if (c.sub[SF_YUMA3] == 0) {
		i64 m = 0;
#pragma unroll 8
		for (i64 i = 0; i < n; i++) {
			i64 x = DENSE_ROW(i) ? D3[c.c0 + i * n + j] : 0;
			if (x > 0) {
				if (acc != 0) {
					x = fx_safe_div(x, acc);
				}
				m = fx_max(m, x);
			}
		}
		ARR(i64, D_COLM)[u] = m;
	}
#undef DENSE_ROW
}

// yuma_divs_e (kDivsE): block per row, for a Yuma 3 subnet whose EMA has
// the stored structure: the row's terms (a wrapping sum) and entry count are
// block reductions, so no atomics.
extern "C" __global__ void yuma_divs_e(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	i64 wlo = ARR(const i64, D_WPTR)[u], whi = ARR(const i64, D_WPTR)[u + 1];
	if (wlo == whi) {
		return; // RowT and RowCnt stay 0 (yuma_wfb)
	}
	Ctx c = sub_of(D, u);
	if (ema_dense(D, c)) {
		return;
	}
	const u32 *went = ARR(const u32, D_WENT);
	const i32 *wflag = ARR(const i32, D_WFLAG);
	const i64 *XV = ARR(const i64, D_XV), *colA = ARR(const i64, D_COLA) + c.u0, *inc = ARR(const i64, D_INC) + c.u0;
	u64 part = 0, cpart = 0;
	for (i64 e = wlo + t; e < whi; e += bd) {
		if ((wflag[e] & WF_EMA) == 0) {
			continue;
		}
		i64 j = WCOL(e), x = XV[e];
		i64 cs = colA[j];
		if (cs != 0) {
			x = fx_safe_div(x, cs);
		}
		part += (u64)fx_sat_mul(x, inc[j]);
		cpart++;
	}
	u64 sum = row_sum(part);
	u64 cnt = row_sum(cpart);
	if (t == 0) {
		ARR(i64, D_ROWT)[u] = (i64)sum;
		ARR(i64, D_ROWCNT)[u] = (i64)cnt;
	}
}

// yuma_divs (kDivs): block per row. For a dense EMA the threads stride over
// the columns: the Yuma 3 terms and the entry count are wrapping sums (block
// reductions); the original-Yuma terms are staged per step in shared memory
// and thread 0 adds them saturating in column order.
extern "C" __global__ void yuma_divs(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U]) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 n = c.n, row = c.c0 + (u - c.u0) * n;
	bool y3 = c.sub[SF_YUMA3] != 0;
	const i64 *colA = ARR(const i64, D_COLA), *inc = ARR(const i64, D_INC);
	u64 tsum = 0;
	i64 acc = 0, cnt = 0;
	if (ema_dense(D, c)) {
		__shared__ i64 term[ROWBLOCK];
		const i64 *D3 = ARR(const i64, D_D3);
		u64 tpart = 0, cpart = 0;
		for (i64 base = 0; base < n; base += bd) {
			i64 j = base + t, tm = 0; // a 0 term leaves the saturating sum unchanged
			if (j < n) {
				i64 x = D3[row + j];
				if (x > 0) {
					i64 cs = colA[c.u0 + j];
					if (cs != 0) {
						x = fx_safe_div(x, cs);
					}
					if (y3) {
						tpart += (u64)fx_sat_mul(x, inc[c.u0 + j]);
					} else {
						tm = fx_sat_mul(inc[c.u0 + j], x);
					}
					cpart++;
				}
			}
			if (!y3) {
				term[t] = tm;
				__syncthreads();
				if (t == 0) {
					i64 m = n - base < (i64)bd ? n - base : (i64)bd;
					for (i64 k = 0; k < m; k++) {
						acc = fx_sat_add(acc, term[k]);
					}
				}
				__syncthreads();
			}
		}
		tsum = row_sum(tpart);
		cnt = (i64)row_sum(cpart);
	} else {
		tsum = (u64)ARR(const i64, D_ROWT)[u];
		cnt = ARR(const i64, D_ROWCNT)[u];
	}
	if (t != 0) {
		return;
	}
	if (y3) {
		i64 d;
		if (!fx_checked_mul((i64)tsum, ARR(const i64, D_ACTIVE)[u], &d)) {
			d = 0;
		}
		acc = d;
	}
	ARR(i64, D_DIVS)[u] = acc;
	if ((ARR(const i64, D_UFLAG)[u] & UF_NEWPERMIT) == 0) {
		cnt = 0;
	}
	ARR(i64, D_ROWCNT)[u] = cnt;
}

// yuma_subnet2 (kSubnet2): block (BLOCK threads) per subnet.
extern "C" __global__ void yuma_subnet2(const i64 *D)
{
	i64 s = blockIdx.x;
	const i64 *sub = ARR(const i64, D_SUB) + s * SUB_FIELDS;
	i64 n = sub[SF_N], u0 = sub[SF_UID];
	i64 *divs = ARR(i64, D_DIVS) + u0;
	const i64 *inc = ARR(const i64, D_INC) + u0;
	u64 part = 0;
	for (i64 i = threadIdx.x; i < n; i += BLOCK) {
		part += (u64)divs[i];
	}
	u64 sum = block_sum(part);
	if (sum != 0) {
		for (i64 i = threadIdx.x; i < n; i += BLOCK) {
			divs[i] = fx_safe_div(divs[i], (i64)sum);
		}
	}
	__syncthreads();
	part = 0;
	for (i64 i = threadIdx.x; i < n; i += BLOCK) {
		part += (u64)fx_sat_add(inc[i], divs[i]);
	}
	u64 esum = block_sum(part);
	u64 rao = (u64)sub[SF_RAO];
	bool actZero = sub[SF_ACTZERO] != 0;
	const i64 *act = ARR(const i64, D_ACTIVE) + u0, *stake = ARR(const i64, D_STAKE) + u0;
	u64 *sem = ARR(u64, D_SEM) + u0, *vem = ARR(u64, D_VEM) + u0, *em = ARR(u64, D_EM) + u0;
	for (i64 i = threadIdx.x; i < n; i += BLOCK) {
		i64 nse = inc[i], nve = divs[i];
		i64 nce = fx_sat_add(nse, nve);
		if (esum != 0) {
			nse = fx_safe_div(nse, (i64)esum);
			nve = fx_safe_div(nve, (i64)esum);
			nce = fx_safe_div(nce, (i64)esum);
		} else {
			i64 src = actZero ? stake[i] : act[i];
			nve = src;
			nce = src;
		}
		sem[i] = fx_rao(nse, rao);
		vem[i] = fx_rao(nve, rao);
		em[i] = fx_rao(nce, rao);
	}
	if (threadIdx.x == 0) {
		const i64 *cnt = ARR(const i64, D_ROWCNT) + u0;
		i64 *off = ARR(i64, D_ROWOFF) + u0;
		i64 o = 0;
		for (i64 i = 0; i < n; i++) {
			off[i] = o;
			o += cnt[i];
		}
		ARR(i64, D_SSTATE)[s * STATE_FIELDS + SS_BONDN] = o;
	}
}

// yuma_bond_base (kBondBase): one thread.
extern "C" __global__ void yuma_bond_base(const i64 *D)
{
	if (blockIdx.x != 0 || threadIdx.x != 0) {
		return;
	}
	i64 *st = ARR(i64, D_SSTATE);
	i64 base = 0;
	for (i64 s = 0; s < D[D_S]; s++) {
		st[s * STATE_FIELDS + SS_BONDBASE] = base;
		base += st[s * STATE_FIELDS + SS_BONDN];
	}
	ARR(i64, D_TOTAL)[0] = base;
}

// yuma_bond_write (kBondWrite): block per row. The row's entries are
// compacted in order: per step of blockDim.x columns (dense EMA) or entries
// (structured EMA), an exclusive block scan of the kept flags gives each
// kept entry its position.
extern "C" __global__ void yuma_bond_write(const i64 *D)
{
	i64 u = blockIdx.x;
	unsigned t = threadIdx.x, bd = blockDim.x;
	if (u >= D[D_U] || ARR(const i64, D_ROWCNT)[u] == 0) {
		return;
	}
	Ctx c = sub_of(D, u);
	i64 n = c.n, row = c.c0 + (u - c.u0) * n;
	bool y3 = c.sub[SF_YUMA3] != 0;
	i64 pos = ARR(const i64, D_SSTATE)[c.s * STATE_FIELDS + SS_BONDBASE] + ARR(const i64, D_ROWOFF)[u];
	const i64 *colA = ARR(const i64, D_COLA), *colM = ARR(const i64, D_COLM);
	u32 *out = ARR(u32, D_BONDOUT);
	bool dense = ema_dense(D, c);
	const i64 *D3 = ARR(const i64, D_D3);
	const u32 *went = ARR(const u32, D_WENT);
	const i32 *wflag = ARR(const i32, D_WFLAG);
	const i64 *XV = ARR(const i64, D_XV);
	i64 lo = 0, hi = n;
	if (!dense) {
		lo = ARR(const i64, D_WPTR)[u];
		hi = ARR(const i64, D_WPTR)[u + 1];
	}
	for (i64 base = lo; base < hi; base += bd) {
		i64 e = base + t, j = 0, x = 0;
		bool keep = false;
		if (e < hi) {
			if (dense) {
				j = e;
				x = D3[row + j];
				keep = x > 0;
			} else {
				j = WCOL(e);
				x = XV[e];
				keep = (wflag[e] & WF_EMA) != 0;
			}
		}
		i64 tot;
		i64 at = pos + row_scan(keep ? 1 : 0, 0, &tot) - 1;
		if (keep) {
			if (!y3) {
				i64 cs = colA[c.u0 + j];
				if (cs != 0) {
					x = fx_safe_div(x, cs);
				}
				i64 m = colM[c.u0 + j];
				if (m != 0) {
					x = fx_safe_div(x, m);
				}
			}
			out[at] = (u32)j | fx_prop_u16(x) << 16;
		}
		pos += tot;
	}
}
