package websocket

import (
	"encoding/binary"
	"math/bits"
)

// mask XORs b with the 4-byte masking key (RFC 6455 §5.3), starting pos
// bytes into the key, and returns the key position after b. key is the
// little-endian load of the key bytes, so byte i of the stream is XORed with
// byte (pos+i)%4 of the key.
//
// It works a machine word at a time, 32 bytes per loop iteration once the
// input is large enough; the compiler turns the binary.LittleEndian calls
// into single loads and stores. On amd64 with AVX2, inputs of avx2Min
// bytes or more go 128 bytes per iteration through maskAVX2.
// avx2Min is where maskAVX2 starts to beat the word loop (the call and
// VZEROUPPER cost a few nanoseconds).
const avx2Min = 256

func mask(key uint32, pos int, b []byte) int {
	if len(b) < 8 {
		for i := range b {
			b[i] ^= byte(key >> (8 * uint((pos+i)&3)))
		}
		return (pos + len(b)) & 3
	}
	// Rotate the key so that it starts at pos, then widen it to 64 bits.
	k32 := bits.RotateLeft32(key, -8*(pos&3))
	k64 := uint64(k32)<<32 | uint64(k32)
	if useAVX2 && len(b) >= avx2Min {
		n := len(b) &^ 31 // whole 32-byte blocks keep the key phase
		maskAVX2(b[:n], k64)
		b = b[n:]
	}
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
