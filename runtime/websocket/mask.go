package websocket

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// mask XORs b with the 4-byte masking key (RFC 6455 §5.3), starting pos
// bytes into the key, and returns the key position after b. key is the
// little-endian load of the key bytes, so byte i of the stream is XORed with
// byte (pos+i)%4 of the key.
//
// It works a machine word at a time, 32 bytes per loop iteration once the
// input is large enough; the compiler turns the binary.LittleEndian calls
// into single loads and stores. On amd64 with AVX2, inputs of avx2Min
// bytes or more go 128 bytes per iteration through maskAVX2, from the
// first 32-byte boundary.
// avx2Min is where maskAVX2 starts to beat the word loop (the call and
// VZEROUPPER cost a few nanoseconds).
const avx2Min = 256

func mask(key uint32, pos int, b []byte) int {
	if useAVX2 && len(b) >= avx2Min {
		// Start the vector loop on a 32-byte boundary: a 32-byte store that
		// crosses a cache line costs about twice an aligned one, and payloads
		// rarely start aligned (a frame's payload follows its 2-14 byte
		// header in the read and write buffers, and a message read in pieces
		// starts wherever the last piece ended). Measured at 64 KiB: 1.05 µs
		// aligned, 1.8 µs two bytes off without this.
		if head := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & 31); head != 0 {
			pos = maskWords(key, pos, b[:head])
			b = b[head:]
		}
		k32 := bits.RotateLeft32(key, -8*(pos&3))
		n := len(b) &^ 31 // whole 32-byte blocks keep the key phase
		maskAVX2(b[:n], uint64(k32)<<32|uint64(k32))
		b = b[n:]
	}
	return maskWords(key, pos, b)
}

// maskWords is mask without the vector loop.
func maskWords(key uint32, pos int, b []byte) int {
	if len(b) < 8 {
		for i := range b {
			b[i] ^= byte(key >> (8 * uint((pos+i)&3)))
		}
		return (pos + len(b)) & 3
	}
	// Rotate the key so that it starts at pos, then widen it to 64 bits.
	k32 := bits.RotateLeft32(key, -8*(pos&3))
	k64 := uint64(k32)<<32 | uint64(k32)
	for len(b) >= 32 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k64)
		v = binary.LittleEndian.Uint64(b[8:])
		binary.LittleEndian.PutUint64(b[8:], v^k64)
		v = binary.LittleEndian.Uint64(b[16:])
		binary.LittleEndian.PutUint64(b[16:], v^k64)
		v = binary.LittleEndian.Uint64(b[24:])
		binary.LittleEndian.PutUint64(b[24:], v^k64)
		b = b[32:]
	}
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k64)
		b = b[8:]
	}
	// Whole words keep the key phase; finish the tail byte by byte.
	for i := range b {
		b[i] ^= byte(k32 >> (8 * uint(i&3)))
	}
	return (pos + len(b)) & 3
}
