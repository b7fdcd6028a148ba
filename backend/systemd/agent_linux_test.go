package systemd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/backend/systemd"
	"btl/core"
	"btl/core/coretest"
)

// agentPID is the main PID of the data directory's log agent, 0 when it
// does not run.
func agentPID(t *testing.T, dirs core.Dirs) int {
	t.Helper()
	pid, _ := strconv.Atoi(show(t, systemd.AgentUnitName(dirs.Run), "MainPID")["MainPID"])
	return pid
}

// cpuTicks is the CPU time (user and system, in clock ticks) that pid
// and its live children have used.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	total := 0
	pids := []int{pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// utime and stime are fields 14 and 15 of stat; f starts at 3.
		for _, i := range []int{11, 12} {
			n, _ := strconv.Atoi(f[i])
			total += n
		}
	}
	return total
}

// An idle log agent costs nothing: after 20 tasks were started and killed
// (each left a stopped unit behind it for a moment) and with one task
// running silently, the agent and its journalctl use almost no CPU. The
// agent used to read each stopped unit again on every signal it caused,
// loading it again: a storm of hundreds of calls a second that lasted as
// long as the agent lived.
//
// Not parallel: the agent hears every unit change of the user manager, and
// this measures it while no other test of this package changes units.
func TestIdleAgentCostsNothing(t *testing.T) {
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	run(t, m, t.TempDir(), nil, "sleep", "1000")
	for i := range 20 {
		task := run(t, m, t.TempDir(), nil, "sh", "-c", fmt.Sprintf("echo %d; exec sleep 1000", i))
		if _, err := m.Kill(context.Background(), []string{task.Hash}, false); err != nil {
			t.Fatal(err)
		}
	}
	pid := agentPID(t, dirs)
	if pid == 0 {
		t.Fatal("no log agent runs while a task does")
	}
	// The last kill's signals settle within a moment; then nothing is due.
	time.Sleep(time.Second)
	before := cpuTicks(t, pid)
	const window = 5 * time.Second
	time.Sleep(window)
	used := cpuTicks(t, pid) - before
	// 25 ticks (0.25 s at 100 Hz) in 5 s is 5% of a core: the storm used
	// 27-39% of one.
	if used > 25 {
		t.Errorf("the idle log agent used %d clock ticks of CPU in %v", used, window)
	}
	if agentPID(t, dirs) != pid {
		t.Errorf("the log agent was restarted while idle (PID %d, now %d)", pid, agentPID(t, dirs))
	}
}

// A replace never loses the task, however many tasks run: the stopped
// unit is unloaded at once (nothing holds a reference on it), so the new
// instance starts.
func TestReplaceAtScaleNeverLosesTask(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	for i := range 40 {
		run(t, m, t.TempDir(), nil, "sleep", strconv.Itoa(2000+i))
	}
	dir := t.TempDir()
	prev := run(t, m, dir, nil, "sleep", "1999")
	for i := range 20 {
		next := run(t, m, dir, nil, "sleep", "1999")
		if next.Token == prev.Token {
			t.Fatalf("replace %d returned the old instance", i)
		}
		if coretest.Alive(prev.PID) {
			t.Errorf("replace %d: the old instance (PID %d) still runs", i, prev.PID)
		}
		st, err := b.Inspect(context.Background(), *next)
		if err != nil || st.State != core.Running {
			t.Fatalf("replace %d: the new instance is %+v, %v; want running", i, st, err)
		}
		prev = next
	}
	st, err := m.Store.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Processes[prev.Hash]; got == nil || got.Token != prev.Token {
		t.Errorf("the state lost the replaced task: %+v", got)
	}
}

