package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"btl/internal/proc"
)

// Env names btl sets in every task's environment. EnvInstance carries a
// token unique to one start; btl uses it to find the task's descendants,
// even those that left its process group.
const (
	EnvHash     = proc.EnvHash
	EnvInstance = proc.EnvInstance
)

// Spec is everything a backend needs to start a task.
type Spec struct {
	Hash    string   // task identity, see Hash
	Command string   // argv as one shell-quoted string
	Argv    []string // argv as the user gave it
	Path    string   // argv[0] resolved against the caller's PATH
	Dir     string   // working directory (real path)
	Env     []string // the task's whole environment, NAME=value
	LogFile string   // where the task's output must end up
	Token   string   // value of EnvInstance, unique to this start
	Name    string   // the task's name, a label (see CheckName); may be empty
	Backend string   // the backend to start it with (restart: the one it ran with); "": the Manager's

	Restart RestartPolicy // when the backend starts the task again (--restart)
	Stop    StopPolicy    // how the task is stopped (--stop-signal, --stop-timeout); zero: DefaultStop

	// A task of a project (btl up): the project's directory, the entry's
	// name and the digest of its definition. A start that leaves them
	// empty keeps those of the instance it replaces.
	Project, Entry, Def string

	// EnvFiles and Watch are recorded with the task; backends ignore them.
	EnvFiles []string // --env-file files (absolute), already read into Env
	Watch    *Watch   // --watch; Watch.Watcher set when the watcher itself replaces the task
}

// StopPolicy is spec's stop policy: DefaultStop when it gives none, its
// signal SIGTERM when it gives only a timeout.
func (spec Spec) StopPolicy() StopPolicy {
	p := spec.Stop
	if p == (StopPolicy{}) {
		return DefaultStop
	}
	if p.Signal == 0 {
		p.Signal = DefaultStop.Signal
	}
	return p
}

// Backend starts and stops tasks in one native way (a forked process tree, a
// systemd --user unit, a launchd agent). Implementations must be safe to use
// from one goroutine at a time; the Manager serialises calls under its lock.
type Backend interface {
	// Name is the backend's name as stored in state.json ("fork", ...).
	Name() string
	// Start starts spec and reports what the backend owns of the running
	// task; the Manager records the rest. It returns only once the program
	// has been executed; a program that cannot be executed is an error
	// wrapping ErrNotFound or ErrNotExecutable, and leaves nothing running.
	Start(ctx context.Context, spec Spec) (Started, error)
	// Stop ends every process of t: t's stop signal (Task.StopPolicy),
	// up to grace, then SIGKILL. It returns nil once they are all gone,
	// also when t had already exited, and a *SurvivorsError when some could
	// not be ended. It never signals a process it cannot prove belongs to
	// t. When it sends SIGKILL, it says so with NoteKilled(ctx).
	Stop(ctx context.Context, t Task, grace time.Duration) error
	// Inspect reports what became of t.
	Inspect(ctx context.Context, t Task) (Status, error)
	// List returns the tasks the backend itself knows of, so that state.json
	// can be rebuilt from them. A backend that keeps no record returns nil.
	List(ctx context.Context) ([]Task, error)
}

// StopReport collects what a Backend's Stop did that its error does not
// say. The Manager passes one in the context of each Stop (WithStopReport);
// a backend notes in it what it did (NoteKilled).
type StopReport struct {
	Killed bool // SIGKILL was sent: something outlived SIGTERM and the grace
}

type stopReportKey struct{}

// WithStopReport returns ctx carrying r, for a Stop to fill in.
func WithStopReport(ctx context.Context, r *StopReport) context.Context {
	return context.WithValue(ctx, stopReportKey{}, r)
}

// NoteKilled records, in the StopReport ctx carries (if any), that the
// stop sent SIGKILL.
func NoteKilled(ctx context.Context) {
	if r, ok := ctx.Value(stopReportKey{}).(*StopReport); ok {
		r.Killed = true
	}
}

// LogSyncer is implemented by backends whose task output does not reach the
// log file directly (systemd's journal). SyncLog brings the file up to date.
type LogSyncer interface {
	SyncLog(ctx context.Context, t Task) error
}

// Releaser is implemented by backends that keep a record of a task after it
// ended (a loaded launchd agent, a failed systemd unit). Release drops that
// record when btl forgets the task; it is only called for tasks that are
// not running.
type Releaser interface {
	Release(ctx context.Context, t Task) error
}

// UnknownLister is implemented by backends whose List can leave out the
// tasks btl already knows: ListUnknown is List without the tasks whose
// main process or helper is among known (PID and start time), so that
// re-adoption reads nothing more of them.
type UnknownLister interface {
	ListUnknown(ctx context.Context, known []Proc) ([]Task, error)
}

// RunState says whether a task runs.
type RunState string

