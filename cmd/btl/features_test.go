package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

func TestListFormats(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	run := u.start(dir, "sleep", "100")
	ended := u.start(dir, "sh", "-c", "exit 5")
	killed := u.start(dir, "sh", "-c", "kill -TERM $$")
	coretest.Eventually(t, 10*time.Second, "tasks to end", func() bool {
		out := u.ok(dir, "list")
		return strings.Contains(out, "exited 5") && strings.Contains(out, "killed (SIGTERM)")
	})
	var got []map[string]any
	out := u.ok(dir, "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 3 {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	// What a running task uses changes from one list to the next.
	volatile := regexp.MustCompile(`(?m)^ *"(cpu_seconds|cpu_percent|memory_bytes|uptime_seconds)": .*\n`)
	if out2 := u.ok(dir, "list", "--json"); volatile.ReplaceAllString(out2, "") != volatile.ReplaceAllString(out, "") {
		t.Errorf("--json differs from -o json")
	}
	byHash := map[string]map[string]any{}
	for _, g := range got {
		for _, k := range []string{"hash", "pid", "status", "exit_code", "command", "argv", "cwd", "started_at", "backend", "log_file", "inspect"} {
			if _, ok := g[k]; !ok {
				t.Errorf("JSON entry lacks %q: %v", k, g)
			}
		}
		byHash[g["hash"].(string)] = g
	}
	if g := byHash[run.hash]; g["status"] != "running" || g["pid"] != float64(run.pid) || g["exit_code"] != nil || g["backend"] != backendUnderTest() {
		t.Errorf("running task in JSON: %v", g)
	}
	if g := byHash[ended.hash]; g["status"] != "exited" || g["exit_code"] != float64(5) {
		t.Errorf("exited task in JSON: %v", g)
	}
	if g := byHash[killed.hash]; g["status"] != "killed" || g["signal"] != "SIGTERM" {
		t.Errorf("killed task in JSON: %v", g)
	}
	if _, err := time.Parse(time.RFC3339, byHash[run.hash]["started_at"].(string)); err != nil {
		t.Errorf("started_at: %v", err)
	}
	wide := u.ok(dir, "ls", "-o", "wide")
	if !regexp.MustCompile(`(?m)^HASH +NAME +PID +STATUS +PORTS +CPU +MEM +UPTIME +PROCS +STARTED +COMMAND +CWD +BACKEND +UNIT +LOG$`).MatchString(wide) ||
		!regexp.MustCompile(`(?m)^`+run.hash+` .* `+backendUnderTest()+` +\S+ +\d+(\.\d)?[BKMG]$`).MatchString(wide) {
		t.Errorf("list -o wide:\n%s", wide)
	}
	if strings.Contains(wide+out, "\x1b[") {
		t.Errorf("colours in output that is not a terminal")
	}
	if r := u.btl(dir, "list", "-o", "yaml"); r.code != 2 {
		t.Errorf("list -o yaml: %+v", r)
	}
	t.Run("empty", func(t *testing.T) {
		if out := newUser(t).ok(t.TempDir(), "list", "--json"); out != "[]\n" {
			t.Errorf("empty JSON list: %q", out)
		}
	})
}

func TestListColoursOnlyOnATerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) from util-linux is needed to give btl a terminal")
	}
	u := newUser(t)
	dir := t.TempDir()
	u.start(dir, "sleep", "100")
	onTTY := func(env ...string) string {
		cmd := exec.Command(script, "-qec", core.Quote(os.Args[0])+" list", "/dev/null")
		cmd.Dir, cmd.Env = dir, append(append([]string{"TERM=xterm"}, u.env...), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("btl list on a terminal: %v", err)
		}
		return string(out)
	}
	if out := onTTY(); !strings.Contains(out, "\x1b[32m") {
		t.Errorf("no colour on a terminal: %q", out)
	}
	if out := onTTY("NO_COLOR=1"); strings.Contains(out, "\x1b[") {
		t.Errorf("colour despite NO_COLOR: %q", out)
	}
}

