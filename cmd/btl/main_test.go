package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/backend/systemd"
	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
	"btl/internal/proc/proctest"
	"btl/internal/reexec"
)

// The test binary is btl itself when BTL_TEST_MAIN=1: tests drive the real
// main, as a separate process, the way a user does.
func TestMain(m *testing.M) {
	reexec.Init()
	maybeFakeLaunchctl()
	maybeListen()
	if os.Getenv("BTL_TEST_MAIN") == "1" {
		main()
	}
	if os.Geteuid() == 0 && os.Getenv("BTL_TEST_ROOT") != "1" {
		os.Stderr.WriteString("btl's tests drive btl as a regular user: run them with `make test` (which drops privileges) or as a non-root user\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// user is one btl user: a home directory and an environment.
type user struct {
	t    *testing.T
	home string
	env  []string
}

func newUser(t *testing.T) *user {
	t.Helper()
	t.Parallel()
	return makeUser(t)
}

// makeUser is newUser for a test that already runs in parallel.
func makeUser(t *testing.T) *user {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"BTL_TEST_MAIN=1",
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"BTL_BACKEND=" + backendUnderTest(),
		// A race-enabled binary otherwise sleeps a second at exit.
		"GORACE=atexit_sleep_ms=0",
	}
	for _, k := range []string{"XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if backendUnderTest() == launchd.Name {
		env = append(env, fakeLaunchctl(t)...)
	}
	u := &user{t: t, home: home, env: env}
	t.Cleanup(func() {
		u.btl(t.TempDir(), "kill", "--all")
		// Helpers of the stopped tasks (supervisors, the fake launchctl's
		// monitors) finish writing into HOME before it is removed.
		coretest.Eventually(t, 10*time.Second, "this user's processes to end", func() bool {
			return len(homeProcs(home)) == 0
		})
		// Nothing stays behind in the user's manager either: no failed
		// unit of this user's tasks in systemctl --user --failed.
		if backendUnderTest() == systemd.Name {
			logs, _ := filepath.Glob(filepath.Join(u.dataDir(), "logs", "*.log"))
			for _, l := range logs {
				unit := systemd.UnitName(filepath.Join(u.dataDir(), "run"), strings.TrimSuffix(filepath.Base(l), ".log"))
				coretest.Eventually(t, 5*time.Second, unit+" to be collected after kill --all", func() bool {
					return !unitLoaded(t, unit)
				})
			}
			// The systemd log agent exits by itself once no task runs.
			agent := systemd.AgentUnitName(filepath.Join(home, ".local", "share", "btl", "run"))
			coretest.Eventually(t, 15*time.Second, agent+" to exit", func() bool {
				out, _ := exec.Command("systemctl", "--user", "show", "-P", "ActiveState", agent).Output()
				st := strings.TrimSpace(string(out))
				return st == "inactive" || st == "failed" || st == ""
			})
		}
	})
	return u
}

// homeProcs lists the live processes, other than this one, whose
// environment has HOME=home.
func homeProcs(home string) []int { return proctest.Carrying(os.Getuid(), "HOME="+home) }

// fakeLaunchctl puts a launchctl first on PATH that runs this test binary
// as the fake launchctl (see internal/fakelaunchctl), with its own state,
// and returns the environment entries that do it.
func fakeLaunchctl(t testing.TB) []string {
	bin := t.TempDir()
	script := "#!/bin/sh\nFAKE_LAUNCHCTL_AS_MAIN=1 exec " + core.Quote(os.Args[0]) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "launchctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_LAUNCHCTL_STATE=" + t.TempDir()}
}

// backendUnderTest is the backend the CLI tests use: BTL_TEST_BACKEND, or fork.
func backendUnderTest() string {
	if b := os.Getenv("BTL_TEST_BACKEND"); b != "" {
		return b
	}
	return "fork"
}

type result struct {
	stdout, stderr string
	code           int
}

// btl runs btl with args in dir.
func (u *user) btl(dir string, args ...string) result {
	u.t.Helper()
	return u.btlEnv(dir, nil, args...)
}

func (u *user) btlEnv(dir string, env []string, args ...string) result {
	u.t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, u.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		u.t.Fatalf("btl %q did not return within 60s", args)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// follow starts `btl logs -f hash` in dir and returns it, its output so
// far, and a channel that receives its exit; it is killed at cleanup.
func (u *user) follow(dir, hash string) (*exec.Cmd, *syncBuffer, <-chan error) {
	u.t.Helper()
	return u.followArgs(dir, "-f", hash)
}

// ok runs btl and fails the test unless it exits 0 with nothing on stderr.
func (u *user) ok(dir string, args ...string) string {
	u.t.Helper()
	r := u.btl(dir, args...)
	if r.code != 0 || r.stderr != "" {
		u.t.Fatalf("btl %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (u *user) dataDir() string { return filepath.Join(u.home, ".local", "share", "btl") }

func (u *user) state() *core.State {
	u.t.Helper()
	st, err := (&core.Store{Dir: u.dataDir()}).Read()
	if err != nil {
		u.t.Fatal(err)
	}
	return st
}

// startRE matches what a start prints: the replaced instance (and whether
// it needed SIGKILL), a wait for launchd to release the task's label, the
// four lines of the start, and, for a task that had already ended when btl
// looked, how it ended and the end of its log.
var startRE = regexp.MustCompile(`^(\[btl\] Killing previous process \(PID (\d+)\)\n)?(\[btl\] PID \d+ did not exit within 2s of SIGTERM; sent SIGKILL\n)?(?:\[btl\] Waiting for launchd to release .*\n)?\[btl\] Starting: (.*)\n\[btl\] Process backgrounded \(PID (\d+)\)\n\[btl\] Hash: ([0-9a-f]{16})\n\[btl\] Logs: (.*)\n(?:\[btl\] Name: .*\n)?(?:\[btl\] Watching: .*\n)?(\[btl\] The process has already ended \((.*)\)(?:; the end of its log:\n(?:  .*\n)*|; nothing in its log\n))?(?:\[btl\] port \d+ is held by .*\n)*$`)

type started struct {
	killed  int
	command string
	pid     int
	hash    string
	log     string
	sigkill bool   // the replaced instance needed SIGKILL
	ended   string // the status btl saw right after the start, if ended
}

// start runs a command with btl and parses the five lines btl prints.
func (u *user) start(dir string, argv ...string) started {
	u.t.Helper()
	out := u.ok(dir, argv...)
	s, ok := parseStart(out)
	if !ok {
		u.t.Fatalf("btl %q printed unexpected output:\n%s", argv, out)
	}
	return s
}

// parseStart reads what a start printed.
func parseStart(out string) (started, bool) {
	m := startRE.FindStringSubmatch(out)
	if m == nil {
		return started{}, false
	}
	killed, _ := strconv.Atoi(m[2])
	pid, _ := strconv.Atoi(m[5])
	return started{killed: killed, command: m[4], pid: pid, hash: m[6], log: m[7], sigkill: m[3] != "", ended: m[9]}, true
}

func waitFileLines(t *testing.T, file string, n int) []string {
	t.Helper()
	var lines []string
	coretest.Eventually(t, 10*time.Second, strconv.Itoa(n)+" lines in "+file, func() bool {
		b, _ := os.ReadFile(file)
		lines = strings.Fields(string(b))
		return len(lines) >= n
	})
	return lines
}

func pids(t *testing.T, lines []string) []int {
	var out []int
	for _, l := range lines {
		p, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("not a PID: %q", l)
		}
		out = append(out, p)
	}
	return out
}

func TestStartOutputAndHash(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo hello from btl; exec sleep 100")
	real, _ := filepath.EvalSymlinks(dir)
	if want := core.Hash(real, `sh -c 'echo hello from btl; exec sleep 100'`); s.hash != want {
		t.Errorf("hash %s, want %s", s.hash, want)
	}
	if s.command != `sh -c 'echo hello from btl; exec sleep 100'` {
		t.Errorf("Starting: %q", s.command)
	}
	if want := filepath.Join(u.dataDir(), "logs", s.hash+".log"); s.log != want {
		t.Errorf("log path %s, want %s", s.log, want)
	}
	if !coretest.Alive(s.pid) {
		t.Fatalf("PID %d is not running", s.pid)
	}
	coretest.Eventually(t, 10*time.Second, "output in the log", func() bool {
		b, _ := os.ReadFile(s.log)
		return coretest.TaskOutput(string(b)) == "hello from btl\n"
	})
	e := u.state().Processes[s.hash]
	if e == nil || e.PID != s.pid || e.Cwd != real || e.UserID != os.Getuid() || e.Command != s.command || e.LogFile != s.log {
		t.Fatalf("state entry %+v", e)
	}
	// The same command in a symlinked path to the same directory is the same task.
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	s2 := u.start(link, "sh", "-c", "echo hello from btl; exec sleep 100")
	if s2.hash != s.hash || s2.killed != s.pid {
		t.Errorf("start through a symlink: hash %s killed %d; want %s killed %d", s2.hash, s2.killed, s.hash, s.pid)
	}
}

func TestReplaceLeavesOneInstance(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", `echo $$ >> pids; sleep 100 & echo $! >> children; wait`}
	first := u.start(dir, argv...)
	if first.killed != 0 {
		t.Fatalf("first start reported killing %d", first.killed)
	}
	waitFileLines(t, filepath.Join(dir, "children"), 1)
	second := u.start(dir, argv...)
	if second.killed != first.pid {
		t.Fatalf("second start killed PID %d, want %d", second.killed, first.pid)
	}
	if second.hash != first.hash || second.pid == first.pid {
		t.Fatalf("second start: %+v, first: %+v", second, first)
	}
	children := pids(t, waitFileLines(t, filepath.Join(dir, "children"), 2))
	if coretest.Alive(first.pid) || coretest.Alive(children[0]) {
		t.Errorf("old instance tree survived the replace: %d, %d", first.pid, children[0])
	}
	if !coretest.Alive(second.pid) || !coretest.Alive(children[1]) {
		t.Errorf("new instance not running")
	}
	if n := len(u.state().Processes); n != 1 {
		t.Errorf("state has %d entries, want 1", n)
	}
	out := u.ok(dir, "list", "-o", "wide")
	if len(regexp.MustCompile(`(?m)^`+first.hash+` `).FindAllString(out, -1)) != 1 || !strings.Contains(out, strconv.Itoa(second.pid)) {
		t.Errorf("list after replace:\n%s", out)
	}
}

func TestKillTree(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", `sleep 100 & echo $! >> pids; sleep 100 & echo $! >> pids; wait`)
	kids := pids(t, waitFileLines(t, filepath.Join(dir, "pids"), 2))
	out := u.ok(dir, "kill", s.hash[:6])
	if out != "[btl] Process killed (PID "+strconv.Itoa(s.pid)+")\n" {
		t.Errorf("kill printed %q", out)
	}
	for _, p := range append(kids, s.pid) {
		if coretest.Alive(p) {
			t.Errorf("process %d survived btl kill", p)
		}
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("killed task still in state (%d entries)", n)
	}
	if _, err := os.Stat(s.log); err != nil {
		t.Errorf("log file removed by kill: %v", err)
	}
}

func TestKillAll(t *testing.T) {
	u := newUser(t)
	var started []started
	for i := range 3 {
		started = append(started, u.start(t.TempDir(), "sleep", strconv.Itoa(100+i)))
	}
	out := u.ok(t.TempDir(), "kill", "--all")
	want := ""
	for i, s := range started {
		want += "[btl] Process killed (PID " + strconv.Itoa(s.pid) + "): sleep " + strconv.Itoa(100+i) + "\n"
	}
	if want += "[btl] Killed 3 processes\n"; out != want {
		t.Errorf("kill --all printed %q, want %q", out, want)
	}
	for _, s := range started {
		if coretest.Alive(s.pid) {
			t.Errorf("PID %d survived kill --all", s.pid)
		}
	}
	if out := u.ok(t.TempDir(), "list"); out != "No background processes tracked\n" {
		t.Errorf("list after kill --all: %q", out)
	}
}

func TestListStatusAndClean(t *testing.T) {
	u := newUser(t)
	if out := u.ok(t.TempDir(), "list"); out != "No background processes tracked\n" {
		t.Errorf("empty list: %q", out)
	}
	if out := u.ok(t.TempDir(), "clean"); out != "[btl] No ended tasks to clean\n" {
		t.Errorf("clean with nothing: %q", out)
	}
	dir := t.TempDir()
	runner := u.start(dir, "sleep", "100")
	failer := u.start(dir, "sh", "-c", "exit 7")
	fine := u.start(dir, "true")
	coretest.Eventually(t, 10*time.Second, "short tasks to end", func() bool {
		out := u.ok(dir, "ls")
		return strings.Contains(out, "exited 7") && strings.Contains(out, "exited 0")
	})
	out := u.ok(dir, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^HASH +NAME +STATUS +PORTS +CPU +MEM +UPTIME +COMMAND$`).MatchString(lines[0]) {
		t.Fatalf("list:\n%s", out)
	}
	for _, c := range []struct {
		s    started
		want string
	}{{runner, "running"}, {failer, "exited 7"}, {fine, "exited 0"}} {
		re := regexp.MustCompile(`(?m)^` + c.s.hash + ` +- +` + c.want + ` +\S+ +\S+ +\S+ +\S+ +` + regexp.QuoteMeta(c.s.command) + `$`)
		if !re.MatchString(out) {
			t.Errorf("list lacks a line for %s %s:\n%s", c.s.command, c.want, out)
		}
	}
	if out := u.ok(dir, "clean"); out != "[btl] Removed 2 ended tasks\n" {
		t.Errorf("clean: %q", out)
	}
	st := u.state()
	if len(st.Processes) != 1 || st.Processes[runner.hash] == nil {
		t.Fatalf("after clean, state: %v", st.Processes)
	}
	if !coretest.Alive(runner.pid) {
		t.Fatal("clean stopped a running task")
	}
	want := fmt.Sprintf("[btl] Removed 0 ended tasks (logs deleted)\n[btl] Kept 1 running task (btl kill --all stops them):\n  %s  PID %d  sleep 100\n", runner.hash, runner.pid)
	if out := u.ok(dir, "clean", "--all"); out != want {
		t.Errorf("clean --all: %q, want %q", out, want)
	}
	if !coretest.Alive(runner.pid) {
		t.Fatal("clean --all stopped a running task")
	}
	if out := u.ok(dir, "kill", runner.hash); out != fmt.Sprintf("[btl] Process killed (PID %d)\n", runner.pid) {
		t.Errorf("kill: %q", out)
	}
}

func mustReal(t *testing.T, dir string) string {
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLogs(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	if out := u.ok(dir, "logs"); out != "No logs yet\n" {
		t.Errorf("logs with none: %q", out)
	}
	s := u.start(dir, "sh", "-c", `for i in 1 2 3 4 5; do echo line $i; done; echo err >&2; exec sleep 100`)
	want := "line 1\nline 2\nline 3\nline 4\nline 5\nerr\n"
	marker := regexp.MustCompile(`^\[btl\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ started PID ` + strconv.Itoa(s.pid) + `: ` + regexp.QuoteMeta(s.command) + "\n")
	var full string
	coretest.Eventually(t, 10*time.Second, "output", func() bool {
		full = u.ok(dir, "logs", s.hash)
		return coretest.TaskOutput(full) == want
	})
	if !marker.MatchString(full) || marker.ReplaceAllString(full, "") != want {
		t.Errorf("log is not the start marker and the output:\n%s", full)
	}
	if out := u.ok(dir, "logs", s.hash[:4], "-n", "2"); out != "line 5\nerr\n" {
		t.Errorf("logs -n 2: %q", out)
	}
	if out := u.ok(dir, "logs", s.hash, "-n", "100"); out != full {
		t.Errorf("logs -n 100: %q", out)
	}
	out := u.ok(dir, "logs")
	if !regexp.MustCompile(`^Available logs:\n  ` + s.hash + ` +` + strconv.Itoa(len(full)) + `B +\d+s ago +` + regexp.QuoteMeta(s.command) + `\n$`).MatchString(out) {
		t.Errorf("logs listing:\n%s", out)
	}
	// Killed tasks leave the list; their logs stay readable.
	u.ok(dir, "kill", s.hash)
	if out := u.ok(dir, "logs", s.hash[:5]); out != full {
		t.Errorf("log after kill: %q", out)
	}
}

func TestLogsFollow(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", `echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; exec sleep 100`)
	cmd, out, done := u.follow(dir, s.hash)
	coretest.Eventually(t, 10*time.Second, "first line", func() bool { return coretest.TaskOutput(out.String()) == "first\n" })
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	coretest.Eventually(t, 10*time.Second, "followed line", func() bool { return coretest.TaskOutput(out.String()) == "first\nsecond\n" })
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f after interrupt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not stop on interrupt")
	}
}

func TestArgsPassedVerbatim(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	bin := t.TempDir()
	// A program called "list": `btl -- list` must run it, not btl list.
	os.WriteFile(filepath.Join(bin, "list"), []byte("#!/bin/sh\necho program list ran \"$@\"\n"), 0o755)
	u.env = append(u.env, "PATH="+bin+":"+core.Getenv(u.env, "PATH"))
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"sh", "-c", `printf '[%s]' "$@"; echo`, "x", "-m", "--backend", "a b", "", "it's"}, "[-m][--backend][a b][][it's]\n"},
		{[]string{"--", "list", "-n", "1"}, "program list ran -n 1\n"},
		{[]string{"--backend", backendUnderTest(), "sh", "-c", "echo $0", "-x"}, "-x\n"},
		{[]string{"sh", "-c", "echo unbuffered=$PYTHONUNBUFFERED"}, "unbuffered=1\n"},
		{[]string{"printf", "%s|%s|", "\xff\xfe", "new\nline"}, "\xff\xfe|new\nline|"},
		{[]string{"sh", "-c", `printf %s "$1" | wc -c`, "x", strings.Repeat("a", 100000)}, "100000\n"},
		{[]string{"--no-unbuffer", "sh", "-c", "echo unbuffered=${PYTHONUNBUFFERED-unset}."}, "unbuffered=unset.\n"},
	}
	for _, c := range cases {
		if backendUnderTest() != fork.Name && !utf8.ValidString(strings.Join(c.argv, "")) {
			// Property lists and D-Bus carry only UTF-8.
			r := u.btl(dir, c.argv...)
			if r.code != 1 || !strings.Contains(r.stderr, "not valid UTF-8") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%s with a non-UTF-8 argument: %+v", backendUnderTest(), r)
			}
			continue
		}
		s := u.start(dir, c.argv...)
		coretest.Eventually(t, 10*time.Second, "output of "+s.command, func() bool {
			b, _ := os.ReadFile(s.log)
			return coretest.TaskOutput(string(b)) == c.want
		})
	}
	st := u.state()
	for _, e := range st.Processes {
		if e.Command == `sh -c 'printf '\''[%s]'\'' "$@"; echo' x -m --backend 'a b' '' 'it'\''s'` {
			return
		}
	}
	t.Errorf("no entry with the expected quoted command: %v", st.Processes)
}

func TestExecErrors(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "noexec.sh"), []byte("#!/bin/sh\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	cases := []struct {
		argv []string
		code int
		msg  string
	}{
		{[]string{"btl-no-such-command-xyz"}, 127, "Error: btl-no-such-command-xyz: command not found\n"},
		// What the user gave is escaped: no terminal control sequence
		// (here one that sets the window title) reaches the terminal.
		{[]string{"nope\x1b]0;pwned\a"}, 127, "Error: nope\\x1b]0;pwned\\x07: command not found\n"},
		{[]string{"kill", "x\x1b[2J"}, 1, "Error: invalid hash: \"x\\x1b[2J\" is not a task name or hash (hashes are 16 hex characters, see btl list)\n"},
		{[]string{"./noexec.sh"}, 126, "Error: ./noexec.sh: permission denied\n"},
		{[]string{"./adir"}, 126, "Error: ./adir: is a directory\n"},
		{[]string{"--backend", "bogus", "true"}, 2, "Error: usage: unknown backend \"bogus\" (want auto, systemd, launchd or fork)\n"},
		{[]string{"--no-such-flag"}, 2, "Error: usage: unknown flag: --no-such-flag (see btl --help)\n"},
		{[]string{"kill"}, 2, "Error: usage: give the hash or name of the task to kill, or --all (see btl list)\n"},
		{[]string{"kill", "abc"}, 1, "Error: invalid hash: \"abc\" is too short; give at least 4 characters of the hash\n"},
		{[]string{"kill", "zzzzzz"}, 1, "Error: invalid hash: \"zzzzzz\" is not a task name or hash (hashes are 16 hex characters, see btl list)\n"},
		{[]string{"show", "zzzz"}, 1, "Error: invalid hash: \"zzzz\" is not a task name or hash (hashes are 16 hex characters, see btl list)\n"},
		{[]string{"show", "0123456789abcdef0"}, 1, "Error: invalid hash: \"0123456789abcdef0\" is longer than a task hash (16 hex characters)\n"},
		{[]string{"kill", "abcd"}, 1, "Error: no task matches \"abcd\" (no tasks are tracked)\n"},
		{[]string{"logs", "abcd"}, 1, "Error: no task matches \"abcd\" (no tasks are tracked) (see btl logs for the logs that exist)\n"},
	}
	for _, c := range cases {
		r := u.btl(dir, c.argv...)
		if r.code != c.code || r.stderr != c.msg || r.stdout != "" {
			t.Errorf("btl %q: exit %d, stderr %q, stdout %q; want exit %d, stderr %q", c.argv, r.code, r.stderr, r.stdout, c.code, c.msg)
		}
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("failed starts recorded %d entries", n)
	}
	r := u.btlEnv(dir, []string{"BTL_BACKEND=bogus"}, "list")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown backend "bogus"`) {
		t.Errorf("BTL_BACKEND=bogus: %+v", r)
	}
	r = u.btl(dir)
	if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("btl with no arguments: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHashPrefixes(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// Find two tasks whose hashes share their first 4 characters.
	seen := map[string]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		argv := "sleep " + strconv.Itoa(1000+i)
		h := core.Hash(mustReal(t, dir), argv)
		if other, ok := seen[h[:4]]; ok {
			a, b = other, argv
		}
		seen[h[:4]] = argv
	}
	sa := u.start(dir, strings.Fields(a)...)
	sb := u.start(dir, strings.Fields(b)...)
	r := u.btl(dir, "kill", sa.hash[:4])
	if r.code != 1 || !strings.Contains(r.stderr, "ambiguous hash prefix") || !strings.Contains(r.stderr, sa.hash) || !strings.Contains(r.stderr, sb.hash) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("ambiguous kill: %+v", r)
	}
	if !coretest.Alive(sa.pid) || !coretest.Alive(sb.pid) {
		t.Fatal("an ambiguous kill stopped a task")
	}
	u.ok(dir, "kill", sa.hash[:8], strings.ToUpper(sb.hash))
	if coretest.Alive(sa.pid) || coretest.Alive(sb.pid) {
		t.Fatal("kill of two hashes left a task running")
	}
}

func TestCorruptState(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"truncated": `{"processes": {"0123456789abcdef": {"pid": 12`,
		"types":     `{"processes": {"0123456789abcdef": {"pid": "twelve"}}}`,
		"badhash":   `{"processes": {"../../etc": {"pid": 1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			u := newUser(t)
			dir := t.TempDir()
			os.MkdirAll(u.dataDir(), 0o700)
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(content), 0o600)
			r := u.btl(dir, "list")
			if r.code != 0 || r.stdout != "No background processes tracked\n" || !strings.HasPrefix(r.stderr, "Warning: state file is corrupt") || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("list with a corrupt state: %+v", r)
			}
			aside, _ := filepath.Glob(filepath.Join(u.dataDir(), "state.json.corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("corrupt state not moved aside: %v", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Errorf("moved-aside content changed")
			}
			s := u.start(dir, "sleep", "100")
			if u.state().Processes[s.hash] == nil {
				t.Errorf("btl does not carry on after a corrupt state")
			}
		})
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	os.MkdirAll(u.dataDir(), 0o700)
	os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(`{"version": 7, "processes": {"0123456789abcdef": {"pid": 999999, "user_id": 1, "command": "x", "cwd": "/", "started_at": "2026-01-02T03:04:05Z", "log_file": "/x", "color": "blue"}}}`), 0o600)
	u.start(dir, "sleep", "100")
	b, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["version"] != float64(7) {
		t.Errorf("top-level unknown field lost: %s", b)
	}
	e := raw["processes"].(map[string]any)["0123456789abcdef"].(map[string]any)
	if e["color"] != "blue" {
		t.Errorf("entry's unknown field lost: %s", b)
	}
}

func TestForeignEntryNeverSignalled(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// A process btl did not start, of this same user.
	victim := exec.Command("sleep", "100")
	victim.Start()
	defer victim.Process.Kill()
	info, err := proc.LookupProc(victim.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// A process of some btl task (it carries a BTL_HASH), named with its
	// true start time by an entry that has no token to prove it.
	other := exec.Command("sleep", "100")
	other.Env = append(os.Environ(), core.EnvHash+"=0123456789abcdef", core.EnvInstance+"=0123456789abcdef-00")
	other.Start()
	defer other.Process.Kill()
	otherInfo, err := proc.LookupProc(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{"sleep", "100"}
	hash := core.Hash(mustReal(t, dir), core.CommandLine(argv))
	for name, e := range map[string]string{
		"wrong start time": `{"pid": %d, "proc_start": %d, "user_id": %d, "backend": "fork"}`,
		"no start time":    `{"pid": %d, "proc_start": 0, "user_id": %d, "backend": "fork"}`,
		"no token":         `{"pid": %d, "proc_start": %d, "user_id": %d, "backend": "fork", "token": ""}`,
	} {
		t.Run(name, func(t *testing.T) {
			os.MkdirAll(u.dataDir(), 0o700)
			var entry string
			switch {
			case strings.Contains(e, `"token"`):
				entry = fmtSprintf(e, otherInfo.PID, otherInfo.Start, os.Getuid())
			case strings.Count(e, "%d") == 3:
				entry = fmtSprintf(e, info.PID, info.Start+1, os.Getuid())
			default:
				entry = fmtSprintf(e, info.PID, os.Getuid())
			}
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(`{"processes": {"`+hash+`": `+entry+`}}`), 0o600)
			if out := u.ok(dir, "list"); strings.Contains(out, "running") {
				t.Errorf("a foreign process is shown as running:\n%s", out)
			}
			u.ok(dir, "kill", hash)
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(`{"processes": {"`+hash+`": `+entry+`}}`), 0o600)
			s := u.start(dir, argv...)
			if s.killed != 0 {
				t.Errorf("start claimed to kill the foreign PID %d", s.killed)
			}
			u.ok(dir, "kill", hash)
			if !coretest.Alive(victim.Process.Pid) || !coretest.Alive(other.Process.Pid) {
				t.Fatal("btl signalled a process it cannot prove it started")
			}
		})
	}
}

// TestRefusesRoot runs only as root (make test runs it so); every other
// test runs as a regular user.
func TestRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs only as root; make test runs it as root")
	}
	u := newUser(t)
	r := u.btl(t.TempDir(), "sleep", "1")
	if r.code != 1 || r.stderr != "Error: btl refuses to run as root; run it as a regular user (or set BTL_ALLOW_ROOT=1 in a container that only has root)\n" || r.stdout != "" {
		t.Errorf("as root: %+v", r)
	}
	r = u.btlEnv(t.TempDir(), []string{"BTL_ALLOW_ROOT=1"}, "list")
	if r.code != 0 || r.stderr != "Warning: running as root because BTL_ALLOW_ROOT=1\n" {
		t.Errorf("as root with BTL_ALLOW_ROOT=1: %+v", r)
	}
}
