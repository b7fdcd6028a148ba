package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/core/coretest"
)

// TestInterruptedWait: Ctrl-C during --wait-port exits 130, says the task
// still runs, and leaves it running.
func TestInterruptedWait(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, flag := range [][]string{{"--wait-port", "9"}, {"--wait-log", "never"}, {"--wait"}} {
		cmd := exec.Command(os.Args[0], append(flag, "sleep", "200")...)
		cmd.Dir = dir
		cmd.Env = u.env
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		coretest.Eventually(t, 10*time.Second, "the task to start", func() bool {
			return strings.Contains(out.String(), "[btl] Logs:")
		})
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		hash := u.state().Sorted()[0].Hash
		want := "Error: interrupted; " + hash + " still runs (btl kill " + hash + " stops it)\n"
		if code := cmd.ProcessState.ExitCode(); code != 130 || errb.String() != want {
			t.Errorf("%v interrupted: exit %d, stderr %q, want 130 and %q", flag, code, errb.String(), want)
		}
		if l := u.listed(dir, hash); l.Status != "running" {
			t.Errorf("task after an interrupted wait: %+v", l)
		}
	}
}

// TestTypoHints: a first word that is no program but close to a btl
// command, or a pm2 verb, gets a hint, exit 127, and starts nothing; a
// program of such a name still runs.
func TestTypoHints(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"lsit"}, "btl list"},
		{[]string{"delete", "web"}, "btl kill"},
		{[]string{"status"}, "btl list"},
		{[]string{"restrat", "web"}, "btl restart"},
		{[]string{"--name", "x", "lgos"}, "btl logs"},
	} {
		r := u.btlEnv(dir, []string{searchablePath(u)}, tc.args...)
		word := tc.args[0]
		if word == "--name" {
			word = tc.args[2]
		}
		want := "Error: " + word + ": command not found; did you mean `" + tc.hint + "`?\n"
		if r.code != 127 || r.stderr != want || r.stdout != "" {
			t.Errorf("btl %q: exit %d, stderr %q, want 127 and %q", tc.args, r.code, r.stderr, want)
		}
	}
	if r := u.btlEnv(dir, []string{searchablePath(u)}, "nosuchprogram"); r.code != 127 || strings.Contains(r.stderr, "did you mean") {
		t.Errorf("nosuchprogram: exit %d, %q", r.code, r.stderr)
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("hints started %d tasks", n)
	}
	// A program that exists runs, even with a pm2 verb's name.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "status"), []byte("#!/bin/sh\necho status program ran\n"), 0o755)
	r := u.btlEnv(dir, []string{"PATH=" + bin + ":" + strings.TrimPrefix(searchablePath(u), "PATH=")}, "status")
	s, ok := parseStart(r.stdout)
	if r.code != 0 || !ok {
		t.Fatalf("btl status with a status program: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	u.ok(dir, "logs", s.hash) // brings a journal-backed log up to date
	waitLog(t, s.log, "status program ran")
}

// searchablePath is the PATH= entry of u's environment without the
// directories this user cannot search (a shell skips those; btl says 126).
func searchablePath(u *user) string {
	var path string
	for _, e := range u.env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	var keep []string
	for _, d := range filepath.SplitList(path) {
		if syscall.Access(d, 1) == nil {
			keep = append(keep, d)
		}
	}
	return "PATH=" + strings.Join(keep, ":")
}

// TestFlagsBeforeAnAlias: btl flags before a word that is a btl alias make
// it the command to run; an alias is btl's only as the first word.
func TestFlagsBeforeAnAlias(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "marker-file"), nil, 0o600)
	for _, args := range [][]string{
		{"--name", "x", "ls", dir},
		{"--backend", backendUnderTest(), "ls", dir, "-a"},
		{"--no-unbuffer", "ls", dir, "-1"},
	} {
		out := u.ok(dir, args...)
		if !strings.Contains(out, "[btl] Starting: ls") {
			t.Errorf("btl %q:\n%s", args, out)
		}
	}
	if out := u.ok(dir, "--backend", backendUnderTest(), "list"); !strings.HasPrefix(out, "HASH") {
		t.Errorf("btl --backend X list:\n%s", out)
	}
	if out := u.ok(dir, "ls"); !strings.HasPrefix(out, "HASH") {
		t.Errorf("btl ls:\n%s", out)
	}
}

