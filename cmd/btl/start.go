package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"btl/core"
)

// start runs argv from the current directory in the background, replacing
// an instance with the same hash.
func (e *env) start(cmd *cobra.Command, argv []string) (err error) {
	if cmd.Flags().Changed("name") {
		if err := core.CheckName(e.name); err != nil {
			return err
		}
	}
	if e.restart, err = core.ParseRestart(e.restartFlag); err != nil {
		return usageError("%v", err)
	}
	if e.ready, err = e.parseWait(cmd); err != nil {
		return err
	}
	cwd, err := os.Getwd()
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("current directory is not accessible: %w (chmod u+rx it, or cd elsewhere)", err)
	case err != nil:
		return fmt.Errorf("current directory: %w (cd to an existing directory)", err)
	}
	if err := unix.Access(cwd, unix.X_OK); err != nil {
		// The task could not run there either.
		return fmt.Errorf("current directory %s is not accessible: %w (chmod u+rx it, or cd elsewhere)", printable(cwd), err)
	}
	env := os.Environ()
	if _, set := os.LookupEnv("PYTHONUNBUFFERED"); !set && !e.noUnbuffer {
		// Output goes to a file, not a terminal: without this, Python
		// programs hold their output back in a buffer.
		env = append(env, "PYTHONUNBUFFERED=1")
	}
	return e.run(cmd, argv, cwd, env)
}

// run runs argv in dir with env and prints what btl did.
func (e *env) run(cmd *cobra.Command, argv []string, dir string, env []string) error {
	spec, err := e.mgr.Prepare(argv, dir, env)
	if err != nil {
		return err
	}
	spec.Name = e.name
	spec.Restart = e.restart
	if e.mgr.Backend, err = forSpec(e.mgr.Backend, e.auto, spec, e.dirs); err != nil {
		return err
	}
	var before []int // the ports the replaced instance listened on
	e.mgr.OnReplace = func(old *core.Task) {
		before = core.TaskUsage(old).Ports
		fmt.Fprintf(e.stdout, "[btl] Killing previous process (PID %d)\n", old.PID)
	}
	e.mgr.OnForceKill = e.forceKillNotice
	var asked time.Time // when the backend was asked to start the task
	e.mgr.OnStarting = func() { asked = time.Now() }
	e.mgr.OnRehash = func(other *core.Task, hash string) {
		fmt.Fprintf(e.stderr, "Warning: hash %s already names a different task (%s in %s); this one gets hash %s\n",
			other.Hash, printable(other.Command), printable(other.Cwd), hash)
	}
	logFrom := logSize(spec.LogFile)
	task, _, err := e.mgr.Run(cmd.Context(), spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "[btl] Starting: %s\n", printable(task.Command))
	fmt.Fprintf(e.stdout, "[btl] Process backgrounded (PID %d)\n", task.PID)
	fmt.Fprintf(e.stdout, "[btl] Hash: %s\n", task.Hash)
	fmt.Fprintf(e.stdout, "[btl] Logs: %s\n", printable(task.LogFile))
	if task.Name != "" {
		fmt.Fprintf(e.stdout, "[btl] Name: %s\n", task.Name)
	}
	if h := e.mgr.StartHint(task); h != "" {
		fmt.Fprintln(e.stderr, "Hint: "+h)
	}
	if e.ready != nil {
		return e.waitReady(cmd.Context(), task, e.ready, logFrom, asked)
	}
	// One look, no waiting: a task that died at once (a port in use, a
	// typo in its arguments) is worth saying so now, and so is a port it
	// needs that another process holds (it may die of that later).
	st := e.mgr.Check(cmd.Context(), task)
	if st.Ended() {
		writeLogEnd(e.stdout, fmt.Sprintf("[btl] The process has already ended (%s); the end of its log:", st), lastRunLines(task.LogFile, 10))
	}
	if !e.warnHeldPorts(e.stdout, task, before) && st.Ended() {
		e.explainPort(e.stdout, task)
	}
	return nil
}

// lastRunLines returns up to n last lines of the newest run in the log
// file: the lines after its last start marker.
func lastRunLines(path string, n int) []string {
	f, err := openLog(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	// The end of the file is enough for a few lines.
	const tail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		_, _ = f.Seek(fi.Size()-tail, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, ok := core.ParseStartMarker(lines[i]); ok {
			lines = lines[i+1:]
			break
		}
	}
	return lines[max(len(lines)-n, 0):]
}

// forceKillNotice says that a task had to be killed with SIGKILL.
func (e *env) forceKillNotice(t *core.Task) {
	fmt.Fprintf(e.stdout, "[btl] PID %d did not exit within %v of SIGTERM; sent SIGKILL\n", t.PID, core.Grace)
}
