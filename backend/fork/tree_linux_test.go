package fork_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
)

// TestStopReadsOnlyItsTree stops a task while another process of the same
// user runs beside it: the task's whole tree is gone, including a
// daemonized descendant (orphaned, in a session of its own), the other
// process lives on, and its environment was never read: finding the tree
// starts from the task's supervisor, so a stop costs the same however many
// other processes the user runs.
func TestStopReadsOnlyItsTree(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	mark := []byte("BTL_TEST_BYSTANDER=" + strconv.Itoa(os.Getpid()))
	other := exec.Command("sleep", "908")
	other.Env = append(os.Environ(), string(mark))
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	reads := coretest.EnvReads(t, string(mark))

	dir := t.TempDir()
	s, err := m.Prepare([]string{"sh", "-c", `(setsid sh -c 'echo $$ > pids; exec sleep 907' </dev/null >/dev/null 2>&1 &); exec sleep 907`}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := b.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	task := got.Task(s, b.Name())
	task.UserID = os.Getuid()
	var daemon int
	coretest.Eventually(t, 10*time.Second, "the daemonized descendant's PID", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return daemon > 0
	})
	reads.Store(0)
	if err := b.Stop(ctx, task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range []int{task.PID, daemon} {
		if coretest.Alive(p) {
			t.Errorf("process %d of the task survived Stop", p)
		}
	}
	if !coretest.Alive(other.Process.Pid) {
		t.Errorf("Stop ended process %d, which is no part of the task", other.Process.Pid)
	}
	if reads.Load() > 0 {
		t.Errorf("Stop read the environment of process %d, which is no part of the task", other.Process.Pid)
	}
}

// TestListReadsNoKnownTask lists two tasks of the state while they run:
// both are listed as running, and the environment of their supervisors was
// never read, since re-adoption looks only at processes the state does not
// already record (a list costs the same however many tasks run). Once the
// state is lost, the tasks are adopted again from their processes.
func TestListReadsNoKnownTask(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	ctx := context.Background()
	var tasks []*core.Task
	for _, d := range []string{t.TempDir(), t.TempDir()} {
		s, err := m.Prepare([]string{"sleep", "906"}, d, os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		task, _, err := m.Run(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	defer func() {
		for _, task := range tasks {
			_ = b.Stop(ctx, *task, core.Grace)
		}
	}()
	var helpers []string
	for _, task := range tasks {
		helpers = append(helpers, proc.EnvHelper+"="+task.Token)
	}
	read := coretest.EnvReads(t, helpers...)
	views, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || !views[0].Status.Alive() || !views[1].Status.Alive() {
		t.Fatalf("list: %+v, want the two tasks running", views)
	}
	if n := read.Load(); n != 0 {
		t.Errorf("list read a supervisor's environment %d times; the state records both tasks", n)
	}

	if err := os.Remove(m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	views, err = m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, v := range views {
		hashes = append(hashes, v.Task.Hash)
	}
	for _, task := range tasks {
		if !slices.Contains(hashes, task.Hash) {
			t.Errorf("task %s not adopted again after the state was lost (listed: %v)", task.Hash, hashes)
		}
	}
}

// TestListReadsEachEnvironmentOnce: a list (List and the usage of what
// runs, with one snapshot) reads each task process's environment once,
// however many of its checks need it, never that of another process of
// the user, and still sees every task running with its process.
func TestListReadsEachEnvironmentOnce(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	ctx := context.Background()
	mark := "BTL_TEST_BYSTANDER=" + strconv.Itoa(os.Getpid())
	other := exec.Command("sleep", "913")
	other.Env = append(os.Environ(), mark)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	var tokens []string
	for _, arg := range []string{"911", "912"} {
		s, err := m.Prepare([]string{"sleep", arg}, t.TempDir(), os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		task, _, err := m.Run(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Stop(ctx, *task, core.Grace) })
		tokens = append(tokens, core.EnvInstance+"="+task.Token)
	}
	reads := coretest.EnvReads(t, tokens...)
	lctx := core.WithSnapshot(ctx)
	views, err := m.List(lctx)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []*core.Task
	for _, v := range views {
		if !v.Status.Alive() {
			t.Fatalf("task %s: %+v, want it running", v.Task.Hash, v.Status)
		}
		tasks = append(tasks, v.Task)
	}
	for i, u := range core.UsagesIn(lctx, tasks) {
		if !slices.Contains(u.PIDs, tasks[i].PID) {
			t.Errorf("usage of task %s: PIDs %v, want its process %d among them", tasks[i].Hash, u.PIDs, tasks[i].PID)
		}
	}
	if len(views) != 2 || reads.Load() != 2 {
		t.Errorf("list of %d tasks read their processes' environments %d times, want once each", len(views), reads.Load())
	}
	// Again, counting the reads of the other process's environment.
	bystander := coretest.EnvReads(t, mark)
	lctx = core.WithSnapshot(ctx)
	if _, err := m.List(lctx); err != nil {
		t.Fatal(err)
	}
	core.UsagesIn(lctx, tasks)
	if n := bystander.Load(); n != 0 {
		t.Errorf("list read the environment of another process of the user %d times, want never", n)
	}
}
