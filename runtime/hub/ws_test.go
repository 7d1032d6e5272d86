package hub_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

var allSubprotocols = []string{codec.SubprotocolProto, codec.SubprotocolJSON, codec.SubprotocolMsgpack}

// wsServer serves tp's WebSocket endpoint on 127.0.0.1.
func wsServer(t testing.TB, tp *hub.Topic[msg], opts *websocket.AcceptOptions) string {
	t.Helper()
	if opts == nil {
		opts = &websocket.AcceptOptions{}
	}
	opts.Subprotocols = allSubprotocols
	if opts.Extensions == nil {
		opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: -1}))
	}
	srv := httptest.NewServer(tp.WebSocketHandler(opts, nil))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

type wsClient struct {
	conn  *websocket.Conn
	codec codec.Codec
}

func dialClient(t testing.TB, url string, i int) wsClient {
	t.Helper()
	sp := allSubprotocols[i%3]
	opts := &websocket.DialOptions{Subprotocols: []string{sp}}
	switch i % 4 { // deflate with and without context takeover, or none
	case 1:
		opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
	case 2:
		opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerNoContextTakeover: true}))
	}
	c, _, err := websocket.Dial(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != sp {
		t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), sp)
	}
	cd, _ := codec.BySubprotocol(sp)
	return wsClient{c, cd}
}

// read reads one message and decodes it with the client's codec,
// checking the frame type matches the codec.
func (c wsClient) read(ctx context.Context) (string, error) {
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return "", err
	}
	if want := websocket.MessageBinary; !c.codec.Binary() && typ != websocket.MessageText || c.codec.Binary() && typ != want {
		return "", errors.New("frame type " + typ.String() + " for codec " + c.codec.Name())
	}
	m := &wrapperspb.StringValue{}
	if err := c.codec.Unmarshal(b, m); err != nil {
		return "", err
	}
	return m.GetValue(), nil
}

// waitSubscribers waits until tp has n subscribers (the server handlers
// subscribe after the handshake).
func waitSubscribers(t testing.TB, tp *hub.Topic[msg], n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" subscribers", func() bool { return tp.Stats().Subscribers == n })
}

