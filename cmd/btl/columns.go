package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"btl/core"
)

// row is what one task's line in btl list, its object in btl list -o
// json and its lines in btl show are drawn from.
type row struct {
	core.View
	st      taskStats     // what it uses; st.running says whether it runs
	now     time.Time     // when the list was read
	inspect func() string // the command that shows the task natively (-o json, show)
}

// rowsOf pairs each view with what it uses; describe names the command
// that shows a task natively (nil where nothing asks for it: the table).
func rowsOf(views []core.View, stats []taskStats, describe func(*core.Task) string) []row {
	now := time.Now()
	rows := make([]row, len(views))
	for i, v := range views {
		rows[i] = row{View: v, st: stats[i], now: now, inspect: func() string {
			if describe == nil {
				return ""
			}
			return describe(v.Task)
		}}
	}
	return rows
}

// showPart is the part of btl show a line belongs to; the parts are
// printed in this order, the lines of each in the order of columns.
type showPart int

const (
	aboutPart showPart = iota // what the task is: hash, name, command, directory
	statePart                 // how it is: status, restarts, stop policy, watch
	runPart                   // its current run: PID, uptime, start
	usePart                   // what a running task uses
	placePart                 // where it lives: backend, unit, log
)

// column is one fact about a task, and how each output shows it: a
// column of btl list (title, cell), a field of btl list -o json (json,
// value) and a line of btl show (label, show). Every output is drawn from
// the columns table below, so that a new fact is one entry there.
type column struct {
	title   string             // header in btl list; "" for a fact the table leaves out
	wide    bool               // only with -o wide
	present func([]row) bool   // nil, or whether the column is there at all for these rows
	cell    func(r row) string // the text in btl list ("-" for none)
	painted bool               // the cell is coloured by the task's status on a terminal

	json      string          // key in btl list -o json; "" for none
	value     func(r row) any // the JSON value, typed (numbers stay numbers, nil pointers null)
	omitEmpty bool            // the key is left out when the value is empty (nil, "", 0, false, [])

	label string             // line in btl show; "" for none
	show  func(r row) string // its text, "" for no line; nil: the cell, no line for "-"
	part  showPart           // the part of show the line is in
}

// unitCell is the task's native name or, for a task another backend ran
// in auto mode, why the one picked did not.
func unitCell(r row) string {
	if r.Unit == "" && r.Fallback != "" {
		return "(" + r.Fallback + ")"
	}
	return r.Unit
}

