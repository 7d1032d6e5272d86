//go:build unix

package fdlimit

import (
	"syscall"
	"testing"
)

func TestRaise(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Skip("no RLIMIT_NOFILE here:", err)
	}
	if before.Cur == before.Max && before.Max > 1 {
		// Lower it first, so that Raise has something to do.
		low := syscall.Rlimit{Cur: before.Max / 2, Max: before.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Skip("cannot lower the limit:", err)
		}
	}
	Raise()
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if after.Cur != after.Max {
		t.Fatalf("soft limit %d after Raise, want the hard limit %d", after.Cur, after.Max)
	}
}
