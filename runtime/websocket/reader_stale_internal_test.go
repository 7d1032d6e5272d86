package websocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// A Reader kept past the next read call never reads that call's message.
// Every Reader handed out the connection's one message reader, so the
// first Reader, read again after a second Reader call, returned the second
// message's bytes, and after a ReadAppend that read the next message whole
// it returned a clean io.EOF for a message cut short. Now: the rest of its
// message is reported discarded, a Reader read to its end keeps returning
// io.EOF, and the later call gets its own message whole.
func TestReaderStaleAfterNextRead(t *testing.T) {
	c, peer, _ := serverPair(t, 0)
	first := bytes.Repeat([]byte("first "), 2000)
	second := []byte("second message")
	third := []byte("third")
	for _, m := range [][]byte{first, second, third, []byte("fourth")} {
		if _, err := peer.Write(clientFrame(OpBinary, m)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	_, r1, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r1, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	_, r2, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r1.Read(make([]byte, 100)); n != 0 || !errors.Is(err, ErrReaderDiscarded) {
		t.Fatalf("the first Reader after a second Reader call: %d bytes, %v; want 0, ErrReaderDiscarded", n, err)
	}
	got, err := io.ReadAll(r2)
	if err != nil || !bytes.Equal(got, second) {
		t.Fatalf("the second Reader: %q, %v; want %q", got, err, second)
	}
	if n, err := r2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("a Reader read to its end, read again: %d, %v; want io.EOF", n, err)
	}
	_, m, err := c.Read(ctx)
	if err != nil || !bytes.Equal(m, third) {
		t.Fatalf("Read after the Readers: %q, %v", m, err)
	}
	if n, err := r2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("a finished Reader after a later Read: %d, %v; want io.EOF", n, err)
	}
	if n, err := r1.Read(make([]byte, 1)); n != 0 || !errors.Is(err, ErrReaderDiscarded) {
		t.Fatalf("the discarded Reader after a later Read: %d, %v", n, err)
	}
	// The connection is still usable.
	if _, m, err := c.Read(ctx); err != nil || string(m) != "fourth" {
		t.Fatalf("Read: %q, %v", m, err)
	}
}
