package main

import "btl/core"

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
