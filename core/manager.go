package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Manager applies btl's policy: one task per hash, a new start replaces
// the old instance, and state.json mirrors what the backends report.
type Manager struct {
	Store *Store
	Dirs  Dirs
	// Backend starts new tasks.
	Backend Backend
	// Open returns the backend with the given name, for tasks in
	// state.json that another backend started: a task is always stopped and
	// inspected by the backend that started it. It may be nil.
	Open func(name string) (Backend, error)
	// OnReplace, when set, is called before a running instance is stopped
	// to make way for a new one.
	OnReplace func(old *Task)

	opened map[string]Backend // by Open, nil where it failed
}

// View is a task with its current status.
type View struct {
	*Task
	Status Status
}

// Prepare builds the Spec for running argv in dir with env: it resolves
// dir's real path, computes the hash, resolves argv[0] and sets the task's
// BTL_HASH and BTL_INSTANCE variables.
func (m *Manager) Prepare(argv []string, dir string, env []string) (Spec, error) {
	if len(argv) == 0 {
		return Spec{}, errors.New("no command given")
	}
	if _, err := LogMax(env); err != nil {
		return Spec{}, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Spec{}, fmt.Errorf("working directory: %w", err)
	}
	path, err := LookPath(argv[0], real, env)
	if err != nil {
		return Spec{}, err
	}
	cmd := CommandLine(argv)
	hash := Hash(real, cmd)
	token := hash + "-" + randomHex(8)
	env = Setenv(env, EnvHash, hash)
	env = Setenv(env, EnvInstance, token)
	return Spec{
		Hash:    hash,
		Command: cmd,
		Argv:    slices.Clone(argv),
		Path:    path,
		Dir:     real,
		Env:     env,
		LogFile: m.Dirs.LogFile(hash),
		Token:   token,
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Run starts spec under the state lock. A task with the same hash is
// stopped first, whole tree, whichever backend started it; Run returns the
// new task once the old tree is gone and the new one runs. The stopped
// instance, if it was running, is returned as well.
func (m *Manager) Run(ctx context.Context, spec Spec) (started, replaced *Task, err error) {
	// The log is created by btl (mode 0600, never through a symbolic
	// link), and a log that cannot be opened stops the start before the
	// old instance is touched.
	lf, err := OpenLogFile(spec.LogFile)
	if err != nil {
		return nil, nil, err
	}
	lf.Close()
	err = m.Store.Update(func(st *State) error {
		if old := st.Processes[spec.Hash]; old != nil {
			alive, err := m.stop(ctx, old, func() {
				if m.OnReplace != nil {
					m.OnReplace(old)
				}
			})
			if err != nil {
				return fmt.Errorf("stop previous instance: %w", err)
			}
			if alive {
				replaced = old
			}
			delete(st.Processes, spec.Hash)
		}
		// Record the intent before anything runs: if btl dies between the
		// start and the save below, the next btl finds the task by its
		// token (see adopt) instead of losing sight of it.
		intent := &Task{
			Hash:      spec.Hash,
			UserID:    os.Getuid(),
			Command:   spec.Command,
			Cwd:       spec.Dir,
			Argv:      spec.Argv,
			LogFile:   spec.LogFile,
			Token:     spec.Token,
			Backend:   m.Backend.Name(),
			StartedAt: time.Now().UTC(),
			Status:    &Status{State: Starting},
		}
		st.Processes[spec.Hash] = intent
		if err := m.Store.checkpoint(st); err != nil {
			delete(st.Processes, spec.Hash)
			return err
		}
		t, err := m.Backend.Start(ctx, spec)
		if err != nil {
			delete(st.Processes, spec.Hash)
			return err
		}
		t.Hash = intent.Hash
		t.UserID = intent.UserID
		t.Command = intent.Command
		t.Cwd = intent.Cwd
		t.Argv = intent.Argv
		t.LogFile = intent.LogFile
		t.Token = intent.Token
		if t.Backend == "" { // a backend may hand a start on (launchd to fork)
			t.Backend = intent.Backend
		}
		if t.StartedAt.IsZero() {
			t.StartedAt = intent.StartedAt
		}
		st.Processes[spec.Hash] = &t
		started = &t
		// The task runs; not being able to restart it exactly is no reason
		// to report its start as failed.
		m.Dirs.saveEnv(spec.Hash, spec.Env)
		return nil
	})
	return started, replaced, err
}

// stop ends t's tree if it is the caller's. before is called first when
// the task is running. It reports whether the task was running.
func (m *Manager) stop(ctx context.Context, t *Task, before func()) (bool, error) {
	if t.UserID != os.Getuid() {
		return false, nil
	}
	b := m.backendFor(t)
	if b == nil {
		// It may still run; starting another instance beside it would
		// break the one-instance rule, and forgetting it would hide it.
		return false, fmt.Errorf("%w: %s (task %s was started with it)", ErrBackendUnavailable, t.Backend, t.Hash)
	}
	adopt(t)
	st, err := b.Inspect(ctx, *t)
	if err != nil {
		return false, err
	}
	if st.Alive() && before != nil {
		before()
	}
	return st.Alive(), b.Stop(ctx, *t, Grace)
}

func (m *Manager) backendFor(t *Task) Backend {
	name := t.Backend
	if name == "" {
		name = "fork"
	}
	if name == m.Backend.Name() {
		return m.Backend
	}
	if b, ok := m.opened[name]; ok {
		return b
	}
	var b Backend
	if m.Open != nil {
		if ob, err := m.Open(name); err == nil {
			b = ob
		}
	}
	if m.opened == nil {
		m.opened = map[string]Backend{}
	}
	m.opened[name] = b
	return b
}

// adopt completes a task whose start was recorded but not confirmed (btl
// died in between): its main process is found by the task's token.
func adopt(t *Task) {
	if t.Status == nil || t.Status.State != Starting || t.Token == "" {
		return
	}
	if p, ok := FindByToken(t.Token); ok {
		t.PID, t.ProcStart = p.PID, p.Start
		t.Status = nil
		return
	}
	t.Status = &Status{State: Gone}
}

// Status asks t's backend what became of it. A task of another user, or
// of a backend not available here, is reported as gone.
func (m *Manager) Status(ctx context.Context, t *Task) Status {
	b := m.backendFor(t)
	if b == nil || t.UserID != os.Getuid() {
		return Status{State: Gone}
	}
	adopt(t)
	st, err := b.Inspect(ctx, *t)
	if err != nil {
		return Status{State: Gone}
	}
	return st
}

// Reconcile brings st in line with the backends: it adopts tasks that the
// default backend runs and st lost, records how finished tasks ended, and returns every
// task with its status, oldest first.
func (m *Manager) Reconcile(ctx context.Context, st *State) []View {
	views, _ := m.reconcile(ctx, st)
	return views
}

// reconcile is Reconcile, also reporting whether it changed st.
func (m *Manager) reconcile(ctx context.Context, st *State) ([]View, bool) {
	changed := false
	if ts, err := m.Backend.List(ctx); err == nil {
		for _, t := range ts {
			if _, ok := st.Processes[t.Hash]; !ok && ValidHash(t.Hash) {
				t.UserID = os.Getuid()
				t.Backend = m.Backend.Name()
				st.Processes[t.Hash] = &t
				changed = true
			}
		}
	}
	var views []View
	for _, t := range st.Sorted() {
		if t.Status != nil && t.Status.final() {
			// An instance that ended stays ended: nothing to ask.
			views = append(views, View{Task: t, Status: *t.Status})
			continue
		}
		pid, before := t.PID, t.Status
		s := m.Status(ctx, t)
		if !s.Alive() && s.State != Gone {
			t.Status = &s
		} else if !s.Alive() && t.Status != nil {
			s = *t.Status
		}
		if s.Alive() {
			t.Status = nil
		}
		if t.PID != pid || (before == nil) != (t.Status == nil) || before != nil && *before != *t.Status {
			changed = true
		}
		views = append(views, View{Task: t, Status: s})
	}
	return views, changed
}

// List reconciles the state and returns every task with its status.
func (m *Manager) List(ctx context.Context) ([]View, error) {
	var views []View
	err := m.Store.UpdateIf(func(st *State) (bool, error) {
		var changed bool
		views, changed = m.reconcile(ctx, st)
		return changed, nil
	})
	return views, err
}

// Kill stops the tasks named by hash prefixes (every task when all is set)
// and removes them from the state. It returns the tasks it removed, each
// with Status.Alive() true when it was running until stopped.
func (m *Manager) Kill(ctx context.Context, prefixes []string, all bool) ([]View, error) {
	var killed []View
	err := m.Store.Update(func(st *State) error {
		var ts []*Task
		if all {
			m.Reconcile(ctx, st)
			ts = st.Sorted()
		} else {
			for _, p := range prefixes {
				t, err := Find(st, p)
				if err != nil {
					return err
				}
				if !slices.Contains(ts, t) {
					ts = append(ts, t)
				}
			}
		}
		var errs []error
		for _, t := range ts {
			alive, err := m.stop(ctx, t, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.Hash, err))
				continue
			}
			v := View{Task: t, Status: Status{State: Gone}}
			if alive {
				v.Status = Status{State: Running, PID: t.PID}
			}
			killed = append(killed, v)
			delete(st.Processes, t.Hash)
		}
		return errors.Join(errs...)
	})
	return killed, err
}

