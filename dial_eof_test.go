package wsrpc_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestHandshakeCutDuringTLSUnavailable: a wss:// handshake the server
// cuts with a FIN during TLS's own handshake ("tls: EOF") is a lost
// connection, unavailable, as the same cut of a ws:// handshake is. It
// was unknown (the error wraps io.EOF, which wireError takes for a
// stream's clean end), and WithReconnect, which retries unavailable only,
// ended a reconnecting call for good on the first such cut — a mobile
// client's most frequent failure on a flapping network.
func TestHandshakeCutDuringTLSUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for range 4 { // bounded: one per call below
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Close() // a FIN before any TLS byte
		}
	}()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	base := "https://" + ln.Addr().String()
	for _, name := range []string{"server-streaming", "bidi"} {
		client := testingv1wsrpc.NewStreamServiceClient(hc, base)
		var err error
		if name == "bidi" {
			_, err = client.Echo(testContext(t))
		} else {
			_, err = client.Count(testContext(t), &testingv1.CountRequest{Count: 1})
		}
		if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
			t.Errorf("%s: %v (code %v), want unavailable", name, err, wsrpc.CodeOf(err))
		}
	}
}