// The states of a task.
const (
	Running  RunState = "running"
	Exited   RunState = "exited"   // ended by itself; Code is its exit code
	Signaled RunState = "killed"   // ended by a signal; Signal says which
	Gone     RunState = "gone"     // not running; how it ended is unknown
	Failed   RunState = "failed"   // the backend reports a failure without a code
	Starting RunState = "starting" // recorded, start not yet confirmed
	Stopped  RunState = "stopped"  // stopped by btl stop; kept until restarted or cleaned
	// Unknown: the task's backend cannot be asked here (no user bus, say);
	// Reason says why. Such a task may run, so it is never forgotten.
	Unknown RunState = "unknown"
)

// Status is what a backend knows of a task.
type Status struct {
	State  RunState `json:"state"`
	PID    int      `json:"pid,omitempty"`
	Code   int      `json:"code,omitempty"`
	Signal int      `json:"signal,omitempty"`
	Reason string   `json:"reason,omitempty"` // with Unknown: why the backend cannot be asked
	// MainExited, with State Running, says that the task's main process
	// has exited while processes it started still run.
	MainExited bool `json:"main_exited,omitempty"`
	// Restarts is how many times the backend started the task again
	// (--restart); LastExit how the last of its runs that ended, ended
	// ("exited 1"). CrashLoop, with a final State, says the backend gave
	// up restarting it: State is how its last run ended.
	Restarts  int    `json:"restarts,omitempty"`
	LastExit  string `json:"last_exit,omitempty"`
	CrashLoop bool   `json:"crash_loop,omitempty"`
	// StartError, with State Failed, says that the task's last start
	// failed after its previous instance was stopped: why, in one line.
	// The task is kept, so that a re-run or a restart tries again.
	StartError string `json:"start_error,omitempty"`

	// badFile, with Unknown: the backend answered, but a file of the
	// task's is not what btl wrote there (Reason names it).
	badFile bool
}

// final reports whether the status can no longer change: the instance it
// describes has ended (a PID and start time never come back).
func (s Status) final() bool {
	switch s.State {
	case Exited, Signaled, Failed, Gone, Stopped:
		return true
	}
	return false
}

// Alive reports whether the task is running.
func (s Status) Alive() bool { return s.State == Running }

// Ended reports whether the task is known not to run: btl may forget it.
func (s Status) Ended() bool { return s.final() }

// String renders the status as btl list shows it.
func (s Status) String() string {
	if s.CrashLoop {
		end := s
		end.CrashLoop = false
		return fmt.Sprintf("crash loop (%s, %s)", end, RestartCount(s.Restarts))
	}
	if s.StartError != "" {
		return "failed to start"
	}
	switch s.State {
	case Running:
		if s.MainExited {
			return "running (main exited)"
		}
		return string(Running)
	case Exited:
		return fmt.Sprintf("exited %d", s.Code)
	case Signaled:
		if s.Signal != 0 {
			return "killed (" + signalName(s.Signal) + ")"
		}
		return "killed"
	case "":
		return string(Gone)
	}
	return string(s.State)
}

// Errors a backend's Start wraps when the program cannot be executed.
var (
	ErrNotFound      = errors.New("command not found")
	ErrNotExecutable = errors.New("permission denied")
	ErrIsDir         = errors.New("is a directory")
)

// ExecError reports a command that could not be executed.
type ExecError struct {
	Name string // argv[0] as given
	Err  error  // ErrNotFound, ErrNotExecutable, ErrIsDir or another cause
}

func (e *ExecError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *ExecError) Unwrap() error { return e.Err }

// ExitCode is the shell's exit code for the failure: 127 when the command
// does not exist, 126 otherwise.
func (e *ExecError) ExitCode() int {
	if errors.Is(e.Err, ErrNotFound) {
		return 127
	}
	return 126
}

// SurvivorsError reports processes that were still alive after SIGKILL,
// typically stuck in uninterruptible sleep.
type SurvivorsError = proc.SurvivorsError

// Started is what a backend reports about a task it has started: only the
// fields it owns. Everything else about the task (hash, command, directory,
// log file, token, name, policy) the Manager takes from the Spec.
type Started struct {
	PID       int       // the task's main process
	ProcStart uint64    // its start time, see Proc
	StartedAt time.Time // zero: when the Manager asked for the start
	Unit      string    // native name: systemd unit, launchd service target
	LogDirect bool      // the backend writes the log file itself
	Helper    *Proc     // the backend's per-task helper process, if any
}

// apply sets t's backend-owned fields from s.
func (s Started) apply(t *Task) {
	t.PID, t.ProcStart = s.PID, s.ProcStart
	t.Unit, t.LogDirect, t.Helper = s.Unit, s.LogDirect, s.Helper
	if !s.StartedAt.IsZero() {
		t.StartedAt = s.StartedAt
	}
}

// Task returns the task that spec describes, as started by the backend
// named backend with s: what the Manager records, less the user ID, the
// name and the status, for callers (tests, tools) that start a Spec
// with a Backend directly.
func (s Started) Task(spec Spec, backend string) Task {
	t := Task{
		Hash: spec.Hash, Command: spec.Command, Cwd: spec.Dir, Argv: spec.Argv,
		LogFile: spec.LogFile, Token: spec.Token, Restart: spec.Restart.String(),
		Backend: backend, StartedAt: time.Now().UTC(),
	}
	spec.StopPolicy().record(&t)
	s.apply(&t)
	return t
}