// TestWebSocketFanOut: 200 real connections over loopback, with the three
// codecs and permessage-deflate with and without context takeover, all
// receive every message in order, each decoded by its own codec.
func TestWebSocketFanOut(t *testing.T) {
	const conns, msgs = 200, 50
	tp := newTopic(t, newHub(t, nil, "a"), "ws", nil)
	url := wsServer(t, tp, nil)
	clients := make([]wsClient, conns)
	for i := range clients {
		clients[i] = dialClient(t, url, i)
	}
	waitSubscribers(t, tp, conns)
	long := strings.Repeat("x", 300) // above the compression threshold
	go func() {
		for i := range msgs {
			if err := tp.Publish(context.Background(), wrapperspb.String(long+strconv.Itoa(i))); err != nil {
				t.Error(err)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, c := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range msgs {
				got, err := c.read(ctx)
				if err != nil {
					errs <- err
					return
				}
				if want := long + strconv.Itoa(i); got != want {
					errs <- errors.New("got " + got[len(long):] + ", want " + strconv.Itoa(i))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
	waitSubscribers(t, tp, 0)
	// A delivery is counted after its write returns.
	waitFor(t, "deliveries counted", func() bool { return tp.Stats().Delivered == conns*msgs })
	if st := tp.Stats(); st.Dropped != 0 || st.EncodeErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDefaultQueueAbsorbsBurst: a topic with the default queue absorbs a
// burst (a publish loop; the publishes nats.go buffered during an outage
// and flushes as one burst on reconnection) that arrives faster than its
// subscribers drain, under both policies: a subscriber held for the
// whole burst of 1,000 gets every message, in order, and healthy
// loopback WebSocket clients get a burst of 200 1 KiB messages whole.
// With the former default of 64, healthy loopback clients lost 23–143
// messages of such bursts (DropOldest) or were disconnected as slow
// consumers (Disconnect).
func TestDefaultQueueAbsorbsBurst(t *testing.T) {
	for _, policy := range []hub.Policy{hub.DropOldest, hub.Disconnect} {
		t.Run(policy.String(), func(t *testing.T) {
			tp := newTopic(t, newHub(t, nil, "a"), "burst", &hub.TopicOptions[msg]{Policy: policy})

			// A subscriber that cannot drain while the burst arrives.
			const held = 1000
			release := make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			defer unblock() // before the hub's cleanup waits for the writer
			checker := &orderChecker{}
			check := checker.fn("h")
			sub, err := tp.SubscribeFunc(func(m msg) error {
				<-release
				return check(m)
			})
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, tp, "h", 0, held)
			unblock()
			waitFor(t, "the held subscriber to drain", func() bool {
				return checker.count()+int(sub.Dropped()) == held || sub.Err() != nil
			})
			if checker.err != nil || sub.Err() != nil || sub.Dropped() != 0 {
				t.Fatalf("held through a burst of %d: got %d, order %v, Err %v, dropped %d", held, checker.count(), checker.err, sub.Err(), sub.Dropped())
			}
			sub.Close()

			// Loopback clients that read all along.
			const conns, msgs = 10, 200
			srv := httptest.NewServer(tp.WebSocketHandler(&websocket.AcceptOptions{
				Subprotocols: []string{codec.SubprotocolProto},
				Extensions:   websocket.MustExtensionSet(),
			}, nil))
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs := make(chan error, conns)
			for range conns {
				c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.CloseNow() })
				go func() {
					for i := range msgs {
						_, b, err := c.Read(ctx)
						if err != nil {
							errs <- fmt.Errorf("message %d: %w", i, err)
							return
						}
						m := &wrapperspb.StringValue{}
						if err := proto.Unmarshal(b, m); err != nil || m.GetValue() != "w"+strconv.Itoa(i)+line1K {
							errs <- fmt.Errorf("message %d: got %.12q…, %v", i, m.GetValue(), err)
							return
						}
					}
					errs <- nil
				}()
			}
			waitSubscribers(t, tp, conns)
			for i := range msgs {
				if err := tp.Publish(ctx, wrapperspb.String("w"+strconv.Itoa(i)+line1K)); err != nil {
					t.Fatal(err)
				}
			}
			for range conns {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			if st := tp.Stats(); st.Dropped != 0 || st.Disconnected != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

var line1K = strings.Repeat("x", 1024)

// TestWebSocketConnectionLoss: a client that vanishes without a close
// frame is removed by the failed write (or by its handler's failed read)
// and leaves nothing behind; the others keep receiving.
func TestWebSocketConnectionLoss(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "loss", nil)
	url := wsServer(t, tp, nil)
	gone, stay := dialClient(t, url, 0), dialClient(t, url, 3)
	defer stay.conn.CloseNow()
	waitSubscribers(t, tp, 2)
	gone.conn.CloseNow()
	for i := 0; tp.Stats().Subscribers != 1; i++ {
		publishN(t, tp, "m", i, i+1)
		if _, err := stay.read(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i > 10000 {
			t.Fatal("the lost connection is still subscribed")
		}
	}
}

// TestStatsFailedWebSocket guards Stats.Failed: a WebSocket subscriber
// that a write removed — the client stopped reading, past the
// connection's write timeout, or its TCP connection was cut — is counted
// in Failed, once, and in nothing else; such subscribers used to count
// nowhere (Subscribers fell, Disconnected stayed 0). A subscription that
// ends otherwise is not counted: closed with Close, or whose connection
// the server closed (a closing handshake, RFC 6455 §7) before the write.
func TestStatsFailedWebSocket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stall  func(client, server *websocket.Conn) // before publishing
		failed uint64
	}{
		{"write timeout", func(client, server *websocket.Conn) {}, 1}, // the client never reads
		{"connection cut", func(client, server *websocket.Conn) { client.CloseNow() }, 1},
		{"closed by the server", func(client, server *websocket.Conn) {
			go func() { // answers the close frame
				for {
					if _, _, err := client.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			server.Close(websocket.StatusNormalClosure, "")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopic(t, newHub(t, nil, "a"), "failed", &hub.TopicOptions[msg]{QueueSize: 4})
			type accepted struct {
				conn *websocket.Conn
				sub  *hub.Subscription
			}
			subs := make(chan accepted, 2)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
					Subprotocols: []string{codec.SubprotocolProto},
					Extensions:   websocket.MustExtensionSet(), // the messages reach the socket as they are
					WriteTimeout: 200 * time.Millisecond,
				})
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(func() { c.CloseNow() })
				sub, err := tp.SubscribeWebSocket(c, nil)
				if err != nil {
					t.Error(err)
					return
				}
				subs <- accepted{c, sub}
			}))
			t.Cleanup(srv.Close)
			dial := func() (*websocket.Conn, accepted) {
				c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"),
					&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.CloseNow() })
				return c, <-subs
			}
			// A client that reads everything, ended by Close while the
			// topic publishes: never counted.
			reader, kept := dial()
			go func() {
				for {
					if _, _, err := reader.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			client, failing := dial()
			tc.stall(client, failing.conn)

			publishUntilDone(t, tp, failing.sub)
			if failing.sub.Err() == nil {
				t.Fatal("the subscription ended without an error")
			}
			st := tp.Stats()
			if st.Failed != tc.failed || st.Disconnected != 0 || st.Subscribers != 1 {
				t.Fatalf("after %v: stats %+v, want Failed %d, Disconnected 0, Subscribers 1", failing.sub.Err(), st, tc.failed)
			}
			publishN(t, tp, "after", 0, 10)
			if err := kept.sub.Close(); err != nil {
				t.Fatal(err)
			}
			publishN(t, tp, "after", 10, 20)
			if st := tp.Stats(); st.Failed != tc.failed || st.Subscribers != 0 {
				t.Fatalf("after Close: stats %+v, want Failed %d, Subscribers 0", st, tc.failed)
			}
		})
	}
}

// publishUntilDone publishes 64 KiB messages on tp until sub ends: a
// client that does not read fills the TCP buffers, then a write blocks.
func publishUntilDone(t *testing.T, tp *hub.Topic[msg], sub *hub.Subscription) {
	t.Helper()
	big := wrapperspb.String(strings.Repeat("f", 64<<10))
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-sub.Done():
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription did not end; stats %+v", tp.Stats())
		}
		if err := tp.Publish(context.Background(), big); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWebSocketDisconnectPolicy: a client that stops reading fills the TCP
// buffers, then its queue, and is closed with the topic's close code; it
// reads what was already sent, then the close frame. A reading client on
// the same topic is not affected.
func TestWebSocketDisconnectPolicy(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "slow", &hub.TopicOptions[msg]{
		QueueSize: 4, Policy: hub.Disconnect, CloseCode: websocket.StatusPolicyViolation, CloseReason: "too slow",
	})
	url := wsServer(t, tp, &websocket.AcceptOptions{Extensions: websocket.MustExtensionSet()})
	slow, fast := dialClient(t, url, 0), dialClient(t, url, 3)
	defer slow.conn.CloseNow()
	defer fast.conn.CloseNow()
	waitSubscribers(t, tp, 2)

	// The fast client acknowledges every message, and the next is
	// published only then: it never lags, so only the stalled client's
	// queue can overflow.
	acks := make(chan struct{})
	fastDone := make(chan error, 1)
	go func() {
		for {
			if _, err := fast.read(context.Background()); err != nil {
				fastDone <- err
				return
			}
			acks <- struct{}{}
		}
	}()
	timeout := time.After(20 * time.Second)
	big := strings.Repeat("y", 64<<10)
	sent := 0
	for tp.Stats().Disconnected == 0 {
		publishN(t, tp, big, sent, sent+1)
		sent++
		select {
		case <-acks:
		case err := <-fastDone:
			t.Fatalf("the reading client failed after %d messages: %v", sent, err)
		case <-timeout:
			t.Fatalf("no disconnection after %d messages", sent)
		}
	}
	// Disconnect's close fails the write in progress, if any: that is
	// no failed write (Stats.Failed).
	if st := tp.Stats(); st.Subscribers != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, err = slow.read(ctx)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "too slow" {
		t.Fatalf("slow client: %v, want close 1008 \"too slow\"", err)
	}
	fast.conn.Close(websocket.StatusNormalClosure, "")
	if err := <-fastDone; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("the reading client ended with %v", err)
	}
	waitSubscribers(t, tp, 0)
}

// TestWebSocketCodecChoice: SubscribeWebSocket takes the codec of the
// negotiated subprotocol, and refuses a connection without one unless a
// codec is given.
func TestWebSocketCodecChoice(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "codec", nil)
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, err = tp.SubscribeWebSocket(c, nil)
		result <- err
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := <-result; !errors.Is(err, hub.ErrNoCodec) {
		t.Fatalf("no subprotocol, no codec: %v", err)
	}
}

