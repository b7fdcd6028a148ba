// Package fork runs btl tasks as plain background process trees: each task
// is started in a session of its own by a small supervisor (the btl binary
// re-executed) that writes the task's output to its log file, keeps the
// file under its size limit and records how the task ended. It needs
// nothing from the system and is the fallback where no service manager is
// available, such as in containers.
package fork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/proc"
	"btl/internal/reexec"
	"btl/internal/regular"
)

// Name is the backend's name in state.json and on the command line.
const Name = "fork"

// Backend starts tasks as forked process trees.
type Backend struct {
	// Dirs are btl's directories; exit records go to Dirs.Run.
	Dirs core.Dirs
	// Exe is the program run as the supervisor, re-executed with
	// SupervisorEnv set. Empty means the running executable.
	Exe string
}

var _ core.Backend = (*Backend)(nil)

// New returns a fork backend that keeps its files in dirs.
func New(dirs core.Dirs) *Backend { return &Backend{Dirs: dirs} }

// Name returns "fork".
func (b *Backend) Name() string { return Name }

var _ core.ByteCarrier = (*Backend)(nil)

// CarriesBytes says that fork runs a program, arguments and directory
// that are not valid UTF-8 as they are: the supervisor gets them in a
// request that carries bytes, and execve takes bytes.
func (b *Backend) CarriesBytes() {}

// request is what the supervisor reads on fd 3, encoded by encodeRequest:
// unlike JSON, it carries arguments that are not valid UTF-8 unchanged.
type request struct {
	Spec    core.Spec
	LogMax  int64
	ExitDir string
}

// reply is what the supervisor writes on fd 4 once the task is executed.
type reply struct {
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	Err   string `json:"err,omitempty"`
	Kind  string `json:"kind,omitempty"` // notfound, notexec, isdir
}

