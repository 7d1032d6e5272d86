package hub

import (
	"context"
	"fmt"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// Follow sends a topic's recorded events with a cursor: first the backlog
// start returns, then, each time the topic delivers a message, whatever
// after returns for the cursor (the id of the last event sent). It is how
// a resumable stream reads the topic's replay store (TopicOptions.Replay)
// rather than taking each message from a subscription: every event goes
// out once, in order, with its recorded id, and a follower that was away
// resumes from its Last-Event-ID.
//
// The topic records an event in its replay store before it delivers the
// message, and Follow subscribes before it calls start, so no event falls
// between the backlog and the ones that follow. A subscription only wakes
// the loop (wake-ups coalesce; one read of the store takes all that is
// new), so a slow follower costs the topic nothing. That subscription
// keeps one wake-up at most and drops older ones whatever the topic's
// Policy: a Disconnect topic disconnects followers only through after
// (ErrFellBehind), when the store has really moved past them. It is not
// a subscriber of the topic's Stats: it counts in none of them.
//
// The cursor start returns is the id of the last event the follower has,
// and its backlog's events follow it. A cursor of "" (with no backlog:
// a fresh follower of an empty store) says the follower has nothing, so
// the first wake-up calls after(""), which must return every event the
// store recorded since start read it — from its beginning. sse.Ring does
// that (Since("") is the start of the ring, until it first evicts), as
// does a log read with a cursor; a fresh follower of a Ring thus starts
// from now with
//
//	start := func() (string, []sse.Event, error) { return ring.Last(), nil, nil }
//	err := topic.Follow(ctx, start, ring.Since, send)
//
// Follow returns ctx's error when ctx ends, the error of start or send as
// it is, an error wrapping ErrFellBehind when after fails (typically the
// store evicted the cursor: the follower must start over), and an error
// wrapping ErrClosed when the topic closes (or whatever else ended its
// subscription), once it has sent what the store recorded before that.
func (t *Topic[M]) Follow(ctx context.Context, start func() (cursor string, backlog []sse.Event, err error),
	after func(cursor string) ([]sse.Event, error), send func(sse.Event) error) error {
	wake := make(chan struct{}, 1)
	// A queue of one under DropOldest: a wake-up queued behind another
	// says nothing more, and the topic's Disconnect policy would end
	// Follow after a mere burst of publishes.
	sub, err := t.subscribeFunc(func(M) error {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is pending; its read takes this event too
		}
		return nil
	}, DropOldest, 1, true)
	if err != nil {
		return err
	}
	defer sub.Close()
	cursor, backlog, err := start()
	if err != nil {
		return err
	}
	var ended error // the topic closed: send the last read, then return this
	for {
		for _, ev := range backlog {
			if err := send(ev); err != nil {
				return err
			}
			cursor = ev.ID
		}
		if ended != nil {
			return ended
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.Done():
			err := sub.Err()
			if err == nil { // only Close leaves no error, and only Follow's defer calls it
				err = ErrClosed
			}
			// The topic publishes nothing more, but what it recorded
			// since the last read is in the store, and the wake-up for
			// it, if still pending, went with the subscription: read
			// the store once more, or the events before a Close (a
			// room's last one) never reach the follower, which finds
			// the topic closed when it comes back. A read that fails
			// then still ends with the close, which a follower's client
			// comes back after (a store closed with the server, say),
			// not with ErrFellBehind, which has it start over.
			ended = fmt.Errorf("hub: follow %q: %w", t.core.name, err)
		case <-wake:
		}
		if backlog, err = after(cursor); err != nil {
			if ended != nil {
				return ended
			}
			return fmt.Errorf("hub: follow %q: %w: %w", t.core.name, ErrFellBehind, err)
		}
	}
}
