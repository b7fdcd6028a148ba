package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStopCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "stop <hash|name>... | --all",
		Short: "Stop tasks, keeping them listed to restart",
		Long: `Stop tasks as btl kill does (each task's whole process tree gets SIGTERM,
then SIGKILL after 2 s), but keep them: btl list shows them as stopped, with
their names, and btl restart runs them again. btl kill or btl clean forgets
them.`,
		Example:           "  btl stop api\n  btl stop --all\n  btl restart api",
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageError("give hashes or --all, not both")
			case !all && len(args) == 0:
				return usageError("give the hash or name of the task to stop, or --all (see btl list)")
			}
			e.mgr.OnForceKill = e.forceKillNotice
			stopped, err := e.mgr.Stop(cmd.Context(), args, all)
			n := 0
			for _, v := range stopped {
				if v.Status.Alive() {
					n++
					fmt.Fprintf(e.stdout, "[btl] Process stopped (PID %d): %s\n", v.PID, printable(v.Command))
				} else if !all {
					fmt.Fprintf(e.stdout, "[btl] %s was not running (%s)\n", v.Hash, v.Status)
				}
			}
			if all {
				fmt.Fprintf(e.stdout, "[btl] Stopped %s\n", plural(n, "task"))
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "stop every task")
	return cmd
}
