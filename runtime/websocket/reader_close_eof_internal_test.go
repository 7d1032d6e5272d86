package websocket

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A Reader whose message's last byte was delivered, its io.EOF not yet
// returned, ends with io.EOF even if Close read the peer's close frame in
// between (as io.ReadAll's final call meets a Close from another
// goroutine): Close's drain found only that io.EOF left. It returned the
// *CloseError, and the read loop took a whole message for a cut one. A
// Reader Close cut mid-message still ends with an error, never io.EOF.
func TestReaderEOFSurvivesClose(t *testing.T) {
	msg := []byte(readerCloseMsg)
	for _, tc := range readerCloseCases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := partlyReadMessage(t, msg, tc.read)
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close: %v", err)
			}
			n, err := r.Read(make([]byte, 16))
			switch {
			case tc.wantEOF && (n != 0 || err != io.EOF):
				t.Fatalf("the Reader after Close: %d bytes, %v; want 0, io.EOF", n, err)
			case !tc.wantEOF && (err == nil || errors.Is(err, io.EOF)):
				t.Fatalf("the Reader cut by Close: %d bytes, %v; want an error", n, err)
			}
			if s := c.Stats(); s.MessagesRead != 1 || s.PayloadBytesRead != uint64(len(msg)) {
				t.Fatalf("stats: %d messages, %d bytes; want 1, %d", s.MessagesRead, s.PayloadBytesRead, len(msg))
			}
		})
	}
}

// partlyReadMessage returns a server Conn whose peer sent msg and then
// its close frame, and msg's Reader, of which the application has read n
// bytes.
func partlyReadMessage(t *testing.T, msg []byte, n int) (*Conn, io.Reader) {
	t.Helper()
	c, peer, _ := serverPair(t, 2*time.Second)
	in := append(clientFrame(OpBinary, msg), clientClose(StatusNormalClosure)...)
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	_, r, err := c.Reader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	return c, r
}

// readerCloseMsg and readerCloseCases are the message and the cases of
// the Reader-at-Close tests: read to its last byte (io.EOF is due), or
// half (an error, never io.EOF).
const readerCloseMsg = "hello"

var readerCloseCases = []struct {
	name    string
	read    int // bytes the application read before Close
	wantEOF bool
}{
	{"read to its last byte", len(readerCloseMsg), true},
	{"read half", 2, false},
}
