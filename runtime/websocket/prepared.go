package websocket

import (
	"context"
	"fmt"
	"sync"
)

// PreparedMessage is one message encoded once for many connections, as a
// broadcast hub needs: the frame bytes are built on first use and the same
// bytes are then written to every server connection that can take them.
// Compressed frames are shared among connections that compress without
// context takeover at the same level and window; a connection whose
// compressor keeps context (or that has other extensions, or is a client
// and must mask) gets the message written the ordinary way.
//
// Concurrency: safe for use by any number of connections at once; the
// payload passed to NewPreparedMessage must not change afterwards.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu       sync.Mutex
	plain    []byte         // unmasked header + payload
	deflated map[int][]byte // by level<<4 | window bits: header + compressed payload
}

// NewPreparedMessage prepares data as a message of type typ. It costs
// nothing until the first write; each distinct frame form is then built
// once.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("websocket: invalid message type %d", int(typ))
	}
	if typ == MessageText && !validUTF8(data) {
		return nil, fmt.Errorf("%w: prepared text message", ErrInvalidUTF8)
	}
	return &PreparedMessage{typ: typ, data: data}, nil
}

// Type returns the message type.
func (pm *PreparedMessage) Type() MessageType { return pm.typ }

// Data returns the payload (not to be modified).
func (pm *PreparedMessage) Data() []byte { return pm.data }

// frame returns the shared frame bytes for c, or nil when c must encode
// the message itself.
func (pm *PreparedMessage) frame(c *Conn) []byte {
	if c.client || c.frameExts {
		return nil
	}
	var ds *DeflateSession
	for _, e := range c.negExts() {
		if e.message == nil {
			continue
		}
		s, ok := e.session.(*DeflateSession)
		if !ok || ds != nil {
			return nil
		}
		ds = s
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if ds == nil || len(pm.data) < ds.threshold {
		if pm.plain == nil {
			pm.plain = appendFrame(nil, Opcode(pm.typ), 0, pm.data)
		}
		return pm.plain
	}
	if !ds.writeNoCtx {
		return nil // the compressed bytes depend on this connection's history
	}
	key := ds.level<<4 | ds.writeBits
	if f, ok := pm.deflated[key]; ok {
		return f
	}
	z, err := ds.compressStateless(pm.data)
	if err != nil {
		return nil
	}
	if pm.deflated == nil {
		pm.deflated = make(map[int][]byte)
	}
	f := appendFrame(nil, Opcode(pm.typ), RSV1, z)
	pm.deflated[key] = f
	return f
}

// appendFrame appends one unmasked, final frame.
func appendFrame(dst []byte, op Opcode, rsv byte, payload []byte) []byte {
	var hdr [maxHeaderSize]byte
	h := header{fin: true, rsv: rsv, opcode: op, length: int64(len(payload))}
	n := putHeader(hdr[:], &h)
	dst = append(dst, hdr[:n]...)
	return append(dst, payload...)
}

// compressStateless compresses p as one message from a fresh context.
func (s *DeflateSession) compressStateless(p []byte) ([]byte, error) {
	if s.level == 1 {
		e := getEncoder(s.writeBits)
		defer putEncoder(s.writeBits, e)
		return e.Flush(e.Write(nil, p)), nil
	}
	var out collectWriter
	var t tailStripper
	t.reset(&out)
	fw := getFlateWriter(s.level, s.writeBits, &t)
	defer putFlateWriter(s.level, s.writeBits, fw)
	if _, err := fw.Write(p); err != nil {
		return nil, err
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return out.b, nil
}

type collectWriter struct{ b []byte }

func (w *collectWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// WritePrepared writes a prepared message. On server connections that can
// share its frame bytes this is a copy into the write buffer (or one write)
// with no encoding at all; otherwise it is Write(ctx, pm.Type(), pm.Data()).
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	if c.cfg.raw {
		return ErrRawMode
	}
	f := pm.frame(c)
	if f == nil {
		return c.Write(ctx, pm.typ, pm.data)
	}
	if err := c.beginWrite(ctx); err != nil {
		return err
	}
	err := c.endWrite(ctx, c.writeEncoded(f))
	if err == nil {
		c.stats.messageWritten(len(pm.data))
	}
	return err
}

// writeEncoded queues already-framed bytes under the frame lock; like a
// Write, the last writer out flushes.
func (c *Conn) writeEncoded(f []byte) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	if err := c.writableLocked(true); err != nil {
		return err
	}
	if c.wbuf != nil && c.wlen+len(f) > len(*c.wbuf) {
		if err := c.flushLocked(); err != nil {
			return err
		}
	}
	if len(f) > largeBufSize {
		if c.wlen > 0 {
			if err := c.flushLocked(); err != nil {
				return err
			}
		}
		return c.writeErrLocked(c.deadline(func() error { return c.writeSock(f) }))
	}
	if c.wbuf == nil {
		c.wbuf = getBuf(len(f))
	}
	c.wlen += copy((*c.wbuf)[c.wlen:], f)
	return nil
}
