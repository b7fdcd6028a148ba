package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"btl/core"
)

// halt describes a command that stops tasks (kill, stop): what it says
// and which Manager call does it; newHaltCmd does the rest.
type halt struct {
	use, short, long, example string
	verb                      string // in "give the hash or name of the task to VERB"
	do                        func(m *core.Manager, ctx context.Context, prefixes []string, all bool) ([]core.View, error)
	// was is the status and the --json action of a task that ran until
	// stopped.
	was    core.RunState
	action string
	// ended is the --json action of a task that had already ended.
	ended string
	// stopped and notRunning are the lines for one task (all: of
	// --all); total, the closing line of --all.
	stopped    func(v core.View, all bool) string
	notRunning func(v core.View) string
	total      func(n int) string
}

// targets checks a command's task arguments: hashes or names, or --all,
// never both; with neither, missing says what to give.
func targets(all bool, args []string, missing string) error {
	switch {
	case all && len(args) > 0:
		return usageError("give hashes or --all, not both")
	case !all && len(args) == 0:
		return usageError("%s", missing)
	}
	return nil
}

func newHaltCmd(e *env, h halt) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:               h.use,
		Short:             h.short,
		Long:              h.long,
		Example:           h.example,
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := targets(all, args, "give the hash or name of the task to "+h.verb+", or --all (see btl list)"); err != nil {
				return err
			}
			if err := e.setOutput(); err != nil {
				return err
			}
			e.mgr.OnForceKill = e.forceKillNotice
			views, err := h.do(e.mgr, cmd.Context(), args, all)
			n := 0
			for _, v := range views {
				if v.Status.Alive() {
					n++
					e.emit(v.Task, core.Status{State: h.was, PID: v.PID}, nil, h.action)
					fmt.Fprintln(e.stdout, h.stopped(v, all))
					continue
				}
				e.emit(v.Task, v.Status, nil, h.ended)
				if !all {
					fmt.Fprintln(e.stdout, h.notRunning(v))
				}
			}
			if all {
				fmt.Fprintln(e.stdout, h.total(n))
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "stop every task")
	e.addOutputFlag(cmd)
	return cmd
}
