package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

func newShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "show <hash|name>",
		Short:             "Show everything btl knows about a task",
		Example:           "  btl show 93b8",
		Args:              exactlyOneHash,
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := e.mgr.Show(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.writeShow(cmd.Context(), v, e.stats(cmd.Context(), []core.View{v})[0])
		},
	}
}

func exactlyOneHash(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError("%s takes one hash (see btl list)", cmd.Name())
	}
	return nil
}

func (e *env) writeShow(ctx context.Context, v core.View, st taskStats) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Hash", v.Hash)
	if v.Name != "" {
		row("Name", v.Name)
	}
	row("Command", printable(v.Command))
	if len(v.Argv) > 0 {
		q := make([]string, len(v.Argv))
		for i, a := range v.Argv {
			q[i] = strconv.Quote(a)
		}
		row("Argv", "["+strings.Join(q, ", ")+"]")
	}
	row("Directory", printable(v.Cwd))
	if v.Project != "" {
		row("Project", printable(v.Project)+" (entry "+printable(v.Entry)+")")
	}
	row("Status", v.Status.String())
	if v.Status.StartError != "" {
		row("Reason", printable(v.Status.StartError))
	}
	if v.Status.Reason != "" {
		row("Reason", printable(v.Status.Reason))
	}
	if v.Restart != "" {
		row("Restart", v.Restart)
	}
	if v.Restart != "" || v.Status.Restarts > 0 {
		row("Restarts", strconv.Itoa(v.Status.Restarts))
	}
	if v.Status.LastExit != "" {
		row("Last exit", v.Status.LastExit)
	}
	if stop := v.StopPolicy(); stop != core.DefaultStop {
		row("Stop", fmt.Sprintf("%s, then SIGKILL after %v", stop.SignalName(), stop.Timeout))
	}
	if w := v.Watch; w != nil {
		state := "not watched now (stopped)"
		if watched(v.Task) {
			state = fmt.Sprintf("by PID %d, debounce %v", w.Watcher.PID, w.Debounce)
		}
		row("Watching", printable(strings.Join(w.Paths, ", "))+"; "+state)
		if !w.LastChange.IsZero() {
			row("Last change", fmt.Sprintf("%s (%s), %d replaces", printable(w.LastPath), ago(time.Now(), w.LastChange), w.Replaces))
		}
	}
	row("PID", strconv.Itoa(currentPID(v)))
	if !v.StartedAt.IsZero() {
		row("Started", v.StartedAt.Local().Format("2006-01-02 15:04:05 MST")+" ("+ago(time.Now(), v.StartedAt)+")")
	}
	if st.running {
		row("Uptime", shortDuration(st.uptime))
		row("Ports", st.ports())
		row("CPU", cpuTime(st.CPU)+fmt.Sprintf(" (%.1f%% of its uptime)", st.cpuPercent()))
		row("Memory", humanSize(int64(st.Memory)))
		pids := make([]string, len(st.PIDs))
		for i, p := range st.PIDs {
			pids[i] = strconv.Itoa(p)
		}
		row("Processes", strconv.Itoa(len(st.PIDs))+" ("+strings.Join(pids, " ")+")")
	}
	row("Backend", v.BackendName())
	if v.Unit != "" {
		row("Unit", v.Unit)
	}
	logInfo := v.LogFile
	if fi, err := os.Stat(v.LogFile); err == nil {
		logInfo += " (" + humanSize(fi.Size()) + ")"
	}
	row("Log", printable(logInfo))
	if c := e.mgr.Describe(ctx, v.Task); c != "" {
		row("Inspect", c)
	}
	if n := taskNote(*v.Task); n != "" {
		row("Note", n)
	}
	return tw.Flush()
}
