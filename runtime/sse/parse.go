package sse

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the default bound, in bytes, on one line and on
// one event's accumulated data and comments (comments count only when
// shown: see ParserOptions.ShowCommentEvents).
const DefaultMaxEventSize = 1 << 20

// readChunk is how much the parser asks its reader for at a time.
const readChunk = 32 << 10

// keepBufSize is the largest buffer a Parser keeps once the event that
// grew it is over: a larger one, grown for one large event, is released
// so that an idle session does not hold it (at the default MaxEventSize
// that was about 3 MiB per session, for good). Up to this size a buffer
// is reused, so that a steady stream of events allocates no buffer.
const keepBufSize = 64 << 10

// ParserOptions configures a Parser. A nil *ParserOptions means all
// defaults.
type ParserOptions struct {
	// MaxEventSize bounds, in bytes, one line (a comment line too) and one
	// event's data plus, with ShowCommentEvents, comments. Exceeding it
	// fails with ErrEventTooLarge rather than growing memory without
	// limit. Default DefaultMaxEventSize (1 MiB).
	MaxEventSize int

	// LastEventID is the last event ID string the stream starts with, as
	// carried over from a previous connection of the same event source
	// (WHATWG HTML §9.2.3). Default "".
	LastEventID string

	// ShowCommentEvents makes Next also return an event (with Type "") for
	// a block that has comment lines but no data, and keeps the comment
	// lines of every block in Event.Comment. Default false: comment lines
	// are ignored, as browsers do (WHATWG HTML §9.2.6): nothing is kept of
	// them, so Event.Comment stays empty and they do not count toward
	// MaxEventSize (a stream of heartbeat comments cannot exceed it).
	ShowCommentEvents bool

	// ShowRetryEvents makes Next also return an event (with Type "") for
	// a block that sets a valid reconnection time but has no data. Default
	// false: the retry only takes effect.
	ShowRetryEvents bool

	// ReconnectionTime is the stream's reconnection time until a retry
	// field sets it (WHATWG HTML §9.2.3: the event source's, carried over
	// from its previous connection). Default 0.
	ReconnectionTime time.Duration
}

// Parser reads a text/event-stream and returns its events, implementing
// WHATWG HTML §9.2.5 "Parsing an event stream" and §9.2.6 "Interpreting an
// event stream" over a reader that may deliver bytes in any chunking.
//
// Cost: while an event is read, memory is a read buffer that holds at
// least its longest line, less than 2×MaxEventSize + 32 KiB, plus buffers
// for its data and shown comments, which fail the event once they pass
// MaxEventSize together. Once the event is dispatched, or has failed,
// buffers larger than 64 KiB are released (the read buffer as soon as the
// input left in it fits a small one), so an idle Parser holds at most a
// 64 KiB read buffer and 64 KiB each for data and comments; steady small
// events reuse those, each allocating only its own strings. Each byte is
// examined a constant number of times.
//
// Concurrency: a Parser is owned by one goroutine.
type Parser struct {
	r    io.Reader
	opts ParserOptions
	max  int

	buf     []byte // unconsumed input is buf[pos:]
	pos     int
	err     error // sticky read error, returned once buf is drained
	started bool  // the BOM check has been done
	skipLF  bool  // the previous line ended in CR: a following LF belongs to it

	// Per-block state, reset by each blank line.
	data       []byte
	hasData    bool
	eventType  string
	comment    []byte
	hasComment bool
	retry      time.Duration
	hasRetry   bool
	inBlock    bool // a non-blank line since the last blank one

	// blocks counts non-empty blocks ended by a blank line, shown or not:
	// a Session takes those after the first, on a connection that stayed
	// open a while, as proof that it worked (a quiet stream's heartbeat
	// comments) when the connection later drops.
	blocks int

	idBuffer    string        // the last event ID buffer
	lastEventID string        // the last event ID string, set at dispatch
	reconnect   time.Duration // the reconnection time: the option's until a retry field

	// scratch holds an event or id field's value while it is made valid
	// UTF-8; lastType is the event type read last, whose string a stream
	// naming the same type in every event reuses (see field).
	scratch  []byte
	lastType string
}

// NewParser returns a parser reading the event stream from r.
func NewParser(r io.Reader, opts *ParserOptions) *Parser {
	p := &Parser{r: r}
	if opts != nil {
		p.opts = *opts
	}
	p.max = p.opts.MaxEventSize
	if p.max <= 0 {
		p.max = DefaultMaxEventSize
	}
	p.idBuffer = p.opts.LastEventID
	p.lastEventID = p.opts.LastEventID
	p.reconnect = p.opts.ReconnectionTime
	return p
}

// LastEventID returns the last event ID string: the value a reconnecting
// client sends as Last-Event-ID (WHATWG HTML §9.2.4). It changes only when
// a blank line ends a block.
func (p *Parser) LastEventID() string { return p.lastEventID }

// ReconnectionTime returns the reconnection time set by the last valid
// "retry:" field read so far (which may be 0), or
// ParserOptions.ReconnectionTime if there was none. Per WHATWG HTML
// §9.2.6 a retry field takes effect as soon as its line is read, even if
// its event is never dispatched.
func (p *Parser) ReconnectionTime() time.Duration { return p.reconnect }

