package main

import (
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
			// A task runs again where it ran, unless told otherwise.
			t, env, recorded, err := e.mgr.Restart(args[0], !cmd.Flags().Changed("backend"))
			if err != nil {
				return err
			}
			// The policy it was started with; one recorded by a btl that
			// did not know it is no policy.
			e.restart, _ = core.ParseRestart(t.Restart)
			if !recorded {
				fmt.Fprintf(e.stderr, "Warning: no recorded environment for %s; using the current one\n", t.Hash)
				env = os.Environ()
			}
			return e.run(cmd, t.Argv, t.Cwd, env)
		},
	}
}
