package sse

import (
	"context"
	"time"
)

// WriteTimeoutOf returns the write deadline s applies (0: none), for tests.
func WriteTimeoutOf(s *Stream) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.WriteTimeout
}

// ParserBufferCaps returns the capacities of p's read, data and comment
// buffers: the memory it holds between reads, for tests.
func ParserBufferCaps(p *Parser) (read, data, comment int) {
	return cap(p.buf), cap(p.data), cap(p.comment)
}

// Backoff returns the wait a session with MaxReconnectionDelay limit makes
// before reconnection number tries in a row, for tests.
func Backoff(tries int, reconnect, limit time.Duration) time.Duration {
	s := NewSession(context.Background(), "", &ClientOptions{MaxReconnectionDelay: limit})
	defer s.cancel()
	s.tries = tries
	return s.backoff(reconnect)
}

// SetHeldOpen sets how long a connection of heartbeats must stay open to
// count as a delivery, until tb's end, for tests (not parallel ones).
func SetHeldOpen(tb interface{ Cleanup(func()) }, d time.Duration) {
	old := heldOpen
	heldOpen = d
	tb.Cleanup(func() { heldOpen = old })
}

// BufCap returns the capacity of the encoding buffer s keeps between
// writes, for tests.
func BufCap(s *Stream) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cap(s.buf)
}

// LastWriteOf returns when s last wrote (and flushed), the time its
// heartbeat counts idleness from, for tests.
func LastWriteOf(s *Stream) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastWrite
}

// OnReconnectTimer sets f to be called with the session when its
// reconnection timer has fired, before the reconnection starts, until
// tb's end, for tests (not parallel ones).
func OnReconnectTimer(tb interface{ Cleanup(func()) }, f func(*Session)) {
	reconnectTimerFired = f
	tb.Cleanup(func() { reconnectTimerFired = nil })
}
