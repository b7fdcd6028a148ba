package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v.Hash, v.PID, v.Status, ago(now, v.StartedAt), printable(v.Command), printable(v.Cwd))
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

// printable renders s on one line for a terminal: control characters and
// bytes that are not UTF-8 are shown as Go-style escapes (\n, \x1b, \xff).
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