// TestWebSocketHandlerOffersCodecSubprotocols: with no Subprotocols in
// its options (nil options, or options that only set OriginPatterns, as
// docs/security.md has a user do), WebSocketHandler answers a client's
// "wsrpc.json" or "wsrpc.msgpack" as the typed handlers do: a browser
// fails a connection whose response selects none of the subprotocols it
// offered (it saw 1006, "no response was received"). The messages come
// in that codec. An empty, non-nil list offers none.
func TestWebSocketHandlerOffersCodecSubprotocols(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *websocket.AcceptOptions
	}{
		{"nil options", nil},
		{"options without subprotocols", &websocket.AcceptOptions{OriginPatterns: []string{"example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopic(t, newHub(t, nil, "a"), "offer", nil)
			srv := httptest.NewServer(tp.WebSocketHandler(tc.opts, nil))
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			clients := make([]wsClient, len(allSubprotocols))
			for i := range clients {
				clients[i] = dialClient(t, url, i*4) // no deflate; dialClient checks the subprotocol
				defer clients[i].conn.CloseNow()
			}
			waitSubscribers(t, tp, len(clients))
			publishN(t, tp, "m", 0, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, c := range clients {
				if got, err := c.read(ctx); err != nil || got != "m0" {
					t.Fatalf("%s: %q, %v", c.codec.Name(), got, err)
				}
			}
		})
	}
	t.Run("empty subprotocols", func(t *testing.T) {
		tp := newTopic(t, newHub(t, nil, "a"), "none", nil)
		srv := httptest.NewServer(tp.WebSocketHandler(&websocket.AcceptOptions{Subprotocols: []string{}}, nil))
		defer srv.Close()
		c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolJSON}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if c.Subprotocol() != "" {
			t.Fatalf("empty Subprotocols: negotiated %q", c.Subprotocol())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
			t.Fatalf("no subprotocol and no codec: %v, want 1003", err)
		}
	})
}