// columns are the facts btl list, list -o json and show print, in the
// order of the table's columns (and of the JSON fields and, within each
// of its parts, of show's lines). A new column is one entry here.
var columns = []column{
	{title: "HASH", cell: func(r row) string { return r.Hash },
		json: "hash", value: func(r row) any { return r.Hash }, label: "Hash", part: aboutPart},
	{title: "NAME", cell: func(r row) string { return orDash(r.Name) },
		json: "name", value: func(r row) any { return r.Name }, label: "Name", part: aboutPart},
	{title: "PID", wide: true, cell: func(r row) string { return strconv.Itoa(currentPID(r.View)) },
		json: "pid", value: func(r row) any { return currentPID(r.View) }, label: "PID", part: runPart},
	{title: "STATUS", cell: statusCell, painted: true,
		json: "status", value: func(r row) any { return string(stateOr(r.Status.State, core.Gone)) },
		label: "Status", show: func(r row) string { return r.Status.String() }, part: statePart},
	{json: "reason", omitEmpty: true, value: func(r row) any { return reason(r) },
		label: "Reason", show: func(r row) string { return printable(reason(r)) }, part: statePart},
	{json: "exit_code", value: func(r row) any {
		if r.Status.State != core.Exited {
			return (*int)(nil)
		}
		return &r.Status.Code
	}},
	{json: "signal", omitEmpty: true, value: func(r row) any {
		if r.Status.State != core.Signaled {
			return ""
		}
		return core.SignalName(r.Status.Signal)
	}},
	{json: "restart", omitEmpty: true, value: func(r row) any { return r.Restart },
		label: "Restart", show: func(r row) string { return r.Restart }, part: statePart},
	{json: "restarts", value: func(r row) any { return r.Status.Restarts },
		label: "Restarts", show: func(r row) string {
			if r.Restart == "" && r.Status.Restarts == 0 {
				return ""
			}
			return strconv.Itoa(r.Status.Restarts)
		}, part: statePart},
	{json: "last_exit", omitEmpty: true, value: func(r row) any { return r.Status.LastExit },
		label: "Last exit", show: func(r row) string { return r.Status.LastExit }, part: statePart},
	{json: "crash_loop", omitEmpty: true, value: func(r row) any { return r.Status.CrashLoop }},
	{json: "stop_signal", value: func(r row) any { return r.StopPolicy().SignalName() },
		label: "Stop", show: func(r row) string {
			if stop := r.StopPolicy(); stop != core.DefaultStop {
				return fmt.Sprintf("%s, then SIGKILL after %v", stop.SignalName(), stop.Timeout)
			}
			return ""
		}, part: statePart},
	{json: "stop_timeout", value: func(r row) any { return r.StopPolicy().Timeout.String() }},
	{json: "watch", omitEmpty: true, value: watchValue,
		label: "Watching", show: func(r row) string {
			w := r.Watch
			if w == nil {
				return ""
			}
			state := "not watched now (stopped)"
			if watched(r.Task) {
				state = fmt.Sprintf("by PID %d, debounce %v", w.Watcher.PID, w.Debounce)
			}
			return printable(strings.Join(w.Paths, ", ")) + "; " + state
		}, part: statePart},
	{label: "Last change", show: func(r row) string {
		if w := r.Watch; w != nil && !w.LastChange.IsZero() {
			return fmt.Sprintf("%s (%s), %d replaces", printable(w.LastPath), ago(r.now, w.LastChange), w.Replaces)
		}
		return ""
	}, part: statePart},
	{title: "PORTS", cell: running(func(r row) string { return r.st.ports() }),
		json: "ports", value: func(r row) any { return append([]int{}, r.st.Ports...) },
		label: "Ports", show: func(r row) string { return onlyRunning(r, r.st.ports()) }, part: usePart},
	{title: "CPU", cell: running(func(r row) string { return r.st.cpu() }),
		json: "cpu_seconds", omitEmpty: true, value: func(r row) any { return ifRunning(r, r.st.CPU.Seconds()) },
		label: "CPU", show: func(r row) string {
			return onlyRunning(r, cpuTime(r.st.CPU)+fmt.Sprintf(" (%.1f%% of its uptime)", r.st.cpuPercent()))
		}, part: usePart},
	{json: "cpu_percent", omitEmpty: true, value: func(r row) any { return ifRunning(r, r.st.cpuPercent()) }},
	{title: "MEM", cell: running(func(r row) string { return humanSize(int64(r.st.Memory)) }),
		json: "memory_bytes", omitEmpty: true, value: func(r row) any { return ifRunning(r, r.st.Memory) },
		label: "Memory", part: usePart},
	{title: "UPTIME", cell: running(func(r row) string { return shortDuration(r.st.uptime) }),
		json: "uptime_seconds", omitEmpty: true, value: func(r row) any { return ifRunning(r, r.st.uptime.Seconds()) },
		label: "Uptime", part: runPart},
	{title: "PROCS", wide: true, cell: running(func(r row) string { return strconv.Itoa(len(r.st.PIDs)) }),
		json: "processes", value: func(r row) any { return len(r.st.PIDs) },
		label: "Processes", show: func(r row) string {
			pids := make([]string, len(r.st.PIDs))
			for i, p := range r.st.PIDs {
				pids[i] = strconv.Itoa(p)
			}
			return onlyRunning(r, strconv.Itoa(len(r.st.PIDs))+" ("+strings.Join(pids, " ")+")")
		}, part: usePart},
	{title: "STARTED", wide: true, cell: func(r row) string { return ago(r.now, r.StartedAt) },
		json: "started_at", value: func(r row) any { return r.StartedAt },
		label: "Started", show: func(r row) string {
			if r.StartedAt.IsZero() {
				return ""
			}
			return r.StartedAt.Local().Format("2006-01-02 15:04:05 MST") + " (" + ago(r.now, r.StartedAt) + ")"
		}, part: runPart},
	{title: "COMMAND", cell: func(r row) string { return printable(r.Command) },
		json: "command", value: func(r row) any { return r.Command }, label: "Command", part: aboutPart},
	{json: "argv", value: func(r row) any { return r.Argv },
		label: "Argv", show: func(r row) string {
			if len(r.Argv) == 0 {
				return ""
			}
			q := make([]string, len(r.Argv))
			for i, a := range r.Argv {
				q[i] = strconv.Quote(a)
			}
			return "[" + strings.Join(q, ", ") + "]"
		}, part: aboutPart},
	{title: "CWD", wide: true, cell: func(r row) string { return printable(r.Cwd) },
		json: "cwd", value: func(r row) any { return r.Cwd }, label: "Directory", part: aboutPart},
	{title: "BACKEND", wide: true, cell: func(r row) string { return r.BackendName() },
		json: "backend", value: func(r row) any { return r.BackendName() }, label: "Backend", part: placePart},
	{title: "UNIT", wide: true, cell: func(r row) string { return orDash(unitCell(r)) },
		json: "unit", omitEmpty: true, value: func(r row) any { return r.Unit }, label: "Unit", part: placePart,
		show: func(r row) string { return unitCell(r) }},
	{json: "fallback", omitEmpty: true, value: func(r row) any { return r.Fallback }},
	{title: "LOG", wide: true, cell: func(r row) string { return humanSize(logSize(r.LogFile)) },
		json: "log_bytes", value: func(r row) any { return logSize(r.LogFile) }},
	// The project column is there once a task belongs to one (btl up).
	{title: "PROJECT", wide: true, cell: func(r row) string { return orDash(printable(r.Project)) },
		present: func(rows []row) bool { return slices.ContainsFunc(rows, func(r row) bool { return r.Project != "" }) },
		json:    "project", omitEmpty: true, value: func(r row) any { return r.Project },
		label: "Project", show: func(r row) string {
			if r.Project == "" {
				return ""
			}
			return printable(r.Project) + " (entry " + printable(r.Entry) + ")"
		}, part: aboutPart},
	{json: "entry", omitEmpty: true, value: func(r row) any { return r.Entry }},
	{json: "log_file", value: func(r row) any { return r.LogFile },
		label: "Log", show: func(r row) string {
			info := r.LogFile
			if fi, err := os.Stat(r.LogFile); err == nil {
				info += " (" + humanSize(fi.Size()) + ")"
			}
			return printable(info)
		}, part: placePart},
	{json: "inspect", omitEmpty: true, value: func(r row) any { return r.inspect() },
		label: "Inspect", show: func(r row) string { return r.inspect() }, part: placePart},
	// The exact bytes of command, cwd and argv (every argument), only
	// when they are not valid UTF-8: the string fields then hold U+FFFD.
	{json: "command_bytes", omitEmpty: true, value: func(r row) any { return invalidBytes(r.Command) }},
	{json: "cwd_bytes", omitEmpty: true, value: func(r row) any { return invalidBytes(r.Cwd) }},
	{json: "argv_bytes", omitEmpty: true, value: func(r row) any {
		if !slices.ContainsFunc(r.Argv, func(a string) bool { return !utf8.ValidString(a) }) {
			return [][]byte(nil)
		}
		out := make([][]byte, len(r.Argv))
		for i, a := range r.Argv {
			out[i] = []byte(a)
		}
		return out
	}},
	{label: "Note", show: func(r row) string { return taskNote(*r.Task) }, part: placePart},
}

