// Package chatserver is the chat service of examples/chat: rooms whose
// activity is broadcast through a runtime/hub topic, a WebSocket session
// per member (ChatService.Chat) and an SSE feed per watcher
// (ChatService.Watch) with ids and resumption.
//
// Each room is one topic, "chat.room.<room>", of WatchResponse messages.
// A Chat session publishes its join, its messages and its departure there
// and subscribes to it to receive the room's activity; a Watch stream
// reads the topic's replay store (an activityLog) from a cursor, woken by
// a subscription, so its event ids are the hub's ("<node>-<seq>", the
// same on every node) and a reconnecting EventSource resumes on any node
// that saw its last event.
//
// A node creates a room when someone joins or watches it there, and
// releases it (topic closed, history dropped) once it has had no member
// and no watcher for Options.RoomIdle, a minute by default: a feed that
// reconnects later starts over, as on a node that never saw the room.
package chatserver

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wsrpc/wsrpc"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/gen/examples/chat/v1/chatv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Limits on what members send and on what the server keeps.
const (
	DefaultRoom    = "lobby"
	MaxNameLen     = 32   // runes in a member's name
	MaxTextLen     = 1000 // runes in one message
	MaxTokenLen    = 128  // bytes in a join's client token
	MaxRooms       = 256  // rooms one node serves
	DefaultHistory = 500  // events kept per room for replay
	// DefaultRoomIdle is how long a room no one uses (no member, no
	// watcher) is kept before it is released. A minute covers a page
	// that reloads or an EventSource that reconnects after a network
	// blip, which then resume with the room's history; beyond it a room
	// would only hold one of the MaxRooms slots and up to History events
	// for nobody.
	DefaultRoomIdle = time.Minute
	// DefaultKeepalive is how often a Chat session is pinged, and how
	// long its pong may take: a member whose device vanished without
	// closing (sleep, lost network) leaves the room within two periods
	// instead of staying listed while the TCP connection lingers.
	DefaultKeepalive = 30 * time.Second
	// watchBacklog is how much recent activity a fresh watcher starts with.
	watchBacklog = 50
	// leaveFlush bounds how long a member who ended its side still
	// receives the activity queued for it, up to its own departure: its
	// last messages were published before it left, and a client that
	// ends its input right after them (printf 'hi\n' | client) is to see
	// them. A healthy client reads them in milliseconds; one that does
	// not is not waited for longer.
	leaveFlush = time.Second
)

// Options configures a Service. A nil *Options means all defaults.
type Options struct {
	// History is the number of events each room keeps for watchers that
	// resume with Last-Event-ID. Default DefaultHistory.
	History int
	// Logger receives what has no caller to return to (broker failures).
	// Default: discard.
	Logger *log.Logger
	// RoomIdle is how long a room with no member and no watcher is kept
	// before it is released: its topic closed, its history dropped, its
	// slot among MaxRooms freed. Someone who comes back later starts the
	// room over. Default DefaultRoomIdle.
	RoomIdle time.Duration
	// Keepalive is the interval between pings on a Chat session and the
	// time its pong may take before the connection is dropped and the
	// member has left. Browsers and the Go client answer pings as they
	// read. Default DefaultKeepalive.
	Keepalive time.Duration
}

// Service implements chatv1wsrpc.ChatServiceHandler on a hub.
//
// Concurrency: safe for concurrent use; mu guards rooms, each room's
// users, members, idle timer and gen, closed and the session count's
// additions.
type Service struct {
	chatv1wsrpc.UnimplementedChatServiceHandler

	hub       *hub.Hub
	history   int
	roomIdle  time.Duration
	keepalive time.Duration
	logger    *log.Logger
	stop      context.Context // done when Close starts
	cancel    context.CancelFunc

	mu       sync.Mutex
	rooms    map[string]*room
	closed   bool
	sessions sync.WaitGroup // Chat handlers running
}

// room is one topic and its activity log, and who uses them here: a room
// no one uses is released after Service.roomIdle (see Service.release).
type room struct {
	name  string
	topic *hub.Topic[*chatv1.WatchResponse]
	log   *activityLog
	users int         // Chat sessions and Watch streams in the room
	idle  *time.Timer // runs expire once users has been 0 for roomIdle; nil while used
	gen   uint64      // counts idle timers: a stale one finds a newer gen and does nothing
	// members are the room's members on this node by name, each from
	// its join until its departure is published or a newer session of
	// its client replaces it: no two names are alike (see Service.claim).
	members map[string]*member
}

