package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

// startExtras holds the start flags of the edit-run loop and of scripts:
// --env-file, --watch (with --debounce, --ignore) and -o json, and what
// btl ensure asks of a start.
type startExtras struct {
	envFileFlags []string      // --env-file, as given
	watchFlags   []string      // --watch, as given ("." for the bare flag)
	debounce     time.Duration // --debounce
	ignore       []string      // --ignore
	output       string        // -o

	envFiles []string    // --env-file, absolute
	watch    *core.Watch // what the started task gets watched by, nil for none
	jsonOut  io.Writer   // where -o json goes (stdout); nil for none

	taskBackend string // restart: the backend the task ran with ("": the one chosen)

	ensure      bool   // btl ensure: keep a running instance
	ensureGuard string // token of an instance ensure replaces, not keeps
	kept        bool   // ensure kept the running instance
	retry       bool   // ensure replaces the instance it kept, which was not ready
}

// defaultDebounce is how long a watched task's files must be quiet after
// a change before the task is replaced.
const defaultDebounce = 300 * time.Millisecond

// addStartExtras adds --env-file, --watch, --debounce, --ignore and -o.
func (e *env) addStartExtras(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&e.envFileFlags, "env-file", nil, "set the variables of this .env file for the task (repeatable; read again at every start, replace and restart)")
	f.StringArrayVar(&e.watchFlags, "watch", nil, "replace the task when a file under this directory changes (--watch: the current directory; --watch=PATH, repeatable)")
	f.Lookup("watch").NoOptDefVal = "."
	f.DurationVar(&e.debounce, "debounce", defaultDebounce, "with --watch: replace once the files were quiet this long")
	f.StringArrayVar(&e.ignore, "ignore", nil, "with --watch: ignore paths matching this glob, besides .git, node_modules, ... and .gitignore (repeatable)")
	e.addOutputFlag(cmd)
}

// addOutputFlag adds -o json to cmd.
func (e *env) addOutputFlag(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&e.output, "output", "o", "", "json: print one JSON object per task on stdout, and nothing else there")
}

// setOutput applies -o: with json, what btl says goes to stderr, and
// stdout carries only the JSON objects.
func (e *env) setOutput() error {
	switch e.output {
	case "":
		return nil
	case "json":
		if e.jsonOut == nil {
			e.jsonOut, e.stdout = e.stdout, e.stderr
		}
		return nil
	}
	return usageError("-o takes json, not %q", e.output)
}

// parseExtras checks --env-file and --watch for a start from cwd.
func (e *env) parseExtras(cmd *cobra.Command, cwd string) error {
	e.envFiles = nil
	for _, f := range e.envFileFlags {
		if !filepath.IsAbs(f) {
			f = filepath.Join(cwd, f)
		}
		if _, err := core.ReadEnvFile(f); err != nil {
			return usageError("%v", err)
		}
		e.envFiles = append(e.envFiles, f)
	}
	fl := cmd.Flags()
	if len(e.watchFlags) == 0 {
		if fl.Changed("debounce") || fl.Changed("ignore") {
			return usageError("--debounce and --ignore go with --watch")
		}
		return nil
	}
	if e.debounce <= 0 || e.debounce > time.Minute {
		return usageError("--debounce takes a duration above 0 and up to 1m (such as 300ms), not %v", e.debounce)
	}
	for _, g := range e.ignore {
		if _, err := filepath.Match(g, ""); err != nil {
			return usageError("--ignore %q: %v", g, err)
		}
	}
	w := &core.Watch{Debounce: e.debounce, Ignore: e.ignore}
	for _, p := range e.watchFlags {
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		real, err := filepath.EvalSymlinks(p)
		if errors.Is(err, fs.ErrNotExist) {
			return usageError("--watch %s: no such file or directory", printable(p))
		}
		if err != nil {
			return usageError("--watch: %v", err)
		}
		w.Paths = append(w.Paths, real)
	}
	e.watch = w
	return nil
}

// resultJSON is what -o json prints for each task a start, ensure,
// restart, stop or kill dealt with. The field names are a stable
// interface: fields may be added, none renamed or removed.
type resultJSON struct {
	Hash    string `json:"hash"`
	Name    string `json:"name"`    // "" when none
	PID     int    `json:"pid"`     // the main process (the last one, once ended)
	Backend string `json:"backend"` // fork, systemd, launchd
	// Status is as in btl list -o json: running, exited, killed, failed,
	// gone, stopped, starting, unknown; exit_code is set when exited.
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Ports    []int  `json:"ports"` // TCP ports its tree listens on now
	// Ready: true once a --wait* condition held, false when it did not;
	// null when none was asked.
	Ready *bool  `json:"ready"`
	Log   string `json:"log"`
	// Action is what btl did: started, replaced (an instance ran and was
	// stopped first), kept (ensure: it ran already), stopped, killed,
	// removed (kill of a task that had ended).
	Action  string `json:"action"`
	Watched bool   `json:"watched"` // --watch replaces it on a change
}

// emit prints the JSON object of t with status st.
func (e *env) emit(t *core.Task, st core.Status, ready *bool, action string) {
	if e.jsonOut == nil {
		return
	}
	j := resultJSON{
		Hash: t.Hash, Name: t.Name, PID: t.PID, Backend: t.BackendName(), Status: string(st.State),
		Ports: []int{}, Ready: ready, Log: t.LogFile, Action: action,
		Watched: t.Watch != nil && t.Watch.Watcher != nil,
	}
	if st.PID > 0 {
		j.PID = st.PID
	}
	switch st.State {
	case core.Exited:
		code := st.Code
		j.ExitCode = &code
	case "":
		j.Status = string(core.Gone)
	}
	if st.Alive() {
		j.Ports = append(j.Ports, core.TaskUsage(t).Ports...)
	}
	b, _ := json.Marshal(j)
	fmt.Fprintf(e.jsonOut, "%s\n", b)
}
