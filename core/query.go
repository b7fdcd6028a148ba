package core

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Describer is implemented by backends that can name the command which
// shows a task with their own tools (systemctl, launchctl, ps), for
// btl show.
type Describer interface {
	Describe(ctx context.Context, t Task) string
}

// Hinter is implemented by backends that have advice for the user once a
// task has started (systemd over ssh: tasks end at logout unless
// lingering is on). StartHint returns "" when there is none; it may say a
// hint only once.
type Hinter interface {
	StartHint(t Task) string
}

// ReadState returns the state saved in the data directory d, read without
// its lock: for reading only (shell completion).
func ReadState(d Dirs) (*State, error) { return (&Store{Dir: d.Data}).Read() }

// Snapshot returns the state as saved, read without its lock: for
// reading only, where a change racing the read does not matter.
func (m *Manager) Snapshot() (*State, error) { return m.Store.Read() }

// Look calls fn with the state under its lock, so that fn never sees the
// middle of a change (a replace whose old instance is stopped and whose
// new one is not yet recorded), and saves nothing. It does not wait: while
// another btl holds the lock (a start or a stop, which can take seconds)
// it returns an error wrapping ErrBusy without calling fn, and the caller
// looks again later.
func (m *Manager) Look(fn func(st *State)) error {
	unlock, err := TryLockFile(m.Store.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.Store.load(false)
	if err != nil {
		return err
	}
	fn(st)
	return nil
}

// Show reconciles the state and returns the task named by prefix (see
// Find) with its status. Like List, it never waits for another btl's
// change.
func (m *Manager) Show(ctx context.Context, prefix string) (View, error) {
	var v View
	err := m.Store.Peek(func(st *State) (bool, error) {
		views, changed, _ := m.reconcile(ctx, st)
		t, err := Find(st, prefix)
		if err != nil {
			return false, err
		}
		for _, x := range views {
			if x.Task == t {
				v = x
			}
		}
		return changed, nil
	})
	return v, err
}

// Check asks t's status once, as Status does; when t has ended, its log
// is first brought up to date (SyncLog), so that a caller reading the log
// finds the task's last output there.
func (m *Manager) Check(ctx context.Context, t *Task) Status {
	st := m.Status(ctx, t)
	if st.Ended() {
		_ = m.SyncLog(ctx, t) // the status stands; the log may lag
	}
	return st
}

// Describe returns the command that shows t with its backend's own
// tools, or "" when that backend cannot tell or cannot be reached here.
func (m *Manager) Describe(ctx context.Context, t *Task) string {
	b, err := m.backendFor(t)
	if err != nil {
		return ""
	}
	if d, ok := b.(Describer); ok {
		return d.Describe(ctx, *t)
	}
	return ""
}

// StartHint returns the advice t's backend has once t has started, or "".
func (m *Manager) StartHint(t *Task) string {
	b, err := m.backendFor(t)
	if err != nil {
		return ""
	}
	if h, ok := b.(Hinter); ok {
		return h.StartHint(*t)
	}
	return ""
}

// Restart prepares a run of the task named by prefix (see Find) as it was
// started: it returns the task and the environment recorded for it
// (recorded false when there is none). Unless another backend was asked
// for (ownBackend false), a task runs again where it ran: Restart checks
// that its backend can be reached here, and the caller names it in the
// run's Spec.Backend. The Manager's own backend stays as it is.
func (m *Manager) Restart(prefix string, ownBackend bool) (t *Task, env []string, recorded bool, err error) {
	st, err := m.Store.Read()
	if err != nil {
		return nil, nil, false, err
	}
	if t, err = Find(st, prefix); err != nil {
		return nil, nil, false, err
	}
	if len(t.Argv) == 0 {
		return nil, nil, false, fmt.Errorf("task %s has no recorded arguments; run it again from %s", t.Hash, t.Cwd)
	}
	if ownBackend {
		if _, err := m.backendNamed(t.BackendName()); err != nil {
			return nil, nil, false, fmt.Errorf("task %s was started with %s: %w (give --backend to run it with another)", t.Hash, t.BackendName(), err)
		}
	}
	env, err = m.Dirs.LoadEnv(t.Hash)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return t, env, true, nil
}
