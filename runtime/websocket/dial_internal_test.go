package websocket

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDialProxyFromHTTPClient: the proxy comes from DialOptions.Proxy, else
// from HTTPClient's *http.Transport as it is — a nil Proxy there means no
// proxy, as it does for the client's own HTTP requests (the typed layer
// passes its *http.Client, so SSE and WebSocket calls must agree) — and
// only without either from the environment.
func TestDialProxyFromHTTPClient(t *testing.T) {
	own := func(*http.Request) (*url.URL, error) { return &url.URL{Scheme: "http", Host: "own:1"}, nil }
	viaClient := func(*http.Request) (*url.URL, error) { return &url.URL{Scheme: "http", Host: "client:1"}, nil }
	req := &http.Request{URL: &url.URL{Scheme: "http", Host: "example.com"}}
	for _, tc := range []struct {
		name string
		opts DialOptions
		want string // the proxy host; "" for no proxy function at all
	}{
		{"client without a proxy", DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{}}}, ""},
		{"client's proxy", DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{Proxy: viaClient}}}, "client:1"},
		{"Proxy over the client's", DialOptions{Proxy: own, HTTPClient: &http.Client{Transport: &http.Transport{Proxy: viaClient}}}, "own:1"},
		{"Proxy over no proxy", DialOptions{Proxy: own, HTTPClient: &http.Client{Transport: &http.Transport{}}}, "own:1"},
	} {
		_, _, proxy := tc.opts.transport()
		got := ""
		if proxy != nil {
			u, err := proxy(req)
			if err != nil || u == nil {
				t.Fatalf("%s: proxy gave %v, %v", tc.name, u, err)
			}
			got = u.Host
		}
		if got != tc.want {
			t.Errorf("%s: proxy %q, want %q", tc.name, got, tc.want)
		}
	}
	// No client, or one whose Transport is not an *http.Transport: the
	// environment, as net/http's default transport does.
	for _, o := range []DialOptions{{}, {HTTPClient: &http.Client{}}} {
		if _, _, proxy := o.transport(); proxy == nil {
			t.Errorf("%+v: no proxy function, want http.ProxyFromEnvironment", o)
		}
	}
}

// TestDialProxyScheme: a proxy that does not speak HTTP CONNECT
// (ALL_PROXY=socks5://… for one) fails with an error naming its scheme.
func TestDialProxyScheme(t *testing.T) {
	socks := func(*http.Request) (*url.URL, error) {
		return &url.URL{Scheme: "socks5", Host: "127.0.0.1:1", User: url.UserPassword("u", "secret")}, nil
	}
	_, _, err := Dial(context.Background(), "ws://127.0.0.1:1/", &DialOptions{Proxy: socks})
	if err == nil || !strings.Contains(err.Error(), `unsupported scheme "socks5"`) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Dial through a socks5 proxy: %v, want an error naming the scheme (and not the password)", err)
	}
}
