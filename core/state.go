package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"btl/internal/regular"
)

// MaxStateSize is the largest state.json btl writes: a change that would
// take the file past it is refused with an error wrapping ErrStateFull
// (a start says so in one line, and nothing starts).
const MaxStateSize = 16 << 20

// MaxStateRead bounds how much of state.json btl reads; a larger file is
// treated as corrupt. It is well above MaxStateSize, so that no state btl
// wrote, not even one an older btl wrote past MaxStateSize, is taken for
// corrupt.
const MaxStateRead = 4 * MaxStateSize

// maxState is MaxStateSize, and maxState*4 MaxStateRead; tests lower it.
var maxState = MaxStateSize

// ErrStateFull reports a change that would take state.json past
// MaxStateSize.
var ErrStateFull = errors.New("state full")

// Task is one tracked task as recorded in state.json. Fields btl does not
// know are kept and written back unchanged.
type Task struct {
	Hash      string    `json:"-"` // the key in State.Processes
	PID       int       `json:"pid"`
	UserID    int       `json:"user_id"`
	Command   string    `json:"command"`
	Cwd       string    `json:"cwd"`
	StartedAt time.Time `json:"started_at"`
	LogFile   string    `json:"log_file"`
	Argv      []string  `json:"argv,omitempty"`
	Backend   string    `json:"backend,omitempty"`
	ProcStart uint64    `json:"proc_start,omitempty"` // start time of PID, see Proc
	Unit      string    `json:"unit,omitempty"`       // native name: systemd unit, launchd label
	Token     string    `json:"token,omitempty"`      // value of EnvInstance
	LogDirect bool      `json:"log_direct,omitempty"` // backend writes LogFile itself
	Status    *Status   `json:"status,omitempty"`     // how it ended, once known
	Helper    *Proc     `json:"helper,omitempty"`     // a backend's per-task helper process
	Name      string    `json:"name,omitempty"`       // label given with --name, see CheckName
	Restart   string    `json:"restart,omitempty"`    // --restart policy (RestartPolicy.String), "" for none

	// The exact bytes of Command, Cwd and Argv when they are not valid
	// UTF-8, which a JSON string cannot carry (base64 in the file; the
	// string fields then hold U+FFFD in their place, for older readers).
	// Set only while encoding; decoding moves them into the fields above.
	CommandBytes []byte   `json:"command_bytes,omitempty"`
	CwdBytes     []byte   `json:"cwd_bytes,omitempty"`
	ArgvBytes    [][]byte `json:"argv_bytes,omitempty"`

	extra map[string]json.RawMessage
}

// toBytes fills the *Bytes fields of a copy of t about to be encoded.
func (t *Task) toBytes() {
	if !utf8.ValidString(t.Command) {
		t.CommandBytes = []byte(t.Command)
	}
	if !utf8.ValidString(t.Cwd) {
		t.CwdBytes = []byte(t.Cwd)
	}
	for _, a := range t.Argv {
		if !utf8.ValidString(a) {
			t.ArgvBytes = make([][]byte, len(t.Argv))
			for i, a := range t.Argv {
				t.ArgvBytes[i] = []byte(a)
			}
			break
		}
	}
}

// fromBytes restores the exact bytes of a decoded task.
func (t *Task) fromBytes() {
	if t.CommandBytes != nil {
		t.Command, t.CommandBytes = string(t.CommandBytes), nil
	}
	if t.CwdBytes != nil {
		t.Cwd, t.CwdBytes = string(t.CwdBytes), nil
	}
	if t.ArgvBytes != nil {
		if len(t.ArgvBytes) == len(t.Argv) {
			for i, a := range t.ArgvBytes {
				t.Argv[i] = string(a)
			}
		}
		t.ArgvBytes = nil
	}
}

// BackendName is the name of the backend that started t. A loaded entry
// that names none gets its Store's DefaultBackend.
func (t *Task) BackendName() string { return t.Backend }

// Proc returns the identity of the task's main process.
func (t *Task) Proc() Proc { return Proc{PID: t.PID, Start: t.ProcStart} }

type plainTask Task

// UnmarshalJSON decodes a task and keeps the fields btl does not know.
func (t *Task) UnmarshalJSON(b []byte) error {
	extra, err := decodeKeeping(b, (*plainTask)(t), reflect.TypeFor[plainTask]())
	t.extra = extra
	t.fromBytes()
	return err
}

// MarshalJSON encodes a task with the unknown fields it was read with.
func (t *Task) MarshalJSON() ([]byte, error) {
	c := *t
	c.toBytes()
	return withExtra((*plainTask)(&c), t.extra)
}

// State is the content of state.json.
type State struct {
	Processes map[string]*Task `json:"processes"`

	extra        map[string]json.RawMessage
	checkpointed bool   // saved in the middle of an Update
	saved        []byte // the file's content as read or last written
}

