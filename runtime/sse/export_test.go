package sse

import "time"

// WriteTimeoutOf returns the write deadline s applies (0: none), for tests.
func WriteTimeoutOf(s *Stream) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.WriteTimeout
}
