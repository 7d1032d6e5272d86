package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestJournal: events survive a reopen (a line cut short by a crash is
// dropped), reopening keeps and compacts to the newest events, Since
// answers from what is held, and ids are unique.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := j.Append(sse.Event{ID: "a-" + strconv.Itoa(i), Type: "quote", Data: `{"symbol":"X"}`}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Append(sse.Event{ID: "a-5", Data: "{}"}); !errors.Is(err, sse.ErrDuplicateID) {
		t.Fatalf("duplicate: %v", err)
	}
	j.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"a-6","da`) // a crash mid-line
	f.Close()

	j, err = openJournal(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Last() != "a-5" {
		t.Fatalf("last %q", j.Last())
	}
	evs, err := j.Since("a-3")
	if err != nil || len(evs) != 2 || evs[0].ID != "a-4" || evs[1] != (sse.Event{ID: "a-5", Type: "quote", Data: `{"symbol":"X"}`}) {
		t.Fatalf("since a-3: %v, %v", evs, err)
	}
	if _, err := j.Since("a-2"); !errors.Is(err, sse.ErrUnknownID) {
		t.Fatalf("since a-2 (not kept): %v", err)
	}
	if _, err := j.Append(sse.Event{ID: "b-1", Data: "{}"}); err != nil {
		t.Fatal(err)
	}
	on, err := loadJournal(path)
	if err != nil || len(on) != 4 || on[0].ID != "a-3" || on[3].ID != "b-1" {
		t.Fatalf("file after reopen and append: %v, %v", on, err)
	}
	if all, _ := j.After(""); len(all) != 4 {
		t.Fatalf("after \"\": %v", all)
	}
}
