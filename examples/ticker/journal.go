package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// journal is the ticker topic's replay store (hub.TopicOptions.Replay):
// the most recent events in memory and, when it has a file, every event
// appended to that file as one JSON line before it is sent, so a server
// restarted on the same file resumes clients from their Last-Event-ID.
// Lines are written, not synced: the journal survives the process, not
// the machine. Opening compacts the file to the last limit events, and
// so does Append once the file holds compactFactor times that many, so
// the file stays bounded however long the server runs. A compaction
// writes a temporary file and renames it over the journal: a crash
// leaves one or the other whole. The rewritten file keeps the journal's
// permission bits (a new journal is 0600), and a journal given as a
// symbolic link stays one: its target is what is rewritten.
//
// A server restarted under the same node id (-node) numbers its events
// from 1 again: the hub's ids are "<node>-<seq>" and its sequence lives
// in the process's memory. The journal records such an event after the
// highest sequence number its file had for that node ("a-1" becomes "a-6"
// after "a-5") and returns it with that id, which is the one subscribers
// see. The restart thus carries on where the last run stopped, instead of
// having its events refused as duplicates (lost) or reusing an id that a
// client resuming after the restart still holds. A hub rebuilt in the
// same process numbers on by itself (hub.Options.NodeID): whether a node
// is renumbered is decided at its first event, by whether that event's
// number is one the file already had.
//
// Concurrency: safe for concurrent use; mu guards every field.
type journal struct {
	mu     sync.Mutex
	events []sse.Event    // oldest first, at most 2*capacity before trimming
	first  int            // absolute position of events[0]
	index  map[string]int // id -> absolute position
	limit  int            // events kept
	f      *os.File       // nil: memory only
	w      *bufio.Writer  // over f
	line   bytes.Buffer   // scratch

	path      string      // the file rewritten: the journal's, a link resolved
	mode      fs.FileMode // its permission bits
	lines     int         // events in the file
	compactAt int         // lines at which Append compacts the file
	// onError, when set, is told of a failed compaction during the run
	// (the file is then kept as it is and appended to). Set before use.
	onError func(error)

	// renumber is, per node id, the highest sequence number the file had
	// when opened, until the node's first new event decides its offset
	// (nil: none).
	renumber map[string]uint64
	// offset is added to a node's new sequence numbers: renumber's, for a
	// node whose numbering started again at or below it (nil: none).
	offset map[string]uint64
}

// compactFactor times the journal's limit is how many events the file
// holds at most: Append then compacts it to the last limit. That is one
// rewrite of limit lines every (compactFactor-1)×limit events, a third of
// a line more written per event on average, off the path of all others;
// and a restart reads at most compactFactor×limit lines.
const compactFactor = 4