// TestSmallerEdges: errors in btl's words, an empty log said to be empty,
// an inaccessible directory named as such, readiness timed from the start.
func TestSmallerEdges(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	if r := u.btl(dir, "logs", "-n", "abc"); r.code != 2 || strings.Contains(r.stderr, "strconv") || !strings.Contains(r.stderr, "not a whole number") {
		t.Errorf("logs -n abc: exit %d, %q", r.code, r.stderr)
	}
	if r := u.btl(dir, "--wait-timeout", "soon", "sleep", "1"); r.code != 2 || strings.Contains(r.stderr, "time:") {
		t.Errorf("--wait-timeout soon: exit %d, %q", r.code, r.stderr)
	}
	r := u.btl(dir, "--wait-port", "9", "--wait-timeout", "300ms", "sleep", "100")
	if r.code != 124 || !strings.Contains(r.stderr, "[btl] Not ready after 300ms; nothing in its log\n") {
		t.Errorf("timeout with an empty log: exit %d\n%s", r.code, r.stderr)
	}
	out := u.ok(dir, "--wait-log", "ready", "sh", "-c", "sleep 1; echo ready; exec sleep 100")
	i := strings.Index(out, "[btl] Ready after ")
	if i < 0 {
		t.Fatalf("no ready line:\n%s", out)
	}
	if secs, err := strconv.ParseFloat(strings.TrimSuffix(strings.Fields(out[i+len("[btl] Ready after "):])[0], "s:"), 64); err != nil || secs < 1 {
		t.Errorf("ready after %v (%v) for a task that sleeps 1s first:\n%s", secs, err, out)
	}
	// A directory that became mode 000 while the shell was in it.
	locked := filepath.Join(t.TempDir(), "locked")
	os.Mkdir(locked, 0o700)
	t.Cleanup(func() { os.Chmod(locked, 0o700) })
	cmd := exec.Command("sh", "-c", `chmod 0 . && exec "$0" sleep 1`, os.Args[0])
	cmd.Dir, cmd.Env = locked, u.env
	got, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(got), "is not accessible") {
		t.Errorf("start in a directory of mode 000: exit %d (%v), %q", code, err, got)
	}
}

// TestLogsSinceFiltersLines: --since picks the lines written since a time,
// not the runs started since, and --timestamps prints each line's time.
func TestLogsSinceFiltersLines(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo early; while [ ! -e go ]; do sleep 0.02; done; echo late; exec sleep 100")
	u.ok(dir, "logs", s.hash)
	waitLog(t, s.log, "early\n")
	early := time.Now()
	// The next second on the clock, which the log's times count in.
	coretest.Eventually(t, 5*time.Second, "a second to pass", func() bool { return time.Since(early) > 1100*time.Millisecond })
	since := time.Now().UTC()
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o600)
	coretest.Eventually(t, 10*time.Second, "late in the log", func() bool {
		return strings.Contains(u.ok(dir, "logs", s.hash), "late\n")
	})
	out := u.ok(dir, "logs", s.hash, "--since", since.Format(time.RFC3339))
	if out != "late\n" {
		t.Errorf("logs --since %s: %q, want only the line written since", since.Format(time.RFC3339), out)
	}
	if out := u.ok(dir, "logs", s.hash, "--since", "1h"); !strings.Contains(out, "early\n") || !strings.Contains(out, "started PID") {
		t.Errorf("logs --since 1h: %q", out)
	}
	out = u.ok(dir, "logs", s.hash, "--timestamps")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("logs --timestamps:\n%s", out)
	}
	var times []time.Time
	for i, want := range []string{"[btl] ", "early", "late"} {
		at, err := time.Parse(time.RFC3339, lines[i][:stampWidth])
		if err != nil || !strings.HasPrefix(lines[i][stampWidth+1:], want) {
			t.Errorf("line %d of logs --timestamps: %q (%v)", i, lines[i], err)
		}
		times = append(times, at)
	}
	if len(times) == 3 && (times[1].After(early) || times[2].Before(since.Truncate(time.Second)) || times[0].After(times[1])) {
		t.Errorf("times %v: early was logged by %v, late after %v", times, early, since)
	}
	if out := u.ok(dir, "logs", s.hash, "-t", "-n", "1"); !strings.HasSuffix(out, " late\n") || len(out) != stampWidth+len(" late\n") {
		t.Errorf("logs -t -n 1: %q", out)
	}
	if r := u.btl(dir, "logs", "--timestamps"); r.code != 2 {
		t.Errorf("logs --timestamps without a hash: exit %d", r.code)
	}
	// The times go with the log.
	u.ok(dir, "kill", s.hash)
	u.ok(dir, "clean", "--all")
	if left, _ := filepath.Glob(filepath.Join(u.dataDir(), "logs", "*")); len(left) != 0 {
		t.Errorf("clean --all left %v", left)
	}
}

