package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"btl/internal/regular"
)

// ErrCorrupt marks a state file that could not be used as it was.
var ErrCorrupt = errors.New("state file is corrupt")

// Store is state.json in a data directory, with a lock file beside it.
// Every change is made under an exclusive flock and written atomically
// (temporary file, fsync, rename), so concurrent btl processes never lose
// an update and a crash never leaves a half-written file.
type Store struct {
	Dir  string           // directory holding state.json and state.lock
	Warn func(msg string) // receives one-line warnings; may be nil
	// Context, when set, ends a wait for the lock when it ends (SIGINT,
	// SIGTERM): the wait is then an error wrapping ErrLockWait.
	Context context.Context
	// DefaultBackend names the backend of the entries that name none,
	// written before btl had several backends; the wiring sets it.
	DefaultBackend string
}

// Path is the path of state.json.
func (s *Store) Path() string { return filepath.Join(s.Dir, "state.json") }

// Update locks the state, loads it, calls fn and, when fn returns nil,
// saves what fn left. A corrupt state.json is moved aside with a warning
// and fn starts from an empty state.
func (s *Store) Update(fn func(*State) error) error {
	return s.UpdateIf(func(st *State) (bool, error) { return true, fn(st) })
}

// UpdateIf is Update for a fn that reports whether it changed the state:
// an unchanged state is not written again.
func (s *Store) UpdateIf(fn func(*State) (changed bool, err error)) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return s.updateLocked(fn)
}

// updateLocked is UpdateIf once the lock is held.
func (s *Store) updateLocked(fn func(*State) (changed bool, err error)) error {
	s.removeTemps()
	st, err := s.load(true)
	if err != nil {
		return err
	}
	changed, err := fn(st)
	if err != nil {
		if st.checkpointed {
			// fn saved an intermediate state and then undid it in memory.
			if serr := s.save(st); serr != nil {
				return errors.Join(err, fmt.Errorf("undo the recorded start: %w", serr))
			}
		}
		return err
	}
	if !changed && st.saved != nil && !st.intent {
		return nil
	}
	return s.save(st)
}

// Peek calls fn with the state as saved, changes and all, and saves what
// fn changed, as UpdateIf does, when the lock is free. When another
// process holds the lock (a start or a stop, which can take seconds), it
// does not wait: fn gets the state read without the lock, the task of a
// start in progress included (its intent), and what fn changes is not
// written; the next caller that takes the lock records it again.
func (s *Store) Peek(fn func(*State) (changed bool, err error)) error {
	unlock, err := TryLockFile(s.lockPath())
	if errors.Is(err, ErrBusy) {
		st, err := s.Read()
		if err != nil {
			return err
		}
		_, err = fn(st)
		return err
	}
	if err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer unlock()
	return s.updateLocked(fn)
}

// lockPath is the lock file beside state.json.
func (s *Store) lockPath() string { return filepath.Join(s.Dir, "state.lock") }

// removeTemps removes the temporary files of writers that died in the
// middle of a save. Called with the lock held: only a holder of the lock
// writes one, so every one found then is left over.
func (s *Store) removeTemps() {
	left, _ := filepath.Glob(filepath.Join(s.Dir, ".state.json.tmp-*"))
	for _, f := range left {
		_ = os.Remove(f)
	}
}

// canSave checks, while the lock is held, that a state the size of st and
// a new task can be written: it writes a temporary file that large and
// removes it. The size is that of the file as read or last written, where
// there is one (what changed in memory since is far below the margin): so
// large a state is not encoded only to learn its size.
func (s *Store) canSave(st *State) error {
	size := len(st.saved)
	if st.saved == nil {
		b, err := st.encode()
		if err != nil {
			return err
		}
		size = len(b)
	}
	f, err := regular.CreateTemp(s.Path(), 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.Path(), err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, err = f.Write(make([]byte, size+4096))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", s.Path(), err)
	}
	return nil
}

// intentPath is the intent file: the task a start is about to run,
// recorded before anything runs (see checkpoint), in state.json's format.
func (s *Store) intentPath() string { return filepath.Join(s.Dir, "state.intent.json") }