// record is one journal line.
type record struct {
	ID    string `json:"id"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
}

// openJournal opens the journal at path ("" for memory only), keeping the
// last limit events it holds.
func openJournal(path string, limit int) (*journal, error) {
	j := &journal{index: make(map[string]int), limit: limit}
	if path == "" {
		return j, nil
	}
	target, err := journalTarget(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.path, j.mode = target, 0o600
	if fi, err := os.Stat(target); err == nil {
		j.mode = fi.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	evs, err := loadJournal(target)
	if err != nil {
		return nil, err
	}
	// Every event of the file counts, those about to be dropped too: a
	// client may still hold one of their ids.
	for _, e := range evs {
		if node, seq, ok := splitID(e.ID); ok {
			if j.renumber == nil {
				j.renumber = make(map[string]uint64)
			}
			j.renumber[node] = max(j.renumber[node], seq)
		}
	}
	if len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	for _, e := range evs {
		j.record(e)
	}
	// Compact: rewrite what is kept, then append to it.
	if err := j.rewrite(evs); err != nil {
		return nil, err
	}
	j.compactAt = compactFactor * limit
	return j, nil
}

// journalTarget returns the file that the journal at path is: path, or
// the file a symbolic link there points to, which may not exist yet.
// Renaming the compacted file over the link would replace the link.
func journalTarget(path string) (string, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	// A missing file, or a link to one: follow the links by hand.
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		dst, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(path), dst)
		}
		path = dst
	}
	return "", fmt.Errorf("%s: too many links", path)
}

// rewrite replaces the file with evs: it writes them to a temporary file
// beside it with the journal's mode and renames that over the file, then
// appends to the new file.
func (j *journal) rewrite(evs []sse.Event) error {
	tmp, err := os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".*")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w := bufio.NewWriter(tmp)
	for _, e := range evs {
		if err = j.encode(e); err != nil {
			break
		}
		if _, err = w.Write(j.line.Bytes()); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(j.mode) // CreateTemp makes it 0600
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("journal: %w", err)
	}
	if j.f != nil {
		j.f.Close() // the old file, renamed over: nothing is lost
	}
	j.f, j.w, j.lines = tmp, w, len(evs)
	return nil
}

// compact rewrites the file to the last limit events, as openJournal
// does. On failure the file is kept and appended to, and the next try
// comes limit events later.
func (j *journal) compact() {
	if err := j.rewrite(j.events[max(0, len(j.events)-j.limit):]); err != nil {
		j.compactAt = j.lines + j.limit
		if j.onError != nil {
			j.onError(err)
		}
		return
	}
	j.compactAt = compactFactor * j.limit
}

// loadJournal reads the events of the journal file at path, oldest first.
// A missing file is an empty journal; a last line cut short by a crash is
// ignored.
func loadJournal(path string) ([]sse.Event, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var evs []sse.Event
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // an unfinished last line
		}
		var r record
		if err := json.Unmarshal(b[:i], &r); err != nil {
			return nil, fmt.Errorf("journal %s: line %d: %w", path, len(evs)+1, err)
		}
		evs = append(evs, sse.Event{ID: r.ID, Type: r.Event, Data: r.Data})
		b = b[i+1:]
	}
	return evs, nil
}

// Append writes e to the file and records it. e must have an id the
// journal does not hold (the hub's "<node>-<seq>"), once renumbered: a
// node the file had events of when opened continues after the highest
// sequence number they had, and Append returns e with that id.
func (j *journal) Append(e sse.Event) (sse.Event, error) {
	if e.ID == "" {
		return e, errors.New("journal: event without id")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if node, seq, ok := splitID(e.ID); ok {
		if hi, first := j.renumber[node]; first {
			delete(j.renumber, node)
			if seq <= hi { // a new process, numbering from 1 again
				if j.offset == nil {
					j.offset = make(map[string]uint64)
				}
				j.offset[node] = hi
			}
		}
		if off := j.offset[node]; off > 0 {
			e.ID = node + "-" + strconv.FormatUint(off+seq, 10)
		}
	}
	if _, ok := j.index[e.ID]; ok {
		return e, fmt.Errorf("%w %q", sse.ErrDuplicateID, e.ID)
	}
	if j.f != nil {
		if err := j.write(e); err != nil {
			return e, err
		}
		j.lines++
	}
	j.record(e)
	if j.f != nil && j.lines >= j.compactAt {
		j.compact()
	}
	return e, nil
}

// encode puts e's line into j.line.
func (j *journal) encode(e sse.Event) error {
	j.line.Reset()
	return json.NewEncoder(&j.line).Encode(record{ID: e.ID, Event: e.Type, Data: e.Data})
}

// write appends e's line to the file and flushes it.
func (j *journal) write(e sse.Event) error {
	if err := j.encode(e); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := j.w.Write(j.line.Bytes()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// splitID splits a hub event id, "<node>-<seq>", at its last '-' (node
// ids may contain '-'; see hub.Options.NodeID).
func splitID(id string) (node string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return id[:i], seq, true
}

func (j *journal) record(e sse.Event) {
	j.index[e.ID] = j.first + len(j.events)
	j.events = append(j.events, e)
	if len(j.events) >= 2*j.limit {
		drop := len(j.events) - j.limit
		for _, old := range j.events[:drop] {
			delete(j.index, old.ID)
		}
		j.events = append([]sse.Event(nil), j.events[drop:]...)
		j.first += drop
	}
}

// Since returns the events recorded after id (sse.Store).
func (j *journal) Since(id string) ([]sse.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pos, ok := j.index[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", sse.ErrUnknownID, id)
	}
	return append([]sse.Event(nil), j.events[pos-j.first+1:]...), nil
}

// After is Since, with "" meaning before the oldest event held.
func (j *journal) After(cursor string) ([]sse.Event, error) {
	if cursor != "" {
		return j.Since(cursor)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]sse.Event(nil), j.events...), nil
}

// Last returns the id of the newest event ("" when empty).
func (j *journal) Last() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.events) == 0 {
		return ""
	}
	return j.events[len(j.events)-1].ID
}

// Close closes the file.
func (j *journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
