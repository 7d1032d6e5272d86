package websocket_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// cfgExt is an extension whose offers, answer and session a test sets: it
// plays an extension with a bug. ServerNegotiate accepts any offer with
// answer and sess; ClientAccept accepts any answer with sess.
type cfgExt struct {
	name   string
	rsv    byte
	offers [][]websocket.Param
	answer []websocket.Param
	sess   websocket.ExtensionSession
}

func (e cfgExt) Name() string                      { return e.name }
func (e cfgExt) RSV() byte                         { return e.rsv }
func (e cfgExt) ClientOffers() [][]websocket.Param { return e.offers }
func (e cfgExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return e.answer, e.sess, true
}
func (e cfgExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return e.sess, nil
}

// passSession is a session that transforms nothing.
type passSession struct{}

func (passSession) OutgoingFrame(*websocket.Frame) error       { return nil }
func (passSession) IncomingFrame(*websocket.FrameHeader) error { return nil }

// badParams are extension parameters FormatExtension cannot write as
// given (RFC 6455 §9.1: names and values are tokens), and the parameter
// name an error must mention.
var badParams = []struct {
	name  string
	param websocket.Param
}{
	{"CR LF in value", websocket.Param{Name: "v", Value: "x\r\nX-Injected: yes"}},
	{"LF in value", websocket.Param{Name: "v", Value: "x\nX-Injected: yes"}},
	{"space in value", websocket.Param{Name: "v", Value: "a b"}},
	{"quote in value", websocket.Param{Name: "v", Value: `a"b`}},
	{"comma in value", websocket.Param{Name: "v", Value: "a,b"}},
	{"semicolon in value", websocket.Param{Name: "v", Value: "v;"}},
	{"semicolon in name", websocket.Param{Name: "v;"}},
	{"space in name", websocket.Param{Name: "v v"}},
	{"CR LF in name", websocket.Param{Name: "v\r\nX-Injected: yes"}},
	{"empty name", websocket.Param{Name: "", Value: "1"}},
}

// TestDialRefusesInvalidExtensionOffer: an offer (ClientOffers) that is
// not tokens was written into the request as is; a CR LF in a value added
// a header line of its own, a space or comma broke the header. Dial now
// fails before dialing, with ErrInvalidDial naming extension and parameter.
func TestDialRefusesInvalidExtensionOffer(t *testing.T) {
	for _, tc := range badParams {
		t.Run(tc.name, func(t *testing.T) {
			// The good offer first: a bad one anywhere fails Dial.
			ext := cfgExt{name: "x-v", rsv: websocket.RSV2, sess: passSession{},
				offers: [][]websocket.Param{{{Name: "ok", Value: "1"}}, {{Name: "a"}, tc.param}}}
			dialed := false
			opts := &websocket.DialOptions{
				Extensions: websocket.MustExtensionSet(ext),
				NetDialContext: func(context.Context, string, string) (net.Conn, error) {
					dialed = true
					return nil, errors.New("dialed")
				},
			}
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://127.0.0.1:1/", opts)
			if c != nil {
				c.CloseNow()
			}
			if dialed {
				t.Fatalf("Dial dialed (err %v), want a refusal before any network I/O", err)
			}
			if !errors.Is(err, websocket.ErrInvalidDial) {
				t.Fatalf("Dial: %v, want an error wrapping ErrInvalidDial", err)
			}
			for _, want := range []string{`"x-v"`, fmt.Sprintf("%q", tc.param.Name)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Dial: %v, want it to name %s", err, want)
				}
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("Dial: error %q holds a line break", err)
			}
		})
	}
}

// TestDialSendsValidExtensionOffer: valid offers still go out, once each,
// as FormatExtension writes them.
func TestDialSendsValidExtensionOffer(t *testing.T) {
	got := make(chan []string, 1)
	url, _ := fakeServer(t, func(w io.Writer, req *http.Request) {
		got <- req.Header.Values("Sec-WebSocket-Extensions")
		acceptHandshake(w, req)
	})
	ext := cfgExt{name: "x-v", rsv: websocket.RSV2, sess: passSession{},
		offers: [][]websocket.Param{{{Name: "a", Value: "1"}, {Name: "b"}}, nil}}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: websocket.MustExtensionSet(ext)})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if h := <-got; strings.Join(h, ", ") != "x-v; a=1; b, x-v" {
		t.Fatalf("offers %q", h)
	}
}

