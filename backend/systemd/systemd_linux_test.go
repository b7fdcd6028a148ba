package systemd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"btl/backend/fork"
	"btl/backend/systemd"
	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
	"btl/internal/proc/proctest"
	"btl/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// newBackend connects to the user manager, or skips the test when there is
// none (fails it under BTL_REQUIRE_SYSTEMD=1).
func newBackend(t *testing.T) (*systemd.Backend, core.Dirs) {
	t.Helper()
	dirs := core.DirsAt(t.TempDir())
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	b, err := systemd.New(dirs)
	if err != nil {
		if !errors.Is(err, systemd.ErrUnavailable) {
			t.Fatalf("New returned %v, which does not wrap ErrUnavailable", err)
		}
		msg := fmt.Sprintf("no systemd user manager: %v (as root: scripts/systemd-session start, then go test -exec scripts/asuser)", err)
		if os.Getenv("BTL_REQUIRE_SYSTEMD") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { b.Close() })
	t.Cleanup(func() {
		// The log agent exits by itself once the test's tasks are gone
		// and forgotten (as btl kill forgets them: their cursors go);
		// wait for it before the test's directories are removed.
		cursors, _ := filepath.Glob(filepath.Join(dirs.Run, "*.cursor"))
		for _, c := range cursors {
			os.Remove(c)
		}
		agent := systemd.AgentUnitName(dirs.Run)
		coretest.Eventually(t, 15*time.Second, agent+" to exit by itself", func() bool {
			st := show(t, agent, "ActiveState")["ActiveState"]
			return st == "inactive" || st == "failed"
		})
	})
	return b, dirs
}

// manager returns a Manager starting tasks with b that can also stop and
// inspect tasks of the others.
func manager(b core.Backend, dirs core.Dirs, others ...core.Backend) *core.Manager {
	open := func(name string) (core.Backend, error) {
		for _, o := range others {
			if o.Name() == name {
				return o, nil
			}
		}
		return nil, fmt.Errorf("no backend %q", name)
	}
	return &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b, Open: open}
}

// run starts argv in dir through the manager, as `btl` does, and stops the
// task and checks that no unit is left at cleanup.
func run(t *testing.T, m *core.Manager, dir string, env []string, argv ...string) *core.Task {
	t.Helper()
	s, err := m.Prepare(argv, dir, append(os.Environ(), env...))
	if err != nil {
		t.Fatalf("prepare %q: %v", argv, err)
	}
	noUnitsLeft(t, m.Dirs.Run, s.Hash)
	task, _, err := m.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("run %q: %v", argv, err)
	}
	t.Cleanup(func() { m.Backend.Stop(context.Background(), *task, 100*time.Millisecond) })
	return task
}

// noUnitsLeft registers a check, run after the test's other cleanups, that
// the task unit of hash is not left running.
func noUnitsLeft(t *testing.T, run, hash string) {
	t.Cleanup(func() {
		for _, u := range []string{systemd.UnitName(run, hash)} {
			var p map[string]string
			coretest.Eventually(t, 5*time.Second, u+" to be gone", func() bool {
				p = show(t, u, "ActiveState")
				return p["ActiveState"] == "inactive" || p["ActiveState"] == "failed"
			})
		}
	})
}