func TestShow(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo hi; exec sleep 100")
	out := u.ok(dir, "show", s.hash[:5])
	for _, want := range []string{
		"Hash:      " + s.hash + "\n",
		"Command:   sh -c 'echo hi; exec sleep 100'\n",
		`Argv:      ["sh", "-c", "echo hi; exec sleep 100"]` + "\n",
		"Directory: " + mustReal(t, dir) + "\n",
		"Status:    running\n",
		"PID:       " + strconv.Itoa(s.pid) + "\n",
		"Backend:   " + backendUnderTest() + "\n",
		"Log:       " + s.log,
		"Inspect:   ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// The backend's own command for the task.
	inspect := map[string]*regexp.Regexp{
		"fork":    regexp.MustCompile(`\nInspect: +ps -o pid,pgid,stat,etime,args -s ` + strconv.Itoa(s.pid) + `\n`),
		"systemd": regexp.MustCompile(`\nInspect: +systemctl --user status btl-` + s.hash + `-[0-9a-f]{8}\.service\n`),
		"launchd": regexp.MustCompile(`\nInspect: +launchctl print (gui|user)/` + strconv.Itoa(os.Getuid()) + `/btl\.` + s.hash + `\n`),
	}[backendUnderTest()]
	if !inspect.MatchString(out) {
		t.Errorf("show's Inspect line does not match %v:\n%s", inspect, out)
	}
	if r := u.btl(dir, "show"); r.code != 2 {
		t.Errorf("show without a hash: %+v", r)
	}
}

// TestShowLocalNetworkNote: btl show of a launchd task whose log shows
// EHOSTUNREACH says that macOS's Local Network privacy may be why; other
// backends' tasks are not affected by it and get no note.
func TestShowLocalNetworkNote(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo 'dial tcp 192.168.0.10:5432: connect: no route to host'; exec sleep 100")
	coretest.Eventually(t, 10*time.Second, "the log line", func() bool {
		b, _ := os.ReadFile(s.log)
		return strings.Contains(string(b), "no route to host")
	})
	out := u.ok(dir, "show", s.hash)
	note := regexp.MustCompile(`\nNote: +the log shows "No route to host": macOS Local Network privacy .*--backend fork is not affected\n`)
	if want := backendUnderTest() == "launchd"; note.MatchString(out) != want {
		t.Errorf("show (note wanted: %v):\n%s", want, out)
	}
}

func TestRestart(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	r := u.btlEnv(dir, []string{"GREETING=from the first start"}, "sh", "-c", `echo "$GREETING in $(pwd)"; echo $$ >> pids; exec sleep 100`)
	if r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	first, _ := parseStart(r.stdout)
	hash, firstPID := first.hash, first.pid
	waitFileLines(t, filepath.Join(dir, "pids"), 1)
	// Elsewhere, with another environment.
	out := u.ok(t.TempDir(), "restart", hash[:4])
	if m, ok := parseStart(out); !ok || m.hash != hash || m.killed != firstPID {
		t.Fatalf("restart printed:\n%s", out)
	}
	lines := waitFileLines(t, filepath.Join(dir, "pids"), 2)
	if coretest.Alive(firstPID) {
		t.Error("restart left the old instance running")
	}
	newPID, _ := strconv.Atoi(lines[1])
	if !coretest.Alive(newPID) {
		t.Error("restarted instance not running")
	}
	want := "from the first start in " + mustReal(t, dir) + "\n"
	coretest.Eventually(t, 10*time.Second, "second greeting", func() bool {
		b, _ := os.ReadFile(first.log)
		return strings.Count(string(b), want) == 2
	})
	if r := u.btl(dir, "restart", "ffff"); r.code != 1 || !strings.Contains(r.stderr, "no task matches") {
		t.Errorf("restart of an unknown hash: %+v", r)
	}
}

func TestCleanNamed(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	a := u.start(dir, "sh", "-c", "exit 0")
	b := u.start(dir, "sh", "-c", "exit 1")
	run := u.start(dir, "sleep", "100")
	coretest.Eventually(t, 10*time.Second, "tasks to end", func() bool {
		return strings.Count(u.ok(dir, "list"), "exited") == 2
	})
	r := u.btl(dir, "clean", a.hash, run.hash)
	if r.code != 1 || !strings.Contains(r.stderr, "still runs") || !strings.Contains(r.stderr, "btl kill "+run.hash) {
		t.Errorf("clean of a running task: %+v", r)
	}
	if n := len(u.state().Processes); n != 3 {
		t.Fatalf("a refused clean removed entries (%d left)", n)
	}
	if out := u.ok(dir, "clean", a.hash[:6]); out != "[btl] Removed 1 ended task\n" {
		t.Errorf("clean <hash>: %q", out)
	}
	st := u.state()
	if st.Processes[a.hash] != nil || st.Processes[b.hash] == nil || st.Processes[run.hash] == nil {
		t.Errorf("clean <hash> removed the wrong entries: %v", st.Processes)
	}
}

func TestCompletionOffersHashes(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "100")
	for _, sub := range []string{"kill", "logs", "show", "restart", "clean"} {
		out := u.btl(dir, "__complete", sub, "").stdout
		if !strings.Contains(out, s.hash+"\tsleep 100\n") {
			t.Errorf("completion of %s:\n%s", sub, out)
		}
	}
	out := u.btl(dir, "__complete", "kill", s.hash[:3]).stdout
	if !strings.HasPrefix(out, s.hash+"\t") {
		t.Errorf("completion of a prefix:\n%s", out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := u.ok(dir, "completion", sh); !strings.Contains(out, "btl") {
			t.Errorf("completion %s printed %q", sh, out)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	u := newUser(t)
	for _, sub := range []string{"list", "logs", "kill", "clean", "show", "restart"} {
		out := u.ok(t.TempDir(), sub, "--help")
		if !strings.Contains(out, "Examples:\n  btl ") {
			t.Errorf("btl %s --help has no example:\n%s", sub, out)
		}
	}
	if out := u.ok(t.TempDir(), "--version"); !strings.HasPrefix(out, "btl version ") {
		t.Errorf("--version: %q", out)
	}
}

func TestLogsFollowAcrossReplaceAndKill(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", `echo "run $$"; exec sleep 100`}
	first := u.start(dir, argv...)
	_, out, done := u.follow(dir, first.hash)
	want1 := "run " + strconv.Itoa(first.pid) + "\n"
	coretest.Eventually(t, 10*time.Second, "first run's output", func() bool { return strings.Contains(out.String(), want1) })
	second := u.start(dir, argv...)
	want2 := "started PID " + strconv.Itoa(second.pid) + ": " + second.command + "\nrun " + strconv.Itoa(second.pid) + "\n"
	coretest.Eventually(t, 10*time.Second, "the replacement's marker and output", func() bool { return strings.Contains(out.String(), want2) })
	u.ok(dir, "kill", second.hash)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not stop when the task was killed")
	}
	if got := strings.Count(out.String(), "started PID "); got != 2 {
		t.Errorf("%d start markers followed, want 2:\n%s", got, out.String())
	}
}

func TestLogsSince(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// A log of a task no longer tracked, with runs at known times.
	logs := filepath.Join(u.dataDir(), "logs")
	os.MkdirAll(logs, 0o700)
	now := time.Now()
	hash := "00c0ffee00c0ffee"
	content := core.StartMarker(now.Add(-3*time.Hour), 10, "serve") + "old output\n" +
		core.StartMarker(now.Add(-30*time.Minute), 11, "serve") + "newer output\n" +
		core.StartMarker(now.Add(-time.Minute), 12, "serve") + "newest output\nlast line\n"
	os.WriteFile(filepath.Join(logs, hash+".log"), []byte(content), 0o600)
	for _, c := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"--since", "1h"}, []string{"PID 11", "newer output", "newest output"}, []string{"old output"}},
		{[]string{"--since", "5m"}, []string{"PID 12", "newest output"}, []string{"newer output"}},
		{[]string{"--since", now.Add(-4 * time.Hour).Format(time.RFC3339)}, []string{"old output"}, nil},
		{[]string{"--since", "1s"}, nil, []string{"output"}},
		{[]string{"--since", "1h", "-n", "1"}, []string{"last line"}, []string{"newest output"}},
	} {
		out := u.ok(dir, append([]string{"logs", hash[:6]}, c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("logs %v lacks %q:\n%s", c.args, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("logs %v has %q:\n%s", c.args, n, out)
			}
		}
	}
	if r := u.btl(dir, "logs", hash, "--since", "yesterday"); r.code != 2 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("bad --since: %+v", r)
	}
}

