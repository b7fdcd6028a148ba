package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"btl/internal/logfile"
	"btl/internal/proc"
	"btl/internal/regular"

	"golang.org/x/sys/unix"
)

// Manager applies btl's policy: one task per hash, a new start replaces
// the old instance, and state.json mirrors what the backends report.
type Manager struct {
	Store *Store
	Dirs  Dirs
	// Backend starts new tasks, unless their Spec names another.
	Backend Backend
	// Fallback, when set (auto mode), starts what the backend chosen
	// refuses (a *Refusal: see Refuser, ByteCarrier); OnFallback, when
	// set, is then called under the state lock with what happened.
	Fallback   Backend
	OnFallback func(f Fallback)
	// Open returns the backend with the given name, for tasks in
	// state.json that another backend started: a task is always stopped and
	// inspected by the backend that started it. It may be nil.
	Open func(name string) (Backend, error)
	// Names are the backends that may run tasks on this machine, the
	// default one included. List and re-adoption ask each of them (through
	// Open) for the tasks it knows, so that a task started with a backend
	// other than today's default is never lost from sight.
	Names []string
	// OnReplace, when set, is called before a running instance is stopped
	// to make way for a new one.
	OnReplace func(old *Task)
	// OnForceKill, when set, is called after a running task had to be
	// sent SIGKILL: it had not exited within its stop timeout of its stop
	// signal.
	OnForceKill func(t *Task)
	// OnStarting, when set, is called right before the backend is asked
	// to start a task (after any old instance was stopped).
	OnStarting func()
	// OnRehash, when set, is called when a start's hash belongs to a
	// different task (other), which is left alone: the start gets hash
	// instead (see DerivedHash).
	OnRehash func(other *Task, hash string)
	// Keep, when set, is asked under the state lock about the recorded
	// task a start would replace, with its status: returning true keeps it
	// and starts nothing (btl ensure). Run then returns it as started,
	// with replaced nil.
	Keep func(old *Task, st Status) bool
	// OnStarted, when set, is called under the state lock with the new
	// task's record before it is saved; it may complete the record (the
	// watcher of a watched task).
	OnStarted func(t *Task)

	opened  map[string]Backend // by Open, nil where it failed
	openErr map[string]error   // why Open failed
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
	if _, err := logfile.LogMax(env); err != nil {
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
	if err := checkLog(spec.LogFile, false); err != nil {
		return nil, nil, err
	}
	// Backends keep exit statuses and journal cursors in run/: without it
	// a task's end would go unrecorded, so no backend starts one.
	if err := checkWritableDir(m.Dirs.Run); err != nil {
		return nil, nil, err
	}
	var startErr error // a start that failed after the old instance was stopped
	replacing := false
	err = m.Store.Update(func(st *State) error {
		if other := m.place(st, &spec); other != nil {
			if err := checkLog(spec.LogFile, false); err != nil {
				return err
			}
			if m.OnRehash != nil {
				m.OnRehash(other, spec.Hash)
			}
		}
		old := st.Processes[spec.Hash]
		if spec.Watch != nil && spec.Watch.Watcher != nil && !sameWatcher(&spec, old) {
			return ErrNotWatcher
		}
		if old != nil && m.Keep != nil {
			var s Status
			if old.Status == nil || !old.Status.final() {
				s = m.Status(ctx, old)
			} else {
				s = *old.Status
			}
			if m.Keep(old, s) {
				started = old
				return nil
			}
		}
		if err := m.settleName(ctx, st, &spec); err != nil {
			return err
		}
		// A backend that refuses the task refuses it before anything stops.
		b, fb, err := m.chooseBackend(spec)
		if err != nil {
			return err
		}
		if old := st.Processes[spec.Hash]; old != nil && spec.Project == "" {
			// Re-run by hand or restarted: still the project's entry.
			spec.Project, spec.Entry, spec.Def = old.Project, old.Entry, old.Def
		}
		// A state btl could not read back is never written: a start that
		// would take it past the limit is refused before anything stops.
		if err := st.fits(m.intent(spec, b)); err != nil {
			return fmt.Errorf("cannot record %s: %w", spec.Hash, err)
		}
		// The start is not refused: its log may be made now. A start that
		// fails from here on removes the log it made.
		if created, err := createLog(spec.LogFile); err != nil {
			return err
		} else if created {
			defer func() {
				if started == nil {
					_ = os.Remove(spec.LogFile)
				}
			}()
		}
		if old := st.Processes[spec.Hash]; old != nil {
			// Stopping the old instance is undone by nothing: first make
			// sure the state it leads to can be saved (a full disk).
			if err := m.Store.canSave(st); err != nil {
				return err
			}
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
			if !sameWatcher(&spec, old) {
				// Run again by hand: the old watcher goes with the old
				// instance (a new one watches when --watch is given).
				stopWatcher(old)
			}
			delete(st.Processes, spec.Hash)
			replacing = true
		}
		// Record the intent before anything runs: if btl dies between the
		// start and the save below, the next btl finds the task by its
		// token (see adopt) instead of losing sight of it.
		intent := m.intent(spec, b)
		st.Processes[spec.Hash] = intent
		if err := m.Store.checkpoint(st, intent); err != nil {
			delete(st.Processes, spec.Hash)
			return err
		}
		if m.OnStarting != nil {
			m.OnStarting()
		}
		got, b, fb, err := m.start(ctx, b, fb, spec, func(other Backend) error {
			intent.Backend = other.Name()
			return m.Store.checkpoint(st, intent)
		})
		if err != nil && replacing {
			// The old instance is gone and the new one did not start: the
			// task is kept, failed to start, with its name and the reason,
			// so that a re-run or a restart tries again.
			failed := *intent
			failed.Status = &Status{State: Failed, StartError: OneLine(err.Error())}
			st.Processes[spec.Hash] = &failed
			startErr = err
			return nil
		}
		if err != nil {
			delete(st.Processes, spec.Hash)
			return err
		}
		t := *intent
		t.Status = nil
		t.Backend = b.Name()
		got.apply(&t)
		if fb != nil {
			t.Fallback = fb.note()
			if m.OnFallback != nil {
				m.OnFallback(*fb)
			}
		}
		if m.OnStarted != nil {
			m.OnStarted(&t)
		}
		st.Processes[spec.Hash] = &t
		started = &t
		// The task runs; not being able to restart it exactly is no reason
		// to report its start as failed.
		_ = m.Dirs.saveEnv(spec.Hash, spec.Env)
		return nil
	})
	if err == nil && startErr != nil {
		err = startErr
	}
	return started, replaced, err
}

// intent is the record of spec's start before b starts it.
func (m *Manager) intent(spec Spec, b Backend) *Task {
	t := &Task{
		Hash:      spec.Hash,
		UserID:    os.Getuid(),
		Command:   spec.Command,
		Cwd:       spec.Dir,
		Argv:      spec.Argv,
		LogFile:   spec.LogFile,
		Token:     spec.Token,
		Name:      spec.Name,
		Restart:   spec.Restart.String(),
		Project:   spec.Project,
		Entry:     spec.Entry,
		Def:       spec.Def,
		EnvFiles:  spec.EnvFiles,
		Watch:     cloneWatch(spec.Watch),
		Backend:   b.Name(),
		StartedAt: time.Now().UTC(),
		Status:    &Status{State: Starting},
	}
	spec.StopPolicy().record(t)
	return t
}

// checkLog makes sure the log file at path can be opened for appending:
// never through a symbolic link, and a regular file (a FIFO or device in
// its place is refused, not waited on). A log that does not exist yet
// must be one the caller can create; with create set, checkLog creates it
// (mode 0600).
func checkLog(path string, create bool) error {
	flag := os.O_WRONLY | os.O_APPEND
	if create {
		flag |= os.O_CREATE
	}
	lf, err := regular.Open(path, flag, 0o600)
	switch {
	case !create && errors.Is(err, os.ErrNotExist):
		return checkWritableDir(filepath.Dir(path))
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("open log: %s is a symbolic link; refusing to write through it", path)
	case errors.Is(err, regular.ErrNotRegular):
		return fmt.Errorf("open log: %s is not a regular file; remove it", path)
	case err != nil:
		return fmt.Errorf("open log: %w", err)
	}
	return lf.Close()
}

// createLog creates the log file at path (mode 0600) unless it exists,
// as checkLog checks it, and reports whether it created it.
func createLog(path string) (created bool, err error) {
	lf, err := regular.Open(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return true, lf.Close()
	}
	return false, checkLog(path, true)
}

// checkWritableDir makes sure the caller can create files in dir.
func checkWritableDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("%s: %w (chmod 700 %s)", dir, err, dir)
	}
	return nil
}

