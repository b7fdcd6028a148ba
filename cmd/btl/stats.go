package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"btl/core"
	"btl/internal/logread"
)

// taskStats is what a task uses, as list and show print it.
type taskStats struct {
	core.Usage
	running bool          // the task runs; the rest is meaningful
	uptime  time.Duration // since the task started
}

// stats reads what each running task uses, from one read of the process
// table for all of them (ctx's snapshot, when it carries one).
func (e *env) stats(ctx context.Context, views []core.View) []taskStats {
	var tasks []*core.Task
	var idx []int
	for i, v := range views {
		if v.Status.Alive() {
			tasks = append(tasks, v.Task)
			idx = append(idx, i)
		}
	}
	out := make([]taskStats, len(views))
	if len(tasks) == 0 {
		return out
	}
	now := time.Now()
	for j, u := range core.UsagesIn(ctx, tasks) {
		v := views[idx[j]]
		if mem, ok := e.mgr.Memory(ctx, v.Task); ok {
			u.Memory = mem
		}
		out[idx[j]] = taskStats{Usage: u, running: true, uptime: max(now.Sub(v.StartedAt), 0)}
	}
	return out
}

// cpuPercent is the CPU time as a share of the uptime: 100 is one core
// busy all the time.
func (s taskStats) cpuPercent() float64 {
	if s.uptime <= 0 {
		return 0
	}
	return float64(s.CPU) / float64(s.uptime) * 100
}

// cpu renders the CPU time and its share of the uptime: "1.20s/3%".
func (s taskStats) cpu() string {
	return fmt.Sprintf("%s/%.0f%%", cpuTime(s.CPU), s.cpuPercent())
}

// cpuTime renders a CPU time: "0.12s", "4.5s", "3m02s", "2h05m".
func cpuTime(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// ports renders the listening ports: "5173,24678", or "-".
func (s taskStats) ports() string {
	if len(s.Ports) == 0 {
		return "-"
	}
	ps := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		ps[i] = strconv.Itoa(p)
	}
	return strings.Join(ps, ",")
}

// shortDuration renders an uptime: "42s", "5m", "3h12m", "2d4h".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours()/24), int(d.Hours())%24)
}

// inUse matches what servers print when their port is taken; compiled
// when first needed, not by every btl process.
var inUse = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)in use|EADDRINUSE`) })

// explainPort tells, for a task that ended saying that an address is in
// use, which other btl task listens on a port its log or command names.
func (e *env) explainPort(w io.Writer, task *core.Task) {
	lines := logread.LastRunLines(task.LogFile, 20)
	text := strings.Join(lines, "\n")
	if !inUse().MatchString(text) {
		return
	}
	text += "\n" + strings.Join(task.Argv, " ")
	st, err := e.mgr.Snapshot()
	if err != nil {
		return
	}
	var others []*core.Task
	for _, t := range st.Sorted() {
		if t.Hash != task.Hash {
			others = append(others, t)
		}
	}
	for i, u := range core.Usages(others) {
		for _, p := range u.Ports {
			if regexp.MustCompile(`(^|[^0-9])` + strconv.Itoa(p) + `([^0-9]|$)`).MatchString(text) {
				t := others[i]
				fmt.Fprintf(w, "[btl] port %d is held by task %s (%s in %s)\n", p, taskLabelLong(t), printable(t.Command), printable(t.Cwd))
			}
		}
	}
}

// taskLabelLong names a task by its short hash and, if it has one, its name.
func taskLabelLong(t *core.Task) string {
	if t.Name != "" {
		return t.Hash[:8] + " \"" + t.Name + "\""
	}
	return t.Hash[:8]
}
