package wsrpc_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/browsertest"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// serveRecommended serves h with wsrpc.NewHTTPServer (adjusted by tune)
// on 127.0.0.1 and returns its address; the server closes when the test
// ends.
func serveRecommended(t *testing.T, h http.Handler, tune func(*http.Server)) string {
	t.Helper()
	srv := wsrpc.NewHTTPServer(h)
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if tune != nil {
		tune(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// countingEcho is the golden service, counting the calls that reached it.
func countingEcho(calls *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mux.ServeHTTP(w, r)
	})
}

const handshakeHead = "GET " + testingv1wsrpc.StreamServiceEchoPath + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

// TestHostileSlowHandshake: a client that sends its handshake a byte at
// a time (slowloris) is cut off after the server's ReadHeaderTimeout
// (NewHTTPServer's 10 s, shortened here to 300 ms), before its request
// reaches any handler.
func TestHostileSlowHandshake(t *testing.T) {
	var calls atomic.Int64
	addr := serveRecommended(t, countingEcho(&calls), func(s *http.Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, nc) // until the server closes
		closed <- err
	}()
	req := handshakeHead + "\r\n"
	sent := 0
	start := time.Now()
	for ; sent < len(req); sent++ {
		if _, err := nc.Write([]byte{req[sent]}); err != nil {
			break
		}
		select {
		case <-closed:
			goto done
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("the server took the whole slow handshake (%d bytes over %v)", len(req), time.Since(start))
done:
	if calls.Load() != 0 {
		t.Fatalf("a handler ran for the slow request")
	}
	t.Logf("cut off after %d of %d bytes, %v", sent, len(req), time.Since(start).Round(10*time.Millisecond))
}

// TestHostileOversizedHeaders: a handshake whose header exceeds
// NewHTTPServer's MaxHeaderBytes (16 KiB; net/http allows 4 KiB of slack)
// is refused with 431 before any handler runs; a 4 KiB cookie passes.
func TestHostileOversizedHeaders(t *testing.T) {
	var calls atomic.Int64
	addr := serveRecommended(t, countingEcho(&calls), nil)
	for _, tc := range []struct {
		size   int
		status int
	}{{4 << 10, http.StatusSwitchingProtocols}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go fmt.Fprintf(nc, "%sCookie: a=%s\r\n\r\n", handshakeHead, strings.Repeat("x", tc.size))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		nc.Close()
		if err != nil {
			t.Fatalf("%d-byte cookie: %v", tc.size, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%d-byte cookie: %s, want %d", tc.size, resp.Status, tc.status)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("%d handler calls, want 1 (the small header only)", calls.Load())
	}
}

// testCA makes a CA and a certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wsrpc test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// TestTLSWebSocketAndSSE: the generated client over wss:// and HTTPS SSE
// against a server with a certificate from a CA the test made: both work
// when the client trusts that CA, and both are refused (certificate
// error, nothing served) by a client that does not.
func TestTLSWebSocketAndSSE(t *testing.T) {
	pool, cert := testCA(t)
	var calls atomic.Int64
	srv := httptest.NewUnstartedServer(countingEcho(&calls))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	ctx := testContext(t)

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer trusting.CloseIdleConnections()
	client := testingv1wsrpc.NewStreamServiceClient(trusting, srv.URL)
	st, err := client.Echo(ctx)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	if err := st.Send(&testingv1.EchoRequest{Text: "secure", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Receive(); err != nil || res.GetText() != "secure" {
		t.Fatalf("wss echo: %v %v", res, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	watch, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "tls", Count: 1})
	if err != nil {
		t.Fatalf("https sse: %v", err)
	}
	n := 0
	for _, err := range watch.All() {
		if err != nil {
			t.Fatalf("https sse: %v", err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("https sse: no events")
	}

	before := calls.Load()
	untrusting := &http.Client{Transport: &http.Transport{}}
	defer untrusting.CloseIdleConnections()
	bad := testingv1wsrpc.NewStreamServiceClient(untrusting, srv.URL,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{MaxReconnectionAttempts: -1}))
	var uae x509.UnknownAuthorityError
	if _, err := bad.Echo(ctx); err == nil || !errors.As(err, &uae) {
		t.Errorf("wss with an unknown CA: %v, want x509.UnknownAuthorityError", err)
	}
	if _, err := bad.Watch(ctx, &testingv1.WatchRequest{Room: "tls"}); err == nil || !errors.As(err, &uae) {
		t.Errorf("https sse with an unknown CA: %v, want x509.UnknownAuthorityError", err)
	}
	if calls.Load() != before {
		t.Errorf("a client that refused the certificate reached a handler")
	}
}

// cswshProbe opens a WebSocket from the current page to url and reports
// whether it opened, the close code, and an echo of one JSON message.
const cswshProbe = `(url) => new Promise((resolve) => {
	const ws = new WebSocket(url, "wsrpc.json");
	let opened = false, echo = "";
	ws.onopen = () => { opened = true; ws.send(JSON.stringify({text: "from page", seq: 7})); };
	ws.onmessage = (e) => { echo = e.data; ws.close(1000); };
	ws.onclose = (e) => resolve(JSON.stringify({opened, code: e.code, echo}));
})`

// TestCrossSiteWebSocketHijacking: in headless Chromium, a page served
// from another origin (A) cannot open a session on a handler with default
// options (B): the browser sends Origin A, the server answers 403 and
// the page sees 1006 without ever opening. With OriginPatterns naming
// A's host, the same page opens a session and gets its echo.
func TestCrossSiteWebSocketHijacking(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>origin A</title>")
	}))
	defer page.Close()
	pageHost := strings.TrimPrefix(page.URL, "http://")

	type seen struct {
		status atomic.Int64
		origin atomic.Value
	}
	serve := func(opts ...wsrpc.Option) (string, *seen) {
		s := &seen{}
		mux := http.NewServeMux()
		mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, opts...))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.origin.Store(r.Header.Get("Origin"))
			// Recorded when written, not when the handler returns: the
			// page can see its echo and close before the session's
			// handler has finished.
			mux.ServeHTTP(&statusRecorder{ResponseWriter: w, status: &s.status}, r)
		}))
		t.Cleanup(srv.Close)
		return "ws" + strings.TrimPrefix(srv.URL, "http") + testingv1wsrpc.StreamServiceEchoPath, s
	}
	defaultURL, defaultSeen := serve()
	allowedURL, allowedSeen := serve(wsrpc.WithAcceptOptions(&websocket.AcceptOptions{OriginPatterns: []string{pageHost}}))

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	probe := func(url string) (opened bool, code int, echo string) {
		t.Helper()
		res, err := chromedp.Run(ctx, chromedp.Evaluate[string]("("+cswshProbe+")("+jsString(url)+")", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Opened bool
			Code   int
			Echo   string
		}
		if err := json.Unmarshal([]byte(res), &got); err != nil {
			t.Fatalf("%v: %s", err, res)
		}
		return got.Opened, got.Code, got.Echo
	}

	opened, code, _ := probe(defaultURL)
	if opened || code != 1006 {
		t.Errorf("default server: opened %v, close %d; want refused (1006)", opened, code)
	}
	if st := defaultSeen.status.Load(); st != http.StatusForbidden {
		t.Errorf("default server answered %d, want 403", st)
	}
	if o, _ := defaultSeen.origin.Load().(string); o != page.URL {
		t.Errorf("the browser sent Origin %q, want %q", o, page.URL)
	}

	opened, code, echo := probe(allowedURL)
	if !opened || code != 1000 || !strings.Contains(echo, `"from page"`) {
		t.Errorf("allowed origin: opened %v, close %d, echo %q; want an echo and 1000", opened, code, echo)
	}
	if st := allowedSeen.status.Load(); st != http.StatusSwitchingProtocols {
		t.Errorf("allowed server answered %d, want 101", st)
	}
}

// statusRecorder notes the status a handler wrote; a hijacked WebSocket
// handshake writes its 101 itself, so Hijack records 101.
type statusRecorder struct {
	http.ResponseWriter
	status *atomic.Int64
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status.CompareAndSwap(0, int64(code))
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.status.Store(http.StatusSwitchingProtocols)
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
