package main

import (
	"errors"
	"io/fs"
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

// TestJournalCompactsDuringRun: the file is compacted to the last limit
// events whenever it holds compactFactor times that many, during the run
// as at opening. Before, it was compacted only at opening: it grew by
// every event for as long as the server ran, and the next start read it
// whole.
func TestJournalCompactsDuringRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	const limit = 3
	j, err := openJournal(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := 1; i <= 100; i++ {
		if _, err := j.Append(sse.Event{ID: "a-" + strconv.Itoa(i), Data: "{}"}); err != nil {
			t.Fatal(err)
		}
		on, err := loadJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(on) > compactFactor*limit || on[len(on)-1].ID != "a-"+strconv.Itoa(i) || len(on) < min(i, limit) {
			t.Fatalf("after %d events the file holds %d, the last %q; want %d to %d, the last a-%d", i, len(on), on[len(on)-1].ID, min(i, limit), compactFactor*limit, i)
		}
	}
	if evs, err := j.Since("a-98"); err != nil || len(evs) != 2 || evs[1].ID != "a-100" {
		t.Fatalf("since a-98: %v, %v", evs, err)
	}
	j.Close()
	j, err = openJournal(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if evs, err := j.Since("a-98"); err != nil || len(evs) != 2 || j.Last() != "a-100" {
		t.Fatalf("reopened, since a-98: %v, %v (last %q)", evs, err, j.Last())
	}
}

// TestJournalRewriteKeepsFile: a compaction, at opening or during the
// run, keeps the journal's permission bits and, for a journal given as a
// symbolic link, the link: it rewrites the link's target. Before, each
// rewrite through os.CreateTemp left the file 0600, and the rename
// replaced a link with a regular file.
func TestJournalRewriteKeepsFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		link   bool        // the journal is a link to data/j
		mode   fs.FileMode // of an existing data/j; 0 for none
		wantTo fs.FileMode
	}{
		{"file 0640", false, 0o640, 0o640},
		{"file 0604", false, 0o604, 0o604},
		{"new file", false, 0, 0o600},
		{"link to a 0644 file", true, 0o644, 0o644},
		{"link to a new file", true, 0, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "data", "j")
			if tc.mode != 0 {
				if err := os.WriteFile(target, []byte(`{"id":"a-1","data":"{}"}`+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(target, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			path := target
			if tc.link {
				path = filepath.Join(dir, "journal")
				if err := os.Symlink(filepath.Join("data", "j"), path); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string, last string) {
				t.Helper()
				fi, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				if isLink := fi.Mode()&fs.ModeSymlink != 0; isLink != tc.link {
					t.Fatalf("%s: the journal is a link: %v, want %v", when, isLink, tc.link)
				}
				if fi, err = os.Stat(target); err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != tc.wantTo {
					t.Fatalf("%s: data/j has mode %v, want %v", when, fi.Mode().Perm(), tc.wantTo)
				}
				if on, err := loadJournal(target); err != nil || len(on) == 0 || on[len(on)-1].ID != last {
					t.Fatalf("%s: data/j holds %v, %v; want the last event %s", when, on, err, last)
				}
			}
			j, err := openJournal(path, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			for i := 2; i <= 20; i++ { // compacts at 12 events in the file
				if _, err := j.Append(sse.Event{ID: "a-" + strconv.Itoa(i), Data: "{}"}); err != nil {
					t.Fatal(err)
				}
			}
			check("during the run", "a-20")
			j.Close()
			if j, err = openJournal(path, 3); err != nil {
				t.Fatal(err)
			}
			check("reopened", "a-20")
			if entries, _ := os.ReadDir(filepath.Join(dir, "data")); len(entries) != 1 {
				t.Errorf("data/ holds %d files, want only j (no temporary file left)", len(entries))
			}
		})
	}
}
