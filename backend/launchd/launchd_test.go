//go:build linux

package launchd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"howett.net/plist"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/core"
	"btl/core/coretest"
	"btl/internal/fakelaunchctl/fake"
	"btl/internal/proc/proctest"
	"btl/internal/reexec"
)

// TestMain lets the test binary be both the launcher that launchd runs for
// each task and, with FAKE_LAUNCHCTL_AS_MAIN=1, the fake launchctl itself
// (reached through a symlink named launchctl). No build step is needed, so
// the tests run as an unprivileged user.
//
// Every task and helper inherits a marker unique to the run; after the
// tests none may be left.
func TestMain(m *testing.M) {
	reexec.Init()
	if os.Getenv("FAKE_LAUNCHCTL_AS_MAIN") == "1" {
		os.Exit(fake.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	marker := "BTL_LAUNCHD_TEST_RUN=" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	k, v, _ := strings.Cut(marker, "=")
	os.Setenv(k, v)
	// As in Terminal: tasks are started from an environment that has
	// launchd's variables of another job, which must not reach theirs.
	os.Setenv("XPC_SERVICE_NAME", "0")
	os.Setenv("XPC_FLAGS", "0x0")
	code := m.Run()
	deadline := time.Now().Add(10 * time.Second)
	for left := carrying(marker); len(left) > 0; left = carrying(marker) {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "processes left behind by the tests: %v\n", left)
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			code = 1
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.Exit(code)
}

// carrying lists the live processes, other than this one, whose
// environment holds the entry kv.
func carrying(kv string) []int { return proctest.Carrying(os.Getuid(), kv) }

// fixture is one test's fake launchctl, backend and manager.
type fixture struct {
	b     *launchd.Backend
	dirs  core.Dirs
	m     *core.Manager
	state string   // the fake's state directory
	env   []string // the fake's environment, as the backend passes it
	uid   string
}

// newFixture sets up a fake launchctl with the given options, a backend
// using it and a manager. At cleanup, after the test's own cleanups, it
// fails the test if any agent is still loaded or any process is left.
func newFixture(t *testing.T, opts ...string) *fixture {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "launchctl")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	f := &fixture{dirs: core.DirsAt(t.TempDir()), state: t.TempDir(), uid: strconv.Itoa(os.Getuid())}
	if err := f.dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	// A -race binary sleeps 1s at exit by default; the fake runs a lot.
	f.env = append([]string{"FAKE_LAUNCHCTL_AS_MAIN=1", "FAKE_LAUNCHCTL_STATE=" + f.state,
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}, opts...)
	f.b = f.backend()
	f.b.Launchctl = bin
	f.m = f.manager(f.b)
	t.Cleanup(func() { f.checkClean(t) })
	return f
}

// backend returns a new backend on the fixture's fake, as a new btl
// process would have.
func (f *fixture) backend() *launchd.Backend {
	b := launchd.New(f.dirs)
	b.Env = f.env
	if f.b != nil {
		b.Launchctl = f.b.Launchctl
	}
	return b
}

func (f *fixture) manager(b core.Backend) *core.Manager {
	return &core.Manager{Store: &core.Store{Dir: f.dirs.Data}, Dirs: f.dirs, Backend: b}
}

// launchctl runs the fake directly and returns its stdout and exit code.
func (f *fixture) launchctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(f.b.Launchctl, args...)
	cmd.Env = append(os.Environ(), f.env...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// calls returns the lines of the fake's calls.log.
func (f *fixture) calls() []string {
	data, _ := os.ReadFile(filepath.Join(f.state, "calls.log"))
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// checkClean fails t if the fake still has btl agents loaded or runs
// helpers (a helper lives as long as its job's main process). TestMain
// checks for any process left by the tests at the end.
func (f *fixture) checkClean(t *testing.T) {
	for _, dom := range []string{"gui/", "user/"} {
		if out, _ := f.launchctl(t, "print", dom+f.uid); strings.Contains(out, "\t"+launchd.LabelPrefix) {
			t.Errorf("agents left loaded:\n%s", out)
		}
	}
	coretest.Eventually(t, 10*time.Second, "the fake's helpers to end", func() bool {
		return len(carrying("FAKE_LAUNCHCTL_STATE="+f.state)) == 0
	})
}

// run prepares argv in dir and runs it through the manager.
func (f *fixture) run(t *testing.T, dir string, argv ...string) *core.Task {
	t.Helper()
	return f.runEnv(t, dir, os.Environ(), argv...)
}

// runEnv is run with the caller's environment env.
func (f *fixture) runEnv(t *testing.T, dir string, env []string, argv ...string) *core.Task {
	t.Helper()
	s, err := f.m.Prepare(argv, dir, env)
	if err != nil {
		t.Fatalf("prepare %q: %v", argv, err)
	}
	task, _, err := f.m.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("run %q: %v", argv, err)
	}
	t.Cleanup(func() { f.b.Stop(context.Background(), *task, 100*time.Millisecond) })
	return task
}

func TestConformance(t *testing.T) {
	coretest.Run(t, func(t *testing.T) (core.Backend, core.Dirs) {
		f := newFixture(t)
		return f.b, f.dirs
	})
}

// TestConformanceUserDomain runs the suite where there is no GUI login.
func TestConformanceUserDomain(t *testing.T) {
	coretest.Run(t, func(t *testing.T) (core.Backend, core.Dirs) {
		f := newFixture(t, "FAKE_LAUNCHCTL_NO_GUI=1")
		return f.b, f.dirs
	})
}

// plistutil makes libplist (an independent parser) read the plist at path:
// it converts it to a binary plist, which is then decoded. plistutil 2.2
// exits 0 even when it fails, so its output is what counts.
func plistutil(t *testing.T, path string) (map[string]any, error) {
	t.Helper()
	bin, err := exec.LookPath("plistutil")
	if err != nil {
		coretest.Missing(t, "plistutil not found: install the Debian package libplist-utils")
	}
	out := filepath.Join(t.TempDir(), "out.bplist")
	msg, err := exec.Command(bin, "-i", path, "-o", out, "-f", "bin").CombinedOutput()
	data, rerr := os.ReadFile(out)
	if err != nil || rerr != nil || !bytes.HasPrefix(data, []byte("bplist00")) {
		return nil, fmt.Errorf("plistutil rejects %s: %v %v %s", path, err, rerr, msg)
	}
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode plistutil's output: %w", err)
	}
	return m, nil
}

func TestPlistutilRejectsGarbage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.plist")
	os.WriteFile(path, []byte("<?xml version=\"1.0\"?>\n<plist><dict><key>Label</key>"), 0o600)
	if m, err := plistutil(t, path); err == nil {
		t.Fatalf("plistutil accepted a truncated plist: %v", m)
	}
}