// Subscribers of WebSocketHandler hold no goroutine while idle (the hub's
// poller reads them); they still get every message, a client's close ends
// its subscription, and Hub.Close closes the rest.
func TestWebSocketHandlerIdleSubscribers(t *testing.T) {
	h := newHub(t, nil, "a")
	tp := newTopic(t, h, "idle", nil)
	url := wsServer(t, tp, nil)
	base := runtime.NumGoroutine()
	const n = 200
	clients := make([]wsClient, n)
	for i := range clients {
		clients[i] = dialClient(t, url, i)
	}
	waitFor(t, "subscriptions", func() bool { return tp.Stats().Subscribers == n })
	// Idle workers of the poller, its dispatcher and the HTTP server's.
	slack := 4*runtime.GOMAXPROCS(0) + 16
	waitFor(t, "handlers to return", func() bool { return runtime.NumGoroutine() <= base+slack })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Publish(ctx, wrapperspb.String("to all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if got, err := c.read(ctx); err != nil || got != "to all" {
			t.Fatalf("client %d: %q %v", i, got, err)
		}
	}
	for _, c := range clients[:n/2] {
		if err := c.conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "closed subscriptions to end", func() bool { return tp.Stats().Subscribers == n/2 })
	h.Close()
	for i, c := range clients[n/2:] {
		if _, err := c.read(ctx); err == nil {
			t.Fatalf("client %d still open after Hub.Close", i)
		}
	}
}

