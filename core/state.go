package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"
	"unicode/utf8"
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
	// Fallback says why the backend chosen did not run the task, when
	// another one did (auto mode): "not launchd: ~/Documents is protected".
	Fallback  string  `json:"fallback,omitempty"`
	Token     string  `json:"token,omitempty"`      // value of EnvInstance
	LogDirect bool    `json:"log_direct,omitempty"` // backend writes LogFile itself
	Status    *Status `json:"status,omitempty"`     // how it ended, once known
	Helper    *Proc   `json:"helper,omitempty"`     // a backend's per-task helper process
	Name      string  `json:"name,omitempty"`       // label given with --name, see CheckName
	Restart   string  `json:"restart,omitempty"`    // --restart policy (RestartPolicy.String), "" for none
	// --stop-signal (SIGINT) and --stop-timeout (500ms), "" for the
	// default (DefaultStop): see StopPolicy.
	StopSignal  string   `json:"stop_signal,omitempty"`
	StopTimeout string   `json:"stop_timeout,omitempty"`
	Project     string   `json:"project,omitempty"`   // btl up: the project's directory
	Entry       string   `json:"entry,omitempty"`     // btl up: the entry's name in the project file
	Def         string   `json:"def,omitempty"`       // btl up: digest of the entry's definition, to see it changed
	EnvFiles    []string `json:"env_files,omitempty"` // --env-file files (absolute), read again at every start
	Watch       *Watch   `json:"watch,omitempty"`     // --watch: what is watched, and by which process

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

// State is the content of state.json.
type State struct {
	Processes map[string]*Task `json:"processes"`

	extra        map[string]json.RawMessage
	checkpointed bool   // an intent was recorded in the middle of an Update
	intent       bool   // the state holds the task of an intent file, to save
	saved        []byte // the file's content as read or last written
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
