package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

func newListCmd(e *env) *cobra.Command {
	var output string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tracked tasks",
		Long: `List tracked tasks with their status: running, exited N, killed (SIGNAL),
failed, or gone (not running, how it ended unknown). -o wide adds each task's
backend and unit or label; -o json (or --json) prints the stable JSON schema
documented in the README.`,
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
			views, err := e.mgr.List(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return e.writeJSON(cmd.Context(), views)
			}
			if len(views) == 0 {
				fmt.Fprintln(e.stdout, "No background processes tracked")
				return nil
			}
			return writeTable(e.stdout, views, output == "wide", colorOK(e.stdout))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide or json")
	cmd.Flags().BoolVar(&asJSON, "json", false, "same as -o json")
	return cmd
}

// taskJSON is one task in `btl list -o json`. The field names are a stable
// interface: fields may be added, none renamed or removed.
type taskJSON struct {
	Hash      string    `json:"hash"`
	PID       int       `json:"pid"`
	Status    string    `json:"status"`            // running, exited, killed, failed, gone, starting
	ExitCode  *int      `json:"exit_code"`         // set when status is exited
	Signal    string    `json:"signal,omitempty"`  // set when status is killed
	Command   string    `json:"command"`           // shell-quoted argv
	Argv      []string  `json:"argv"`              // as given; null when unknown
	Cwd       string    `json:"cwd"`               // real path
	StartedAt time.Time `json:"started_at"`        // RFC 3339
	Backend   string    `json:"backend"`           // fork, systemd, launchd
	Unit      string    `json:"unit,omitempty"`    // systemd unit or launchd service target
	LogFile   string    `json:"log_file"`          // path of the log
	Native    string    `json:"inspect,omitempty"` // command that shows the task natively
}

func toJSON(v core.View) taskJSON {
	j := taskJSON{
		Hash: v.Hash, PID: v.PID, Status: string(v.Status.State), Command: v.Command,
		Argv: v.Argv, Cwd: v.Cwd, StartedAt: v.StartedAt, Backend: backendName(v.Task),
		Unit: v.Unit, LogFile: v.LogFile,
	}
	switch v.Status.State {
	case core.Exited:
		code := v.Status.Code
		j.ExitCode = &code
	case core.Signaled:
		j.Signal = core.SignalName(v.Status.Signal)
	case "":
		j.Status = string(core.Gone)
	}
	return j
}

func (e *env) writeJSON(ctx context.Context, views []core.View) error {
	out := make([]taskJSON, 0, len(views))
	for _, v := range views {
		j := toJSON(v)
		j.Native = e.nativeCommand(ctx, v.Task)
		out = append(out, j)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeTable(w io.Writer, views []core.View, wide, color bool) error {
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	header := "HASH\tPID\tSTATUS\tSTARTED\tCOMMAND\tCWD"
	if wide {
		header += "\tBACKEND\tUNIT"
	}
	fmt.Fprintln(tw, header)
	now := time.Now()
	for _, v := range views {
		status := v.Status.String()
		if color {
			// tabwriter counts the escape bytes too; pad before colouring.
			status = paint(v.Status, fmt.Sprintf("%-*s", statusWidth(views), status))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s", v.Hash, v.PID, status, ago(now, v.StartedAt), printable(v.Command), printable(v.Cwd))
		if wide {
			unit := v.Unit
			if unit == "" {
				unit = "-"
			}
			fmt.Fprintf(tw, "\t%s\t%s", backendName(v.Task), unit)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

func statusWidth(views []core.View) int {
	w := len("STATUS")
	for _, v := range views {
		w = max(w, len(v.Status.String()))
	}
	return w
}

func backendName(t *core.Task) string {
	if t.Backend == "" {
		return "fork"
	}
	return t.Backend
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
