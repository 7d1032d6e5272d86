package websocket

import (
	"context"
	"fmt"
)

// FrameHeader is a frame's header as the raw API shows it.
type FrameHeader struct {
	Fin    bool
	RSV    byte // RSV1|RSV2|RSV3 bits, in place
	Opcode Opcode
	Length int64
}

// Frame is one WebSocket frame, unmasked.
type Frame struct {
	FrameHeader
	Payload []byte
}

// ReadFrame reads the next frame of a raw connection (AcceptOptions.Raw or
// DialOptions.Raw), the analogue of Ktor's webSocketRaw: control frames and
// fragments are visible, pings are not answered, and a close frame is not
// replied to (answer it with WriteFrame, or with Close, which returns as
// soon as both close frames have crossed). Frame-level rules are
// still enforced: masking direction, reserved opcodes, RSV ownership,
// control frame size and fragmentation, continuation sequencing and
// MaxFrameSize; UTF-8 is not checked. The payload is appended to buf[:0].
func (c *Conn) ReadFrame(ctx context.Context, buf []byte) (Frame, error) {
	if !c.cfg.raw {
		if c.readSem == nil {
			return Frame{}, errZeroConn
		}
		return Frame{}, ErrRawMode
	}
	if err := c.lockRead(ctx); err != nil {
		return Frame{}, err
	}
	defer c.unlockRead()
	if c.readErr != nil {
		return Frame{}, c.readErr
	}
	if err := c.readHeader(); err != nil {
		return Frame{}, ctxErr(ctx, err)
	}
	h := c.rh
	// buf grows as the payload arrives (growRead), not to what the header
	// claims; a buf with room for the frame takes it in one read.
	buf = buf[:0]
	for n := int(h.length); len(buf) < n; {
		if len(buf) == cap(buf) {
			buf = growRead(buf, int64(n-len(buf)))
		}
		k := min(cap(buf), n)
		if err := c.readFull(buf[len(buf):k]); err != nil {
			return Frame{}, ctxErr(ctx, err)
		}
		buf = buf[:k]
	}
	f := Frame{FrameHeader{Fin: h.fin, RSV: h.rsv, Opcode: h.opcode, Length: h.length}, buf}
	switch h.opcode {
	case OpPing:
		c.controlSeen.Store(true)
	case OpPong:
		c.controlSeen.Store(true)
		c.gotPong(buf)
	case OpClose:
		if err := c.gotClose(buf); err != nil {
			if _, ok := err.(*CloseError); !ok {
				return f, c.failRead(err)
			}
		}
	}
	return f, nil
}

// WriteFrame writes one frame on a raw connection as given: fragments,
// control frames and RSV bits are the caller's to get right (which is the
// point: it can play a misbehaving peer in tests). Masking is applied for
// clients. Control frames must still fit in 125 bytes, and the opcode in
// the header's 4 bits (reserved ones are sent).
func (c *Conn) WriteFrame(ctx context.Context, f Frame) error {
	if !c.cfg.raw {
		if c.msgSem == nil {
			return errZeroConn
		}
		return ErrRawMode
	}
	if f.Opcode > 0xF {
		// The opcode is the header's low four bits (RFC 6455 §5.2): wider,
		// it would set FIN and RSV bits the caller did not ask for.
		// Reserved opcodes fit, and are sent as given.
		return fmt.Errorf("websocket: opcode %#x does not fit in 4 bits", byte(f.Opcode))
	}
	if f.Opcode.IsControl() && len(f.Payload) > maxControlPayload {
		return fmt.Errorf("websocket: %v frame payload of %d bytes exceeds 125", f.Opcode, len(f.Payload))
	}
	if f.Opcode == OpClose {
		c.closeMu.Lock()
		c.closeSent = true
		c.closeMu.Unlock()
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	err := c.writeFrame(f.Fin, f.Opcode, f.RSV&rsvMask, f.Payload, true)
	c.writeCtx.disarm()
	<-c.msgSem
	return writeCtxErr(ctx, err)
}