// acceptRaw runs Accept with opts behind an httptest server, sends the
// handshake with the extension offer by hand, and returns the response as
// read, its body, and Accept's error.
func acceptRaw(t *testing.T, opts *websocket.AcceptOptions, offer string) (*http.Response, string, error) {
	t.Helper()
	errs := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if c != nil {
			c.CloseNow()
		}
		errs <- err
	}))
	t.Cleanup(srv.Close)
	nc, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wireTimeout))
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: %s\r\n\r\n", testKey, offer)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	select {
	case err = <-errs:
	case <-time.After(wireTimeout):
		t.Fatal("Accept did not return")
	}
	return resp, string(body), err
}

// TestAcceptRefusesInvalidExtensionAnswer: a ServerNegotiate answer that
// is not tokens went into the 101 as is (a CR LF in a value was a header
// line of its own). It is the server's bug: Accept answers 500 with
// nothing of the answer, and its error names extension and parameter.
func TestAcceptRefusesInvalidExtensionAnswer(t *testing.T) {
	for _, tc := range badParams {
		t.Run(tc.name, func(t *testing.T) {
			ext := cfgExt{name: "x-v", rsv: websocket.RSV2, sess: passSession{},
				answer: []websocket.Param{{Name: "a"}, tc.param}}
			resp, body, err := acceptRaw(t, &websocket.AcceptOptions{Extensions: websocket.MustExtensionSet(ext)}, "x-v")
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %s (extensions %q, X-Injected %q), want 500", resp.Status, resp.Header.Values("Sec-WebSocket-Extensions"), resp.Header.Get("X-Injected"))
			}
			if len(resp.Header.Values("X-Injected")) > 0 || len(resp.Header.Values("Sec-WebSocket-Extensions")) > 0 {
				t.Fatalf("response header %v", resp.Header)
			}
			if strings.Contains(body, "Injected") || strings.Contains(body, "x-v") {
				t.Fatalf("response body %q holds the answer", body)
			}
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("Accept: %v, want an error wrapping ErrBadHandshake", err)
			}
			for _, want := range []string{`"x-v"`, fmt.Sprintf("%q", tc.param.Name)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Accept: %v, want it to name %s", err, want)
				}
			}
		})
	}
}

// TestNewExtensionSetNil: a nil extension panicked in NewExtensionSet
// (calling its Name); it is a configuration mistake like the others, an
// error naming its position.
func TestNewExtensionSetNil(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("NewExtensionSet panicked: %v", r)
		}
	}()
	ok := cfgExt{name: "x-v", rsv: websocket.RSV2}
	s, err := websocket.NewExtensionSet(ok, nil)
	if err == nil || s != nil {
		t.Fatalf("NewExtensionSet(ext, nil) = %v, %v; want an error", s, err)
	}
	if !strings.Contains(err.Error(), "nil") || !strings.Contains(err.Error(), "1") {
		t.Fatalf("NewExtensionSet: %v, want it to name the nil extension's position (1)", err)
	}
}

// TestNilSessionFailsHandshake: ServerNegotiate accepting, or ClientAccept
// returning no error, with a nil session is an extension's bug: the
// handshake fails with an error naming the extension (Accept with 500),
// rather than a connection whose Extension(...).Session is nil.
func TestNilSessionFailsHandshake(t *testing.T) {
	ext := cfgExt{name: "x-v", rsv: websocket.RSV2, offers: [][]websocket.Param{nil}}
	t.Run("server", func(t *testing.T) {
		resp, _, err := acceptRaw(t, &websocket.AcceptOptions{Extensions: websocket.MustExtensionSet(ext)}, "x-v")
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %s, want 500", resp.Status)
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || !strings.Contains(fmt.Sprint(err), `"x-v"`) {
			t.Fatalf("Accept: %v, want a handshake error naming x-v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		url, _ := fakeServer(t, func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: x-v\r\n\r\n",
				wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		})
		ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: websocket.MustExtensionSet(ext)})
		if c != nil {
			c.CloseNow()
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || !strings.Contains(fmt.Sprint(err), "x-v") {
			t.Fatalf("Dial: %v, want a handshake error naming x-v", err)
		}
	})
}