// member is one Chat session's claim on its name in a room.
//
// Concurrency: its fields are set before it is shared; gone is closed
// once, by its session.
type member struct {
	name  string
	token string             // the join's client token; "" for none, never replaced
	end   context.CancelFunc // ends the session as replaced; only cancels, so callable under Service.mu
	// gone is closed once the session's departure, if it announced a
	// join, is published: a session that replaces it announces its own
	// join after that.
	gone chan struct{}
}

// New returns a service whose rooms are topics on h.
func New(h *hub.Hub, opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard, "", 0)
	}
	if o.RoomIdle <= 0 {
		o.RoomIdle = DefaultRoomIdle
	}
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	stop, cancel := context.WithCancel(context.Background())
	return &Service{
		hub: h, history: o.History, roomIdle: o.RoomIdle, keepalive: o.Keepalive, logger: o.Logger,
		stop: stop, cancel: cancel, rooms: make(map[string]*room),
	}
}

// Handler returns the path and handler to mount the service on, with
// opts added (wsrpc.WithTracker, for a server that shuts down with
// wsrpc.Shutdown). Chat sessions are pinged every Options.Keepalive; SSE
// streams send a heartbeat comment every 15 s so idle feeds survive
// proxies.
func (s *Service) Handler(opts ...wsrpc.Option) (string, http.Handler) {
	return chatv1wsrpc.NewChatServiceHandler(s, append([]wsrpc.Option{
		wsrpc.WithAcceptOptions(&websocket.AcceptOptions{PingInterval: s.keepalive, PongTimeout: s.keepalive}),
		wsrpc.WithSSEOptions(&sse.StreamOptions{
			Heartbeat:    15 * time.Second,
			WriteTimeout: 10 * time.Second,
		}),
	}, opts...)...)
}

// Close ends every Chat session with CodeUnavailable ("server shutting
// down"), which clients with wsrpc.WithReconnect retry, and waits for
// their handlers; later sessions are refused. Watch streams end with
// their requests' contexts (the http.Server's), without an end event, so
// clients reconnect elsewhere or later. Close does not close the hub, nor
// the rooms' topics (closing the hub does); rooms are no longer released
// once unused. Idempotent. A server that shuts down with wsrpc.Shutdown
// (the handler given wsrpc.WithTracker, the hub to Shutdown) has its
// sessions closed with 1001 by then, and calls Close after it to stop
// the rooms' idle timers.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for _, r := range s.rooms {
		if r.idle != nil {
			r.idle.Stop()
			r.idle = nil
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.sessions.Wait()
}

