package fork

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/proc"
	"btl/internal/reexec"
	"btl/internal/regular"
)

// SupervisorEnv is set in the environment of the re-executed btl binary to
// make it run as a task's supervisor (see internal/reexec).
const SupervisorEnv = "_BTL_FORK_SUPERVISOR"

func init() {
	reexec.Register(SupervisorEnv, func(string) int { return supervise() })
}

// supervise reads a request on fd 3, executes the task with its output on
// a pipe, reports the task's PID (or the exec failure) on fd 4, then copies
// the output into the log until every writer is gone, and records the
// task's exit status.
func supervise() int {
	os.Unsetenv(SupervisorEnv)
	os.Unsetenv(proc.EnvHelper)
	// Inherited descriptors are not close-on-exec; the task must not hold
	// the reply pipe open, or Start would wait for the task to end.
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	reqF := os.NewFile(3, "request")
	repF := os.NewFile(4, "reply")
	var req request
	data, err := io.ReadAll(reqF)
	if err == nil {
		req, err = decodeRequest(data)
	}
	if err != nil {
		sendReply(repF, reply{Err: "bad request: " + err.Error()})
		return 1
	}
	_ = reqF.Close()
	spec := req.Spec

	log, err := logfile.NewLogWriter(spec.LogFile, req.LogMax)
	if err != nil {
		sendReply(repF, reply{Err: err.Error()})
		return 1
	}
	if fi, err := os.Stat(spec.Path); err == nil && fi.IsDir() {
		sendReply(repF, reply{Err: spec.Path + ": is a directory", Kind: "isdir"})
		return 1
	}
	// Orphaned descendants (a child that called setsid and whose parent
	// exited) become the supervisor's children instead of init's, so the
	// task's tree stays known by parent PID (Linux).
	becomeSubreaper()
	s := &supervisor{spec: spec, log: log, dirs: core.Dirs{Run: req.ExitDir}}
	if spec.Restart.Enabled() {
		s.watchStop()
	}
	first, err := s.run()
	if err != nil {
		sendReply(repF, reply{Err: err.Error(), Kind: execErrorKind(err)})
		return 1
	}
	sendReply(repF, reply{PID: first.proc.PID, Start: first.proc.Start})

	cur := first
	for {
		end := s.reap(cur)
		next := s.restart(cur, end)
		if next == nil {
			break
		}
		cur = next
	}
	// The supervisor lives as long as any of the task's processes does
	// (that is how btl knows a task whose main process exited still runs)
	// and until the output is drained.
	for {
		_, err := syscall.Wait4(-1, nil, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing of the task is left
		}
	}
	<-cur.copied
	_ = log.Close()
	return 0
}

// supervisor runs one task, and runs it again as its restart policy says.
type supervisor struct {
	spec core.Spec
	log  *logfile.LogWriter
	dirs core.Dirs // Run: where the record of the task's runs is kept

	mu       sync.Mutex
	stopping bool          // btl is stopping the task: no more restarts
	stopped  chan struct{} // closed when stopping is set
}

// taskRun is one run of the task's program.
type taskRun struct {
	proc   core.Proc
	began  time.Time
	copied chan struct{} // closed once its output is in the log
}

// run executes the task's program with its output on a pipe of its own,
// and writes the run's start marker into the log before its first byte.
func (s *supervisor) run() (*taskRun, error) {
	spec := s.spec
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:   spec.Path,
		Args:   spec.Argv,
		Dir:    spec.Dir,
		Env:    spec.Env,
		Stdout: pw,
		Stderr: pw,
		// A session of its own: the task leads its own process group,
		// which is how Stop finds it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		return nil, err
	}
	_ = pw.Close()
	r := &taskRun{proc: core.Proc{PID: cmd.Process.Pid}, began: time.Now(), copied: make(chan struct{})}
	if info, err := proc.LookupProc(r.proc.PID); err == nil {
		r.proc.Start = info.Start
	}
	// The record of runs also tells btl, even one that lost its state,
	// that this supervisor restarts the task (see Backend.haltRestarts).
	// Should it fail, the end's record says so.
	_, _ = core.RecordStart(s.dirs, spec.Token, spec.Restart, s.log, r.proc, r.began, spec.Command)
	go func() {
		// Pump, unlike io.Copy, drains the pipe whatever happens to the
		// log: a task must never block on its output.
		_ = s.log.Pump(pr)
		close(r.copied)
	}()
	return r, nil
}