// One task's broken cursor file (a FIFO in its place) costs that task's
// mirror only: it is said once in that task's log, nothing hangs, and the
// other tasks' output still reaches their logs.
func TestFIFOCursorCostsOnlyThatTask(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	ticker := `i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.05; done`
	bad := run(t, m, t.TempDir(), nil, "sh", "-c", ticker)
	good := run(t, m, t.TempDir(), nil, "sh", "-c", ticker)
	waitFile(t, bad.LogFile, "tick3\n")
	// The FIFO takes the cursor's place at once (the agent rewrites the
	// cursor after each copy, so a remove then mkfifo could race it).
	cursor := filepath.Join(dirs.Run, bad.Hash+".cursor")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo, cursor); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(readLog(t, good.LogFile), "\n")
	coretest.Eventually(t, 10*time.Second, "the other task's new lines in its log", func() bool {
		return strings.Count(readLog(t, good.LogFile), "\n") > n+10
	})
	waitFile(t, bad.LogFile, "the journal cannot be copied here")
	done := make(chan error, 1)
	go func() { done <- b.SyncLog(context.Background(), *bad) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("SyncLog with a FIFO as the cursor: no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SyncLog hangs on a FIFO cursor")
	}
	if st, err := b.Inspect(context.Background(), *bad); err != nil || st.State != core.Running {
		t.Errorf("the task with the broken cursor: %+v, %v; want running", st, err)
	}
}

// The log agent is restarted however often it is killed (no start limit
// can leave mirroring off), and a running task's output still reaches its
// log afterwards without any btl command.
func TestAgentKilledTenTimesStillMirrors(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	dir := t.TempDir()
	task := run(t, manager(b, dirs), dir, nil, "sh", "-c", `while :; do [ -e go ] && echo go-seen; sleep 0.05; done`)
	for i := range 10 {
		var pid int
		coretest.Eventually(t, 10*time.Second, "the log agent to run", func() bool {
			pid = agentPID(t, dirs)
			return pid != 0 && coretest.Alive(pid)
		})
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d of the agent: %v", i+1, err)
		}
		coretest.Eventually(t, 10*time.Second, "the log agent to be restarted", func() bool {
			p := agentPID(t, dirs)
			return p != 0 && p != pid
		})
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFile(t, task.LogFile, "go-seen\n")
}

// Two data directories that run the same command in the same directory
// have two tasks: two units, neither stopped by the other's start, and each
// log has only its own task's output.
func TestTwoDataDirectoriesApart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	argv := []string{"sh", "-c", `echo "run $BTL_INSTANCE"; exec sleep 100`}
	bA, dirsA := newBackend(t)
	a := run(t, manager(bA, dirsA), dir, nil, argv...)
	bB, dirsB := newBackend(t)
	b := run(t, manager(bB, dirsB), dir, nil, argv...)
	if a.Hash != b.Hash || a.Unit == b.Unit {
		t.Fatalf("hashes %s, %s; units %s, %s: want one hash, two units", a.Hash, b.Hash, a.Unit, b.Unit)
	}
	if !coretest.Alive(a.PID) {
		t.Fatalf("the start in the second data directory stopped the first one's task (PID %d)", a.PID)
	}
	waitFile(t, a.LogFile, "run "+a.Token+"\n")
	waitFile(t, b.LogFile, "run "+b.Token+"\n")
	for _, c := range []struct {
		be        *systemd.Backend
		task      *core.Task
		other     string
		otherName string
	}{{bA, a, b.Token, "second"}, {bB, b, a.Token, "first"}} {
		if err := c.be.SyncLog(context.Background(), *c.task); err != nil {
			t.Fatal(err)
		}
		if log := readLog(t, c.task.LogFile); strings.Contains(log, c.other) {
			t.Errorf("%s has the %s data directory's output:\n%s", c.task.LogFile, c.otherName, log)
		}
	}
	for _, c := range []struct {
		be   *systemd.Backend
		task *core.Task
	}{{bA, a}, {bB, b}} {
		listed, err := c.be.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range listed {
			if l.Hash == a.Hash {
				n++
				if l.Token != c.task.Token {
					t.Errorf("%s lists the other data directory's task %s", c.task.Unit, l.Unit)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: List shows %d tasks of the hash, want 1", c.task.Unit, n)
		}
	}
}

// A task whose main process exits while a child it started runs on (a
// daemonising program) is running, with its main process exited, as on
// fork: listed, found again after state.json is lost, and stopped whole.
func TestDaemonisingMainRuns(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	task := run(t, m, dir, nil, "sh", "-c", `(while :; do echo child-tick; sleep 0.1; done) & echo $! > child; echo started; exit 0`)
	var child int
	coretest.Eventually(t, 10*time.Second, "the child's PID", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "child"))
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return child != 0
	})
	coretest.Eventually(t, 10*time.Second, "the main process to exit", func() bool {
		return !coretest.Alive(task.PID)
	})
	st, err := b.Inspect(context.Background(), *task)
	if err != nil || st.State != core.Running || !st.MainExited || st.String() != "running (main exited)" {
		t.Errorf("Inspect = %+v (%q), %v; want running (main exited)", st, st.String(), err)
	}
	// The child's output still reaches the log, with no btl command: the
	// log agent stays while the unit's cgroup has processes (it would
	// otherwise leave once its drain after the main process ended is over).
	time.Sleep(systemd.AgentDrain + time.Second) // past the agent's drain, had it seen no task
	n := strings.Count(readLog(t, task.LogFile), "child-tick")
	coretest.Eventually(t, 10*time.Second, "the child's new lines in the log", func() bool {
		return strings.Count(readLog(t, task.LogFile), "child-tick") > n+5
	})
	if err := os.Remove(m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	views, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v := viewOf(t, views, task.Hash); !v.Status.Alive() || !v.Status.MainExited {
		t.Errorf("after state.json was lost, list shows %+v", v.Status)
	}
	if err := b.Stop(context.Background(), *task, time.Second); err != nil {
		t.Fatal(err)
	}
	if coretest.Alive(child) {
		t.Errorf("the child (PID %d) runs after the stop", child)
	}
}

