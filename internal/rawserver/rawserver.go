// Package rawserver answers HTTP requests with bytes a test writes
// itself, for tests of what a client does with an answer net/http's
// server would not send: a control character in the status line, a body
// that stalls or trickles. It plays a hostile server; nothing outside
// tests uses it.
package rawserver

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A refusal as a hostile server writes it: a status line and a body that
// would turn a terminal red, clear it, set its title, forge a second log
// line (of the CLI's, "wsrpc sse: …") and reverse what follows, printed
// raw. Escaped* are the same through peertext.OneLine.
const (
	Status        = "400 Bad \x1b[2JRequest"
	Body          = "room \x1b[31mis\x1b[0m required\x1b]0;pwned\x07\r\nwsrpc sse: fake line\u202e"
	EscapedStatus = `400 Bad \u001b[2JRequest`
	EscapedBody   = `room \u001b[31mis\u001b[0m required\u001b]0;pwned\u0007  wsrpc sse: fake line\u202e`
)

// Start listens on 127.0.0.1 and, for each connection, reads one request
// and calls answer with the connection and the request, then closes the
// connection. It returns the listener's address (host:port). The
// listener and every connection still open are closed when the test
// ends, which also ends an answer blocked on the connection (see Hold).
func Start(t testing.TB, answer func(c net.Conn, r *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				r, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				answer(c, r)
			}()
		}
	}()
	return ln.Addr().String()
}

// Refuse writes the hostile refusal (Status, Body) to c, with header
// (each field ending in CRLF, "" for none) after the status line.
func Refuse(c net.Conn, header string) {
	_, _ = c.Write([]byte("HTTP/1.1 " + Status + "\r\n" + header +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(Body)) +
		"\r\nConnection: close\r\n\r\n" + Body))
}

// Hold waits for the client to close c, or for the test's end to: an
// answer that stops writing in the middle of a body. It gives up after
// 20 seconds, so that a client that never leaves fails its test rather
// than hang it.
func Hold(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}