func TestPlist(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []string
		domain  string
		session any
	}{
		{"gui", nil, "gui", nil},
		{"ssh", []string{"FAKE_LAUNCHCTL_NO_GUI=1"}, "user", "Background"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts...)
			dir := t.TempDir()
			// Terminal sets XPC_SERVICE_NAME=0; launchd's own is not to be
			// overridden from the plist.
			callerEnv := append(os.Environ(), "XPC_SERVICE_NAME=0", "XPC_FLAGS=0x1")
			task := f.runEnv(t, dir, callerEnv, "sh", "-c", "env; echo env-done; exec sleep 60")
			path := filepath.Join(f.dirs.Data, "launchd", task.Hash+".plist")
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("plist %s: %v, mode %v; want mode 0600", path, err, fi.Mode())
			}
			m, err := plistutil(t, path)
			if err != nil {
				t.Fatal(err)
			}
			sh, _ := exec.LookPath("sh")
			env, _ := m["EnvironmentVariables"].(map[string]any)
			for key, want := range map[string]any{
				"Label":                  "btl." + task.Hash,
				"ProgramArguments":       []any{sh, "-c", "env; echo env-done; exec sleep 60"},
				"WorkingDirectory":       task.Cwd,
				"StandardOutPath":        task.LogFile,
				"StandardErrorPath":      task.LogFile,
				"RunAtLoad":              true,
				"KeepAlive":              false,
				"ExitTimeOut":            uint64(2),
				"ProcessType":            "Interactive",
				"AbandonProcessGroup":    false,
				"LimitLoadToSessionType": tc.session,
			} {
				if got := m[key]; !equal(got, want) {
					t.Errorf("%s = %#v, want %#v", key, got, want)
				}
			}
			for _, kv := range callerEnv {
				k, v, _ := strings.Cut(kv, "=")
				if k == "XPC_SERVICE_NAME" || k == "XPC_FLAGS" {
					if env[k] != nil {
						t.Errorf("EnvironmentVariables[%s] = %v, want it left to launchd", k, env[k])
					}
					continue
				}
				if env[k] != v {
					t.Errorf("EnvironmentVariables[%s] = %v, want the caller's %q", k, env[k], v)
				}
			}
			if env[core.EnvHash] != task.Hash || env[core.EnvInstance] != task.Token {
				t.Errorf("EnvironmentVariables lack BTL_HASH/BTL_INSTANCE: %v", env)
			}
			// The task sees the caller's environment, without the launcher's
			// report variable, and launchd's service name.
			log := waitLog(t, task.LogFile, "env-done")
			if strings.Contains(log, launchd.LaunchEnv) || strings.Contains(log, launchd.LabelEnv) || !strings.Contains(log, "XPC_SERVICE_NAME=btl."+task.Hash+"\n") ||
				strings.Contains(log, "XPC_FLAGS=") {
				t.Errorf("task environment:\n%s", log)
			}
			if last := f.calls(); !slices.Contains(last, "bootstrap "+tc.domain+"/"+f.uid+" "+path+"\t0") {
				t.Errorf("no bootstrap into %s: %q", tc.domain, last)
			}
		})
	}
}

func equal(a, b any) bool {
	if ai, ok := a.([]any); ok {
		bi, ok := b.([]any)
		return ok && slices.EqualFunc(ai, bi, equal)
	}
	return a == b
}

// waitLog waits until the file contains want and returns its content.
// waitLog waits until the task output in the log at path (start markers
// left out) contains want, and returns that output.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	var got string
	coretest.Eventually(t, 10*time.Second, path+" to contain "+want, func() bool {
		b, _ := os.ReadFile(path)
		got = coretest.TaskOutput(string(b))
		return strings.Contains(got, want)
	})
	return got
}

