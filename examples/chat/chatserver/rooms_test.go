package chatserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/gen/examples/chat/v1/chatv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/sockbuf"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// startService serves a Service with opts on 127.0.0.1.
func startService(t *testing.T, opts *Options) (*Service, string) {
	t.Helper()
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, opts)
	mux := http.NewServeMux()
	mux.Handle(s.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { s.Close(); srv.Close(); h.Close() })
	return s, srv.URL
}

type session = wsrpc.BidiStreamForClient[chatv1.ChatRequest, chatv1.ChatResponse]

// join joins room as name and returns the session once the member's own
// join has come back, that is once the room works.
func join(t *testing.T, ctx context.Context, url, room, name string) *session {
	t.Helper()
	st, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithCodecs(codec.Proto)).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: room, Name: name}}}); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Receive(); err != nil || res.GetWelcome() == nil {
		t.Fatalf("%s joining %s: %v, %v; want a welcome", name, room, res, err)
	}
	for {
		ev, err := st.Receive()
		if err != nil {
			t.Fatalf("%s: waiting for the own join: %v", name, err)
		}
		if ev.GetJoined().GetName() == name {
			return st
		}
	}
}

// say sends text and waits for it to come back through the room.
func say(t *testing.T, st *session, text string) {
	t.Helper()
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: text}}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := st.Receive()
		if err != nil {
			t.Fatalf("waiting for %q: %v", text, err)
		}
		if ev.GetMessage().GetText() == text {
			return
		}
	}
}

// leave ends the session and waits for the server to close it, so that
// the member no longer uses the room.
func leave(t *testing.T, st *session) {
	t.Helper()
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Receive(); err != nil {
			return
		}
	}
}

// rooms is the number of rooms s holds.
func rooms(s *Service) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// waitRooms waits until s holds n rooms.
func waitRooms(t *testing.T, s *Service, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); rooms(s) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the service holds %d rooms after 10 s, want %d", rooms(s), n)
		}
	}
}