// systemctl runs `systemctl --user args...` as a user would.
func systemctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl --user %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// show returns properties of unit as `systemctl --user show` prints them.
func show(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	args := []string{"show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out := map[string]string{}
	for _, line := range strings.Split(systemctl(t, args...), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// viewOf returns the view of the task with the given hash: other tests'
// units run under the same user manager, and List adopts them too.
func viewOf(t *testing.T, views []core.View, hash string) core.View {
	t.Helper()
	for _, v := range views {
		if v.Hash == hash {
			return v
		}
	}
	t.Fatalf("no task %s among %d listed", hash, len(views))
	return core.View{}
}

// journal returns the unit's messages as `journalctl --user -u` shows them.
func journal(t *testing.T, unit string) string {
	t.Helper()
	out, err := exec.Command("journalctl", "--user", "-q", "--no-pager", "-o", "cat", "-u", unit).Output()
	if err != nil {
		t.Fatalf("journalctl --user -u %s: %v", unit, err)
	}
	return string(out)
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// withoutMarkers drops the lines btl itself writes into logs ("[btl] ...").
func withoutMarkers(log string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if !strings.HasPrefix(l, "[btl] ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	var got string
	coretest.Eventually(t, 10*time.Second, path+" to contain "+strconv.Quote(want), func() bool {
		got = readLog(t, path)
		return strings.Contains(got, want)
	})
	return got
}

func TestConformance(t *testing.T) {
	coretest.Run(t, func(t *testing.T) (core.Backend, core.Dirs) {
		b, dirs := newBackend(t)
		return b, dirs
	})
}

func TestUnitVisible(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	dir := t.TempDir()
	t0 := time.Now()
	task := run(t, manager(b, dirs), dir, nil, "sleep", "100")
	t.Logf("start took %v", time.Since(t0).Round(time.Millisecond))
	p := show(t, task.Unit, "Description", "ActiveState", "MainPID", "WorkingDirectory", "KillMode", "Type")
	want := map[string]string{
		"Description":      "sleep 100",
		"ActiveState":      "active",
		"MainPID":          strconv.Itoa(task.PID),
		"WorkingDirectory": task.Cwd,
		"KillMode":         "control-group",
		"Type":             "exec",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("systemctl --user show %s: %s=%q, want %q", task.Unit, k, p[k], v)
		}
	}
	if task.Unit != systemd.UnitName(dirs.Run, task.Hash) {
		t.Errorf("Task.Unit = %q", task.Unit)
	}
	if out := systemctl(t, "list-units", "--plain", "--no-legend", "btl-*"); !strings.Contains(out, task.Unit) || !strings.Contains(out, "sleep 100") {
		t.Errorf("systemctl --user list-units 'btl-*' lacks the task:\n%s", out)
	}
	t0 = time.Now()
	if err := b.Stop(context.Background(), *task, core.Grace); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(t0).Round(time.Millisecond))
	if coretest.Alive(task.PID) {
		t.Errorf("PID %d alive after Stop", task.PID)
	}
}

func TestCallerPathEnvAndArgs(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	bin := t.TempDir()
	tool := filepath.Join(bin, "btl-test-tool")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf 'arg=%s\\n' \"$a\"; done\necho \"path=$PATH\"\necho \"cwd=$(pwd)\"\nexec sleep 100\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin + ":" + os.Getenv("PATH")
	dir := t.TempDir()
	args := []string{"$HOME", "${HOME}", "$$", "%h", "a b"}
	task := run(t, manager(b, dirs), dir, []string{"PATH=" + path}, append([]string{"btl-test-tool"}, args...)...)
	got := waitFile(t, task.LogFile, "cwd=")
	for _, a := range args {
		if !strings.Contains(got, "arg="+a+"\n") {
			t.Errorf("argument %q did not reach the program unchanged; log:\n%s", a, got)
		}
	}
	for _, want := range []string{"path=" + path + "\n", "cwd=" + dir + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q; log:\n%s", want, got)
		}
	}
}

func TestExecFailureRecordsNothing(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	// Executable, but not a format the kernel runs: only systemd's exec
	// fails (status 203/EXEC), so the start job reports it.
	os.WriteFile(filepath.Join(dir, "badformat"), []byte("\x7fELF not really\n"), 0o755)
	for _, tc := range []struct {
		argv0       string
		code        int
		prepareFail bool
	}{
		{"btl-no-such-command", 127, true},
		{"./noexec", 126, true},
		{dir, 126, true},
		{"./badformat", 126, false},
	} {
		argv := []string{tc.argv0, "x"}
		_, err := m.Prepare(argv, dir, os.Environ())
		var ee *core.ExecError
		if tc.prepareFail != (err != nil) || err != nil && (!errors.As(err, &ee) || ee.ExitCode() != tc.code) {
			t.Errorf("%s: Prepare = %v; want *core.ExecError with exit code %d: %v", tc.argv0, err, tc.code, tc.prepareFail)
			continue
		}
		// The backend checks too: a Spec whose program vanished.
		s, err := m.Prepare([]string{"true"}, dir, os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		s.Argv[0], s.Path = tc.argv0, filepath.Join(dir, tc.argv0)
		if filepath.IsAbs(tc.argv0) {
			s.Path = tc.argv0
		}
		noUnitsLeft(t, dirs.Run, s.Hash)
		_, _, err = m.Run(context.Background(), s)
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("%s: Run = %v; want *core.ExecError with exit code %d", tc.argv0, err, tc.code)
		}
		st, _ := m.Store.Read()
		if len(st.Processes) != 0 {
			t.Errorf("%s: state records %d tasks after a failed start", tc.argv0, len(st.Processes))
		}
		// What a user sees: the unit is not among the manager's units.
		// (systemctl show would load it again to answer.)
		unit := systemd.UnitName(dirs.Run, s.Hash)
		var listed string
		gone := func() bool {
			listed = systemctl(t, "list-units", "--all", "--plain", "--no-legend", unit)
			return !strings.Contains(listed, unit)
		}
		for deadline := time.Now().Add(5 * time.Second); !gone() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone() {
			out, _ := exec.Command("systemctl", "--user", "show", "-p", "Refs,ActiveState,Result,ExecMainPID,ExecMainCode,ExecMainStatus", unit).CombinedOutput()
			_, ferr := os.Stat(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "systemd", "transient", unit))
			t.Errorf("%s: unit left loaded after a failed start: %s%s(transient file: %v)", tc.argv0, listed, out, ferr)
		}
	}
}

func TestStopEmptiesCgroup(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	dir := t.TempDir()
	task := run(t, manager(b, dirs), dir, nil, "sh", "-c", "setsid sleep 100 & echo $! > pid; sleep 100")
	pid := 0
	coretest.Eventually(t, 10*time.Second, "setsid child's PID", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	cg := show(t, task.Unit, "ControlGroup")["ControlGroup"]
	if cg == "" {
		t.Fatal("unit has no ControlGroup")
	}
	if info, err := proc.LookupProc(pid); err != nil || info.PGID == task.PID {
		t.Fatalf("child %d did not leave the task's process group (%+v, %v)", pid, info, err)
	}
	if err := b.Stop(context.Background(), *task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range []int{pid, task.PID} {
		if coretest.Alive(p) {
			t.Errorf("process %d survived Stop", p)
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"} {
		procs, err := os.ReadFile(filepath.Join(root, cg, "cgroup.procs"))
		if err == nil && len(bytes.TrimSpace(procs)) > 0 {
			t.Errorf("cgroup %s%s still holds %q", root, cg, procs)
		}
	}
}

// unreadableJournal points b's journalctl at a directory whose only
// journal file the user may not read: journalctl then fails exactly as it
// does with volatile storage, and btl falls back to append: logs.
func unreadableJournal(t *testing.T, b *systemd.Backend) {
	t.Helper()
	jdir := t.TempDir()
	f := filepath.Join(jdir, "system.journal")
	if err := os.WriteFile(f, []byte("LPKSHHRH"), 0o000); err != nil {
		t.Fatal(err)
	}
	systemd.SetJournalArgs(b, "--directory="+jdir)
}

// The exit status is exact however a task ends, with no process run at its
// exit or stop (no ExecStopPost), whether btl reads the journal or not.
func TestExitStatusExact(t *testing.T) {
	t.Parallel()
	sigterm := core.Status{State: core.Signaled, Signal: 15}
	for _, journal := range []string{"readable", "unreadable"} {
		t.Run(journal, func(t *testing.T) {
			t.Parallel()
			b, dirs := newBackend(t)
			if journal == "unreadable" {
				unreadableJournal(t, b)
			}
			m := manager(b, dirs)
			for _, tc := range []struct {
				name   string
				script string
				end    func(t *testing.T, task *core.Task) // nil: the task ends by itself
				want   core.Status
			}{
				{"exits 0", "exit 0", nil, core.Status{State: core.Exited, Code: 0}},
				{"exits 4", "exit 4", nil, core.Status{State: core.Exited, Code: 4}},
				{"kills itself", "kill -KILL $$", nil, core.Status{State: core.Signaled, Signal: 9}},
				{"SIGKILL from outside", "exec sleep 100", func(t *testing.T, task *core.Task) {
					syscall.Kill(task.PID, syscall.SIGKILL)
				}, core.Status{State: core.Signaled, Signal: 9}},
				{"SIGTERM from outside", "exec sleep 100", func(t *testing.T, task *core.Task) {
					syscall.Kill(task.PID, syscall.SIGTERM)
				}, sigterm},
				{"systemctl stop", "exec sleep 100", func(t *testing.T, task *core.Task) {
					systemctl(t, "stop", task.Unit)
				}, sigterm},
				{"systemctl stop, exits 3 on SIGTERM", "trap 'exit 3' TERM; sleep 100 & wait", func(t *testing.T, task *core.Task) {
					systemctl(t, "stop", task.Unit)
				}, core.Status{State: core.Exited, Code: 3}},
				{"stopped by btl (a replace, btl stop)", "exec sleep 100", func(t *testing.T, task *core.Task) {
					if err := b.Stop(context.Background(), *task, core.Grace); err != nil {
						t.Fatal(err)
					}
				}, sigterm},
			} {
				task := run(t, m, t.TempDir(), nil, "sh", "-c", tc.script)
				if p := show(t, task.Unit, "ExecStopPost"); p["ExecStopPost"] != "" {
					t.Errorf("%s: the unit has ExecStopPost=%s", tc.name, p["ExecStopPost"])
				}
				if tc.end != nil {
					coretest.Eventually(t, 10*time.Second, "the task to run", func() bool {
						st, _ := b.Inspect(context.Background(), *task)
						return st.State == core.Running
					})
					tc.end(t, task)
				}
				var st core.Status
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if st, _ = b.Inspect(context.Background(), *task); st == tc.want {
						break
					}
				}
				if st != tc.want {
					t.Errorf("%s: Inspect = %+v, want %+v", tc.name, st, tc.want)
				}
			}
		})
	}
}

func TestJournalMirroredOnce(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	task := run(t, manager(b, dirs), t.TempDir(), nil, "sh", "-c", `for i in $(seq 1 50); do echo "line $i"; done; echo "bytes \033[1mbold\033[0m"; echo to-stderr >&2; exec sleep 100`)
	var want strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	want.WriteString("bytes \033[1mbold\033[0m\nto-stderr\n")
	coretest.Eventually(t, 10*time.Second, "all lines in the journal", func() bool {
		return strings.HasSuffix(journal(t, task.Unit), "to-stderr\n")
	})
	for range 5 {
		if err := b.SyncLog(context.Background(), *task); err != nil {
			t.Fatalf("SyncLog: %v", err)
		}
	}
	log := readLog(t, task.LogFile)
	if marker := fmt.Sprintf(" started PID %d: %s\n", task.PID, task.Command); !strings.HasPrefix(log, "[btl] ") || !strings.Contains(strings.SplitAfterN(log, "\n", 2)[0], marker) {
		t.Errorf("log does not start with the start marker; log:\n%s", log)
	}
	if got := withoutMarkers(log); got != want.String() {
		t.Errorf("log after 5 syncs:\n%q\nwant:\n%q", got, want.String())
	}
	if got, j := withoutMarkers(readLog(t, task.LogFile)), journal(t, task.Unit); got != j {
		t.Errorf("log differs from journalctl --user -u:\nlog:\n%q\njournal:\n%q", got, j)
	}
}

func TestLiveLineWithinASecond(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	dir := t.TempDir()
	// The task prints live-N as soon as the file goN appears.
	task := run(t, manager(b, dirs), dir, nil, "sh", "-c", `echo started; i=0; while :; do if [ -e go$i ]; then echo live-$i; i=$((i+1)); fi; sleep 0.01; done`)
	waitFile(t, task.LogFile, "started\n")
	var worst time.Duration
	for i := range 5 {
		line := fmt.Sprintf("live-%d\n", i)
		t0 := time.Now()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("go%d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		// Only the file is read: no btl call copies anything.
		coretest.Eventually(t, 5*time.Second, line+" in the log with no btl call", func() bool {
			return strings.Contains(readLog(t, task.LogFile), line)
		})
		d := time.Since(t0)
		worst = max(worst, d)
		t.Logf("%s reached the log file in %v", strings.TrimSpace(line), d.Round(time.Millisecond))
	}
	if worst > 1200*time.Millisecond {
		t.Errorf("a live line took %v to reach the log file; want about a second at most", worst)
	}
}

// Every line a task prints reaches its log once, in order, across
// replacements, the log agent killed mid-stream (systemd restarts it, and
// it resumes from the cursor), a restart of the user manager
// (daemon-reexec) mid-stream, and a stop from outside btl.
//
// It does not run in parallel with the other tests: daemon-reexec makes
// D-Bus calls in flight fail.
func TestNoLossNoDupAcrossReplacesAgentKillReexecAndExternalStop(t *testing.T) {
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	agent := systemd.AgentUnitName(dirs.Run)
	const lines = 300
	var want strings.Builder
	var task *core.Task
	for n := range 3 {
		// Each instance streams numbered lines, then says done, and says
		// term when stopped.
		script := fmt.Sprintf(`trap 'echo run$RUN-term; exit 0' TERM; i=0; while [ $i -lt %d ]; do echo run$RUN-$i; i=$((i+1)); sleep 0.003; done; echo run$RUN-done; sleep 100 & wait`, lines)
		task = run(t, m, dir, []string{"RUN=" + strconv.Itoa(n)}, "sh", "-c", script)
		for i := range lines {
			fmt.Fprintf(&want, "run%d-%d\n", n, i)
		}
		fmt.Fprintf(&want, "run%d-done\nrun%d-term\n", n, n)
		waitFile(t, task.LogFile, fmt.Sprintf("run%d-20\n", n))
		switch n {
		case 0:
			restarts := show(t, agent, "NRestarts")["NRestarts"]
			systemctl(t, "kill", "--signal=KILL", agent)
			coretest.Eventually(t, 10*time.Second, "the agent to be restarted", func() bool {
				p := show(t, agent, "ActiveState", "NRestarts")
				return p["ActiveState"] == "active" && p["NRestarts"] != restarts
			})
		case 1:
			systemctl(t, "daemon-reexec")
		}
		// Only the agent copies here: no btl call.
		waitFile(t, task.LogFile, fmt.Sprintf("run%d-done\n", n))
	}
	systemctl(t, "stop", task.Unit)
	waitFile(t, task.LogFile, "run2-term\n")
	// SyncLog after the agent must not duplicate anything.
	if err := b.SyncLog(context.Background(), *task); err != nil {
		t.Fatal(err)
	}
	log := readLog(t, task.LogFile)
	if n := strings.Count(log, "[btl] "); n != 3 {
		t.Errorf("log has %d start markers, want 3", n)
	}
	if got := withoutMarkers(log); got != want.String() {
		t.Errorf("log %s differs from what the tasks printed:\n%s", task.LogFile, lineDiff(got, want.String()))
	}
}

// lineDiff describes the first difference between two texts, by line.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: got %q, want %q (got %d lines, want %d)", i+1, gl, wl, len(g), len(w))
		}
	}
	return "no difference"
}

func TestJournalUnreadableFallback(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	unreadableJournal(t, b)
	task := run(t, manager(b, dirs), t.TempDir(), nil, "sh", "-c", "echo direct-out; echo direct-err >&2; exec sleep 100")
	if !task.LogDirect {
		t.Fatalf("task not marked LogDirect with an unreadable journal: %+v", task)
	}
	got := waitFile(t, task.LogFile, "direct-err\n")
	if !strings.Contains(got, fmt.Sprintf(" started PID %d: ", task.PID)) {
		t.Errorf("log lacks the start marker: %q", got)
	}
	if got := withoutMarkers(got); got != "direct-out\ndirect-err\n" {
		t.Errorf("log = %q", got)
	}
	if listed, err := b.List(context.Background()); err != nil {
		t.Error(err)
	} else {
		for _, l := range listed {
			if l.Hash == task.Hash && !l.LogDirect {
				t.Errorf("List does not read the task back as LogDirect: %+v", l)
			}
		}
	}
	if j := journal(t, task.Unit); j != "" {
		t.Errorf("output of a direct task reached the journal: %q", j)
	}
	if err := b.SyncLog(context.Background(), *task); err != nil {
		t.Errorf("SyncLog of a direct task: %v", err)
	}
	if got := withoutMarkers(readLog(t, task.LogFile)); got != "direct-out\ndirect-err\n" {
		t.Errorf("log after SyncLog = %q", got)
	}
}

func TestExternalStopSeen(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	task := run(t, m, t.TempDir(), nil, "sleep", "100")
	systemctl(t, "stop", task.Unit)
	// The log agent records the end from the unit's signal, a moment
	// after systemd forgot the unit.
	var v core.View
	coretest.Eventually(t, 5*time.Second, "list to show the task killed (SIGTERM)", func() bool {
		views, err := m.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		v = viewOf(t, views, task.Hash)
		if v.Status.Alive() {
			t.Fatalf("after systemctl --user stop, list shows %+v", v.Status)
		}
		return v.Status.String() == "killed (SIGTERM)"
	})
	if coretest.Alive(task.PID) {
		t.Errorf("PID %d alive after systemctl --user stop", task.PID)
	}
}

// A task stopped from outside btl still gets its last lines copied by the
// log agent, which then exits by itself.
func TestExternalStopMirrorsLastLines(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	task := run(t, manager(b, dirs), t.TempDir(), nil, "sh", "-c", `trap 'echo final-words; exit 0' TERM; echo ready; sleep 100 & wait`)
	waitFile(t, task.LogFile, "ready\n")
	systemctl(t, "stop", task.Unit)
	// No btl call copies anything here: only the agent can.
	coretest.Eventually(t, 5*time.Second, "the line printed on SIGTERM in the log", func() bool {
		return strings.Contains(readLog(t, task.LogFile), "final-words\n")
	})
	coretest.Eventually(t, 10*time.Second, "the agent to exit", func() bool {
		return show(t, systemd.AgentUnitName(dirs.Run), "ActiveState")["ActiveState"] != "active"
	})
}

// A data directory that starts a command another one ran before (same
// directory and command: the same unit and journal identifier) copies
// none of the earlier run's lines into its own log.
func TestNewDataDirCopiesOnlyItsOwnRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	argv := []string{"sh", "-c", `echo "run $BTL_INSTANCE"; exec sleep 100`}
	bA, dirsA := newBackend(t)
	a := run(t, manager(bA, dirsA), dir, nil, argv...)
	waitFile(t, a.LogFile, "run "+a.Token+"\n")
	if err := bA.Stop(context.Background(), *a, time.Second); err != nil {
		t.Fatal(err)
	}
	bB, dirsB := newBackend(t)
	b := run(t, manager(bB, dirsB), dir, nil, argv...)
	if a.Hash != b.Hash {
		t.Fatalf("hashes differ: %s, %s", a.Hash, b.Hash)
	}
	want := "run " + b.Token + "\n"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readLog(t, b.LogFile), want) {
		if time.Now().After(deadline) {
			// What the journal holds of the task and what its log agent
			// said, to tell a line journald never wrote from one the agent
			// did not copy.
			unit := systemd.UnitName(dirsB.Run, b.Hash)
			entries, _ := exec.Command("journalctl", "--user", "--no-pager", "-o", "short-precise", "SYSLOG_IDENTIFIER="+strings.TrimSuffix(unit, ".service")).CombinedOutput()
			agent, _ := exec.Command("journalctl", "--user", "--no-pager", "-o", "short-precise", "--user-unit", systemd.AgentUnitName(dirsB.Run)).CombinedOutput()
			state, _ := exec.Command("systemctl", "--user", "show", "-p", "ActiveState,MainPID", systemd.AgentUnitName(dirsB.Run)).CombinedOutput()
			t.Fatalf("%s does not hold %q after 10s:\n%s\njournal of %s:\n%s\nlog agent (%s):\n%s", b.LogFile, want, readLog(t, b.LogFile), unit, entries, strings.TrimSpace(string(state)), agent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := bB.SyncLog(context.Background(), *b); err != nil {
		t.Fatal(err)
	}
	if log := readLog(t, b.LogFile); strings.Contains(log, a.Token) {
		t.Errorf("the second data directory's log has the first one's output:\n%s", log)
	}
}

func TestListReadoptsAfterStateLoss(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	task := run(t, m, dir, nil, "sh", "-c", "echo 'it''s $HOME'; exec sleep 100")
	if err := os.Remove(m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	views, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := viewOf(t, views, task.Hash)
	if !got.Status.Alive() || got.Hash != task.Hash || got.PID != task.PID || got.Command != task.Command ||
		got.Cwd != dir || strings.Join(got.Argv, "\x00") != strings.Join(task.Argv, "\x00") ||
		got.Token != task.Token || got.LogFile != task.LogFile || got.Backend != systemd.Name || got.ProcStart != task.ProcStart ||
		got.LogDirect != task.LogDirect {
		t.Errorf("re-adopted %+v (%v)\nwant %+v", *got.Task, got.Status, *task)
	}
	// btl with another data directory does not adopt it.
	other, _ := newBackend(t)
	ts, err := other.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ts {
		if o.Hash == task.Hash {
			t.Errorf("a backend with another data directory adopted %s", task.Unit)
		}
	}
	killed, err := m.Kill(context.Background(), []string{task.Hash[:6]}, false)
	if err != nil || len(killed) != 1 || !killed[0].Status.Alive() {
		t.Fatalf("kill of the re-adopted task = %v, %v", killed, err)
	}
	if coretest.Alive(task.PID) {
		t.Errorf("PID %d alive after kill", task.PID)
	}
}

func TestReplaceAcrossBackends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		forkIsFirst bool
	}{
		{"fork then systemd", true},
		{"systemd then fork", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, dirs := newBackend(t)
			fb := fork.New(dirs)
			forkIsFirst := tc.forkIsFirst
			tc := struct{ first, second core.Backend }{sb, fb}
			if forkIsFirst {
				tc.first, tc.second = fb, sb
			}
			dir := t.TempDir()
			script := `echo "run $RUN"; echo $$ >> pids; exec sleep 100`
			first := run(t, manager(tc.first, dirs, tc.second), dir, []string{"RUN=1"}, "sh", "-c", script)
			waitFile(t, first.LogFile, "run 1\n")
			second := run(t, manager(tc.second, dirs, tc.first), dir, []string{"RUN=2"}, "sh", "-c", script)
			if first.Hash != second.Hash {
				t.Fatalf("hashes differ: %s, %s", first.Hash, second.Hash)
			}
			if coretest.Alive(first.PID) {
				t.Errorf("%s instance %d survived its replacement", tc.first.Name(), first.PID)
			}
			if st, err := tc.second.Inspect(context.Background(), *second); err != nil || !st.Alive() {
				t.Errorf("%s instance not running: %+v, %v", tc.second.Name(), st, err)
			}
			if ls, ok := tc.second.(core.LogSyncer); ok {
				ls.SyncLog(context.Background(), *second)
			}
			got := withoutMarkers(waitFile(t, second.LogFile, "run 2\n"))
			if got != "run 1\nrun 2\n" {
				t.Errorf("log = %q, want both runs once", got)
			}
			st, _ := manager(tc.second, dirs).Store.Read()
			if len(st.Processes) != 1 || st.Processes[second.Hash].Backend != tc.second.Name() {
				t.Errorf("state = %+v", st.Processes)
			}
		})
	}
}

