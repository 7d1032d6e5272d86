package sse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// A handler that streams a few events; the client reads them until the
// server ends the stream with 204 No Content on reconnection.
func ExampleNewStream() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			// The client reconnected after the stream ended: stop it.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Retry: 10 * time.Millisecond})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer s.Close()
		s.Send(sse.Event{ID: "1", Data: "hello"})
		s.Send(sse.Event{ID: "2", Type: "greeting", Data: "multi\nline"})
	}))
	defer srv.Close()

	for ev, err := range sse.Events(context.Background(), srv.URL, nil) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("%s %s %q\n", ev.ID, ev.Type, ev.Data)
	}
	// Output:
	// 1 message "hello"
	// 2 greeting "multi\nline"
}

// Encode an event once and write it to many streams, as a hub does.
func ExamplePrepare() {
	p, err := sse.Prepare(sse.Event{ID: "42", Type: "price", Data: `{"eur":1.08}`})
	if err != nil {
		panic(err)
	}
	// For each subscriber's *sse.Stream s: s.SendPrepared(p)
	fmt.Printf("%q\n", p.AppendTo(nil))
	// Output:
	// "id: 42\nevent: price\ndata: {\"eur\":1.08}\n\n"
}

// Parse a raw event stream.
func ExampleParser() {
	p := sse.NewParser(strings.NewReader("id: 7\nevent: add\ndata: 1\ndata: 2\n\n: comment\ndata: next\n\n"), nil)
	for {
		ev, err := p.Next()
		if err != nil {
			break // io.EOF at the end
		}
		fmt.Printf("%s %s %q\n", ev.ID, ev.Type, ev.Data)
	}
	// Output:
	// 7 add "1\n2"
	// 7 message "next"
}

// Decode events into typed values, keeping id and type.
func ExampleDecode() {
	type Price struct {
		EUR float64 `json:"eur"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s, _ := sse.NewStream(w, r, &sse.StreamOptions{Retry: time.Millisecond})
		defer s.Close()
		s.Send(sse.Event{ID: "1", Type: "price", Data: `{"eur":1.08}`})
	}))
	defer srv.Close()

	events := sse.Events(context.Background(), srv.URL, nil)
	for ev, err := range sse.Decode(events, func(e sse.Event) (Price, error) {
		var p Price
		err := json.Unmarshal([]byte(e.Data), &p)
		return p, err
	}) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(ev.ID, ev.Type, ev.Data.EUR)
	}
	// Output:
	// 1 price 1.08
}

// Resume with nothing lost: the publisher appends each event to a Ring
// and then fans it out; each handler subscribes before NewStream, which
// replays what a reconnecting client missed.
func ExampleRing() {
	ring := sse.NewRing(1024)
	var ids []string
	for _, data := range []string{"a", "b", "c"} {
		e, _ := ring.Append(sse.Event{Data: data})
		ids = append(ids, e.ID) // the ring's random epoch, then 1, 2, 3: "3f9a1c2e-1", …
	}
	req := httptest.NewRequest("GET", "/events", nil)
	req.Header.Set("Last-Event-ID", ids[0]) // the client saw the first event
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: ring})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	epoch, _, _ := strings.Cut(ids[0], "-")
	fmt.Printf("gap=%v %q\n", s.Gap(), strings.ReplaceAll(rec.Body.String(), epoch, "<epoch>"))
	// Output:
	// gap=false "id: <epoch>-2\ndata: b\n\nid: <epoch>-3\ndata: c\n\n"
}
