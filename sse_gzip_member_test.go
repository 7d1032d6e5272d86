package wsrpc_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestSSEGzipMemberPerEvent: a typed SSE call through a proxy that codes
// each flush of the event stream as a gzip member of its own (RFC 1952
// §2.2), with the call's client over the default *http.Transport. The
// call's session sends through a transport of the typed layer's own
// (capture), so runtime/sse did not ask for gzip itself, net/http did,
// and decoded the body with its multistream gzip.Reader, which reads the
// next member's header before it returns the bytes that end a member:
// each event was held until the server wrote again — for ever, on a
// stream that then stays quiet. runtime/sse's own client had been fixed
// for this (TestClientGzipMemberPerEventTransportDecodes); typed calls
// were not. The server writes the second event only once the client has
// the first, or after a bound, which it reports.
func TestSSEGzipMemberPerEvent(t *testing.T) {
	got1 := make(chan struct{})
	var wrote2 atomic.Bool
	var asked atomic.Value
	base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		flushMember := func(s string) {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(s))
			zw.Close()
			w.Write(b.Bytes())
			w.(http.Flusher).Flush()
		}
		flushMember("event: note\nid: 1\ndata: \"a\"\n\n")
		select {
		case <-got1:
		case <-time.After(5 * time.Second): // the client is stuck: unstick it
		case <-r.Context().Done():
			return
		}
		wrote2.Store(true)
		flushMember("event: note\nid: 2\ndata: \"b\"\n\n")
		flushMember("event: wsrpc.end\nid: wsrpc.end\ndata: {}\n\n")
		<-r.Context().Done()
	}))
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := st.Receive()
	if err != nil || m.GetNote() != "a" {
		t.Fatalf("first response %v, %v", m, err)
	}
	if wrote2.Load() {
		t.Fatalf("the first event arrived only after the server wrote the second member (Accept-Encoding %q)", asked.Load())
	}
	close(got1)
	if m, err := st.Receive(); err != nil || m.GetNote() != "b" {
		t.Fatalf("second response %v, %v", m, err)
	}
}

// TestSSEGzipRefusalBody: a typed call's refusals read as plain text
// when gzip-coded, the first request's and a reconnection's, now that
// the call's session asks for gzip itself (TestSSEGzipMemberPerEvent)
// and net/http no longer decodes them.
func TestSSEGzipRefusalBody(t *testing.T) {
	refuse := func(w http.ResponseWriter, reason string) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(reason))
		zw.Close()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusForbidden)
		w.Write(b.Bytes())
	}
	for _, reconnection := range []bool{false, true} {
		var n atomic.Int32
		base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 && reconnection {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte("retry: 10\n\nevent: note\nid: 1\ndata: \"a\"\n\n"))
				return
			}
			refuse(w, "no entry today")
		}))
		c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := watchNotes(t, ctx, c, "a")
		cancel()
		if err == nil || !strings.Contains(err.Error(), "no entry today") {
			t.Errorf("reconnection %v: %v, want the refusal's reason", reconnection, err)
		}
	}
}