// Next returns the next dispatched event. With ShowCommentEvents or
// ShowRetryEvents it also returns comment and retry blocks, with Type "".
//
// At the end of the stream it returns io.EOF; an event not terminated by a
// blank line is then discarded (WHATWG HTML §9.2.6). A read error other
// than io.EOF is returned as is (io.ErrUnexpectedEOF included); a line or
// event over the size limit returns an error wrapping ErrEventTooLarge.
// Once Next has returned an error it keeps returning it.
func (p *Parser) Next() (Event, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			return Event{}, err
		}
		if ev, ok, err := p.processLine(line); err != nil {
			return Event{}, p.fail(err)
		} else if ok {
			return ev, nil
		}
	}
}

// readLine returns the next complete line without its terminator. The
// returned slice is valid until the next call. A line is ended by CRLF, LF
// or CR (WHATWG HTML §9.2.5), so a CR is a line end at once, even as the
// very last byte of the stream; an LF right after it is then skipped.
func (p *Parser) readLine() ([]byte, error) {
	scanFrom := 0
	for {
		if !p.started {
			// Strip one leading U+FEFF BOM (WHATWG HTML §9.2.5: the
			// stream is UTF-8 decoded, which removes a BOM). Wait for
			// three bytes, or the end, before deciding.
			if len(p.buf)-p.pos < 3 && p.err == nil {
				p.fill()
				continue
			}
			p.started = true
			if bytes.HasPrefix(p.buf[p.pos:], []byte("\xEF\xBB\xBF")) {
				p.pos += 3
			}
		}
		if p.skipLF && p.pos < len(p.buf) {
			if p.buf[p.pos] == '\n' {
				p.pos++
			}
			p.skipLF = false
		}
		rest := p.buf[p.pos:]
		if i := bytes.IndexAny(rest[scanFrom:], "\r\n"); i >= 0 {
			i += scanFrom
			if i > p.max {
				return nil, p.fail(fmt.Errorf("%w: line longer than %d bytes", ErrEventTooLarge, p.max))
			}
			line := rest[:i]
			p.pos += i + 1
			if rest[i] == '\r' {
				p.skipLF = true
			}
			return line, nil
		}
		if len(rest) > p.max {
			return nil, p.fail(fmt.Errorf("%w: line longer than %d bytes", ErrEventTooLarge, p.max))
		}
		scanFrom = len(rest)
		if p.err != nil {
			// An unterminated final line is not a line: discard it,
			// and the event in progress with it.
			return nil, p.fail(p.err)
		}
		p.fill()
	}
}

// fill reads more input, compacting the buffer first. A read error is
// kept in p.err and returned.
func (p *Parser) fill() error {
	if p.err != nil {
		return p.err
	}
	if p.pos > 0 {
		n := copy(p.buf, p.buf[p.pos:])
		p.buf = p.buf[:n]
		p.pos = 0
	}
	if cap(p.buf)-len(p.buf) < readChunk/2 {
		// Doubling from readChunk reaches keepBufSize first: lines of up
		// to about 48 KiB then never make dispatch release the buffer,
		// and grow it again for the next event.
		nb := make([]byte, len(p.buf), max(2*cap(p.buf), readChunk))
		copy(nb, p.buf)
		p.buf = nb
	}
	for range 100 {
		n, err := p.r.Read(p.buf[len(p.buf):cap(p.buf)])
		p.buf = p.buf[:len(p.buf)+n]
		if err != nil {
			p.err = err
			return err
		}
		if n > 0 {
			return nil
		}
	}
	p.err = io.ErrNoProgress
	return p.err
}

// fail makes err sticky and releases the buffers: nothing more is read
// or dispatched.
func (p *Parser) fail(err error) error {
	p.err = err
	p.buf, p.pos = nil, 0
	p.data, p.comment = nil, nil
	return err
}

