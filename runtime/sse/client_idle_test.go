package sse_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// darkAfter serves like rc.handler, except that a response does not end
// after its body: the server then sends nothing more and keeps the
// connection open until the client goes away, which is all a client sees
// of a path gone dark (no FIN, no RST). A body that writes nothing sends
// not even the response header.
func darkAfter(rc *rawConns, t *testing.T, bodies ...func(w http.ResponseWriter)) http.Handler {
	h := rc.handler(t, bodies...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		<-r.Context().Done()
	})
}

// noAnswer writes nothing: the request is never answered.
func noAnswer(http.ResponseWriter) {}

// TestClientIdleTimeoutReconnects guards ClientOptions.IdleTimeout: a
// connection on which nothing arrives for that long, neither more of the
// stream nor the answer to a request, is taken for lost, as a path gone
// dark that TCP would not notice for minutes. The client reconnects as
// after a dropped stream (WHATWG HTML §9.2.3), with Last-Event-ID, and
// reports the silent attempt with ErrIdleTimeout. Without it the client
// waited for ever on the first connection.
func TestClientIdleTimeoutReconnects(t *testing.T) {
	var rc rawConns
	srv := newServer(t, darkAfter(&rc, t,
		stream("id: 1\ndata: a\n\n"), // then silence
		noAnswer,
		stream("id: 2\ndata: b\n\n"),
	))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var attempts []string // OnReconnect runs on the goroutine calling Next
	var attemptErr error
	s, err := sse.Connect(ctx, srv.URL, &sse.ClientOptions{
		IdleTimeout:      500 * time.Millisecond,
		ReconnectionTime: time.Millisecond,
		OnReconnect: func(attempt int, err error) {
			attempts = append(attempts, fmt.Sprint(attempt, " ", err))
			if attemptErr == nil {
				attemptErr = err
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []string{"1:a", "2:b"} {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("Next = %v, want event %s (reconnections: %q)", err, want, attempts)
		}
		if got := ev.ID + ":" + ev.Data; got != want {
			t.Fatalf("event %s, want %s", got, want)
		}
	}
	if len(attempts) != 2 || !errors.Is(attemptErr, sse.ErrIdleTimeout) || !strings.Contains(attemptErr.Error(), "no data for 500ms") {
		t.Fatalf("OnReconnect calls %q, want the unanswered request's idle timeout, then a stream", attempts)
	}
	for i := 1; i <= 2; i++ {
		if got := rc.header(i, "Last-Event-ID"); got != "1" {
			t.Errorf("request %d Last-Event-ID = %q, want 1", i, got)
		}
	}
}

// darkProxy forwards TCP connections to target; blackhole makes the ones
// open at the time go dark: from then on their bytes are read and
// dropped in both directions, and nothing is closed (no FIN, no RST), as
// when a load balancer or NAT loses a connection's state. Connections
// opened later go through.
type darkProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*darkConn
}

type darkConn struct {
	client, server net.Conn
	dark           atomic.Bool
}

func newDarkProxy(t *testing.T, target string) *darkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &darkProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *darkProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &darkConn{client: client, server: server}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, server, client)
		go p.pipe(c, client, server)
	}
}

func (p *darkProxy) pipe(c *darkConn, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 && !c.dark.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && !c.dark.Load() {
				tc.CloseWrite() // pass a half-close on as a FIN
			}
			return
		}
	}
}

func (p *darkProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.dark.Store(true)
	}
}

