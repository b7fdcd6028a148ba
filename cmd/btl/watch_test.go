package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
)

// watchedTask is the command of a watched test task: it appends its PID
// to out/pids, says OVERLAP there if it starts while another instance
// still runs (out/running exists), and removes out/running when it is
// stopped. Its files are outside the watched directory.
func watchedTask(out string) []string {
	script := fmt.Sprintf(`o=%s; [ -e "$o/running" ] && echo OVERLAP >> "$o/pids"; touch "$o/running"; echo $$ >> "$o/pids"; trap 'rm -f "$o/running"; exit 0' TERM; while :; do sleep 0.05; done`, core.Quote(out))
	return []string{"sh", "-c", script}
}

// taskPIDs are the lines of out/pids.
func taskPIDs(out string) []string {
	b, _ := os.ReadFile(filepath.Join(out, "pids"))
	return strings.Fields(string(b))
}

// watchInfo returns the watch field of the only task btl list shows.
func (u *user) watchInfo(dir string) *watchJSON {
	u.t.Helper()
	var ts []struct {
		Watch *watchJSON `json:"watch"`
	}
	if err := json.Unmarshal([]byte(u.ok(dir, "list", "-o", "json")), &ts); err != nil || len(ts) != 1 {
		u.t.Fatalf("list -o json: %v, %d tasks", err, len(ts))
	}
	return ts[0].Watch
}

// watchAfter is watchInfo once list shows at least n replaces: a replace
// runs the new instance before it records itself, and list does not wait
// for the record.
func (u *user) watchAfter(dir string, n int) *watchJSON {
	u.t.Helper()
	var w *watchJSON
	coretest.Eventually(u.t, 10*time.Second, fmt.Sprintf("list to show %d replaces", n), func() bool {
		w = u.watchInfo(dir)
		return w != nil && w.Replaces >= n
	})
	return w
}

