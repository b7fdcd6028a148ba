package core

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// memBackend is a Backend whose tasks are records in memory: a task runs
// until Stop. It lets the Manager's policy be tested without processes.
type memBackend struct {
	name    string
	running map[string]bool // by token
	nextPID int
	calls   []string // "start <hash>", "stop <token>", ...

	startErr, inspectErr, stopErr, listErr error
	stopDelay                              time.Duration // how long a stop takes
	stopKills                              bool          // whether a stop sends SIGKILL
	listed                                 []Task
	onStart                                func(Spec) // called as a start begins
}

var _ Backend = (*memBackend)(nil)

func newMem(name string) *memBackend {
	return &memBackend{name: name, running: map[string]bool{}, nextPID: 1000}
}

func (b *memBackend) Name() string { return b.name }

func (b *memBackend) Start(ctx context.Context, spec Spec) (Started, error) {
	b.calls = append(b.calls, "start "+spec.Hash)
	if b.onStart != nil {
		b.onStart(spec)
	}
	if b.startErr != nil {
		return Started{}, b.startErr
	}
	b.nextPID++
	b.running[spec.Token] = true
	return Started{PID: b.nextPID, Unit: b.name + "-" + spec.Hash}, nil
}

func (b *memBackend) Stop(ctx context.Context, t Task, grace time.Duration) error {
	b.calls = append(b.calls, "stop "+t.Token)
	time.Sleep(b.stopDelay)
	if b.stopKills {
		NoteKilled(ctx)
	}
	if b.stopErr != nil {
		return b.stopErr
	}
	delete(b.running, t.Token)
	return nil
}

func (b *memBackend) Inspect(ctx context.Context, t Task) (Status, error) {
	b.calls = append(b.calls, "inspect "+t.Token)
	if b.inspectErr != nil {
		return Status{}, b.inspectErr
	}
	if t.PID == 0 {
		return Status{State: Gone}, nil // never started
	}
	// A task adopted by its token is a real process: ask the system.
	if t.PID > 0 && t.ProcStart != 0 && syscall.Kill(t.PID, 0) == nil {
		return Status{State: Running, PID: t.PID}, nil
	}
	if b.running[t.Token] {
		return Status{State: Running, PID: t.PID}, nil
	}
	return Status{State: Exited, Code: 3}, nil
}

func (b *memBackend) List(ctx context.Context) ([]Task, error) {
	return b.listed, b.listErr
}

// testManager returns a Manager with def as its default backend and
// others reachable through Open; a name in neither cannot be opened.
func testManager(t *testing.T, def *memBackend, others ...*memBackend) *Manager {
	t.Helper()
	dirs := DirsAt(t.TempDir())
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Store: &Store{Dir: dirs.Data}, Dirs: dirs, Backend: def}
	m.Open = func(name string) (Backend, error) {
		for _, o := range others {
			if o.name == name {
				return o, nil
			}
		}
		return nil, errors.New("no user bus")
	}
	for _, o := range others {
		m.Names = append(m.Names, o.name)
	}
	return m
}

func (m *Manager) mustRun(t *testing.T, dir string, argv ...string) (*Task, *Task) {
	t.Helper()
	spec, err := m.Prepare(argv, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	started, replaced, err := m.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run %q: %v", argv, err)
	}
	return started, replaced
}

func TestManagerReplace(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name        string
		oldBackend  string // backend that started the first instance
		wantStopper string // backend asked to stop it
	}{
		{"same backend", "a", "a"},
		{"across backends", "b", "b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newMem("a"), newMem("b")
			m := testManager(t, a, b)
			dir := t.TempDir()
			if c.oldBackend == "b" {
				m.Backend = b
			}
			first, _ := m.mustRun(t, dir, "sh", "-c", "x")
			m.Backend = a
			second, replaced := m.mustRun(t, dir, "sh", "-c", "x")
			if replaced == nil || replaced.Token != first.Token {
				t.Fatalf("replaced = %+v, want the first instance", replaced)
			}
			stopper := map[string]*memBackend{"a": a, "b": b}[c.wantStopper]
			if !slices.Contains(stopper.calls, "stop "+first.Token) {
				t.Errorf("backend %s was not asked to stop the old instance: %v", c.wantStopper, stopper.calls)
			}
			views, err := m.List(ctx)
			if err != nil || len(views) != 1 || views[0].Token != second.Token || views[0].Backend != "a" || !views[0].Status.Alive() {
				t.Errorf("after replace, List = %+v, %v; want the second instance alone, running with a", views, err)
			}
		})
	}
}

