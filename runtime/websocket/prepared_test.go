package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestPreparedMessage broadcasts prepared messages from a server to clients
// negotiating different extensions: plain, deflate without context
// takeover (shared compressed frame), deflate with context takeover (its
// own compression), and checks every client gets every message intact.
func TestPreparedMessage(t *testing.T) {
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: 64}))
	conns := make(chan *websocket.Conn, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Extensions: set})
		if err != nil {
			return
		}
		conns <- c
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()
	clientOpts := []*websocket.DialOptions{
		{},
		{},
		{Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerNoContextTakeover: true}))},
		{Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerNoContextTakeover: true}))},
		{Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))},
		{Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerNoContextTakeover: true, ServerMaxWindowBits: 9}))},
	}
	var clients, servers []*websocket.Conn
	for _, o := range clientOpts {
		c, _, err := websocket.Dial(ctx, url, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
		s := <-conns
		defer s.CloseNow()
		servers = append(servers, s)
	}
	msgs := [][]byte{[]byte("short"), bytes.Repeat([]byte("broadcast payload "), 100), bytes.Repeat([]byte{0xAB}, 200000)}
	for i, data := range msgs {
		typ := websocket.MessageText
		if i == 2 {
			typ = websocket.MessageBinary
		}
		pm, err := websocket.NewPreparedMessage(typ, data)
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 2; round++ {
			for _, s := range servers {
				if err := s.WritePrepared(ctx, pm); err != nil {
					t.Fatal(err)
				}
			}
			for j, c := range clients {
				gt, got, err := c.Read(ctx)
				if err != nil || gt != typ || !bytes.Equal(got, data) {
					t.Fatalf("client %d message %d round %d: %v", j, i, round, err)
				}
			}
		}
	}
	if _, err := websocket.NewPreparedMessage(websocket.MessageText, []byte{0xff}); !errors.Is(err, websocket.ErrInvalidUTF8) {
		t.Fatalf("invalid UTF-8 text prepared: %v", err)
	}
}
