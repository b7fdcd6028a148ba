package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
	"btl/internal/logread"
	"btl/internal/regular"
)

func newLogsCmd(e *env) *cobra.Command {
	var lines int
	var follow, wait, stamps bool
	var since string
	cmd := &cobra.Command{
		Use:   "logs [hash|name...]",
		Short: "List log files, or print or follow tasks' logs",
		Long: `Without a hash, list the log files btl keeps. With a hash (any unique prefix
of at least 4 characters) or a name, print that task's log. Each run starts
with a line "[btl] <time> started PID <pid>: <command>".

-n prints only the last lines. --since prints the lines written since a time
(RFC 3339, "2006-01-02 15:04") or for a duration ("10m", "2h"), and
--timestamps (-t) prints each line after the time it was written (UTC, to
the second; kept beside the log in <log>.times). -f keeps
printing what the task writes, across replacements, until the task ends
(its end is printed: "[btl] exited 3"), is killed, or you interrupt it;
with --wait, a task that ended is followed on until it is replaced or
killed.

-f without a hash follows every task's log at once, tasks that start later
included, each line after the task's name or short hash (in a colour of its
own on a terminal, unless NO_COLOR is set), from the last 10 lines of each
(-n changes that); -f with several hashes or names follows those.`,
		Example: "  btl logs\n  btl logs 93b8\n  btl logs 93b8 -n 50 -f\n  btl logs 93b8 --since 1h\n  btl logs -f\n  btl logs -f api web",
		Args:    cobra.ArbitraryArgs,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 && !follow {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return e.completeHashes(cmd, args, prefix)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return usageError("-n takes a number of lines, 0 or more")
			}
			if wait && !follow {
				return usageError("--wait goes with -f")
			}
			o := logOptions{lines: lines, tail: cmd.Flags().Changed("lines"), follow: follow, wait: wait, stamps: stamps}
			if len(args) != 1 {
				switch {
				case len(args) == 0 && !follow && (o.tail || since != "" || stamps):
					return usageError("-n, --since and --timestamps need a hash, or -f (see btl logs)")
				case len(args) == 0 && !follow:
					return e.listLogs()
				case !follow:
					return usageError("several tasks' logs are printed together with -f only")
				case since != "":
					return usageError("--since takes one hash")
				case stamps:
					return usageError("--timestamps takes one hash")
				}
				return e.followMany(cmd.Context(), args, o, wait)
			}
			if since != "" {
				var err error
				if o.since, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			return e.printLog(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 0, "print only the last N lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the task ends or you interrupt; without a hash, every task's")
	cmd.Flags().BoolVar(&wait, "wait", false, "with -f: follow a task that ended on, until it is replaced or killed")
	cmd.Flags().StringVar(&since, "since", "", "print the lines written since a time or for a duration (10m, 2h)")
	cmd.Flags().BoolVarP(&stamps, "timestamps", "t", false, "print each line after the time it was written")
	return cmd
}

// logInfo is one log file on disk.
type logInfo struct {
	hash string
	fi   os.FileInfo
}

func (e *env) logFiles() ([]logInfo, error) {
	ents, err := os.ReadDir(e.dirs.Logs)
	if err != nil {
		return nil, err
	}
	var out []logInfo
	for _, de := range ents {
		hash, ok := core.LogHash(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		if fi, err := de.Info(); err == nil {
			out = append(out, logInfo{hash, fi})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fi.ModTime().After(out[j].fi.ModTime()) })
	return out, nil
}

func (e *env) listLogs() error {
	logs, err := e.logFiles()
	if err != nil {
		return err
	}
	if len(logs) == 0 {
		fmt.Fprintln(e.stdout, "No logs yet")
		return nil
	}
	st, _ := e.mgr.Snapshot()
	fmt.Fprintln(e.stdout, "Available logs:")
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	now := time.Now()
	for _, l := range logs {
		var cmd string
		if st != nil && st.Processes[l.hash] != nil {
			cmd = printable(st.Processes[l.hash].Command)
		} else {
			// A forgotten task: its log's first start marker names it.
			cmd = logread.FirstCommand(e.dirs.LogFile(l.hash))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.hash, humanSize(l.fi.Size()), ago(now, l.fi.ModTime()), cmd)
	}
	return tw.Flush()
}

// findLog resolves a hash prefix against the tracked tasks and, for tasks
// no longer tracked, against the log files.
func (e *env) findLog(prefix string) (*core.Task, string, error) {
	st, err := e.mgr.Snapshot()
	if err != nil {
		st = &core.State{Processes: map[string]*core.Task{}}
	}
	t, err := core.Find(st, prefix)
	if err == nil {
		return t, t.LogFile, nil
	}
	if !errors.Is(err, core.ErrNoTask) {
		return nil, "", err
	}
	logs, _ := e.logFiles()
	var match []string
	for _, l := range logs {
		if strings.HasPrefix(l.hash, strings.ToLower(prefix)) {
			match = append(match, l.hash)
		}
	}
	switch len(match) {
	case 0:
		return nil, "", fmt.Errorf("%w (see btl logs for the logs that exist)", err)
	case 1:
		return nil, e.dirs.LogFile(match[0]), nil
	}
	return nil, "", fmt.Errorf("%w %q; candidates: %s", core.ErrAmbiguous, prefix, strings.Join(match, ", "))
}

// logOptions say what part of a log to print.
type logOptions struct {
	lines  int       // with tail: how many last lines
	tail   bool      // print only the last lines
	since  time.Time // non-zero: start at the first line written since
	stamps bool      // print each line's time before it
	follow bool      // keep printing until the task ends or is killed
	wait   bool      // with follow: a task that ended is followed on
}

func (e *env) printLog(ctx context.Context, prefix string, o logOptions) error {
	t, path, err := e.findLog(prefix)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return notRegular(path)
	}
	if t != nil {
		if err := e.mgr.SyncLog(ctx, t); err != nil {
			fmt.Fprintf(e.stderr, "Warning: log may be incomplete: %s\n", printable(err.Error()))
		}
	}
	fl := logread.Follow(path, nil)
	defer func() { _ = fl.Close() }()
	err = fl.Open()
	if errors.Is(err, os.ErrNotExist) && o.follow {
		err = fl.WaitOpen(ctx, followPoll)
	}
	if errors.Is(err, regular.ErrNotRegular) {
		return notRegular(path)
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	f := fl.File()
	start := int64(0)
	if !o.since.IsZero() {
		if start, err = logread.Since(f, logread.NewClock(path), o.since); err != nil {
			return err
		}
		_, _ = f.Seek(start, io.SeekStart)
	}
	if o.tail {
		if err := logread.SeekTail(f, o.lines); err != nil {
			return err
		}
	}
	pos, _ := f.Seek(0, io.SeekCurrent)
	if pos < start {
		pos, _ = f.Seek(start, io.SeekStart)
	}
	var out io.Writer = e.stdout
	if o.stamps {
		sw := &stampWriter{w: e.stdout, clock: logread.NewClock(path), off: pos}
		fl.OnRestart = sw.reset
		out = sw
	}
	if _, err := io.Copy(out, f); err != nil {
		return err
	}
	if !o.follow {
		if sw, ok := out.(*stampWriter); ok {
			return sw.flush()
		}
		return nil
	}
	end := func() (string, bool) { return "", false }
	if t != nil {
		end = e.taskEnd(ctx, t.Hash, o.wait)
	}
	return followFile(ctx, fl, out, end)
}

// parseSince reads --since: a duration before now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError("--since %q: want a duration such as 10m or 2h, or a time such as 2026-01-02 15:04", s)
}

// taskEnd returns the check that ends following the task with hash:
// over once the task is forgotten (killed) or, unless wait, has ended,
// with the line that says how it ended. It looks under the state lock, so
// that a replace in progress is not taken for an end.
func (e *env) taskEnd(ctx context.Context, hash string, wait bool) func() (string, bool) {
	return func() (msg string, over bool) {
		_ = e.mgr.Look(func(st *core.State) {
			t := st.Processes[hash]
			switch {
			case t == nil:
				msg, over = "[btl] killed", true // and forgotten
			case !wait && t.Status != nil && t.Status.Ended():
				msg, over = "[btl] "+t.Status.String(), true // stopped
			case !wait:
				if s := e.mgr.Check(ctx, t); s.Ended() {
					msg, over = "[btl] "+s.String(), true
				}
			}
		})
		return msg, over
	}
}

// followFile copies what is appended to the log fl follows to w until
// ctx is done or, a final copy later, end reports true; then it prints
// end's line, if any. When the log is rotated, it finishes the old file
// and goes on with the new; a replacement of the task goes on in the same
// file, after its start marker.
func followFile(ctx context.Context, fl *logread.Follower, w io.Writer, end func() (string, bool)) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	n, msg := 0, ""
	over, err := fl.Run(ctx, w, tick.C, func() bool {
		n++
		if (n-1)%endCheck != 0 {
			return false
		}
		m, done := end()
		msg = m
		return done
	})
	if err != nil || !over {
		return err
	}
	if sw, ok := w.(*stampWriter); ok {
		// The end line is btl's, not the log's: no time.
		_ = sw.flush()
		w = sw.w
	}
	if msg != "" {
		fmt.Fprintln(w, msg)
	}
	return nil
}

func humanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
}

// notRegular is the error for a log path that holds something other than
// a regular file.
func notRegular(path string) error {
	return fmt.Errorf("open log: %s: %w; remove it", path, regular.ErrNotRegular)
}