func TestLingerHintOverSSH(t *testing.T) {
	if backendUnderTest() != "systemd" {
		t.Skip("the hint is for the systemd backend; BTL_TEST_BACKEND=systemd runs this")
	}
	u := newUser(t)
	dir := t.TempDir()
	ssh := []string{"SSH_CONNECTION=10.0.0.1 50000 10.0.0.2 22"}
	r := u.btlEnv(dir, ssh, "sleep", "101")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "Hint: systemd ends your tasks when you log out of ssh") || !strings.Contains(r.stderr, "loginctl enable-linger ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("first start over ssh: %+v", r)
	}
	if r := u.btlEnv(dir, ssh, "sleep", "102"); r.code != 0 || r.stderr != "" {
		t.Errorf("the hint came twice: %+v", r)
	}
	if r := u.btl(dir, "sleep", "103"); r.stderr != "" {
		t.Errorf("hint without ssh: %+v", r)
	}
}

// TestReplaceRebindsPort replaces a server in a loop: each new instance
// must bind the same port, so the old one must be gone when btl reports
// the new start.
func TestReplaceRebindsPort(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to run a real server")
	}
	u := newUser(t)
	dir := t.TempDir()
	port := strconv.Itoa(20000 + os.Getpid()%20000)
	for i := range 5 {
		s := u.start(dir, py, "-m", "http.server", "--bind", "127.0.0.1", port)
		coretest.Eventually(t, 10*time.Second, "server "+strconv.Itoa(i)+" to serve", func() bool {
			b, _ := os.ReadFile(s.log)
			return strings.Contains(string(b), "started PID "+strconv.Itoa(s.pid)+":") && strings.HasSuffix(string(b), "Serving HTTP on 127.0.0.1 port "+port+" (http://127.0.0.1:"+port+"/) ...\n")
		})
		if b, _ := os.ReadFile(s.log); strings.Contains(string(b), "Address already in use") {
			t.Fatalf("replacement %d could not bind the port:\n%s", i, b)
		}
	}
}