// TestCallSequences asserts the launchctl calls each operation makes, from
// the fake's calls.log. Repeated polls are squeezed to one line, and polls
// while the task is being launched are dropped.
func TestCallSequences(t *testing.T) {
	t.Parallel()
	sleep := []string{"sleep", "60"}
	for _, tc := range []struct {
		name  string
		opts  []string
		setup bool // start the task first
		act   func(t *testing.T, f *fixture, dir string)
		want  []string // {D} domain, {S} service target, {G} and {US} it in gui and user, {P} plist
	}{
		{"start", nil, false, func(t *testing.T, f *fixture, dir string) { f.run(t, dir, sleep...) }, []string{
			"managername\t0",
			"bootout {G}\t113",
			"bootout {US}\t113",
			"bootstrap {D} {P}\t0",
		}},
		{"start over ssh", []string{"FAKE_LAUNCHCTL_NO_GUI=1"}, false, func(t *testing.T, f *fixture, dir string) { f.run(t, dir, sleep...) }, []string{
			"managername\t0",
			"bootout {G}\t125",
			"print {G}\t112",
			"bootout {US}\t113",
			"bootstrap {D} {P}\t0",
		}},
		{"replace", nil, true, func(t *testing.T, f *fixture, dir string) { f.run(t, dir, sleep...) }, []string{
			"print {S}\t0",
			"bootout {S}\t0",
			"print {S}\t0",
			"print {S}\t113",
			"bootout {G}\t113",
			"bootout {US}\t113",
			"bootstrap {D} {P}\t0",
		}},
		{"replace while launchd is busy", []string{"FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=200ms"}, true, func(t *testing.T, f *fixture, dir string) { f.run(t, dir, sleep...) }, []string{
			"print {S}\t0",
			"bootout {S}\t0",
			"print {S}\t0",
			"print {S}\t113",
			"bootout {G}\t113",
			"bootout {US}\t113",
			"bootstrap {D} {P}\t5",
			"bootstrap {D} {P}\t0",
		}},
		{"replace with bootout in progress", []string{"FAKE_LAUNCHCTL_BOOTOUT_36=1"}, true, func(t *testing.T, f *fixture, dir string) { f.run(t, dir, sleep...) }, []string{
			"print {S}\t0",
			"bootout {S}\t36",
			"print {S}\t0",
			"print {S}\t113",
			"bootout {G}\t113",
			"bootout {US}\t113",
			"bootstrap {D} {P}\t0",
		}},
		{"kill", nil, true, func(t *testing.T, f *fixture, dir string) {
			s, _ := f.m.Prepare(sleep, dir, os.Environ())
			if _, err := f.m.Kill(context.Background(), []string{s.Hash}, false); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"print {S}\t0",
			"bootout {S}\t0",
			"print {S}\t0",
			"print {S}\t113",
		}},
		{"list by a new btl process", nil, true, func(t *testing.T, f *fixture, dir string) {
			if _, err := f.manager(f.backend()).List(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"print {S}\t0",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The fake's clock moves 20ms with each call, and only then:
			// a booted-out label lingers at least 50ms, so the first print
			// after a bootout sees it, however loaded the machine is.
			// It lingers 60ms here: three polls, however slow each is.
			opts := append([]string{"FAKE_LAUNCHCTL_CLOCK=" + filepath.Join(t.TempDir(), "clock"), "FAKE_LAUNCHCTL_CLOCK_STEP=20ms",
				"FAKE_LAUNCHCTL_SPAWN_DELAY=0s", "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=0s", "FAKE_LAUNCHCTL_LINGER=60ms"}, tc.opts...)
			f := newFixture(t, opts...)
			dir := t.TempDir()
			if tc.setup {
				f.run(t, dir, sleep...)
			}
			before := len(f.calls())
			if before == 1 && f.calls()[0] == "" {
				before = 0
			}
			tc.act(t, f, dir)
			s, _ := f.m.Prepare(sleep, dir, os.Environ())
			dom, _ := f.b.Domain(context.Background())
			r := strings.NewReplacer("{U}", f.uid, "{D}", dom, "{S}", dom+"/btl."+s.Hash,
				"{G}", "gui/"+f.uid+"/btl."+s.Hash, "{US}", "user/"+f.uid+"/btl."+s.Hash,
				"{P}", filepath.Join(f.dirs.Data, "launchd", s.Hash+".plist"))
			var want []string
			for _, w := range tc.want {
				want = append(want, r.Replace(w))
			}
			if got := squeeze(f.calls()[before:]); !slices.Equal(got, want) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// squeeze drops successful prints right after a successful bootstrap (the
// backend's polls while the task launches) and repeated lines. A missing
// domain answers print with 112 or 125 at random: both read as 112.
func squeeze(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "print ") {
			c = strings.Replace(c, "\t125", "\t112", 1)
		}
		if len(out) > 0 && c == out[len(out)-1] {
			continue
		}
		if len(out) > 0 && strings.HasPrefix(out[len(out)-1], "bootstrap ") && strings.HasSuffix(out[len(out)-1], "\t0") &&
			strings.HasPrefix(c, "print ") && strings.HasSuffix(c, "\t0") {
			continue
		}
		out = append(out, c)
	}
	return out
}

// TestRetriesStartTheTask checks that after the retry paths the new
// instance runs, the old one is gone, and exactly one agent is loaded.
func TestRetriesStartTheTask(t *testing.T) {
	t.Parallel()
	for _, opt := range []string{"FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=3s", "FAKE_LAUNCHCTL_BOOTOUT_36=1"} {
		t.Run(opt, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, opt)
			dir := t.TempDir()
			old := f.run(t, dir, "sh", "-c", "echo run; exec sleep 60")
			// Start returns once the program is being executed, not once
			// it has written anything: replacing it at once could stop the
			// shell before its echo, and the log would never hold two runs.
			waitLog(t, old.LogFile, "run\n")
			cur := f.run(t, dir, "sh", "-c", "echo run; exec sleep 60")
			if coretest.Alive(old.PID) || !coretest.Alive(cur.PID) {
				t.Errorf("old %d alive=%v, new %d alive=%v", old.PID, coretest.Alive(old.PID), cur.PID, coretest.Alive(cur.PID))
			}
			if st, err := f.b.Inspect(context.Background(), *cur); err != nil || st.State != core.Running || st.PID != cur.PID {
				t.Errorf("Inspect = %+v, %v; want running %d", st, err, cur.PID)
			}
			waitLog(t, cur.LogFile, "run\nrun\n")
			out, _ := f.launchctl(t, "list")
			if n := strings.Count(out, "\tbtl."); n != 1 {
				t.Errorf("%d agents loaded, want 1:\n%s", n, out)
			}
		})
	}
}

// TestSlowSpawn starts a task that launchd takes a second to spawn (state
// "spawning", as for the first run of a freshly built binary): the start
// waits for it instead of reading the unknown state as gone.
func TestSlowSpawn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "FAKE_LAUNCHCTL_SPAWN_DELAY=1s")
	task := f.run(t, t.TempDir(), "sleep", "60")
	if st, err := f.b.Inspect(context.Background(), *task); err != nil || st.State != core.Running || st.PID != task.PID {
		t.Fatalf("Inspect = %+v, %v; want running %d", st, err, task.PID)
	}
}