// Start runs the supervisor, which executes spec and reports the task's PID
// (or why it could not be executed) before Start returns.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Started, error) {
	logMax, err := logfile.LogMax(spec.Env)
	if err != nil {
		return core.Started{}, err
	}
	exe, err := reexec.SelfExe(b.Exe)
	if err != nil {
		return core.Started{}, fmt.Errorf("fork: %w", err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return core.Started{}, fmt.Errorf("fork: %w", err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		_ = reqR.Close()
		_ = reqW.Close()
		return core.Started{}, fmt.Errorf("fork: %w", err)
	}
	// ps shows what it is, without the task's command line (a pkill -f
	// of the task's program must not hit its supervisor).
	cmd := exec.Command(exe, "supervise", spec.Hash)
	cmd.Env = append(os.Environ(), SupervisorEnv+"=1", dataEnv+"="+b.Dirs.Data, proc.EnvHelper+"="+spec.Token)
	cmd.Env = append(cmd.Env, recordedEnv(spec)...)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{reqR, repW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = reqR.Close()
	_ = repW.Close()
	if err != nil {
		_ = reqW.Close()
		_ = repR.Close()
		return core.Started{}, fmt.Errorf("fork: start supervisor: %w", err)
	}
	helper := &core.Proc{PID: cmd.Process.Pid}
	if info, err := proc.LookupProc(helper.PID); err == nil {
		helper.Start = info.Start
	}
	// Reap the supervisor if this process outlives it.
	go func() { _ = cmd.Wait() }()

	removeStaleRecords(b.Dirs.Run, spec)

	req := request{Spec: spec, LogMax: logMax, ExitDir: b.Dirs.Run}
	_, werr := reqW.Write(encodeRequest(req))
	_ = reqW.Close()
	out, rerr := io.ReadAll(repR)
	_ = repR.Close()
	var rep reply
	if err := json.Unmarshal(out, &rep); err != nil {
		return core.Started{}, fmt.Errorf("fork: the supervisor gave no answer: %w", errors.Join(werr, rerr, err))
	}
	if rep.Err != "" {
		return core.Started{}, replyError(spec, rep)
	}
	return core.Started{
		PID:       rep.PID,
		ProcStart: rep.Start,
		LogDirect: true,
		StartedAt: time.Now().UTC(),
		Helper:    helper,
	}, nil
}

func replyError(spec core.Spec, rep reply) error {
	var cause error
	switch rep.Kind {
	case "notfound":
		cause = core.ErrNotFound
	case "notexec":
		cause = core.ErrNotExecutable
	case "isdir":
		cause = core.ErrIsDir
	default:
		return fmt.Errorf("fork: %s", rep.Err)
	}
	return &core.ExecError{Name: spec.Argv[0], Err: cause}
}

// Stop ends the task's whole tree: its process group, every process
// carrying its instance token, and every descendant of the task's main
// process and of its supervisor (a child subreaper on Linux, so it is the
// parent of every orphaned descendant).
//
// Once the tree is gone, Stop waits for the supervisor to finish (it has
// the task's last output to write) and removes the task's exit record:
// a stopped task is forgotten, and its records must not pile up.
func (b *Backend) Stop(ctx context.Context, t core.Task, grace time.Duration) error {
	b.haltRestarts(t)
	killed, err := proc.StopTree(t.Proc(), t.Token, t.StopPolicy().Signal, grace, helperRoots(t)...)
	if killed {
		core.NoteKilled(ctx)
	}
	if err != nil {
		return err
	}
	b.release(t)
	return nil
}

var _ core.Releaser = (*Backend)(nil)

// Release removes the exit record of a task that has ended, once btl has
// read it and forgets the task.
func (b *Backend) Release(ctx context.Context, t core.Task) error {
	b.release(t)
	return nil
}

// helperWait bounds how long release waits for a supervisor to finish.
// It takes milliseconds; a record written after the bound is removed by
// the task's next Start.
const helperWait = time.Second

func (b *Backend) release(t core.Task) {
	if t.Token == "" {
		return
	}
	if t.Helper != nil {
		continueHelper(t)
		for deadline := time.Now().Add(helperWait); t.Helper.Verify() && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
	}
	_ = os.Remove(core.RunsFile(b.Dirs, t.Token))
	_ = os.Remove(stopFile(b.Dirs.Run, t.Token))
	removeLegacy(b.Dirs.Run, t.Token)
}

// haltRestarts tells the supervisor of a task with a restart policy that
// btl is stopping the task (SIGTERM), and waits until it has said that it
// will start no other run (its stop file): a restart can then no longer
// slip in behind the stop of the tree.
func (b *Backend) haltRestarts(t core.Task) {
	if t.Token == "" || t.Helper == nil || !t.Helper.Verify() {
		return
	}
	if r, err := b.readRuns(t.Token); t.Restart == "" && (err != nil || r.Policy == "") {
		return // no policy, none recorded by the supervisor either
	}
	if !proc.ProcHasEnv(t.Helper.PID, proc.EnvHelper+"="+t.Token) {
		return
	}
	if err := syscall.Kill(t.Helper.PID, syscall.SIGTERM); err != nil {
		return // it has just ended: no run is left to restart
	}
	continueHelper(t) // a stopped supervisor hears SIGTERM only once continued
	for deadline := time.Now().Add(helperWait); time.Now().Before(deadline) && t.Helper.Verify(); {
		if regular.IsFile(stopFile(b.Dirs.Run, t.Token)) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func helperRoots(t core.Task) []core.Proc {
	if t.Helper == nil {
		return nil
	}
	return []core.Proc{*t.Helper}
}

// Inspect reports the task as running while its main process lives, as
// running with MainExited set while processes it started still do, and
// otherwise how it ended, as its supervisor recorded.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	verify := t.Proc().VerifyTask
	if snap := proc.SnapshotOf(ctx); snap != nil {
		verify = func(token string) bool { return snap.VerifyTask(t.Proc(), token) }
	}
	if verify(t.Token) {
		return core.Status{State: core.Running, PID: t.PID}, nil
	}
	if t.Token == "" {
		return core.Status{State: core.Gone}, nil
	}
	if r, err := b.readRuns(t.Token); err == nil && r.Policy != "" && !r.Final {
		// The supervisor restarts the task: the current run, or, while
		// the supervisor waits to start the next one, the last.
		running, _ := r.Status()
		if (core.Proc{PID: r.PID, Start: r.Start}).VerifyTask(t.Token) {
			return running, nil
		}
		if t.Helper != nil && t.Helper.Verify() {
			return running, nil
		}
	}
	// The supervisor records the end right after reaping the task: while
	// it lives, the record is at most moments away.
	// The supervisor writes the record before it exits, so the record is
	// read after checking the supervisor: one that was gone before the
	// read has left whatever record it was going to.
	// The task has ended only once no process of it is left, whatever
	// became of its supervisor: processes carrying its token live on after
	// a supervisor killed with SIGKILL, and a stopped supervisor (SIGSTOP)
	// neither records the end nor exits until it is continued.
	mainExited := core.Status{State: core.Running, PID: t.PID, MainExited: true}
	deadline := time.Now().Add(exitRecordWait)
	for {
		helper := b.helperState(t)
		if helper == helperStopped {
			return mainExited, nil
		}
		r, err := b.readRuns(t.Token)
		if errors.Is(err, regular.ErrNotRegular) || errors.Is(err, regular.ErrTooLarge) {
			return core.Status{}, fmt.Errorf("fork: read how the task ended: %w; remove it", err)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			var syntax *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if !errors.As(err, &syntax) && !errors.As(err, &typ) {
				return core.Status{}, err
			}
			r = core.Runs{Final: true, Ended: &core.Status{State: core.Gone}} // unreadable: how it ended is lost
		}
		st, ended := r.Status()
		if (ended || helper == helperGone) && proc.TreeAlive(core.Proc{}, t.Token, helperRoots(t)...) {
			// The supervisor records the main process's end while the
			// descendants it was left live on; without a supervisor,
			// they are found by their token.
			return mainExited, nil
		}
		if ended {
			return st, nil
		}
		if helper == helperGone || time.Now().After(deadline) {
			return core.Status{State: core.Gone}, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// What became of a task's supervisor.
const (
	helperGone    = iota // exited, or never recorded
	helperRunning        // lives and runs
	helperStopped        // lives, stopped (SIGSTOP): it does nothing until continued
)

// helperState says what became of t's supervisor.
func (b *Backend) helperState(t core.Task) int {
	if t.Helper == nil || !t.Helper.Verify() {
		return helperGone
	}
	if info, err := proc.LookupProc(t.Helper.PID); err == nil && info.Stopped {
		return helperStopped
	}
	return helperRunning
}

// continueHelper lets a stopped supervisor of t go on (SIGCONT), so that
// it records the task's end and exits once the task's tree is gone; it is
// signalled only when it is verified to be t's.
func continueHelper(t core.Task) {
	if t.Helper == nil || t.Token == "" || !t.Helper.Verify() || !proc.ProcHasEnv(t.Helper.PID, proc.EnvHelper+"="+t.Token) {
		return
	}
	_ = syscall.Kill(t.Helper.PID, syscall.SIGCONT)
}

// exitRecordWait bounds how long Inspect waits for a live supervisor to
// record the status of a task that has just ended. The supervisor writes
// it as soon as it has reaped the task; the bound only matters on a
// machine too loaded to schedule it.
const exitRecordWait = 5 * time.Second

// dataEnv, in a supervisor's environment, names the data directory of the
// btl that started it, so that List adopts only tasks of its own.
const dataEnv = "_BTL_FORK_DATA"

// List finds the running tasks this backend started for this data
// directory, from the processes themselves: a task's main process leads
// its own session, carries BTL_HASH and BTL_INSTANCE, and its parent is a
// supervisor started for Dirs.Data. Command and directory are read back
// from the process.
func (b *Backend) List(ctx context.Context) ([]core.Task, error) {
	return b.ListUnknown(ctx, nil)
}

// ListUnknown is List without the tasks whose main process or supervisor
// is among known (see core.UnknownLister): those are not read at all.
func (b *Backend) ListUnknown(ctx context.Context, known []core.Proc) ([]core.Task, error) {
	var out []core.Task
	for _, f := range findTasks(b.Dirs.Data, known, proc.SnapshotOf(ctx)) {
		parent := f.Parent
		var policy string
		if r, err := b.readRuns(f.Token); err == nil {
			policy = r.Policy
		}
		out = append(out, core.Task{
			Hash:      f.Hash,
			PID:       f.PID,
			ProcStart: f.Start,
			Command:   core.CommandLine(f.Argv),
			Argv:      f.Argv,
			Cwd:       f.Cwd,
			StartedAt: f.StartedAt,
			LogFile:   b.Dirs.LogFile(f.Hash),
			Token:     f.Token,
			Backend:   Name,
			LogDirect: true,
			Helper:    &parent,
			Restart:   policy,
		})
	}
	return out, nil
}

// removeStaleRecords removes the exit records of earlier instances of
// spec's task: btl starts an instance only once the previous one is
// stopped and forgotten.
func removeStaleRecords(dir string, spec core.Spec) {
	// One read of the directory, which holds the records of every task.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, spec.Hash+"-") || strings.HasPrefix(name, spec.Token+".") {
			continue
		}
		switch filepath.Ext(name) {
		case ".record", ".stop", ".exit", ".runs":
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

func stopFile(dir, token string) string { return filepath.Join(dir, token+".stop") }

// readRuns reads the record of the runs of the instance with the given
// token (core.ReadRuns), or, for a task whose supervisor an earlier btl
// started, the records that supervisor writes (see legacy.go).
func (b *Backend) readRuns(token string) (core.Runs, error) {
	r, err := core.ReadRuns(b.Dirs, token)
	if errors.Is(err, os.ErrNotExist) {
		if old, lerr := readLegacy(b.Dirs.Run, token); !errors.Is(lerr, os.ErrNotExist) {
			return old, lerr
		}
	}
	return r, err
}
