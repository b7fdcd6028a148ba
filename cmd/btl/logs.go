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
)

func newLogsCmd(e *env) *cobra.Command {
	var lines int
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [hash]",
		Short: "List log files, or print one task's log",
		Long: `Without a hash, list the log files btl keeps. With a hash (any unique prefix
of at least 4 characters), print that task's log; -n prints only the last
lines, -f keeps printing what the task writes until interrupted.`,
		Example: "  btl logs\n  btl logs 93b8\n  btl logs 93b8 -n 50 -f",
		Args:    cobra.MaximumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return e.completeHashes(cmd, args, prefix)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				if follow || cmd.Flags().Changed("lines") {
					return usageError("-n and -f need a hash (see btl logs)")
				}
				return e.listLogs()
			}
			if lines < 0 {
				return usageError("-n takes a number of lines, 0 or more")
			}
			return e.printLog(cmd.Context(), args[0], lines, cmd.Flags().Changed("lines"), follow)
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 0, "print only the last N lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
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
	st, _ := e.mgr.Store.Read()
	fmt.Fprintln(e.stdout, "Available logs:")
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	now := time.Now()
	for _, l := range logs {
		cmd := ""
		if st != nil && st.Processes[l.hash] != nil {
			cmd = printable(st.Processes[l.hash].Command)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.hash, humanSize(l.fi.Size()), ago(now, l.fi.ModTime()), cmd)
	}
	return tw.Flush()
}

// findLog resolves a hash prefix against the tracked tasks and, for tasks
// no longer tracked, against the log files.
func (e *env) findLog(prefix string) (*core.Task, string, error) {
	st, err := e.mgr.Store.Read()
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

func (e *env) printLog(ctx context.Context, prefix string, n int, tailOnly, follow bool) error {
	t, path, err := e.findLog(prefix)
	if err != nil {
		return err
	}
	if t != nil {
		if ls, ok := e.mgr.Backend.(core.LogSyncer); ok && t.Backend == e.mgr.Backend.Name() {
			if err := ls.SyncLog(ctx, *t); err != nil {
				fmt.Fprintf(e.stderr, "Warning: log may be incomplete: %v\n", err)
			}
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && follow {
		f, err = waitFile(ctx, path)
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer func() { f.Close() }()
	if tailOnly {
		if err := seekLastLines(f, n); err != nil {
			return err
		}
	}
	if _, err := io.Copy(e.stdout, f); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	return followFile(ctx, &f, path, e.stdout)
}

// waitFile waits for path to appear.
func waitFile(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.Open(path)
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

// followFile copies what is appended to *f to w until ctx is done. When
// the log is rotated, it finishes the old file and goes on with the new.
func followFile(ctx context.Context, f **os.File, path string, w io.Writer) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := io.Copy(w, *f); err != nil {
			return err
		}
		cur, err := (*f).Stat()
		if err != nil {
			return err
		}
		if pos, _ := (*f).Seek(0, io.SeekCurrent); cur.Size() < pos {
			(*f).Seek(0, io.SeekStart) // truncated
			continue
		}
		if fi, err := os.Stat(path); err == nil && !os.SameFile(fi, cur) {
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			io.Copy(w, *f)
			(*f).Close()
			*f = nf
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
