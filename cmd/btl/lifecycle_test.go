package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// runFiles lists the files in the user's run directory named after hash.
func (u *user) runFiles(hash string) []string {
	got, _ := filepath.Glob(filepath.Join(u.dataDir(), "run", hash+"*"))
	return got
}

// TestStopKeepsTheTask: btl stop ends the tree and keeps the task listed
// as stopped, with its name; restart runs it again; kill forgets it and
// leaves only its log, which clean --all deletes.
func TestStopKeepsTheTask(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--name", "api", "sh", "-c", "echo $$ >> pids; sleep 100 & echo $! >> pids; wait")
	kids := pids(t, waitFileLines(t, filepath.Join(dir, "pids"), 2))
	out := u.ok(dir, "stop", "api")
	if want := "[btl] Process stopped (PID " + strconv.Itoa(s.pid) + "): " + s.command + "\n"; out != want {
		t.Errorf("stop printed %q, want %q", out, want)
	}
	for _, p := range kids {
		if coretest.Alive(p) {
			t.Errorf("process %d survived btl stop", p)
		}
	}
	if l := u.listed(dir, s.hash); l.Status != "stopped" {
		t.Errorf("list -o json after stop: %+v", l)
	}
	if list := u.ok(dir, "list"); !strings.Contains(list, "api") || !strings.Contains(list, "stopped") {
		t.Errorf("list after stop:\n%s", list)
	}
	if out := u.ok(dir, "stop", "api"); !strings.Contains(out, "was not running (stopped)") {
		t.Errorf("second stop printed %q", out)
	}
	r := u.start(t.TempDir(), "restart", "api")
	if r.hash != s.hash || !coretest.Alive(r.pid) {
		t.Fatalf("restart of the stopped task: %+v", r)
	}
	if l := u.listed(dir, s.hash); l.Status != "running" {
		t.Errorf("after restart: %+v", l)
	}
	if st := u.state().Processes[s.hash]; st == nil || st.Name != "api" {
		t.Errorf("restarted task lost its name: %+v", st)
	}
	// kill forgets: no record, no runtime file; the log stays, listed.
	waitFileLines(t, filepath.Join(dir, "pids"), 4)
	u.ok(dir, "kill", "api")
	if st := u.state().Processes[s.hash]; st != nil {
		t.Errorf("killed task still recorded: %+v", st)
	}
	if r := u.btl(dir, "restart", "api"); r.code != 1 || !strings.Contains(r.stderr, "btl stop keeps it to restart") {
		t.Errorf("restart of a killed task: exit %d, %q", r.code, r.stderr)
	}
	if f := u.runFiles(s.hash); len(f) != 0 {
		t.Errorf("kill left runtime files: %v", f)
	}
	if _, err := os.Stat(s.log); err != nil {
		t.Errorf("kill removed the log: %v", err)
	}
	if logs := u.ok(dir, "logs"); !strings.Contains(logs, s.hash) {
		t.Errorf("btl logs does not list the killed task's log:\n%s", logs)
	}
	if out := u.ok(dir, "clean", "--all"); !strings.Contains(out, "Removed 0 ended tasks") {
		t.Errorf("clean --all printed %q", out)
	}
	if _, err := os.Stat(s.log); !os.IsNotExist(err) {
		t.Errorf("clean --all left the log of a killed task: %v", err)
	}
}

// TestCleanAllSweepsWhatNoTaskOwns: clean --all removes the log and
// runtime files of hashes that no task has (left by a kill, or by an older
// btl), and keeps those of tracked tasks and the files shared by all.
func TestCleanAllSweepsWhatNoTaskOwns(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "100")
	run := filepath.Join(u.dataDir(), "run")
	logs := filepath.Join(u.dataDir(), "logs")
	orphan := "0123456789abcdef"
	stale := []string{
		filepath.Join(run, orphan+".env"),
		filepath.Join(run, orphan+".cursor"),
		filepath.Join(run, orphan+"-00112233aabbccdd.exit"),
		filepath.Join(logs, orphan+".log"),
		filepath.Join(logs, orphan+".log.1"),
	}
	shared := []string{filepath.Join(run, "agent.lock"), filepath.Join(logs, "notes.txt")}
	old := time.Now().Add(-time.Hour)
	for _, f := range append(append([]string{}, stale...), shared...) {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(f, old, old)
	}
	// A launchd bootout mark of no task counts once it is old.
	mark := filepath.Join(run, "gui_1000_btl."+orphan+".bootout")
	fresh := filepath.Join(run, "gui_1000_btl.fedcba9876543210.bootout")
	os.WriteFile(mark, nil, 0o600)
	os.Chtimes(mark, old, old)
	os.WriteFile(fresh, nil, 0o600)
	stale = append(stale, mark)
	shared = append(shared, fresh)
	u.ok(dir, "clean", "--all")
	for _, f := range stale {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("clean --all left %s (%v)", f, err)
		}
	}
	for _, f := range append(shared, s.log) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("clean --all removed %s: %v", f, err)
		}
	}
	if len(u.runFiles(s.hash)) == 0 {
		t.Errorf("clean --all removed the runtime files of a running task")
	}
	if !coretest.Alive(s.pid) {
		t.Errorf("clean --all stopped a running task")
	}
}