// TestRoomsReleasedWhenUnused: a room with no member and no watcher is
// released after RoomIdle, and its slot among MaxRooms with it. Before,
// MaxRooms anonymous GETs of the Watch feed (each closed at once, no
// member ever joined) created rooms that were never released, and no
// one could open a new room on the node until it restarted.
func TestRoomsReleasedWhenUnused(t *testing.T) {
	s, url := startService(t, &Options{RoomIdle: 20 * time.Millisecond})
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range MaxRooms {
		resp, err := client.Get(fmt.Sprintf("%s%s?room=junk%d", url, chatv1wsrpc.ChatServiceWatchPath, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the watcher leaves at once
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("watch junk%d: %s", i, resp.Status)
		}
	}
	waitRooms(t, s, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join(t, ctx, url, "gophers", "Ada")
}

// TestRoomMemoryReleased: a released room's history is freed. A full
// room holds History events of up to MaxTextLen four-byte runes, about
// 2 MiB; before, every room kept it for the life of the process, so
// MaxRooms rooms filled once by one client held half a gigabyte.
func TestRoomMemoryReleased(t *testing.T) {
	s, url := startService(t, &Options{RoomIdle: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	line := strings.Repeat("\U0001F600", MaxTextLen)
	const n = 4
	for r := range n {
		ada := join(t, ctx, url, fmt.Sprintf("mem%d", r), "Ada")
		for range DefaultHistory {
			say(t, ada, line)
		}
		leave(t, ada)
	}
	waitRooms(t, s, 0)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if per := (int64(ms.HeapAlloc) - int64(before)) / n; per > 256<<10 {
		t.Fatalf("a full room still holds %d KiB once released", per>>10)
	}
}

// TestRoomKeptWhileWatched: a room is not released while a watcher
// follows it, even one no member of this node has joined (over NATS its
// members may be on other nodes): the feed goes on with the room.
func TestRoomKeptWhileWatched(t *testing.T) {
	s, url := startService(t, &Options{RoomIdle: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	feed, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url).Watch(ctx, &chatv1.WatchRequest{Room: "quiet"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	waitRooms(t, s, 1)
	time.Sleep(200 * time.Millisecond) // time for a release, which must not happen
	if rooms(s) != 1 {
		t.Fatal("a watched room was released")
	}
	ada := join(t, ctx, url, "quiet", "Ada")
	say(t, ada, "still here")
	for _, want := range []string{"joined Ada", "message still here"} {
		ev, err := feed.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got := "joined " + ev.GetJoined().GetName()
		if m := ev.GetMessage(); m != nil {
			got = "message " + m.GetText()
		}
		if got != want {
			t.Fatalf("feed: %q, want %q", got, want)
		}
	}
}

// TestReleasedRoomStartsOver: a feed that comes back to a room released
// meanwhile starts over with the new room's activity (its Last-Event-ID
// is unknown there, as on a node that never saw the room), and the new
// room's ids are not the old one's.
func TestReleasedRoomStartsOver(t *testing.T) {
	s, url := startService(t, &Options{RoomIdle: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ada := join(t, ctx, url, "again", "Ada")
	say(t, ada, "before")
	feed, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url).Watch(ctx, &chatv1.WatchRequest{Room: "again"})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	for range 2 { // Ada's join and message, from the history
		if _, err := feed.Receive(); err != nil {
			t.Fatal(err)
		}
		old[feed.LastEventID()] = true
	}
	last := feed.LastEventID()
	feed.Close()
	leave(t, ada)
	waitRooms(t, s, 0)

	bob := join(t, ctx, url, "again", "Bob")
	say(t, bob, "after")
	resumed := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: last}))
	f, err := resumed.Watch(ctx, &chatv1.WatchRequest{Room: "again"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, want := range []string{"Bob", "after"} {
		ev, err := f.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetJoined().GetName() != want && ev.GetMessage().GetText() != want || old[f.LastEventID()] {
			t.Fatalf("resumed feed: %v (id %s), want %q under a new id", ev, f.LastEventID(), want)
		}
	}
}

// TestJoinWhileReleasing: members who join as their room is being
// released get a working room: the release happens under the service's
// lock and only if the room is still unused, so a member finds either
// the room in use or no room, and then a new one. With a release due a
// millisecond after each member leaves, members come and go in one room
// from several goroutines; each must see its own message come back.
func TestJoinWhileReleasing(t *testing.T) {
	_, url := startService(t, &Options{RoomIdle: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithCodecs(codec.Proto))
	visit := func(name string) error {
		st, err := client.Chat(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: "busy", Name: name}}}); err != nil {
			return err
		}
		if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: "hi from " + name}}); err != nil {
			return err
		}
		for {
			ev, err := st.Receive()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if m := ev.GetMessage(); m != nil && m.GetFrom() == name {
				return st.CloseSend()
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if err := visit(fmt.Sprintf("m%d-%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestVanishedMemberLeaves: a member whose client stops answering (here
// it stops reading, so it answers no ping; a device that slept or lost
// its network does the same) is closed after Keepalive and leaves the
// room, which the others see. Before, sessions had no keepalive and such
// a member stayed listed for as long as the TCP connection lingered.
func TestVanishedMemberLeaves(t *testing.T) {
	_, url := startService(t, &Options{Keepalive: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	join(t, ctx, url, "r", "Ada") // never read again
	bob := join(t, ctx, url, "r", "Bob")
	for {
		ev, err := bob.Receive()
		if err != nil {
			t.Fatalf("Bob, waiting for Ada to leave: %v", err)
		}
		if ev.GetLeft().GetName() == "Ada" {
			return
		}
	}
}

// TestLeaverReceivesOwnMessages: a member who sends a few lines and then
// ends its side (the Go client at the end of its input, the page's
// Leave) receives the room's activity published before it left, its own
// messages and its departure included, and then the session ends. Before,
// the handler closed the subscription as soon as the member's side
// ended, which dropped what was queued for it: `printf 'a\nb\n' | client`
// printed only its join, and here most of 20 members missed some of
// their own 3 lines.
func TestLeaverReceivesOwnMessages(t *testing.T) {
	_, url := startService(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		name := fmt.Sprintf("bot%d", i)
		st := join(t, ctx, url, "lobby", name)
		for j := range 3 {
			if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: fmt.Sprintf("line %d", j)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			ev, err := st.Receive()
			if err != nil {
				break
			}
			if m := ev.GetMessage(); m != nil {
				got = append(got, m.GetText())
			}
			if ev.GetLeft().GetName() == name {
				got = append(got, "left")
			}
		}
		if want := "line 0, line 1, line 2, left"; strings.Join(got, ", ") != want {
			t.Errorf("%s sent 3 lines and left; it received %q, want %q", name, strings.Join(got, ", "), want)
		}
	}
}

// TestNameShowsAsItself: a name is refused unless it shows as itself.
// Before, only control characters were refused, so a name made of a
// zero-width space or of empty bidi isolates was blank on the page, and
// "\u202eadA" (a right-to-left override) displayed as "Ada". Format
// characters (Unicode Cf) are refused, but for the joiners emoji and some
// scripts need, and a name needs a letter, digit, punctuation mark or
// symbol.
func TestNameShowsAsItself(t *testing.T) {
	for _, tc := range []struct {
		name, want string // want "" for a refusal
	}{
		{"Ada", "Ada"},
		{"  Zoë  ", "Zoë"},
		{"Grace Hopper", "Grace Hopper"},
		{"李雷", "李雷"},
		{"R2-D2", "R2-D2"},
		{"🙂", "🙂"},
		{"", ""},
		{"   ", ""},
		{"\u200b", ""},                // zero-width space
		{"\u202eadA", ""},             // right-to-left override: shows as "Ada"
		{"\u2066\u2069", ""},          // an empty left-to-right isolate
		{"👩\u200d💻", "👩\u200d💻"},      // an emoji ZWJ sequence
		{"\u200d", ""},                // a joiner alone
		{"\ufeffAda", ""},             // byte order mark
		{"\u00a0\u3000", ""},          // spaces only (no-break, ideographic)
		{"\u0301", ""},                // a combining mark alone
		{"Ada\tLovelace", ""},         // a control character
		{strings.Repeat("x", 33), ""}, // too long
		{strings.Repeat("ü", 32), strings.Repeat("ü", 32)},
		// Letters and marks that are drawn as nothing (Unicode's
		// Other_Default_Ignorable_Code_Point): a Hangul filler alone
		// showed as a blank name, and after "Ada" as Ada.
		{"\u3164", ""},       // Hangul filler
		{"\uffa0", ""},       // halfwidth Hangul filler
		{"Ada\u3164", ""},    // shows as "Ada"
		{"A\u034fda", ""},    // combining grapheme joiner
		{"한국어", "한국어"},       // Hangul syllables are fine
		{"\u115f\u1160", ""}, // conjoining fillers alone
	} {
		got, err := cleanName(tc.name)
		if tc.want == "" {
			if err == nil || wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
				t.Errorf("cleanName(%+q) = %+q, %v; want invalid_argument", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanName(%+q) = %+q, %v; want %+q", tc.name, got, err, tc.want)
		}
	}
}

// TestNameUniqueInRoom: a join under the name of a member of the room,
// ignoring case, is refused with already_exists, so that the page, which
// tells its own messages by name, never shows another member's as its
// own (before, two tabs named Ada each did). The name is free in other
// rooms, and again once its member has left.
func TestNameUniqueInRoom(t *testing.T) {
	_, url := startService(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ada := join(t, ctx, url, "lobby", "Ada")
	// "Ada\ufe00" and "Ada\U000e0100" (variation selectors other than
	// the emoji ones, drawn as nothing after a letter) were admitted
	// beside Ada.
	for _, name := range []string{"Ada", "ada", " ADA ", "Ada\u200d", "A\u200cda\ufe0f", "Ada\ufe00", "A\U000e0100da", "Ada\u180b"} {
		st, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithCodecs(codec.Proto)).Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: "lobby", Name: name}}}); err != nil {
			t.Fatal(err)
		}
		res, err := st.Receive()
		var werr *wsrpc.Error
		if wsrpc.CodeOf(err) != wsrpc.CodeAlreadyExists || !errors.As(err, &werr) || werr.Message() != "name taken in this room" {
			t.Errorf("%q joining the lobby with Ada in it: %v, %v; want already_exists: name taken in this room", name, res, err)
		}
		st.Close()
	}
	leave(t, join(t, ctx, url, "elsewhere", "ada"))
	leave(t, ada)
	leave(t, join(t, ctx, url, "lobby", "ADA"))
}

// TestSlowMemberDisconnectedUnavailable: a member who falls a whole queue
// behind the room (its client stopped reading, its socket buffers full)
// is disconnected, as ever, but with unavailable (4014), which clients
// with wsrpc.WithReconnect retry, so that a member that fell behind comes
// back and rejoins; it was resource_exhausted, which clients take for
// final.
func TestSlowMemberDisconnectedUnavailable(t *testing.T) {
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, nil)
	closed := make(chan wsrpc.CloseInfo, 1)
	mux := http.NewServeMux()
	mux.Handle(s.Handler(wsrpc.WithOnClose(func(_ context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
		if info.Spec.Procedure == chatv1wsrpc.ChatServiceChatProcedure && strings.Contains(ci.Reason, "too slow") {
			closed <- ci
		}
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { s.Close(); srv.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A tiny receive buffer, so that the server's writes to a member who
	// never reads stall soon.
	d := sockbuf.Dialer(2048, 0)
	stalled := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	mallory, err := chatv1wsrpc.NewChatServiceClient(stalled, srv.URL, wsrpc.WithCodecs(codec.Proto)).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mallory.Close()
	if err := mallory.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: "lobby", Name: "Mallory"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Receive(); err != nil {
		t.Fatal(err)
	}
	// Never read again. Ada talks, 16 lines at a time, reading her own
	// back, until the room has disconnected Mallory.
	ada := join(t, ctx, srv.URL, "lobby", "Ada")
	s.mu.Lock()
	topic := s.rooms["lobby"].topic
	s.mu.Unlock()
	line := strings.Repeat("x", 1000)
	for sent := 0; topic.Stats().Disconnected == 0; sent += 16 {
		if sent > 50000 {
			t.Fatal("Mallory was never disconnected")
		}
		for range 16 {
			if err := ada.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: line}}); err != nil {
				t.Fatal(err)
			}
		}
		for got := 0; got < 16; {
			ev, err := ada.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetMessage() != nil {
				got++
			}
		}
	}
	select {
	case ci := <-closed:
		if want := wsrpc.CodeUnavailable.CloseCode(); ci.Code != want || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
			t.Errorf("Mallory's session closed with %v, want %d (unavailable)", ci, want)
		}
	case <-ctx.Done():
		t.Fatal("Mallory's session never ended")
	}
}

// joinWith sends a join of room as name with the client token and returns
// the session once welcomed, or why not. Safe from any goroutine.
func joinWith(t *testing.T, ctx context.Context, url, room, name, token string) (*session, error) {
	t.Helper()
	st, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithCodecs(codec.Proto)).Chat(ctx)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: room, Name: name, ClientToken: token}}}); err != nil {
		return nil, err
	}
	res, err := st.Receive()
	if err != nil {
		return nil, err
	}
	if res.GetWelcome() == nil {
		return nil, fmt.Errorf("%s joining %s: %v; want a welcome", name, room, res)
	}
	return st, nil
}

// users is the number of sessions and feeds using s's room name.
func users(s *Service, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[name]; r != nil {
		return r.users
	}
	return 0
}

// waitUsers waits until s's room name has n users.
func waitUsers(t *testing.T, s *Service, name string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); users(s, name) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("room %s has %d users after 20 s, want %d", name, users(s, name), n)
		}
	}
}

