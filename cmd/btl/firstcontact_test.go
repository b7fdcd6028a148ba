package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"btl/backend/systemd"
	"btl/core/coretest"
)

// otherBackend is a backend other than the one under test that can run
// tasks here: fork beside systemd or launchd, and systemd beside fork.
func otherBackend(t *testing.T) string {
	t.Helper()
	if backendUnderTest() != "fork" {
		return "fork"
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt == "" || !isSocket(filepath.Join(rt, "bus")) {
		coretest.Missing(t, "no systemd --user bus: a second backend beside fork is needed")
	}
	return "systemd"
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

func TestCleanAllKeepsRunningTasksAndDeletesWhatEndedTasksLeft(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	runner := u.start(dir, "sleep", "300")
	ender := u.start(dir, "sh", "-c", "echo finishing; exit 3")
	coretest.Eventually(t, 10*time.Second, "the short task to end", func() bool {
		return strings.Contains(u.ok(dir, "list"), "exited 3")
	})
	want := fmt.Sprintf("[btl] Removed 1 ended task (logs deleted)\n[btl] Kept 1 running task (btl kill --all stops them):\n  %s  PID %d  sleep 300\n", runner.hash, runner.pid)
	if out := u.ok(dir, "clean", "--all"); out != want {
		t.Errorf("clean --all:\n%s\nwant:\n%s", out, want)
	}
	if !coretest.Alive(runner.pid) {
		t.Fatal("clean --all stopped a running task")
	}
	// What clean --all says it kept, list shows; what it removed, list
	// does not bring back.
	out := u.ok(dir, "list")
	if !strings.Contains(out, runner.hash) || strings.Contains(out, ender.hash) {
		t.Errorf("list after clean --all:\n%s", out)
	}
	if _, err := os.Stat(ender.log); !os.IsNotExist(err) {
		t.Errorf("the ended task's log is still there: %v", err)
	}
	if _, err := os.Stat(runner.log); err != nil {
		t.Errorf("the running task's log is gone: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(u.dataDir(), "run", ender.hash+"*"))
	if len(left) > 0 {
		t.Errorf("runtime files of the removed task remain: %v", left)
	}
	if backendUnderTest() == "systemd" {
		// systemd collects a unit whose failure was reset moments later.
		coretest.Eventually(t, 5*time.Second, "the removed task's unit to be collected", func() bool {
			return !unitLoaded(t, systemd.UnitName(filepath.Join(u.dataDir(), "run"), ender.hash))
		})
	}
	// Even with state.json gone, the running task is seen again.
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	if out := u.ok(dir, "list"); !strings.Contains(out, runner.hash) {
		t.Errorf("list after state.json was lost:\n%s", out)
	}
}

func TestListSeesEveryBackendAfterStateLoss(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	other := otherBackend(t)
	s := u.start(dir, "--backend", other, "sleep", "301")
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	out := u.ok(dir, "list", "-o", "wide")
	re := regexp.MustCompile(`(?m)^` + s.hash + ` +- +` + fmt.Sprint(s.pid) + ` +running .* ` + other + ` `)
	if !re.MatchString(out) {
		t.Fatalf("a %s task is not listed after state.json was lost:\n%s", other, out)
	}
	// Seen again, it is still the one instance: the same command replaces it.
	again := u.start(dir, "--backend", other, "sleep", "301")
	if again.killed != s.pid || coretest.Alive(s.pid) {
		t.Errorf("the re-adopted task was not replaced: killed %d, old PID %d alive %v", again.killed, s.pid, coretest.Alive(s.pid))
	}
}

func TestRestartKeepsTheTasksBackend(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	other := otherBackend(t)
	s := u.start(dir, "--backend", other, "sleep", "302")
	out := u.ok(t.TempDir(), "restart", s.hash)
	if m, ok := parseStart(out); !ok || m.killed != s.pid {
		t.Fatalf("restart printed:\n%s", out)
	}
	if got := u.state().Processes[s.hash].Backend; got != other {
		t.Errorf("restart ran the task with %q, want its own backend %q", got, other)
	}
	// --backend still chooses.
	u.ok(t.TempDir(), "--backend", backendUnderTest(), "restart", s.hash)
	if got := u.state().Processes[s.hash].Backend; got != backendUnderTest() {
		t.Errorf("restart --backend %s ran the task with %q", backendUnderTest(), got)
	}
}

func TestSIGKILLIsReported(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// The shell ignores SIGTERM; its sleeps do not, so it lives on.
	argv := []string{"sh", "-c", `trap "" TERM; echo is-ready; while :; do sleep 1; done`}
	first := u.start(dir, argv...)
	waitLog(t, first.log, "\nis-ready\n")
	second := u.start(dir, argv...)
	if second.killed != first.pid || !second.sigkill {
		t.Errorf("replace of a task ignoring SIGTERM: killed %d, SIGKILL reported %v", second.killed, second.sigkill)
	}
	coretest.Eventually(t, 10*time.Second, "the second run to be ready", func() bool {
		b, _ := os.ReadFile(second.log)
		return strings.Count(string(b), "\nis-ready\n") == 2
	})
	want := fmt.Sprintf("[btl] PID %d did not exit within 2s of SIGTERM; sent SIGKILL\n[btl] Process killed (PID %d)\n", second.pid, second.pid)
	if out := u.ok(dir, "kill", second.hash); out != want {
		t.Errorf("kill of a task ignoring SIGTERM: %q, want %q", out, want)
	}
	// A task that exits at SIGTERM gets no such line.
	quick := u.start(dir, "sleep", "303")
	if out := u.ok(dir, "kill", quick.hash); strings.Contains(out, "SIGKILL") {
		t.Errorf("kill of a task that obeys SIGTERM: %q", out)
	}
}

// waitLog waits until the log file contains s.
func waitLog(t *testing.T, log, s string) {
	t.Helper()
	coretest.Eventually(t, 10*time.Second, fmt.Sprintf("%q in the log", s), func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), s)
	})
}

func TestStartSaysWhenTheTaskDiedAtOnce(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	// btl looks once, without waiting: whether the task has ended by then
	// is a race, which a task that exits at once wins nearly always.
	var s started
	for i := 0; i < 20 && s.ended == ""; i++ {
		s = u.start(dir, "sh", "-c", "echo starting; echo 'Error: port 5173 is already in use' >&2; exit 3")
	}
	if s.ended != "exited 3" {
		t.Fatalf("20 starts of a task that exits at once never said so (last: %+v)", s)
	}
	out := u.ok(dir, "sh", "-c", "echo starting; echo 'Error: port 5173 is already in use' >&2; exit 3")
	if m, ok := parseStart(out); ok && m.ended != "" && !strings.HasSuffix(out, "the end of its log:\n  starting\n  Error: port 5173 is already in use\n") {
		t.Errorf("the report does not end with the run's log lines:\n%s", out)
	}
	// A task that runs gets the four lines only.
	if run := u.start(dir, "sleep", "304"); run.ended != "" {
		t.Errorf("a running task was reported as ended: %q", run.ended)
	}
}

func TestLogsNamesTheCommandOfForgottenTasks(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo gone soon")
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool {
		return strings.Contains(u.ok(dir, "list"), "exited 0")
	})
	u.ok(dir, "clean")
	out := u.ok(dir, "logs")
	if !regexp.MustCompile(`(?m)^  ` + s.hash + ` .*  sh -c 'echo gone soon'$`).MatchString(out) {
		t.Errorf("btl logs lacks the forgotten task's command:\n%s", out)
	}
}