// The notice that a stop sent SIGKILL follows what the backend did, not
// how long the stop took: a slow stop that needed no SIGKILL (a loaded
// machine) says nothing, one that sent it says so.
func TestForceKillNoticeFollowsBackend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		kills bool
	}{
		{"slow stop, no SIGKILL", Grace + 50*time.Millisecond, false},
		{"SIGKILL sent", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newMem("a")
			m := testManager(t, a)
			dir := t.TempDir()
			first, _ := m.mustRun(t, dir, "sh", "-c", "x")
			a.stopDelay, a.stopKills = tc.delay, tc.kills
			noticed := false
			m.OnForceKill = func(*Task) { noticed = true }
			if _, err := m.Kill(context.Background(), []string{first.Hash}, false); err != nil {
				t.Fatal(err)
			}
			if noticed != tc.kills {
				t.Errorf("SIGKILL notice: %v, want %v", noticed, tc.kills)
			}
		})
	}
}

func TestManagerFailures(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	t.Run("start fails", func(t *testing.T) {
		a := newMem("a")
		m := testManager(t, a)
		a.startErr = boom
		spec, _ := m.Prepare([]string{"sh", "-c", "x"}, t.TempDir(), os.Environ())
		if _, _, err := m.Run(ctx, spec); !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
		if st, _ := m.Store.Read(); len(st.Processes) != 0 {
			t.Errorf("a failed start left an entry: %+v", st.Processes)
		}
	})
	t.Run("start fails after the old instance was stopped", func(t *testing.T) {
		a := newMem("a")
		m := testManager(t, a)
		dir := t.TempDir()
		spec, _ := m.Prepare([]string{"sh", "-c", "x"}, dir, os.Environ())
		spec.Name = "web"
		if _, _, err := m.Run(ctx, spec); err != nil {
			t.Fatal(err)
		}
		a.startErr = boom
		spec, _ = m.Prepare([]string{"sh", "-c", "x"}, dir, os.Environ())
		if _, _, err := m.Run(ctx, spec); !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
		views, err := m.List(ctx)
		if err != nil || len(views) != 1 || views[0].Name != "web" || views[0].Status.String() != "failed to start" || views[0].Status.StartError != "boom" {
			t.Fatalf("List = %+v, %v; want web, failed to start because of boom", views, err)
		}
		a.startErr = nil
		spec, _ = m.Prepare([]string{"sh", "-c", "x"}, dir, os.Environ())
		again, _, err := m.Run(ctx, spec)
		if err != nil || again.Name != "web" {
			t.Fatalf("a re-run after a failed start: %+v, %v; want web started", again, err)
		}
		if views, _ := m.List(ctx); len(views) != 1 || !views[0].Status.Alive() {
			t.Errorf("after the re-run, List = %+v; want it running", views)
		}
	})
	t.Run("stop of the old instance fails", func(t *testing.T) {
		a := newMem("a")
		m := testManager(t, a)
		dir := t.TempDir()
		first, _ := m.mustRun(t, dir, "sh", "-c", "x")
		a.stopErr = boom
		spec, _ := m.Prepare([]string{"sh", "-c", "x"}, dir, os.Environ())
		if _, _, err := m.Run(ctx, spec); !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
		if n := len(slices.DeleteFunc(slices.Clone(a.calls), func(c string) bool { return c[:5] != "start" })); n != 1 {
			t.Errorf("a second instance was started beside one that could not be stopped: %v", a.calls)
		}
		if st, _ := m.Store.Read(); st.Processes[first.Hash] == nil || st.Processes[first.Hash].Token != first.Token {
			t.Errorf("the old instance's entry was lost: %+v", st.Processes)
		}
	})
	t.Run("backend cannot be asked", func(t *testing.T) {
		a := newMem("a")
		m := testManager(t, a)
		dir := t.TempDir()
		task, _ := m.mustRun(t, dir, "sh", "-c", "x")
		a.inspectErr = boom
		views, err := m.List(ctx)
		if err != nil || len(views) != 1 || views[0].Status.State != Unknown || views[0].Status.Reason != "boom" {
			t.Fatalf("List = %+v, %v; want the task, unknown because of boom", views, err)
		}
		if c, err := m.Clean(ctx, true); err != nil || len(c.Removed) != 0 || len(c.Kept) != 1 {
			t.Errorf("Clean --all = %+v, %v; want the unknown task kept", c, err)
		}
		if _, err := m.Kill(ctx, []string{task.Hash}, false); !errors.Is(err, ErrBackendUnavailable) {
			t.Errorf("Kill = %v, want ErrBackendUnavailable", err)
		}
		if st, _ := m.Store.Read(); st.Processes[task.Hash] == nil {
			t.Error("the task was forgotten")
		}
	})
	t.Run("backend cannot be opened", func(t *testing.T) {
		a := newMem("a")
		m := testManager(t, a)
		m.Store.Update(func(st *State) error {
			st.Processes["0123456789abcdef"] = &Task{PID: 7, UserID: os.Getuid(), Backend: "systemd", Token: "0123456789abcdef-x"}
			return nil
		})
		views, _ := m.List(ctx)
		if len(views) != 1 || views[0].Status.State != Unknown {
			t.Fatalf("List = %+v; want the task unknown", views)
		}
		if c, _ := m.Clean(ctx, false); len(c.Removed) != 0 {
			t.Errorf("Clean forgot a task whose backend cannot be opened")
		}
	})
	t.Run("a task of another backend is found after state loss", func(t *testing.T) {
		a, b := newMem("a"), newMem("b")
		m := testManager(t, a, b)
		b.running["feedfacefeedface-1"] = true
		b.listed = []Task{{Hash: "feedfacefeedface", PID: 77, Token: "feedfacefeedface-1"}}
		views, err := m.List(ctx)
		if err != nil || len(views) != 1 || views[0].Backend != "b" || !views[0].Status.Alive() {
			t.Errorf("List = %+v, %v; want b's task, running", views, err)
		}
	})
}