// presence is what st sees of joins and departures until text, from
// anyone, comes through the room.
func presence(t *testing.T, st *session, text string) []string {
	t.Helper()
	var saw []string
	for {
		ev, err := st.Receive()
		if err != nil {
			t.Fatalf("waiting for %q (saw %q): %v", text, saw, err)
		}
		switch {
		case ev.GetJoined() != nil:
			saw = append(saw, ev.GetJoined().GetName()+" joined")
		case ev.GetLeft() != nil:
			saw = append(saw, ev.GetLeft().GetName()+" left")
		case ev.GetMessage().GetText() == text:
			return saw
		}
	}
}

// replacedEnd reports whether err is how a session replaced by a newer
// one of its client ends.
func replacedEnd(err error) bool {
	var werr *wsrpc.Error
	return wsrpc.CodeOf(err) == wsrpc.CodeAborted && errors.As(err, &werr) && werr.Message() == "replaced by a newer connection of the same client"
}

// waitReplaced reads st until it ends, which must be as replaced.
func waitReplaced(t *testing.T, st *session) {
	t.Helper()
	for {
		if _, err := st.Receive(); err != nil {
			if !replacedEnd(err) {
				t.Errorf("the replaced session ended with %v; want aborted: replaced by a newer connection of the same client", err)
			}
			return
		}
	}
}