// place settles spec's hash in st. spec keeps its Hash unless a
// different task holds it: one whose recorded directory and command are
// not spec's but give the same Hash (a record whose directory and command
// do not give its hash, such as a task found again from a process that
// changed directory, cannot be told apart and is replaced as before).
// Then spec takes the DerivedHash its own task already runs under, or else
// the first free one, and place returns the different task. When spec's
// Hash is free, the task may still run under a DerivedHash taken while
// the other task held it: it keeps that one.
func (m *Manager) place(st *State, spec *Spec) (other *Task) {
	base := spec.Hash
	t := st.Processes[base]
	if t != nil && !t.sameAs(spec) && Hash(t.Cwd, t.Command) == base {
		other = t
	}
	if t != nil && other == nil {
		return nil
	}
	hash := ""
	for _, t := range st.Processes {
		if t.Hash != base && t.sameAs(spec) && isDerived(t.Hash, spec) {
			hash = t.Hash
			break
		}
	}
	for n := 1; hash == "" && other != nil; n++ {
		if h := DerivedHash(spec.Dir, spec.Command, n); st.Processes[h] == nil {
			hash = h
		}
	}
	if hash != "" {
		spec.Token = hash + strings.TrimPrefix(spec.Token, base)
		spec.Hash = hash
		spec.Env = Setenv(Setenv(spec.Env, EnvHash, hash), EnvInstance, spec.Token)
		spec.LogFile = m.Dirs.LogFile(hash)
	}
	return other
}