// reap reaps children (the run's main process, and the descendants left
// to this process) until the run's main process has exited, and returns
// how it ended. What the run wrote before it exited reaches the log first,
// so that whoever reads the status finds the output too; a descendant that
// keeps the pipe open does not hold the record back long.
func (s *supervisor) reap(r *taskRun) core.Status {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return core.Status{State: core.Gone} // ECHILD: cannot happen while the run lives
		}
		if pid == r.proc.PID {
			select {
			case <-r.copied:
			case <-time.After(100 * time.Millisecond):
			}
			return waitStatus(ws)
		}
	}
}

// restart records how run r ended (end), and starts the task again if
// core decides that its policy does (core.RecordEnd): after a pause
// (core.Backoff), with the leftovers of r stopped first, as systemd does.
// It returns the new run, or nil when none follows.
func (s *supervisor) restart(r *taskRun, end core.Status) *taskRun {
	rec, again, err := core.RecordEnd(s.dirs, s.spec.Token, s.spec.Restart, end, time.Now(), s.isStopping())
	if err != nil {
		// Nobody else would hear of it: btl will show the task as gone,
		// and its log says why.
		s.note("could not record how PID %d ended: %v", r.proc.PID, err)
	}
	if !again {
		return nil
	}
	if self, err := proc.LookupProc(os.Getpid()); err == nil {
		// What the run left behind ends with it, so that a restart never
		// runs beside it; its output is then all in the log.
		stop := s.spec.StopPolicy()
		_, _ = proc.StopTree(core.Proc{}, s.spec.Token, stop.Signal, stop.Timeout, core.Proc{PID: self.PID, Start: self.Start})
	}
	select {
	case <-r.copied:
	case <-time.After(core.Grace):
	}
	select {
	case <-time.After(core.Backoff(rec.InRow)):
	case <-s.stopped:
		s.final()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		s.final()
		return nil
	}
	next, err := s.run()
	if err != nil {
		s.note("could not restart: %v", err)
		s.final()
		return nil
	}
	return next
}

// final records that no run follows the last one after all.
func (s *supervisor) final() {
	if err := core.RecordFinal(s.dirs, s.spec.Token); err != nil {
		s.note("could not record the end of the task: %v", err)
	}
}

// note writes a line of btl's into the task's log.
func (s *supervisor) note(format string, args ...any) {
	fmt.Fprintf(s.log, "%s%s %s\n", core.MarkerPrefix, time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// watchStop makes SIGTERM mean "btl is stopping the task": no restart
// happens after it. Stop waits for the stop file that says so before it
// stops the tree, so that no run starts behind its back.
func (s *supervisor) watchStop() {
	s.stopped = make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		s.mu.Lock()
		s.stopping = true
		close(s.stopped)
		_ = regular.WriteFileAtomic(stopFile(s.dirs.Run, s.spec.Token), nil, 0o600)
		s.mu.Unlock()
	}()
}

func (s *supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func sendReply(f *os.File, r reply) {
	_ = json.NewEncoder(f).Encode(r)
	_ = f.Close()
}

func execErrorKind(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "notfound"
	case errors.Is(err, syscall.EISDIR):
		return "isdir"
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.ENOEXEC):
		return "notexec"
	}
	return ""
}

func waitStatus(ws syscall.WaitStatus) core.Status {
	switch {
	case ws.Signaled():
		return core.Status{State: core.Signaled, Signal: int(ws.Signal())}
	case ws.Exited():
		return core.Status{State: core.Exited, Code: ws.ExitStatus()}
	}
	return core.Status{State: core.Gone}
}