// Clean removes tasks that no longer run (every task when all is set,
// without stopping any). It returns how many entries it removed and how
// many of those were still running.
func (m *Manager) Clean(ctx context.Context, all bool) (removed, running int, err error) {
	return m.clean(ctx, nil, all)
}

// Forget removes the ended tasks named by hash prefixes. A named task that
// still runs is an error wrapping ErrRunning, and nothing is removed then.
func (m *Manager) Forget(ctx context.Context, prefixes []string) (removed int, err error) {
	removed, _, err = m.clean(ctx, prefixes, false)
	return removed, err
}

func (m *Manager) clean(ctx context.Context, prefixes []string, all bool) (removed, running int, err error) {
	err = m.Store.Update(func(st *State) error {
		views := m.Reconcile(ctx, st)
		if len(prefixes) > 0 {
			named := map[*Task]bool{}
			for _, p := range prefixes {
				t, err := Find(st, p)
				if err != nil {
					return err
				}
				named[t] = true
			}
			views = slices.DeleteFunc(views, func(v View) bool { return !named[v.Task] })
			for _, v := range views {
				if v.Status.Alive() {
					return fmt.Errorf("%w: %s (btl kill %s stops it)", ErrRunning, v.Hash, v.Hash)
				}
			}
		}
		for _, v := range views {
			if v.Status.Alive() {
				if !all {
					continue
				}
				running++
			} else if r, ok := m.backendFor(v.Task).(Releaser); ok && v.UserID == os.Getuid() {
				r.Release(ctx, *v.Task)
			}
			delete(st.Processes, v.Hash)
			removed++
		}
		return nil
	})
	return removed, running, err
}