func TestExternalBootoutSeenByInspect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	task := f.run(t, t.TempDir(), "sleep", "60")
	if _, code := f.launchctl(t, "bootout", task.Unit); code != 0 {
		t.Fatalf("bootout: exit %d", code)
	}
	// bootout returns before launchd forgets the label: it lingers, with
	// the last exit status, then goes.
	var st core.Status
	var err error
	coretest.Eventually(t, 10*time.Second, "the booted-out agent to be gone", func() bool {
		st, err = f.b.Inspect(context.Background(), *task)
		return err != nil || st.State == core.Gone
	})
	if err != nil {
		t.Fatalf("Inspect after external bootout: %v", err)
	}
	views, err := f.m.List(context.Background())
	if err != nil || len(views) != 1 || views[0].Status.State != core.Gone {
		t.Fatalf("List = %+v, %v; want the task, gone", views, err)
	}
	if coretest.Alive(task.PID) {
		t.Errorf("task %d alive after bootout", task.PID)
	}
}

func TestExitStatusFromLaunchd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		script string
		want   core.Status
	}{
		{"exit 0", core.Status{State: core.Exited, Code: 0}},
		{"exit 7", core.Status{State: core.Exited, Code: 7}},
		{"kill -TERM $$", core.Status{State: core.Signaled, Signal: 15}},
		{"kill -KILL $$", core.Status{State: core.Signaled, Signal: 9}},
	} {
		t.Run(tc.script, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			task := f.run(t, t.TempDir(), "sh", "-c", tc.script)
			var st core.Status
			coretest.Eventually(t, 10*time.Second, "task to end", func() bool {
				st, _ = f.b.Inspect(context.Background(), *task)
				return st.State != core.Running
			})
			if st != tc.want {
				t.Errorf("Inspect = %+v, want %+v", st, tc.want)
			}
		})
	}
}

// TestListReadopts loses state.json and checks that a new btl process finds
// the running task again, with what the user typed, and can kill it.
func TestListReadopts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	task := f.run(t, dir, "sh", "-c", `sleep 60 & echo $! > child; echo "it's here"; wait`)
	if err := os.Remove(f.m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	m := f.manager(f.backend())
	views, err := m.List(context.Background())
	if err != nil || len(views) != 1 {
		t.Fatalf("List = %+v, %v; want one task", views, err)
	}
	got := views[0]
	if got.Hash != task.Hash || got.Command != task.Command || got.Cwd != task.Cwd || got.LogFile != task.LogFile ||
		got.PID != task.PID || got.ProcStart != task.ProcStart || got.Token != task.Token || got.Backend != launchd.Name ||
		got.Status.State != core.Running {
		t.Fatalf("re-adopted %+v (%+v)\nwant %+v", *got.Task, got.Status, *task)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(waitLog(t, filepath.Join(dir, "child"), "\n")))
	killed, err := m.Kill(context.Background(), []string{task.Hash[:6]}, false)
	if err != nil || len(killed) != 1 {
		t.Fatalf("Kill = %v, %v", killed, err)
	}
	if coretest.Alive(task.PID) || coretest.Alive(child) {
		t.Errorf("processes survived kill: %d alive=%v, child %d alive=%v", task.PID, coretest.Alive(task.PID), child, coretest.Alive(child))
	}
	if views, _ := m.List(context.Background()); len(views) != 0 {
		t.Errorf("List after kill = %+v", views)
	}
}

