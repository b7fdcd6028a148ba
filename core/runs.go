package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"btl/internal/regular"
)

// Runs is the record of the runs of one instance of a task (one start,
// named by its token): the current run, how many there were, how the last
// one ended, and whether a run follows. A backend reports each event to
// core (RecordStart, RecordEnd, RecordFinal) from whichever of its
// processes sees it (the fork supervisor, the launchd launcher); core
// keeps the record and decides the restarts in a row and the crash loop
// (systemd decides those itself: its log agent reports what it saw with
// RecordManaged);
// every command reads it the same way (ReadRuns, Runs.Status) through the
// backend's Inspect.
//
// The record is one JSON object in Dirs.Run/<token>.record (RunsFile),
// mode 0600, replaced whole at each event (a temporary file renamed over
// it), so that a reader sees the record before an event or after it, never
// a part. One process writes an instance's record at a time: the fork
// supervisor for its whole life, the launchd launcher at each launch
// (launchd runs one launch at a time).
type Runs struct {
	// Policy is the instance's restart policy (RestartPolicy.String), ""
	// for none: it lets a backend that lost its state re-adopt it.
	Policy string `json:"policy,omitempty"`
	// Runs counts the runs started, the first included: Runs-1 restarts.
	Runs int `json:"runs"`
	// InRow counts the restarts since the last run that lasted
	// RestartResetAfter; the policy's Max of them make a crash loop.
	InRow int `json:"in_row"`
	// PID, Start and Began are the current (or last) run's main process,
	// its start time (see Proc) and when it began.
	PID   int       `json:"pid"`
	Start uint64    `json:"start,omitempty"`
	Began time.Time `json:"began"`
	// LastExit is how the run before the current one ended ("exited 1").
	LastExit string `json:"last_exit,omitempty"`
	// Ended is how the current run ended, once it has; unless Final, a
	// restart is due.
	Ended *Status `json:"ended,omitempty"`
	// Final says that no run follows; CrashLoop, that this is because the
	// policy's restarts in a row were used up.
	Final     bool `json:"final,omitempty"`
	CrashLoop bool `json:"crash_loop,omitempty"`
	// Pump is the process that copies the current run's output into the
	// log (launchd's log pump), when one does: it may still be writing
	// the run's last output once the run ended (RecordPump).
	Pump *Proc `json:"pump,omitempty"`
}

// RunsFile is where the record of the runs of the instance with the
// given token is kept. A backend whose native objects are named after the
// task's hash (systemd) keeps one record per task, named after the hash,
// which each start replaces.
func RunsFile(d Dirs, token string) string { return filepath.Join(d.Run, token+".record") }

// maxRunsRecord bounds how much of a record is read: a few hundred bytes.
const maxRunsRecord = 64 << 10

// ReadRuns reads the record of the runs of the instance with the given
// token. No record is an error wrapping os.ErrNotExist; a file that is not
// a regular file one wrapping regular.ErrNotRegular, naming it.
func ReadRuns(d Dirs, token string) (Runs, error) {
	var r Runs
	path := RunsFile(d, token)
	b, err := regular.ReadFile(path, maxRunsRecord)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Runs{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteRuns replaces the record of the instance with the given token by
// r; sync makes it survive a crash of the system. Backends use it only to
// carry over a record of an earlier format; events go through RecordStart,
// RecordEnd and RecordFinal.
func WriteRuns(d Dirs, token string, r Runs, sync bool) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return regular.ReplaceFile(RunsFile(d, token), b, 0o600, sync)
}

// RecordStart records that a run of the instance with the given token
// started at at, as process p, and writes its start marker (StartMarker)
// into log, when log is not nil, before the run's first byte reaches it.
// The first run's record is not synced to disk: a crash of the system
// ends the run with it.
func RecordStart(d Dirs, token string, policy RestartPolicy, log io.Writer, p Proc, at time.Time, command string) (Runs, error) {
	if log != nil {
		_, _ = io.WriteString(log, StartMarker(at, p.PID, command))
	}
	r, err := ReadRuns(d, token)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	r = r.started(policy, p, at)
	return r, WriteRuns(d, token, r, r.Runs > 1)
}

// started is r once a run started as p at at.
func (r Runs) started(policy RestartPolicy, p Proc, at time.Time) Runs {
	if r.Ended != nil {
		r.LastExit = r.Ended.String()
	}
	r.Policy = policy.String()
	r.Runs++
	r.PID, r.Start, r.Began = p.PID, p.Start, at
	r.Ended, r.Final, r.CrashLoop, r.Pump = nil, false, false, nil
	return r
}

// RecordPump records that p copies the current run's output into the
// log, for the instance with the given token (see Runs.Pump).
func RecordPump(d Dirs, token string, p Proc) error {
	r, err := ReadRuns(d, token)
	if err != nil {
		return err
	}
	r.Pump = &p
	return WriteRuns(d, token, r, false)
}

// RecordEnd records that the current run of the instance with the given
// token ended with end, seen at at, and decides whether the policy starts
// it again: restart reports that it does, after Backoff(r.InRow). It does
// not when the policy does not restart after end, when stopping (btl is
// stopping the task), or when the policy's restarts in a row are used up
// (a crash loop): the record is then final. A run that lasted
// RestartResetAfter resets the restarts in a row.
func RecordEnd(d Dirs, token string, policy RestartPolicy, end Status, at time.Time, stopping bool) (r Runs, restart bool, err error) {
	r, err = ReadRuns(d, token)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r, false, err
	}
	r, restart = r.ended(policy, end, at, stopping)
	return r, restart, WriteRuns(d, token, r, true)
}

