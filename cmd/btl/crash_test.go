package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"btl/backend/systemd"
	"btl/core"
	"btl/core/coretest"
)

// crashWait bounds how long a test waits for a backend's restarts: the
// launchd backend cannot restart a job sooner than a second after the last
// spawn (ThrottleInterval).
const crashWait = 30 * time.Second

// listed is a task as btl list -o json prints it, the fields these tests read.
type listed struct {
	Hash      string `json:"hash"`
	PID       int    `json:"pid"`
	Status    string `json:"status"`
	ExitCode  *int   `json:"exit_code"`
	Restart   string `json:"restart"`
	Restarts  int    `json:"restarts"`
	LastExit  string `json:"last_exit"`
	CrashLoop bool   `json:"crash_loop"`
}

func (u *user) listed(dir, hash string) listed {
	u.t.Helper()
	var ls []listed
	if err := json.Unmarshal([]byte(u.ok(dir, "list", "-o", "json")), &ls); err != nil {
		u.t.Fatal(err)
	}
	for _, l := range ls {
		if l.Hash == hash {
			return l
		}
	}
	u.t.Fatalf("task %s not in btl list", hash)
	return listed{}
}

// runs counts the lines in the file each run of a test task appends to.
func runs(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(b), "\n")
}

// TestRestartOnFailure: a task that exits 1 is started again, each run
// with its start marker in the same log, until its restarts in a row are
// used up; list then says it is a crash loop.
func TestRestartOnFailure(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--restart", "on-failure:2", "sh", "-c", "echo run $$ >> runs; echo crashing; exit 1")
	var l listed
	coretest.Eventually(t, crashWait, "a crash loop after 2 restarts", func() bool {
		l = u.listed(dir, s.hash)
		return l.CrashLoop
	})
	if l.Status != "exited" || l.ExitCode == nil || *l.ExitCode != 1 || l.Restarts != 2 || l.LastExit != "exited 1" || l.Restart != "on-failure:2" {
		t.Errorf("list -o json of the crash loop: %+v", l)
	}
	if n := runs(dir); n != 3 {
		t.Errorf("%d runs, want the first and 2 restarts", n)
	}
	if list := u.ok(dir, "list"); !strings.Contains(list, "crash loop (exited 1, 2 restarts)") {
		t.Errorf("list:\n%s", list)
	}
	if show := u.ok(dir, "show", s.hash); !strings.Contains(show, "Restarts:") || !strings.Contains(show, "Last exit: exited 1") {
		t.Errorf("show:\n%s", show)
	}
	u.ok(dir, "logs", s.hash) // brings a journal-backed log up to date
	b, _ := os.ReadFile(s.log)
	markers := 0
	for _, line := range strings.Split(string(b), "\n") {
		if _, ok := core.ParseStartMarker(line); ok {
			markers++
		}
	}
	if markers != 3 || strings.Count(string(b), "crashing\n") != 3 {
		t.Errorf("log of 3 runs has %d start markers:\n%s", markers, b)
	}
}

// TestRestartCountGrows: while a crashing task is being restarted, list
// shows it running with its restarts so far and how the last run ended.
func TestRestartCountGrows(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--restart", "on-failure", "sh", "-c", "echo run >> runs; sleep 0.3; exit 3")
	var l listed
	coretest.Eventually(t, crashWait, "2 restarts", func() bool {
		l = u.listed(dir, s.hash)
		return l.Restarts >= 2
	})
	if l.CrashLoop || l.LastExit != "exited 3" {
		t.Errorf("list -o json of a task restarting: %+v", l)
	}
	if n := runs(dir); n < 3 {
		t.Errorf("%d runs after %d restarts", n, l.Restarts)
	}
}

