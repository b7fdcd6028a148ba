package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
	"btl/internal/logread"
)

// readiness is what a start waits for before it returns: --wait-port,
// --wait-log, --wait.
type readiness struct {
	port    int            // a TCP port the task's tree listens on
	anyPort bool           // any TCP port the tree listens on
	logRE   *regexp.Regexp // a line of this run's log
	timeout time.Duration
}

// waitPoll bounds the pause between two looks at a task being waited for.
const waitPoll = 20 * time.Millisecond

// waitTimeoutExit is the exit code of a start whose task was not ready in
// time, as timeout(1) has it.
const waitTimeoutExit = 124

// endedBeforeReadyExit is the exit code of a start whose task ended
// before it was ready.
const endedBeforeReadyExit = 3

// interruptedExit is the exit code of a wait ended by Ctrl-C or SIGTERM,
// as a shell reports a command killed by SIGINT.
const interruptedExit = 130

// parseWait reads the readiness flags; nil when none is given. Bad values
// are usage errors, found before anything starts.
func (e *env) parseWait(cmd *cobra.Command) (*readiness, error) {
	f := cmd.Flags()
	if !f.Changed("wait-port") && !f.Changed("wait-log") && !e.waitAny {
		if f.Changed("wait-timeout") {
			return nil, usageError("--wait-timeout needs --wait, --wait-port or --wait-log")
		}
		return nil, nil
	}
	r := &readiness{anyPort: e.waitAny, timeout: e.waitTimeout}
	if f.Changed("wait-port") {
		if e.waitPort < 1 || e.waitPort > 65535 {
			return nil, usageError("--wait-port takes a TCP port from 1 to 65535, not %d", e.waitPort)
		}
		r.port = e.waitPort
	}
	if f.Changed("wait-log") {
		re, err := regexp.Compile(e.waitLog)
		if err != nil {
			return nil, usageError("--wait-log: %v", err)
		}
		r.logRE = re
	}
	if r.timeout <= 0 {
		return nil, usageError("--wait-timeout takes a duration above 0 (such as 30s), not %v", e.waitTimeout)
	}
	return r, nil
}

// logSize is the size of the log at path, 0 when there is none yet.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitReady waits until task is ready as r says, counting from asked
// (when the backend was asked to start it). A task that ends first,
// or is not ready within r.timeout, is an error, after the last lines of
// its log on stderr; the task is left running on a timeout.
func (e *env) waitReady(ctx context.Context, task *core.Task, r *readiness, logFrom int64, asked time.Time) error {
	begun := time.Now()
	deadline := begun.Add(r.timeout)
	// Readiness counts from the moment the backend was asked to start
	// the task, before its program ran, not from when btl began to look.
	since := begun
	if !asked.IsZero() && asked.Before(begun) {
		since = asked
	}
	lw := logread.NewWatch(task.LogFile, logFrom, r.logRE)
	defer func() { _ = lw.Close() }()
	pause := time.Millisecond
	for {
		st := e.mgr.Check(ctx, task)
		if r.logRE != nil && !st.Ended() {
			_ = e.mgr.SyncLog(ctx, task)
		}
		if ready, what := r.check(task, lw); ready && !st.Ended() {
			fmt.Fprintf(e.stdout, "[btl] Ready after %.2fs: %s\n", time.Since(since).Seconds(), what)
			return nil
		}
		if st.Ended() {
			logread.Settle(task.LogFile)
			e.tellLogEnd(task, fmt.Sprintf("[btl] The process ended (%s) before it was ready; the end of its log:", st))
			e.explainPort(e.stderr, task)
			return &exitError{code: endedBeforeReadyExit, err: fmt.Errorf("task %s ended before it was ready (%s)", task.Hash, st)}
		}
		now := time.Now()
		if !now.Before(deadline) {
			_ = e.mgr.SyncLog(ctx, task)
			e.tellLogEnd(task, fmt.Sprintf("[btl] Not ready after %v; the end of its log:", r.timeout))
			return &exitError{code: waitTimeoutExit, err: fmt.Errorf("task %s was not ready within %v; it still runs (btl kill %s stops it)", task.Hash, r.timeout, task.Hash)}
		}
		t := time.NewTimer(min(pause, deadline.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			id := task.Hash
			if task.Name != "" {
				id = task.Name
			}
			return &exitError{code: interruptedExit, err: fmt.Errorf("interrupted; %s still runs (btl kill %s stops it)", id, id)}
		case <-t.C:
		}
		pause = min(pause*2, waitPoll)
	}
}

// check reports whether every condition of r holds, and says what was seen.
func (r *readiness) check(task *core.Task, lw *logread.Watch) (bool, string) {
	var seen []string
	if r.logRE != nil {
		line, ok := lw.Match()
		if !ok {
			return false, ""
		}
		seen = append(seen, "log line "+strconv.Quote(line))
	}
	if r.port != 0 || r.anyPort {
		ports := core.TaskUsage(task).Ports
		switch {
		case r.port != 0 && !slices.Contains(ports, r.port):
			return false, ""
		case r.port != 0:
			seen = append(seen, "listening on port "+strconv.Itoa(r.port))
		case len(ports) == 0:
			return false, ""
		default:
			seen = append(seen, "listening on port "+strconv.Itoa(ports[0]))
		}
	}
	return true, strings.Join(seen, ", ")
}

// tellLogEnd prints head and the last 20 lines of the task's run to stderr.
func (e *env) tellLogEnd(task *core.Task, head string) {
	writeLogEnd(e.stderr, head, logread.LastRunLines(task.LogFile, 20))
}

// writeLogEnd prints head, which ends in "; the end of its log:", and the
// lines under it; with no lines, head says the log is empty instead.
func writeLogEnd(w io.Writer, head string, lines []string) {
	if len(lines) == 0 {
		fmt.Fprintln(w, strings.TrimSuffix(head, "; the end of its log:")+"; nothing in its log")
		return
	}
	fmt.Fprintln(w, head)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", printable(l))
	}
}