// TestManagerCrashBetweenIntentAndSave: btl died after recording a start's
// intent and before recording the task. The next btl finds the task by
// its token if it runs, and otherwise knows it is gone.
func TestManagerCrashBetweenIntentAndSave(t *testing.T) {
	ctx := context.Background()
	for _, runs := range []bool{true, false} {
		a := newMem("a")
		m := testManager(t, a)
		hash, token := "0badc0de0badc0de", "0badc0de0badc0de-"+randomHex(8)
		var cmd *exec.Cmd
		if runs {
			cmd = exec.Command("sleep", "30")
			cmd.Env = append(os.Environ(), EnvInstance+"="+token)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		}
		m.Store.Update(func(st *State) error {
			st.Processes[hash] = &Task{UserID: os.Getuid(), Token: token, Backend: "a", Status: &Status{State: Starting}}
			return nil
		})
		views, err := m.List(ctx)
		if err != nil || len(views) != 1 {
			t.Fatalf("List = %+v, %v", views, err)
		}
		v := views[0]
		switch {
		case runs && (v.PID != cmd.Process.Pid || !v.Status.Alive()):
			t.Errorf("the task that runs was not adopted: %+v %+v", v.Task, v.Status)
		case !runs && v.Status.State != Gone:
			t.Errorf("a start that never ran is %+v, want gone", v.Status)
		}
	}
}

