package echo

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcp-uring echoes on several connections at once and, when its listener
// closes, ends the connections it holds (their queued receives complete)
// and returns: nothing is left pointing into freed buffers.
func TestTCPURingEchoAndStop(t *testing.T) {
	if err := URingSupported(); err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serveTCPUring(ln) }()

	conns := make([]net.Conn, 5)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
		_ = conns[i].SetDeadline(time.Now().Add(10 * time.Second))
	}
	// More than one receive's worth (32 KiB) each, so sends continue
	// across completions.
	for i, c := range conns {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100<<10+i)
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("conn %d: echo differs", i)
		}
	}

	ln.Close()
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("serveTCPUring: %v, want the listener's net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveTCPUring did not return after its listener closed")
	}
	for i, c := range conns {
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("conn %d after stop: %d, %v, want EOF", i, n, err)
		}
	}
}
