package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
	"btl/internal/logread"
)

func newEnsureCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ensure [flags] <command> [args...]",
		Short: "Start a command unless it already runs; print where it is",
		Long: `Make sure the command runs in the background from this directory, once: if
the same task (same command, same directory: same hash) runs already, and is
ready when a --wait* flag is given, btl leaves it alone, prints it and exits
0. If it has ended, btl starts it; if it does not become ready within
--wait-timeout, btl replaces it once. Any number of btl ensure at once leave
one instance, started at most once. Takes the flags of a start; -o json
prints the task as one JSON object (action: kept, started or replaced).`,
		Example: "  btl ensure --wait-port 5173 npm run dev\n  btl ensure -o json --wait-log 'ready in' npm run dev",
		Args:    cobra.ArbitraryArgs,
		// The first word: programs on PATH and files, as for a start.
		ValidArgsFunction: completeStart,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("give the command to ensure (see btl ensure --help)")
			}
			e.ensure = true
			err := e.start(cmd, args)
			if err == nil && e.retry {
				e.retry = false
				return e.start(cmd, args)
			}
			return err
		},
	}
	e.addStartFlags(cmd)
	return cmd
}

// keptTask reports the running instance btl ensure keeps and, with a
// --wait* flag, waits until it is ready. One that ends before it is ready
// or is not ready in time is replaced, once (e.retry).
func (e *env) keptTask(cmd *cobra.Command, task *core.Task) error {
	fmt.Fprintf(e.stdout, "[btl] Already running (PID %d): %s\n", task.PID, printable(task.Command))
	fmt.Fprintf(e.stdout, "[btl] Hash: %s\n", task.Hash)
	fmt.Fprintf(e.stdout, "[btl] Logs: %s\n", printable(task.LogFile))
	if task.Name != "" {
		fmt.Fprintf(e.stdout, "[btl] Name: %s\n", task.Name)
	}
	ctx := cmd.Context()
	if e.ready == nil {
		e.emit(task, e.mgr.Check(ctx, task), nil, "kept")
		return nil
	}
	err := e.waitReady(ctx, task, e.ready, logread.LastRunStart(task.LogFile), time.Time{})
	if err == nil || exitCode(err) == interruptedExit || e.ensureGuard != "" {
		ready := err == nil
		e.emit(task, e.mgr.Check(ctx, task), &ready, "kept")
		return err
	}
	fmt.Fprintln(e.stdout, "[btl] Replacing it")
	e.ensureGuard, e.retry = task.Token, true
	return nil
}