// TestLogsFollowEndLines: following every task, a replace, a stop and a
// kill each end their instance with a line, in order, and a longer name
// that joins later keeps the label column as wide as it was.
func TestLogsFollowEndLines(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	webArgv := []string{"--name", "web", "sh", "-c", `echo "web up $$"; exec sleep 100`}
	web := u.start(dir, webArgv...)
	job := u.start(dir, "--name", "job", "sh", "-c", "echo job up; exec sleep 100")
	waitLog(t, web.log, "web up")
	waitLog(t, job.log, "job up")
	cmd, out, done := u.followArgs(dir, "-f")
	has := func(what, s string) {
		t.Helper()
		coretest.Eventually(t, 10*time.Second, what, func() bool { return strings.Contains(out.String(), s) })
	}
	has("web's line", "web      | web up "+strconv.Itoa(web.pid)+"\n")
	web2 := u.start(dir, webArgv...)
	has("the replaced end line, then the new run", "web      | [btl] replaced\nweb      | [btl] ")
	has("the new run's output", "web      | web up "+strconv.Itoa(web2.pid)+"\n")
	if i, j := strings.Index(out.String(), "[btl] replaced"), strings.Index(out.String(), "started PID "+strconv.Itoa(web2.pid)); i < 0 || j < i {
		t.Errorf("the replaced line comes after the new run's marker:\n%s", out.String())
	}
	u.ok(dir, "stop", "job")
	has("the stopped end line", "job      | [btl] stopped\n")
	u.ok(dir, "kill", "web")
	has("the killed end line", "web      | [btl] killed\n")
	long := u.start(dir, "--name", "a-much-longer-name", "sh", "-c", "echo long up; exec sleep 100")
	has("the longer name's line, cut to the column", "a-much-~ | long up\n")
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if strings.Index(l, " | ") != 8 {
			t.Errorf("label column moved: %q", l)
		}
	}
	if strings.Count(out.String(), "[btl] replaced") != 1 {
		t.Errorf("replaced said more than once:\n%s", out.String())
	}
	u.ok(dir, "kill", long.hash)
	cmd.Process.Signal(os.Interrupt)
	waitDone(t, done, "logs -f after interrupt")
}

// TestLogsFollowOneKilledOrStopped: following one task ends with a line
// that says how it was stopped.
func TestLogsFollowOneKilledOrStopped(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, verb := range []string{"kill", "stop"} {
		s := u.start(dir, "sh", "-c", "echo up; exec sleep 100")
		_, out, done := u.follow(dir, s.hash)
		coretest.Eventually(t, 10*time.Second, "its output", func() bool { return strings.Contains(out.String(), "up\n") })
		u.ok(dir, verb, s.hash)
		waitDone(t, done, "logs -f after "+verb)
		want := map[string]string{"kill": "[btl] killed\n", "stop": "[btl] stopped\n"}[verb]
		if !strings.HasSuffix(out.String(), want) {
			t.Errorf("logs -f of a task that got btl %s ended with %q", verb, out.String())
		}
	}
}

