//go:build !linux

package websocket

import "time"

// Without epoll, every connection a Poller serves is read by a goroutine
// of its own (pollEntry.loop).
type pollSys struct {
	busyPoll time.Duration // unused: there is no dispatcher to keep awake
}

func (s *pollSys) init(p *Poller) error   { return nil }
func (s *pollSys) ok() bool               { return false }
func (s *pollSys) add(e *pollEntry) error { return nil }
func (s *pollSys) del(e *pollEntry)       {}
func (s *pollSys) close() error           { return nil }