func TestNextStatus(t *testing.T) {
	exited := &Status{State: Exited, Code: 3}
	for _, c := range []struct {
		name      string
		rec       *Status
		obs       Status
		wantRec   *Status
		wantShown Status
	}{
		{"runs", nil, Status{State: Running, PID: 5}, nil, Status{State: Running, PID: 5}},
		{"main exited, children run", nil, Status{State: Running, MainExited: true}, nil, Status{State: Running, MainExited: true}},
		{"ends", nil, *exited, exited, *exited},
		{"ended, now forgotten by the backend", exited, Status{State: Gone}, exited, *exited},
		{"gone without a record", nil, Status{State: Gone}, nil, Status{State: Gone}},
		{"cannot be asked", nil, Status{State: Unknown, Reason: "x"}, nil, Status{State: Unknown, Reason: "x"}},
		{"cannot be asked, ended before", exited, Status{State: Unknown, Reason: "x"}, exited, Status{State: Unknown, Reason: "x"}},
	} {
		rec, shown := nextStatus(c.rec, c.obs)
		if (rec == nil) != (c.wantRec == nil) || rec != nil && *rec != *c.wantRec || shown != c.wantShown {
			t.Errorf("%s: nextStatus = %+v, %+v; want %+v, %+v", c.name, rec, shown, c.wantRec, c.wantShown)
		}
	}
}