func TestCleanReleasesFailedUnit(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	task := run(t, m, t.TempDir(), nil, "sh", "-c", "echo failing; sleep 0.1; exit 5")
	coretest.Eventually(t, 10*time.Second, "unit to fail", func() bool {
		return show(t, task.Unit, "ActiveState")["ActiveState"] == "failed"
	})
	if out := systemctl(t, "list-units", "--failed", "--plain", "--no-legend", task.Unit); !strings.Contains(out, task.Unit) {
		t.Errorf("systemctl --user list-units --failed lacks %s:\n%s", task.Unit, out)
	}
	c, err := m.Clean(context.Background(), false)
	if err != nil || len(c.Removed) < 1 {
		t.Fatalf("Clean = %+v, %v", c, err)
	}
	coretest.Eventually(t, 5*time.Second, "unit to be forgotten", func() bool {
		return show(t, task.Unit, "LoadState")["LoadState"] == "not-found"
	})
}

// A child the task moved to a scope of its own (systemd-run --user
// --scope), out of the unit's cgroup, is stopped with the task: found by
// the task's BTL_INSTANCE token after the cgroup is stopped.
func TestStopReachesChildInOwnScope(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	if _, err := exec.LookPath("systemd-run"); err != nil {
		coretest.Missing(t, "systemd-run: %v", err)
	}
	task := run(t, manager(b, dirs), t.TempDir(), nil, "sh", "-c", "systemd-run --user --scope --quiet sh -c 'trap \"\" TERM; exec sleep 913' & exec sleep 900")
	var child core.Proc
	var scope string
	coretest.Eventually(t, 10*time.Second, "sleep 913 in a scope of its own", func() bool {
		for _, pid := range tokenPIDs(task.Token) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if strings.HasSuffix(string(cmdline), "sleep\x00913\x00") && strings.Contains(string(cg), ".scope") {
				for _, seg := range strings.FieldsFunc(string(cg), func(r rune) bool { return r == '/' || r == '\n' }) {
					if strings.HasSuffix(seg, ".scope") {
						scope = seg
					}
				}
				info, err := proc.LookupProc(pid)
				child = core.Proc{PID: pid, Start: info.Start}
				return err == nil
			}
		}
		return false
	})
	if err := b.Stop(context.Background(), *task, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if child.Verify() {
		t.Errorf("sleep 913 (PID %d), moved to its own scope, survived the stop", child.PID)
	}
	// Nothing is left in the user manager: no failed scope either.
	coretest.Eventually(t, 5*time.Second, scope+" to be forgotten", func() bool {
		return !strings.Contains(systemctl(t, "list-units", "--all", "--plain", "--no-legend", scope), scope)
	})
}