// Hub.Shutdown closes the subscribers of a WebSocketHandler endpoint with
// the closing handshake: each client reads 1001, then its connection ends.
func TestHubShutdownClosesSubscribersWith1001(t *testing.T) {
	h := newHub(t, nil, "a")
	tp := newTopic(t, h, "leaving", nil)
	url := wsServer(t, tp, nil)
	const n = 10
	clients := make([]wsClient, n)
	for i := range clients {
		clients[i] = dialClient(t, url, i)
	}
	waitFor(t, "subscriptions", func() bool { return tp.Stats().Subscribers == n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, c := range clients {
		_, err := c.read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client %d: %v, want close code 1001", i, err)
		}
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

// stalledWriteTimeout is the write timeout of stalledHandlerClient's
// connections: long enough that a Close or Shutdown that waited for it
// could not pass the tests below by a wide margin.
const stalledWriteTimeout = 20 * time.Second

// stalledHandlerClient serves tp with WebSocketHandler (no compression,
// write timeout stalledWriteTimeout), connects one client that never
// reads, and publishes large messages until the subscriber's writer is
// blocked in a write, which shows as Delivered no longer moving while the
// queue is not empty.
func stalledHandlerClient(t *testing.T, tp *hub.Topic[msg]) {
	t.Helper()
	srv := httptest.NewServer(tp.WebSocketHandler(&websocket.AcceptOptions{
		Subprotocols: []string{codec.SubprotocolProto},
		Extensions:   websocket.MustExtensionSet(),
		WriteTimeout: stalledWriteTimeout,
	}, nil))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	waitSubscribers(t, tp, 1)
	big := wrapperspb.String(strings.Repeat("z", 256<<10))
	last, still := uint64(0), 0
	for i := 0; i < 400 && still < 10; i++ { // at most 100 MiB
		if err := tp.Publish(context.Background(), big); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if d := tp.Stats().Delivered; d == last {
			still++
		} else {
			last, still = d, 0
		}
	}
	if still < 10 {
		t.Fatal("the subscriber's writer never blocked")
	}
}

// Hub.Shutdown returns once its ctx is done, as documented ("until ctx is
// done"), even when the topics it closes first wait for writes stalled on
// clients that stopped reading: it closes the hub's connections under
// those writes rather than waiting out their write timeouts.
func TestHubShutdownReturnsWithCtxOverStalledWrites(t *testing.T) {
	h := newHub(t, nil, freshNode("shut"))
	for i := range 2 {
		tp := newTopic(t, h, "stall"+strconv.Itoa(i), &hub.TopicOptions[msg]{QueueSize: 1024})
		stalledHandlerClient(t, tp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.Shutdown(ctx)
	// Generous: only waiting out the write timeout takes this long.
	if el := time.Since(start); el > stalledWriteTimeout/2 {
		t.Errorf("Shutdown with a 200ms ctx took %v: it waited for the stalled writes", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want ctx's error", err)
	}
}

// Hub.Shutdown sends 1001 (going away, RFC 6455 §7.4.1) to every healthy
// subscriber of a WebSocketHandler endpoint while another subscriber,
// which stopped reading, holds a write, with a deadline far below that
// write's timeout and the connections' close timeout. Before, Shutdown
// closed the topics first, each waiting for its writes in progress; the
// stalled one held it until ctx ended, and every connection of the hub
// was then cut without a close frame (1006). It also guards that no
// message follows the close frame (RFC 6455 §5.5.1) though messages were
// still queued and being written when Shutdown began.
func TestHubShutdownStalledSubscriberDoesNotCostOthers1001(t *testing.T) {
	h := newHub(t, nil, freshNode("stall1001"))
	tp := newTopic(t, h, "stall", nil)
	stalledHandlerClient(t, tp)
	srv := httptest.NewServer(tp.WebSocketHandler(&websocket.AcceptOptions{
		Subprotocols: []string{codec.SubprotocolProto},
		Extensions:   websocket.MustExtensionSet(),
	}, nil))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const healthy = 12
	results := make(chan error, healthy)
	for i := range healthy {
		// Raw, to see every frame in order, the close frame included.
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
			&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}, Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		go func() { results <- readUntilGoingAway(ctx, c, i) }()
	}
	waitSubscribers(t, tp, healthy+1)
	// Queued for the healthy subscribers as Shutdown begins: some is being
	// written, the rest must not follow the close frame.
	publishN(t, tp, "burst", 0, 200)
	sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
	defer scancel()
	if err := h.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		// The stalled client cannot answer within the deadline.
		t.Errorf("Shutdown = %v, want ctx's error", err)
	}
	for range healthy {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
}

// readUntilGoingAway reads the frames of raw client i until its
// connection ends, answering the server's close frame. It fails unless
// that close frame came, with 1001, and no data frame followed it.
func readUntilGoingAway(ctx context.Context, c *websocket.Conn, i int) error {
	var closeFrame []byte
	for {
		f, err := c.ReadFrame(ctx, nil)
		if err != nil {
			if closeFrame == nil {
				return fmt.Errorf("client %d: %v before a close frame, want 1001", i, err)
			}
			return nil
		}
		switch {
		case closeFrame != nil && !f.Opcode.IsControl():
			return fmt.Errorf("client %d: a %v frame after the close frame", i, f.Opcode)
		case f.Opcode == websocket.OpClose:
			closeFrame = f.Payload
			if len(f.Payload) < 2 || websocket.StatusCode(binary.BigEndian.Uint16(f.Payload)) != websocket.StatusGoingAway {
				return fmt.Errorf("client %d: close frame %q, want 1001", i, f.Payload)
			}
			if err := c.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpClose}, Payload: f.Payload[:2]}); err != nil {
				return fmt.Errorf("client %d: answering the close: %v", i, err)
			}
		}
	}
}

// Hub.Close closes the connections of WebSocketHandler endpoints without a
// handshake, so a write stalled on one fails at once: Close does not wait
// out the connection's write timeout.
func TestHubCloseDoesNotWaitForStalledWrite(t *testing.T) {
	h := newHub(t, nil, freshNode("close"))
	tp := newTopic(t, h, "stall", &hub.TopicOptions[msg]{QueueSize: 1024})
	stalledHandlerClient(t, tp)
	start := time.Now()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > stalledWriteTimeout/2 {
		t.Errorf("Hub.Close took %v: it waited for a stalled write", el)
	}
}

// Hub.Shutdown returns with its ctx even while a SubscribeFunc call has
// not returned (a bridge whose downstream stalls): the topic finishes
// closing in the background once the call returns.
func TestHubShutdownReturnsWithCtxOverBlockedFunc(t *testing.T) {
	h := newHub(t, nil, freshNode("bridge"))
	tp := newTopic(t, h, "bridge", nil)
	release, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s, err := tp.SubscribeFunc(func(msg) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // before the hub's cleanup
	publishN(t, tp, "m", 0, 1)
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want ctx's error", err)
		}
	case <-time.After(10 * time.Second):
		unblock()
		<-done
		t.Fatal("Shutdown with a 200ms ctx did not return while a SubscribeFunc call was blocked")
	}
	unblock()
	s.Close() // waits for the call, after which the topic's close ends
	if !errors.Is(s.Err(), hub.ErrClosed) {
		t.Errorf("subscription Err = %v, want ErrClosed", s.Err())
	}
	if err := tp.Publish(context.Background(), wrapperspb.String("late")); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Publish after Shutdown = %v, want ErrClosed", err)
	}
}

