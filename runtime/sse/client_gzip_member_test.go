package sse_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestClientGzipMemberPerEvent: a server (or proxy) that codes each flush
// as a gzip member of its own (RFC 1952 allows concatenated members). Each
// event is complete on the wire, but a multistream gzip.Reader that
// reaches a member's end together with its last bytes reads the next
// member's header before it returns them: the event was held until the
// server wrote again. Here the server writes the second event only once
// the client has the first, or after a bound, which it reports.
func TestClientGzipMemberPerEvent(t *testing.T) {
	gzipMemberPerEvent(t, http.Header{"Accept-Encoding": {"gzip"}})
}

// gzipMemberPerEvent runs TestClientGzipMemberPerEvent's exchange with
// header as ClientOptions.Header.
func gzipMemberPerEvent(t *testing.T, header http.Header) {
	t.Helper()
	gzipMemberPerEventWith(t, header, func(c *http.Client) *http.Client { return c })
}

// gzipMemberPerEventWith is gzipMemberPerEvent with the client that
// client makes of the test server's.
func gzipMemberPerEventWith(t *testing.T, header http.Header, client func(*http.Client) *http.Client) {
	t.Helper()
	got1 := make(chan struct{})
	var wrote2 atomic.Bool
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		writeFlush(w, gz1(t, "id: 1\ndata: a\n\n"))
		select {
		case <-got1:
		case <-time.After(5 * time.Second): // the client is stuck: unstick it
		case <-r.Context().Done():
			return
		}
		wrote2.Store(true)
		writeFlush(w, gz1(t, "id: 2\ndata: b\n\n"))
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sse.Connect(ctx, srv.URL, fast(sse.ClientOptions{HTTPClient: client(srv.Client()), Header: header}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.Data != "a" {
		t.Fatalf("first event %q, %v", ev.Data, err)
	}
	if wrote2.Load() {
		t.Fatal("the first event arrived only after the server wrote the second member")
	}
	close(got1)
	if ev, err := s.Next(); err != nil || ev.Data != "b" {
		t.Fatalf("second event %q, %v", ev.Data, err)
	}
}

// gz1 is s as one gzip member.
func gz1(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestClientGzipMemberPerEventTransportDecodes: as
// TestClientGzipMemberPerEvent, with the client's default request (no
// Accept-Encoding in Header) over an *http.Transport, which would ask for
// gzip and decode it itself with a multistream gzip.Reader: the client
// asks instead, and decodes member by member.
func TestClientGzipMemberPerEventTransportDecodes(t *testing.T) {
	gzipMemberPerEvent(t, nil)
}

// TestClientGzipMemberPerEventWrappedTransport: as
// TestClientGzipMemberPerEventTransportDecodes, over a RoundTripper that
// wraps the *http.Transport and says so with Unwrap (the typed wsrpc
// client's does): the client still asks for gzip itself, where it took
// the wrapper for a transport of its own and left net/http to decode.
func TestClientGzipMemberPerEventWrappedTransport(t *testing.T) {
	gzipMemberPerEventWith(t, nil, func(c *http.Client) *http.Client {
		return &http.Client{Transport: unwrapper{c.Transport}}
	})
}

// unwrapper is a RoundTripper wrapping another, which Unwrap returns.
type unwrapper struct{ rt http.RoundTripper }

func (u unwrapper) RoundTrip(r *http.Request) (*http.Response, error) { return u.rt.RoundTrip(r) }
func (u unwrapper) Unwrap() http.RoundTripper                         { return u.rt }