// TestUnresolvableCommand checks that a command that cannot be run is a
// 127 (or 126) error before launchctl is ever called.
func TestUnresolvableCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	_, err := f.m.Prepare([]string{"btl-no-such-command"}, dir, os.Environ())
	var ee *core.ExecError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 {
		t.Fatalf("Prepare = %v; want an ExecError with exit code 127", err)
	}
	s, err := f.m.Prepare([]string{"true"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	s.Path = filepath.Join(dir, "vanished")
	_, err = f.b.Start(context.Background(), s)
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || ee.Name != "true" {
		t.Fatalf("Start = %v; want an ExecError for true with exit code 127", err)
	}
	if _, err := os.Stat(filepath.Join(f.state, "calls.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("launchctl was called: %q", f.calls())
	}
}

// TestSpawnFailure makes launchd unable to spawn the task (EX_CONFIG):
// Start fails with an ExecError and leaves nothing loaded.
func TestSpawnFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.b.Exe = filepath.Join(t.TempDir(), "no-launcher")
	s, err := f.m.Prepare([]string{"sleep", "60"}, t.TempDir(), os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.b.Start(context.Background(), s)
	var ee *core.ExecError
	if !errors.As(err, &ee) || !errors.Is(err, launchd.ErrSpawn) {
		t.Fatalf("Start = %v; want an ExecError wrapping ErrSpawn", err)
	}
	if _, err := os.Stat(filepath.Join(f.dirs.Data, "launchd", s.Hash+".plist")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plist left behind: %v", err)
	}
}

func TestCleanBootsOutEndedAgents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ended := f.run(t, t.TempDir(), "sh", "-c", "exit 4")
	running := f.run(t, t.TempDir(), "sleep", "60")
	coretest.Eventually(t, 10*time.Second, "the short task to end", func() bool {
		st, _ := f.b.Inspect(context.Background(), *ended)
		return st.State == core.Exited
	})
	if out, _ := f.launchctl(t, "list"); !strings.Contains(out, "\t"+launchd.Label(ended.Hash)) {
		t.Fatalf("launchd should still hold the ended agent before clean:\n%s", out)
	}
	if c, err := f.m.Clean(context.Background(), false); err != nil || len(c.Removed) != 1 || len(c.Kept) != 1 {
		t.Fatalf("Clean = %+v, %v", c, err)
	}
	out, _ := f.launchctl(t, "list")
	if strings.Contains(out, "\t"+launchd.Label(ended.Hash)) {
		t.Errorf("clean left the ended agent loaded:\n%s", out)
	}
	if !strings.Contains(out, "\t"+launchd.Label(running.Hash)) {
		t.Errorf("clean unloaded the running agent:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(f.dirs.Data, "launchd", ended.Hash+".plist")); !os.IsNotExist(err) {
		t.Errorf("plist of the ended agent left: %v", err)
	}
}

// TestBootstrapRefused checks that a bootstrap launchd refuses for good
// (5 with nothing of the label left to wait for) fails at once, in one
// line that says where launchd logs why, and leaves nothing behind.
func TestBootstrapRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "FAKE_LAUNCHCTL_REFUSE=1")
	s, err := f.m.Prepare([]string{"sleep", "60"}, t.TempDir(), os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.b.Start(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "exit 5") || !strings.Contains(err.Error(), `log show`) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start = %v; want one line with exit 5 and the log show hint", err)
	}
	n := 0
	for _, c := range f.calls() {
		if strings.HasPrefix(c, "bootstrap ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d bootstraps, want 1 (no retries when nothing lingers):\n%s", n, strings.Join(f.calls(), "\n"))
	}
	if _, err := os.Stat(filepath.Join(f.dirs.Data, "launchd", s.Hash+".plist")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plist left behind: %v", err)
	}
}

// TestStartRightAfterKill kills a task and starts it again from a new btl
// process while launchd still refuses the label (5, though print no longer
// shows it): the start waits that out.
func TestStartRightAfterKill(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=2s")
	dir := t.TempDir()
	task := f.run(t, dir, "sleep", "60")
	if _, err := f.m.Kill(context.Background(), []string{task.Hash}, false); err != nil {
		t.Fatal(err)
	}
	m := f.manager(f.backend())
	s, err := m.Prepare([]string{"sleep", "60"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cur, _, err := m.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("start right after kill: %v", err)
	}
	t.Cleanup(func() { f.b.Stop(context.Background(), *cur, 100*time.Millisecond) })
	if !coretest.Alive(cur.PID) {
		t.Errorf("new task %d not running", cur.PID)
	}
}

// TestAcrossSessions starts a task from a session without the GUI login
// (ssh: user domain) and handles it from Terminal (Aqua: gui domain): the
// domain recorded with the task is where btl looks, clean keeps it, a new
// btl process re-adopts it, and a replace from Terminal stops it.
func TestAcrossSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "FAKE_LAUNCHCTL_SESSION=Background")
	dir := t.TempDir()
	task := f.run(t, dir, "sleep", "60")
	if want := "user/" + f.uid + "/" + launchd.Label(task.Hash); task.Unit != want {
		t.Errorf("Unit = %q, want %q", task.Unit, want)
	}
	aqua := f.backend()
	aqua.Env = append(slices.Clone(f.env), "FAKE_LAUNCHCTL_SESSION=Aqua")
	if st, err := aqua.Inspect(ctx, *task); err != nil || st.State != core.Running || st.PID != task.PID {
		t.Fatalf("Inspect from Terminal = %+v, %v; want running %d", st, err, task.PID)
	}
	m := f.manager(aqua)
	if c, err := m.Clean(ctx, false); err != nil || len(c.Removed) != 0 {
		t.Fatalf("Clean from Terminal = %+v, %v; want nothing removed", c, err)
	}
	if _, err := os.Stat(filepath.Join(f.dirs.Data, "launchd", task.Hash+".plist")); err != nil {
		t.Fatalf("plist of the running task: %v", err)
	}
	if err := os.Remove(f.m.Store.Path()); err != nil {
		t.Fatal(err)
	}
	views, err := m.List(ctx)
	if err != nil || len(views) != 1 || views[0].PID != task.PID || views[0].Status.State != core.Running || views[0].Unit != task.Unit {
		t.Fatalf("List from Terminal after losing state = %+v, %v; want the task, running, in %s", views, err, task.Unit)
	}
	s, err := m.Prepare([]string{"sleep", "60"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cur, _, err := m.Run(ctx, s)
	if err != nil {
		t.Fatalf("replace from Terminal: %v", err)
	}
	t.Cleanup(func() { aqua.Stop(ctx, *cur, 100*time.Millisecond) })
	if coretest.Alive(task.PID) || !strings.HasPrefix(cur.Unit, "gui/") {
		t.Errorf("after replace: old %d alive=%v, new in %q", task.PID, coretest.Alive(task.PID), cur.Unit)
	}
}

// TestGUIRefused starts a task where launchctl names the GUI session but
// launchd refuses gui/<uid> (125): it runs in user/<uid>.
func TestGUIRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "FAKE_LAUNCHCTL_SESSION=Background", "FAKE_LAUNCHCTL_MANAGERNAME=Aqua")
	task := f.run(t, t.TempDir(), "sleep", "60")
	if want := "user/" + f.uid + "/" + launchd.Label(task.Hash); task.Unit != want {
		t.Errorf("Unit = %q, want %q", task.Unit, want)
	}
	if st, err := f.b.Inspect(context.Background(), *task); err != nil || st.State != core.Running {
		t.Errorf("Inspect = %+v, %v; want running", st, err)
	}
}