// statusCell is the STATUS cell of a task in btl list: its status, and
// how often it was restarted when it was (a crash loop says it itself).
func statusCell(r row) string {
	s := r.Status.String()
	if r.Status.Restarts > 0 && !r.Status.CrashLoop {
		s += " (" + core.RestartCount(r.Status.Restarts) + ")"
	}
	if watched(r.Task) {
		s += ", watched"
		if w := r.Watch; !w.LastChange.IsZero() {
			s += " (changed " + ago(r.now, w.LastChange) + ")"
		}
	}
	return s
}

// reason says why the task's status is unknown, or why its last start
// failed.
func reason(r row) string { return r.Status.Reason + r.Status.StartError }

// stateOr is s, or def when s is empty.
func stateOr(s, def core.RunState) core.RunState {
	if s == "" {
		return def
	}
	return s
}

// running makes a cell that says "-" for a task that does not run.
func running(cell func(r row) string) func(r row) string {
	return func(r row) string {
		if !r.st.running {
			return "-"
		}
		return cell(r)
	}
}

// onlyRunning is s for a running task, "" otherwise.
func onlyRunning(r row, s string) string {
	if !r.st.running {
		return ""
	}
	return s
}

// ifRunning is a pointer to x for a running task, nil otherwise.
func ifRunning[T any](r row, x T) *T {
	if !r.st.running {
		return nil
	}
	return &x
}