// isDerived reports whether hash is one of spec's DerivedHash values.
func isDerived(hash string, spec *Spec) bool {
	for n := 1; n <= 1000; n++ {
		if DerivedHash(spec.Dir, spec.Command, n) == hash {
			return true
		}
	}
	return false
}

// sameAs reports whether t was started in spec's directory with spec's
// arguments.
func (t *Task) sameAs(spec *Spec) bool {
	if t.Cwd == spec.Dir && t.Command == spec.Command {
		return true
	}
	// Older btl versions stored bytes that are not UTF-8 as U+FFFD.
	return !IsText(spec.Dir, spec.Command) && t.Cwd == lossy(spec.Dir) && t.Command == lossy(spec.Command)
}

// lossy is s as a JSON string carries it: each byte that is not part of
// valid UTF-8 replaced by U+FFFD.
func lossy(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// stop ends t's tree if it is the caller's. before is called first when
// the task is running. It reports whether the task was running.
func (m *Manager) stop(ctx context.Context, t *Task, before func()) (bool, error) {
	if t.UserID != os.Getuid() {
		return false, nil
	}
	b, err := m.backendFor(t)
	if err != nil {
		// It may still run; starting another instance beside it would
		// break the one-instance rule, and forgetting it would hide it.
		return false, unreachable(t, err)
	}
	adopt(t)
	st, err := b.Inspect(ctx, *t)
	if errors.Is(err, regular.ErrNotRegular) {
		// The backend answers, but a file of the task's is not what btl
		// wrote there: the error says which, and what it is instead.
		return false, err
	}
	if err != nil {
		return false, unreachable(t, err)
	}
	if st.Alive() && before != nil {
		before()
	}
	var rep StopReport
	err = b.Stop(WithStopReport(ctx, &rep), *t, t.StopPolicy().Timeout)
	// The backend says whether it sent SIGKILL: a slow stop (a loaded
	// machine, a large tree) is no reason to say it did.
	if rep.Killed && m.OnForceKill != nil {
		m.OnForceKill(t)
	}
	return st.Alive(), err
}

// unreachable is the error for a task whose backend cannot be asked.
func unreachable(t *Task, err error) error {
	return fmt.Errorf("%w: task %s was started with %s, which cannot be reached here (%v); run btl where `btl list` shows it, or stop it with the backend's own tools",
		ErrBackendUnavailable, t.Hash, t.BackendName(), err)
}

// backendFor returns the backend that started t, or why it cannot be had.
func (m *Manager) backendFor(t *Task) (Backend, error) {
	return m.backendNamed(t.BackendName())
}

// backendNamed returns the named backend, opening it once per Manager.
func (m *Manager) backendNamed(name string) (Backend, error) {
	if name == m.Backend.Name() {
		return m.Backend, nil
	}
	if b, ok := m.opened[name]; ok {
		return b, m.openErr[name]
	}
	var b Backend
	err := fmt.Errorf("backend %s is not available", name)
	if m.Open != nil {
		b, err = m.Open(name)
	}
	if m.opened == nil {
		m.opened, m.openErr = map[string]Backend{}, map[string]error{}
	}
	if err != nil {
		b = nil
	}
	m.opened[name], m.openErr[name] = b, err
	return b, err
}

// adopt completes a task whose start was recorded but not confirmed (btl
// died in between): its main process is found by the task's token.
func adopt(t *Task) {
	if t.Status == nil || t.Status.State != Starting || t.Token == "" {
		return
	}
	if p, ok := proc.FindByToken(t.Token); ok {
		t.PID, t.ProcStart = p.PID, p.Start
		t.Status = nil
		return
	}
	t.Status = &Status{State: Gone}
}

// Status asks t's backend what became of it. A task of another user is
// reported as gone; one whose backend cannot be asked here is Unknown, with
// the reason.
func (m *Manager) Status(ctx context.Context, t *Task) Status {
	if t.UserID != os.Getuid() {
		return Status{State: Gone}
	}
	b, err := m.backendFor(t)
	if err != nil {
		return Status{State: Unknown, PID: t.PID, Reason: err.Error()}
	}
	adopt(t)
	st, err := b.Inspect(ctx, *t)
	if err != nil {
		return Status{State: Unknown, PID: t.PID, Reason: err.Error(), badFile: errors.Is(err, regular.ErrNotRegular)}
	}
	return st
}

// Reconcile brings st in line with the backends: it adopts tasks that the
// default backend runs and st lost, records how finished tasks ended, and returns every
// task with its status, oldest first.
func (m *Manager) Reconcile(ctx context.Context, st *State) []View {
	views, _, _ := m.reconcile(ctx, st)
	return views
}

// reconcile is Reconcile, also reporting whether it changed st and the
// tasks it adopted.
func (m *Manager) reconcile(ctx context.Context, st *State) (views []View, changed bool, adopted []*Task) {
	for _, name := range m.names() {
		b, err := m.backendNamed(name)
		if err != nil {
			continue
		}
		ts, err := listUnknown(ctx, b, st)
		if err != nil {
			continue
		}
		for _, t := range ts {
			if _, ok := st.Processes[t.Hash]; !ok && ValidHash(t.Hash) {
				t.UserID = os.Getuid()
				t.Backend = b.Name()
				st.Processes[t.Hash] = &t
				adopted = append(adopted, &t)
				changed = true
			}
		}
	}
	for _, t := range st.Sorted() {
		if t.Status != nil && t.Status.final() {
			// An instance that ended stays ended: nothing to ask.
			views = append(views, View{Task: t, Status: *t.Status})
			continue
		}
		pid, before := t.PID, t.Status
		var s Status
		t.Status, s = nextStatus(t.Status, m.Status(ctx, t))
		if t.PID != pid || (before == nil) != (t.Status == nil) || before != nil && *before != *t.Status {
			changed = true
		}
		views = append(views, View{Task: t, Status: s})
	}
	return views, changed, adopted
}

// unadopt takes the tasks adoption added back out of st when st would
// otherwise pass MaxStateSize (tasks found again with huge command
// lines): they are shown, and found again next time, but not recorded.
func (m *Manager) unadopt(st *State, adopted []*Task) {
	var left []*Task
	for _, t := range adopted {
		if st.Processes[t.Hash] == t {
			left = append(left, t)
		}
	}
	if len(left) == 0 {
		return
	}
	b, err := st.encode()
	if err != nil || len(b) <= maxState || len(b) <= len(st.saved) {
		return
	}
	for _, t := range left {
		delete(st.Processes, t.Hash)
	}
	if m.Store.Warn != nil {
		m.Store.Warn(fmt.Sprintf("%d running tasks found again are not recorded: %v", len(left), fullError(len(b))))
	}
}

// listUnknown is b's List, without the tasks st already records where b
// can leave them out (UnknownLister).
func listUnknown(ctx context.Context, b Backend, st *State) ([]Task, error) {
	ul, ok := b.(UnknownLister)
	if !ok {
		return b.List(ctx)
	}
	var known []Proc
	for _, t := range st.Processes {
		if t.PID > 0 {
			known = append(known, t.Proc())
		}
		if t.Helper != nil {
			known = append(known, *t.Helper)
		}
	}
	return ul.ListUnknown(ctx, known)
}

// nextStatus is what btl records of a task whose record says rec (nil: it
// ran when last seen) now that its backend reports obs, and the status to
// show. A running task has no record; how a task ended is recorded once
// known and kept when the backend no longer knows (gone); an Unknown
// answer teaches nothing, so the record stays.
func nextStatus(rec *Status, obs Status) (next *Status, shown Status) {
	switch {
	case obs.State == Unknown:
		return rec, obs
	case obs.Alive():
		return nil, obs
	case obs.State != Gone:
		return &obs, obs
	case rec != nil:
		return rec, *rec
	}
	return nil, obs
}

// release drops what t's backend keeps of it after it ended (a failed
// unit, a loaded agent), once btl forgets t.
func (m *Manager) release(ctx context.Context, t *Task) {
	if t.UserID != os.Getuid() {
		return
	}
	if b, err := m.backendFor(t); err == nil {
		if r, ok := b.(Releaser); ok {
			_ = r.Release(ctx, *t)
		}
	}
}

// SyncLog brings t's log file up to date where its backend's output does
// not reach the file directly (systemd's journal).
func (m *Manager) SyncLog(ctx context.Context, t *Task) error {
	b, err := m.backendFor(t)
	if err != nil {
		return err
	}
	if ls, ok := b.(LogSyncer); ok {
		return ls.SyncLog(ctx, *t)
	}
	return nil
}

// names are the backends to ask for their tasks: the default one first.
func (m *Manager) names() []string {
	names := []string{m.Backend.Name()}
	for _, n := range m.Names {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// List reconciles the state and returns every task with its status. It
// never waits for another btl's change (see Store.Peek).
func (m *Manager) List(ctx context.Context) ([]View, error) {
	var views []View
	err := m.Store.Peek(func(st *State) (bool, error) {
		var changed bool
		var adopted []*Task
		views, changed, adopted = m.reconcile(ctx, st)
		m.unadopt(st, adopted)
		return changed, nil
	})
	return views, err
}

// Kill stops the tasks named by hash prefixes (every task when all is set)
// and forgets them: their records and runtime files go, their log files
// stay (btl logs shows them; clean --all deletes them). It returns the
// tasks it removed, each with Status.Alive() true when it was running
// until stopped.
func (m *Manager) Kill(ctx context.Context, prefixes []string, all bool) ([]View, error) {
	return m.halt(ctx, prefixes, all, false)
}

// Stop stops the tasks named by hash prefixes (every task when all is
// set) as Kill does, but keeps their records, names and files: a task that
// ran is recorded as Stopped, one that had ended keeps how it ended, and
// Restart runs either again.
func (m *Manager) Stop(ctx context.Context, prefixes []string, all bool) ([]View, error) {
	return m.halt(ctx, prefixes, all, true)
}

func (m *Manager) halt(ctx context.Context, prefixes []string, all, keep bool) ([]View, error) {
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
			if keep && t.Status != nil && t.Status.final() {
				// Already stopped or ended: nothing runs to stop, but a
				// watcher would start it again on a change.
				stopWatcher(t)
				killed = append(killed, View{Task: t, Status: *t.Status})
				continue
			}
			// The watcher goes first: it must not start the task again.
			stopWatcher(t)
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
			if keep {
				if alive || t.Status == nil {
					t.Status = &Status{State: Stopped, PID: t.PID}
				} else if !t.Status.final() {
					t.Status = &Status{State: Gone, PID: t.PID}
				}
				continue
			}
			delete(st.Processes, t.Hash)
			if !alive {
				// Stopping a running task leaves nothing behind; one that
				// had ended may have left a record (a failed unit).
				m.release(ctx, t)
			}
			// Nothing btl made for the task outlives its record but its
			// log, which clean --all deletes; the log gets the task's last
			// lines first where they are copied from elsewhere (the
			// journal), since the copier's record goes with the rest.
			_ = m.SyncLog(ctx, t)
			if err := m.Dirs.removeRunFiles(t.Hash); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	return killed, err
}

// Cleaned is what Clean did: the tasks it forgot, and the tasks it kept
// because they run (or may run: their backend cannot be asked here).
type Cleaned struct {
	Removed  []View
	Kept     []View
	Warnings []error // files of removed tasks that could not be deleted
}

// Clean forgets the tasks that have ended (or were stopped), with their
// runtime files. A task that runs, or whose backend cannot tell, is never
// forgotten: the next start of the same command would run a second
// instance beside it. With all set, Clean also removes the forgotten
// tasks' log files (kept otherwise), the logs of tasks forgotten before
// and runtime files that belong to no task, and reports the running tasks
// it kept.
func (m *Manager) Clean(ctx context.Context, all bool) (Cleaned, error) {
	return m.clean(ctx, nil, all)
}

// Forget removes the ended tasks named by hash prefixes. A named task that
// still runs is an error wrapping ErrRunning, and nothing is removed then.
func (m *Manager) Forget(ctx context.Context, prefixes []string) (removed int, err error) {
	c, err := m.clean(ctx, prefixes, false)
	return len(c.Removed), err
}

func (m *Manager) clean(ctx context.Context, prefixes []string, all bool) (c Cleaned, err error) {
	err = m.Store.Update(func(st *State) error {
		views, _, adopted := m.reconcile(ctx, st)
		defer m.unadopt(st, adopted)
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
				switch {
				case v.Status.State == Unknown && v.Status.badFile:
					return fmt.Errorf("%s: %s", v.Hash, v.Status.Reason)
				case v.Status.State == Unknown:
					return unreachable(v.Task, errors.New(v.Status.Reason))
				case !v.Status.Ended():
					return fmt.Errorf("%w: %s (btl kill %s stops it)", ErrRunning, v.Hash, v.Hash)
				}
			}
		}
		for _, v := range views {
			if !v.Status.Ended() {
				c.Kept = append(c.Kept, v)
				continue
			}
			m.release(ctx, v.Task)
			stopWatcher(v.Task)
			delete(st.Processes, v.Hash)
			c.Removed = append(c.Removed, v)
			// Under the lock: a start of the same command waits. Nothing
			// but its log outlives a task's record; --all deletes that too.
			remove := m.Dirs.removeRunFiles
			if all {
				remove = m.Dirs.removeTaskFiles
			}
			if err := remove(v.Hash); err != nil {
				c.Warnings = append(c.Warnings, err)
			}
		}
		if all && len(prefixes) == 0 {
			// Logs of forgotten (killed) tasks, and runtime files of no
			// task: nothing else would ever remove them. Unless a backend
			// cannot be asked here: a task it runs that state.json lost
			// was not found again, and its files are not orphans.
			if err := m.unaskable(); err != nil {
				c.Warnings = append(c.Warnings, fmt.Errorf("files of no tracked task kept: %w", err))
			} else if err := m.Dirs.sweep(func(hash string) bool { return st.Processes[hash] != nil }); err != nil {
				c.Warnings = append(c.Warnings, err)
			}
		}
		return nil
	})
	return c, err
}

// unaskable returns why a backend that may run tasks on this machine
// cannot be asked here, nil when every one can.
func (m *Manager) unaskable() error {
	for _, n := range m.names() {
		if _, err := m.backendNamed(n); err != nil {
			return fmt.Errorf("%s cannot be asked here: %w", n, err)
		}
	}
	return nil
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

// Find returns the task named prefix (see Task.Name), else the task whose
// hash starts with prefix.
func Find(st *State, prefix string) (*Task, error) {
	if t := findName(st, prefix); t != nil {
		return t, nil
	}
	p := strings.ToLower(prefix)
	switch {
	case strings.Trim(p, "0123456789abcdef") != "":
		return nil, fmt.Errorf("%w: %q is not a task name or hash (hashes are %d hex characters, see btl list)", ErrBadHash, prefix, HashLen)
	case len(p) > HashLen:
		return nil, fmt.Errorf("%w: %q is longer than a task hash (%d hex characters)", ErrBadHash, prefix, HashLen)
	case len(p) < MinPrefix:
		return nil, fmt.Errorf("%w: %q is too short; give at least %d characters of the hash", ErrBadHash, prefix, MinPrefix)
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
