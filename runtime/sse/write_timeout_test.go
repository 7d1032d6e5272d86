package sse_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// A client that stops reading fails the send after WriteTimeout instead of
// blocking the sender.
func TestStreamWriteTimeout(t *testing.T) {
	result := make(chan error, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: 200 * time.Millisecond})
		if err != nil {
			result <- err
			return
		}
		defer s.Close()
		data := strings.Repeat("x", 64<<10)
		for i := 0; i < 10000; i++ { // bounded: 640 MiB would outlast any socket buffer
			if err := s.Send(sse.Event{Data: data}); err != nil {
				result <- err
				return
			}
		}
		result <- errors.New("every send succeeded")
	}))
	openNotReading(t, srv.Listener.Addr().String())
	// Now read nothing more.
	select {
	case err := <-result:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("send error %v, want a write deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the send never failed")
	}
}

// With no WriteTimeout set, the default applies where the writer supports
// deadlines and is skipped where it does not; an explicit one must apply;
// a negative one turns deadlines off.
func TestStreamWriteTimeoutDefault(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	s, err := sse.NewStream(httptest.NewRecorder(), req, nil) // no deadline support
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(sse.Event{Data: "a"}); err != nil {
		t.Fatalf("default timeout on a writer without deadlines: %v", err)
	}
	if got := sse.WriteTimeoutOf(s); got != 0 {
		t.Errorf("timeout %v after a writer without deadlines, want 0", got)
	}
	// Checked before the response head is written (TestStreamFailsBeforeStatus).
	if _, err := sse.NewStream(httptest.NewRecorder(), req, &sse.StreamOptions{WriteTimeout: time.Second}); !errors.Is(err, http.ErrNotSupported) ||
		errors.Is(err, sse.ErrFlushUnsupported) {
		t.Errorf("explicit timeout on a writer without deadlines: %v, want ErrNotSupported and not ErrFlushUnsupported", err)
	}
	s, err = sse.NewStream(httptest.NewRecorder(), req, &sse.StreamOptions{WriteTimeout: -1})
	if err != nil || s.Send(sse.Event{Data: "a"}) != nil || sse.WriteTimeoutOf(s) != 0 {
		t.Errorf("negative timeout: %v", err)
	}
	got := make(chan time.Duration, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, nil)
		if err != nil {
			got <- -1
			return
		}
		defer s.Close()
		_ = s.Send(sse.Event{Data: "a"})
		got <- sse.WriteTimeoutOf(s)
	}))
	rawGet(t, srv.URL, nil)
	if d := <-got; d != sse.DefaultWriteTimeout {
		t.Errorf("timeout on a real server %v, want %v", d, sse.DefaultWriteTimeout)
	}
}

// WriteTimeout bounds each write, not the quiet between events: over
// HTTP/2 a write deadline left set is a timer that resets the stream when
// it fires, so a stream idle for longer than WriteTimeout must stay open.
func TestStreamWriteTimeoutIdleHTTP2(t *testing.T) {
	second := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: 100 * time.Millisecond})
		if err != nil {
			second <- err
			return
		}
		defer s.Close()
		if err := s.Send(sse.Event{Data: "a"}); err != nil {
			second <- err
			return
		}
		select { // idle for several write timeouts
		case <-time.After(400 * time.Millisecond):
		case <-r.Context().Done():
		}
		second <- s.Send(sse.Event{Data: "b"})
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	p := sse.NewParser(resp.Body, nil)
	for _, want := range []string{"a", "b"} {
		ev, err := p.Next()
		if err != nil || ev.Data != want {
			t.Fatalf("event %+v, %v; want data %q (the server's second send: %v)", ev, err, want, <-second)
		}
	}
	if err := <-second; err != nil {
		t.Fatalf("second send after the idle time: %v", err)
	}
}

// openNotReading sends an event-stream request over a raw connection and
// reads the response's head, and nothing more: a client that stopped
// reading. The connection closes when the test ends.
func openNotReading(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("response: %v %v", resp, err)
	}
	return nc
}