// A connection the handler cannot subscribe learns why from its close
// code: 1013 (try again later) when only its topic has closed, 1001 with
// Hub.Shutdown's reason once the hub has — the code the hub's served
// connections get, so a client arriving during a shutdown is told the
// same as one already there.
func TestWebSocketHandlerRefusesWithWhyItClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := newHub(t, nil, "a")
	gone := newTopic(t, h, "gone", nil)
	stays := newTopic(t, h, "stays", nil)
	goneURL, staysURL := wsServer(t, gone, nil), wsServer(t, stays, nil)

	want := func(url string, code websocket.StatusCode, reason string) {
		t.Helper()
		c := dialClient(t, url, 0)
		_, err := c.read(ctx)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
			t.Errorf("read: %v, want close %d %q", err, code, reason)
		}
	}
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	want(goneURL, websocket.StatusTryAgainLater, "topic closed")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	want(staysURL, websocket.StatusGoingAway, websocket.ShutdownReason)
	want(goneURL, websocket.StatusGoingAway, websocket.ShutdownReason)
}

// Topic.Close closes the connections its WebSocketHandler accepted, with
// the 1013 "topic closed" a client arriving later gets (the hub stays
// open, so its Poller would keep them, subscribed to nothing), and leaves
// open a connection subscribed with SubscribeWebSocket, which its own
// handler owns.
func TestTopicCloseClosesHandlerConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tp := newTopic(t, newHub(t, nil, "a"), "closing", nil)
	owned := make([]wsClient, 4)
	url := wsServer(t, tp, nil)
	for i := range owned {
		owned[i] = dialClient(t, url, i)
		defer owned[i].conn.CloseNow()
	}
	// A handler of its own: after the topic closes it writes once more.
	handlerDone := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: allSubprotocols})
		if err != nil {
			handlerDone <- err
			return
		}
		defer c.CloseNow()
		sub, err := tp.SubscribeWebSocket(c, nil)
		if err != nil {
			handlerDone <- err
			return
		}
		defer sub.Close()
		<-sub.Done()
		if !errors.Is(sub.Err(), hub.ErrClosed) {
			handlerDone <- sub.Err()
			return
		}
		handlerDone <- c.Write(ctx, websocket.MessageText, []byte(`"still open"`))
	}))
	defer srv.Close()
	own := dialClient(t, "ws"+strings.TrimPrefix(srv.URL, "http"), 1) // JSON
	defer own.conn.CloseNow()
	waitSubscribers(t, tp, len(owned)+1)

	// The clients read from before the close, as live clients do: Close
	// waits for their replies to its close frames.
	reads := make([]chan error, len(owned))
	for i, c := range owned {
		reads[i] = make(chan error, 1)
		go func() { _, err := c.read(ctx); reads[i] <- err }()
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range owned {
		err := <-reads[i]
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater || ce.Reason != "topic closed" {
			t.Errorf("client %d of WebSocketHandler: %v, want close 1013 \"topic closed\"", i, err)
		}
	}
	if err := <-handlerDone; err != nil {
		t.Fatalf("SubscribeWebSocket's handler: %v", err)
	}
	if got, err := own.read(ctx); err != nil || got != "still open" {
		t.Fatalf("SubscribeWebSocket's client read %q, %v: its connection should stay open", got, err)
	}
}