// TestStartSaysWhoHoldsItsPort: a start whose command line names a port
// that another process holds says so at once (the task may only fail
// later); the task's own port, once it listens, is no such case, and
// neither is a port the replaced instance held.
func TestStartSaysWhoHoldsItsPort(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// The port is held by a process of its own, not by this test binary:
	// a child the binary forks for another test holds a copy of every
	// socket of the binary until it executes, and would be named instead.
	port := freePort(t)
	l := exec.Command(os.Args[0])
	l.Env = append(os.Environ(), "BTL_TEST_LISTEN=127.0.0.1:"+strconv.Itoa(port))
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Process.Kill(); _ = l.Wait() }()
	coretest.Eventually(t, 10*time.Second, "the holder to listen", func() bool { return dials(port) })
	p := strconv.Itoa(port)
	want := "[btl] port " + p + " is held by PID " + strconv.Itoa(l.Process.Pid) + ", not by this task; it may fail to listen there\n"
	for _, argv := range [][]string{
		{"sh", "-c", "exec sleep 100", "server", p},
		{"env", "PORT=" + p, "sleep", "101"},
		{"sh", "-c", "exec sleep 102", "server", "--listen", "http://localhost:" + p + "/"},
	} {
		if out := u.ok(dir, argv...); !strings.Contains(out, want) {
			t.Errorf("btl %q, want %q:\n%s", argv, want, out)
		}
	}
	// A replace of a task that listens on its port: the old instance is
	// gone when btl looks, so nothing is said.
	q := freePort(t)
	argv := listenArgv("127.0.0.1:"+strconv.Itoa(q), 0)
	u.ok(dir, append([]string{"--wait-port", strconv.Itoa(q)}, argv...)...)
	for range 3 {
		if out := u.ok(dir, argv...); strings.Contains(out, "is held by") {
			t.Errorf("a replace of the task on its own port:\n%s", out)
		}
	}
	// A btl task that holds the port is named.
	holder := u.start(dir, argv...)
	coretest.Eventually(t, 10*time.Second, "the holder to listen", func() bool { return dials(q) })
	out := u.ok(dir, "sh", "-c", "exec sleep 103", "server", strconv.Itoa(q))
	if want := "[btl] port " + strconv.Itoa(q) + " is held by task " + holder.hash[:8] + " ("; !strings.Contains(out, want) {
		t.Errorf("a start on a btl task's port, want %q:\n%s", want, out)
	}
}

func TestCommandPorts(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want []int
	}{
		{[]string{"python3", "-m", "http.server", "8080"}, []int{8080}},
		{[]string{"npm", "run", "dev", "--", "--port", "5173"}, []int{5173}},
		{[]string{"node", "server.js", "-p", "80"}, []int{80}},
		{[]string{"env", "PORT=3004", "node", "server.js"}, []int{3004}},
		{[]string{"vite", "--port=5174", "--host", "0.0.0.0"}, []int{5174}},
		{[]string{"serve", "--listen", "http://localhost:9000/app"}, []int{9000}},
		{[]string{"sleep", "100"}, nil},
		{[]string{"8080"}, nil}, // the program itself
		{[]string{"x", "99999", "123", "2026-01-02"}, nil},
	} {
		if got := commandPorts(tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("commandPorts(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

// TestCompletionOffersProgramsAndFiles: the first word completes to btl's
// commands, programs on PATH and files, as a shell would for a command;
// stop completes hashes like kill.
func TestCompletionOffersProgramsAndFiles(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "pyserve"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "pynotexec"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "scr.sh"), nil, 0o755)
	os.Mkdir(filepath.Join(dir, "scripts"), 0o700)
	path := []string{"PATH=" + bin + ":/usr/bin:/bin"}
	for _, tc := range []struct {
		word      string
		want, not []string
	}{
		{"py", []string{"pyserve\n"}, []string{"pynotexec"}},
		{"./scr", []string{"./scr.sh\n", "./scripts/\n"}, nil},
		{"sc", []string{"scr.sh\n", "scripts/\n"}, nil},
		{"li", []string{"list\t"}, nil},
		{"st", []string{"stop\t"}, nil},
	} {
		out := u.btlEnv(dir, path, "__complete", tc.word).stdout
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("completion of %q lacks %q:\n%s", tc.word, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("completion of %q has %q:\n%s", tc.word, n, out)
			}
		}
	}
	// A word after the program: the shell's own file completion.
	if out := u.btlEnv(dir, path, "__complete", "npm", "ru").stdout; !strings.HasSuffix(out, ":0\n") {
		t.Errorf("completion of the command's arguments:\n%s", out)
	}
	s := u.start(dir, "sleep", "100")
	if out := u.btl(dir, "__complete", "stop", "").stdout; !strings.Contains(out, s.hash+"\tsleep 100\n") {
		t.Errorf("completion of stop:\n%s", out)
	}
}

