package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"btl/core"
)

func newRestartCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "restart <hash|name>... | --all",
		Short: "Run tasks again, as they were started",
		Long: `Run tasks again with the arguments, directory, environment and backend they
were started with, replacing the running instance if there is one: running,
stopped (btl stop) and ended tasks alike. Works from any directory. --backend
runs them with another backend. --all restarts every tracked task.`,
		Example:           "  btl restart 93b8\n  btl restart api worker\n  btl restart --all",
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := targets(all, args, "give the hash or name of the task to restart, or --all (see btl list)"); err != nil {
				return err
			}
			if err := e.setOutput(); err != nil {
				return err
			}
			if all {
				st, err := e.mgr.Snapshot()
				if err != nil {
					return err
				}
				for _, t := range st.Sorted() {
					args = append(args, t.Hash)
				}
				if len(args) == 0 {
					fmt.Fprintln(e.stdout, "[btl] No tasks to restart")
					return nil
				}
			}
			var errs []error
			for _, a := range args {
				if err := e.restartOne(cmd, a); err != nil {
					if len(args) == 1 {
						return err
					}
					// The others still run again; each failure is named.
					fmt.Fprintf(e.stderr, "Error: %s: %s\n", a, oneLine(err))
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 {
				return &exitError{code: exitCode(errs[0]), err: fmt.Errorf("%d of %d restarts failed", len(errs), len(args))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "restart every tracked task")
	e.addOutputFlag(cmd)
	return cmd
}

// restartOne runs the task named by prefix again as it was started.
func (e *env) restartOne(cmd *cobra.Command, prefix string) error {
	// A task runs again where it ran, unless told otherwise.
	own := !cmd.Flags().Changed("backend")
	t, env, recorded, err := e.mgr.Restart(prefix, own)
	if errors.Is(err, core.ErrNoTask) || errors.Is(err, core.ErrBadHash) {
		return fmt.Errorf("%w; btl kill forgets a task, btl stop keeps it to restart", err)
	}
	if err != nil {
		return err
	}
	// The policy it was started with; one recorded by a btl that
	// did not know it is no policy.
	e.restart, _ = core.ParseRestart(t.Restart)
	e.stop = t.StopPolicy()
	e.taskBackend = ""
	if own {
		e.taskBackend = t.BackendName()
	}
	// Its --env-file files are read again, and a watched task is watched
	// again, by a new watcher.
	e.envFiles = t.EnvFiles
	e.watch = nil
	if t.Watch != nil {
		w := *t.Watch
		w.Watcher = nil
		e.watch = &w
	}
	if !recorded {
		fmt.Fprintf(e.stderr, "Warning: no recorded environment for %s; using the current one\n", t.Hash)
		env = os.Environ()
	}
	return e.run(cmd, t.Argv, t.Cwd, env)
}
