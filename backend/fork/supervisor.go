package fork

import (
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/proc"
	"btl/internal/reexec"
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
	if err := gob.NewDecoder(reqF).Decode(&req); err != nil {
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
	pr, pw, err := os.Pipe()
	if err != nil {
		sendReply(repF, reply{Err: err.Error()})
		return 1
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
	if fi, err := os.Stat(spec.Path); err == nil && fi.IsDir() {
		sendReply(repF, reply{Err: spec.Path + ": is a directory", Kind: "isdir"})
		return 1
	}
	// Orphaned descendants (a child that called setsid and whose parent
	// exited) become the supervisor's children instead of init's, so the
	// task's tree stays known by parent PID (Linux).
	becomeSubreaper()
	if err := cmd.Start(); err != nil {
		sendReply(repF, reply{Err: err.Error(), Kind: execErrorKind(err)})
		return 1
	}
	_ = pw.Close()
	rep := reply{PID: cmd.Process.Pid}
	if info, err := proc.LookupProc(rep.PID); err == nil {
		rep.Start = info.Start
	}
	_, _ = io.WriteString(log, core.StartMarker(time.Now(), rep.PID, spec.Command))
	sendReply(repF, rep)

	copied := make(chan struct{})
	go func() {
		// Pump, unlike io.Copy, drains the pipe whatever happens to the
		// log: a task must never block on its output.
		_ = log.Pump(pr)
		close(copied)
	}()
	// Reap every child: the task, and the descendants left to this
	// process. The supervisor lives as long as any of them does (that is
	// how btl knows a task whose main process exited still runs) and until
	// the output is drained.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing of the task is left
		}
		if pid == rep.PID {
			// What the task wrote before it exited reaches the log before
			// its exit is recorded, so that whoever reads the status finds
			// the output too; a descendant that keeps the pipe open does
			// not hold the record back long.
			select {
			case <-copied:
			case <-time.After(100 * time.Millisecond):
			}
			if err := writeExit(req.ExitDir, spec.Token, waitStatus(ws)); err != nil {
				// Nobody else would hear of it: btl will show the task as
				// gone, and its log says why.
				fmt.Fprintf(log, "%s%s could not record how PID %d ended: %v\n", core.MarkerPrefix, time.Now().UTC().Format(time.RFC3339), rep.PID, err)
			}
		}
	}
	<-copied
	_ = log.Close()
	return 0
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

func writeExit(dir, token string, st core.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return core.WriteFileAtomic(exitFile(dir, token), b, 0o600)
}