// TestRejoinSameClientToken: a member who joins again under its name
// with the client token of its earlier session, which the server still
// holds (a page whose network dropped or that was reloaded, before the
// keepalive noticed), is admitted at once: the earlier session is closed
// with aborted, "replaced by a newer connection of the same client",
// which its client reads, and the room sees it plainly, the earlier
// session's departure, then the new join, once each. A name spelled
// otherwise ("ada" for "Ada") is admitted the same way. The name stays
// taken for other tokens and none. Before, the room saw nothing of a
// rejoin under the same name, its announcements inherited from session
// to session.
func TestRejoinSameClientToken(t *testing.T) {
	for _, rejoin := range []string{"Ada", "ada"} {
		t.Run(rejoin, func(t *testing.T) {
			s, url := startService(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const token = "0b9e4f9c-3f51-4f0c-9d8e-tab-one"
			old, err := joinWith(t, ctx, url, "lobby", "Ada", token)
			if err != nil {
				t.Fatal(err)
			}
			say(t, old, "first") // Ada's join is out: Bob joins after it
			bob := join(t, ctx, url, "lobby", "Bob")
			waitUsers(t, s, "lobby", 2)

			ada, err := joinWith(t, ctx, url, "lobby", rejoin, token)
			if err != nil {
				t.Fatalf("%s rejoining with the token of a session the server still holds: %v; want a welcome", rejoin, err)
			}
			waitReplaced(t, old)
			waitUsers(t, s, "lobby", 2) // the replaced session's handler has ended
			say(t, ada, "back")
			if saw, want := presence(t, bob, "back"), []string{"Ada left", rejoin + " joined"}; !slices.Equal(saw, want) {
				t.Errorf("Bob saw %q around the rejoin, want %q", saw, want)
			}
			for _, other := range []string{"", "another tab"} {
				if _, err := joinWith(t, ctx, url, "lobby", "ADA", other); wsrpc.CodeOf(err) != wsrpc.CodeAlreadyExists {
					t.Errorf("ADA joining with token %q after the rejoin: %v; want already_exists", other, err)
				}
			}
			leave(t, ada)
			if err := bob.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: "after"}}); err != nil {
				t.Fatal(err)
			}
			if saw, want := presence(t, bob, "after"), []string{rejoin + " left"}; !slices.Equal(saw, want) {
				t.Errorf("Bob saw %q once Ada left, want %q", saw, want)
			}
		})
	}
}