// tokenPIDs lists the live processes whose environment carries
// BTL_INSTANCE=token.
func tokenPIDs(token string) []int {
	return proctest.Carrying(os.Getuid(), core.EnvInstance+"="+token)
}

// A task's own BTL_LOG_MAX holds for the lines the agent copies, even when
// the agent was started for another task, and the log rotates on line
// boundaries: no file over the cap, no line split between two files.
func TestLogCapOnLineBoundaries(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	run(t, m, t.TempDir(), nil, "sleep", "100") // starts the agent, default cap
	const max = 1024
	task := run(t, m, t.TempDir(), []string{"BTL_LOG_MAX=1K"}, "sh", "-c",
		`i=100; while [ $i -lt 400 ]; do echo "line $i abcdefghijklmnopqrstuvwxyz"; i=$((i+1)); done; echo END; exec sleep 100`)
	coretest.Eventually(t, 20*time.Second, "END in the log", func() bool {
		return strings.HasSuffix(readLog(t, task.LogFile), "END\n")
	})
	line := regexp.MustCompile(`^(line \d+ abcdefghijklmnopqrstuvwxyz|END|\[btl\] .*)$`)
	for _, f := range []string{task.LogFile, task.LogFile + ".1"} {
		data := readLog(t, f)
		if len(data) > max {
			t.Errorf("%s is %d bytes, over the %d cap", f, len(data), max)
		}
		if !strings.HasSuffix(data, "\n") {
			t.Errorf("%s does not end with a whole line: %q", f, data)
		}
		for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
			if !line.MatchString(l) {
				t.Errorf("%s holds a split line %q", f, l)
			}
		}
	}
}

