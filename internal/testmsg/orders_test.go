package testmsg

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestOrders(t *testing.T) {
	for _, size := range []int{200, 1024, 4096} {
		msgs := Orders(64, size)
		again := Orders(64, size)
		seen := map[string]bool{}
		for i, m := range msgs {
			if len(m) != size {
				t.Fatalf("size %d: message %d is %d bytes", size, i, len(m))
			}
			if !json.Valid(m) {
				t.Fatalf("size %d: message %d is not JSON: %s", size, i, m)
			}
			if !bytes.Equal(m, again[i]) {
				t.Fatalf("size %d: message %d differs between calls", size, i)
			}
			if seen[string(m)] {
				t.Fatalf("size %d: message %d repeats an earlier one", size, i)
			}
			seen[string(m)] = true
		}
	}
}
