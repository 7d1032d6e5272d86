//go:build unix

package websocket

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Socket writes are raw system calls that resume where the kernel stopped:
// with small socket buffers and a peer that starts reading late and reads
// in small pieces, every write is partial or would block at first, and
// every byte of every kind of write (buffered frames, a large server
// frame's writev, a prepared message, a streamed message) arrives in order.
func TestSocketWritesResume(t *testing.T) {
	for _, client := range []bool{false, true} {
		t.Run(roleName(client), func(t *testing.T) {
			a, b := tcpPair(t)
			// Small enough that a message is written in many pieces, not so
			// small that delayed acknowledgements stall the stream.
			_ = a.(*net.TCPConn).SetWriteBuffer(32 << 10)
			_ = b.(*net.TCPConn).SetReadBuffer(32 << 10)
			cfg := resolveConfig(0, 0, 0, 0, 10*time.Second, 0, false)
			w := newConn(a, client, cfg, "", nil, nil)
			r := newConn(b, !client, cfg, "", nil, nil)
			t.Cleanup(func() { w.CloseNow(); r.CloseNow() })
			if w.rawConn == nil {
				t.Fatal("a TCP connection should write through its RawConn")
			}
			blocked := &countBlocked{RawConn: w.rawConn}
			w.rawConn = blocked

			rng := rand.New(rand.NewPCG(1, 2))
			random := func(n int) []byte {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				return p
			}
			var want [][]byte
			want = append(want, random(1<<20), random(largeBufSize+1))
			for range 50 {
				want = append(want, random(3000))
			}
			prepared := random(100 << 10)
			streamed := random(200 << 10)

			ctx := context.Background()
			done := make(chan error, 1)
			go func() {
				for _, m := range want {
					if err := w.Write(ctx, MessageBinary, m); err != nil {
						done <- err
						return
					}
				}
				pm, err := NewPreparedMessage(MessageBinary, prepared)
				if err != nil {
					done <- err
					return
				}
				if err := w.WritePrepared(ctx, pm); err != nil {
					done <- err
					return
				}
				mw, err := w.Writer(ctx, MessageBinary)
				if err != nil {
					done <- err
					return
				}
				for p := streamed; len(p) > 0; p = p[min(len(p), 7000):] {
					if _, err := mw.Write(p[:min(len(p), 7000)]); err != nil {
						done <- err
						return
					}
				}
				done <- mw.Close()
			}()

			time.Sleep(100 * time.Millisecond) // the writer fills the buffers and waits
			for i, m := range append(want, prepared, streamed) {
				_, got, err := r.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(got, m) {
					t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(got), len(m))
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if blocked.n.Load() == 0 {
				t.Error("no write had to wait: the test did not test resuming")
			}
		})
	}
}

// countBlocked counts the RawConn.Write callbacks that would block.
type countBlocked struct {
	syscall.RawConn
	n atomic.Int32
}

func (c *countBlocked) Write(f func(fd uintptr) bool) error {
	return c.RawConn.Write(func(fd uintptr) bool {
		done := f(fd)
		if !done {
			c.n.Add(1)
		}
		return done
	})
}

// Errors of raw socket calls name the call, as net.Conn's do, and a write
// to a connection the peer reset fails (and fails the connection) rather
// than hanging or passing.
func TestSocketWriteErrors(t *testing.T) {
	a, b := tcpPair(t)
	w := newConn(a, false, resolveConfig(0, 0, 0, 0, 5*time.Second, 0, false), "", nil, nil)
	t.Cleanup(func() { w.CloseNow() })
	_ = b.(*net.TCPConn).SetLinger(0) // close sends a reset
	b.Close()
	ctx := context.Background()
	var err error
	for range 100 { // the first writes may land before the reset does
		if err = w.Write(ctx, MessageBinary, make([]byte, 1000)); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write error %v, want ECONNRESET or EPIPE", err)
	}
	t.Logf("write error: %v", err)
	if err := w.Write(ctx, MessageBinary, []byte("x")); err == nil {
		t.Fatal("the connection still writes after a failed write")
	}
}

// TestSocketResetInsideFrame: a TCP connection the peer resets (RST, not
// FIN) inside a frame fails the read with io.ErrUnexpectedEOF, as a cut
// does (1006, docs/security.md), whichever read meets the reset: the raw
// one for a large payload that bypasses the read buffer, the raw one that
// completes a partial frame header, or a read through TLS, which is not
// the socket path (the reset comes back from tls.Conn.Read wrapped).
func TestSocketResetInsideFrame(t *testing.T) {
	frame := clientFrame(OpBinary, make([]byte, 100000))
	cases := []struct {
		name string
		sent int // bytes of frame the peer sends before its reset
		tls  bool
	}{
		{"payload", 20000, false},
		{"header", 3, false},
		{"tls/payload", 20000, true},
		{"tls/header", 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			local, peer := tcpPair(t)
			var w io.Writer = peer
			if tc.tls {
				local, w = tlsPair(t, local, peer)
			}
			c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, time.Second, false), "", nil, nil)
			t.Cleanup(func() { c.CloseNow(); peer.Close() })
			if _, err := w.Write(frame[:tc.sent]); err != nil {
				t.Fatal(err)
			}
			// Linux keeps the bytes received before a reset readable;
			// the read after them meets the reset.
			_ = peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _, err := c.Read(ctx)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read after a reset inside a frame: %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

// tlsPair runs a TLS handshake over a TCP pair and returns the server end
// and the client end's writer; peer stays the client's TCP connection.
func tlsPair(t *testing.T, local, peer net.Conn) (net.Conn, io.Writer) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS() // for its certificate
	certs := srv.TLS.Certificates
	srv.Close()
	server := tls.Server(local, &tls.Config{Certificates: certs})
	client := tls.Client(peer, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return server, client
}