// startWatched starts a watched task in dir and waits until its watcher
// runs.
func (u *user) startWatched(dir string, args ...string) (started, int) {
	u.t.Helper()
	s := u.start(dir, append([]string{"--watch", "--debounce", "200ms"}, args...)...)
	w := u.watchInfo(dir)
	if w == nil || w.WatcherPID == 0 {
		u.t.Fatalf("list shows no watcher: %+v", w)
	}
	return s, w.WatcherPID
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWatchReplacesOnce: an edit under a watched directory replaces the
// task once, the old tree gone before the new one starts; a storm of
// 1,000 writes gives one replace; list shows the change.
func TestWatchReplacesOnce(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	s, _ := u.startWatched(dir, watchedTask(out)...)
	coretest.Eventually(t, 10*time.Second, "the task to run", func() bool { return len(taskPIDs(out)) == 1 })

	edited := time.Now()
	write(t, filepath.Join(dir, "src", "app.js"), "one")
	coretest.Eventually(t, 10*time.Second, "one replace after an edit", func() bool { return len(taskPIDs(out)) == 2 })
	t.Logf("edit to new instance: %v", time.Since(edited))
	if p := taskPIDs(out); p[0] != strconv.Itoa(s.pid) || coretest.Alive(s.pid) || slicesContains(p, "OVERLAP") {
		t.Errorf("the old instance was not gone before the new one started: %v", p)
	}
	w := u.watchAfter(dir, 1)
	if w.Replaces != 1 || w.LastChange == nil || !strings.HasSuffix(w.LastPath, "app.js") {
		t.Errorf("list does not show the change: %+v", w)
	}
	if r := u.ok(dir, "list"); !strings.Contains(r, "running, watched (changed") {
		t.Errorf("list does not show the task as watched:\n%s", r)
	}

	// A build writing 1,000 files: one replace. A later edit makes the
	// second, so a storm's extra replace would show as a third.
	for i := range 1000 {
		write(t, filepath.Join(dir, "gen", fmt.Sprintf("f%d.js", i)), "x")
	}
	coretest.Eventually(t, 15*time.Second, "one replace after 1,000 writes", func() bool { return len(taskPIDs(out)) >= 3 })
	write(t, filepath.Join(dir, "src", "app.js"), "two")
	coretest.Eventually(t, 10*time.Second, "the replace after the next edit", func() bool { return len(taskPIDs(out)) >= 4 })
	if p := taskPIDs(out); len(p) != 4 || slicesContains(p, "OVERLAP") {
		t.Errorf("1,000 writes and an edit gave %d starts, want 4 in all: %v", len(p), p)
	}
	if w := u.watchAfter(dir, 3); w.Replaces != 3 {
		t.Errorf("replaces: %d, want 3", w.Replaces)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestWatchIgnored: changes under the default ignores, the .gitignore's
// patterns and --ignore globs replace nothing.
func TestWatchIgnored(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, ".gitignore"), "# generated\n/gen/\n*.tmp\n")
	write(t, filepath.Join(dir, "node_modules", "keep"), "")
	u.start(dir, append([]string{"--watch", "--debounce", "100ms", "--ignore", "*.bak"}, watchedTask(out)...)...)
	coretest.Eventually(t, 10*time.Second, "the task to run", func() bool { return len(taskPIDs(out)) == 1 })
	for _, p := range []string{"node_modules/x/index.js", ".git/HEAD", "server.log", "dist/app.js", "gen/a.go", "x.tmp", "notes.bak", "__pycache__/m.pyc"} {
		write(t, filepath.Join(dir, p), "x")
	}
	// Then a change that counts: it alone replaces the task.
	write(t, filepath.Join(dir, "main.go"), "x")
	coretest.Eventually(t, 10*time.Second, "the replace after main.go changed", func() bool { return len(taskPIDs(out)) >= 2 })
	if w := u.watchAfter(dir, 1); w.Replaces != 1 || !strings.HasSuffix(w.LastPath, "main.go") {
		t.Errorf("ignored paths replaced the task: %+v", w)
	}
}

// TestWatchCrashedTask: a watched task that crashed is started again on
// the next change.
func TestWatchCrashedTask(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	script := fmt.Sprintf(`echo $$ >> %s/pids; exit 1`, core.Quote(out))
	u.startWatched(dir, "sh", "-c", script)
	coretest.Eventually(t, 10*time.Second, "the task to crash", func() bool {
		return strings.Contains(u.ok(dir, "list"), "exited 1, watched")
	})
	write(t, filepath.Join(dir, "fix.py"), "x")
	coretest.Eventually(t, 10*time.Second, "the crashed task to start again", func() bool { return len(taskPIDs(out)) == 2 })
}

// TestWatchEndsWithTask: kill and stop end the watcher; a change after
// them starts nothing; restart watches again.
func TestWatchEndsWithTask(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	s, watcher := u.startWatched(dir, watchedTask(out)...)
	wp := watcherProc(t, watcher)
	u.ok(dir, "stop", s.hash)
	coretest.Eventually(t, 10*time.Second, "stop to end the watcher", func() bool { return !wp.Verify() })
	if r := u.ok(dir, "list"); strings.Contains(r, "watched") {
		t.Errorf("a stopped task is shown as watched:\n%s", r)
	}
	write(t, filepath.Join(dir, "a.txt"), "x")

	// restart watches again; kill ends that watcher.
	u.ok(dir, "restart", s.hash)
	w := u.watchInfo(dir)
	if w == nil || w.WatcherPID == 0 || w.WatcherPID == watcher {
		t.Fatalf("restart does not watch again: %+v", w)
	}
	wp = watcherProc(t, w.WatcherPID)
	if n := len(taskPIDs(out)); n != 2 {
		t.Errorf("%d starts after stop, a change and restart, want 2", n)
	}
	u.ok(dir, "kill", s.hash)
	coretest.Eventually(t, 10*time.Second, "kill to end the watcher", func() bool { return !wp.Verify() })
	write(t, filepath.Join(dir, "b.txt"), "x")
	if n := len(taskPIDs(out)); n != 2 {
		t.Errorf("%d starts after kill, want 2", n)
	}

	// A run without --watch ends the watching too.
	u.startWatched(dir, watchedTask(out)...)
	w = u.watchInfo(dir)
	wp = watcherProc(t, w.WatcherPID)
	u.start(dir, watchedTask(out)...)
	coretest.Eventually(t, 10*time.Second, "a run without --watch to end the watcher", func() bool { return !wp.Verify() })
}

func watcherProc(t *testing.T, pid int) core.Proc {
	t.Helper()
	info, err := proc.LookupProc(pid)
	if err != nil {
		t.Fatalf("watcher %d: %v", pid, err)
	}
	return core.Proc{PID: pid, Start: info.Start}
}

// TestWatchBadFlags: --watch of a path that does not exist, --debounce
// without --watch: one line, exit 2, nothing started.
func TestWatchBadFlags(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--watch=nope", "sleep", "100"},
		{"--debounce", "1s", "sleep", "100"},
		{"--watch", "--debounce", "0s", "sleep", "100"},
		{"--env-file", "missing.env", "sleep", "100"},
	} {
		r := u.btl(dir, args...)
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("btl %q: %+v", args, r)
		}
	}
	if len(u.state().Processes) != 0 {
		t.Error("a refused start left a task")
	}
}