// TestCallerLimits checks that a task sees the open-files limits and the
// umask the same command sees when run by the caller, not launchd's soft
// limit of 256 and its umask. Not parallel: it changes the umask.
func TestCallerLimits(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	probe := `echo "$(ulimit -Sn) $(ulimit -Hn) $(umask)"`
	want, err := exec.Command("/bin/sh", "-c", probe).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	task := f.run(t, t.TempDir(), "sh", "-c", probe)
	if got := waitLog(t, task.LogFile, "\n"); got != string(want) {
		t.Errorf("task sees %q, the caller %q", got, want)
	}
}

// auto is f's manager as auto mode makes it on macOS: launchd, with the
// fork backend to run what launchd cannot; warn collects the notes of
// the fallbacks, as btl prints them.
func (f *fixture) auto(t *testing.T, warn *bytes.Buffer) *core.Manager {
	m := f.manager(f.b)
	m.Fallback = fork.New(f.dirs)
	m.OnFallback = func(fb core.Fallback) { fmt.Fprintf(warn, "btl: %s\n", fb) }
	m.Open = func(name string) (core.Backend, error) {
		if name == fork.Name {
			return fork.New(f.dirs), nil
		}
		return nil, fmt.Errorf("no backend %s", name)
	}
	return m
}

// TestProtectedFolder starts a task in ~/Documents, which jobs launchd
// starts may not read: with --backend launchd it is a one-line error that
// names the folder; in auto mode it runs with fork, says so once, and
// `btl list -o wide` shows why.
func TestProtectedFolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ sub, want string }{
		{"Documents/site", "~/Documents"},
		{"Library/CloudStorage/Dropbox/site", "~/Library/CloudStorage"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			testProtectedFolder(t, tc.sub, tc.want)
		})
	}
}

