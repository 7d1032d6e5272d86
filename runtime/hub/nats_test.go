package hub_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// startNATS runs an embedded nats-server on 127.0.0.1 (port 0: any free
// port) and returns it; the test stops it.
func startNATS(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// natsNode is one node: a NATS connection, a broker, a hub and a topic
// served over WebSocket.
type natsNode struct {
	nc     *nats.Conn
	broker *hub.NATSBroker
	topic  *hub.Topic[msg]
	url    string

	mu     sync.Mutex
	status []hub.BrokerStatus
}

func newNATSNode(t testing.TB, url, name string) *natsNode {
	t.Helper()
	n := &natsNode{}
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	n.nc = nc
	n.broker, err = hub.NewNATSBroker(nc, &hub.NATSOptions{OnStatus: func(s hub.BrokerStatus) {
		n.mu.Lock()
		n.status = append(n.status, s)
		n.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(t, n.broker, name)
	// Cleanups run last-in first-out: hub, then broker, then connection.
	t.Cleanup(func() { n.broker.Close(); nc.Close() })
	t.Cleanup(func() { h.Close() })
	n.topic = newTopic(t, h, "rooms.lobby", &hub.TopicOptions[msg]{QueueSize: 1024})
	n.url = wsServer(t, n.topic, nil)
	return n
}

func (n *natsNode) statuses() []hub.BrokerStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]hub.BrokerStatus(nil), n.status...)
}

// readInOrder reads msgs messages prefix<from>… from a client.
func readInOrder(t testing.TB, c wsClient, prefix string, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		got, err := c.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := prefix + strconv.Itoa(i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestNATSTwoNodes: two nodes on one embedded nats-server, a WebSocket
// client on each. What is published on node B reaches the client on node
// A in order, and the other way round; each node also serves its own
// client directly.
func TestNATSTwoNodes(t *testing.T) {
	s := startNATS(t, 0)
	a := newNATSNode(t, s.ClientURL(), "nodeA")
	b := newNATSNode(t, s.ClientURL(), "nodeB")
	ca, cb := dialClient(t, a.url, 0), dialClient(t, b.url, 1) // proto, json+deflate
	defer ca.conn.CloseNow()
	defer cb.conn.CloseNow()
	waitSubscribers(t, a.topic, 1)
	waitSubscribers(t, b.topic, 1)

	const n = 300
	publishN(t, b.topic, "b", 0, n)
	readInOrder(t, ca, "b", 0, n)
	readInOrder(t, cb, "b", 0, n)
	publishN(t, a.topic, "a", 0, n)
	readInOrder(t, cb, "a", 0, n)
	readInOrder(t, ca, "a", 0, n)

	if st := a.topic.Stats(); st.Received != n || st.Published != n || st.Missed != 0 || st.Duplicates != 0 {
		t.Fatalf("node A stats %+v", st)
	}
	if st := a.broker.Stats(); !st.Connected || st.Outages != 0 {
		t.Fatalf("node A broker %+v", st)
	}
}

// TestNATSOutage: the nats-server stops and comes back on the same port.
// Both brokers report the outage and the recovery; nodes still serve their
// own clients meanwhile; afterwards, what node B publishes reaches node
// A's client again, in order.
func TestNATSOutage(t *testing.T) {
	s := startNATS(t, 0)
	port := s.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndexByte(port, ':')+1:]
	a := newNATSNode(t, s.ClientURL(), "nodeA")
	b := newNATSNode(t, s.ClientURL(), "nodeB")
	ca, cb := dialClient(t, a.url, 0), dialClient(t, b.url, 2)
	defer ca.conn.CloseNow()
	defer cb.conn.CloseNow()
	waitSubscribers(t, a.topic, 1)
	waitSubscribers(t, b.topic, 1)
	publishN(t, b.topic, "m", 0, 10)
	readInOrder(t, ca, "m", 0, 10)

	s.Shutdown()
	s.WaitForShutdown()
	for _, n := range []*natsNode{a, b} {
		waitFor(t, "the outage to be reported", func() bool { return len(n.statuses()) >= 1 })
		if st := n.statuses()[0]; st.Connected {
			t.Fatalf("first status %+v, want an outage", st)
		}
		if st := n.broker.Stats(); st.Connected || st.Outages != 1 {
			t.Fatalf("broker stats during the outage %+v", st)
		}
	}
	// During the outage each node still serves its own subscribers.
	publishN(t, b.topic, "m", 10, 11)
	readInOrder(t, cb, "m", 0, 11)

	p, _ := strconv.Atoi(port)
	startNATS(t, p)
	for _, n := range []*natsNode{a, b} {
		waitFor(t, "the recovery to be reported", func() bool {
			st := n.statuses()
			return len(st) >= 2 && st[len(st)-1].Connected
		})
		if st := n.broker.Stats(); !st.Connected || st.Recoveries != 1 {
			t.Fatalf("broker stats after recovery %+v", st)
		}
	}
	// nats.go buffered m10 and re-subscribes both nodes on reconnect; the
	// two reconnections race, so node A may or may not get m10. Publish
	// until a subscriber on node A has a message from after the outage,
	// then check that everything from there on arrives in order.
	got := make(chan string, 1024)
	sub, err := a.topic.SubscribeFunc(func(m msg) error { got <- m.GetValue(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	timeout := time.After(20 * time.Second)
	next, expect := 11, -1 // expect: the value due next once resumed
	for expect < 0 {
		publishN(t, b.topic, "m", next, next+1)
		next++
		select {
		case v := <-got:
			k, _ := strconv.Atoi(strings.TrimPrefix(v, "m"))
			if k < 10 || k >= next {
				t.Fatalf("after the outage node A got %q", v)
			}
			if k > 10 {
				expect = k + 1
			}
		case <-time.After(20 * time.Millisecond):
		case <-timeout:
			t.Fatal("node A never received a message after the outage")
		}
	}
	publishN(t, b.topic, "m", next, next+50)
	for ; expect < next+50; expect++ {
		select {
		case v := <-got:
			if v != "m"+strconv.Itoa(expect) {
				t.Fatalf("got %q, want m%d", v, expect)
			}
		case <-timeout:
			t.Fatal("timed out")
		}
	}
	if st := a.topic.Stats(); st.Duplicates != 0 {
		t.Fatalf("node A stats %+v", st)
	}
}

// natsPort returns the port s listens on, to start it again there.
func natsPort(t testing.TB, s *server.Server) int {
	t.Helper()
	addr := s.Addr().String()
	p, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dialNATS connects to url, reconnecting forever and quickly; the test
// closes the connection.
func dialNATS(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestNATSStatusSurvivesSlowOnStatus: nats.go drops status events while
// the listener's channel (10 slots) is full, which a storm of
// reconnections fills while OnStatus is slow. The broker must still end
// up reporting the state the connection is in: it reads the state from
// the connection after each event, and reports only real transitions,
// alternating, with counters to match.
func TestNATSStatusSurvivesSlowOnStatus(t *testing.T) {
	s := startNATS(t, 0)
	port := natsPort(t, s)
	nc := dialNATS(t, s.ClientURL())
	stall := make(chan struct{})
	release := sync.OnceFunc(func() { close(stall) })
	var mu sync.Mutex
	var got []hub.BrokerStatus
	b, err := hub.NewNATSBroker(nc, &hub.NATSOptions{OnStatus: func(st hub.BrokerStatus) {
		mu.Lock()
		got = append(got, st)
		first := len(got) == 1
		mu.Unlock()
		if first {
			<-stall // a log sink that stalls
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer release() // first, should the test end early
	// A lasting outage makes the first call, which stalls; meanwhile the
	// recovery and 8 forced reconnections send 17 events into 10 slots:
	// the last one queued is an outage, and the final recovery is dropped.
	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, "the outage to reach OnStatus", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	startNATS(t, port)
	waitFor(t, "the reconnection", nc.IsConnected)
	for range 8 {
		if err := nc.ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the forced reconnection", nc.IsConnected)
	}
	release()
	waitFor(t, "the broker to report the connection up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return b.Stats().Connected && got[len(got)-1].Connected
	})
	mu.Lock()
	defer mu.Unlock()
	st := b.Stats()
	for i, g := range got {
		if g.Connected != (i%2 == 1) {
			t.Fatalf("statuses %+v: not alternating outage, recovery", got)
		}
	}
	if int(st.Outages) != len(got)/2 || int(st.Recoveries) != len(got)/2 {
		t.Fatalf("stats %+v after statuses %+v", st, got)
	}
}

// TestNATSCloseFromOnStatus: giving up on an outage from OnStatus the
// documented way, go b.Close(), returns once that OnStatus call is over,
// and OnStatus is not called again (the recovery goes unreported).
func TestNATSCloseFromOnStatus(t *testing.T) {
	s := startNATS(t, 0)
	port := natsPort(t, s)
	nc := dialNATS(t, s.ClientURL())
	var bp atomic.Pointer[hub.NATSBroker]
	var calls atomic.Int64
	closed := make(chan error, 1)
	b, err := hub.NewNATSBroker(nc, &hub.NATSOptions{OnStatus: func(st hub.BrokerStatus) {
		if calls.Add(1) == 1 && !st.Connected {
			go func() { closed <- bp.Load().Close() }()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	bp.Store(b)
	s.Shutdown()
	s.WaitForShutdown()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close started from OnStatus never returned")
	}
	startNATS(t, port)
	waitFor(t, "the reconnection", nc.IsConnected)
	time.Sleep(50 * time.Millisecond) // give a wrongful call its chance
	if n := calls.Load(); n != 1 {
		t.Fatalf("OnStatus called %d times, want 1: not again after Close", n)
	}
}

// TestNATSTopicCreatedDuringOutage: a topic created while the broker's
// connection is down (NATSBroker.Subscribe skips its flush then) gets the
// other nodes' messages once the connection is back, since nats.go sends
// the subscription on reconnecting.
func TestNATSTopicCreatedDuringOutage(t *testing.T) {
	s := startNATS(t, 0)
	port := natsPort(t, s)
	nca, ncb := dialNATS(t, s.ClientURL()), dialNATS(t, s.ClientURL())
	ba, err := hub.NewNATSBroker(nca, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	bb, err := hub.NewNATSBroker(ncb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	ha, hb := newHub(t, ba, "A"), newHub(t, bb, "B")
	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, "the outage", func() bool { return !nca.IsConnected() && !ncb.IsConnected() })
	ta := newTopic(t, ha, "late", nil)
	tb := newTopic(t, hb, "late", nil)
	got := make(chan string, 1024)
	sub, err := ta.SubscribeFunc(func(m msg) error { got <- m.GetValue(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	startNATS(t, port)
	waitFor(t, "the recovery", func() bool { return nca.IsConnected() && ncb.IsConnected() })
	// The two reconnections race: publish until node A hears from B.
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		publishN(t, tb, "m", i, i+1)
		select {
		case v := <-got:
			if !strings.HasPrefix(v, "m") {
				t.Fatalf("node A got %q", v)
			}
			return
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("a topic created during the outage never received anything")
		}
	}
}

var _ = websocket.StatusNormalClosure