func TestCompletionShellsMatchTheREADME(t *testing.T) {
	u := newUser(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`btl completion ([a-z|]+)`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README does not show btl completion")
	}
	documented := strings.Split(string(m[1]), "|")
	help := u.ok(t.TempDir(), "completion", "--help")
	_, cmds, _ := strings.Cut(help, "Available Commands:\n")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	offered := regexp.MustCompile(`(?m)^  ([a-z]+) +`).FindAllStringSubmatch(cmds, -1)
	var got []string
	for _, o := range offered {
		got = append(got, o[1])
	}
	if strings.Join(got, "|") != strings.Join(slices.Sorted(slices.Values(documented)), "|") {
		t.Errorf("btl completion offers %v, README documents %v", got, documented)
	}
	for _, sh := range documented {
		if out := u.ok(t.TempDir(), "completion", sh); !strings.Contains(out, "btl") {
			t.Errorf("btl completion %s printed no script", sh)
		}
	}
	if h := u.ok(t.TempDir(), "completion", "bash", "--help"); !strings.Contains(h, "bash-completion") || !strings.Contains(h, "~/.local/share/bash-completion/completions/btl") {
		t.Errorf("btl completion bash --help does not say what it needs and where a user installs it:\n%s", h)
	}
}

// unitLoaded reports whether unit is among the caller's user manager's
// units, as systemctl --user list-units --all shows them (systemctl show
// would load the unit to answer).
func unitLoaded(t *testing.T, unit string) bool {
	t.Helper()
	out, err := exec.Command("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", unit).Output()
	if err != nil {
		t.Fatalf("systemctl --user list-units %s: %v", unit, err)
	}
	return strings.Contains(string(out), unit)
}

// TestUnreachableTaskIsUnknownAndKept: from a shell without a user bus
// (ssh without a session, cron), a running systemd task cannot be asked
// about; it is "unknown", never forgotten, and kill says what to do.
func TestUnreachableTaskIsUnknownAndKept(t *testing.T) {
	if backendUnderTest() != "systemd" {
		t.Skip("needs a systemd task: the systemd run of this suite does it")
	}
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "306")
	nobus := []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus", "XDG_RUNTIME_DIR=" + t.TempDir(), "BTL_BACKEND=auto"}
	r := u.btlEnv(dir, nobus, "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^`+s.hash+` +- +unknown `).MatchString(r.stdout) {
		t.Errorf("list without a bus: %+v", r)
	}
	for _, args := range [][]string{{"clean"}, {"clean", "--all"}} {
		if r := u.btlEnv(dir, nobus, args...); r.code != 0 || strings.Contains(r.stdout, "Removed 1") {
			t.Errorf("%v without a bus: %+v", args, r)
		}
	}
	r = u.btlEnv(dir, nobus, "kill", s.hash)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "cannot be reached here") {
		t.Errorf("kill without a bus: %+v", r)
	}
	if !coretest.Alive(s.pid) || u.state().Processes[s.hash] == nil {
		t.Fatal("the task was stopped or forgotten")
	}
	// Where the bus answers, the task is there as it was.
	if out := u.ok(dir, "list"); !strings.Contains(out, s.hash) || !strings.Contains(out, "running") {
		t.Errorf("list with the bus:\n%s", out)
	}
}