// TestRejoinWhileHeldSessionSilent: the usual rejoin, after a network
// drop: the client of the held session is gone silent, so its session
// does not end when it is replaced (here the close timeout is an hour
// and the client answers nothing until the end). The new session is
// admitted meanwhile, and the room sees the held session's departure,
// then the new join. When the held session does end, later, it neither
// removes the new member nor announces anything. A token of
// MaxTokenLen bytes is accepted, a longer one refused.
func TestRejoinWhileHeldSessionSilent(t *testing.T) {
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, nil)
	mux := http.NewServeMux()
	mux.Handle(s.Handler(wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: time.Hour})))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { s.Close(); srv.Close(); h.Close() })
	url := srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const token = "tab-7"
	old, err := joinWith(t, ctx, url, "r", "Ada", token)
	if err != nil {
		t.Fatal(err)
	}
	say(t, old, "first") // Ada's join is out: Bob joins after it; old never reads again
	bob := join(t, ctx, url, "r", "Bob")
	ada, err := joinWith(t, ctx, url, "r", "Ada", token)
	if err != nil {
		t.Fatalf("Ada rejoining while her held session is silent: %v; want a welcome", err)
	}
	say(t, ada, "back")
	if saw, want := presence(t, bob, "back"), []string{"Ada left", "Ada joined"}; !slices.Equal(saw, want) {
		t.Errorf("Bob saw %q around the rejoin, want %q", saw, want)
	}
	if n := users(s, "r"); n != 3 {
		t.Fatalf("the room has %d users, want 3: the held session, still closing, Bob and Ada", n)
	}
	for _, other := range []string{"", "tab-8"} {
		if _, err := joinWith(t, ctx, url, "r", "Ada", other); wsrpc.CodeOf(err) != wsrpc.CodeAlreadyExists {
			t.Errorf("Ada joining with token %q after the rejoin: %v; want already_exists", other, err)
		}
	}

	// The held session's client answers the close at last.
	old.Close()
	waitUsers(t, s, "r", 2)
	if _, err := joinWith(t, ctx, url, "r", "ada", "tab-8"); wsrpc.CodeOf(err) != wsrpc.CodeAlreadyExists {
		t.Errorf("ada joining from another tab once the held session ended: %v; want already_exists", err)
	}
	say(t, ada, "still here")
	if saw := presence(t, bob, "still here"); len(saw) != 0 {
		t.Errorf("Bob saw %q once the held session ended, want nothing", saw)
	}

	if _, err := joinWith(t, ctx, url, "r", "Eve", strings.Repeat("x", MaxTokenLen+1)); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Errorf("a join with a token of %d bytes: %v; want invalid_argument", MaxTokenLen+1, err)
	}
	if _, err := joinWith(t, ctx, url, "r", "Eve", strings.Repeat("x", MaxTokenLen)); err != nil {
		t.Errorf("a join with a token of %d bytes: %v; want a welcome", MaxTokenLen, err)
	}
}