// TestDuplicateExtensionAnswer: a server answering one extension twice
// was told it "answered extension … which was not offered", which sends
// the reader after the offer; it is an error of its own.
func TestDuplicateExtensionAnswer(t *testing.T) {
	url, _ := fakeServer(t, func(w io.Writer, req *http.Request) {
		fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: x-v, X-V\r\n\r\n",
			wsAccept(req.Header.Get("Sec-WebSocket-Key")))
	})
	ext := cfgExt{name: "x-v", rsv: websocket.RSV2, sess: passSession{}, offers: [][]websocket.Param{nil}}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: websocket.MustExtensionSet(ext)})
	if c != nil {
		c.CloseNow()
	}
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("Dial: %v, want ErrBadHandshake", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"X-V" twice`) || strings.Contains(msg, "not offered") {
		t.Fatalf("Dial: %v, want `answered extension \"X-V\" twice`", err)
	}
}

// TestRSVConflictNamesOwner: the conflict error printed the shared bits
// shifted (0x2 for RSV2) and said "another extension"; it names the bits
// and the extension that owns them.
func TestRSVConflictNamesOwner(t *testing.T) {
	_, err := websocket.NewExtensionSet(
		cfgExt{name: "x-a", rsv: websocket.RSV3},
		cfgExt{name: "x-b", rsv: websocket.RSV2},
		cfgExt{name: "x-c", rsv: websocket.RSV1 | websocket.RSV2})
	if err == nil {
		t.Fatal("two extensions on RSV2 accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, `"x-c" claims RSV2`) || !strings.Contains(msg, `extension "x-b"`) || strings.Contains(msg, "0x") {
		t.Fatalf("NewExtensionSet: %v, want x-c's claim of RSV2 and its owner x-b named", err)
	}
}

// TestRSVNamedInCloseReason: the reader's RSV errors, which are also the
// close reason, printed the bits shifted ("RSV bits 0x4" for RSV1) where
// everything else names them.
func TestRSVNamedInCloseReason(t *testing.T) {
	deflate := "Sec-WebSocket-Extensions: permessage-deflate\r\n"
	for _, tc := range []struct {
		name   string
		header string // the wire client's offer
		send   func(p *wirePeer)
		want   string
	}{
		{"unowned bits on data", "", func(p *wirePeer) { p.frame(true, 0x40|0x10, opText, []byte("hi")) }, "RSV bits RSV1|RSV3 set without an extension"},
		{"unowned bit next to an owned one", deflate, func(p *wirePeer) { p.frame(true, 0x40|0x20, opBinary, []byte{1}) }, "RSV bits RSV2 set without an extension"},
		{"message bit on a control frame", deflate, func(p *wirePeer) { p.frame(true, 0x40, opPing, []byte("p")) }, "RSV bits RSV1 set on a ping frame"},
		{"message bit on a continuation", deflate, func(p *wirePeer) {
			p.frame(false, 0, opBinary, []byte{1})
			p.frame(true, 0x40, opCont, []byte{2})
		}, "RSV bits RSV1 set on a continuation frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &websocket.AcceptOptions{Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(nil)), CloseTimeout: time.Second}
			s, _ := startServerWith(t, opts, tc.header, echo)
			tc.send(s.wirePeer)
			f := s.expectClose(1002)
			reason := string(f.payload[2:])
			if !strings.Contains(reason, tc.want) || len(reason) > 123 {
				t.Errorf("close reason %q (%d bytes), want it to say %q", reason, len(reason), tc.want)
			}
			if err := s.result(); !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("engine error %v, want it to say %q", err, tc.want)
			}
		})
	}
}