// TestEditedStateNeverStopsForeignUnit points a state entry at a unit btl
// did not start; kill and replace must leave it running.
func TestEditedStateNeverStopsForeignUnit(t *testing.T) {
	if backendUnderTest() != "systemd" {
		t.Skip("BTL_TEST_BACKEND=systemd runs this")
	}
	u := newUser(t)
	dir := t.TempDir()
	victim := "victim-" + strconv.Itoa(os.Getpid()) + ".service"
	run := exec.Command("systemd-run", "--user", "--quiet", "--unit="+victim, "sleep", "100")
	run.Env = u.env
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		stop := exec.Command("systemctl", "--user", "stop", victim)
		stop.Env = u.env
		stop.Run()
	})
	show := exec.Command("systemctl", "--user", "show", "-p", "MainPID", "--value", victim)
	show.Env = u.env
	out, _ := show.Output()
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	argv := []string{"sleep", "100"}
	hash := core.Hash(mustReal(t, dir), core.CommandLine(argv))
	entry := fmtSprintf(`{"processes": {"%s": {"pid": %d, "user_id": %d, "command": "sleep 100", "cwd": %q, "backend": "systemd", "unit": %q}}}`, hash, pid, os.Getuid(), mustReal(t, dir), victim)
	os.MkdirAll(u.dataDir(), 0o700)
	os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
	u.ok(dir, "kill", hash)
	os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
	u.start(dir, argv...)
	active := exec.Command("systemctl", "--user", "is-active", victim)
	active.Env = u.env
	if out, _ := active.Output(); strings.TrimSpace(string(out)) != "active" || !coretest.Alive(pid) {
		t.Fatalf("btl stopped a unit it did not start (%s)", out)
	}
}

// An entry written before btl had several backends names none: it is the
// fork backend's, shown, inspected and stopped as such.
func TestEntryWithoutBackend(t *testing.T) {
	if backendUnderTest() != "fork" {
		t.Skip("such entries are fork's; the fork run covers this")
	}
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "100")
	path := filepath.Join(u.dataDir(), "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]map[string]map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	delete(st["processes"][s.hash], "backend")
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := u.ok(dir, "show", s.hash[:8])
	for _, want := range []string{"Status:    running\n", "Backend:   fork\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	u.ok(dir, "kill", s.hash[:8])
	if coretest.Alive(s.pid) {
		t.Errorf("PID %d still runs after kill", s.pid)
	}
}
