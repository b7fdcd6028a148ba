package main

import (
	"fmt"

	"btl/core"

	"github.com/spf13/cobra"
)

func newStopCmd(e *env) *cobra.Command {
	return newHaltCmd(e, halt{
		use:   "stop <hash|name>... | --all",
		short: "Stop tasks, keeping them listed to restart",
		long: `Stop tasks as btl kill does (each task's whole process tree gets its stop
signal, SIGTERM by default, then SIGKILL after its stop timeout, 2 s by
default), but keep them: btl list shows them as stopped, with
their names, and btl restart runs them again. btl kill or btl clean forgets
them.`,
		example: "  btl stop api\n  btl stop --all\n  btl restart api",
		verb:    "stop",
		do:      (*core.Manager).Stop,
		was:     core.Stopped, action: "stopped", ended: "stopped",
		stopped: func(v core.View, _ bool) string {
			return fmt.Sprintf("[btl] Process stopped (PID %d): %s", v.PID, printable(v.Command))
		},
		notRunning: func(v core.View) string {
			return fmt.Sprintf("[btl] %s was not running (%s)", v.Hash, v.Status)
		},
		total: func(n int) string { return "[btl] Stopped " + plural(n, "task") },
	})
}
