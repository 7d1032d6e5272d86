//go:build amd64 && !purego

#include "textflag.h"

// func maskAVX2(b []byte, key64 uint64)
// len(b) is a multiple of 32.
TEXT ·maskAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), DI
	MOVQ b_len+8(FP), CX
	MOVQ key64+24(FP), AX
	MOVQ AX, X0
	VPBROADCASTQ X0, Y0
	CMPQ CX, $128
	JB   tail

loop128:
	VPXOR   (DI), Y0, Y1
	VPXOR   32(DI), Y0, Y2
	VPXOR   64(DI), Y0, Y3
	VPXOR   96(DI), Y0, Y4
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y3, 64(DI)
	VMOVDQU Y4, 96(DI)
	ADDQ    $128, DI
	SUBQ    $128, CX
	CMPQ    CX, $128
	JAE     loop128

tail:
	CMPQ    CX, $32
	JB      done
	VPXOR   (DI), Y0, Y1
	VMOVDQU Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $32, CX
	JMP     tail

done:
	VZEROUPPER
	RET

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

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET
