// Package coretest holds the conformance suite that every btl backend
// runs, so that start, replace, tree kill, exit status, environment,
// working directory and logs mean the same thing on all of them.
package coretest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/core"
	"btl/internal/proc"
	"btl/internal/proc/proctest"
)

// Setup returns a fresh backend and the directories it uses, for one test.
type Setup func(t *testing.T) (core.Backend, core.Dirs)

type test struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// treeTests stop whole trees; RunHiddenEnv runs them again without
// environments.
var treeTests = []test{
	{"StopTree", testStopTree},
	{"StopSetsidGrandchild", testStopSetsidGrandchild},
	{"StopDaemonized", testStopDaemonized},
	{"StopEscapedWithoutEnv", testStopEscapedWithoutEnv},
	{"StopIgnoresTERM", testStopIgnoresTERM},
	{"StopExited", testStopExited},
	{"ReplaceLeavesOne", testReplaceLeavesOne},
}

// Run runs the conformance suite against the backend made by setup.
func Run(t *testing.T, setup Setup) {
	tests := append([]test{
		{"StartEnvCwdAndLog", testStartEnvCwdAndLog},
		{"ExecFailure", testExecFailure},
		{"ExitCode", testExitCode},
		{"RestartsInARow", testRestartsInARow},
		{"LogAppendsAcrossRuns", testLogAppends},
	}, treeTests...)
	run(t, setup, tests, nil)
}

// hiddenEnv marks the processes whose environments RunHiddenEnv hides.
const hiddenEnv = "BTL_CONFORMANCE_HIDDEN_ENV=1"

// RunHiddenEnv runs the tree-stopping part of the suite with the
// environments of the tasks' processes unreadable to btl's process scanner
// (see proctest.HideEnvWhere), as macOS makes those of restricted programs such
// as /bin/sh and /bin/sleep: trees must then be found by process group and
// parent PID alone. btl's own helper processes keep readable environments,
// as they do on macOS. Without environments, a daemonized descendant
// (orphaned: its parent exited) is found only by a backend that keeps
// orphans in the task's tree, such as a child subreaper or a cgroup.
func RunHiddenEnv(t *testing.T, setup Setup) {
	proctest.HideEnvWhere(func(env [][]byte) bool {
		return slices.ContainsFunc(env, func(e []byte) bool { return string(e) == hiddenEnv })
	})
	run(t, setup, treeTests, []string{hiddenEnv})
}

func run(t *testing.T, setup Setup, tests []test, env []string) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, dirs := setup(t)
			h := &harness{b: b, dirs: dirs, extraEnv: env, m: &core.Manager{
				Store:   &core.Store{Dir: dirs.Data},
				Dirs:    dirs,
				Backend: b,
			}}
			tc.fn(t, h)
		})
	}
}

type harness struct {
	b        core.Backend
	dirs     core.Dirs
	m        *core.Manager
	extraEnv []string // in every task's environment
}

// env is the environment tasks are started with.
func (h *harness) env(extra ...string) []string {
	return append(append(os.Environ(), h.extraEnv...), extra...)
}

// spec prepares argv to run in a new temporary directory.
func (h *harness) spec(t *testing.T, argv ...string) core.Spec {
	t.Helper()
	return h.specEnv(t, nil, argv...)
}

// specEnv is spec with extra environment entries.
func (h *harness) specEnv(t *testing.T, env []string, argv ...string) core.Spec {
	t.Helper()
	dir := t.TempDir()
	s, err := h.m.Prepare(argv, dir, h.env(env...))
	if err != nil {
		t.Fatalf("prepare %q: %v", argv, err)
	}
	return s
}

// start starts spec with the backend directly and stops it at cleanup.
func (h *harness) start(t *testing.T, s core.Spec) core.Task {
	t.Helper()
	ctx := context.Background()
	got, err := h.b.Start(ctx, s)
	if err != nil {
		t.Fatalf("start %q: %v", s.Argv, err)
	}
	task := got.Task(s, h.b.Name())
	task.UserID = os.Getuid()
	t.Cleanup(func() { h.stop(task) })
	if task.PID <= 0 {
		t.Fatalf("start %q: no PID (%+v)", s.Argv, task)
	}
	return task
}

// stop stops task at the end of a test and waits for its helper process,
// if it has one, to finish writing its records.
func (h *harness) stop(task core.Task) {
	_ = h.b.Stop(context.Background(), task, 100*time.Millisecond)
	if task.Helper == nil {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); task.Helper.Verify() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// log returns the task's log file content, synced first where needed.
func (h *harness) log(t *testing.T, task core.Task) string {
	t.Helper()
	if ls, ok := h.b.(core.LogSyncer); ok {
		if err := ls.SyncLog(context.Background(), task); err != nil {
			t.Fatalf("sync log: %v", err)
		}
	}
	b, err := os.ReadFile(task.LogFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// waitLog waits until the task's log contains want and returns the log.
func (h *harness) waitLog(t *testing.T, task core.Task, want string) string {
	t.Helper()
	var got string
	Eventually(t, 10*time.Second, "log to contain "+strconv.Quote(want), func() bool {
		got = h.log(t, task)
		return strings.Contains(got, want)
	})
	return got
}

// TaskOutput returns a log's content without btl's start markers: what the
// task itself wrote.
func TaskOutput(log string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(log, "\n") {
		if _, ok := core.ParseStartMarker(line); !ok {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Eventually polls cond every few milliseconds until it holds, and fails
// the test when it does not within d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Missing ends a test that lacks something it needs from its environment
// (a tool, a file system, a variable make test sets): with CI set, as
// .ci/run sets it, the test fails, because CI must provide everything;
// elsewhere it skips with the same message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FullFS returns the small file system named by BTL_TEST_FULLFS, which
// make test mounts for tests that fill a disk, and holds it for the test
// alone until the test ends: tests of several packages run at once, and
// one's filler would break another's. Without it, the test ends as
// Missing says.
func FullFS(t testing.TB) string {
	t.Helper()
	fs := os.Getenv("BTL_TEST_FULLFS")
	if fs == "" {
		Missing(t, "BTL_TEST_FULLFS is not set: make test mounts a small tmpfs for this test when run as root")
	}
	f, err := os.OpenFile(filepath.Join(fs, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("lock %s: %v", fs, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("lock %s: %v", fs, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return fs
}

// Alive reports whether pid is a live process (not a zombie).
func Alive(pid int) bool {
	info, err := proc.LookupProc(pid)
	return err == nil && !info.Zombie
}

// readPIDs waits for file to hold n PIDs, one a line, and returns them.
func readPIDs(t *testing.T, file string, n int) []int {
	t.Helper()
	var pids []int
	Eventually(t, 10*time.Second, "PIDs in "+file, func() bool {
		b, _ := os.ReadFile(file)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		return len(pids) >= n
	})
	return pids
}

func testStartEnvCwdAndLog(t *testing.T, h *harness) {
	s := h.specEnv(t, []string{"BTL_CONFORMANCE=caller's value"}, "sh", "-c", `echo "cwd=$(pwd)"; echo "var=$BTL_CONFORMANCE"; echo "hash=$BTL_HASH"; echo oops >&2; exec sleep 60`)
	task := h.start(t, s)
	got := h.waitLog(t, task, "oops\n")
	if !strings.HasPrefix(got, core.MarkerPrefix) || !strings.Contains(strings.SplitN(got, "\n", 2)[0], " started PID "+strconv.Itoa(task.PID)+": "+s.Command) {
		t.Errorf("log does not start with the run's start marker; log:\n%s", got)
	}
	for _, want := range []string{"cwd=" + s.Dir + "\n", "var=caller's value\n", "hash=" + s.Hash + "\n", "oops\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q; log:\n%s", want, got)
		}
	}
	st, err := h.b.Inspect(context.Background(), task)
	if err != nil || st.State != core.Running {
		info, lerr := proc.LookupProc(task.PID)
		t.Fatalf("Inspect = %+v, %v; want running (task %+v, proc %+v %v, uid %d)", st, err, task, info, lerr, os.Getuid())
	}
	if !Alive(task.PID) {
		t.Fatalf("PID %d reported but not alive", task.PID)
	}
}

func testExecFailure(t *testing.T, h *harness) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "script")
	_ = os.WriteFile(noexec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing"), core.ErrNotFound},
		{noexec, core.ErrNotExecutable},
		{dir, core.ErrIsDir},
	} {
		s := h.spec(t, "true")
		s.Argv[0], s.Path = tc.path, tc.path
		_, err := h.b.Start(context.Background(), s)
		var ee *core.ExecError
		if !errors.As(err, &ee) || !errors.Is(err, tc.want) {
			t.Errorf("Start(%s) = %v; want *core.ExecError wrapping %v", tc.path, err, tc.want)
		}
	}
}

func testExitCode(t *testing.T, h *harness) {
	task := h.start(t, h.spec(t, "sh", "-c", "echo bye; exit 3"))
	var st core.Status
	Eventually(t, 10*time.Second, "task to exit", func() bool {
		st, _ = h.b.Inspect(context.Background(), task)
		return st.State != core.Running
	})
	if st.State != core.Exited || st.Code != 3 {
		t.Fatalf("Inspect = %+v; want exited 3", st)
	}
	h.waitLog(t, task, "bye\n")
}

// testRestartsInARow: a task that fails at once under on-failure:2 runs
// three times, each run with its start marker, and then ends in a crash
// loop: its last run's exit code, its two restarts, the last exit.
func testRestartsInARow(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", "echo run; exit 3")
	s.Restart = core.RestartPolicy{Mode: core.RestartOnFailure, Max: 2}
	task := h.start(t, s)
	var st core.Status
	Eventually(t, 30*time.Second, "the crash loop", func() bool {
		st, _ = h.b.Inspect(context.Background(), task)
		return st.Ended()
	})
	want := core.Status{State: core.Exited, Code: 3, Restarts: 2, LastExit: "exited 3", CrashLoop: true}
	if st.PID <= 0 {
		t.Errorf("Inspect = %+v; want the last run's PID", st)
	}
	st.PID = 0
	if st != want {
		t.Fatalf("Inspect = %+v; want %+v", st, want)
	}
	// The start marker of a run the service manager restarted may reach
	// the log after the run's first lines (systemd: the log agent writes
	// it when it hears of the run).
	Eventually(t, 10*time.Second, "the output and the start markers of the 3 runs", func() bool {
		log := h.log(t, task)
		return TaskOutput(log) == "run\nrun\nrun\n" && strings.Count(log, core.MarkerPrefix) == 3
	})
}

func testStopTree(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", `sleep 100 & echo $! > pids; sleep 100 & echo $! >> pids; wait`)
	task := h.start(t, s)
	pids := readPIDs(t, filepath.Join(s.Dir, "pids"), 2)
	if err := h.b.Stop(context.Background(), task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range append(pids, task.PID) {
		if Alive(p) {
			t.Errorf("process %d survived Stop", p)
		}
	}
	st, _ := h.b.Inspect(context.Background(), task)
	if st.State == core.Running {
		t.Errorf("Inspect after Stop = %+v", st)
	}
}

func testStopSetsidGrandchild(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", `setsid sh -c 'echo $$ > pids; exec sleep 100' & sleep 100`)
	task := h.start(t, s)
	pids := readPIDs(t, filepath.Join(s.Dir, "pids"), 1)
	if err := h.b.Stop(context.Background(), task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Alive(pids[0]) {
		t.Errorf("grandchild %d that called setsid survived Stop", pids[0])
	}
}

// testStopDaemonized stops a task whose child daemonized the classic way:
// fork, setsid, fork again, parent exits, stdio closed.
func testStopDaemonized(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", `(setsid sh -c 'sh -c "echo \$\$ > pids; exec sleep 100" </dev/null >/dev/null 2>&1 &' &); exec sleep 100`)
	task := h.start(t, s)
	pids := readPIDs(t, filepath.Join(s.Dir, "pids"), 1)
	if err := h.b.Stop(context.Background(), task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Alive(pids[0]) {
		t.Errorf("daemonized descendant %d survived Stop", pids[0])
	}
}

// testStopEscapedWithoutEnv stops a task whose child left the process
// group and dropped its environment (so it carries no token), as Node's
// spawn(..., {detached: true, env: {...}}) does.
func testStopEscapedWithoutEnv(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", `setsid env -i /bin/sh -c 'echo $$ > pids; exec sleep 906' & sleep 900`)
	task := h.start(t, s)
	pids := readPIDs(t, filepath.Join(s.Dir, "pids"), 1)
	if err := h.b.Stop(context.Background(), task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Alive(pids[0]) {
		t.Errorf("child %d that left the group and dropped its environment survived Stop", pids[0])
	}
}

func testStopIgnoresTERM(t *testing.T, h *harness) {
	s := h.spec(t, "sh", "-c", `trap '' TERM; echo ready > ready; while :; do sleep 1; done`)
	task := h.start(t, s)
	Eventually(t, 10*time.Second, "task ready", func() bool {
		_, err := os.Stat(filepath.Join(s.Dir, "ready"))
		return err == nil
	})
	if err := h.b.Stop(context.Background(), task, 300*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Alive(task.PID) {
		t.Fatalf("task ignoring SIGTERM survived Stop")
	}
}

func testStopExited(t *testing.T, h *harness) {
	task := h.start(t, h.spec(t, "true"))
	Eventually(t, 10*time.Second, "task to exit", func() bool {
		st, _ := h.b.Inspect(context.Background(), task)
		return st.State != core.Running
	})
	if err := h.b.Stop(context.Background(), task, core.Grace); err != nil {
		t.Fatalf("Stop of an exited task: %v", err)
	}
}

func testReplaceLeavesOne(t *testing.T, h *harness) {
	ctx := context.Background()
	dir := t.TempDir()
	argv := []string{"sh", "-c", `echo $$ >> pids; exec sleep 100`}
	var first *core.Task
	for i := range 3 {
		s, err := h.m.Prepare(argv, dir, h.env())
		if err != nil {
			t.Fatal(err)
		}
		started, replaced, err := h.m.Run(ctx, s)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		t.Cleanup(func() { h.stop(*started) })
		if i == 0 {
			first = started
			if replaced != nil {
				t.Fatalf("first run replaced %+v", replaced)
			}
		} else if replaced == nil {
			t.Fatalf("run %d did not report replacing the running instance", i)
		}
		readPIDs(t, filepath.Join(dir, "pids"), i+1)
	}
	pids := readPIDs(t, filepath.Join(dir, "pids"), 3)
	for _, p := range pids[:2] {
		if Alive(p) {
			t.Errorf("replaced instance %d still alive", p)
		}
	}
	if !Alive(pids[2]) {
		t.Errorf("newest instance %d not alive", pids[2])
	}
	st, err := h.m.Store.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Processes) != 1 || st.Processes[first.Hash] == nil {
		t.Fatalf("state has %d entries, want exactly one for %s", len(st.Processes), first.Hash)
	}
	if got := st.Processes[first.Hash].PID; got == first.PID {
		t.Errorf("state still points at the first instance %d", got)
	}
}

func testLogAppends(t *testing.T, h *harness) {
	ctx := context.Background()
	dir := t.TempDir()
	for i, word := range []string{"first", "second"} {
		s, err := h.m.Prepare([]string{"sh", "-c", "echo run-$RUN; sleep 100"}, dir, h.env("RUN="+word))
		if err != nil {
			t.Fatal(err)
		}
		task, _, err := h.m.Run(ctx, s)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		t.Cleanup(func() { h.stop(*task) })
		got := h.waitLog(t, *task, "run-"+word+"\n")
		if i == 1 && !strings.Contains(got, "run-first\n") {
			t.Errorf("replacement lost the first run's output; log:\n%s", got)
		}
	}
}
