package websocket_test

import (
	"net/http"
	"testing"
)

// TestAcceptDropsContentEncoding guards that a Content-Encoding set on
// the ResponseWriter before Accept (a gzip middleware sets one for a
// client that accepts gzip) does not go out with the 101, which has no
// content (RFC 9110 §15.2.2), while an ordinary header set beside it
// still does. The 101 once carried "Content-Encoding: gzip".
func TestAcceptDropsContentEncoding(t *testing.T) {
	resp, err := rawHandshake(t, nil, func(w http.ResponseWriter) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("X-Custom", "yes")
	}, request("GET", "HTTP/1.1", "Accept-Encoding", "gzip"))
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp.Status, err)
	}
	if v := resp.Header.Values("Content-Encoding"); len(v) > 0 {
		t.Errorf("101 has Content-Encoding: %q (all: %v)", v, resp.Header)
	}
	if resp.Header.Get("X-Custom") != "yes" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("101 lost the handler's other headers: %v", resp.Header)
	}
}
