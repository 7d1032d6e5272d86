//go:build amd64 && !purego

package websocket

// useAVX2 reports whether the CPU and the OS support AVX2; it selects
// maskAVX2 and utf8ValidAVX2 for long inputs: 32 bytes per instruction
// instead of 8.
var useAVX2 = hasAVX2()

// maskAVX2 XORs b with key64 (the key widened to 64 bits, already rotated
// to b's phase). len(b) must be a multiple of 32, so the phase is kept.
//
//go:noescape
func maskAVX2(b []byte, key64 uint64)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// hasAVX2 follows the Intel SDM, vol. 1 §14.3: the CPU has AVX and AVX2
// (CPUID.1:ECX bit 28, CPUID.(7,0):EBX bit 5) and the OS saves the YMM
// registers (CPUID.1:ECX.OSXSAVE bit 27, then XCR0 bits 1 and 2).
func hasAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}
