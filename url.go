package wsrpc

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// JoinPath returns the URL of a method served at path (an absolute path,
// such as a generated …Path constant) under baseURL (scheme, host and any
// path prefix, as given to a generated New…Client). Generated clients
// call it once per method when they are built, not per call.
//
// The method path is joined onto baseURL's path, with baseURL's trailing
// slashes trimmed, and baseURL's query, an access token say, is kept as
// written after it: JoinPath("http://h/api/?access_token=abc",
// "/chat.v1.ChatService/Chat") is
// "http://h/api/chat.v1.ChatService/Chat?access_token=abc". Nothing else is
// re-encoded or cleaned, unlike net/url.JoinPath. A fragment is dropped:
// no request carries one (RFC 3986 §3.5), and RFC 6455 §3 forbids one in
// a WebSocket URI.
//
// A baseURL that does not parse is returned with path appended, which
// does not parse either (path starts with "/", which neither completes a
// %-escape nor ends a host), so every call of such a client fails with
// CodeInvalidArgument and the parse error, as a client built on that
// unparsable URL directly would.
func JoinPath(baseURL, path string) string {
	if _, err := url.Parse(baseURL); err != nil {
		return baseURL + path
	}
	// url.Parse splits a URL the same way: the fragment at the first "#",
	// then the query at the first "?" (RFC 3986 §3).
	rest, _, _ := strings.Cut(baseURL, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	joined := strings.TrimRight(rest, "/") + path
	if hasQuery && query != "" {
		joined += "?" + query
	}
	return joined
}

// ServiceNotFound answers a request that reached a generated service
// handler at a path that is none of its methods'.
//
// A path "/<service>/<Method>" names a method the service does not have:
// a client built from another version of the schema (one that added the
// method, or a server that removed it). It is answered 404 with
// Wsrpc-Code unimplemented, as Connect and gRPC answer an unknown
// procedure, and a message naming the method, so that a client tells it
// from a wrong URL.
//
// Any other path gets 404 with Wsrpc-Code not_found and a message naming
// the service and the path. The usual cause is a router that mounted the
// handler under a prefix without stripping it (chi's Mount, a Group in
// echo or gin: they pass the full path on), so when the path has the
// service's own prefix further in, the message says to strip what comes
// before it (http.StripPrefix). paths are the methods' paths that the
// schema set (option path), which need not hold the service's name: a
// path ending in one of them, after a prefix, gets the same advice. (A
// wrong base URL, which reaches no service handler, gets the router's own
// 404: not_found by its status.) Generated handlers call it; service is
// the full service name.
func ServiceNotFound(w http.ResponseWriter, r *http.Request, service string, paths ...string) {
	p := r.URL.Path
	if m, ok := strings.CutPrefix(p, "/"+service+"/"); ok && m != "" && !strings.Contains(m, "/") {
		writeHTTPStatus(w, http.StatusNotFound, Errorf(CodeUnimplemented, "%s has no method %s: the server runs a version of the schema without it, or does not serve the method over wsrpc (a unary method, or one without the (wsrpc.v1.method) option)", service, m))
		return
	}
	msg := fmt.Sprintf("no method of %s at %s", service, p)
	prefix := ""
	if i := strings.Index(p, "/"+service+"/"); i > 0 {
		prefix = p[:i]
	} else {
		// A custom path starts with "/", so a prefix cut off before it
		// ends at a segment boundary ("/api" of "/api/count", never "/dis"
		// of "/discount"); one ending in "/" would leave StripPrefix a
		// path without its leading "/".
		for _, mp := range paths {
			if pre, ok := strings.CutSuffix(p, mp); ok && pre != "" && !strings.HasSuffix(pre, "/") {
				prefix = pre
				break
			}
		}
	}
	if prefix != "" {
		msg += fmt.Sprintf(": the handler is mounted under %s, which it does not strip; wrap it in http.StripPrefix(%q, h)", prefix, prefix)
	}
	writeHTTPError(w, Errorf(CodeNotFound, "%s", msg))
}