// Replacing a task again and again leaves in the run directory only the
// files one task needs: no exit record per start.
func TestRunDirDoesNotGrowWithReplaces(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	names := func() []string {
		ents, err := os.ReadDir(dirs.Run)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	var after1 []string
	for i := range 100 {
		run(t, m, dir, nil, "sleep", "100")
		if i == 0 {
			after1 = names()
		}
	}
	if got := names(); len(got) > len(after1)+1 {
		t.Errorf("after 100 replaces the run directory holds %d files:\n%s\nafter one start: %s", len(got), strings.Join(got, "\n"), strings.Join(after1, " "))
	}
}

// With the journal unreadable, output still goes through btl's capped
// writer: 30 MB under BTL_LOG_MAX=1M leave two files of at most 1 MiB,
// each of whole lines, the newest ending with the task's last line.
func TestLogCapWithUnreadableJournal(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	unreadableJournal(t, b)
	const max = 1 << 20
	const line = "0123456789 abcdefghijklmnopqrstuvwxyz\n" // 38 bytes
	task := run(t, manager(b, dirs), t.TempDir(), []string{"BTL_LOG_MAX=1M"}, "sh", "-c",
		`yes '0123456789 abcdefghijklmnopqrstuvwxyz' 2>/dev/null | head -n 830000; echo END; exec sleep 100`)
	if !task.LogDirect {
		t.Fatalf("task not marked LogDirect with an unreadable journal: %+v", task)
	}
	coretest.Eventually(t, 60*time.Second, "END in the log", func() bool {
		return strings.HasSuffix(readLog(t, task.LogFile), "END\n")
	})
	for _, f := range []string{task.LogFile, task.LogFile + ".1"} {
		data := readLog(t, f)
		if len(data) > max+len(line) {
			t.Errorf("%s is %d bytes, over the %d cap by more than a line", f, len(data), max)
		}
		if !strings.HasSuffix(data, "\n") {
			t.Errorf("%s does not end with a whole line", f)
		}
		for _, l := range strings.SplitAfter(strings.TrimSuffix(data, "\n"), "\n") {
			if l != line && l != "END" && l != line[:len(line)-1] && !strings.HasPrefix(l, "[btl] ") {
				t.Errorf("%s holds a split line %q", f, l)
				break
			}
		}
	}
}

// The memory of a task is its unit's MemoryCurrent where systemd accounts
// it; where it does not (this user manager may have no memory controller:
// MemoryCurrent "[not set]"), Memory says so and btl sums the processes.
func TestMemoryIsTheUnitsMemoryCurrent(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	task := run(t, m, t.TempDir(), nil, "sh", "-c", "exec sleep 100")
	mem, ok := b.Memory(context.Background(), *task)
	out, err := exec.Command("systemctl", "--user", "show", "-P", "MemoryCurrent", systemd.UnitName(dirs.Run, task.Hash)).Output()
	if err != nil {
		t.Fatal(err)
	}
	shown := strings.TrimSpace(string(out))
	want, perr := strconv.ParseUint(shown, 10, 64)
	switch {
	case perr != nil: // "[not set]"
		if ok {
			t.Errorf("Memory = %d, true; systemctl shows MemoryCurrent %q", mem, shown)
		}
		if u := core.TaskUsage(task); u.Memory == 0 {
			t.Errorf("no memory summed over the task's processes %v", u.PIDs)
		}
	case !ok || mem < want/2 || mem > want*2:
		t.Errorf("Memory = %d, %v; systemctl shows MemoryCurrent %d", mem, ok, want)
	}
	// Another instance's unit is not this task's.
	other := *task
	other.Token = "other"
	if _, ok := b.Memory(context.Background(), other); ok {
		t.Error("Memory of a task whose unit runs another instance")
	}
}

// A replace waits for systemd to unload the stopped unit while something
// else holds it loaded (here the test's own reference, dropped once the
// replace has stopped the old instance). The new instance runs, the old
// one is gone.
func TestReplaceWaitsForStoppedUnitToUnload(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	first := run(t, m, dir, nil, "sleep", "931")
	unit := systemd.UnitName(dirs.Run, first.Hash)
	bus, err := dbus.ConnectSessionBus()
	if err != nil {
		coretest.Missing(t, "session bus: %v", err)
	}
	defer bus.Close()
	mgr := bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	if err := mgr.Call("org.freedesktop.systemd1.Manager.RefUnit", 0, unit).Err; err != nil {
		t.Fatalf("RefUnit %s: %v", unit, err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		// Held until the replace has stopped the old instance and is
		// waiting for its unit to go.
		for coretest.Alive(first.PID) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = mgr.Call("org.freedesktop.systemd1.Manager.UnrefUnit", 0, unit).Err
	}()
	second := run(t, m, dir, nil, "sleep", "931")
	<-released
	if second.Token == first.Token {
		t.Fatalf("the replace returned the old instance %s", first.Token)
	}
	st, err := b.Inspect(context.Background(), *second)
	if err != nil || st.State != core.Running {
		t.Errorf("new instance: %v, %v; want running", st, err)
	}
	if p := (core.Proc{PID: first.PID, Start: first.ProcStart}); p.Verify() {
		t.Errorf("old instance (PID %d) still runs", first.PID)
	}
}

// btl list reads every task unit in one snapshot: listing N running tasks,
// with their status and memory, reads no unit one by one (a D-Bus round
// trip per task made a list of 300 take seconds). Each task is still
// reported as its own instance.
func TestListReadsNoUnitOneByOne(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	ctx := context.Background()
	var tasks []*core.Task
	for i := range 4 {
		tasks = append(tasks, run(t, m, t.TempDir(), nil, "sleep", strconv.Itoa(940+i)))
	}
	before := systemd.UnitReads(b)
	views, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		v := viewOf(t, views, task.Hash)
		if v.Status.State != core.Running || v.Status.PID != task.PID {
			t.Errorf("%s: %+v; want running as PID %d", task.Hash, v.Status, task.PID)
		}
		m.Memory(ctx, v.Task)
	}
	if n := systemd.UnitReads(b) - before; n != 0 {
		t.Errorf("list of %d tasks read %d units one by one; want none (one snapshot)", len(tasks), n)
	}
}

// A stop looks for escaped children (stopEscaped) without reading the
// environments of other tasks' processes: they are inside their own
// units, which its stop does not concern, so a kill or replace costs the
// same however many tasks run. (Not parallel: the environment spy is
// global to the test binary.)
func TestStopReadsNoOtherTasksEnvironment(t *testing.T) {
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	other := run(t, m, t.TempDir(), nil, "sleep", "951")
	task := run(t, m, t.TempDir(), nil, "sleep", "950")
	reads := coretest.EnvReads(t, core.EnvInstance+"="+other.Token)
	if err := b.Stop(context.Background(), *task, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if reads.Load() > 0 {
		t.Errorf("the stop of %s read the environment of the other task's process (PID %d)", task.Hash, other.PID)
	}
	if p := (core.Proc{PID: task.PID, Start: task.ProcStart}); p.Verify() {
		t.Errorf("the stopped task (PID %d) still runs", task.PID)
	}
	if st, err := b.Inspect(context.Background(), *other); err != nil || st.State != core.Running {
		t.Errorf("the other task: %v, %v; want running", st, err)
	}
}