// processLine applies one line to the parser state (WHATWG HTML §9.2.6)
// and reports whether it completed an event to return.
func (p *Parser) processLine(line []byte) (Event, bool, error) {
	// "If the line is empty (a blank line): dispatch the event."
	if len(line) == 0 {
		if p.inBlock {
			p.inBlock = false
			p.blocks++
		}
		return p.dispatch()
	}
	p.inBlock = true
	// "If the line starts with a U+003A COLON character (:): ignore the
	// line." We keep its text only for ShowCommentEvents. Otherwise
	// nothing is kept, so nothing counts toward MaxEventSize: heartbeat
	// comments between events, however many, cannot end the stream
	// (readLine still bounds each line).
	if line[0] == ':' {
		if !p.opts.ShowCommentEvents {
			return Event{}, false, nil
		}
		value := line[1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if p.hasComment {
			p.comment = append(p.comment, '\n')
		}
		p.hasComment = true
		p.comment = appendUTF8(p.comment, value)
		return Event{}, false, p.checkSize()
	}
	// "If the line contains a U+003A COLON character: collect the
	// characters before the first colon as the field name, and after it
	// as the value; if the value starts with a U+0020 SPACE, remove it.
	// Otherwise the whole line is the field name and the value is empty."
	var name, value []byte
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	} else {
		name = line
	}
	// Field names are compared case-sensitively and unknown fields are
	// ignored. A name holding invalid UTF-8 decodes to something with
	// U+FFFD, which matches no known field, so raw bytes compare the same.
	switch string(name) {
	case "event":
		// Most streams name a few types over and over: the string of the
		// last one is reused when it comes again (the comparison of a
		// converted []byte allocates nothing).
		p.scratch = appendUTF8(p.scratch[:0], value)
		if string(p.scratch) != p.lastType {
			p.lastType = string(p.scratch)
		}
		p.eventType = p.lastType
	case "data":
		p.data = appendUTF8(p.data, value)
		p.data = append(p.data, '\n')
		p.hasData = true
		return Event{}, false, p.checkSize()
	case "id":
		// "If the field value does not contain U+0000 NULL, then set the
		// last event ID buffer to the field value. Otherwise, ignore."
		if bytes.IndexByte(value, 0) < 0 {
			p.scratch = appendUTF8(p.scratch[:0], value)
			if string(p.scratch) != p.idBuffer {
				p.idBuffer = string(p.scratch)
			}
		}
	case "retry":
		// "If the field value consists of only ASCII digits, then
		// interpret it as an integer in base ten, and set the event
		// stream's reconnection time to that integer. Otherwise, ignore."
		if d, ok := parseRetry(value); ok {
			p.reconnect = d
			p.retry = d
			p.hasRetry = true
		}
	}
	return Event{}, false, nil
}

func (p *Parser) checkSize() error {
	if len(p.data)+len(p.comment) > p.max {
		return fmt.Errorf("%w: event longer than %d bytes", ErrEventTooLarge, p.max)
	}
	return nil
}

// dispatch implements WHATWG HTML §9.2.6 "dispatch the event".
func (p *Parser) dispatch() (Event, bool, error) {
	// 1. The last event ID string becomes the last event ID buffer, even
	// if nothing is dispatched.
	p.lastEventID = p.idBuffer
	ev := Event{ID: p.lastEventID, Retry: p.retry, HasRetry: p.hasRetry}
	if p.hasComment {
		ev.Comment = string(p.comment)
	}
	show := false
	// 2. An empty data buffer dispatches nothing. (A "data" line with an
	// empty value still makes the buffer non-empty: it holds an LF.)
	if p.hasData {
		// 3. Remove the data buffer's final LF.
		ev.Data = string(p.data[:len(p.data)-1])
		// 5. The type defaults to "message".
		ev.Type = p.eventType
		if ev.Type == "" {
			ev.Type = "message"
		}
		show = true
	} else {
		show = (p.hasComment && p.opts.ShowCommentEvents) || (p.hasRetry && p.opts.ShowRetryEvents)
	}
	// 6. Reset the data and event type buffers (and our block state).
	// Buffers a large event grew are released rather than kept for good
	// (keepBufSize); ev holds copies.
	p.data = resetBuf(p.data)
	p.hasData = false
	p.eventType = ""
	p.comment = resetBuf(p.comment)
	p.hasComment = false
	p.retry = 0
	p.hasRetry = false
	if cap(p.buf) > keepBufSize {
		p.shrinkReadBuf()
	}
	return ev, show, nil
}

// resetBuf empties b, releasing it if it grew past keepBufSize.
func resetBuf(b []byte) []byte {
	if cap(b) > keepBufSize {
		return nil
	}
	return b[:0]
}

// shrinkReadBuf moves the unconsumed input of a read buffer that grew
// past keepBufSize to a small one, or drops the buffer if none is left.
// When much input is still unconsumed the buffer is kept for now: a later
// dispatch, once it is consumed, tries again.
func (p *Parser) shrinkReadBuf() {
	rest := p.buf[p.pos:]
	switch {
	case len(rest) == 0:
		p.buf, p.pos = nil, 0 // fill allocates readChunk when needed
	case len(rest) <= readChunk/2:
		nb := make([]byte, len(rest), readChunk)
		copy(nb, rest)
		p.buf, p.pos = nb, 0
	}
}

// parseRetry accepts only a non-empty run of ASCII digits. Values too big
// for a time.Duration saturate.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMS = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMS {
		ms = maxMS
	}
	return time.Duration(ms) * time.Millisecond, true
}

// appendUTF8 appends b to dst decoded as UTF-8 the way the WHATWG Encoding
// standard's "UTF-8 decode" does: each maximal ill-formed subsequence
// becomes one U+FFFD. Valid input is copied as is.
func appendUTF8(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[:size]...)
			b = b[size:]
			continue
		}
		dst = utf8.AppendRune(dst, utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return dst
}

// maximalSubpart returns the length (at least 1) of the ill-formed prefix
// of b that the WHATWG UTF-8 decoder replaces with a single U+FFFD: a
// lead byte followed by as many continuation bytes as fit its sequence
// before the first that does not.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