// room returns the room called name, creating its topic on first use,
// and counts the caller among its users until it calls release. Watch
// counts too: a feed may follow a room that only other nodes' members
// use, and its slot must be freed the same way.
func (s *Service) room(name string) (*room, error) {
	if name == "" {
		name = DefaultRoom
	}
	if !validRoom(name) {
		// The rule first, the name last: see badName.
		return nil, wsrpc.Errorf(wsrpc.CodeInvalidArgument, "a room's name has 1 to 32 lowercase letters, digits, '-' or '_': %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rooms[name]; ok {
		r.users++
		if r.idle != nil {
			r.idle.Stop() // if it fired already, expire finds a user and keeps the room
			r.idle = nil
		}
		return r, nil
	}
	if len(s.rooms) >= MaxRooms {
		return nil, wsrpc.Errorf(wsrpc.CodeResourceExhausted, "this server has %d rooms already", MaxRooms)
	}
	r := &room{name: name, log: newActivityLog(s.history)}
	t, err := hub.NewTopic(s.hub, "chat.room."+name, &hub.TopicOptions[*chatv1.WatchResponse]{
		// A member who falls a whole queue behind (hub.DefaultQueueSize,
		// 1024 events: far more than a burst, such as the one NATS
		// flushes after an outage, which a healthy member absorbs) is
		// disconnected rather than shown a conversation with holes.
		Policy: hub.Disconnect,
		// Recorded events are those a wsrpc SSE handler sends (the oneof
		// case's value, typed by the case), so the generated client and a
		// page's EventSource read them like any other.
		SSECodec:  wsrpc.SSEEventCodec,
		EventType: wsrpc.SSEEventType[*chatv1.WatchResponse],
		Replay:    r.log,
	})
	if err != nil {
		return nil, wsrpc.NewError(wsrpc.CodeUnavailable, err)
	}
	r.topic = t
	r.users = 1
	s.rooms[name] = r
	return r, nil
}

// release ends a use of r that room counted; the last user leaving starts
// r's idle timer.
func (s *Service) release(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.users--; r.users > 0 || s.closed {
		return
	}
	r.gen++
	gen := r.gen
	r.idle = time.AfterFunc(s.roomIdle, func() { s.expire(r, gen) })
}

// claim records m among r's members until unclaim, or refuses it with
// CodeAlreadyExists when a member of r has a name that shows alike (see
// sameName): the page tells its own messages from others' by name, and
// "Ada" beside "ada" or "Ada\u200d" could not be told apart by a reader
// either. Members are known per node:
// over a shared broker, a member of another node may have the name.
//
// A member who joined with m's client token (not empty) is an earlier
// session of m's client, which the server holds until its keepalive
// gives up on it (within a minute by default) when the network dropped
// or the tab was reloaded meanwhile: m takes its place at once, the
// earlier session is ended, and claim returns it.
func (s *Service) claim(r *room, m *member) (prev *member, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range r.members {
		if !sameName(o.name, m.name) {
			continue
		}
		if m.token == "" || o.token != m.token {
			return nil, wsrpc.Errorf(wsrpc.CodeAlreadyExists, "name taken in this room")
		}
		prev = o // the only one: no two members' names are alike
	}
	if r.members == nil {
		r.members = make(map[string]*member)
	}
	if prev != nil {
		delete(r.members, prev.name)
		prev.end()
	}
	r.members[m.name] = m
	return prev, nil
}

// unclaim frees the name m claimed, once its departure is published:
// someone who joins under it later comes after it in the room. A member
// that was replaced holds no name any more: its successor keeps its own.
func (s *Service) unclaim(r *room, m *member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.members[m.name] == m {
		delete(r.members, m.name)
	}
}

// expire releases r if it is still unused since the idle timer of
// generation gen started. It closes the topic under s.mu: a member who
// joins meanwhile either finds r in use, or finds no room and creates a
// new one, whose topic can take the name only once this one has freed it.
// With no subscriber left, Close has no write to wait for.
func (s *Service) expire(r *room, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.gen != gen || r.users > 0 || s.closed || s.rooms[r.name] != r {
		return
	}
	delete(s.rooms, r.name)
	r.idle = nil
	if err := r.topic.Close(); err != nil {
		s.logger.Printf("chat: room %s: %v", r.name, err)
	}
}

// publish sends ev to the room on every node. The local subscribers have
// it even when the broker fails, so a failure is logged, not returned. A
// room closed meanwhile (the hub shutting down alongside the sessions,
// see run) has no one left to tell on this node: not worth a log line
// per member.
func (s *Service) publish(r *room, ev *chatv1.WatchResponse) {
	if err := r.topic.Publish(context.Background(), ev); err != nil && !errors.Is(err, hub.ErrClosed) {
		s.logger.Printf("chat: room %s: %v", r.name, err)
	}
}

// replacedReason ends a session that a newer one of its client replaced
// (see Service.claim), with CodeAborted, which neither the page nor
// wsrpc.WithReconnect retries: if the newer session is not this
// connection's own page's (a duplicated tab shares its token), the page
// shows the reason and stays out rather than taking the name back.
const replacedReason = "replaced by a newer connection of the same client"

// Chat is one member's session: a join, then text until the client is
// done. The member receives the room's activity, its own included; once
// the client has ended its side, up to its own departure (for at most
// leaveFlush), then the session ends. A join under the name of a member
// of the room, ignoring case, is refused with CodeAlreadyExists, unless
// that member joined with the same client token: see claim.
func (s *Service) Chat(ctx context.Context, st *wsrpc.BidiStream[chatv1.ChatRequest, chatv1.ChatResponse]) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return wsrpc.Errorf(wsrpc.CodeUnavailable, "server shutting down")
	}
	s.sessions.Add(1)
	s.mu.Unlock()
	defer s.sessions.Done()
	// Close, from another goroutine: the loop below is blocked receiving
	// and ends when the client answers the close.
	defer context.AfterFunc(s.stop, func() { st.Close(wsrpc.CodeUnavailable, "server shutting down") })()

	first, err := st.Receive()
	if errors.Is(err, io.EOF) {
		return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "the first request must be a join")
	}
	if err != nil {
		return err
	}
	join := first.GetJoin()
	if join == nil {
		return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "the first request must be a join")
	}
	name, err := cleanName(join.GetName())
	if err != nil {
		return err
	}
	if len(join.GetClientToken()) > MaxTokenLen {
		return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "a client token has at most %d bytes", MaxTokenLen)
	}
	r, err := s.room(join.GetRoom())
	if err != nil {
		return err
	}
	defer s.release(r) // after the departure is published (defers below)
	replaced, end := context.WithCancel(context.Background())
	defer end()
	me := &member{name: name, token: join.GetClientToken(), end: end, gone: make(chan struct{})}
	prev, err := s.claim(r, me)
	if err != nil {
		return err
	}
	defer s.unclaim(r, me) // after the departure too

	// depart publishes the member's departure if its join was published,
	// and closes me.gone; once. A session that ends before its join
	// closes me.gone after prev's: its successor's join comes after
	// prev's departure too.
	var (
		own    atomic.Pointer[chatv1.Left] // the departure: see sent below
		joined bool                        // set before depart may run on another goroutine
	)
	depart := sync.OnceFunc(func() {
		if joined {
			left := &chatv1.Left{Room: r.name, Name: name, Time: timestamppb.Now()}
			own.Store(left)
			s.publish(r, &chatv1.WatchResponse{Event: &chatv1.WatchResponse_Left{Left: left}})
		} else if prev != nil {
			<-prev.gone
		}
		close(me.gone)
	})
	defer depart() // however the session ends before its join
	if prev != nil {
		// The room sees the rejoin as a departure, then a join. A session
		// replaced in turn meanwhile announces neither.
		select {
		case <-prev.gone:
		case <-replaced.Done():
			return wsrpc.Errorf(wsrpc.CodeAborted, replacedReason)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	welcome := &chatv1.Welcome{Room: r.name, Name: name, Node: s.hub.NodeID()}
	if err := st.Send(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: welcome}}); err != nil {
		return err
	}

	// The subscription's writer goroutine sends the room's activity; Send
	// is safe alongside this goroutine's Receive. It closes sent once it
	// has sent the member's own departure, own (set before it is
	// published): a function subscriber receives a copy, equal to it.
	sent := make(chan struct{})
	sub, err := r.topic.SubscribeFunc(func(ev *chatv1.WatchResponse) error {
		if err := st.Send(toChat(ev)); err != nil {
			return err
		}
		if l := ev.GetLeft(); l != nil && proto.Equal(l, own.Load()) {
			select {
			case <-sent: // an equal departure of another node's member
			default:
				close(sent)
			}
		}
		return nil
	})
	if err != nil {
		return wsrpc.NewError(wsrpc.CodeUnavailable, err)
	}
	var watch sync.WaitGroup
	watch.Go(func() {
		<-sub.Done()
		switch err := sub.Err(); {
		case errors.Is(err, hub.ErrSlowConsumer):
			// Unavailable, which clients with wsrpc.WithReconnect retry:
			// a member that fell behind (a slow link, a device that
			// slept) comes back, rejoins and follows the room from
			// there.
			st.Close(wsrpc.CodeUnavailable, "too slow: fell behind the room")
		case errors.Is(err, hub.ErrClosed):
			st.Close(wsrpc.CodeUnavailable, "room closed")
		}
		// nil: the handler closed it; another error: a failed send, the
		// connection is gone and the handler's Receive fails too.
	})
	s.publish(r, &chatv1.WatchResponse{Event: &chatv1.WatchResponse_Joined{Joined: &chatv1.Joined{
		Room: r.name, Name: name, Time: timestamppb.Now(),
	}}})
	joined = true
	ended := false // the member ended its side of the stream
	defer func() {
		depart()
		if ended {
			// Closing the subscription drops what is queued for the
			// member, its own last messages included. Its departure is
			// queued after them: once that is sent, so are they. Bounded
			// by leaveFlush; a member that stopped reading is cut as ever
			// (the connection's write timeout, the Disconnect policy).
			flush := time.NewTimer(leaveFlush)
			defer flush.Stop()
			select {
			case <-sent:
			case <-sub.Done(): // a failed send, too slow, the room closed
			case <-flush.C:
			case <-ctx.Done():
			case <-s.stop.Done():
			}
		}
		sub.Close()
		watch.Wait()
	}()
	// A replaced session departs at once: the loop below ends only once
	// the client answers the close, which one that vanished (the usual
	// reason to rejoin) never does, and the successor would wait out the
	// close timeout for the departure.
	defer context.AfterFunc(replaced, func() {
		depart()
		st.Close(wsrpc.CodeAborted, replacedReason)
	})()

	for req, err := range st.All() {
		if err != nil {
			return err
		}
		if req.GetJoin() != nil {
			return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "already joined %s as %s", r.name, name)
		}
		text, err := cleanText(req.GetText())
		if err != nil {
			return err
		}
		s.publish(r, &chatv1.WatchResponse{Event: &chatv1.WatchResponse_Message{Message: &chatv1.Message{
			Room: r.name, From: name, Text: text, Time: timestamppb.Now(),
		}}})
	}
	ended = true
	return nil
}

