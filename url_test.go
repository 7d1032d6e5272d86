package wsrpc_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/wsrpc/wsrpc"
)

// TestJoinPath: the method path goes onto the base URL's path, before its
// query, which is kept as written; trailing slashes of the base path are
// trimmed; a fragment, which no request carries (RFC 3986 §3.5), is
// dropped; a base URL that does not parse gives a URL that does not parse
// either, so that the call fails rather than going elsewhere.
func TestJoinPath(t *testing.T) {
	const p = "/chat.v1.ChatService/Chat"
	for _, tc := range []struct{ base, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080" + p},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080" + p},
		{"http://h/api//", "http://h/api" + p},
		{"wss://h/api", "wss://h/api" + p},
		{"http://h?access_token=abc", "http://h" + p + "?access_token=abc"},
		{"http://h/api/?b=2&a=1&a=%2B+x", "http://h/api" + p + "?b=2&a=1&a=%2B+x"},
		{"http://h/a%2Fb/?k=v/w?x", "http://h/a%2Fb" + p + "?k=v/w?x"},
		{"http://h/api?", "http://h/api" + p},
		{"http://h/api#frag", "http://h/api" + p},
		{"http://h/api?k=v#frag?x", "http://h/api" + p + "?k=v"},
		{"", p},
	} {
		if got := wsrpc.JoinPath(tc.base, p); got != tc.want {
			t.Errorf("JoinPath(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
	for _, base := range []string{"http://[::1", "http://[::1?k=v", "http://h:port", "http://h/%zz?k=v", "http://h/%", "http://h/a%4", "http://h#%z", "http://h/\x7f", ":no-scheme"} {
		if _, err := url.Parse(base); err == nil {
			t.Fatalf("%q parses: not a test of an unparsable base", base)
		}
		got := wsrpc.JoinPath(base, p)
		if _, err := url.Parse(got); err == nil {
			t.Errorf("JoinPath(%q) = %q, which parses", base, got)
		}
	}
}

// FuzzJoinPath: for any base URL, a base that parses gives a URL that
// parses, with the method path at the end of its path and the base's
// query kept; one that does not parse gives one that does not either.
func FuzzJoinPath(f *testing.F) {
	for _, s := range []string{"http://h", "http://h/a/?k=v", "ws://u@h:1/a%2Fb?x#f", "http://[::1", "http://h/%", ":x", "", "?", "#", "/rel?x"} {
		f.Add(s)
	}
	const p = "/pkg.v1.S/M"
	f.Fuzz(func(t *testing.T, base string) {
		got := wsrpc.JoinPath(base, p)
		b, berr := url.Parse(base)
		u, err := url.Parse(got)
		if berr != nil {
			if err == nil {
				t.Fatalf("JoinPath(%q) = %q, which parses", base, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("JoinPath(%q) = %q: %v", base, got, err)
		}
		if b.Opaque != "" {
			return // "mailto:x": no path to join onto, and no scheme a client dials
		}
		if u.RawQuery != b.RawQuery || u.Fragment != "" || len(u.EscapedPath()) < len(p) || u.EscapedPath()[len(u.EscapedPath())-len(p):] != p {
			t.Fatalf("JoinPath(%q) = %q: path %q, query %q, fragment %q", base, got, u.EscapedPath(), u.RawQuery, u.Fragment)
		}
	})
}

func ExampleJoinPath() {
	fmt.Println(wsrpc.JoinPath("https://example.com/api/?access_token=abc", "/chat.v1.ChatService/Chat"))
	// Output: https://example.com/api/chat.v1.ChatService/Chat?access_token=abc
}
