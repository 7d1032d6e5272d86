package websocket

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// ConnStats is a snapshot of a connection's counters (Conn.Stats). Every
// counter starts at zero when the handshake completes and only grows.
//
// The ratio of wire to payload bytes in one direction is what
// permessage-deflate (RFC 7692) saves there: WireBytesWritten /
// PayloadBytesWritten of 0.3 means the messages written took 30% of their
// size on the wire, framing included. Without compression the ratio is a
// little above 1 (the frame headers, and the control frames).
type ConnStats struct {
	// MessagesRead counts the data messages read to their end (RFC 6455
	// §5.6): a fragmented message counts once, when its last fragment has
	// been read. A message counts whether the application read it (Read,
	// ReadAppend, Reader read to io.EOF, a Poller's OnMessage), skipped
	// it (a Reader left unread, discarded by the next read) or Close read
	// it while waiting for the peer's close frame. A message that fails
	// the connection (too big, invalid UTF-8 or compressed data) does not
	// count. Raw mode (ReadFrame) counts no messages.
	MessagesRead uint64
	// MessagesWritten counts the data messages written: each Write or
	// WritePrepared that returned nil, each Writer whose Close returned
	// nil (a message of many fragments counts once). A reply Write left
	// in the write buffer for the next one (Write's doc comment) counts
	// already. Raw mode (WriteFrame) counts no messages.
	MessagesWritten uint64
	// PayloadBytesRead counts the application bytes of the messages
	// MessagesRead counts: after decompression, without framing. It
	// grows when a message ends, by the whole message.
	PayloadBytesRead uint64
	// PayloadBytesWritten counts the application bytes of the messages
	// MessagesWritten counts: before compression, without framing.
	PayloadBytesWritten uint64
	// WireBytesRead counts the bytes read from the connection after the
	// handshake: frame headers, masking keys, payloads as sent (so
	// compressed), control frames — what the TCP connection carried.
	// Bytes are counted as they are read from the socket, so a read that
	// takes several frames at once counts them all, before they are
	// parsed. What a failed connection drops while it lingers (RFC 6455
	// §7.1.7; see Conn) and what a client reads while it waits for the
	// server's FIN after the closing handshake are not counted. Over TLS
	// it counts the WebSocket bytes inside the TLS records, not the
	// records' own overhead.
	WireBytesRead uint64
	// WireBytesWritten counts the bytes written to the connection after
	// the handshake, with WireBytesRead's meaning: headers, masking keys,
	// compressed payloads, control frames. Bytes count once the socket
	// (or the net.Conn) took them; frames still in the write buffer, and
	// a write that failed (and so closed the connection), do not.
	WireBytesWritten uint64
	// PingsSent counts the ping frames this side wrote (RFC 6455 §5.5.2):
	// keepalive pings (PingInterval), Ping calls, raw mode's WriteFrame.
	// A ping counts as its write begins; a write that fails closes the
	// connection. A ping a frame extension refuses (OutgoingFrame) is not
	// written and does not count. Several Ping calls waiting behind one
	// busy write share one ping (Ping's doc comment), which counts once.
	PingsSent uint64
	// PongsReceived counts the pong frames read (§5.5.3), unsolicited
	// ones included.
	PongsReceived uint64
	// KeepaliveUnread counts the keepalive's pong timeouts (PingInterval,
	// PongTimeout) that did not close the connection because bytes from
	// the peer had reached the socket since the ping went out, unread:
	// they prove the peer alive, its pong most likely among them, though
	// nobody read it. It grows on a connection with keepalive on whose
	// application does not read for a while (it only writes, or its
	// Poller's Handler blocks), on Linux,
	// over TCP or Unix sockets and TLS on them; elsewhere such a
	// connection is closed with ErrPongTimeout and this stays 0.
	KeepaliveUnread uint64
	// LastRTT is the round-trip time of the last ping answered: from the
	// moment its frame began to be written to the arrival of its pong
	// (when the reading goroutine read it). 0 until a pong has answered a
	// ping. A pong answers the ping whose payload it carries, as the
	// keepalive matches them (the peer may answer only the latest of
	// several pings, §5.5.3); one that answers no ping written — an
	// unsolicited pong, or one for a ping answered already — counts in
	// PongsReceived but sets no RTT. Only the last 4 pings written are
	// remembered: the pong of an older one sets no RTT.
	LastRTT time.Duration
}