// Watch streams the room's activity: the recent history (or, for a client
// resuming with Last-Event-ID, everything after that event), then every
// event as it is recorded. The room topic's Follow reads the room's log
// with a cursor, so each event is sent once, in order, with the hub's id.
func (s *Service) Watch(ctx context.Context, req *chatv1.WatchRequest, st *wsrpc.ServerStream[chatv1.WatchResponse]) error {
	r, err := s.room(req.GetRoom())
	if err != nil {
		return err
	}
	defer s.release(r)
	start := func() (string, []sse.Event, error) {
		cursor := st.LastEventID()
		if cursor != "" {
			backlog, err := r.log.Since(cursor)
			if err == nil {
				return cursor, backlog, nil
			}
			if !errors.Is(err, sse.ErrUnknownID) {
				return "", nil, wsrpc.NewError(wsrpc.CodeInternal, err)
			}
		}
		// A fresh watcher, or one resuming from an event this node never
		// saw or no longer holds: start over with recent history (a page
		// drops the events it already shows by id).
		return "", r.log.Tail(watchBacklog), nil
	}
	err = r.topic.Follow(ctx, start, r.log.After, st.SendEvent)
	switch {
	case errors.Is(err, hub.ErrFellBehind):
		// The watcher fell a whole log behind; it must start over.
		return wsrpc.Errorf(wsrpc.CodeResourceExhausted, "fell behind the room's activity: %v", err)
	case errors.Is(err, hub.ErrClosed):
		return wsrpc.Errorf(wsrpc.CodeUnavailable, "room closed")
	}
	return err
}

