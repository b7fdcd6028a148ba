package main

import (
	"bufio"
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
		hash, ok := strings.CutSuffix(de.Name(), ".log")
		if !ok || !core.ValidHash(hash) || !de.Type().IsRegular() {
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
			log := e.dirs.LogFile(l.hash)
			if cmd = markerCommand(log); cmd == "" {
				cmd = markerCommand(log + ".1") // rotated past its marker
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.hash, humanSize(l.fi.Size()), ago(now, l.fi.ModTime()), cmd)
	}
	return tw.Flush()
}

// markerCommand returns the command named by the first start marker in
// the first lines of the log file at path, or "".
func markerCommand(path string) string {
	f, err := openLog(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if _, ok := core.ParseStartMarker(sc.Text()); ok {
			// [btl] <time> started PID <pid>: <command>
			if _, cmd, ok := strings.Cut(sc.Text(), ": "); ok {
				return cmd
			}
		}
	}
	return ""
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
	f, err := openLog(path)
	if errors.Is(err, os.ErrNotExist) && o.follow {
		f, err = waitFile(ctx, path)
	}
	if errors.Is(err, regular.ErrNotRegular) {
		return notRegular(path)
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer func() { _ = f.Close() }()
	start := int64(0)
	if !o.since.IsZero() {
		if start, err = linesSince(f, newLineClock(path), o.since); err != nil {
			return err
		}
		_, _ = f.Seek(start, io.SeekStart)
	}
	if o.tail {
		if err := seekLastLines(f, o.lines); err != nil {
			return err
		}
	}
	pos, _ := f.Seek(0, io.SeekCurrent)
	if pos < start {
		pos, _ = f.Seek(start, io.SeekStart)
	}
	var out io.Writer = e.stdout
	if o.stamps {
		out = &stampWriter{w: e.stdout, clock: newLineClock(path), off: pos}
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
	return followFile(ctx, &f, path, out, end)
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

// waitFile waits for path to appear.
func waitFile(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := openLog(path)
		if !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
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

// followFile copies what is appended to *f to w until ctx is done or, a
// final copy later, end reports true; then it prints end's line, if any.
// When the log is rotated, it finishes the old file and goes on with the
// new; a replacement of the task goes on in the same file, after its
// start marker.
func followFile(ctx context.Context, f **os.File, path string, w io.Writer, end func() (string, bool)) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for n := 0; ; n++ {
		msg, done := "", false
		if n%endCheck == 0 {
			msg, done = end()
		}
		if _, err := io.Copy(w, *f); err != nil {
			return err
		}
		if done {
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
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := (*f).Stat()
		if err != nil {
			return err
		}
		if pos, _ := (*f).Seek(0, io.SeekCurrent); cur.Size() < pos {
			_, _ = (*f).Seek(0, io.SeekStart) // truncated
			if sw, ok := w.(*stampWriter); ok {
				sw.reset()
			}
			continue
		}
		if fi, err := os.Stat(path); err == nil && !os.SameFile(fi, cur) {
			nf, err := openLog(path)
			if err != nil {
				continue
			}
			_, _ = io.Copy(w, *f)
			_ = (*f).Close()
			*f = nf
			if sw, ok := w.(*stampWriter); ok {
				sw.reset()
			}
		}
	}
}

// seekLastLines positions f at the start of its last n lines.
func seekLastLines(f *os.File, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const block = 64 << 10
	buf := make([]byte, block)
	end := size
	// A final newline ends the last line; it does not start another.
	need := n + 1
	if size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			need = n
		}
	}
	for end > 0 {
		start := max(end-block, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && err != io.EOF {
			return err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				need--
				if need == 0 {
					_, err := f.Seek(start+int64(i)+1, io.SeekStart)
					return err
				}
			}
		}
		end = start
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
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

// openLog opens a log file for reading: only a regular file, and without
// waiting, so a FIFO or device at path is an error wrapping
// regular.ErrNotRegular, never a hang.
func openLog(path string) (*os.File, error) {
	return regular.Open(path, os.O_RDONLY, 0)
}

// notRegular is the error for a log path that holds something other than
// a regular file.
func notRegular(path string) error {
	return fmt.Errorf("open log: %s: %w; remove it", path, regular.ErrNotRegular)
}
