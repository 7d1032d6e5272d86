// Command ticker is a typed Server-Sent-Events demo: the generated
// examples.ticker.v1.TickerService streams random quotes and trades, each
// a case of one oneof and so an SSE event type ("quote", "trade"), and
// the generated Go client reads them, surviving server restarts by
// resuming from its Last-Event-ID.
//
//	go run ./examples/ticker -journal /tmp/ticker.journal          # serve on localhost:8081
//	go run ./examples/ticker -watch http://localhost:8081          # watch; restart the server at will
//
// Events go through a runtime/hub topic whose replay store is a journal:
// in memory, or with -journal a file that a restarted server reads back,
// so a client reconnecting with Last-Event-ID gets every event it missed,
// once, in order — including those published while it was cut off.
// Event ids are "<node>-<seq>"; a server restarted with the same -node on
// the same journal numbers on after the last event the journal holds for
// that node, so no id is used twice.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wsrpc/wsrpc"
	tickerv1 "github.com/wsrpc/wsrpc/gen/examples/ticker/v1"
	"github.com/wsrpc/wsrpc/gen/examples/ticker/v1/tickerv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// journalLimit is how many events the journal keeps for resumption.
const journalLimit = 10000

// shutdownGrace bounds the wait for the streams left once their contexts
// are cancelled: a watcher that stopped reading holds its handler in a
// write for up to the SSE write timeout (10 s), so it is cut instead.
const shutdownGrace = 5 * time.Second

// config is what the server flags set.
type config struct {
	Addr     string        // host:port to listen on
	Journal  string        // journal file; "" for memory only
	NodeID   string        // hub node id, the prefix of event ids; "" for random
	Interval time.Duration // time between events
}

// watchConfig is what the client flags set.
type watchConfig struct {
	URL        string        // the server's base URL
	Symbols    []string      // filter; empty for all
	N          int           // stop after N events; 0 for never
	Reconnect  time.Duration // wait before reconnecting; 0 for 1 s
	HTTPClient *http.Client  // nil for http.DefaultClient
}

func main() {
	var cfg config
	var wc watchConfig
	var symbols string
	flag.StringVar(&cfg.Addr, "addr", "localhost:8081", "`host:port` to listen on")
	flag.StringVar(&cfg.Journal, "journal", "", "journal `file`: a restarted server resumes clients from it (default: memory only)")
	flag.StringVar(&cfg.NodeID, "node", "", "node `id`, the prefix of event ids; restarted with the same id and -journal, it numbers on after the journal's last event (default: random, new at each start)")
	flag.DurationVar(&cfg.Interval, "interval", 500*time.Millisecond, "time between events")
	flag.StringVar(&wc.URL, "watch", "", "watch the server at `URL` instead of serving")
	flag.StringVar(&symbols, "symbols", "", "with -watch: comma-separated `symbols` to watch (default: all)")
	flag.IntVar(&wc.N, "n", 0, "with -watch: stop after `N` events (default: never)")
	flag.Parse()
	if symbols != "" {
		wc.Symbols = strings.Split(symbols, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if wc.URL != "" {
		err = watch(ctx, wc, os.Stdout)
	} else {
		err = run(ctx, cfg, os.Stdout)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// run publishes an event every cfg.Interval and serves TickerService on
// cfg.Addr until ctx is done. On shutdown streams end without an end
// event, so clients reconnect, and connections still open after
// shutdownGrace (watchers that stopped reading) are closed, which is no
// error. It writes "listening on http://ADDR" to out once the port is
// bound.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.Interval <= 0 {
		return errors.New("the interval must be positive")
	}
	logger := log.New(out, "ticker: ", log.LstdFlags)
	j, err := openJournal(cfg.Journal, journalLimit)
	if err != nil {
		return err
	}
	defer j.Close()
	j.onError = func(err error) { logger.Printf("%v", err) }
	h, err := hub.New(nil, &hub.Options{
		NodeID:  cfg.NodeID,
		OnError: func(topic string, err error) { logger.Printf("%s: %v", topic, err) },
	})
	if err != nil {
		return err
	}
	defer h.Close()
	topic, err := hub.NewTopic(h, "ticker", &hub.TopicOptions[*tickerv1.WatchResponse]{
		// Recorded events are those a wsrpc SSE handler sends (the oneof
		// case's value, typed by the case), so the generated client
		// decodes them like any other.
		SSECodec:  wsrpc.SSEEventCodec,
		EventType: wsrpc.SSEEventType[*tickerv1.WatchResponse],
		Replay:    j,
	})
	if err != nil {
		return err
	}
	svc := &service{topic: topic, journal: j}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(tickerv1wsrpc.NewTickerServiceHandler(svc, wsrpc.WithSSEOptions(&sse.StreamOptions{
		Heartbeat:    15 * time.Second,
		WriteTimeout: 10 * time.Second,
	})))
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := wsrpc.NewHTTPServer(mux) // header limits as docs/security.md recommends
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.ErrorLog = logger
	// conns counts the open connections, for the shutdown's log line.
	var conns atomic.Int64
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateHijacked, http.StateClosed:
			conns.Add(-1)
		}
	}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())

	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		generate(genCtx, topic, cfg.Interval, logger)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	stopGen()
	<-genDone
	cancelBase() // ends the streams, which Shutdown would wait for
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	serr := srv.Shutdown(shutdownCtx)
	if errors.Is(serr, context.DeadlineExceeded) {
		// What is left is a watcher that stopped reading, its handler
		// blocked in a write until the SSE write timeout; the shutdown
		// was asked for, so cutting it is no failure.
		n := conns.Load()
		srv.Close()
		logger.Printf("shutdown: cut %d connection(s) still open after %v", n, shutdownGrace)
		serr = nil
	}
	if err == nil {
		err = serr
	}
	if serveErr := <-errc; err == nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = serveErr
	}
	return err
}

