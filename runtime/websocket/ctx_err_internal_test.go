package websocket

import (
	"context"
	"errors"
	"testing"
)

// TestCtxErrAfterSuccess: a call whose ctx ended just as it succeeded
// returns nil, not ctx's error. Write and ReadAppend returned
// context.DeadlineExceeded for a message written or read whole when the
// deadline passed between the last byte and the return, the connection
// left open when the watch had been disarmed: the caller dropped a
// message it had read, or sent again one the peer had (seen as a flaky
// TestWriteCtxEndsStalledSmallWrite: "Write after the cut one: <nil>").
// A failed call still reports ctx's error over the one it caused.
func TestCtxErrAfterSuccess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ctxErr(ctx, nil); err != nil {
		t.Errorf("ctxErr(done, nil) = %v, want nil", err)
	}
	if err := writeCtxErr(ctx, nil); err != nil {
		t.Errorf("writeCtxErr(done, nil) = %v, want nil", err)
	}
	if err := ctxErr(ctx, ErrClosed); !errors.Is(err, context.Canceled) {
		t.Errorf("ctxErr(done, ErrClosed) = %v, want context.Canceled", err)
	}
	if err := writeCtxErr(ctx, ErrClosed); !errors.Is(err, context.Canceled) {
		t.Errorf("writeCtxErr(done, ErrClosed) = %v, want context.Canceled", err)
	}
}