// ended is r once its current run ended with end at at, and whether the
// policy restarts it.
func (r Runs) ended(policy RestartPolicy, end Status, at time.Time, stopping bool) (Runs, bool) {
	end = Status{State: end.State, Code: end.Code, Signal: end.Signal}
	r.Ended = &end
	if r.Runs == 0 {
		r.Runs = 1 // a run nobody recorded the start of
	}
	if !policy.Restarts(end) || stopping {
		r.Final = true
		return r, false
	}
	if !r.Began.IsZero() && at.Sub(r.Began) >= RestartResetAfter {
		r.InRow = 0
	}
	if r.InRow >= policy.Max {
		r.Final, r.CrashLoop = true, true
		return r, false
	}
	r.InRow++
	return r, true
}

// RecordFinal records that no run follows the last one that ended after
// all (its restart failed, or btl stopped the task during the pause).
func RecordFinal(d Dirs, token string) error {
	r, err := ReadRuns(d, token)
	if err != nil {
		return err
	}
	r.Final = true
	return WriteRuns(d, token, r, true)
}

// RecordManaged records an end that a service manager saw and acted on
// itself, for a backend whose manager restarts tasks and gives up on them
// by its own rules (systemd: Restart=, the start limit): the run pid ended
// with end, after restarts restarts. key is the instance's token, or the
// task's hash for a backend that keeps one record per task (see RunsFile).
// No run is recorded as started and nothing is decided: whether a run
// follows is the manager's to say.
func RecordManaged(d Dirs, key string, pid, restarts int, end Status) error {
	end = Status{State: end.State, Code: end.Code, Signal: end.Signal}
	return WriteRuns(d, key, Runs{Runs: restarts + 1, PID: pid, Ended: &end}, false)
}

// Restarts is how many times the instance was started again.
func (r Runs) Restarts() int { return max(r.Runs-1, 0) }

// Status is the status the record tells, with ok false when it tells
// none that is final: then the instance is running or between two runs
// (Ended set), which only its backend can confirm, and the status is that
// of the current run: running as r.PID, with the restarts so far and how
// the last run that ended, ended. A final status is how the last run
// ended, with the restarts and CrashLoop.
func (r Runs) Status() (st Status, final bool) {
	if r.Final && r.Ended != nil {
		st = *r.Ended
		st.PID = r.PID
		st.Restarts, st.CrashLoop = r.Restarts(), r.CrashLoop
		if st.Restarts > 0 {
			st.LastExit = r.Ended.String()
		}
		return st, true
	}
	st = Status{State: Running, PID: r.PID, Restarts: r.Restarts()}
	if st.Restarts > 0 || r.Ended != nil {
		st.LastExit = r.LastExit
		if r.Ended != nil {
			st.LastExit = r.Ended.String()
		}
	}
	return st, false
}