// ensureJSON runs btl ensure -o json and decodes its one object.
func (u *user) ensureJSON(dir string, args ...string) (resultJSON, result) {
	u.t.Helper()
	r := u.btl(dir, append([]string{"ensure", "-o", "json"}, args...)...)
	var j resultJSON
	if strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &j) != nil {
		u.t.Errorf("ensure -o json printed other than one JSON object: %+v", r)
	}
	return j, r
}

// TestEnsureConcurrent: ten btl ensure at once leave one instance,
// started once; each prints it.
func TestEnsureConcurrent(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	argv := watchedTask(out)
	var wg sync.WaitGroup
	res := make([]resultJSON, 10)
	codes := make([]int, 10)
	for i := range res {
		wg.Go(func() {
			var r result
			res[i], r = u.ensureJSON(dir, argv...)
			codes[i] = r.code
		})
	}
	wg.Wait()
	actions := map[string]int{}
	for i, j := range res {
		actions[j.Action]++
		if codes[i] != 0 || j.PID != res[0].PID || j.Status != "running" || j.Hash != res[0].Hash {
			t.Errorf("ensure %d: exit %d, %+v (first: %+v)", i, codes[i], j, res[0])
		}
	}
	if actions["started"] != 1 || actions["kept"] != 9 {
		t.Errorf("actions: %v, want 1 started, 9 kept", actions)
	}
	coretest.Eventually(t, 10*time.Second, "the task to run", func() bool { return len(taskPIDs(out)) >= 1 })
	if p := taskPIDs(out); len(p) != 1 {
		t.Errorf("ten ensure started %d instances: %v", len(p), p)
	}
	if n := len(u.state().Processes); n != 1 {
		t.Errorf("%d tasks recorded, want 1", n)
	}
}

// TestEnsureReady: ensure with --wait-port keeps a running, ready task
// (no PID changes), starts one that ended, and says ready in its JSON.
func TestEnsureReady(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	port := freePort(t)
	argv := listenArgv("127.0.0.1:"+strconv.Itoa(port), 0)
	wait := []string{"--wait-port", strconv.Itoa(port), "--wait-timeout", "20s"}
	first, r := u.ensureJSON(dir, append(wait, argv...)...)
	if r.code != 0 || first.Action != "started" || first.Ready == nil || !*first.Ready || !slicesContainsInt(first.Ports, port) {
		t.Fatalf("first ensure: %+v %+v", first, r)
	}
	again, r := u.ensureJSON(dir, append(wait, argv...)...)
	if r.code != 0 || again.Action != "kept" || again.PID != first.PID || again.Ready == nil || !*again.Ready {
		t.Errorf("ensure of a running ready task: %+v %+v", again, r)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("[btl] Already running (PID %d)", first.PID)) {
		t.Errorf("ensure does not say it kept the task: %s", r.stderr)
	}
	// Without -o json it says so on stdout.
	if out := u.ok(dir, append([]string{"ensure"}, argv...)...); !strings.HasPrefix(out, fmt.Sprintf("[btl] Already running (PID %d)", first.PID)) {
		t.Errorf("ensure printed:\n%s", out)
	}
	u.ok(dir, "stop", first.Hash)
	third, r := u.ensureJSON(dir, append(wait, argv...)...)
	if r.code != 0 || third.Action != "started" || third.PID == first.PID || !dials(port) {
		t.Errorf("ensure of a stopped task: %+v %+v", third, r)
	}
}

func slicesContainsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestJSONExitCodes: -o json prints one object per task and nothing else
// on stdout, for start, restart, stop and kill; the exit codes are the
// documented ones.
func TestJSONExitCodes(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	one := func(args ...string) (resultJSON, result) {
		t.Helper()
		r := u.btl(dir, args...)
		var j resultJSON
		if strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &j) != nil {
			t.Errorf("btl %q printed other than one JSON object on stdout: %+v", args, r)
		}
		return j, r
	}
	j, r := one("-o", "json", "--name", "nap", "sleep", "300")
	if r.code != 0 || j.Action != "started" || j.Name != "nap" || j.Status != "running" || j.Ready != nil || j.Backend != backendUnderTest() || !coretest.Alive(j.PID) || !strings.HasSuffix(j.Log, j.Hash+".log") {
		t.Errorf("start: %+v %+v", j, r)
	}
	j2, r := one("restart", "-o", "json", "nap")
	if r.code != 0 || j2.Action != "replaced" || j2.PID == j.PID || j2.Hash != j.Hash {
		t.Errorf("restart: %+v %+v", j2, r)
	}
	j3, r := one("stop", "-o", "json", "nap")
	if r.code != 0 || j3.Action != "stopped" || j3.Status != "stopped" || coretest.Alive(j2.PID) {
		t.Errorf("stop: %+v %+v", j3, r)
	}
	j4, r := one("kill", "-o", "json", "nap")
	if r.code != 0 || j4.Hash != j.Hash {
		t.Errorf("kill: %+v %+v", j4, r)
	}

	port := strconv.Itoa(freePort(t))
	for _, c := range []struct {
		args []string
		code int
		json bool // a task was started: its object is printed
	}{
		{[]string{"-o", "json", "--wait-port", port, "sh", "-c", "exit 3"}, 3, true},
		{[]string{"-o", "json", "--wait-port", port, "--wait-timeout", "200ms", "sleep", "301"}, 124, true},
		{[]string{"-o", "json", "--wait-port", "0", "sleep", "302"}, 2, false},
		{[]string{"-o", "yaml", "sleep", "303"}, 2, false},
		{[]string{"-o", "json", "no-such-program-here"}, 127, false},
	} {
		r := u.btl(dir, c.args...)
		var j resultJSON
		switch {
		case r.code != c.code:
			t.Errorf("btl %q: exit %d, want %d: %+v", c.args, r.code, c.code, r)
		case c.json && (json.Unmarshal([]byte(r.stdout), &j) != nil || j.Ready == nil || *j.Ready):
			t.Errorf("btl %q: want a JSON object with ready false: %q", c.args, r.stdout)
		case !c.json && r.stdout != "":
			t.Errorf("btl %q printed on stdout: %q", c.args, r.stdout)
		}
	}
	// The table in btl --help has them all.
	help := u.ok(dir, "--help")
	for _, code := range []string{"0 started", "1 an error", "2 a usage error", "3 ", "124 ", "126 ", "127 ", "130 "} {
		if !strings.Contains(strings.Join(strings.Fields(help), " "), code) {
			t.Errorf("btl --help does not document exit code %q", code)
		}
	}
}

