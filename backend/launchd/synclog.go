package launchd

import (
	"context"
	"time"

	"btl/core"
	"btl/internal/proc"
)

// pumpDrain bounds how long SyncLog waits for a log pump to write the last
// output of a task that ended.
const pumpDrain = 2 * time.Second

var _ core.LogSyncer = (*Backend)(nil)

// SyncLog brings the task's log up to date: once every process of the task
// has ended, it waits (up to pumpDrain) for the log pump of its last launch
// (core.Runs.Pump) to write what was still in the pipe, which launchd's
// report of the end does not wait for. A task that runs, or whose output
// goes straight to the file, costs one small read.
func (b *Backend) SyncLog(ctx context.Context, t core.Task) error {
	if t.Token == "" {
		return nil
	}
	r, err := core.ReadRuns(b.Dirs, t.Token)
	if err != nil || r.Pump == nil || !r.Pump.Verify() {
		return nil
	}
	if proc.TreeAlive(core.Proc{PID: r.PID, Start: r.Start}, t.Token) {
		return nil // the pump copies as the task writes
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(pumpDrain)
	for r.Pump.Verify() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return nil
		case <-tick.C:
		}
	}
	return nil
}