// TestStateNeverPastLimit: btl never writes a state.json it would not read
// back. A start that would take it past MaxStateSize is refused in one
// line before anything starts, tasks found again with huge command lines
// are shown but not recorded, and no state btl wrote is ever moved aside
// as corrupt.
func TestStateNeverPastLimit(t *testing.T) {
	lowerStateLimit(t)
	ctx := context.Background()
	mem := newMem("mem")
	m := testManager(t, mem)
	var warned []string
	m.Store.Warn = func(msg string) { warned = append(warned, msg) }
	dir := t.TempDir()
	// Arguments of a 16th of the limit each: a command line btl records
	// twice (the quoted command and the argv).
	big := func(i int) []string {
		return []string{"sh", "-c", "exit 0", strconv.Itoa(i), strings.Repeat("x", maxState/16)}
	}
	var refused error
	n := 0
	for i := range 40 {
		spec, err := m.Prepare(big(i), dir, os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Run(ctx, spec); err != nil {
			refused = err
			break
		}
		n++
	}
	if !errors.Is(refused, ErrStateFull) || strings.Contains(refused.Error(), "\n") {
		t.Fatalf("the start past the limit: %v, want one line wrapping ErrStateFull", refused)
	}
	if n < 5 || n >= 40 || len(mem.running) != n {
		t.Errorf("%d starts recorded, %d tasks running", n, len(mem.running))
	}
	fi, err := os.Stat(m.Store.Path())
	if err != nil || fi.Size() > int64(maxState) {
		t.Fatalf("state.json: %v, %v", fi, err)
	}
	st, err := m.Store.Read()
	if err != nil || len(st.Processes) != n {
		t.Fatalf("state after the refused start: %v, %d entries, want %d", err, len(st.Processes), n)
	}

	// State lost: the backend's tasks are found again, as many as fit.
	if err := os.Remove(m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		spec, _ := m.Prepare(big(i), dir, os.Environ())
		mem.listed = append(mem.listed, Task{Hash: spec.Hash, PID: 2000 + i, Command: spec.Command, Argv: spec.Argv, Cwd: spec.Dir, Token: spec.Token})
		mem.running[spec.Token] = true
	}
	for range 2 {
		views, err := m.List(ctx)
		if err != nil || len(views) != 40 {
			t.Fatalf("List: %d views, %v", len(views), err)
		}
	}
	fi, err = os.Stat(m.Store.Path())
	if err != nil || fi.Size() > int64(maxState) {
		t.Fatalf("state.json after re-adoption: %v, %v", fi, err)
	}
	if aside, _ := filepath.Glob(m.Store.Path() + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("btl took its own state for corrupt: %v", aside)
	}
	if len(warned) == 0 || strings.Contains(warned[0], "\n") || !strings.Contains(warned[0], "not recorded") {
		t.Errorf("warnings: %q", warned)
	}
}

// TestStateLargerThanWrittenIsRead: a state an older btl wrote past
// MaxStateSize is read, not moved aside, and may shrink.
func TestStateLargerThanWrittenIsRead(t *testing.T) {
	lowerStateLimit(t)
	s := &Store{Dir: t.TempDir()}
	st := &State{Processes: map[string]*Task{}}
	for i := range 20 {
		h := Hash("/", strconv.Itoa(i))
		st.Processes[h] = &Task{Hash: h, PID: 1, Command: strings.Repeat("y", maxState/16)}
	}
	b, err := st.encode()
	if err != nil || len(b) <= maxState {
		t.Fatalf("encode: %d bytes, %v", len(b), err)
	}
	if err := os.WriteFile(s.Path(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(st *State) error {
		if len(st.Processes) != 20 {
			t.Errorf("read %d entries, want 20", len(st.Processes))
		}
		for h := range st.Processes {
			delete(st.Processes, h)
			break
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Read(); err != nil || len(got.Processes) != 19 {
		t.Fatalf("after shrinking: %v", err)
	}
	err = s.Update(func(st *State) error {
		h := Hash("/", "new")
		st.Processes[h] = &Task{Hash: h, PID: 1, Command: strings.Repeat("z", maxState/16)}
		return nil
	})
	if !errors.Is(err, ErrStateFull) {
		t.Errorf("growing a state past the limit: %v, want ErrStateFull", err)
	}
}

// lowerStateLimit makes the state limit 1 MiB for the test: the limit is
// what is tested, not how fast 16 MiB of JSON is encoded.
func lowerStateLimit(t *testing.T) {
	old := maxState
	maxState = 1 << 20
	t.Cleanup(func() { maxState = old })
}

// TestCleanAllSweepsOnlyWhenEveryBackendAnswers: clean --all removes the
// files of no tracked task, unless a backend that may run tasks here
// cannot be asked: one of its tasks that state.json lost would own them.
func TestCleanAllSweepsOnlyWhenEveryBackendAnswers(t *testing.T) {
	for _, broken := range []bool{false, true} {
		m := testManager(t, newMem("mem"))
		if broken {
			m.Names = append(m.Names, "unreachable")
		}
		orphan := filepath.Join(m.Dirs.Run, "0123456789abcdef.env")
		if err := os.WriteFile(orphan, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := m.Clean(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(orphan)
		switch {
		case broken && (statErr != nil || len(c.Warnings) != 1):
			t.Errorf("with a backend unreachable: orphan %v, warnings %v", statErr, c.Warnings)
		case !broken && (!os.IsNotExist(statErr) || len(c.Warnings) != 0):
			t.Errorf("with every backend reachable: orphan %v, warnings %v", statErr, c.Warnings)
		}
	}
}

// A task of a project stays one when it is started again by hand or by
// restart: the start without a project keeps the replaced one's.
func TestManagerKeepsProject(t *testing.T) {
	ctx := context.Background()
	m := testManager(t, newMem("a"))
	dir := t.TempDir()
	spec, err := m.Prepare([]string{"sh", "-c", "x"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	spec.Project, spec.Entry, spec.Def = "/p", "web", "d1"
	if _, _, err := m.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	again, _ := m.mustRun(t, dir, "sh", "-c", "x")
	if again.Project != "/p" || again.Entry != "web" || again.Def != "d1" {
		t.Errorf("by hand: project %q entry %q def %q, want the project's", again.Project, again.Entry, again.Def)
	}
	st, err := m.Store.Read()
	if err != nil || st.Processes[again.Hash].Entry != "web" {
		t.Errorf("state after the hand start: %+v, %v", st.Processes[again.Hash], err)
	}
	other, _ := m.mustRun(t, dir, "sh", "-c", "y")
	if other.Project != "" {
		t.Errorf("another command got project %q", other.Project)
	}
}
