package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"btl/core"
)

func newCleanCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clean [hash...] [--all]",
		Short: "Forget tasks that have ended or were stopped",
		Long: `Forget tasks that have ended or were stopped (btl stop): all of them, or
those named by hash. Their log files are kept. With --all, also delete the
log and runtime files of every task it forgets, the logs of tasks btl kill
forgot, and any runtime file that belongs to no task. A task that still
runs is never forgotten (btl would lose sight of it and could start the
same command twice): stop it with btl stop or btl kill.`,
		Example:           "  btl clean\n  btl clean 93b8 7c38\n  btl clean --all",
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usageError("give hashes or --all, not both")
			}
			if len(args) > 0 {
				removed, err := e.mgr.Forget(cmd.Context(), args)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "[btl] Removed %s\n", plural(removed, "ended task"))
				return nil
			}
			c, err := e.mgr.Clean(cmd.Context(), all)
			if err != nil {
				return err
			}
			for _, w := range c.Warnings {
				fmt.Fprintf(e.stderr, "Warning: %s\n", printable(w.Error()))
			}
			switch {
			case len(c.Removed) == 0 && !all:
				fmt.Fprintln(e.stdout, "[btl] No ended tasks to clean")
			case all:
				fmt.Fprintf(e.stdout, "[btl] Removed %s (logs deleted)\n", plural(len(c.Removed), "ended task"))
			default:
				fmt.Fprintf(e.stdout, "[btl] Removed %s\n", plural(len(c.Removed), "ended task"))
			}
			if all && len(c.Kept) > 0 {
				fmt.Fprintf(e.stdout, "[btl] Kept %s (btl kill --all stops them):\n", plural(len(c.Kept), "running task"))
				for _, v := range c.Kept {
					state := ""
					if v.Status.State == core.Unknown {
						state = " [" + v.Status.String() + "]"
					}
					fmt.Fprintf(e.stdout, "  %s  PID %d  %s%s\n", v.Hash, v.PID, printable(v.Command), state)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also delete the logs and runtime files of ended tasks, and those of no task (running tasks are kept)")
	return cmd
}

// plural renders n and noun, in the plural where n is not 1: "1 task",
// "2 tasks", "3 processes".
func plural(n int, noun string) string {
	switch {
	case n == 1:
		return fmt.Sprintf("%d %s", n, noun)
	case strings.HasSuffix(noun, "s"):
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