type plainState State

// UnmarshalJSON decodes the state and keeps the fields btl does not know.
func (s *State) UnmarshalJSON(b []byte) error {
	extra, err := decodeKeeping(b, (*plainState)(s), reflect.TypeFor[plainState]())
	if err != nil {
		return err
	}
	s.extra = extra
	for h, t := range s.Processes {
		if t == nil {
			return fmt.Errorf("entry %q is null", h)
		}
		t.Hash = h
	}
	return nil
}

// MarshalJSON encodes the state with the unknown fields it was read with.
func (s *State) MarshalJSON() ([]byte, error) {
	return withExtra((*plainState)(s), s.extra)
}

// Sorted returns the tasks, oldest first.
func (s *State) Sorted() []*Task {
	ts := make([]*Task, 0, len(s.Processes))
	for _, t := range s.Processes {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].StartedAt.Equal(ts[j].StartedAt) {
			return ts[i].StartedAt.Before(ts[j].StartedAt)
		}
		return ts[i].Hash < ts[j].Hash
	})
	return ts
}

var knownFields sync.Map // reflect.Type -> map[string]bool

func jsonNames(typ reflect.Type) map[string]bool {
	if v, ok := knownFields.Load(typ); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	knownFields.Store(typ, names)
	return names
}

// decodeKeeping decodes b into v (of type typ) and returns the fields v has
// no place for. It is the general path: a state file with only known
// fields, the usual case, is decoded by decodeFast without it.
func decodeKeeping(b []byte, v any, typ reflect.Type) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return unknownFields(b, typ)
}

