package core

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Watch is what a watched task (--watch) records: the paths, what is
// ignored, the debounce, the watcher process that replaces the task on a
// change, and the last change that did.
type Watch struct {
	Paths      []string      `json:"paths"`                // absolute
	Ignore     []string      `json:"ignore,omitempty"`     // --ignore globs, besides the defaults
	Debounce   time.Duration `json:"debounce"`             // nanoseconds
	Watcher    *Proc         `json:"watcher,omitempty"`    // the watcher process; nil once stopped
	LastChange time.Time     `json:"last_change,omitzero"` // the last change that replaced the task
	LastPath   string        `json:"last_path,omitempty"`  // the path that changed then
	Replaces   int           `json:"replaces,omitempty"`   // replaces the watcher made
}

// ErrNotWatcher is returned to a watcher whose task is watched by another
// watcher now, or no longer watched or tracked: it must exit.
var ErrNotWatcher = errors.New("this task is no longer watched by this watcher")

// stopWatcher ends t's watcher, if it has one that still runs (verified:
// the caller's own process with the recorded start time), and forgets it.
func stopWatcher(t *Task) {
	if t.Watch == nil || t.Watch.Watcher == nil {
		return
	}
	w := *t.Watch.Watcher
	if w.Verify() {
		_ = unix.Kill(w.PID, unix.SIGTERM)
	}
	t.Watch.Watcher = nil
}

// sameWatcher reports whether spec is a replace by the watcher rec
// records (rec may be nil).
func sameWatcher(spec *Spec, rec *Task) bool {
	return spec.Watch != nil && spec.Watch.Watcher != nil && rec != nil && rec.Watch != nil &&
		rec.Watch.Watcher != nil && *rec.Watch.Watcher == *spec.Watch.Watcher
}

// cloneWatch is a copy of w, which a record may keep apart from the spec.
func cloneWatch(w *Watch) *Watch {
	if w == nil {
		return nil
	}
	c := *w
	if w.Watcher != nil {
		p := *w.Watcher
		c.Watcher = &p
	}
	return &c
}
