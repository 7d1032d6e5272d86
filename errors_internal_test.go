package wsrpc

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRefusalWithoutCodeKeepsStatus: a refusal that is no wsrpc server's
// (no Wsrpc-Code: a proxy's 502 page, a wrong URL's 404) keeps its status
// in the message, in front of the body; behind nginx a typed call's error
// read "unavailable: <html> <head><title>…" and the 502 was nowhere. A
// wsrpc server's message is its body alone.
func TestRefusalWithoutCodeKeepsStatus(t *testing.T) {
	page := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>\r\n"
	for _, tc := range []struct {
		status int
		code   string
		body   string
		want   Code
		msg    string
	}{
		{http.StatusBadGateway, "", page, CodeUnavailable, "502 Bad Gateway: " + strings.TrimSpace(page)},
		{http.StatusNotFound, "", "", CodeNotFound, "404 Not Found"},
		{http.StatusNotFound, "not_found", "no such room", CodeNotFound, "no such room"},
		{http.StatusServiceUnavailable, "unavailable", "", CodeUnavailable, "503 Service Unavailable"},
	} {
		h := http.Header{}
		if tc.code != "" {
			h.Set(CodeHeader, tc.code)
		}
		resp := &http.Response{StatusCode: tc.status, Status: fmt.Sprintf("%d %s", tc.status, http.StatusText(tc.status)), Header: h}
		e := fromHTTPResponse(resp, []byte(tc.body))
		if e.Code() != tc.want || e.Message() != tc.msg {
			t.Errorf("%d %q %q: %v %q, want %v %q", tc.status, tc.code, tc.body, e.Code(), e.Message(), tc.want, tc.msg)
		}
	}
}
