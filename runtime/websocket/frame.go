package websocket

import (
	"encoding/binary"
	"fmt"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode byte

// Opcodes (RFC 6455 §5.2, §11.8). 0x3–0x7 and 0xB–0xF are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (RFC 6455 §5.5).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

func (op Opcode) reserved() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return false
	}
	return true
}

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%#x)", byte(op))
}

// RSV bits as they sit in a frame's first byte (RFC 6455 §5.2).
const (
	RSV1    byte = 0x40
	RSV2    byte = 0x20
	RSV3    byte = 0x10
	rsvMask      = RSV1 | RSV2 | RSV3
)

const (
	finBit  = 0x80
	maskBit = 0x80
	// maxControlPayload: control frames carry at most 125 bytes (§5.5).
	maxControlPayload = 125
	// maxHeaderSize: 2 bytes + 8 bytes extended length + 4 bytes mask key.
	maxHeaderSize = 14
)

// header is a decoded frame header.
type header struct {
	fin    bool
	rsv    byte // the RSV bits, in place (RSV1|RSV2|RSV3 mask)
	opcode Opcode
	masked bool
	key    uint32 // little-endian view of the 4 key bytes
	length int64
}

// headerLen returns the encoded size of a header with this length and mask.
func headerLen(length int64, masked bool) int {
	n := 2
	switch {
	case length > 0xFFFF:
		n += 8
	case length > 125:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}

// putHeader encodes h into b, which must hold maxHeaderSize bytes, and
// returns the encoded length. The payload length uses the shortest of the
// three encodings (§5.2: "the minimal number of bytes MUST be used").
func putHeader(b []byte, h *header) int {
	b0 := byte(h.opcode) | h.rsv
	if h.fin {
		b0 |= finBit
	}
	b[0] = b0
	var b1 byte
	if h.masked {
		b1 = maskBit
	}
	n := 2
	switch {
	case h.length > 0xFFFF:
		b[1] = b1 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.length))
		n = 10
	case h.length > 125:
		b[1] = b1 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.length))
		n = 4
	default:
		b[1] = b1 | byte(h.length)
	}
	if h.masked {
		binary.LittleEndian.PutUint32(b[n:], h.key)
		n += 4
	}
	return n
}

// parseHeader decodes a header from b. It returns the header size, or 0 when
// b does not yet hold the whole header. Only encoding rules are checked here
// (the length's high bit and its minimal form, §5.2); the connection checks
// opcodes, RSV ownership and masking direction. h is written only when a
// whole header parsed: the drain of a failed connection reads h's opcode
// as the last frame's (drainStart), and a header that failed to parse is
// no frame.
func parseHeader(b []byte, out *header) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	var hv header
	h := &hv
	b0, b1 := b[0], b[1]
	h.fin = b0&finBit != 0
	h.rsv = b0 & rsvMask
	h.opcode = Opcode(b0 & 0x0F)
	h.masked = b1&maskBit != 0
	n := 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		// §5.2: "the minimal number of bytes MUST be used to encode the
		// length": the 16-bit form is for 126 bytes and up.
		if h.length < 126 {
			return 0, protocolErr("payload length %d sent in the 16-bit form, not the minimal one", h.length)
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		// §5.2: the most significant bit MUST be 0.
		if v>>63 != 0 {
			return 0, protocolErr("64-bit payload length has its high bit set")
		}
		// §5.2: the minimal encoding, as for the 16-bit form.
		if v <= 0xFFFF {
			return 0, protocolErr("payload length %d sent in the 64-bit form, not the minimal one", v)
		}
		h.length = int64(v)
		n = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return 0, nil
		}
		h.key = binary.LittleEndian.Uint32(b[n:])
		n += 4
	}
	*out = hv
	return n, nil
}