// TestForkSupervisorNamedAndCommandRecovered: a fork supervisor shows in
// ps as "btl supervise <hash>", never with the task's command line, and a
// task found again after state.json was lost shows the command line btl
// started, not the program it exec'd.
func TestForkSupervisorNamedAndCommandRecovered(t *testing.T) {
	if backendUnderTest() != "fork" {
		t.Skip("fork supervisors only")
	}
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "env", "PORT=3004", "sleep", "100")
	helper := u.state().Processes[s.hash].Helper
	if helper == nil {
		t.Fatal("no supervisor recorded")
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(helper.PID) + "/cmdline")
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(args) != 3 || args[1] != "supervise" || args[2] != s.hash {
		t.Errorf("supervisor's argv %q, want [<btl> supervise %s]", args, s.hash)
	}
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	l := u.listed(dir, s.hash)
	var ls []struct {
		Hash, Command, Cwd string
		Argv               []string
	}
	json.Unmarshal([]byte(u.ok(dir, "list", "-o", "json")), &ls)
	if len(ls) != 1 || ls[0].Command != "env PORT=3004 sleep 100" || ls[0].Cwd != mustReal(t, dir) || len(ls[0].Argv) != 4 {
		t.Errorf("re-adopted task: %+v (%+v)", ls, l)
	}
	if out := u.ok(dir, "sleep", "0.1", "x"); strings.Contains(out, "Killing previous") {
		t.Errorf("unrelated start replaced something:\n%s", out)
	}
	// The recovered command still names the task: the same start replaces it.
	if r := u.start(dir, "env", "PORT=3004", "sleep", "100"); r.killed != s.pid {
		t.Errorf("a start of the same command line did not replace the re-adopted task: %+v", r)
	}
}

// TestExitCodesDocumented: btl --help and the README list every exit code
// a start can give, and the README's command table names every command
// that forgets or stops tasks.
func TestExitCodesDocumented(t *testing.T) {
	u := newUser(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, codes, _ := strings.Cut(string(readme), "### Exit codes\n")
	codes, _, _ = strings.Cut(codes, "\n\n\n")
	help := u.ok(t.TempDir(), "--help")
	for _, c := range []string{"0", "1", "2", "124", "126", "127", "130"} {
		if !strings.Contains(codes, "| `"+c+"` |") {
			t.Errorf("the README's exit codes lack %s", c)
		}
		if !regexp.MustCompile(`\b` + c + ` [a-z]`).MatchString(help) {
			t.Errorf("btl --help does not explain exit code %s", c)
		}
	}
	for _, verb := range []string{"stop", "restart", "kill", "clean", "clean --all"} {
		if !strings.Contains(string(readme), "\n| `btl "+verb+"` |") {
			t.Errorf("the README's command table lacks btl %s", verb)
		}
	}
}
