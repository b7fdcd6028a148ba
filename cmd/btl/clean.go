package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCleanCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clean [--all]",
		Short: "Forget tasks that are no longer running",
		Long: `Forget tasks whose process is gone. With --all, forget every task, running or
not, without stopping any. Log files are kept.`,
		Example: "  btl clean\n  btl clean --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
