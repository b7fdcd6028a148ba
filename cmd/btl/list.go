package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

func newListCmd(e *env) *cobra.Command {
	var output, proj string
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tracked tasks",
		Long: `List tracked tasks with their status: running, exited N, killed (SIGNAL),
failed, gone (not running, how it ended unknown), or unknown (its backend
cannot be asked from here; btl show says why). For a running task: the TCP
ports its process tree listens on, its CPU time with its share of the task's
lifetime, the memory of the whole tree, and its uptime. -o wide adds each
task's PID, process count, start, directory, backend, unit or label, the
size of its log, and the project btl up started it for, when one has a project (--project .
lists only the current directory's project's tasks);
-o json (or --json) prints everything, in the stable JSON schema documented
in the README. --watch (-w) redraws the table every second in place (on the
normal screen: what was printed stays) until q or Ctrl-C.`,
		Example: "  btl list\n  btl ls -o wide\n  btl list --json | jq -r '.[] | select(.status == \"running\") | .hash'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				output = "json"
			}
			switch output {
			case "", "wide", "json":
			default:
				return usageError("-o takes wide or json, not %q", output)
			}
			if watch {
				if output == "json" {
					return usageError("--watch redraws the table; it does not go with -o json")
				}
				return e.listWatch(cmd.Context(), output == "wide")
			}
			// One read of the process table for the checks, re-adoption
			// and the usage columns.
			ctx := core.WithSnapshot(cmd.Context())
			views, err := e.mgr.List(ctx)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("project") {
				if views, err = ofProject(views, proj); err != nil {
					return err
				}
			}
			rows := rowsOf(views, e.stats(ctx, views), func(t *core.Task) string { return e.mgr.Describe(ctx, t) })
			if output == "json" {
				return writeRowsJSON(e.stdout, rows)
			}
			if len(views) == 0 {
				fmt.Fprintln(e.stdout, "No background processes tracked")
				return nil
			}
			return writeTable(e.stdout, rows, output == "wide", colorOK(e.stdout))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide or json")
	cmd.Flags().BoolVar(&asJSON, "json", false, "same as -o json")
	cmd.Flags().StringVar(&proj, "project", "", "only the tasks btl up started for the project in this directory (. for the current one)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw the table every second, in place, until Ctrl-C or q")
	return cmd
}

// ofProject keeps the views of the tasks btl up started for the project
// in dir.
func ofProject(views []core.View, dir string) ([]core.View, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, usageError("--project: %v", err)
	}
	var out []core.View
	for _, v := range views {
		if v.Project == abs {
			out = append(out, v)
		}
	}
	return out, nil
}

// orDash is s, or "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago renders the time since t as "5s ago", "3m ago", "2h ago", "4d ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// printable renders s on one line (see core.OneLine).
func printable(s string) string { return core.OneLine(s) }
