package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
failed, gone (not running, how it ended unknown), or unknown (its backend
cannot be asked from here; btl show says why). For a running task: the TCP
ports its process tree listens on, its CPU time with its share of the task's
lifetime, the memory of the whole tree, and its uptime. -o wide adds each
task's PID, process count, start, directory, backend and unit or label;
-o json (or --json) prints everything, in the stable JSON schema documented
in the README.`,
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
			stats := e.stats(cmd.Context(), views)
			if output == "json" {
				return e.writeJSON(cmd.Context(), views, stats)
			}
			if len(views) == 0 {
				fmt.Fprintln(e.stdout, "No background processes tracked")
				return nil
			}
			return writeTable(e.stdout, views, stats, output == "wide", colorOK(e.stdout))
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
	Name      string    `json:"name"` // given with --name; "" when none
	PID       int       `json:"pid"`
	Status    string    `json:"status"`            // running, exited, killed, failed, gone, starting, unknown
	Reason    string    `json:"reason,omitempty"`  // why the status is unknown (the backend cannot be asked) or why the task failed to start
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

	// The exact bytes of command, cwd and argv (every argument), base64,
	// only when they are not valid UTF-8: the string fields then hold
	// U+FFFD in their place.
	CommandBytes []byte   `json:"command_bytes,omitempty"`
	CwdBytes     []byte   `json:"cwd_bytes,omitempty"`
	ArgvBytes    [][]byte `json:"argv_bytes,omitempty"`

	// What a running task uses; absent (ports: empty) otherwise.
	Ports         []int    `json:"ports"`                    // TCP ports its tree listens on, ascending
	Processes     int      `json:"processes"`                // live processes in its tree
	CPUSeconds    *float64 `json:"cpu_seconds,omitempty"`    // CPU time used by its tree, user and system
	CPUPercent    *float64 `json:"cpu_percent,omitempty"`    // cpu_seconds as a share of uptime_seconds (100 = one core)
	MemoryBytes   *uint64  `json:"memory_bytes,omitempty"`   // memory of its tree (systemd: the unit's MemoryCurrent)
	UptimeSeconds *float64 `json:"uptime_seconds,omitempty"` // time since it started

	// Restarts (--restart): the policy, how often the backend started the
	// task again, how the last run that ended, ended, and whether
	// the backend gave up (a crash loop: status is then how the last run
	// ended).
	Restart   string `json:"restart,omitempty"`   // on-failure:N or always:N; absent for none
	Restarts  int    `json:"restarts"`            // 0 when never restarted
	LastExit  string `json:"last_exit,omitempty"` // "exited 1", "killed (SIGSEGV)"
	CrashLoop bool   `json:"crash_loop,omitempty"`
}

func toJSON(v core.View) taskJSON {
	j := taskJSON{
		Hash: v.Hash, Name: v.Name, PID: v.PID, Status: string(v.Status.State), Command: v.Command,
		Argv: v.Argv, Cwd: v.Cwd, StartedAt: v.StartedAt, Backend: v.BackendName(),
		Unit: v.Unit, LogFile: v.LogFile, Reason: v.Status.Reason + v.Status.StartError,
		Restart: v.Restart, Restarts: v.Status.Restarts, LastExit: v.Status.LastExit, CrashLoop: v.Status.CrashLoop,
	}
	if !utf8.ValidString(v.Command) {
		j.CommandBytes = []byte(v.Command)
	}
	if !utf8.ValidString(v.Cwd) {
		j.CwdBytes = []byte(v.Cwd)
	}
	for _, a := range v.Argv {
		if !utf8.ValidString(a) {
			j.ArgvBytes = make([][]byte, len(v.Argv))
			for i, a := range v.Argv {
				j.ArgvBytes[i] = []byte(a)
			}
			break
		}
	}
	j.PID = currentPID(v)
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

func (e *env) writeJSON(ctx context.Context, views []core.View, stats []taskStats) error {
	out := make([]taskJSON, 0, len(views))
	for i, v := range views {
		j := toJSON(v)
		j.Native = e.mgr.Describe(ctx, v.Task)
		j.Ports = []int{}
		if st := stats[i]; st.running {
			j.Ports = append(j.Ports, st.Ports...)
			j.Processes = len(st.PIDs)
			cpu, pct, up := st.CPU.Seconds(), st.cpuPercent(), st.uptime.Seconds()
			mem := st.Memory
			j.CPUSeconds, j.CPUPercent, j.MemoryBytes, j.UptimeSeconds = &cpu, &pct, &mem, &up
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeTable(w io.Writer, views []core.View, stats []taskStats, wide, color bool) error {
	header := []string{"HASH", "NAME", "STATUS", "PORTS", "CPU", "MEM", "UPTIME", "COMMAND"}
	statusCol := 2
	if wide {
		header = []string{"HASH", "NAME", "PID", "STATUS", "PORTS", "CPU", "MEM", "UPTIME", "PROCS", "STARTED", "COMMAND", "CWD", "BACKEND", "UNIT"}
		statusCol = 3
	}
	rows := [][]string{header}
	now := time.Now()
	for i, v := range views {
		st := stats[i]
		ports, cpu, mem, up, procs := "-", "-", "-", "-", "-"
		if st.running {
			ports, cpu, mem, up, procs = st.ports(), st.cpu(), humanSize(int64(st.Memory)), shortDuration(st.uptime), strconv.Itoa(len(st.PIDs))
		}
		row := []string{v.Hash, orDash(v.Name), statusCell(v), ports, cpu, mem, up, printable(v.Command)}
		if wide {
			row = []string{v.Hash, orDash(v.Name), strconv.Itoa(currentPID(v)), statusCell(v), ports, cpu, mem, up, procs,
				ago(now, v.StartedAt), printable(v.Command), printable(v.Cwd), v.BackendName(), orDash(v.Unit)}
		}
		rows = append(rows, row)
	}
	// Columns are padded by their visible width: colour codes, added after
	// padding, take no room (tabwriter would count their bytes).
	width := make([]int, len(header))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	bw := bufio.NewWriter(w)
	for r, row := range rows {
		for i, cell := range row {
			pad := width[i] - utf8.RuneCountInString(cell)
			if i == len(row)-1 {
				pad = 0
			}
			if r > 0 && i == statusCol && color {
				cell = paint(views[r-1].Status, cell)
			}
			_, _ = bw.WriteString(cell)
			if i < len(row)-1 {
				_, _ = bw.WriteString(strings.Repeat(" ", pad+2))
			}
		}
		_ = bw.WriteByte('\n')
	}
	return bw.Flush()
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
