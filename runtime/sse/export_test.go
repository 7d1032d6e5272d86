package sse

import "time"

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