func unknownFields(b []byte, typ reflect.Type) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	known := jsonNames(typ)
	for k := range all {
		if known[k] {
			delete(all, k)
			continue
		}
		// encoding/json fills a field from a key that differs only in
		// case, so that key is not unknown either.
		for n := range known {
			if strings.EqualFold(n, k) {
				delete(all, k)
				break
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

func withExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, raw := range extra {
		if _, ok := all[k]; !ok {
			all[k] = raw
		}
	}
	return json.Marshal(all)
}

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
	if !changed && st.saved != nil {
		return nil
	}
	return s.save(st)
}

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

// checkpoint saves st in the middle of an Update, while the lock is held.
func (s *Store) checkpoint(st *State) error {
	st.checkpointed = true
	return s.save(st)
}

// Read returns the state without locking it or repairing it. A corrupt
// file reads as an error wrapping ErrCorrupt.
func (s *Store) Read() (*State, error) { return s.load(false) }

func (s *Store) lock() (func(), error) {
	ctx := s.Context
	if ctx == nil {
		ctx = context.Background()
	}
	unlock, err := LockFileWait(ctx, filepath.Join(s.Dir, "state.lock"), LockWaitNotice, func(holder string) {
		if s.Warn != nil {
			s.Warn("waiting for the state lock, held by " + holder + " (Ctrl-C gives up)")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return unlock, nil
}

// LockWaitNotice is how long btl waits for the state lock before it says
// who holds it.
const LockWaitNotice = time.Second

// LockFile takes an exclusive flock on path (created 0600 if missing, never
// through a symbolic link, and only a regular file), waiting for it, and
// returns the function that releases it. The lock also ends with the
// process.
func LockFile(path string) (unlock func(), err error) {
	return LockFileWait(context.Background(), path, 0, nil)
}

// ErrLockWait reports a wait for a lock that ended before the lock was
// taken, because ctx ended (SIGINT, SIGTERM).
var ErrLockWait = errors.New("gave up waiting for the lock")

// LockFileWait is LockFile that gives up, with an error wrapping
// ErrLockWait, as soon as ctx ends. When the lock is held by another
// process for longer than notice, it calls waiting (if not nil) once with
// a description of the holder. The holder of a lock taken by btl is
// recorded in the lock file: its PID and command line.
func LockFileWait(ctx context.Context, path string, notice time.Duration, waiting func(holder string)) (unlock func(), err error) {
	f, err := regular.Open(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		err = waitLock(ctx, f, notice, waiting)
		if errors.Is(err, ErrLockWait) {
			return nil, err // f is the waiting goroutine's now
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	// Who holds the lock, for those who wait; a full disk only costs them
	// the name.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(holderLine()), 0)
	}
	return func() { _ = f.Close() }, nil
}

// waitLock waits for the flock on f in a goroutine, so that the wait can
// end with ctx. A goroutine whose wait was given up closes f once its
// flock returns, which releases the lock at once.
func waitLock(ctx context.Context, f *os.File, notice time.Duration, waiting func(string)) error {
	var mu sync.Mutex
	abandoned := false
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			_ = f.Close()
			return
		}
		done <- err
	}()
	var tick <-chan time.Time
	if waiting != nil {
		t := time.NewTimer(notice)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-done:
			return err
		case <-tick:
			tick = nil
			waiting(lockHolder(f))
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			select {
			case err := <-done:
				// Taken just now: give it back.
				if err == nil {
					_ = f.Close()
				}
			default:
				abandoned = true
			}
			return fmt.Errorf("%w held by %s: %w", ErrLockWait, lockHolder(f), ctx.Err())
		}
	}
}

// holderLine is what a lock's holder records in the lock file: its PID
// and command line.
func holderLine() string {
	args := slices.Clone(os.Args)
	if len(args) > 0 {
		args[0] = filepath.Base(args[0])
	}
	cmd := CommandLine(args)
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	return strconv.Itoa(os.Getpid()) + " " + cmd + "\n"
}

// lockHolder describes the process recorded in the lock file f, when it
// still runs.
func lockHolder(f *os.File) string {
	b := make([]byte, 512)
	n, _ := f.ReadAt(b, 0)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	pidStr, cmd, _ := strings.Cut(line, " ")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || unix.Kill(pid, 0) == unix.ESRCH {
		return "another process"
	}
	cmd = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(cmd, "?"))
	return fmt.Sprintf("PID %d (%s)", pid, cmd)
}

func (s *Store) load(repair bool) (*State, error) {
	st, err := s.parse()
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
	return &State{Processes: map[string]*Task{}}, nil
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

// DecodeState parses the content of a state file and checks every hash.
func DecodeState(b []byte) (*State, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty")
	}
	st, ok := decodeFast(b)
	if !ok {
		st = &State{}
		if err := json.Unmarshal(b, st); err != nil {
			return nil, err
		}
	}
	if st.Processes == nil {
		st.Processes = map[string]*Task{}
	}
	for h := range st.Processes {
		if !ValidHash(h) {
			return nil, fmt.Errorf("bad hash %q", h)
		}
	}
	return st, nil
}

// decodeFast decodes a state file that holds only fields btl knows, the
// usual case, in one pass over its bytes plus the decoder's scan (the
// general path, which keeps unknown fields, reads each task's bytes again).
// It reports false for anything else, which the general path then decodes
// or rejects.
func decodeFast(b []byte) (*State, bool) {
	var fs struct {
		Processes map[string]*plainTask `json:"processes"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&fs); err != nil {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	st := &State{Processes: make(map[string]*Task, len(fs.Processes))}
	for h, pt := range fs.Processes {
		if pt == nil {
			return nil, false
		}
		t := (*Task)(pt)
		t.Hash = h
		t.fromBytes()
		st.Processes[h] = t
	}
	if fs.Processes == nil {
		st.Processes = nil
	}
	return st, true
}

// encode renders st as the state file holds it: json.MarshalIndent's
// output, without its pass over the whole of MarshalJSON's output to
// compact it again (MarshalJSON returns what json.Marshal wrote).
func (st *State) encode() ([]byte, error) {
	b, err := st.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(b) * 2)
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func (s *Store) save(st *State) error {
	b, err := st.encode()
	if err != nil {
		return err
	}
	if bytes.Equal(b, st.saved) {
		return nil // unchanged: spare the write and the fsync
	}
	// Never more than btl reads back; a state that is already larger (an
	// older btl wrote it) may still shrink.
	if len(b) > maxState && len(b) > len(st.saved) {
		return fullError(len(b))
	}
	if err := regular.WriteFileAtomic(s.Path(), b, 0o600); err != nil {
		return err
	}
	st.saved = b
	return nil
}

// fullError is the error for a state that would be size bytes.
func fullError(size int) error {
	return fmt.Errorf("%w: state.json would grow to %.1f MiB, past the %d MiB btl keeps it under; btl clean forgets ended tasks, btl kill stops running ones",
		ErrStateFull, float64(size)/(1<<20), maxState>>20)
}

// fits reports whether st, with the task add in place of the one of its
// hash (nil: none), stays within MaxStateSize, without encoding st when
// the state as last read or written is far enough below it.
func (st *State) fits(add *Task) error {
	one, err := add.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	// Indentation adds less than the encoding itself to a task.
	if st.saved != nil && len(st.saved)+2*len(one)+4096 <= maxState {
		return nil
	}
	trial := &State{Processes: maps.Clone(st.Processes), extra: st.extra}
	trial.Processes[add.Hash] = add
	b, err := trial.encode()
	if err != nil {
		return err
	}
	if len(b) > maxState && len(b) > len(st.saved) {
		return fullError(len(b))
	}
	return nil
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

// ValidHash reports whether h has the form of a task hash.
func ValidHash(h string) bool {
	if len(h) != HashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !('0' <= h[i] && h[i] <= '9' || 'a' <= h[i] && h[i] <= 'f') {
			return false
		}
	}
	return true
}
