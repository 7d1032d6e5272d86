package flatemsg

// DEFLATE's length and distance alphabets (RFC 1951 §3.2.5): a match
// length of 3-258 is a literal/length symbol 257-285 plus extra bits, a
// distance of 1-32768 a distance symbol 0-29 plus extra bits.

const (
	minMatch    = 4   // shortest match we look for (DEFLATE allows 3)
	maxMatch    = 258 // §3.2.5
	maxDistance = 1 << 15
	endOfBlock  = 256
	numLitLen   = 286 // symbols 0-285; 286 and 287 never occur (§3.2.6)
	numDist     = 30
	numCodeLen  = 19 // the code-length alphabet of §3.2.7
	maxCodeBits = 15
	maxCLBits   = 7
)

var (
	// lenSym[l-3] is the length symbol's index (symbol 257+index) for l.
	lenSym [256]uint8
	// lenBase and lenExtra describe each of the 29 length symbols.
	lenBase  [29]uint16
	lenExtra [29]uint8

	// distLow[d-1] for d ≤ 256, distHigh[(d-1)>>7] above: the distance
	// symbol (every symbol above 15 spans a multiple of 128 distances).
	distLow   [256]uint8
	distHigh  [256]uint8
	distBase  [numDist]uint16
	distExtra [numDist]uint8

	// The fixed Huffman codes of §3.2.6, bit-reversed for LSB-first output.
	fixedLitLens   [numLitLen]uint8
	fixedLitCodes  [numLitLen]uint16
	fixedDistLens  [numDist]uint8
	fixedDistCodes [numDist]uint16

	// clOrder is the order code-length code lengths are sent in (§3.2.7).
	clOrder = [numCodeLen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

func init() {
	base := 3
	for k := range 28 {
		extra := 0
		if k >= 8 {
			extra = (k - 4) / 4
		}
		lenBase[k], lenExtra[k] = uint16(base), uint8(extra)
		for l := base; l < base+1<<extra && l <= maxMatch; l++ {
			lenSym[l-3] = uint8(k)
		}
		base += 1 << extra
	}
	// 258 has a symbol of its own (285) although 284's range reaches it.
	lenBase[28], lenExtra[28] = maxMatch, 0
	lenSym[maxMatch-3] = 28

	base = 1
	for c := range numDist {
		extra := 0
		if c >= 4 {
			extra = c/2 - 1
		}
		distBase[c], distExtra[c] = uint16(base), uint8(extra)
		for d := base - 1; d < base-1+1<<extra; d++ {
			if d < 256 {
				distLow[d] = uint8(c)
			} else {
				distHigh[d>>7] = uint8(c)
			}
		}
		base += 1 << extra
	}

	for i := range fixedLitLens {
		switch {
		case i < 144:
			fixedLitLens[i] = 8
		case i < 256:
			fixedLitLens[i] = 9
		case i < 280:
			fixedLitLens[i] = 7
		default:
			fixedLitLens[i] = 8
		}
	}
	// The canonical codes of 288 symbols; 286 and 287 only shape them.
	var all [288]uint8
	copy(all[:], fixedLitLens[:])
	all[286], all[287] = 8, 8
	var codes [288]uint16
	canonicalCodes(all[:], codes[:])
	copy(fixedLitCodes[:], codes[:])
	for i := range fixedDistLens {
		fixedDistLens[i] = 5
	}
	canonicalCodes(fixedDistLens[:], fixedDistCodes[:])
	buildFixedTables(all[:])
}

// distSym returns the distance symbol of d-1.
func distSym(d1 uint32) uint8 {
	if d1 < 256 {
		return distLow[d1]
	}
	return distHigh[d1>>7]
}
