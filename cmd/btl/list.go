package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tracked tasks",
		Example: "  btl list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			views, err := e.mgr.List(cmd.Context())
			if err != nil {
				return err
			}
			if len(views) == 0 {
				fmt.Fprintln(e.stdout, "No background processes tracked")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "HASH\tPID\tSTATUS\tSTARTED\tCOMMAND\tCWD")
			now := time.Now()
			for _, v := range views {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v.Hash, v.PID, v.Status, ago(now, v.StartedAt), v.Command, v.Cwd)
			}
			return tw.Flush()
		},
	}
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
