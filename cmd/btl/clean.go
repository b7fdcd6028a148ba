package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCleanCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clean [hash...] [--all]",
		Short: "Forget tasks that are no longer running",
		Long: `Forget tasks whose process is gone: all of them, or those named by hash.
With --all, forget every task, running or not, without stopping any. Log
files are kept.`,
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
				fmt.Fprintf(e.stdout, "[btl] Removed %d dead process entries\n", removed)
				return nil
			}
			removed, running, err := e.mgr.Clean(cmd.Context(), all)
			if err != nil {
				return err
			}
			switch {
			case all:
				fmt.Fprintf(e.stdout, "[btl] Removed %d entries (%d still running, not stopped)\n", removed, running)
			case removed == 0:
				fmt.Fprintln(e.stdout, "[btl] No dead processes to clean")
			default:
				fmt.Fprintf(e.stdout, "[btl] Removed %d dead process entries\n", removed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "forget every task, running or not (does not stop them)")
	return cmd
}
