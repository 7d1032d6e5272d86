//go:build amd64 && !purego

#include "textflag.h"

// Registers through utf8ValidAVX2:
//   Y1 the block, Y2 the block before it (zeros before the first),
//   Y3 the errors so far (any bit set: invalid), Y0 the lead bytes at the
//   end of the last block checked that still wait for continuation bytes,
//   Y15 Y14 Y13 the three tables (in both 128-bit lanes), Y8 ends,
//   Y12 0x0F, Y11 0x60, Y10 0x70, Y9 0x80 in every byte; Y4-Y7 scratch.

// LOOKUP checks the block in Y1 against the block before it in Y2, then
// makes Y1 the block before.
//
// Y5, Y6, Y7 are the stream shifted by one, two and three bytes, so byte
// i of each is the byte 1, 2, 3 before byte i of the block; Y4 is the
// upper half of the previous block next to the lower half of this one,
// which VPALIGNR needs to shift across the 128-bit lanes. The three table
// lookups of each pair (previous byte, this byte) are ANDed. Where the
// byte two back is E0..FF or three back F0..FF this byte must be a
// continuation: the two-continuations bit is flipped there, so it is an
// error where a continuation is missing as well as where one is extra.
#define LOOKUP \
	VPERM2I128 $0x21, Y1, Y2, Y4 \
	VPALIGNR   $15, Y4, Y1, Y5   \
	VPALIGNR   $14, Y4, Y1, Y6   \
	VPALIGNR   $13, Y4, Y1, Y7   \
	VPSRLW     $4, Y5, Y4        \
	VPAND      Y12, Y4, Y4       \
	VPSHUFB    Y4, Y15, Y4       \
	VPAND      Y12, Y5, Y5       \
	VPSHUFB    Y5, Y14, Y5       \
	VPAND      Y5, Y4, Y4        \
	VPSRLW     $4, Y1, Y5        \
	VPAND      Y12, Y5, Y5       \
	VPSHUFB    Y5, Y13, Y5       \
	VPAND      Y5, Y4, Y4        \
	VPSUBUSB   Y11, Y6, Y6       \
	VPSUBUSB   Y10, Y7, Y7       \
	VPOR       Y7, Y6, Y6        \
	VPAND      Y9, Y6, Y6        \
	VPXOR      Y6, Y4, Y4        \
	VPOR       Y4, Y3, Y3        \
	VPSUBUSB   Y8, Y1, Y0        \
	VMOVDQU    Y1, Y2

// func utf8ValidAVX2(p []byte, last *[32]byte, t *utf8Lookup) bool
//
// len(p) is a multiple of 32.
TEXT ·utf8ValidAVX2(SB), NOSPLIT, $0-41
	MOVQ           p_base+0(FP), SI
	MOVQ           p_len+8(FP), CX
	MOVQ           last+24(FP), DX
	MOVQ           t+32(FP), AX
	VBROADCASTI128 0(AX), Y15
	VBROADCASTI128 16(AX), Y14
	VBROADCASTI128 32(AX), Y13
	VMOVDQU        48(AX), Y8
	VPBROADCASTB   80(AX), Y12
	VPBROADCASTB   81(AX), Y11
	VPBROADCASTB   82(AX), Y10
	VPBROADCASTB   83(AX), Y9
	VPXOR          Y0, Y0, Y0
	VPXOR          Y2, Y2, Y2
	VPXOR          Y3, Y3, Y3

loop128:
	CMPQ      CX, $128
	JB        loop32
	// 128 bytes of ASCII are valid by themselves; they only end any
	// sequence the last block left open.
	VMOVDQU   (SI), Y4
	VPOR      32(SI), Y4, Y4
	VMOVDQU   64(SI), Y5
	VPOR      96(SI), Y5, Y5
	VPOR      Y5, Y4, Y4
	VPMOVMSKB Y4, BX
	TESTL     BX, BX
	JNZ       mixed128
	VPOR      Y0, Y3, Y3
	VPXOR     Y0, Y0, Y0
	VMOVDQU   96(SI), Y2
	ADDQ      $128, SI
	SUBQ      $128, CX
	JMP       loop128

mixed128:
	VMOVDQU (SI), Y1
	LOOKUP
	VMOVDQU 32(SI), Y1
	LOOKUP
	VMOVDQU 64(SI), Y1
	LOOKUP
	VMOVDQU 96(SI), Y1
	LOOKUP
	ADDQ    $128, SI
	SUBQ    $128, CX
	JMP     loop128

loop32:
	CMPQ    CX, $32
	JB      lastblock
	VMOVDQU (SI), Y1
	LOOKUP
	ADDQ    $32, SI
	SUBQ    $32, CX
	JMP     loop32

lastblock:
	// The zero padding after the input is ASCII: any sequence left open
	// at the end fails here like any other that is cut short.
	VMOVDQU (DX), Y1
	LOOKUP
	VPTEST     Y3, Y3
	SETEQ      ret+40(FP)
	VZEROUPPER
	RET
