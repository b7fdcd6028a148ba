package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"btl/core"
)

func newRestartCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "restart <hash>",
		Short: "Run a task again, as it was started",
		Long: `Run a task again with the arguments, directory, environment and backend it
was started with, replacing the running instance if there is one. Works from
any directory. --backend runs it with another backend.`,
		Example:           "  btl restart 93b8",
		Args:              exactlyOneHash,
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.mgr.Store.Read()
			if err != nil {
				return err
			}
			t, err := core.Find(st, args[0])
			if err != nil {
				return err
			}
			if len(t.Argv) == 0 {
				return fmt.Errorf("task %s has no recorded arguments; run it again from %s", t.Hash, t.Cwd)
			}
			if !cmd.Flags().Changed("backend") && t.BackendName() != e.mgr.Backend.Name() {
				// A task runs again where it ran, unless told otherwise.
				b, err := openBackend(t.BackendName(), e.dirs)
				if err != nil {
					return fmt.Errorf("task %s was started with %s: %w (give --backend to run it with another)", t.Hash, t.BackendName(), err)
				}
				e.mgr.Backend = b
			}
			// The policy it was started with; one recorded by a btl that
			// did not know it is no policy.
			e.restart, _ = core.ParseRestart(t.Restart)
			env, err := e.dirs.LoadEnv(t.Hash)
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(e.stderr, "Warning: no recorded environment for %s; using the current one\n", t.Hash)
				env = os.Environ()
			} else if err != nil {
				return err
			}
			return e.run(cmd, t.Argv, t.Cwd, env)
		},
	}
}
