package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/wsrpc/wsrpc/bench/internal/load"
)

// TestExitCode guards the status bench/run.sh decides by: 3, never
// retried, for a verification failure however deeply wrapped; 1, retried
// once, for anything else.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("gws: message 7: %w", load.ErrVerify), 3},
		{fmt.Errorf("wsrpc: %w", fmt.Errorf("connection 3: %w", load.ErrVerify)), 3},
		{fmt.Errorf("wsrpc: connection 3: %w", syscall.ECONNREFUSED), 1},
		{fmt.Errorf("gorilla: %w", context.DeadlineExceeded), 1},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