// generate publishes a random walk of quotes and trades until ctx is done.
func generate(ctx context.Context, topic *hub.Topic[*tickerv1.WatchResponse], every time.Duration, logger *log.Logger) {
	symbols := []string{"ACME", "GOPH", "NATS", "WSRP"}
	price := map[string]float64{"ACME": 102.5, "GOPH": 48.2, "NATS": 17.9, "WSRP": 231.0}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sym := symbols[rand.IntN(len(symbols))]
		p := price[sym] * (1 + (rand.Float64()-0.5)/200)
		price[sym] = p
		ev := &tickerv1.WatchResponse{}
		if rand.IntN(3) == 0 {
			ev.Event = &tickerv1.WatchResponse_Trade{Trade: &tickerv1.Trade{
				Symbol: sym, Price: round(p), Size: 100 * (1 + rand.Int64N(20)), Time: timestamppb.Now(),
			}}
		} else {
			spread := p * 0.0005
			ev.Event = &tickerv1.WatchResponse_Quote{Quote: &tickerv1.Quote{
				Symbol: sym, Bid: round(p - spread), Ask: round(p + spread), Time: timestamppb.Now(),
			}}
		}
		if err := topic.Publish(ctx, ev); err != nil && ctx.Err() == nil {
			logger.Printf("publish: %v", err)
		}
	}
}

func round(p float64) float64 { return float64(int64(p*100+0.5)) / 100 }

// service implements TickerService.
type service struct {
	tickerv1wsrpc.UnimplementedTickerServiceHandler
	topic   *hub.Topic[*tickerv1.WatchResponse]
	journal *journal
}

// Watch sends every event recorded from the moment the client connects
// or, for a client resuming with Last-Event-ID, after that event. The
// topic's Follow reads the journal with a cursor, so each event is sent
// once, in order, with its recorded id.
func (s *service) Watch(ctx context.Context, req *tickerv1.WatchRequest, st *wsrpc.ServerStream[tickerv1.WatchResponse]) error {
	want := make(map[string]bool, len(req.GetSymbols()))
	for _, sym := range req.GetSymbols() {
		want[strings.ToUpper(strings.TrimSpace(sym))] = true
	}
	start := func() (string, []sse.Event, error) {
		cursor := st.LastEventID()
		if cursor != "" {
			backlog, err := s.journal.Since(cursor)
			if err == nil {
				return cursor, backlog, nil
			}
			if !errors.Is(err, sse.ErrUnknownID) {
				return "", nil, wsrpc.NewError(wsrpc.CodeInternal, err)
			}
		}
		// A fresh client, or one whose last event is no longer held:
		// prices supersede each other, so go on from now.
		return s.journal.Last(), nil, nil
	}
	send := func(ev sse.Event) error {
		if len(want) > 0 && !want[symbolOf(ev)] {
			return nil
		}
		return st.SendEvent(ev)
	}
	err := s.topic.Follow(ctx, start, s.journal.After, send)
	switch {
	case errors.Is(err, hub.ErrFellBehind):
		return wsrpc.Errorf(wsrpc.CodeResourceExhausted, "fell behind the journal: %v", err)
	case errors.Is(err, hub.ErrClosed):
		return wsrpc.Errorf(wsrpc.CodeUnavailable, "ticker closed")
	}
	return err
}

// symbolOf reads the symbol of a recorded quote or trade.
func symbolOf(ev sse.Event) string {
	var m interface {
		proto.Message
		GetSymbol() string
	}
	switch ev.Type {
	case "quote":
		m = &tickerv1.Quote{}
	case "trade":
		m = &tickerv1.Trade{}
	default:
		return ""
	}
	if protojson.Unmarshal([]byte(ev.Data), m) != nil {
		return ""
	}
	return m.GetSymbol()
}

// watch prints the server's events, one line each, starting with the
// event's id, reconnecting (with Last-Event-ID) whenever the stream drops,
// until ctx is done, cfg.N events were printed, or the server refuses.
func watch(ctx context.Context, cfg watchConfig, out io.Writer) error {
	if cfg.Reconnect <= 0 {
		cfg.Reconnect = time.Second
	}
	client := tickerv1wsrpc.NewTickerServiceClient(cfg.HTTPClient, cfg.URL, wsrpc.WithSSEClientOptions(&sse.ClientOptions{
		ReconnectionTime: cfg.Reconnect, // no attempt limit: wait for the server to come back
	}))
	st, err := client.Watch(ctx, &tickerv1.WatchRequest{Symbols: cfg.Symbols})
	if err != nil {
		return err
	}
	defer st.Close()
	n := 0
	for ev, err := range st.All() {
		if err != nil {
			return err
		}
		switch e := ev.GetEvent().(type) {
		case *tickerv1.WatchResponse_Quote:
			q := e.Quote
			fmt.Fprintf(out, "%s quote %-4s bid %9.2f ask %9.2f\n", st.LastEventID(), q.GetSymbol(), q.GetBid(), q.GetAsk())
		case *tickerv1.WatchResponse_Trade:
			tr := e.Trade
			fmt.Fprintf(out, "%s trade %-4s %6d @ %9.2f\n", st.LastEventID(), tr.GetSymbol(), tr.GetSize(), tr.GetPrice())
		}
		if n++; cfg.N > 0 && n >= cfg.N {
			return nil
		}
	}
	return nil
}
