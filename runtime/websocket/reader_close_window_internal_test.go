package websocket

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A Reader whose message's last byte was delivered, its io.EOF not yet
// returned, ends with io.EOF also when its next Read comes while Close's
// drain, having read the peer's close frame and so closed the connection,
// still holds the read lock (TestReaderEOFSurvivesClose covers the Read
// after Close returned). The Read found the connection closed and the lock
// busy and returned the peer's *CloseError: the read loop took a whole
// message for a cut one. The test holds the lock as Close's drain does
// (awaitPeerClose) and lets it go only once the Read has answered or
// waits for it.
func TestReaderEOFInCloseWindow(t *testing.T) {
	msg := []byte(readerCloseMsg)
	for _, tc := range readerCloseCases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := partlyReadMessage(t, msg, tc.read)
			// Close's drain, up to the release of the read lock.
			c.readSem <- struct{}{}
			var ce *CloseError
			if err := c.drainUntilClose(); !errors.As(err, &ce) {
				<-c.readSem
				t.Fatalf("drain: %v, want the peer's close", err)
			}
			select {
			case <-c.closed:
			default:
				<-c.readSem
				t.Fatal("the peer's close frame did not close the connection")
			}
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := r.Read(make([]byte, 16))
				done <- result{n, err}
			}()
			// The Read answers at once, or waits for the lock: which one
			// is seen in the goroutine stacks (bounded).
			var res result
			answered := false
			for i := 0; i < 5000 && !answered; i++ {
				select {
				case res = <-done:
					answered = true
					continue
				default:
				}
				if readWaitsForLock() {
					break
				}
				time.Sleep(time.Millisecond)
			}
			<-c.readSem
			if !answered {
				select {
				case res = <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the Reader still waits once the lock is free")
				}
			}
			switch {
			case tc.wantEOF && (res.n != 0 || res.err != io.EOF):
				t.Fatalf("the Reader in Close's window: %d bytes, %v; want 0, io.EOF", res.n, res.err)
			case !tc.wantEOF && (res.err == nil || errors.Is(res.err, io.EOF)):
				t.Fatalf("the Reader cut by Close: %d bytes, %v; want an error", res.n, res.err)
			}
		})
	}
}

// readWaitsForLock reports whether a goroutine waits in streamReader.Read
// on a channel send: for the read lock.
func readWaitsForLock() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[chan send") && strings.Contains(g, "(*streamReader).Read(") {
			return true
		}
	}
	return false
}