// invalidBytes is s's bytes when s is not valid UTF-8, nil otherwise.
func invalidBytes(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

// watchJSON is the watch field of btl list -o json: what is watched, the
// watcher's PID (0 once stopped), and the last change that replaced the
// task.
type watchJSON struct {
	Paths      []string   `json:"paths"`
	WatcherPID int        `json:"watcher_pid"`
	LastChange *time.Time `json:"last_change"` // null before the first
	LastPath   string     `json:"last_path,omitempty"`
	Replaces   int        `json:"replaces"`
}

// watchValue is the watch field of r, nil when it is not watched.
func watchValue(r row) any {
	w := r.Watch
	if w == nil {
		return (*watchJSON)(nil)
	}
	j := &watchJSON{Paths: w.Paths, LastPath: w.LastPath, Replaces: w.Replaces}
	if watched(r.Task) {
		j.WatcherPID = w.Watcher.PID
	}
	if !w.LastChange.IsZero() {
		lc := w.LastChange
		j.LastChange = &lc
	}
	return j
}

// writeTable writes btl list's table of rows: the columns for the output
// (wide or not) that are present, padded by their visible width (colour
// codes, added after padding, take no room: tabwriter would count their
// bytes); the last column is not padded.
func writeTable(w io.Writer, rows []row, wide, color bool) error {
	var cols []column
	for _, c := range columns {
		if c.title != "" && (wide || !c.wide) && (c.present == nil || c.present(rows)) {
			cols = append(cols, c)
		}
	}
	cells := make([][]string, 0, len(rows)+1)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.title
	}
	cells = append(cells, header)
	for _, r := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = c.cell(r)
		}
		cells = append(cells, line)
	}
	width := make([]int, len(cols))
	for _, line := range cells {
		for i, cell := range line {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	bw := bufio.NewWriter(w)
	for n, line := range cells {
		for i, cell := range line {
			last := i == len(line)-1
			pad := width[i] - utf8.RuneCountInString(cell)
			if n > 0 && color && cols[i].painted {
				cell = paint(rows[n-1].Status, cell)
			}
			_, _ = bw.WriteString(cell)
			if !last {
				_, _ = bw.WriteString(strings.Repeat(" ", pad+2))
			}
		}
		_ = bw.WriteByte('\n')
	}
	return bw.Flush()
}

// object is one task in btl list -o json: its fields in the order of
// columns.
type object []field

type field struct {
	key   string
	value any
}

// objectOf draws r's JSON object from columns.
func objectOf(r row) object {
	var o object
	for _, c := range columns {
		if c.json == "" {
			continue
		}
		v := c.value(r)
		if c.omitEmpty && empty(v) {
			continue
		}
		o = append(o, field{c.json, v})
	}
	return o
}

// MarshalJSON writes the fields in their order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// empty reports whether v is what encoding/json's omitempty leaves out:
// nil, false, 0, or an empty string, slice or map.
func empty(v any) bool {
	if v == nil {
		return true
	}
	x := reflect.ValueOf(v)
	switch x.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return x.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return x.IsNil()
	}
	return x.IsZero()
}

// writeRowsJSON writes rows as btl list -o json: an array of objects,
// indented.
func writeRowsJSON(w io.Writer, rows []row) error {
	out := make([]object, len(rows))
	for i, r := range rows {
		out[i] = objectOf(r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// showLines are btl show's lines for r, "Label: text", part by part.
func showLines(r row) [][2]string {
	var lines [][2]string
	for part := aboutPart; part <= placePart; part++ {
		for _, c := range columns {
			if c.label == "" || c.part != part {
				continue
			}
			var text string
			if c.show != nil {
				text = c.show(r)
			} else if text = c.cell(r); text == "-" {
				text = ""
			}
			if text != "" {
				lines = append(lines, [2]string{c.label, text})
			}
		}
	}
	return lines
}
