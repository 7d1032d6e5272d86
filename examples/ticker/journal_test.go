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

// TestJournalRestartSameNode: a server restarted under the same node id
// numbers its events from 1 again; the reopened journal records them
// after the highest number it holds for that node ("a-1" becomes "a-6"),
// so the restart neither has its events refused as duplicates of the
// previous run's (they were lost) nor reuses an id a client may resume
// from. Other nodes' ids are kept as they are.
func TestJournalRestartSameNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "a-2", "east-1-1", "a-3", "a-4", "a-5", "east-1-2"} {
		if _, err := j.Append(sse.Event{ID: id, Data: "{}"}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()

	j, err = openJournal(path, 5) // keeps east-1-1, a-3, a-4, a-5, east-1-2
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, tc := range []struct{ in, want string }{
		{"a-1", "a-6"},
		{"a-2", "a-7"},
		{"east-1-1", "east-1-3"},
		{"b-1", "b-1"}, // a new node
	} {
		got, err := j.Append(sse.Event{ID: tc.in, Data: "{}"})
		if err != nil || got.ID != tc.want {
			t.Fatalf("append %s after the restart: %q, %v; want %s", tc.in, got.ID, err, tc.want)
		}
	}
	if evs, err := j.Since("a-5"); err != nil || len(evs) != 5 || evs[1].ID != "a-6" {
		t.Fatalf("since a-5: %v, %v", evs, err)
	}
	if on, err := loadJournal(path); err != nil || len(on) != 9 || on[5].ID != "a-6" {
		t.Fatalf("file: %v, %v", on, err)
	}
}