// TestRejoinChain: sessions of one client that replace each other in
// quick succession, some before they were welcomed, end the same way:
// the last one stays, every other ends as replaced, and the room sees
// each session that announced a join leave before the next one joins.
func TestRejoinChain(t *testing.T) {
	s, url := startService(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const token = "tab-9"
	first, err := joinWith(t, ctx, url, "r", "Ada", token)
	if err != nil {
		t.Fatal(err)
	}
	say(t, first, "first") // Ada's join is out: Bob joins after it
	bob := join(t, ctx, url, "r", "Bob")

	// Names alike, so that Bob can tell the sessions apart.
	names := []string{"ADA", "ada", "aDa", "adA", "AdA", "aDA"}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		welcomed = make(map[string]*session)
	)
	for _, name := range names {
		wg.Go(func() {
			st, err := joinWith(t, ctx, url, "r", name, token)
			if err != nil {
				if !replacedEnd(err) {
					t.Errorf("%s rejoining: %v; want a welcome, or aborted as replaced", name, err)
				}
				return
			}
			mu.Lock()
			welcomed[name] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitReplaced(t, first)
	// Every welcomed session but one ends as replaced.
	type end struct {
		name string
		err  error
	}
	ended := make(chan end, len(names))
	for name, st := range welcomed {
		go func() {
			for {
				if _, err := st.Receive(); err != nil {
					ended <- end{name, err}
					return
				}
			}
		}()
	}
	for range len(welcomed) - 1 {
		select {
		case e := <-ended:
			if !replacedEnd(e.err) {
				t.Errorf("%s ended with %v; want aborted as replaced", e.name, e.err)
			}
			delete(welcomed, e.name)
		case <-ctx.Done():
			t.Fatalf("sessions still open: %d, want 1", len(welcomed))
		}
	}
	var last string
	for name := range welcomed {
		last = name
	}
	// The last one's message comes after its join.
	if err := welcomed[last].Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: "mark"}}); err != nil {
		t.Fatal(err)
	}
	saw := presence(t, bob, "mark")
	// "Ada left", then pairs "X joined", "X left", then "last joined".
	ok := len(saw)%2 == 0 && len(saw) >= 2 && saw[0] == "Ada left" && saw[len(saw)-1] == last+" joined"
	joins := make(map[string]int)
	for i := 1; ok && i < len(saw); i += 2 {
		name, isJoin := strings.CutSuffix(saw[i], " joined")
		joins[name]++
		ok = isJoin && joins[name] == 1 && (i == len(saw)-1 || saw[i+1] == name+" left")
	}
	if !ok {
		t.Errorf("Bob saw %q; want Ada leave, then each session join and leave in turn, the last (%s) join", saw, last)
	}
	waitUsers(t, s, "r", 2)
}

// TestRefusalSaysWhy: a join refused for its name or room says what a
// name or room must be, however long the one given. The refusal reaches
// the client as the close reason, cut to 123 bytes, and it started with
// the name quoted: a name or room of 100 characters left only 'name
// "aaaa…', and the rule was cut off.
func TestRefusalSaysWhy(t *testing.T) {
	_, url := startService(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	long := strings.Repeat("é", 100)
	for _, tc := range []struct{ room, name, want string }{
		{"lobby", long, "1 to 32 printable characters"},
		{"lobby", strings.Repeat("a", 33), "1 to 32 printable characters"},
		{strings.Repeat("a", 200), "Ada", "1 to 32 lowercase letters"},
	} {
		_, err := joinWith(t, ctx, url, tc.room, tc.name, "")
		var werr *wsrpc.Error
		if wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument || !errors.As(err, &werr) || !strings.Contains(werr.Message(), tc.want) {
			t.Errorf("join of %.10q… as %.10q…: %v; want invalid_argument saying %q", tc.room, tc.name, err, tc.want)
		}
	}
}