// TestClientIdleTimeoutBlackhole: the fault itself, with the server
// sending heartbeat comments (WHATWG HTML §9.2.7) as it should: the path
// to it goes dark, which TCP does not report for many minutes; the client
// with IdleTimeout at a few heartbeats reconnects, with Last-Event-ID, on
// a new connection and carries on. It used to wait for ever.
func TestClientIdleTimeoutBlackhole(t *testing.T) {
	var lastIDs []string // of each request
	var mu sync.Mutex
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		st, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: 50 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer st.Close()
		st.Send(sse.Event{ID: fmt.Sprint(n), Data: fmt.Sprint("event ", n)})
		<-r.Context().Done()
	}))
	proxy := newDarkProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var attempts []string
	s, err := sse.Connect(ctx, "http://"+proxy.ln.Addr().String(), &sse.ClientOptions{
		IdleTimeout:      500 * time.Millisecond,
		ReconnectionTime: time.Millisecond,
		OnReconnect:      func(attempt int, err error) { attempts = append(attempts, fmt.Sprint(attempt, " ", err)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ev, err := s.Next(); err != nil || ev.Data != "event 1" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	proxy.blackhole()
	if ev, err := s.Next(); err != nil || ev.Data != "event 2" {
		t.Fatalf("Next after the blackhole = %+v, %v; want event 2 from a new connection", ev, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastIDs) != 2 || lastIDs[1] != "1" || len(attempts) != 1 || attempts[0] != "1 <nil>" {
		t.Fatalf("requests with Last-Event-ID %q, OnReconnect calls %q; want one reconnection, resuming after 1", lastIDs, attempts)
	}
}

// TestClientIdleTimeoutBlackholeHTTP2 guards the advice of
// ClientOptions.IdleTimeout for HTTP/2: the idle timeout resets only its
// stream, and the transport keeps the dead connection for the next
// request (reconnections timed out on it, one after the other); with the
// transport's own health check set (RFC 9113 §6.7 PING), that connection
// is closed and the client carries on over a new one.
func TestClientIdleTimeoutBlackholeHTTP2(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, want HTTP/2", r.Proto)
		}
		st, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: 50 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer st.Close()
		st.Send(sse.Event{ID: fmt.Sprint(n), Data: fmt.Sprint("event ", n)})
		<-r.Context().Done()
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	proxy := newDarkProxy(t, strings.TrimPrefix(srv.URL, "https://"))
	hc := srv.Client()
	// The health check pings after 1.5 s without a frame, so the idle
	// timeout comes first, and its reconnection goes out on the dead
	// connection until the unanswered ping closes it.
	hc.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{SendPingTimeout: 1500 * time.Millisecond, PingTimeout: 300 * time.Millisecond}
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sse.Connect(ctx, "https://"+proxy.ln.Addr().String(), &sse.ClientOptions{
		HTTPClient:       hc,
		IdleTimeout:      time.Second, // well above a TLS handshake under -race
		ReconnectionTime: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ev, err := s.Next(); err != nil || ev.Data != "event 1" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	proxy.blackhole()
	if ev, err := s.Next(); err != nil || ev.Data != "event 2" || ev.ID != "2" {
		t.Fatalf("Next after the blackhole = %+v, %v; want event 2 from a new connection", ev, err)
	}
}

// TestClientIdleTimeoutError: the idle timeout is reported as such, not
// as the "context canceled" of the request it cancels, by a session that
// does not reconnect and by Connect when the first request goes
// unanswered; within MaxReconnectionAttempts it counts as a failed
// attempt like any network failure.
func TestClientIdleTimeoutError(t *testing.T) {
	const idle = 250 * time.Millisecond
	for _, tt := range []struct {
		name   string
		bodies []func(http.ResponseWriter)
		opts   sse.ClientOptions
		events int
		limit  bool // ErrReconnectLimit
	}{
		{"no reconnection", []func(http.ResponseWriter){stream("data: a\n\n")}, sse.ClientOptions{MaxReconnectionAttempts: -1}, 1, false},
		{"first request unanswered", []func(http.ResponseWriter){noAnswer}, sse.ClientOptions{}, 0, false},
		{"reconnections unanswered", []func(http.ResponseWriter){stream("data: a\n\n"), noAnswer}, sse.ClientOptions{MaxReconnectionAttempts: 2}, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, darkAfter(&rc, t, tt.bodies...))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			opts := fast(tt.opts)
			opts.IdleTimeout = idle
			s, err := sse.Connect(ctx, srv.URL, opts)
			if err == nil {
				defer s.Close()
				for range tt.events {
					if _, err := s.Next(); err != nil {
						t.Fatal(err)
					}
				}
				_, err = s.Next()
			}
			if !errors.Is(err, sse.ErrIdleTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, sse.ErrReconnectLimit) != tt.limit {
				t.Fatalf("err = %v, want ErrIdleTimeout (ErrReconnectLimit: %v)", err, tt.limit)
			}
			if want := "sse: idle timeout: no data for 250ms"; !strings.HasSuffix(err.Error(), want) {
				t.Errorf("err = %q, want it to end with %q", err, want)
			}
		})
	}
}

// TestClientIdleTimeoutKeepsLiveConnection: IdleTimeout cuts off only a
// silent connection. Heartbeat comments (WHATWG HTML §9.2.7) arriving
// more often keep it, shown or hidden; a consumer that takes longer than
// IdleTimeout over an event is not the server's silence; and without the
// option (0, or negative as for the other options) a silent stream is
// waited on, as in browsers.
func TestClientIdleTimeoutKeepsLiveConnection(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, tt := range []struct {
		name      string
		heartbeat time.Duration
		opts      sse.ClientOptions
		pause     bool // the consumer holds the first event for 3 × idle
	}{
		{"heartbeats hidden", 20 * time.Millisecond, sse.ClientOptions{IdleTimeout: idle}, false},
		{"heartbeats shown", 20 * time.Millisecond, sse.ClientOptions{IdleTimeout: idle, ShowCommentEvents: true}, false},
		{"slow consumer", 20 * time.Millisecond, sse.ClientOptions{IdleTimeout: idle, ShowCommentEvents: true}, true},
		{"no limit", 0, sse.ClientOptions{}, false},
		{"negative: no limit", 0, sse.ClientOptions{IdleTimeout: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				st, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: tt.heartbeat})
				if err != nil {
					t.Error(err)
					return
				}
				defer st.Close()
				st.Send(sse.Event{ID: "1", Data: "a"})
				<-r.Context().Done()
			}))
			s, err := sse.Connect(context.Background(), srv.URL, fast(tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close() // the handler waits for the client to go
			if tt.opts.ShowCommentEvents {
				// The stream's opening comment (see NewStream).
				if ev, err := s.Next(); err != nil || ev.Type != "" || ev.Comment != "open" {
					t.Fatalf("Next = %+v, %v; want the opening comment", ev, err)
				}
			}
			if ev, err := s.Next(); err != nil || ev.Data != "a" {
				t.Fatalf("Next = %+v, %v", ev, err)
			}
			if tt.pause {
				time.Sleep(3 * idle) // heartbeats pile up unread meanwhile
			}
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := s.Next(); err != nil {
						done <- err
						return
					}
				}
			}()
			time.Sleep(3 * idle) // time for a wrong reconnection
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1: the live connection was dropped", n)
			}
			closeEndsNext(t, s, done)
		})
	}
}
