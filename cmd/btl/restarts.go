package main

import (
	"time"

	"btl/core"
)

// statusCell is the STATUS cell of a task in btl list: its status, and
// how often it was restarted when it was (a crash loop says it itself).
func statusCell(v core.View) string {
	s := v.Status.String()
	if v.Status.Restarts > 0 && !v.Status.CrashLoop {
		s += " (" + core.RestartCount(v.Status.Restarts) + ")"
	}
	if watched(v.Task) {
		s += ", watched"
		if w := v.Watch; !w.LastChange.IsZero() {
			s += " (changed " + ago(time.Now(), w.LastChange) + ")"
		}
	}
	return s
}

// currentPID is the PID of the task's current run: the recorded one,
// unless its backend has restarted it since.
func currentPID(v core.View) int {
	if v.Status.Restarts > 0 && v.Status.PID != 0 {
		return v.Status.PID
	}
	return v.PID
}

// watched reports whether t has a watcher that runs (--watch).
func watched(t *core.Task) bool {
	return t.Watch != nil && t.Watch.Watcher != nil && t.Watch.Watcher.Verify()
}
