package main

import (
	"fmt"

	"btl/core"

	"github.com/spf13/cobra"
)

func newKillCmd(e *env) *cobra.Command {
	return newHaltCmd(e, halt{
		use:   "kill <hash|name>... | --all",
		short: "Stop tasks and every process they started, and forget them",
		long: `Stop tasks: each task's whole process tree gets its stop signal (SIGTERM
unless started with --stop-signal), then SIGKILL after its stop timeout (2 s
unless started with --stop-timeout). A hash may be any unique prefix of at least 4 characters. Killed tasks
are forgotten: they leave the list, and their runtime files go; their logs
are kept (btl logs lists them, btl clean --all deletes them). btl stop
keeps a task listed instead.`,
		example: "  btl kill 93b81d56\n  btl kill 93b8 7c38\n  btl kill --all",
		verb:    "kill",
		do:      (*core.Manager).Kill,
		was:     core.Signaled, action: "killed", ended: "removed",
		stopped: func(v core.View, all bool) string {
			if all {
				return fmt.Sprintf("[btl] Process killed (PID %d): %s", v.PID, printable(v.Command))
			}
			return fmt.Sprintf("[btl] Process killed (PID %d)", v.PID)
		},
		notRunning: func(v core.View) string {
			return fmt.Sprintf("[btl] Process had already exited (PID %d); removed %s", v.PID, v.Hash)
		},
		total: func(n int) string { return "[btl] Killed " + plural(n, "process") },
	})
}