// connStats are a connection's counters (ConnStats says what each counts).
//
// Concurrency: every field is an atomic, added to by whoever does the
// counted work — the holder of readSem for reads and pongs (lastRTT is
// stored under pingState.mu too), of frameMu for socket writes and pings, the
// keepalive's timer for kaUnread, the caller of a Write, WritePrepared or
// Writer's Close that succeeded for messages written, so concurrent
// writers add to the same fields — and
// loaded by Stats from any goroutine, also after the connection closed.
// Stats loads them one by one, so a snapshot taken while messages flow
// may count a message in one field and not yet in another.
type connStats struct {
	msgsRead       atomic.Uint64
	payloadRead    atomic.Uint64
	wireRead       atomic.Uint64
	msgsWritten    atomic.Uint64
	payloadWritten atomic.Uint64
	wireWritten    atomic.Uint64
	pingsSent      atomic.Uint64
	pongsReceived  atomic.Uint64
	kaUnread       atomic.Uint64
	lastRTT        atomic.Int64 // nanoseconds
}

// Stats returns the connection's counters. It is safe from any goroutine
// at any time, also after the connection closed (the counters then stay
// as they were at its end). It costs a few atomic loads and allocates
// nothing; the counting itself costs a few atomic adds per message and
// one per system call.
func (c *Conn) Stats() ConnStats {
	s := &c.stats
	return ConnStats{
		MessagesRead:        s.msgsRead.Load(),
		MessagesWritten:     s.msgsWritten.Load(),
		PayloadBytesRead:    s.payloadRead.Load(),
		PayloadBytesWritten: s.payloadWritten.Load(),
		WireBytesRead:       s.wireRead.Load(),
		WireBytesWritten:    s.wireWritten.Load(),
		PingsSent:           s.pingsSent.Load(),
		PongsReceived:       s.pongsReceived.Load(),
		KeepaliveUnread:     s.kaUnread.Load(),
		LastRTT:             time.Duration(s.lastRTT.Load()),
	}
}

func (s *connStats) messageRead(n int64) {
	s.msgsRead.Add(1)
	s.payloadRead.Add(uint64(n))
}

func (s *connStats) messageWritten(n int) {
	s.msgsWritten.Add(1)
	s.payloadWritten.Add(uint64(n))
}

// pingTimesKept is how many written pings the connection remembers the
// time of. A connection rarely has more than two unanswered (the
// keepalive's and an application Ping's); a pong for one pushed out by
// later pings sets no RTT.
const pingTimesKept = 4

// pingTimes remembers when the last pings were written, by the number
// their payload carries, for the round-trip time of the one a pong
// answers. Part of the connection's pingState, allocated with the first
// ping (most connections never send one), and under its mu.
type pingTimes struct {
	seq  [pingTimesKept]uint64
	at   [pingTimesKept]time.Time // zero: the slot is free
	next int                      // the slot the next ping takes
}

// pingWriting counts a ping whose frame is about to be written, the frame
// extensions having passed it, and remembers when. The time is taken
// before the write, not after it: the pong may arrive, and be read on
// another goroutine, before the write returns. Caller holds frameMu (taken
// before pingState.mu, as pingHelperRun does).
func (c *Conn) pingWriting(p []byte) {
	c.stats.pingsSent.Add(1)
	if len(p) != 8 {
		return // not one of ours (raw mode): no pong can be matched to it
	}
	seq := binary.BigEndian.Uint64(p)
	ps := c.pings()
	ps.mu.Lock()
	t := &ps.at
	t.seq[t.next], t.at[t.next] = seq, time.Now()
	t.next = (t.next + 1) % pingTimesKept
	ps.mu.Unlock()
}

// pongRTT sets LastRTT if the pong numbered seq answers a ping written
// and not answered yet. The pings numbered at or below seq are answered
// with it (§5.5.3: a peer with several pings waiting may answer only the
// latest), so their pongs, should they come, set no RTT. A pong that
// answers no ping (unsolicited, or repeated) changes nothing. Caller
// holds ps.mu.
func (c *Conn) pongRTT(ps *pingState, seq uint64) {
	t := &ps.at
	for i := range t.seq {
		if t.seq[i] != seq || t.at[i].IsZero() {
			continue
		}
		rtt := time.Since(t.at[i])
		c.stats.lastRTT.Store(int64(max(rtt, 1))) // 0 says no RTT yet
		for j := range t.seq {
			if t.seq[j] <= seq {
				t.at[j] = time.Time{}
			}
		}
		return
	}
}
