// Command client joins a room of examples/chat from a terminal with the
// generated Go client: each line typed is sent to the room, and the room's
// activity is printed as it happens.
//
//	go run ./examples/chat/client -name Ada            # msgpack
//	go run ./examples/chat/client -name Ada -codec proto -room gophers
//
// End input (Ctrl-D) to leave; Ctrl-C also leaves. A line the server
// would refuse, which would end the session (more than 1,000 characters,
// control characters such as an arrow key's escape sequence), is not
// sent: the client says so and stays in the room.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/gen/examples/chat/v1/chatv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// config is what the flags set.
type config struct {
	URL   string // the chat server's base URL
	Name  string
	Room  string
	Codec string // "msgpack" or "proto"
	// Token is the client token sent with the join: main draws one per
	// process, so that a join of this process under its name replaces
	// its own earlier session the server may still hold, and nobody
	// else's. Empty for none.
	Token string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "http://localhost:8080", "the chat server's base `URL`")
	flag.StringVar(&cfg.Name, "name", os.Getenv("USER"), "your display `name`")
	flag.StringVar(&cfg.Room, "room", "lobby", "the `room` to join")
	flag.StringVar(&cfg.Codec, "codec", codec.NameMsgpack, "wire `codec`: msgpack or proto")
	flag.Parse()
	cfg.Token = rand.Text()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Ctrl-C is a way to leave: the session then ends with the signal's
	// cancellation, which is no failure.
	if err := run(ctx, cfg, os.Stdin, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// run joins cfg.Room as cfg.Name, sends every line of in as a message and
// prints the room's activity to out until in ends (then it leaves and
// returns nil once the server has closed the session), ctx is done, or
// the session fails.
func run(ctx context.Context, cfg config, in io.Reader, out io.Writer) error {
	var cd codec.Codec
	switch cfg.Codec {
	case codec.NameMsgpack:
		cd = codec.Msgpack
	case codec.NameProto:
		cd = codec.Proto
	default:
		return fmt.Errorf("unknown codec %q: use msgpack or proto", cfg.Codec)
	}
	client := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, cfg.URL, wsrpc.WithCodecs(cd))
	st, err := client.Chat(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: cfg.Room, Name: cfg.Name, ClientToken: cfg.Token}}}); err != nil {
		return err
	}
	first, err := st.Receive()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	w := first.GetWelcome()
	if w == nil {
		return errors.New("join: the server sent no welcome")
	}
	fmt.Fprintf(out, "joined #%s as %s (node %s, codec %s)\n", w.GetRoom(), w.GetName(), w.GetNode(), st.Codec().Name())

	// Lines go out from their own goroutine; Send is safe alongside Receive.
	// inErr is the input's end: nil at EOF, else why it could not be read
	// on (a line longer than the scanner holds, 64 KiB, or a failed read)
	// or sent, sent before CloseSend so that it is there once the session
	// ends.
	var outMu sync.Mutex // both goroutines print
	inErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			// A proto3 string is UTF-8: a line that is not (a terminal in
			// a Latin-1 locale, a pasted file) would not marshal. Shown
			// with U+FFFD where its bytes were not UTF-8, it is sent.
			line := strings.ToValidUTF8(sc.Text(), "\uFFFD")
			// The server trims a message and refuses an empty one, ending
			// the session: skip blank lines, as the page does.
			if strings.TrimSpace(line) == "" {
				continue
			}
			if why := unsendable(line); why != "" {
				outMu.Lock()
				fmt.Fprintf(out, "! not sent: %s\n", why)
				outMu.Unlock()
				continue
			}
			if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: line}}); err != nil {
				// Either the session ended, and Receive reports why, or
				// the message could not be sent and the session goes on:
				// leave rather than go on without the input, so that
				// run does not wait for the room forever.
				inErr <- fmt.Errorf("sending: %w", err)
				st.CloseSend()
				return
			}
		}
		inErr <- sc.Err()
		st.CloseSend() // leave: the server ends the session
	}()
	for ev, err := range st.All() {
		if err != nil {
			return err
		}
		outMu.Lock()
		fmt.Fprintln(out, format(ev))
		outMu.Unlock()
	}
	// The member left; if the input did not end at EOF, the line that
	// stopped it and the rest were not sent: not a normal end.
	select {
	case err := <-inErr:
		if err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
	default:
	}
	return nil
}

// maxText is the longest message the server takes, in characters
// (chat.proto: 1 to 1000).
const maxText = 1000

// unsendable says why the server would refuse text, a line of input, as a
// message, or returns "". The server ends the session of a member who
// sends one (invalid_argument), and every line typed after it would be
// lost: the client keeps it back and says so, as the page's input field
// does not let it be typed. A terminal puts an arrow key's escape
// sequence ("\x1b[D") into the line it is typing.
func unsendable(text string) string {
	if n := utf8.RuneCountInString(strings.TrimSpace(text)); n > maxText {
		return fmt.Sprintf("%d characters, a message has at most %d", n, maxText)
	}
	if strings.IndexFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) >= 0 {
		return "it has control characters (an arrow key's escape sequence?)"
	}
	return ""
}

// continuation starts each further line of a message of several lines.
// No event line starts with it (they start with the time), so a member's
// text cannot print a line that passes for another member's message or
// for a join or departure.
const continuation = "    | "

// format is the room's activity event ev as printed: one line, or for a
// message of several lines (the server allows '\n' and '\t' in text) its
// first line and then each further one behind continuation. Tabs are
// printed as they are.
func format(ev *chatv1.ChatResponse) string {
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_Message:
		m := e.Message
		text := strings.ReplaceAll(m.GetText(), "\n", "\n"+continuation)
		return fmt.Sprintf("%s <%s> %s", m.GetTime().AsTime().Local().Format("15:04:05"), m.GetFrom(), text)
	case *chatv1.ChatResponse_Joined:
		return fmt.Sprintf("%s * %s joined", e.Joined.GetTime().AsTime().Local().Format("15:04:05"), e.Joined.GetName())
	case *chatv1.ChatResponse_Left:
		return fmt.Sprintf("%s * %s left", e.Left.GetTime().AsTime().Local().Format("15:04:05"), e.Left.GetName())
	}
	return "? unknown event"
}