// TestProtectedVolumes: external and network volumes are protected too,
// whether the task runs there, runs a program from there or logs there.
func TestProtectedVolumes(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home}
	for _, tc := range []struct {
		spec core.Spec
		want string
	}{
		{core.Spec{Dir: "/Volumes/External/site", Env: env}, "/Volumes"},
		{core.Spec{Dir: "/volumes/nas/site", Env: env}, "/Volumes"},
		{core.Spec{Dir: home, Path: "/Volumes/External/bin/tool", Env: env}, "/Volumes"},
		{core.Spec{Dir: home, LogFile: "/Volumes/External/logs/x.log", Env: env}, "/Volumes"},
		{core.Spec{Dir: home + "/Library/CloudStorage/GoogleDrive-x/site", Env: env}, "~/Library/CloudStorage"},
		{core.Spec{Dir: "/VolumesX/site", Env: env}, ""},
		{core.Spec{Dir: home + "/src/site", Env: env}, ""},
	} {
		if got := launchd.Protected(tc.spec); got != tc.want {
			t.Errorf("Protected(%+v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func testProtectedFolder(t *testing.T, sub, want string) {
	ctx := context.Background()
	f := newFixture(t)
	home := t.TempDir()
	dir := filepath.Join(home, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home)
	s, err := f.m.Prepare([]string{"sleep", "60"}, dir, env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.b.Start(ctx, s)
	if !errors.Is(err, launchd.ErrProtected) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start with launchd = %v; want one line naming %s", err, want)
	}
	var warn bytes.Buffer
	m := f.auto(t, &warn)
	task, _, err := m.Run(ctx, s)
	if err != nil {
		t.Fatalf("auto start: %v", err)
	}
	t.Cleanup(func() { m.Kill(ctx, []string{task.Hash}, false) })
	if task.Backend != fork.Name || !strings.Contains(task.Fallback, want) || task.Unit != "" || !coretest.Alive(task.PID) {
		t.Errorf("auto start = backend %q unit %q fallback %q pid %d alive=%v; want fork, the reason, running", task.Backend, task.Unit, task.Fallback, task.PID, coretest.Alive(task.PID))
	}
	if n := strings.Count(warn.String(), "\n"); n != 1 || !strings.Contains(warn.String(), want) {
		t.Errorf("note %q, want one line naming the folder", warn.String())
	}
	views, err := m.List(ctx)
	if err != nil || len(views) != 1 || views[0].Status.State != core.Running || views[0].Backend != fork.Name {
		t.Errorf("List = %+v, %v; want the fork task running", views, err)
	}
}

// TestAutoFallsBack makes launchd refuse every bootstrap: --backend launchd
// fails with the reason, auto mode runs the task with fork and says so.
// TestAutoFallsBackFrom: each way launchd refuses a start in the path
// before the task runs makes auto mode start it with fork instead, with
// one line that says what launchctl answered.
func TestAutoFallsBackFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  []string
		stale bool   // an agent with the task's label is loaded beforehand
		want  string // in the note
	}{
		{"stale agent bootout refused", []string{"FAKE_LAUNCHCTL_BOOTOUT_FAIL=5"}, true, "Boot-out failed: 5: Input/output error"},
		{"job never run", []string{"FAKE_LAUNCHCTL_NEVER_RUN=1"}, false, "state = not running, never exited"},
		{"exit reason only", []string{"FAKE_LAUNCHCTL_EXIT_REASON=OS_REASON_CODESIGNING"}, false, "last exit reason = OS_REASON_CODESIGNING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			logs := t.TempDir()
			opts := tc.opts
			if tc.name == "exit reason only" {
				// launchd may not open the log file there (as in /Volumes).
				opts = append(opts, "FAKE_LAUNCHCTL_PROTECTED="+logs)
			}
			f := newFixture(t, opts...)
			s, err := f.m.Prepare([]string{"sleep", "60"}, t.TempDir(), os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			s.LogFile = filepath.Join(logs, "task.log")
			if tc.stale {
				label := launchd.Label(s.Hash)
				plistPath := filepath.Join(t.TempDir(), "stale.plist")
				data, _ := plist.MarshalIndent(map[string]any{"Label": label, "ProgramArguments": []string{"/bin/sleep", "60"}, "RunAtLoad": true}, plist.XMLFormat, "\t")
				if err := os.WriteFile(plistPath, data, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, code := f.launchctl(t, "bootstrap", "gui/"+f.uid, plistPath); code != 0 {
					t.Fatalf("bootstrap of the stale agent: exit %d", code)
				}
				t.Cleanup(func() {
					cmd := exec.Command(f.b.Launchctl, "bootout", "gui/"+f.uid+"/"+label)
					cmd.Env = append(os.Environ(), append(slices.Clone(f.env), "FAKE_LAUNCHCTL_BOOTOUT_FAIL=0")...)
					_ = cmd.Run()
					coretest.Eventually(t, 30*time.Second, "the stale agent to go", func() bool {
						_, code := f.launchctl(t, "print", "gui/"+f.uid+"/"+label)
						return code == 113
					})
				})
			}
			if _, err := f.b.Start(ctx, s); !errors.Is(err, launchd.ErrRefused) && !errors.Is(err, launchd.ErrSpawn) {
				t.Fatalf("Start with launchd = %v; want a refusal", err)
			}
			var warn bytes.Buffer
			m := f.auto(t, &warn)
			task, _, err := m.Run(ctx, s)
			if err != nil {
				t.Fatalf("auto start: %v", err)
			}
			t.Cleanup(func() { m.Kill(ctx, []string{task.Hash}, false) })
			if task.Backend != fork.Name || !coretest.Alive(task.PID) {
				t.Errorf("auto start = backend %q pid %d alive=%v; want fork, running", task.Backend, task.PID, coretest.Alive(task.PID))
			}
			if n := strings.Count(warn.String(), "\n"); n != 1 || !strings.Contains(warn.String(), tc.want) || strings.Count(warn.String(), "launchd:") > 0 {
				t.Errorf("note %q, want one line with %q", warn.String(), tc.want)
			}
		})
	}
}

func TestAutoFallsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "FAKE_LAUNCHCTL_REFUSE=1")
	s, err := f.m.Prepare([]string{"sleep", "60"}, t.TempDir(), os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Start(ctx, s); !errors.Is(err, launchd.ErrRefused) {
		t.Fatalf("Start with launchd = %v; want ErrRefused", err)
	}
	var warn bytes.Buffer
	m := f.auto(t, &warn)
	task, _, err := m.Run(ctx, s)
	if err != nil {
		t.Fatalf("auto start: %v", err)
	}
	t.Cleanup(func() { m.Kill(ctx, []string{task.Hash}, false) })
	if task.Backend != fork.Name || !coretest.Alive(task.PID) {
		t.Errorf("auto start = backend %q pid %d alive=%v; want fork, running", task.Backend, task.PID, coretest.Alive(task.PID))
	}
	if n := strings.Count(warn.String(), "\n"); n != 1 || !strings.Contains(warn.String(), "exit 5") {
		t.Errorf("note %q, want one line with launchd's answer", warn.String())
	}
	if _, err := m.Kill(ctx, []string{task.Hash}, false); err != nil || coretest.Alive(task.PID) {
		t.Errorf("kill = %v; alive=%v", err, coretest.Alive(task.PID))
	}
}

