#include "textflag.h"

// AVX2 inner products. The float32 operation order is the one quant.go
// defines (and its Go kernels follow): per block, exact int32 lanes k =
// elements 4k..4k+3, then acc = acc + float32(lane)*d with separate
// VMULPS/VADDPS (no FMA); rows end with hsum8 =
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// HSUM8 reduces the eight lanes of Y7 into the low lane of X7 (uses X6).
#define HSUM8 \
	VEXTRACTF128 $1, Y7, X6; \
	VADDPS       X6, X7, X7; \
	VMOVHLPS     X7, X7, X6; \
	VADDPS       X6, X7, X7; \
	VMOVSHDUP    X7, X6; \
	VADDSS       X6, X7, X7

// HSUMTO reduces the eight lanes of acc into the low lane (tmp clobbered).
#define HSUMTO(acc, accx, tmpx) \
	VEXTRACTF128 $1, acc, tmpx; \
	VADDPS       tmpx, accx, accx; \
	VMOVHLPS     accx, accx, tmpx; \
	VADDPS       tmpx, accx, accx; \
	VMOVSHDUP    accx, tmpx; \
	VADDSS       tmpx, accx, accx

// ROWQ8 adds one row's block (weights in Y0, f16 scale at scale) into acc:
// Y1 the activation block, Y6 its scale broadcast, Y15 int16 ones.
// Clobbers Y2-Y5.
#define ROWQ8(scale, acc) \
	VPABSB       Y0, Y2; \
	VPSIGNB      Y0, Y1, Y3; \
	VPMADDUBSW   Y3, Y2, Y4; \
	VPMADDWD     Y15, Y4, Y4; \
	VCVTDQ2PS    Y4, Y4; \
	VPBROADCASTW scale, X5; \
	VCVTPH2PS    X5, Y5; \
	VMULPS       Y6, Y5, Y5; \
	VMULPS       Y5, Y4, Y4; \
	VADDPS       Y4, acc, acc

// ROWQ8V is ROWQ8 with AVX512-VNNI: VPDPBUSD gives the same int32 lanes as
// VPMADDUBSW then VPMADDWD, in one instruction.
#define ROWQ8V(scale, acc) \
	VPABSB       Y0, Y2; \
	VPSIGNB      Y0, Y1, Y3; \
	VPXOR        Y4, Y4, Y4; \
	VPDPBUSD     Y3, Y2, Y4; \
	VCVTDQ2PS    Y4, Y4; \
	VPBROADCASTW scale, X5; \
	VCVTPH2PS    X5, Y5; \
	VMULPS       Y6, Y5, Y5; \
	VMULPS       Y5, Y4, Y4; \
	VADDPS       Y4, acc, acc

// LOADQ4 unpacks the Q4_0 block at blk into 32 int8 in Y0 (elements 0..15
// the low nibbles, 16..31 the high ones, minus 8). Y14 0x0F bytes, Y13 8s.
#define LOADQ4(blk) \
	VMOVDQU     blk, X0; \
	VPSRLW      $4, X0, X2; \
	VINSERTI128 $1, X2, Y0, Y0; \
	VPAND       Y14, Y0, Y0; \
	VPSUBB      Y13, Y0, Y0

// Both kernels work one row at a time, streaming it in order (the memory
// system serves that at about 29 GB/s on this VM, against 7-13 GB/s for
// four rows interleaved), with two accumulators, Y7 for the even blocks
// and Y8 for the odd ones, so that two VADDPS chains overlap. Registers: DI
// out, SI the row, R9 the row stride, BX/DX activations and scales, CX rows
// left, R8 blocks per row; per row R10 the block, R12/R13 the activation
// block and scale, AX block pairs left.

