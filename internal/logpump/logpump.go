// Package logpump keeps a task's log under its size limit when the task's
// output would otherwise go straight to the file: a small process (the btl
// binary re-executed) reads the task's output from a pipe and appends it to
// the log through logfile.LogWriter, which rotates the file at the limit.
package logpump

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"btl/internal/logfile"
	"btl/internal/reexec"
)

// Env switches a re-executed btl binary into a log pump; its value is the
// log file's path. EnvMax carries the limit in bytes.
const (
	Env    = "_BTL_LOG_PUMP"
	EnvMax = "_BTL_LOG_PUMP_MAX"
	// envHeader set to 1 makes the pump read a header from descriptor 3
	// (until EOF) and write it before any output (see StartHeaded).
	envHeader = "_BTL_LOG_PUMP_HEADER"
)

func init() {
	reexec.Register(Env, run)
}

// run is the pump (Env set; see internal/reexec): it copies its standard
// input into the log at path.
func run(path string) int {
	max, _ := strconv.ParseInt(os.Getenv(EnvMax), 10, 64)
	// The pump outlives signals meant for the task: it ends when the
	// last writer is gone, so the task's last words reach the log.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	w, err := logfile.NewLogWriter(path, max)
	if err != nil {
		return 1
	}
	if os.Getenv(envHeader) == "1" {
		// The task's output waits in the pipe until the header is in.
		h := os.NewFile(3, "header")
		header, _ := io.ReadAll(h)
		_ = h.Close()
		if len(header) > 0 {
			_, _ = w.Write(header)
		}
	}
	// Pump, unlike io.Copy, goes on draining after a write error, so the
	// task never blocks on its output.
	_ = w.Pump(os.Stdin)
	if err := w.Close(); err != nil {
		return 1
	}
	return 0
}

// Start starts a pump for the log at path with the given limit, running
// exe (empty: this executable), and returns the pipe to write the task's
// output to and the pump's PID. The pump runs in a session of its own,
// without the task's BTL_* variables, so stopping the task's tree does not
// stop it; it exits once every copy of the returned file is closed and it
// has written what was in the pipe.
func Start(exe, path string, max int64) (w *os.File, pid int, err error) {
	w, _, pid, err = start(exe, path, max, false)
	return w, pid, err
}

// StartHeaded is Start with a header: the pump writes what is written to
// the returned header file (until it is closed) into the log before any
// of the task's output, such as a start marker that names the task's PID,
// known only once the task runs. A header file closed without a write
// (the caller killed) lets the output through without one.
func StartHeaded(exe, path string, max int64) (out, header *os.File, err error) {
	out, header, _, err = start(exe, path, max, true)
	return out, header, err
}

func start(exe, path string, max int64, headed bool) (*os.File, *os.File, int, error) {
	exe, err := reexec.SelfExe(exe)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("log pump: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("log pump: %w", err)
	}
	defer func() { _ = r.Close() }()
	var hr, hw *os.File
	if headed {
		if hr, hw, err = os.Pipe(); err != nil {
			_ = w.Close()
			return nil, nil, 0, fmt.Errorf("log pump: %w", err)
		}
		defer func() { _ = hr.Close() }()
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTL_") && !strings.HasPrefix(kv, "_BTL_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(env, Env+"="+path, EnvMax+"="+strconv.FormatInt(max, 10)), reexec.ChildEnv...)
	cmd.Dir = "/"
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if headed {
		cmd.Env = append(cmd.Env, envHeader+"=1")
		cmd.ExtraFiles = []*os.File{hr}
	}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		if hw != nil {
			_ = hw.Close()
		}
		return nil, nil, 0, fmt.Errorf("log pump: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return w, hw, pid, nil
}