// TestRestartPolicies: on-failure leaves a task that exited 0 alone,
// always starts it again, and a replace runs with the policy of its own
// command line.
func TestRestartPolicies(t *testing.T) {
	u := newUser(t)
	cases := []struct {
		name     string
		flags    []string
		code     string
		restarts bool
	}{
		{"on-failure, exit 0", []string{"--restart", "on-failure:2"}, "0", false},
		{"always, exit 0", []string{"--restart", "always:2"}, "0", true},
		{"no, exit 1", []string{"--restart", "no"}, "1", false},
		{"none, exit 1", nil, "1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := u.start(dir, append(c.flags, "sh", "-c", "echo run >> runs; exit "+c.code)...)
			var l listed
			coretest.Eventually(t, crashWait, "the task to end for good", func() bool {
				l = u.listed(dir, s.hash)
				return l.Status == "exited"
			})
			if got := runs(dir) > 1; got != c.restarts {
				t.Errorf("%d runs; restarted: %v, want %v (%+v)", runs(dir), got, c.restarts, l)
			}
			if c.restarts != (l.Restarts > 0) || c.restarts != l.CrashLoop {
				t.Errorf("list -o json: %+v", l)
			}
		})
	}

	// btl restart runs a task with the policy it was started with.
	dir0 := t.TempDir()
	kept := u.start(dir0, "--restart", "always:5", "sleep", "100")
	u.start(dir0, "restart", kept.hash)
	if got := u.state().Processes[kept.hash].Restart; got != "always:5" {
		t.Errorf("policy after btl restart: %q", got)
	}
	if c := u.btl(dir0, "__complete", "--restart", ""); !strings.HasPrefix(c.stdout, "no\non-failure\nalways\n") {
		t.Errorf("completion of --restart:\n%s", c.stdout)
	}

	// A replace without --restart drops the policy of the instance it
	// replaces: its crash is final.
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo run >> runs; sleep 0.5; exit 1"}
	first := u.start(dir, append([]string{"--restart", "always"}, argv...)...)
	again := u.start(dir, argv...)
	if again.hash != first.hash || u.state().Processes[again.hash].Restart != "" {
		t.Fatalf("replace: %+v, state %+v", again, u.state().Processes[again.hash])
	}
	coretest.Eventually(t, crashWait, "the replacement to end", func() bool {
		return u.listed(dir, again.hash).Status == "exited"
	})
	if l := u.listed(dir, again.hash); l.Restarts != 0 || l.CrashLoop || l.Restart != "" {
		t.Errorf("the replacement was restarted: %+v", l)
	}
}

// TestKillStopsRestarts: btl kill ends a task with a restart policy for
// good, also while it is restarting it (always, a run every ~0.2 s).
func TestKillStopsRestarts(t *testing.T) {
	u := newUser(t)
	for _, script := range []string{"echo run >> runs; exec sleep 100", "echo run >> runs; sleep 0.2"} {
		dir := t.TempDir()
		s := u.start(dir, "--restart", "always:1000", "sh", "-c", script)
		want := 1
		if strings.HasSuffix(script, "0.2") {
			want = 3
		}
		coretest.Eventually(t, crashWait, "runs", func() bool { return runs(dir) >= want })
		u.ok(dir, "kill", s.hash)
		n := runs(dir)
		u.nothingLeftToRestart(s.hash)
		if runs(dir) != n {
			t.Errorf("%q: restarted after btl kill (%d runs, then %d)", script, n, runs(dir))
		}
		if len(u.state().Processes) != 0 {
			t.Errorf("%q: killed task still tracked", script)
		}
		if ps := homeProcs(u.home); backendUnderTest() != "systemd" && len(ps) != 0 {
			t.Errorf("%q: processes left after kill: %v", script, ps)
		}
	}
}

// TestRestartBadInput: an unknown policy or a bad count is one line on
// stderr, exit 2, and nothing started.
func TestRestartBadInput(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, arg := range []string{"sometimes", "on-failure:0", "on-failure:-1", "on-failure:x", "on-failure:", "always:0", "no:3", ""} {
		r := u.btl(dir, "--restart", arg, "touch", "ran")
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "--restart") {
			t.Errorf("--restart %q: %+v", arg, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a start with a bad --restart ran its command")
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("%d tasks recorded", n)
	}
}

// TestReadoptedTaskKeepsRestart: a task seen again after state.json was
// lost has its policy back (systemd: from the unit, launchd: the plist,
// fork: the supervisor's record), and btl kill still stops it for good.
func TestReadoptedTaskKeepsRestart(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--restart", "on-failure:4", "sh", "-c", "echo run >> runs; exec sleep 100")
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	if l := u.listed(dir, s.hash); l.Restart != "on-failure:4" || l.Status != "running" {
		t.Errorf("re-adopted task: %+v, want restart on-failure:4", l)
	}
	u.ok(dir, "kill", s.hash)
	u.nothingLeftToRestart(s.hash)
	if n := runs(dir); n != 1 {
		t.Errorf("%d runs: restarted after btl kill", n)
	}
}

// nothingLeftToRestart waits until nothing is left that could start the
// task of hash again: no process of the user's (the task's, a fork
// supervisor, the fake launchctl's monitors) and, on systemd, no unit.
// Then a count of runs taken before it is final.
func (u *user) nothingLeftToRestart(hash string) {
	u.t.Helper()
	coretest.Eventually(u.t, 10*time.Second, "nothing left that could restart "+hash, func() bool {
		if backendUnderTest() == systemd.Name && unitLoaded(u.t, systemd.UnitName(filepath.Join(u.dataDir(), "run"), hash)) {
			return false
		}
		return len(homeProcs(u.home)) == 0
	})
}