// checkpoint records t, in the middle of an Update, while the lock is
// held, before its start: if btl dies before the Update saves, the next
// load takes t from the intent file (see mergeIntent) and finds its
// processes by its token. The file holds t alone, so its cost does not
// grow with the state; it is not synced, because what it guards against
// is btl's end, not the machine's (which also ends the task's processes).
func (s *Store) checkpoint(st *State, t *Task) error {
	if st.intent {
		// st holds the task of an earlier start's intent file, which
		// state.json does not have yet: the file cannot be given to t.
		// state.json takes both, as a checkpoint did before intent files.
		st.checkpointed = true
		return s.save(st)
	}
	b, err := (&State{Processes: map[string]*Task{t.Hash: t}}).encode()
	if err != nil {
		return err
	}
	if err := ReplaceFile(s.intentPath(), b, 0o600); err != nil {
		return err
	}
	st.checkpointed, st.intent = true, true
	return nil
}

// mergeIntent adds to st the task of an intent file that a start left
// before it could save (btl ended in between), unless st already holds
// that instance. Under the lock (remove set), an intent that st already
// holds is removed.
func (s *Store) mergeIntent(st *State, remove bool) {
	b, err := regular.ReadFile(s.intentPath(), int64(4*maxState))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var in *State
	if err == nil {
		in, err = DecodeState(b)
	}
	if err != nil {
		if remove {
			_ = os.Remove(s.intentPath())
		}
		return
	}
	merged := false
	for h, t := range in.Processes {
		if old := st.Processes[h]; old != nil && old.Token == t.Token {
			continue
		}
		if t.Backend == "" {
			t.Backend = s.DefaultBackend
		}
		st.Processes[h] = t
		merged = true
	}
	if merged {
		st.intent = true
	} else if remove {
		_ = os.Remove(s.intentPath())
	}
}

// Read returns the state without locking it or repairing it. A corrupt
// file reads as an error wrapping ErrCorrupt.
func (s *Store) Read() (*State, error) { return s.load(false) }

func (s *Store) load(repair bool) (*State, error) {
	st, err := s.parse()
	if err == nil {
		s.mergeIntent(st, repair)
	}
	if err == nil || !errors.Is(err, ErrCorrupt) || !repair {
		return st, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", s.Path(), time.Now().UTC().Format("20060102T150405.000000000Z"))
	if rerr := os.Rename(s.Path(), aside); rerr != nil {
		return nil, fmt.Errorf("move corrupt state aside: %w", rerr)
	}
	if s.Warn != nil {
		s.Warn(fmt.Sprintf("%v; moved it to %s and started afresh", err, aside))
	}
	st = &State{Processes: map[string]*Task{}}
	s.mergeIntent(st, repair)
	return st, nil
}

func (s *Store) parse() (*State, error) {
	st := &State{Processes: map[string]*Task{}}
	// Opened without blocking: a FIFO put in its place must not hang btl
	// while it holds the lock.
	b, err := regular.ReadFile(s.Path(), int64(4*maxState))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, nil
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%w: %s is a symbolic link", ErrCorrupt, s.Path())
	case errors.Is(err, regular.ErrNotRegular):
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, s.Path())
	case errors.Is(err, regular.ErrTooLarge):
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, s.Path(), 4*maxState)
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	}
	st, err = DecodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.Path(), err)
	}
	st.saved = b
	for _, t := range st.Processes {
		if t.Backend == "" {
			t.Backend = s.DefaultBackend
		}
	}
	return st, nil
}

func (s *Store) save(st *State) error {
	b, err := st.encode()
	if err != nil {
		return err
	}
	if !bytes.Equal(b, st.saved) { // unchanged: spare the write and the fsync
		// Never more than btl reads back; a state that is already larger
		// (an older btl wrote it) may still shrink.
		if len(b) > maxState && len(b) > len(st.saved) {
			return fullError(len(b))
		}
		if err := regular.WriteFileAtomic(s.Path(), b, 0o600); err != nil {
			return err
		}
		st.saved = b
	}
	if st.intent {
		// The state file has it now (or dropped it, for a start that
		// failed).
		_ = os.Remove(s.intentPath())
		st.intent = false
	}
	return nil
}

// fullError is the error for a state that would be size bytes.
func fullError(size int) error {
	return fmt.Errorf("%w: state.json would grow to %.1f MiB, past the %d MiB btl keeps it under; btl clean forgets ended tasks, btl kill stops running ones",
		ErrStateFull, float64(size)/(1<<20), maxState>>20)
}

// WriteFileAtomic is regular.WriteFileAtomic, for callers that have not
// moved to internal/regular yet.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return regular.WriteFileAtomic(path, data, perm)
}

// ReplaceFile is regular.ReplaceFile without the sync, for callers that
// have not moved to internal/regular yet.
func ReplaceFile(path string, data []byte, perm os.FileMode) error {
	return regular.ReplaceFile(path, data, perm, false)
}