// A task that runs under a derived hash (its hash was taken by another
// task) is found again after state.json is lost.
func TestListReadoptsDerivedHash(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	m := manager(b, dirs)
	dir := t.TempDir()
	s, err := m.Prepare([]string{"sleep", "977"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	derived := core.DerivedHash(s.Dir, s.Command, 1)
	s.Token = derived + strings.TrimPrefix(s.Token, s.Hash)
	s.Hash = derived
	s.Env = core.Setenv(core.Setenv(s.Env, core.EnvHash, derived), core.EnvInstance, s.Token)
	s.LogFile = dirs.LogFile(derived)
	noUnitsLeft(t, dirs.Run, derived)
	started, err := b.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	task := started.Task(s, systemd.Name)
	defer b.Stop(context.Background(), task, time.Second)
	listed, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listed {
		if l.Hash == derived {
			if l.Token != s.Token || l.PID != task.PID {
				t.Errorf("re-adopted %+v; want token %s, PID %d", l, s.Token, task.PID)
			}
			return
		}
	}
	t.Errorf("List does not find the task under its derived hash %s", derived)
}

// An agent systemd cannot execute (its binary removed, as by an
// uninstall) is not restarted in a loop; the next btl command that needs
// an agent starts one with its own binary.
func TestAgentWithoutBinaryDoesNotLoop(t *testing.T) {
	t.Parallel()
	b, dirs := newBackend(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "btl-copy")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	systemd.SetExe(b, copied)
	task := run(t, manager(b, dirs), t.TempDir(), nil, "sleep", "978")
	pid := agentPID(t, dirs)
	if pid == 0 {
		t.Fatal("no log agent")
	}
	if err := os.Remove(copied); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// It fails to execute once and is collected (CollectMode), instead of
	// being restarted every 100 ms for good. (systemctl show would load
	// the unit to answer: list-units shows what the manager holds.)
	agent := systemd.AgentUnitName(dirs.Run)
	loaded := func() bool {
		return strings.Contains(systemctl(t, "list-units", "--all", "--plain", "--no-legend", agent), agent)
	}
	coretest.Eventually(t, 10*time.Second, agent+" to be given up", func() bool { return !loaded() })
	for range 10 { // ten restart delays: no restart may come
		time.Sleep(100 * time.Millisecond)
		if loaded() {
			t.Fatalf("%s is started again after its binary went", agent)
		}
	}
	// A btl command with a binary of its own brings mirroring back.
	other, err := systemd.New(dirs)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if st, err := other.Inspect(context.Background(), *task); err != nil || st.State != core.Running {
		t.Fatalf("Inspect = %+v, %v", st, err)
	}
	coretest.Eventually(t, 10*time.Second, "a new log agent", func() bool {
		p := agentPID(t, dirs)
		return p != 0 && p != pid && coretest.Alive(p)
	})
}