// TestRestartSeveral: restart takes several tasks and --all, and runs
// stopped and ended tasks again as well as running ones; one bad name
// fails alone.
func TestRestartSeveral(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	a := u.start(dir, "--name", "a", "sleep", "101")
	b := u.start(dir, "--name", "b", "sleep", "102")
	c := u.start(dir, "sh", "-c", "echo ran >> c-runs")
	waitFileLines(t, filepath.Join(dir, "c-runs"), 1)
	u.ok(dir, "stop", "b")
	out := u.ok(t.TempDir(), "restart", "a", "b")
	if n := strings.Count(out, "[btl] Process backgrounded"); n != 2 {
		t.Errorf("restart a b started %d tasks:\n%s", n, out)
	}
	out = u.ok(t.TempDir(), "restart", "--all")
	if n := strings.Count(out, "[btl] Process backgrounded"); n != 3 {
		t.Errorf("restart --all started %d tasks:\n%s", n, out)
	}
	waitFileLines(t, filepath.Join(dir, "c-runs"), 2)
	for _, h := range []string{a.hash, b.hash} {
		if l := u.listed(dir, h); l.Status != "running" {
			t.Errorf("after restart --all: %+v", l)
		}
	}
	r := u.btl(dir, "restart", "a", "nosuch", c.hash)
	if r.code != 1 || !strings.Contains(r.stderr, "nosuch") || strings.Count(r.stdout, "[btl] Process backgrounded") != 2 {
		t.Errorf("restart with a bad name: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := u.btl(dir, "restart"); r.code != 2 {
		t.Errorf("restart without a task: exit %d, %s", r.code, r.stderr)
	}
}

// TestRefusedStartLeavesNothing: a start refused for its name creates no
// log file and no runtime file.
func TestRefusedStartLeavesNothing(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	first := u.start(dir, "--name", "web", "sleep", "100")
	for _, args := range [][]string{
		{"--name", "web", "sleep", "333"},
		{"--name", first.hash[:6], "sleep", "334"},
	} {
		r := u.btl(dir, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "Error: ") || r.stdout != "" {
			t.Errorf("btl %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if logs, _ := filepath.Glob(filepath.Join(u.dataDir(), "logs", "*.log")); len(logs) != 1 {
		t.Errorf("logs after refused starts: %v", logs)
	}
	if logs := u.ok(dir, "logs"); strings.Count(logs, "\n") != 2 {
		t.Errorf("btl logs after refused starts:\n%s", logs)
	}
}

// TestCrashLoopShowsTheLastPID: after a crash loop the PID btl shows is
// the last run's.
func TestCrashLoopShowsTheLastPID(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--restart", "on-failure:2", "sh", "-c", "echo $$ >> runs; exit 1")
	coretest.Eventually(t, crashWait, "a crash loop", func() bool { return u.listed(dir, s.hash).CrashLoop })
	runs := pids(t, waitFileLines(t, filepath.Join(dir, "runs"), 3))
	last := runs[len(runs)-1]
	if l := u.listed(dir, s.hash); l.PID != last {
		t.Errorf("list -o json PID %d, want the last run's %d (runs %v)", l.PID, last, runs)
	}
	if show := u.ok(dir, "show", s.hash); !strings.Contains(show, "PID:       "+strconv.Itoa(last)+"\n") {
		t.Errorf("show, want PID %d:\n%s", last, show)
	}
}

// TestCleanLeavesOnlyTheLog: clean forgets a stopped or ended task with
// its runtime files; only its log stays.
func TestCleanLeavesOnlyTheLog(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	stopped := u.start(dir, "sleep", "100")
	ended := u.start(dir, "sh", "-c", "exit 3")
	u.ok(dir, "stop", stopped.hash)
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool { return u.listed(dir, ended.hash).Status == "exited" })
	if len(u.runFiles(stopped.hash)) == 0 {
		t.Fatalf("no runtime files to clean (the recorded environment)")
	}
	if out := u.ok(dir, "clean"); out != "[btl] Removed 2 ended tasks\n" {
		t.Errorf("clean printed %q", out)
	}
	for _, s := range []started{stopped, ended} {
		if f := u.runFiles(s.hash); len(f) != 0 {
			t.Errorf("clean left runtime files %v", f)
		}
		if _, err := os.Stat(s.log); err != nil {
			t.Errorf("clean removed the log: %v", err)
		}
	}
}