// func dotQ8RowsAVX2(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)
TEXT ·dotQ8RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ xq+16(FP), BX
	MOVQ xd+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ nb+40(FP), R8
	MOVQ rowBytes+48(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q8row:
	MOVQ SI, R10
	MOVQ BX, R12
	MOVQ DX, R13
	MOVQ R8, AX
	SHRQ $1, AX
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	JZ   q8tail

q8pair:
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VMOVDQU      2(R10), Y0
	ROWQ8((R10), Y7)
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VMOVDQU      36(R10), Y0
	ROWQ8(34(R10), Y8)
	ADDQ $68, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q8pair

q8tail:
	TESTQ $1, R8
	JZ    q8sum
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VMOVDQU      2(R10), Y0
	ROWQ8((R10), Y7)

q8sum:
	VADDPS Y8, Y7, Y7
	HSUMTO(Y7, X7, X6)
	VMOVSS X7, (DI)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q8row
	VZEROUPPER
	RET

// func dotQ8RowsVNNI(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)
TEXT ·dotQ8RowsVNNI(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ xq+16(FP), BX
	MOVQ xd+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ nb+40(FP), R8
	MOVQ rowBytes+48(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q8vrow:
	MOVQ SI, R10
	MOVQ BX, R12
	MOVQ DX, R13
	MOVQ R8, AX
	SHRQ $1, AX
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	JZ   q8vtail

q8vpair:
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VMOVDQU      2(R10), Y0
	ROWQ8V((R10), Y7)
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VMOVDQU      36(R10), Y0
	ROWQ8V(34(R10), Y8)
	ADDQ $68, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q8vpair

q8vtail:
	TESTQ $1, R8
	JZ    q8vsum
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VMOVDQU      2(R10), Y0
	ROWQ8V((R10), Y7)

q8vsum:
	VADDPS Y8, Y7, Y7
	HSUMTO(Y7, X7, X6)
	VMOVSS X7, (DI)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q8vrow
	VZEROUPPER
	RET

// func dotQ4RowsAVX2(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)
TEXT ·dotQ4RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ xq+16(FP), BX
	MOVQ xd+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ nb+40(FP), R8
	MOVQ rowBytes+48(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x08080808, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13

q4row:
	MOVQ SI, R10
	MOVQ BX, R12
	MOVQ DX, R13
	MOVQ R8, AX
	SHRQ $1, AX
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	JZ   q4tail

q4pair:
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	LOADQ4(2(R10))
	ROWQ8((R10), Y7)
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	LOADQ4(20(R10))
	ROWQ8(18(R10), Y8)
	ADDQ $36, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q4pair

q4tail:
	TESTQ $1, R8
	JZ    q4sum
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	LOADQ4(2(R10))
	ROWQ8((R10), Y7)

q4sum:
	VADDPS Y8, Y7, Y7
	HSUMTO(Y7, X7, X6)
	VMOVSS X7, (DI)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q4row
	VZEROUPPER
	RET

// func dotQ4RowsVNNI(out *float32, w *byte, xq *int8, xd *float32, rows, nb, rowBytes int)
TEXT ·dotQ4RowsVNNI(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ xq+16(FP), BX
	MOVQ xd+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ nb+40(FP), R8
	MOVQ rowBytes+48(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x08080808, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13

q4vrow:
	MOVQ SI, R10
	MOVQ BX, R12
	MOVQ DX, R13
	MOVQ R8, AX
	SHRQ $1, AX
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	JZ   q4vtail

q4vpair:
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	LOADQ4(2(R10))
	ROWQ8V((R10), Y7)
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	LOADQ4(20(R10))
	ROWQ8V(18(R10), Y8)
	ADDQ $36, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q4vpair

q4vtail:
	TESTQ $1, R8
	JZ    q4vsum
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	LOADQ4(2(R10))
	ROWQ8V((R10), Y7)

q4vsum:
	VADDPS Y8, Y7, Y7
	HSUMTO(Y7, X7, X6)
	VMOVSS X7, (DI)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q4vrow
	VZEROUPPER
	RET

DATA nib0f<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib0f<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib0f<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib0f<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nib0f<>(SB), RODATA|NOPTR, $32

DATA nib08<>+0(SB)/8, $0x0808080808080808
DATA nib08<>+8(SB)/8, $0x0808080808080808
DATA nib08<>+16(SB)/8, $0x0808080808080808
DATA nib08<>+24(SB)/8, $0x0808080808080808
GLOBL nib08<>(SB), RODATA|NOPTR, $32

// func dotQ8Rows4AVX2(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)
//
// Four tokens per weight row: out[t*ostride+i] = the row·token t product of
// the one-token kernel (same accumulators, same order), with each weight
// block loaded, made absolute and its scale converted once for the four.
TEXT ·dotQ8Rows4AVX2(SB), NOSPLIT, $0-80
	MOVQ out+0(FP), DI
	MOVQ ostride+8(FP), R11
	SHLQ $2, R11
	MOVQ w+16(FP), SI
	MOVQ xqStride+32(FP), BX
	LEAQ (BX)(BX*2), R14
	MOVQ xdStride+48(FP), DX
	SHLQ $2, DX
	LEAQ (DX)(DX*2), R8
	MOVQ rows+56(FP), CX
	MOVQ rowBytes+72(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q8trow:
	MOVQ SI, R10
	MOVQ xq+24(FP), R12
	MOVQ xd+40(FP), R13
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	MOVQ nb+64(FP), AX
	SHRQ $1, AX
	JZ   q8ttail

q8tpair:
	VMOVDQU 2(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13
	VMOVDQU 36(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 34(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y8, Y8
	VMOVDQU      32(R12)(BX*1), Y1
	VBROADCASTSS 4(R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y10, Y10
	VMOVDQU      32(R12)(BX*2), Y1
	VBROADCASTSS 4(R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y12, Y12
	VMOVDQU      32(R12)(R14*1), Y1
	VBROADCASTSS 4(R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y14, Y14
	ADDQ $68, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q8tpair

q8ttail:
	MOVQ  nb+64(FP), AX
	TESTQ $1, AX
	JZ    q8tsum
	VMOVDQU 2(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13

q8tsum:
	VADDPS Y8, Y7, Y7
	VADDPS Y10, Y9, Y9
	VADDPS Y12, Y11, Y11
	VADDPS Y14, Y13, Y13
	HSUMTO(Y7, X7, X6)
	HSUMTO(Y9, X9, X6)
	HSUMTO(Y11, X11, X6)
	HSUMTO(Y13, X13, X6)
	LEAQ   (R11)(R11*2), AX
	VMOVSS X7, (DI)
	VMOVSS X9, (DI)(R11*1)
	VMOVSS X11, (DI)(R11*2)
	VMOVSS X13, (DI)(AX*1)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q8trow
	VZEROUPPER
	RET

// func dotQ8Rows4VNNI(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)
//
// The four-token kernel with AVX512-VNNI (EVEX-encoded, 256-bit): VPDPBUSD
// sums the four byte products of each int32 lane at once, the exact
// integers VPMADDUBSW then VPMADDWD give (|w| ≤ 128 and |x| ≤ 127, so the
// AVX2 pair never saturates either), hence the same bits.
TEXT ·dotQ8Rows4VNNI(SB), NOSPLIT, $0-80
	MOVQ out+0(FP), DI
	MOVQ ostride+8(FP), R11
	SHLQ $2, R11
	MOVQ w+16(FP), SI
	MOVQ xqStride+32(FP), BX
	LEAQ (BX)(BX*2), R14
	MOVQ xdStride+48(FP), DX
	SHLQ $2, DX
	LEAQ (DX)(DX*2), R8
	MOVQ rows+56(FP), CX
	MOVQ rowBytes+72(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q8tvrow:
	MOVQ SI, R10
	MOVQ xq+24(FP), R12
	MOVQ xd+40(FP), R13
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	MOVQ nb+64(FP), AX
	SHRQ $1, AX
	JZ   q8tvtail

q8tvpair:
	VMOVDQU 2(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13
	VMOVDQU 36(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 34(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y8, Y8
	VMOVDQU      32(R12)(BX*1), Y1
	VBROADCASTSS 4(R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y10, Y10
	VMOVDQU      32(R12)(BX*2), Y1
	VBROADCASTSS 4(R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y12, Y12
	VMOVDQU      32(R12)(R14*1), Y1
	VBROADCASTSS 4(R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y14, Y14
	ADDQ $68, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q8tvpair

q8tvtail:
	MOVQ  nb+64(FP), AX
	TESTQ $1, AX
	JZ    q8tvsum
	VMOVDQU 2(R10), Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13

q8tvsum:
	VADDPS Y8, Y7, Y7
	VADDPS Y10, Y9, Y9
	VADDPS Y12, Y11, Y11
	VADDPS Y14, Y13, Y13
	HSUMTO(Y7, X7, X6)
	HSUMTO(Y9, X9, X6)
	HSUMTO(Y11, X11, X6)
	HSUMTO(Y13, X13, X6)
	LEAQ   (R11)(R11*2), AX
	VMOVSS X7, (DI)
	VMOVSS X9, (DI)(R11*1)
	VMOVSS X11, (DI)(R11*2)
	VMOVSS X13, (DI)(AX*1)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q8tvrow
	VZEROUPPER
	RET

// func dotQ4Rows4AVX2(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)
//
// Four tokens per weight row: out[t*ostride+i] = the row·token t product of
// the one-token kernel (same accumulators, same order), with each weight
// block loaded, made absolute and its scale converted once for the four.
TEXT ·dotQ4Rows4AVX2(SB), NOSPLIT, $0-80
	MOVQ out+0(FP), DI
	MOVQ ostride+8(FP), R11
	SHLQ $2, R11
	MOVQ w+16(FP), SI
	MOVQ xqStride+32(FP), BX
	LEAQ (BX)(BX*2), R14
	MOVQ xdStride+48(FP), DX
	SHLQ $2, DX
	LEAQ (DX)(DX*2), R8
	MOVQ rows+56(FP), CX
	MOVQ rowBytes+72(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q4trow:
	MOVQ SI, R10
	MOVQ xq+24(FP), R12
	MOVQ xd+40(FP), R13
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	MOVQ nb+64(FP), AX
	SHRQ $1, AX
	JZ   q4ttail

q4tpair:
	VMOVDQU     2(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13
	VMOVDQU     20(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 18(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y8, Y8
	VMOVDQU      32(R12)(BX*1), Y1
	VBROADCASTSS 4(R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y10, Y10
	VMOVDQU      32(R12)(BX*2), Y1
	VBROADCASTSS 4(R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y12, Y12
	VMOVDQU      32(R12)(R14*1), Y1
	VBROADCASTSS 4(R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y14, Y14
	ADDQ $36, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q4tpair

q4ttail:
	MOVQ  nb+64(FP), AX
	TESTQ $1, AX
	JZ    q4tsum
	VMOVDQU     2(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPMADDUBSW   Y3, Y2, Y4
	VPMADDWD     Y15, Y4, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13

q4tsum:
	VADDPS Y8, Y7, Y7
	VADDPS Y10, Y9, Y9
	VADDPS Y12, Y11, Y11
	VADDPS Y14, Y13, Y13
	HSUMTO(Y7, X7, X6)
	HSUMTO(Y9, X9, X6)
	HSUMTO(Y11, X11, X6)
	HSUMTO(Y13, X13, X6)
	LEAQ   (R11)(R11*2), AX
	VMOVSS X7, (DI)
	VMOVSS X9, (DI)(R11*1)
	VMOVSS X11, (DI)(R11*2)
	VMOVSS X13, (DI)(AX*1)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q4trow
	VZEROUPPER
	RET

// func dotQ4Rows4VNNI(out *float32, ostride int, w *byte, xq *int8, xqStride int, xd *float32, xdStride int, rows, nb, rowBytes int)
//
// The four-token kernel with AVX512-VNNI (EVEX-encoded, 256-bit): VPDPBUSD
// sums the four byte products of each int32 lane at once, the exact
// integers VPMADDUBSW then VPMADDWD give (|w| ≤ 128 and |x| ≤ 127, so the
// AVX2 pair never saturates either), hence the same bits.
TEXT ·dotQ4Rows4VNNI(SB), NOSPLIT, $0-80
	MOVQ out+0(FP), DI
	MOVQ ostride+8(FP), R11
	SHLQ $2, R11
	MOVQ w+16(FP), SI
	MOVQ xqStride+32(FP), BX
	LEAQ (BX)(BX*2), R14
	MOVQ xdStride+48(FP), DX
	SHLQ $2, DX
	LEAQ (DX)(DX*2), R8
	MOVQ rows+56(FP), CX
	MOVQ rowBytes+72(FP), R9
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q4tvrow:
	MOVQ SI, R10
	MOVQ xq+24(FP), R12
	MOVQ xd+40(FP), R13
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	MOVQ nb+64(FP), AX
	SHRQ $1, AX
	JZ   q4tvtail

q4tvpair:
	VMOVDQU     2(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13
	VMOVDQU     20(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 18(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      32(R12), Y1
	VBROADCASTSS 4(R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y8, Y8
	VMOVDQU      32(R12)(BX*1), Y1
	VBROADCASTSS 4(R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y10, Y10
	VMOVDQU      32(R12)(BX*2), Y1
	VBROADCASTSS 4(R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y12, Y12
	VMOVDQU      32(R12)(R14*1), Y1
	VBROADCASTSS 4(R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y14, Y14
	ADDQ $36, R10
	ADDQ $64, R12
	ADDQ $8, R13
	DECQ AX
	JNZ  q4tvpair

q4tvtail:
	MOVQ  nb+64(FP), AX
	TESTQ $1, AX
	JZ    q4tvsum
	VMOVDQU     2(R10), X0
	VPSRLW      $4, X0, X2
	VINSERTI128 $1, X2, Y0, Y0
	VPAND       nib0f<>(SB), Y0, Y0
	VPSUBB      nib08<>(SB), Y0, Y0
	VPABSB       Y0, Y2
	VPBROADCASTW 0(R10), X5
	VCVTPH2PS    X5, Y5
	VMOVDQU      (R12), Y1
	VBROADCASTSS (R13), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y7, Y7
	VMOVDQU      (R12)(BX*1), Y1
	VBROADCASTSS (R13)(DX*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y9, Y9
	VMOVDQU      (R12)(BX*2), Y1
	VBROADCASTSS (R13)(DX*2), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y11, Y11
	VMOVDQU      (R12)(R14*1), Y1
	VBROADCASTSS (R13)(R8*1), Y6
	VPSIGNB      Y0, Y1, Y3
	VPXOR        Y4, Y4, Y4
	VPDPBUSD     Y3, Y2, Y4
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y6, Y5, Y6
	VMULPS       Y6, Y4, Y4
	VADDPS       Y4, Y13, Y13

q4tvsum:
	VADDPS Y8, Y7, Y7
	VADDPS Y10, Y9, Y9
	VADDPS Y12, Y11, Y11
	VADDPS Y14, Y13, Y13
	HSUMTO(Y7, X7, X6)
	HSUMTO(Y9, X9, X6)
	HSUMTO(Y11, X11, X6)
	HSUMTO(Y13, X13, X6)
	LEAQ   (R11)(R11*2), AX
	VMOVSS X7, (DI)
	VMOVSS X9, (DI)(R11*1)
	VMOVSS X11, (DI)(R11*2)
	VMOVSS X13, (DI)(AX*1)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    q4tvrow
	VZEROUPPER
	RET

// func dotF16RowsAVX2(out *float32, w *byte, x *float32, rows, n8, rowBytes int)
TEXT ·dotF16RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), BX
	MOVQ rows+24(FP), CX
	MOVQ n8+32(FP), R8
	MOVQ rowBytes+40(FP), R9

f16row:
	MOVQ SI, R10
	MOVQ BX, R11
	MOVQ R8, R13
	VXORPS Y7, Y7, Y7

f16blk:
	VCVTPH2PS (R10), Y0
	VMULPS    (R11), Y0, Y0
	VADDPS    Y0, Y7, Y7
	ADDQ $16, R10
	ADDQ $32, R11
	SUBQ $8, R13
	JNZ  f16blk

	HSUM8
	VMOVSS X7, (DI)
	ADDQ   $4, DI
	ADDQ   R9, SI
	DECQ   CX
	JNZ    f16row
	VZEROUPPER
	RET

// func dotF32x8AVX2(out *float32, w *float32, x *float32, n8, stride int)
//
// Eight rows at once, one row per lane: out[r] = sum over j < 8*n8 of
// w[r*stride+j]*x[j], accumulated in j order with a separate multiply and
// add per term, i.e. exactly run.c's scalar loop for each row. Each group
// of eight columns is loaded as eight row vectors and transposed 8x8 so
// that column k becomes one vector (lane r = w[r][j+k]).
TEXT ·dotF32x8AVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ n8+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8              // row stride in bytes
	LEAQ (R8)(R8*2), R9      // 3 rows
	LEAQ (SI)(R8*4), R10     // row 4
	VXORPS Y15, Y15, Y15

f32x8loop:
	// Eight rows interleaved defeat the hardware prefetcher (16.8 against
	// 22.8 GB/s from DRAM here): fetch each row's line 512 bytes ahead,
	// once per 64 bytes.
	TESTQ      $1, CX
	JZ         f32x8nopf
	PREFETCHT0 512(SI)
	PREFETCHT0 512(SI)(R8*1)
	PREFETCHT0 512(SI)(R8*2)
	PREFETCHT0 512(SI)(R9*1)
	PREFETCHT0 512(R10)
	PREFETCHT0 512(R10)(R8*1)
	PREFETCHT0 512(R10)(R8*2)
	PREFETCHT0 512(R10)(R9*1)

f32x8nopf:
	VMOVUPS   (SI), Y0
	VMOVUPS   (SI)(R8*1), Y1
	VUNPCKLPS Y1, Y0, Y2     // t0
	VUNPCKHPS Y1, Y0, Y3     // t1
	VMOVUPS   (SI)(R8*2), Y0
	VMOVUPS   (SI)(R9*1), Y1
	VUNPCKLPS Y1, Y0, Y4     // t2
	VUNPCKHPS Y1, Y0, Y5     // t3
	VMOVUPS   (R10), Y0
	VMOVUPS   (R10)(R8*1), Y1
	VUNPCKLPS Y1, Y0, Y6     // t4
	VUNPCKHPS Y1, Y0, Y7     // t5
	VMOVUPS   (R10)(R8*2), Y0
	VMOVUPS   (R10)(R9*1), Y1
	VUNPCKLPS Y1, Y0, Y8     // t6
	VUNPCKHPS Y1, Y0, Y9     // t7

	VSHUFPS $0x44, Y4, Y2, Y0 // s0: col 0|4, rows 0-3
	VSHUFPS $0xEE, Y4, Y2, Y1 // s1: col 1|5
	VSHUFPS $0x44, Y5, Y3, Y2 // s2: col 2|6
	VSHUFPS $0xEE, Y5, Y3, Y4 // s3: col 3|7
	VSHUFPS $0x44, Y8, Y6, Y3 // s4: col 0|4, rows 4-7
	VSHUFPS $0xEE, Y8, Y6, Y5 // s5
	VSHUFPS $0x44, Y9, Y7, Y6 // s6
	VSHUFPS $0xEE, Y9, Y7, Y8 // s7

	VPERM2F128 $0x20, Y3, Y0, Y7  // c0
	VPERM2F128 $0x31, Y3, Y0, Y9  // c4
	VPERM2F128 $0x20, Y5, Y1, Y10 // c1
	VPERM2F128 $0x31, Y5, Y1, Y11 // c5
	VPERM2F128 $0x20, Y6, Y2, Y12 // c2
	VPERM2F128 $0x31, Y6, Y2, Y13 // c6
	VPERM2F128 $0x20, Y8, Y4, Y0  // c3
	VPERM2F128 $0x31, Y8, Y4, Y1  // c7

	VBROADCASTSS (DX), Y14
	VMULPS       Y7, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 4(DX), Y14
	VMULPS       Y10, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 8(DX), Y14
	VMULPS       Y12, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 12(DX), Y14
	VMULPS       Y0, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 16(DX), Y14
	VMULPS       Y9, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 20(DX), Y14
	VMULPS       Y11, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 24(DX), Y14
	VMULPS       Y13, Y14, Y14
	VADDPS       Y14, Y15, Y15
	VBROADCASTSS 28(DX), Y14
	VMULPS       Y1, Y14, Y14
	VADDPS       Y14, Y15, Y15

	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, DX
	DECQ CX
	JNZ  f32x8loop

	VMOVUPS Y15, (DI)
	VZEROUPPER
	RET

// func axpyAVX2(y *float32, x *float32, a float32, n8 int)
//
// y[i] = y[i] + float32(a*x[i]) for i < 8*n8: element-wise, so the same
// bits as the scalar loop.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS a+16(FP), Y1
	MOVQ         n8+24(FP), CX

axpyloop:
	VMULPS  (SI), Y1, Y0
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     axpyloop
	VZEROUPPER
	RET

// func attnValuesAVX2(xb *float32, v *float32, att *float32, nt, stride, n8 int)
//
// xb[i] = sum over t < nt of att[t]*v[t*stride+i], for i < 8*n8, summed in
// t order from 0 with a separate multiply and add (run.c's order for each
// element). Columns go 32 at a time (four chains), then 8 at a time.
TEXT ·attnValuesAVX2(SB), NOSPLIT, $0-48
	MOVQ xb+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ n8+40(FP), CX

av32:
	CMPQ CX, $4
	JLT  av8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   SI, R10
	MOVQ   att+16(FP), R11
	MOVQ   nt+24(FP), AX

av32t:
	VBROADCASTSS (R11), Y4
	VMULPS       (R10), Y4, Y5
	VADDPS       Y5, Y0, Y0
	VMULPS       32(R10), Y4, Y6
	VADDPS       Y6, Y1, Y1
	VMULPS       64(R10), Y4, Y7
	VADDPS       Y7, Y2, Y2
	VMULPS       96(R10), Y4, Y8
	VADDPS       Y8, Y3, Y3
	ADDQ         $4, R11
	ADDQ         R8, R10
	DECQ         AX
	JNZ          av32t

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, SI
	SUBQ    $4, CX
	JMP     av32

av8:
	TESTQ CX, CX
	JZ    avdone
	VXORPS Y0, Y0, Y0
	MOVQ   SI, R10
	MOVQ   att+16(FP), R11
	MOVQ   nt+24(FP), AX

av8t:
	VBROADCASTSS (R11), Y4
	VMULPS       (R10), Y4, Y5
	VADDPS       Y5, Y0, Y0
	ADDQ         $4, R11
	ADDQ         R8, R10
	DECQ         AX
	JNZ          av8t

	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JMP     av8

avdone:
	VZEROUPPER
	RET