// TestUndecodablePayloadForwardedUnchecked pins what ErrBadEnvelope's doc
// says: a broker payload that is not a valid message is dropped, counted
// in DecodeErrors and reported when this node decodes it (here for the
// replay store), but a topic with DisableReplay whose only subscribers
// are codec.Proto WebSocket connections decodes nothing, and writes the
// bytes to them unchecked, counting and reporting nothing.
func TestUndecodablePayloadForwardedUnchecked(t *testing.T) {
	bad := []byte{0xff, 0xff, 0xff} // not a protobuf message
	if proto.Unmarshal(bad, &wrapperspb.StringValue{}) == nil {
		t.Fatal("bad payload decodes")
	}
	good, err := proto.Marshal(wrapperspb.String("good"))
	if err != nil {
		t.Fatal(err)
	}
	for _, disableReplay := range []bool{true, false} {
		t.Run("DisableReplay="+strconv.FormatBool(disableReplay), func(t *testing.T) {
			src := &rawBroker{}
			var reported atomic.Int64
			h, err := hub.New(src, &hub.Options{NodeID: freshNode("raw"), OnError: func(string, error) { reported.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			tp := newTopic(t, h, "raw", &hub.TopicOptions[msg]{DisableReplay: disableReplay})
			srv := httptest.NewServer(tp.WebSocketHandler(&websocket.AcceptOptions{Subprotocols: []string{codec.SubprotocolProto}}, nil))
			defer srv.Close()
			c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"),
				&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			waitSubscribers(t, tp, 1)
			src.handle(hub.AppendEnvelope(nil, "other", 1, bad))
			src.handle(hub.AppendEnvelope(nil, "other", 2, good))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, decodeErrors := good, uint64(1)
			if disableReplay {
				want, decodeErrors = bad, 0
			}
			if !bytes.Equal(got, want) {
				t.Errorf("client read %x first, want %x", got, want)
			}
			if st := tp.Stats(); st.DecodeErrors != decodeErrors || reported.Load() != int64(decodeErrors) {
				t.Errorf("DecodeErrors %d, OnError calls %d, want %d of each", st.DecodeErrors, reported.Load(), decodeErrors)
			}
		})
	}
}