// toChat is the session form of a room event.
func toChat(ev *chatv1.WatchResponse) *chatv1.ChatResponse {
	switch e := ev.GetEvent().(type) {
	case *chatv1.WatchResponse_Joined:
		return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Joined{Joined: e.Joined}}
	case *chatv1.WatchResponse_Left:
		return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Left{Left: e.Left}}
	case *chatv1.WatchResponse_Message:
		return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Message{Message: e.Message}}
	}
	return &chatv1.ChatResponse{}
}

func validRoom(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cleanName trims name and checks that it shows as itself: no control
// characters, no format characters (Unicode Cf: invisible ones like the
// zero-width space, or ones that reorder what follows, like the bidi
// override that shows "\u202eadA" as "Ada") other than the zero-width
// joiner and non-joiner, which emoji sequences (👩‍💻) and Persian and
// Indic names need; no other character that Unicode says is drawn as
// nothing (Other_Default_Ignorable_Code_Point, UAX #44: the Hangul
// fillers, which are letters, and the combining grapheme joiner), so that
// neither "\u3164" passes for a name nor "Ada\u3164" for Ada; and at
// least one letter, digit, punctuation mark or symbol, so that it is not
// blank.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	hidden := func(r rune) bool {
		return unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != zwj && r != zwnj) ||
			unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
	}
	visible := func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
	}
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxNameLen || strings.IndexFunc(name, hidden) >= 0 || strings.IndexFunc(name, visible) < 0 {
		return "", badName(name)
	}
	return name, nil
}

// badName refuses name. The rule comes first and the name last: a
// session's error reaches its client as the close reason, cut to 123
// bytes (RFC 6455 §5.5), and a name far over the limit, quoted first,
// left only itself.
func badName(name string) error {
	return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "a name has 1 to %d printable characters: %q", MaxNameLen, name)
}

// The joiners cleanName allows.
const (
	zwj  = '\u200d'
	zwnj = '\u200c'
)

// sameName reports whether two names would show alike: equal ignoring
// case, joiners and variation selectors (U+FE00–FE0F, the emoji ones
// U+FE0E and U+FE0F among them, U+E0100–E01EF, the Mongolian ones), which
// change at most how the characters beside them are drawn, and after any
// other character nothing ("Ada\u200d" and "Ada\ufe00" show as "Ada").
func sameName(a, b string) bool {
	return strings.EqualFold(nameKey(a), nameKey(b))
}

func nameKey(name string) string {
	return strings.Map(func(r rune) rune {
		if r == zwj || r == zwnj || unicode.Is(unicode.Variation_Selector, r) {
			return -1
		}
		return r
	}, name)
}

func cleanText(text string) (string, error) {
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n == 0 || n > MaxTextLen {
		return "", wsrpc.Errorf(wsrpc.CodeInvalidArgument, "a message has 1 to %d characters", MaxTextLen)
	}
	if strings.IndexFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return "", wsrpc.Errorf(wsrpc.CodeInvalidArgument, "a message has no control characters")
	}
	return text, nil
}
