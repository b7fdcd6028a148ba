package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newKillCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill <hash|name>... | --all",
		Short: "Stop tasks and every process they started, and forget them",
		Long: `Stop tasks: each task's whole process tree gets SIGTERM, then SIGKILL after
2 s. A hash may be any unique prefix of at least 4 characters. Killed tasks
are forgotten: they leave the list, and their runtime files go; their logs
are kept (btl logs lists them, btl clean --all deletes them). btl stop
keeps a task listed instead.`,
		Example:           "  btl kill 93b81d56\n  btl kill 93b8 7c38\n  btl kill --all",
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageError("give hashes or --all, not both")
			case !all && len(args) == 0:
				return usageError("give the hash of the task to kill, or --all (see btl list)")
			}
			e.mgr.OnForceKill = e.forceKillNotice
			removed, err := e.mgr.Kill(cmd.Context(), args, all)
			n := 0
			for _, v := range removed {
				switch {
				case v.Status.Alive():
					n++
					if all {
						fmt.Fprintf(e.stdout, "[btl] Process killed (PID %d): %s\n", v.PID, printable(v.Command))
					} else {
						fmt.Fprintf(e.stdout, "[btl] Process killed (PID %d)\n", v.PID)
					}
				case !all:
					fmt.Fprintf(e.stdout, "[btl] Process had already exited (PID %d); removed %s\n", v.PID, v.Hash)
				}
			}
			if all {
				fmt.Fprintf(e.stdout, "[btl] Killed %s\n", plural(n, "process"))
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "stop every task")
	return cmd
}