// TestInterruptedBootstrap cancels a start (as SIGINT or SIGTERM to btl
// does) once launchd runs the task but `launchctl bootstrap` has not yet
// returned, as happens when launchctl is slow to exit: the start is
// finished, not abandoned, so the task is tracked and its output reaches
// its log, never a running task btl has no record of.
func TestInterruptedBootstrap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	slow := filepath.Join(t.TempDir(), "launchctl")
	script := "#!/bin/sh\n" + core.Quote(f.b.Launchctl) + ` "$@"; rc=$?; [ "$1" = bootstrap ] && sleep 1; exit $rc` + "\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.b.Launchctl = slow
	s, err := f.m.Prepare([]string{"sh", "-c", "echo interrupted-out; exec sleep 100"}, t.TempDir(), os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	token := core.EnvInstance + "=" + s.Token
	t.Cleanup(func() {
		// Whatever happened, nothing of the task outlives the test.
		f.b.Stop(context.Background(), core.Task{Hash: s.Hash, Token: s.Token, Unit: "gui/" + f.uid + "/" + launchd.Label(s.Hash)}, 100*time.Millisecond)
		for _, pid := range carrying(token) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(carrying(token)) == 0; {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	task, _, err := f.m.Run(ctx, s)
	running := carrying(token)
	st, serr := f.m.Store.Read()
	if serr != nil {
		t.Fatal(serr)
	}
	e := st.Processes[s.Hash]
	if len(running) > 0 && (e == nil || e.Token != s.Token) {
		t.Fatalf("processes %v of the interrupted start run, but state.json does not track them (start: %v)", running, err)
	}
	if err != nil || task == nil {
		t.Fatalf("interrupted start = %v; want it finished", err)
	}
	waitLog(t, task.LogFile, "interrupted-out\n")
}

// TestLocalNetworkNote: `btl show` of a launchd task whose log shows
// EHOSTUNREACH names Local Network privacy and the way out; other logs
// get no note.
func TestLocalNetworkNote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		log  string
		note bool
	}{
		{"dial tcp 192.168.0.103:3001: connect: no route to host\n", true},
		{"Error: connect EHOSTUNREACH 192.168.1.130:4025\n", true},
		{"listening on :3000\n", false},
		{"", false},
	} {
		logFile := filepath.Join(t.TempDir(), "task.log")
		if err := os.WriteFile(logFile, []byte(tc.log), 0o600); err != nil {
			t.Fatal(err)
		}
		got := launchd.LocalNetworkNote(logFile)
		if strings.Contains(got, "Local Network") != tc.note || tc.note && !strings.Contains(got, "--backend fork") || strings.Contains(got, "\n") {
			t.Errorf("LocalNetworkNote with log %q = %q; want a note: %v", tc.log, got, tc.note)
		}
	}
	// A FIFO where the log should be is not waited on (it has no writer).
	fifo := filepath.Join(t.TempDir(), "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() { done <- launchd.LocalNetworkNote(fifo) }()
	select {
	case got := <-done:
		if got != "" {
			t.Errorf("LocalNetworkNote of a FIFO = %q, want none", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LocalNetworkNote of a FIFO did not return within 10s")
	}
}

// TestReplacesLeaveOneRecord: each launch records its run (core.Runs,
// <token>.record), and a replace removes the record of the instance it
// stops: after three starts of one task, one record is left, the last
// instance's.
func TestReplacesLeaveOneRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	var task *core.Task
	for range 3 {
		task = f.run(t, dir, "sleep", "60")
	}
	var records []string
	coretest.Eventually(t, 10*time.Second, "the last instance's record", func() bool {
		records, _ = filepath.Glob(filepath.Join(f.dirs.Run, "*.record"))
		return slices.Contains(records, core.RunsFile(f.dirs, task.Token))
	})
	if len(records) != 1 {
		t.Errorf("records after three starts: %q; want the last instance's only", records)
	}
	r, err := core.ReadRuns(f.dirs, task.Token)
	if err != nil || r.PID != task.PID || r.Runs != 1 {
		t.Errorf("record %+v, %v; want one run, PID %d", r, err, task.PID)
	}
}

// TestSyncLogWaitsForThePump: launchd reports a task's end before the log
// pump of its launch has written what was still in the pipe. SyncLog,
// which btl logs calls first, waits for the pump, so the task's last
// output is in the log once it returns.
func TestSyncLogWaitsForThePump(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	task := f.run(t, dir, "sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; echo last words")
	var rep core.Runs
	coretest.Eventually(t, 10*time.Second, "the record of runs to name the pump", func() bool {
		var err error
		rep, err = core.ReadRuns(f.dirs, task.Token)
		return err == nil && rep.Pump != nil
	})
	if !rep.Pump.Verify() {
		t.Fatalf("the pump %+v does not run", *rep.Pump)
	}
	if err := syscall.Kill(rep.Pump.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(rep.Pump.PID, syscall.SIGCONT) })
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool {
		st, _ := f.b.Inspect(context.Background(), *task)
		return st.State == core.Exited
	})
	// The pump cannot write: SyncLog waits for it until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.b.SyncLog(ctx, *task); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SyncLog while the pump cannot write = %v; want it to wait until its context ends", err)
	}
	if err := syscall.Kill(rep.Pump.PID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := f.b.SyncLog(context.Background(), *task); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(task.LogFile); !strings.HasSuffix(string(b), "last words\n") {
		t.Errorf("the log once SyncLog returned:\n%s", b)
	}
}
