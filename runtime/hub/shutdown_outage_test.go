package hub_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestHubShutdownReturnsWithCtxDuringNATSReconnect: nats.go holds its
// connection's lock while a reconnection attempt waits for the server's
// INFO (up to the connection's Timeout), and its Unsubscribe and Publish
// wait for that lock. Hub.Shutdown unsubscribed each topic, and waited for
// a Publish in progress, before it looked at ctx, so a shutdown during a
// NATS outage — here a peer at the server's address that accepts and
// never answers — waited for the reconnection attempt instead of
// returning with ctx as its documentation says; and since the
// unsubscribe came before the closing handshakes, a WebSocketHandler
// client got no 1001, only a connection cut when ctx ended.
func TestHubShutdownReturnsWithCtxDuringNATSReconnect(t *testing.T) {
	for _, mode := range []string{"idle", "publishing", "handshake"} {
		t.Run(mode, func(t *testing.T) { testShutdownDuringReconnect(t, mode) })
	}
}

// enteredBroker tells when a Publish has reached the broker, that is
// when the topic's publish lock is held.
type enteredBroker struct {
	hub.Broker
	entered chan struct{}
}

func (b enteredBroker) Publish(ctx context.Context, subject string, data []byte) error {
	b.entered <- struct{}{}
	return b.Broker.Publish(ctx, subject, data)
}

func testShutdownDuringReconnect(t *testing.T, mode string) {
	s := startNATS(t, 0)
	port := natsPort(t, s)
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1),
		nats.ReconnectWait(10*time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.Timeout(time.Hour)) // an attempt that hangs, hangs for good
	if err != nil {
		t.Fatal(err)
	}
	b, err := hub.NewNATSBroker(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	eb := enteredBroker{Broker: b, entered: make(chan struct{}, 1)}
	h := newHub(t, eb, freshNode("outage"))
	tp := newTopic(t, h, "outage", nil)
	// Cleanups run last-in first-out: the silent peer's connections are
	// closed first, which ends nats.go's attempt and frees its lock.
	t.Cleanup(func() { b.Close(); nc.Close() })

	s.Shutdown()
	s.WaitForShutdown()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	accepted := make(chan struct{}, 1)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-acceptDone
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	select {
	case <-accepted: // nats.go now waits for INFO holding its lock
	case <-time.After(20 * time.Second):
		t.Fatal("nats.go never reconnected to the silent peer")
	}

	var client wsClient
	if mode == "handshake" {
		client = dialClient(t, wsServer(t, tp, nil), 0)
		defer client.conn.CloseNow()
		waitSubscribers(t, tp, 1)
	}
	if mode == "publishing" {
		// It returns once the cleanups have closed the peer's connections.
		go func() { _ = tp.Publish(context.Background(), wrapperspb.String("stuck")) }()
		<-eb.entered // holds the topic's publish lock, waiting for nats.go's
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if mode == "handshake" {
		ctx, cancel = context.WithCancel(context.Background()) // ended once the client has its 1001
	}
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	if mode == "handshake" {
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer rcancel()
		var err error
		for err == nil {
			_, err = client.read(rctx)
		}
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("client: %v, want 1001", err)
		}
		cancel() // the unsubscribe is still waiting for nats.go
	}
	select {
	case err := <-done:
		if !errors.Is(err, ctx.Err()) {
			t.Fatalf("Shutdown: %v, want the context's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return when its context ended")
	}
}
