package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"btl/core"
	"btl/internal/logread"
)

// start runs argv from the current directory in the background, replacing
// an instance with the same hash.
func (e *env) start(cmd *cobra.Command, argv []string) (err error) {
	if err := e.setOutput(); err != nil {
		return err
	}
	if cmd.Flags().Changed("name") {
		if err := core.CheckName(e.name); err != nil {
			return err
		}
	}
	if e.restart, err = core.ParseRestart(e.restartFlag); err != nil {
		return usageError("%v", err)
	}
	if e.stop, err = parseStop(e.stopSignal, e.stopTimeout); err != nil {
		return err
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
	if err := e.parseExtras(cmd, cwd); err != nil {
		return err
	}
	env := os.Environ()
	if _, set := os.LookupEnv("PYTHONUNBUFFERED"); !set && !e.noUnbuffer {
		// Output goes to a file, not a terminal: without this, Python
		// programs hold their output back in a buffer.
		env = append(env, "PYTHONUNBUFFERED=1")
	}
	return e.run(cmd, argv, cwd, env)
}

// run runs argv in dir with env and prints what btl did. The --env-file
// files are read here, at every start, replace and restart.
func (e *env) run(cmd *cobra.Command, argv []string, dir string, env []string) error {
	env, err := core.ApplyEnvFiles(env, e.envFiles)
	if err != nil {
		return err
	}
	spec, err := e.mgr.Prepare(argv, dir, env)
	if err != nil {
		return err
	}
	spec.Name = e.name
	spec.Backend = e.taskBackend
	spec.Restart = e.restart
	spec.Stop = e.stop
	spec.EnvFiles = e.envFiles
	spec.Watch = e.watch
	e.kept = false
	e.mgr.Keep = nil
	if e.ensure {
		e.mgr.Keep = func(old *core.Task, st core.Status) bool {
			e.kept = st.Alive() && (e.ensureGuard == "" || old.Token != e.ensureGuard)
			return e.kept
		}
	}
	var watchErr error
	e.mgr.OnStarted = func(t *core.Task) {
		if t.Watch != nil && t.Watch.Watcher == nil {
			t.Watch.Watcher, watchErr = startWatcher(t.Hash, t.Watch)
		}
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
	task, replaced, err := e.mgr.Run(cmd.Context(), spec)
	if err != nil {
		return err
	}
	action := "started"
	if replaced != nil {
		action = "replaced"
	}
	if watchErr != nil {
		fmt.Fprintf(e.stderr, "Warning: the task runs, but its watcher did not start: %s\n", oneLine(watchErr))
	}
	if e.kept {
		return e.keptTask(cmd, task)
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
	if task.Watch != nil && task.Watch.Watcher != nil {
		fmt.Fprintf(e.stdout, "[btl] Watching: %s\n", printable(strings.Join(task.Watch.Paths, ", ")))
	}
	if e.ready != nil {
		err := e.waitReady(cmd.Context(), task, e.ready, logFrom, asked)
		ready := err == nil
		e.emit(task, e.mgr.Check(cmd.Context(), task), &ready, action)
		return err
	}
	// One look, no waiting: a task that died at once (a port in use, a
	// typo in its arguments) is worth saying so now, and so is a port it
	// needs that another process holds (it may die of that later).
	st := e.mgr.Check(cmd.Context(), task)
	if st.Ended() {
		writeLogEnd(e.stdout, fmt.Sprintf("[btl] The process has already ended (%s); the end of its log:", st), logread.LastRunLines(task.LogFile, 10))
	}
	if !e.warnHeldPorts(e.stdout, task, before) && st.Ended() {
		e.explainPort(e.stdout, task)
	}
	e.emit(task, st, nil, action)
	return nil
}

// forceKillNotice says that a task had to be killed with SIGKILL.
func (e *env) forceKillNotice(t *core.Task) {
	p := t.StopPolicy()
	fmt.Fprintf(e.stdout, "[btl] PID %d did not exit within %v of %s; sent SIGKILL\n", t.PID, p.Timeout, p.SignalName())
}

// parseStop reads --stop-signal and --stop-timeout.
func parseStop(signal, timeout string) (core.StopPolicy, error) {
	sig, err := core.ParseStopSignal(signal)
	if err != nil {
		return core.StopPolicy{}, usageError("%v", err)
	}
	d, err := core.ParseStopTimeout(timeout)
	if err != nil {
		return core.StopPolicy{}, usageError("%v", err)
	}
	return core.StopPolicy{Signal: sig, Timeout: d}, nil
}
