// Package logpump keeps a task's log under its size limit when the task's
// output would otherwise go straight to the file: a small process (the btl
// binary re-executed) reads the task's output from a pipe and appends it to
// the log through logfile.LogWriter, which rotates the file at the limit.
package logpump

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/reexec"
)

// Env switches a re-executed btl binary into a log pump; its value is the
// log file's path. EnvMax carries the limit in bytes.
const (
	Env    = "_BTL_LOG_PUMP"
	EnvMax = "_BTL_LOG_PUMP_MAX"
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
	// Pump, unlike io.Copy, goes on draining after a write error, so the
	// task never blocks on its output.
	w.Pump(os.Stdin)
	if err := w.Close(); err != nil {
		return 1
	}
	return 0
}

// Start starts a pump for the log at path with the given limit, running
// exe (empty: this executable), and returns the pipe to write the task's
// output to. The pump runs in a session of its own, without the task's
// BTL_* variables, so stopping the task's tree does not stop it; it exits
// once every copy of the returned file is closed.
func Start(exe, path string, max int64) (*os.File, error) {
	exe, err := core.SelfExe(exe)
	if err != nil {
		return nil, fmt.Errorf("log pump: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pump: %w", err)
	}
	defer r.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTL_") && !strings.HasPrefix(kv, "_BTL_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(env, Env+"="+path, EnvMax+"="+strconv.FormatInt(max, 10), "GORACE=atexit_sleep_ms=0")
	cmd.Dir = "/"
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("log pump: %w", err)
	}
	cmd.Process.Release()
	return w, nil
}