// TestEnvFile: --env-file sets the task's variables, is recorded with the
// task, and is read again by restart.
func TestEnvFile(t *testing.T) {
	u := newUser(t)
	dir, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, ".env"), "# settings\nexport GREETING='hello there'\nPORT=8080 # dev\nQUOTED=\"a\\nb\"\n")
	script := fmt.Sprintf(`printf '%%s|%%s|%%s\n' "$GREETING" "$PORT" "$QUOTED" >> %s/env; exec sleep 300`, core.Quote(out))
	s := u.start(dir, "--env-file", ".env", "sh", "-c", script)
	envOut := func() string { b, _ := os.ReadFile(filepath.Join(out, "env")); return string(b) }
	coretest.Eventually(t, 10*time.Second, "the task to write its environment", func() bool { return strings.Count(envOut(), "\n") >= 2 })
	if got := envOut(); got != "hello there|8080|a\nb\n" {
		t.Errorf("env: %q", got)
	}
	if f := u.state().Processes[s.hash].EnvFiles; len(f) != 1 || f[0] != filepath.Join(dir, ".env") {
		t.Errorf("recorded env files: %q", f)
	}
	write(t, filepath.Join(dir, ".env"), "GREETING=changed\n")
	u.ok(t.TempDir(), "restart", s.hash)
	coretest.Eventually(t, 10*time.Second, "the restarted task to write its environment", func() bool { return strings.Count(envOut(), "\n") >= 4 })
	if !strings.Contains(envOut(), "\nchanged|8080|a\nb\n") {
		t.Errorf("restart did not read the env file again: %q", envOut())
	}
}

// TestLogsOfEndedTaskExits: btl logs of a task that ended prints its log
// and exits at once.
func TestLogsOfEndedTaskExits(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo all done")
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool {
		return strings.Contains(u.ok(dir, "list"), "exited 0")
	})
	for _, args := range [][]string{{"logs", s.hash}, {"logs", "-n", "1", s.hash}} {
		begun := time.Now()
		r := u.btl(dir, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "all done\n") || time.Since(begun) > 10*time.Second {
			t.Errorf("btl %q: %+v after %v", args, r, time.Since(begun))
		}
	}
}

// TestWatchListRedraws: btl list --watch redraws the table in place,
// without the alternate screen, and exits 0 on q and on Ctrl-C.
func TestWatchListRedraws(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "300")
	for _, quit := range []string{"q", "SIGINT"} {
		cmd := exec.Command(os.Args[0], "list", "--watch")
		cmd.Dir, cmd.Env = dir, u.env
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		coretest.Eventually(t, 15*time.Second, "list --watch to redraw", func() bool {
			o := out.String()
			return strings.Contains(o, s.hash) && strings.Contains(o, "A\r\x1b[J") && strings.Count(o, s.hash) >= 2
		})
		if quit == "q" {
			_, _ = in.Write([]byte("q"))
		} else {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("list --watch after %s: %v\n%s", quit, err, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("list --watch did not exit on %s", quit)
		}
		if strings.Contains(out.String(), "\x1b[?1049h") {
			t.Error("list --watch switched to the alternate screen")
		}
		_ = in.Close()
	}
}

// TestEnsureReplacesUnready: ensure of a running task that is not ready in
// time replaces it once, and exits 124 when the new one is not ready
// either; one that ended is started again.
func TestEnsureReplacesUnready(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	first := u.start(dir, "sleep", "300")
	port := strconv.Itoa(freePort(t))
	j, r := u.ensureJSON(dir, "--wait-port", port, "--wait-timeout", "300ms", "sleep", "300")
	if r.code != 124 || j.Action != "replaced" || j.PID == first.pid || coretest.Alive(first.pid) || j.Ready == nil || *j.Ready {
		t.Errorf("ensure of a task not ready in time: %+v %+v", j, r)
	}
	if strings.Count(r.stderr, "[btl] Replacing it\n") != 1 {
		t.Errorf("ensure did not say it replaced the task once: %s", r.stderr)
	}
	s := u.start(dir, "sh", "-c", "exit 4")
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool { return strings.Contains(u.ok(dir, "list"), "exited 4") })
	j, r = u.ensureJSON(dir, "sh", "-c", "exit 4")
	if r.code != 0 || j.Action != "replaced" && j.Action != "started" || j.Hash != s.hash {
		t.Errorf("ensure of an ended task: %+v %+v", j, r)
	}
}
