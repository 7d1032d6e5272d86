package websocket

import (
	"encoding/binary"
	"unicode/utf8"
)

// The reference FuzzReadFrames checks a connection's reads against: a
// sequential reading of the whole stream by RFC 6455 alone, written apart
// from the reader's buffering, fragment state and limits bookkeeping.

// modelEnd is how reading a stream ends.
type modelEnd int

const (
	modelEOF      modelEnd = iota // the stream ended without a close frame
	modelClose                    // a valid close frame (message mode)
	modelProtocol                 // a §5 or §7.4 violation: 1002
	modelUTF8                     // invalid UTF-8 in text or a close reason: 1007
	modelTooBig                   // over MaxFrameSize or MaxMessageSize: 1009
)

func (e modelEnd) String() string {
	return [...]string{"EOF", "close", "protocol error", "invalid UTF-8", "too big"}[e]
}

// modelRead reads stream, the peer's bytes, as a connection of the given
// role and limits without extensions would. It returns what the reads
// deliver (in message mode each whole data message as a Frame with its
// type as Opcode and Fin set; in raw mode every frame as it came) and how
// reading ends: on the first violation, at the end of the stream, or, in
// message mode, at a valid close frame, whose payload is close.
func modelRead(stream []byte, client, raw bool, maxFrame, maxMsg int64) (out []Frame, end modelEnd, close *CloseError) {
	s := stream
	open := false     // §5.4: a message's first frame came without FIN
	var msgOp Opcode  // the message's type, from its first frame
	var msg []byte    // the message so far (message mode)
	var msgSize int64 // its wire size so far, for MaxMessageSize
	for {
		// §5.2: the base header, the extended length, the masking key.
		if len(s) < 2 {
			return out, modelEOF, nil
		}
		fin, rsv, op := s[0]&0x80 != 0, s[0]&0x70, Opcode(s[0]&0x0F)
		masked, length, n := s[1]&0x80 != 0, int64(s[1]&0x7F), 2
		switch length {
		case 126:
			if len(s) < 4 {
				return out, modelEOF, nil
			}
			length, n = int64(binary.BigEndian.Uint16(s[2:])), 4
			if length < 126 { // not the minimal encoding
				return out, modelProtocol, nil
			}
		case 127:
			if len(s) < 10 {
				return out, modelEOF, nil
			}
			v := binary.BigEndian.Uint64(s[2:])
			if v>>63 != 0 || v < 1<<16 { // high bit set, or not minimal
				return out, modelProtocol, nil
			}
			length, n = int64(v), 10
		}
		var key [4]byte
		if masked {
			if len(s) < n+4 {
				return out, modelEOF, nil
			}
			copy(key[:], s[n:])
			n += 4
		}
		s = s[n:]

		control := op >= 8
		switch {
		case op >= 3 && op <= 7 || op >= 0xB: // §5.2: reserved opcodes
			return out, modelProtocol, nil
		case rsv != 0: // §5.2: no extension owns an RSV bit
			return out, modelProtocol, nil
		case masked == client: // §5.1: clients mask, servers do not
			return out, modelProtocol, nil
		case control && (!fin || length > 125): // §5.5
			return out, modelProtocol, nil
		case !control && length > maxFrame:
			return out, modelTooBig, nil
		case !control && op == OpContinuation && !open, // §5.4
			!control && op != OpContinuation && open:
			return out, modelProtocol, nil
		}
		if !control {
			if op != OpContinuation {
				msgOp, msg, msgSize = op, nil, 0
			}
			open = !fin
			if msgSize += length; msgSize > maxMsg {
				return out, modelTooBig, nil
			}
		}

		// The payload, unmasked (§5.3), as far as the stream holds it.
		p := make([]byte, min(length, int64(len(s))))
		copy(p, s)
		s = s[len(p):]
		if masked {
			for i := range p {
				p[i] ^= key[i&3]
			}
		}
		if !raw && !control {
			// §8.1: text must be UTF-8, failed as soon as what has come
			// cannot begin valid text.
			msg = append(msg, p...)
			if msgOp == OpText && !validPrefix(msg) {
				return out, modelUTF8, nil
			}
		}
		if int64(len(p)) < length {
			return out, modelEOF, nil
		}
		if op == OpClose { // §5.5.1, §7.4
			switch {
			case len(p) == 1:
				return out, modelProtocol, nil
			case len(p) >= 2 && !closeCodeAllowed(binary.BigEndian.Uint16(p)):
				return out, modelProtocol, nil
			case len(p) >= 2 && !utf8.Valid(p[2:]):
				return out, modelUTF8, nil
			}
			if !raw {
				ce := &CloseError{Code: StatusNoStatusRcvd}
				if len(p) >= 2 {
					ce = &CloseError{Code: StatusCode(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}
				}
				return out, modelClose, ce
			}
		}
		switch {
		case raw:
			out = append(out, Frame{FrameHeader{Fin: fin, RSV: rsv, Opcode: op, Length: length}, p})
		case !control && fin:
			if msgOp == OpText && !utf8.Valid(msg) {
				return out, modelUTF8, nil
			}
			out = append(out, Frame{FrameHeader{Fin: true, Opcode: msgOp, Length: int64(len(msg))}, msg})
		}
	}
}