// MinPrefix is the shortest hash prefix btl accepts.
const MinPrefix = 4

// ErrNoTask reports a hash prefix that names no task; ErrAmbiguous one
// that names several.
var (
	ErrNoTask    = errors.New("no task matches")
	ErrAmbiguous = errors.New("ambiguous hash prefix")
	ErrBadHash   = errors.New("invalid hash")
	ErrRunning   = errors.New("task still runs")
	// ErrBackendUnavailable reports a task whose backend cannot be reached
	// here, such as a systemd task seen from a shell without a user bus.
	ErrBackendUnavailable = errors.New("backend not available here")
)

// Find returns the task whose hash starts with prefix.
func Find(st *State, prefix string) (*Task, error) {
	p := strings.ToLower(prefix)
	if len(p) < MinPrefix || len(p) > HashLen || strings.Trim(p, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w %q: give at least %d of its 16 hex characters", ErrBadHash, prefix, MinPrefix)
	}
	var match []*Task
	for _, t := range st.Sorted() {
		if strings.HasPrefix(t.Hash, p) {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("%w %q%s", ErrNoTask, prefix, candidates(st.Sorted(), "; tracked: "))
	}
	return nil, fmt.Errorf("%w %q%s", ErrAmbiguous, prefix, candidates(match, "; candidates: "))
}

func candidates(ts []*Task, lead string) string {
	if len(ts) == 0 {
		return " (no tasks are tracked)"
	}
	var b strings.Builder
	b.WriteString(lead)
	for i, t := range ts {
		if i == 10 {
			fmt.Fprintf(&b, ", and %d more", len(ts)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%q)", t.Hash, t.Command)
	}
	return b.String()
}
