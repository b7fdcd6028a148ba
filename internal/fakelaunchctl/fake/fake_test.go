//go:build linux

package fake

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"howett.net/plist"

	"btl/core/coretest"
	"btl/internal/proc/proctest"
)

// TestMain lets the test binary impersonate launchctl: with
// FAKE_LAUNCHCTL_AS_MAIN=1 it runs the fake instead of the tests. The fake
// re-executes os.Executable for its helpers, so this works for them too, and
// no "go build" (with its caches) is needed as an unprivileged user.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_LAUNCHCTL_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// waitLimit bounds every wait on a condition: generous, for a loaded machine.
const waitLimit = 60 * time.Second

// harness is one test's fake: its own state directory, scratch directory and
// label prefix, and a leak check that runs after every other cleanup.
type harness struct {
	t      *testing.T
	bin    string // "launchctl", a symlink to the test binary
	state  string
	dir    string
	env    []string
	cwd    string // working directory of the fake; "" inherits
	uid    int
	gui    string // gui/<uid>
	user   string // user/<uid>
	prefix string // label prefix unique to the test
	clock  string // the test clock's file; "" for real time
}

func newHarness(t *testing.T, env ...string) *harness {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bin: filepath.Join(t.TempDir(), "launchctl"), state: t.TempDir(), dir: t.TempDir(), uid: os.Getuid()}
	if err := os.Symlink(exe, h.bin); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FAKE_LAUNCHCTL_") {
			h.env = append(h.env, kv)
		}
	}
	// A -race binary sleeps 1s at exit by default; the fake is run a lot.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	h.env = append(h.env, "GORACE="+gorace, "FAKE_LAUNCHCTL_AS_MAIN=1", "FAKE_LAUNCHCTL_STATE="+h.state)
	h.env = append(h.env, env...)
	h.gui, h.user = fmt.Sprintf("gui/%d", h.uid), fmt.Sprintf("user/%d", h.uid)
	h.prefix = "com.btl.fake." + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	t.Cleanup(h.checkLeaks) // registered after the TempDirs: runs before they are removed
	return h
}

// newClockedHarness is newHarness with the fake on a clock the test
// drives with advance: nothing time-based happens until it does.
func newClockedHarness(t *testing.T, env ...string) *harness {
	t.Helper()
	h := newHarness(t, env...)
	h.clock = filepath.Join(h.dir, "clock")
	h.env = append(h.env, "FAKE_LAUNCHCTL_CLOCK="+h.clock)
	return h
}

// advance moves the test clock forward by d.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	if _, err := AdvanceClock(h.clock, d); err != nil {
		h.t.Fatal(err)
	}
}

// settle waits, moving the test clock on, until print of the label in
// the gui domain answers 113.
func (h *harness) settle(label string) {
	h.t.Helper()
	h.waitFor(label+" to be gone", func() bool {
		h.advance(time.Second)
		_, _, code := h.run("print", h.gui+"/"+label)
		return code == 113
	})
}

// run invokes the fake and returns its stdout, stderr and exit code.
func (h *harness) run(args ...string) (stdout, stderr string, code int) {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env, cmd.Dir = h.env, h.cwd
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("launchctl %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustRun runs the fake and fails the test unless it exits with want.
func (h *harness) mustRun(want int, args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != want {
		h.t.Fatalf("launchctl %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, want, errOut)
	}
	return out
}

// with returns a copy of h bound to the subtest t (failures and cleanups go
// to t, which must not call FailNow on its parent).
func (h *harness) with(t *testing.T) *harness {
	cp := *h
	cp.t = t
	return &cp
}

func (h *harness) label(name string) string { return h.prefix + "." + name }

// job returns a plist dictionary that runs args at load.
func (h *harness) job(label string, args ...string) map[string]any {
	return map[string]any{"Label": label, "ProgramArguments": args, "RunAtLoad": true}
}

// writePlist writes m as an XML plist with mode 0600 and returns its path.
func (h *harness) writePlist(name string, m map[string]any) string {
	h.t.Helper()
	data, err := plist.MarshalIndent(m, plist.XMLFormat, "\t")
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.dir, name+".plist")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// load bootstraps m into domain (h.gui if empty), expects exit 0 and boots
// the job out at cleanup.
func (h *harness) load(domain string, m map[string]any) string {
	h.t.Helper()
	if domain == "" {
		domain = h.gui
	}
	label := m["Label"].(string)
	path := h.writePlist(fmt.Sprintf("%s-%d", label, time.Now().UnixNano()), m)
	h.t.Cleanup(func() { h.run("bootout", domain+"/"+label) })
	h.mustRun(0, "bootstrap", domain, path)
	return label
}

// print returns the top-level fields of "print <gui>/<label>" and the dump.
func (h *harness) print(label string) (map[string]string, string) {
	h.t.Helper()
	out := h.mustRun(0, "print", h.gui+"/"+label)
	return topLevel(out), out
}

// topLevel parses the lines of a print dump with exactly one leading tab.
func topLevel(dump string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		if k, v, ok := strings.Cut(line[1:], " = "); ok {
			m[k] = v
		}
	}
	return m
}

// waitFor polls cond every 10ms until it holds or waitLimit passes.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExited waits until the job has run and stopped and returns its fields.
func (h *harness) waitExited(label string) map[string]string {
	h.t.Helper()
	var f map[string]string
	h.waitFor(label+" to exit", func() bool {
		f, _ = h.print(label)
		return f["state"] == "not running" && f["last exit code"] != "(never exited)"
	})
	return f
}

// runningPID waits until the job runs (launchd spawns it a while after
// bootstrap returns) and returns its pid.
func (h *harness) runningPID(label string) int {
	h.t.Helper()
	var f map[string]string
	h.waitFor(label+" to run", func() bool {
		f, _ = h.print(label)
		return f["state"] != "spawn scheduled" && f["state"] != "spawning"
	})
	pid, err := strconv.Atoi(f["pid"])
	if f["state"] != "running" || err != nil {
		h.t.Fatalf("%s: state %q pid %q, want running with a pid", label, f["state"], f["pid"])
	}
	return pid
}

// waitGone waits until print of the label in domain answers 113: a
// booted-out label lingers for a while.
func (h *harness) waitGone(domain, label string) {
	h.t.Helper()
	h.waitFor(label+" to be gone", func() bool { _, _, code := h.run("print", domain+"/"+label); return code == 113 })
}

// missingDomain reports whether a call answered as for a missing domain:
// 112 with want, or 125 (both are seen on real Macs).
func missingDomain(code int, stderr, want string) bool {
	return code == 112 && stderr == want || code == 125 && stderr == "Domain does not support specified action\n"
}

// listRows parses "launchctl list" into label -> "PID\tStatus".
func (h *harness) listRows() map[string]string {
	h.t.Helper()
	out := h.mustRun(0, "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "PID\tStatus\tLabel" {
		h.t.Fatalf("list header %q", lines[0])
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			h.t.Fatalf("list row %q", l)
		}
		rows[f[2]] = f[0] + "\t" + f[1]
	}
	return rows
}

// processGone reports whether pid no longer exists or is a zombie.
func processGone(pid int) bool {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] == 'Z'
}

// ours lists live processes started by this test: helpers carry the state
// directory in their environment, jobs (and their children) the label prefix.
func (h *harness) ours() []int {
	return proctest.Scan(os.Getuid(), func(_ int, env [][]byte) bool {
		for _, kv := range env {
			s := string(kv)
			if s == "FAKE_LAUNCHCTL_STATE="+h.state || strings.HasPrefix(s, "XPC_SERVICE_NAME="+h.prefix) {
				return true
			}
		}
		return false
	})
}

// checkLeaks fails the test if processes it started outlive it.
func (h *harness) checkLeaks() {
	deadline := time.Now().Add(waitLimit)
	for {
		left := h.ours()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range left {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				desc = append(desc, fmt.Sprintf("%d (%s)", pid, bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '})))
			}
			h.t.Errorf("leaked processes: %s", strings.Join(desc, ", "))
			for _, pid := range left {
				unix.Kill(pid, unix.SIGKILL)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStateDirRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cmd := exec.Command(h.bin, "list")
	cmd.Env = []string{"FAKE_LAUNCHCTL_AS_MAIN=1"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 || !strings.Contains(string(out), "FAKE_LAUNCHCTL_STATE") {
		t.Fatalf("without state dir: %v, %q; want exit 64 naming FAKE_LAUNCHCTL_STATE", err, out)
	}
}

func TestRelativeStateDir(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cwd = filepath.Dir(h.state)
	h.env = append(h.env, "FAKE_LAUNCHCTL_STATE="+filepath.Base(h.state))
	label := h.label("rel")
	h.load("", h.job(label, "/bin/sleep", "300"))
	pid := h.runningPID(label)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	if !processGone(pid) {
		t.Errorf("pid %d alive after bootout", pid)
	}
	if _, err := os.Stat(filepath.Join(h.state, "calls.log")); err != nil {
		t.Error(err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"load", "/tmp/x.plist"},
		{"bootstrap", h.gui},
		{"bootstrap", h.gui + "/x", "/tmp/x.plist"},
		{"bootstrap", "nonsense", "/tmp/x.plist"},
		{"bootout", h.gui},
		{"bootout"},
		{"print"},
		{"print", "nonsense"},
		{"print", "gui/abc"},
		{"kill", "SIGFOO", h.gui + "/x"},
		{"kill", "TERM", h.gui},
		{"kill", "TERM"},
		{"list", "a", "b"},
	} {
		out, errOut, code := h.run(args...)
		if code != 64 || out != "" || !strings.Contains(errOut, "Usage: launchctl") {
			t.Errorf("launchctl %q: exit %d stdout %q stderr %q; want 64 with usage", args, code, out, errOut)
		}
	}
}

func TestDomainsAndMissingServices(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	other := h.uid + 1
	path := h.writePlist("valid", h.job(h.label("x"), "/bin/true"))
	for _, tc := range []struct {
		args       []string
		code       int
		stdoutHead string
		stderr     string
	}{
		{[]string{"print", h.gui}, 0, h.gui + " = {\n", ""},
		{[]string{"print", h.user}, 0, h.user + " = {\n", ""},
		{[]string{"print", fmt.Sprintf("gui/%d", other)}, 112, "", fmt.Sprintf("Bad request.\nCould not find domain for user gui: %d\n", other)},
		{[]string{"print", fmt.Sprintf("user/%d", other)}, 112, "", fmt.Sprintf("Bad request.\nCould not find domain for uid: %d\n", other)},
		{[]string{"print", "system"}, 112, "", "Bad request.\nCould not find domain for system\n"},
		{[]string{"bootstrap", fmt.Sprintf("gui/%d", other), path}, 1, "", "Bootstrap failed: 1: Operation not permitted\n"},
		{[]string{"bootout", fmt.Sprintf("user/%d/x", other)}, 1, "", "Boot-out failed: 1: Operation not permitted\n"},
		{[]string{"print", h.gui + "/nope"}, 113, "", fmt.Sprintf("Bad request.\nCould not find service \"nope\" in domain for user gui: %d\n", h.uid)},
		{[]string{"print", h.user + "/nope"}, 113, "", fmt.Sprintf("Bad request.\nCould not find service \"nope\" in domain for uid: %d\n", h.uid)},
		{[]string{"kill", "SIGTERM", h.gui + "/nope"}, 113, "", fmt.Sprintf("Bad request.\nCould not find service \"nope\" in domain for user gui: %d\n", h.uid)},
		{[]string{"bootout", h.gui + "/nope"}, 113, "", "Boot-out failed: 113: Could not find specified service\n"},
		{[]string{"bootout", h.user, path}, 113, "", "Boot-out failed: 113: Could not find specified service\n"},
		{[]string{"list", "nope"}, 113, "", "Could not find service \"nope\" in domain for port\n"},
	} {
		out, errOut, code := h.run(tc.args...)
		if tc.code == 112 && missingDomain(code, errOut, tc.stderr) && out == "" {
			continue
		}
		if code != tc.code || !strings.HasPrefix(out, tc.stdoutHead) || errOut != tc.stderr || (tc.stdoutHead == "" && out != "") {
			t.Errorf("launchctl %q: exit %d stdout %q stderr %q; want %d, stdout starting %q, stderr %q",
				tc.args, code, out, errOut, tc.code, tc.stdoutHead, tc.stderr)
		}
	}
}

func TestEnvironmentIsExact(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "SHOULD_NOT_LEAK=1")
	for _, tc := range []struct {
		name string
		env  map[string]any
		want []string // without XPC_SERVICE_NAME=<label>
	}{
		{"default PATH", map[string]any{"FOO": "bar baz"}, []string{"FOO=bar baz", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}},
		{"own PATH", map[string]any{"PATH": "/opt/x/bin", "A": "1"}, []string{"A=1", "PATH=/opt/x/bin"}},
		{"no variables", nil, []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}},
		// Whether launchd overrides a plist's XPC_SERVICE_NAME is not
		// known: the fake keeps it, the worse case for a caller.
		{"service name given", map[string]any{"XPC_SERVICE_NAME": "0"}, []string{"XPC_SERVICE_NAME=0", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			label := h.label(regexp.MustCompile(`\W`).ReplaceAllString(tc.name, "-"))
			logPath := filepath.Join(h.dir, label+".log")
			m := h.job(label, "/usr/bin/env")
			m["StandardOutPath"] = logPath
			if tc.env != nil {
				m["EnvironmentVariables"] = tc.env
			}
			h.load("", m)
			if f := h.waitExited(label); f["last exit code"] != "0" {
				t.Fatalf("last exit code %q", f["last exit code"])
			}
			data, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(string(data)), "\n")
			want := tc.want
			if tc.env["XPC_SERVICE_NAME"] == nil {
				want = append(want, "XPC_SERVICE_NAME="+label)
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("environment\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestWorkingDirectoryStdioAndLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	wd, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	script := `pwd; readlink /proc/$$/fd/0; echo to-stderr >&2`
	t.Run("shared log", func(t *testing.T) {
		h := h.with(t)
		label, logPath := h.label("shared"), filepath.Join(h.dir, "shared.log")
		if err := os.WriteFile(logPath, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m := h.job(label, "/bin/sh", "-c", script)
		m["WorkingDirectory"], m["StandardOutPath"], m["StandardErrorPath"] = wd, logPath, logPath
		h.load("", m)
		f := h.waitExited(label)
		if f["working directory"] != wd || f["stdout path"] != logPath || f["stderr path"] != logPath {
			t.Errorf("print fields %v", f)
		}
		data, _ := os.ReadFile(logPath)
		if want := "old\n" + wd + "\n/dev/null\nto-stderr\n"; string(data) != want {
			t.Errorf("log %q, want %q", data, want)
		}
	})
	t.Run("default working directory", func(t *testing.T) {
		h := h.with(t)
		label, logPath := h.label("defaultwd"), filepath.Join(h.dir, "defaultwd.log")
		m := h.job(label, "/bin/pwd")
		m["StandardOutPath"] = logPath
		h.load("", m)
		if f := h.waitExited(label); f["working directory"] != "" {
			t.Errorf("print shows a working directory: %v", f)
		}
		if data, _ := os.ReadFile(logPath); string(data) != "/\n" {
			t.Errorf("cwd %q, want /", data)
		}
	})
	t.Run("separate logs", func(t *testing.T) {
		h := h.with(t)
		label := h.label("separate")
		outPath, errPath := filepath.Join(h.dir, "sep.out"), filepath.Join(h.dir, "sep.err")
		m := h.job(label, "/bin/sh", "-c", script)
		m["WorkingDirectory"], m["StandardOutPath"], m["StandardErrorPath"] = wd, outPath, errPath
		h.load("", m)
		h.waitExited(label)
		o, _ := os.ReadFile(outPath)
		e, _ := os.ReadFile(errPath)
		if string(o) != wd+"\n/dev/null\n" || string(e) != "to-stderr\n" {
			t.Errorf("stdout %q stderr %q", o, e)
		}
	})
}

func TestRunningJobPrintListAndSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	label := h.label("sleeper")
	m := h.job(label, "/bin/sleep", "300")
	m["ExitTimeOut"] = 7
	m["ProcessType"] = "Interactive"
	h.load("", m)
	pid := h.runningPID(label)
	f, dump := h.print(label)
	for k, want := range map[string]string{
		"state": "running", "program": "/bin/sleep", "exit timeout": "7", "runs": "1",
		"last exit code": "(never exited)", "type": "LaunchAgent", "spawn type": "interactive (4)",
		"domain": fmt.Sprintf("%s [100008]", h.gui),
	} {
		if f[k] != want {
			t.Errorf("print %s = %q, want %q", k, f[k], want)
		}
	}
	if !strings.HasPrefix(dump, h.gui+"/"+label+" = {\n") || !strings.HasSuffix(dump, "\n}\n") {
		t.Errorf("dump framing:\n%s", dump)
	}
	if !strings.Contains(dump, "\targuments = {\n\t\t/bin/sleep\n\t\t300\n\t}\n") {
		t.Errorf("arguments block missing:\n%s", dump)
	}
	if !strings.Contains(dump, "\t\tstate = active\n") || !strings.Contains(dump, "\t\tpid = ") ||
		strings.Contains(dump, fmt.Sprintf("\t\tpid = %d\n", pid)) {
		t.Errorf("nested decoy blocks missing or equal to the main pid:\n%s", dump)
	}
	if pg, _ := unix.Getpgid(pid); pg != pid {
		t.Errorf("pgid %d, want %d", pg, pid)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("sid %d, want %d", sid, pid)
	}
	if row := h.listRows()[label]; row != fmt.Sprintf("%d\t0", pid) {
		t.Errorf("list row %q", row)
	}
	out := h.mustRun(0, "list", label)
	for _, want := range []string{fmt.Sprintf("\t\"PID\" = %d;\n", pid), "\t\"LastExitStatus\" = 0;\n", "\t\"Label\" = \"" + label + "\";\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("list %s lacks %q:\n%s", label, want, out)
		}
	}
}

func TestNotRunningJobFormats(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	label := h.label("idle")
	m := h.job(label, "/bin/sleep", "300")
	m["RunAtLoad"] = false
	h.load("", m)
	f, dump := h.print(label)
	if f["state"] != "not running" || f["last exit code"] != "(never exited)" || f["runs"] != "0" || f["exit timeout"] != "5" {
		t.Errorf("fields %v", f)
	}
	if _, ok := f["pid"]; ok || !strings.Contains(dump, "\t\tpid = 1\n") {
		t.Errorf("want no top-level pid but a nested decoy one:\n%s", dump)
	}
	want := "{\n" +
		"\t\"LimitLoadToSessionType\" = \"Aqua\";\n" +
		"\t\"Label\" = \"" + label + "\";\n" +
		"\t\"OnDemand\" = true;\n" +
		"\t\"LastExitStatus\" = 0;\n" +
		"\t\"Program\" = \"/bin/sleep\";\n" +
		"\t\"ProgramArguments\" = (\n\t\t\"/bin/sleep\";\n\t\t\"300\";\n\t);\n" +
		"};\n"
	if out := h.mustRun(0, "list", label); out != want {
		t.Errorf("list %s:\n%s\nwant\n%s", label, out, want)
	}
	if row := h.listRows()[label]; row != "-\t0" {
		t.Errorf("list row %q", row)
	}
}

func TestExitStatusRecording(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct {
		name, script string
		key, value   string
		status       string
		raw          int
	}{
		{"exit0", "exit 0", "last exit code", "0", "0", 0},
		{"exit1", "exit 1", "last exit code", "1", "1", 256},
		{"exit3", "exit 3", "last exit code", "3", "3", 768},
		{"exit78", "exit 78", "last exit code", "78: EX_CONFIG", "78", 78 << 8},
		{"sigterm", "kill -TERM $$", "last terminating signal", "Terminated: 15", "-15", 15},
		{"sigkill", "kill -KILL $$", "last terminating signal", "Killed: 9", "-9", 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			label := h.label(tc.name)
			h.load("", h.job(label, "/bin/sh", "-c", tc.script))
			f := h.waitExitedAny(label)
			if f[tc.key] != tc.value || f["state"] != "not running" {
				t.Errorf("%s = %q (state %q), want %q", tc.key, f[tc.key], f["state"], tc.value)
			}
			if row := h.listRows()[label]; row != "-\t"+tc.status {
				t.Errorf("list row %q, want status %s", row, tc.status)
			}
			out := h.mustRun(0, "list", label)
			if !strings.Contains(out, fmt.Sprintf("\t\"LastExitStatus\" = %d;\n", tc.raw)) || strings.Contains(out, "\"PID\"") {
				t.Errorf("list %s:\n%s\nwant LastExitStatus %d and no PID", label, out, tc.raw)
			}
		})
	}
}

// waitExitedAny waits for an exit code or a terminating signal.
func (h *harness) waitExitedAny(label string) map[string]string {
	h.t.Helper()
	var f map[string]string
	h.waitFor(label+" to stop", func() bool {
		f, _ = h.print(label)
		_, sig := f["last terminating signal"]
		return f["state"] == "not running" && (sig || f["last exit code"] != "(never exited)")
	})
	return f
}

func TestProgramResolutionAndSpawnFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tool := "btl-fake-tool-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The caller's PATH contains tool: launchd must still not find it.
	h := newHarness(t, "PATH="+dir+":"+os.Getenv("PATH"))
	for _, tc := range []struct {
		name  string
		args  []string
		extra map[string]any
		exit  string
	}{
		{"absolute missing", []string{"/nonexistent/prog"}, nil, "78: EX_CONFIG"},
		{"bare missing", []string{"btl-no-such-command-xyz"}, nil, "78: EX_CONFIG"},
		{"only in caller PATH", []string{tool}, nil, "78: EX_CONFIG"},
		{"not executable", []string{notExec}, nil, "78: EX_CONFIG"},
		{"directory", []string{"/tmp"}, nil, "78: EX_CONFIG"},
		{"missing working directory", []string{"/bin/true"}, map[string]any{"WorkingDirectory": "/nonexistent/wd"}, "78: EX_CONFIG"},
		{"log directory missing", []string{"/bin/true"}, map[string]any{"StandardOutPath": "/nonexistent/dir/out.log"}, "78: EX_CONFIG"},
		{"bare name resolved", []string{"env"}, nil, "0"},
		{"bare name with args", []string{"sh", "-c", "exit 4"}, nil, "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			label := h.label(regexp.MustCompile(`\W`).ReplaceAllString(tc.name, "-"))
			m := h.job(label, tc.args...)
			for k, v := range tc.extra {
				m[k] = v
			}
			h.load("", m)
			f := h.waitExited(label)
			if f["last exit code"] != tc.exit || f["runs"] != "1" || f["program"] != tc.args[0] {
				t.Errorf("fields %v; want last exit code %q, runs 1, program %q", f, tc.exit, tc.args[0])
			}
			if tc.exit == "78: EX_CONFIG" {
				if row := h.listRows()[label]; row != "-\t78" {
					t.Errorf("list row %q", row)
				}
				// Still loaded: bootstrapping it again fails.
				path := h.writePlist(label+"-again", m)
				h.mustRun(5, "bootstrap", h.gui, path)
			}
		})
	}
}

func TestDuplicateLabel(t *testing.T) {
	t.Parallel()
	h := newClockedHarness(t, "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=1s")
	label := h.label("dup")
	h.load("", h.job(label, "/bin/sleep", "300"))
	h.advance(spawnMax)
	pid := h.runningPID(label)
	again := h.writePlist("dup-again", h.job(label, "/bin/sleep", "301"))
	if _, errOut, code := h.run("bootstrap", h.gui, again); code != 5 || errOut != "Bootstrap failed: 5: Input/output error\n" {
		t.Fatalf("second bootstrap: exit %d stderr %q", code, errOut)
	}
	if got := h.runningPID(label); got != pid {
		t.Fatalf("pid changed %d -> %d", pid, got)
	}
	// Exited but not booted out: still a duplicate.
	h.mustRun(0, "kill", "SIGTERM", h.gui+"/"+label)
	h.waitExitedAny(label)
	h.mustRun(5, "bootstrap", h.gui, again)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	h.advance(lingerMax)
	h.mustRun(113, "print", h.gui+"/"+label)
	h.mustRun(5, "bootstrap", h.gui, again) // busy for 1s after its bootout [B1]
	h.advance(busyMax)
	h.mustRun(0, "bootstrap", h.gui, again)
	h.advance(spawnMax)
	h.runningPID(label)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	h.settle(label)
}

func TestBootstrapRejectsBadPlists(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	good := func(name string) map[string]any { return h.job(h.label(name), "/bin/true") }
	for _, tc := range []struct {
		name  string
		setup func() string // returns the path to pass
	}{
		{"relative path", func() string {
			h.writePlist("rel", good("rel"))
			return "rel.plist"
		}},
		{"world-writable", func() string {
			p := h.writePlist("ww", good("ww"))
			os.Chmod(p, 0o666)
			return p
		}},
		{"group-writable", func() string {
			p := h.writePlist("gw", good("gw"))
			os.Chmod(p, 0o620)
			return p
		}},
		{"unparsable", func() string {
			p := filepath.Join(h.dir, "garbage.plist")
			os.WriteFile(p, []byte("<?xml version=\"1.0\"?>\n<plist><dict><key>Label</key>"), 0o600)
			return p
		}},
		{"missing file", func() string { return filepath.Join(h.dir, "missing.plist") }},
		{"no label", func() string {
			return h.writePlist("nolabel", map[string]any{"ProgramArguments": []string{"/bin/true"}})
		}},
		{"no program", func() string { return h.writePlist("noprog", map[string]any{"Label": h.label("noprog")}) }},
		{"label not a string", func() string {
			return h.writePlist("badtype", map[string]any{"Label": 7, "ProgramArguments": []string{"/bin/true"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			path := tc.setup()
			out, errOut, code := h.run("bootstrap", h.gui, path)
			if code != 5 || out != "" || errOut != "Bootstrap failed: 5: Input/output error\n" {
				t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
			}
		})
	}
	if rows := h.listRows(); len(rows) != 0 {
		t.Errorf("jobs loaded after rejected bootstraps: %v", rows)
	}
	if data, _ := os.ReadFile(filepath.Join(h.state, "diag.log")); len(bytes.Split(bytes.TrimSpace(data), []byte("\n"))) != 8 {
		t.Errorf("diag.log:\n%s", data)
	}
}

func TestBootout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, byPath := range []bool{false, true} {
		t.Run(fmt.Sprintf("byPath=%v", byPath), func(t *testing.T) {
			h := h.with(t)
			label := h.label(fmt.Sprintf("stop-%v", byPath))
			m := h.job(label, "/bin/sleep", "300")
			path := h.writePlist(label, m)
			h.mustRun(0, "bootstrap", h.gui, path)
			pid := h.runningPID(label)
			args := []string{"bootout", h.gui + "/" + label}
			if byPath {
				args = []string{"bootout", h.gui, path}
			}
			if out, errOut, code := h.run(args...); code != 0 || out != "" || errOut != "" {
				t.Fatalf("bootout: exit %d %q %q", code, out, errOut)
			}
			if !processGone(pid) {
				t.Errorf("pid %d still alive after bootout returned", pid)
			}
			h.waitGone(h.gui, label)
			if _, errOut, code := h.run(args...); code != 113 || errOut != "Boot-out failed: 113: Could not find specified service\n" {
				t.Errorf("second bootout: exit %d stderr %q", code, errOut)
			}
			if _, ok := h.listRows()[label]; ok {
				t.Errorf("%s still listed", label)
			}
		})
	}
	t.Run("exited job", func(t *testing.T) {
		h := h.with(t)
		label := h.label("exited")
		h.load("", h.job(label, "/bin/true"))
		h.waitExited(label)
		h.mustRun(0, "bootout", h.gui+"/"+label)
		h.waitGone(h.gui, label)
	})
}

func TestBootoutEscalatesAfterExitTimeOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	label, logPath := h.label("stubborn"), filepath.Join(h.dir, "stubborn.log")
	m := h.job(label, "/bin/sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	m["ExitTimeOut"], m["StandardOutPath"] = 1, logPath
	h.load("", m)
	pid := h.runningPID(label)
	h.waitFor("trap installed", func() bool {
		data, _ := os.ReadFile(logPath)
		return string(data) == "ready\n"
	})
	start := time.Now()
	h.mustRun(0, "bootout", h.gui+"/"+label)
	if d := time.Since(start); d < 900*time.Millisecond || d > 8*time.Second {
		t.Errorf("bootout took %v, want about ExitTimeOut (1s)", d)
	}
	if !processGone(pid) {
		t.Errorf("pid %d survived SIGKILL", pid)
	}
	h.waitGone(h.gui, label)
}

func TestProcessGroupOnMainExit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, abandon := range []bool{false, true} {
		t.Run(fmt.Sprintf("AbandonProcessGroup=%v", abandon), func(t *testing.T) {
			h := h.with(t)
			label := h.label(fmt.Sprintf("group-%v", abandon))
			pidFile := filepath.Join(h.dir, label+".child")
			m := h.job(label, "/bin/sh", "-c", `sleep 300 >/dev/null 2>&1 & echo $! > `+pidFile+`; exit 0`)
			m["AbandonProcessGroup"] = abandon
			h.load("", m)
			h.waitExited(label)
			data, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			t.Cleanup(func() { unix.Kill(child, unix.SIGKILL) })
			if !abandon {
				h.waitFor("child to get SIGTERM", func() bool { return processGone(child) })
				return
			}
			// The group is signalled before the exit is recorded, and kill(2)
			// marks the signal pending at once: a child that was sent SIGTERM
			// is gone or has it pending now.
			if processGone(child) || sigtermPending(t, child) {
				t.Fatal("child of an abandoned group was sent SIGTERM")
			}
		})
	}
}

// sigtermPending reports whether pid has SIGTERM pending (for the thread
// or the process), from /proc/<pid>/status.
func sigtermPending(t *testing.T, pid int) bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k != "SigPnd" && k != "ShdPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if mask&(1<<(unix.SIGTERM-1)) != 0 {
			return true
		}
	}
	return false
}

func TestKill(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct{ sig, want, status string }{
		{"SIGTERM", "Terminated: 15", "-15"},
		{"TERM", "Terminated: 15", "-15"},
		{"15", "Terminated: 15", "-15"},
		{"9", "Killed: 9", "-9"},
		{"SIGHUP", "Hangup: 1", "-1"},
	} {
		t.Run(tc.sig, func(t *testing.T) {
			h := h.with(t)
			label := h.label("kill-" + tc.sig)
			h.load("", h.job(label, "/bin/sleep", "300"))
			h.runningPID(label)
			if out, errOut, code := h.run("kill", tc.sig, h.gui+"/"+label); code != 0 || out != "" || errOut != "" {
				t.Fatalf("kill: exit %d %q %q", code, out, errOut)
			}
			if f := h.waitExitedAny(label); f["last terminating signal"] != tc.want {
				t.Errorf("last terminating signal %q, want %q", f["last terminating signal"], tc.want)
			}
			if row := h.listRows()[label]; row != "-\t"+tc.status {
				t.Errorf("list row %q", row)
			}
			_, errOut, code := h.run("kill", tc.sig, h.gui+"/"+label)
			if want := "Could not kill service \"" + label + "\": 3: No such process\n"; code != 3 || errOut != want {
				t.Errorf("kill of stopped job: exit %d stderr %q", code, errOut)
			}
		})
	}
}

func TestListAcrossDomains(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b, c, d := h.label("a"), h.label("b"), h.label("c"), h.label("d")
	h.load("", h.job(a, "/bin/sleep", "300"))
	h.load("", h.job(b, "/bin/sh", "-c", "exit 2"))
	idle := h.job(c, "/bin/true")
	idle["RunAtLoad"] = false
	h.load("", idle)
	dm := h.job(d, "/bin/true")
	dm["LimitLoadToSessionType"] = "Background"
	h.load(h.user, dm)
	pid := h.runningPID(a)
	h.waitExited(b)
	h.waitFor(d+" to exit", func() bool {
		return topLevel(h.mustRun(0, "print", h.user+"/"+d))["last exit code"] == "0"
	})
	// list shows only the caller's session's domain: gui for Aqua, user
	// for Background.
	bg := *h
	bg.env = append(slices.Clone(h.env), "FAKE_LAUNCHCTL_SESSION=Background")
	if rows := bg.listRows(); fmt.Sprint(rows) != fmt.Sprint(map[string]string{d: "-\t0"}) {
		t.Errorf("list rows from a Background session %v, want only %s", rows, d)
	}
	rows := h.listRows()
	want := map[string]string{a: fmt.Sprintf("%d\t0", pid), b: "-\t2", c: "-\t0"}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("list rows %v, want %v", rows, want)
	}
	if out := h.mustRun(0, "list", b); !strings.Contains(out, "\t\"LastExitStatus\" = 512;\n") || strings.Contains(out, "PID") {
		t.Errorf("list %s:\n%s", b, out)
	}
	if out, _, code := h.run("list", d); code != 113 {
		t.Errorf("list %s from Aqua: exit %d, want 113 (another domain's job)\n%s", d, code, out)
	}
	if out := bg.mustRun(0, "list", d); !strings.Contains(out, "\t\"LimitLoadToSessionType\" = \"Background\";\n") {
		t.Errorf("list %s:\n%s", d, out)
	}
	dump := h.mustRun(0, "print", h.gui)
	f := topLevel(dump)
	if f["service count"] != "3" || f["active service count"] != "1" || !strings.Contains(dump, fmt.Sprintf("\t\t%8d %6s \t%s\n", pid, "-", a)) ||
		!strings.Contains(dump, fmt.Sprintf("\t\t%8d %6s \t%s\n", 0, "2", b)) {
		t.Errorf("print %s:\n%s", h.gui, dump)
	}
}

func TestNoGUI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "FAKE_LAUNCHCTL_NO_GUI=1")
	label := h.label("headless")
	m := h.job(label, "/bin/sleep", "300")
	m["LimitLoadToSessionType"] = "Background"
	path := h.writePlist("headless", m)
	domainMissing := fmt.Sprintf("Bad request.\nCould not find domain for user gui: %d\n", h.uid)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"print", h.gui}, 112, domainMissing},
		{[]string{"print", h.gui + "/" + label}, 112, domainMissing},
		{[]string{"bootstrap", h.gui, path}, 125, "Bootstrap failed: 125: Domain does not support specified action\n"},
		{[]string{"bootout", h.gui + "/" + label}, 125, "Boot-out failed: 125: Domain does not support specified action\n"},
	} {
		if _, errOut, code := h.run(tc.args...); (code != tc.code || errOut != tc.stderr) && !(tc.code == 112 && missingDomain(code, errOut, tc.stderr)) {
			t.Errorf("launchctl %q: exit %d stderr %q; want %d %q", tc.args, code, errOut, tc.code, tc.stderr)
		}
	}
	h.mustRun(0, "print", h.user)
	h.load(h.user, m)
	if _, ok := h.listRows()[label]; !ok {
		t.Errorf("%s not listed", label)
	}
	if out := h.mustRun(0, "list", label); !strings.Contains(out, "\t\"LimitLoadToSessionType\" = \"Background\";\n") {
		t.Errorf("list %s:\n%s", label, out)
	}
	h.mustRun(0, "bootout", h.user+"/"+label)
}

func TestBootoutInProgress36(t *testing.T) {
	t.Parallel()
	h := newClockedHarness(t, "FAKE_LAUNCHCTL_BOOTOUT_36=1", "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=0s")
	label := h.label("slow")
	path := h.writePlist("slow", h.job(label, "/bin/sleep", "300"))
	t.Cleanup(func() {
		h.run("bootout", h.gui+"/"+label)
		h.settle(label)
	})
	h.mustRun(0, "bootstrap", h.gui, path)
	h.advance(spawnMax)
	pid := h.runningPID(label)
	if _, errOut, code := h.run("bootout", h.gui+"/"+label); code != 36 || errOut != "Boot-out failed: 36: Operation now in progress\n" {
		t.Fatalf("bootout: exit %d stderr %q", code, errOut)
	}
	h.waitFor("the job's process to end", func() bool { return processGone(pid) })
	h.waitFor("the job to be recorded as ended", func() bool { f, _ := h.print(label); return f["state"] == "not running" })
	// The teardown goes on for 200ms of the clock after the bootout.
	h.advance(199 * time.Millisecond)
	if f, _ := h.print(label); f["state"] != "not running" {
		t.Errorf("199ms after bootout: state %q, want not running (still being torn down)", f["state"])
	}
	h.advance(time.Millisecond)
	h.waitFor("the job to linger", func() bool { f, _ := h.print(label); return f["state"] == "SIGTERMed" || f["state"] == "exited" })
	h.advance(lingerMax)
	h.mustRun(113, "print", h.gui+"/"+label)
	h.mustRun(113, "bootout", h.gui+"/"+label)
	h.mustRun(0, "bootstrap", h.gui, path)
}

func TestCallsLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	label := h.label("logged")
	path := h.writePlist("logged", h.job(label, "/bin/sleep", "300"))
	h.run("print", h.gui)
	h.run("frobnicate", "x")
	h.run("bootstrap", h.gui, path)
	h.run("list")
	h.run("bootout", h.gui+"/"+label)
	h.run("bootout", h.gui+"/nope")
	want := strings.Join([]string{
		"print " + h.gui + "\t0",
		"frobnicate x\t64",
		"bootstrap " + h.gui + " " + path + "\t0",
		"list\t0",
		"bootout " + h.gui + "/" + label + "\t0",
		"bootout " + h.gui + "/nope\t113",
	}, "\n") + "\n"
	if data, _ := os.ReadFile(filepath.Join(h.state, "calls.log")); string(data) != want {
		t.Errorf("calls.log:\n%s\nwant\n%s", data, want)
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 8
	same := h.label("same")
	codes := make([]int, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		distinct := h.label("n" + strconv.Itoa(i))
		p1 := h.writePlist(distinct, h.job(distinct, "/bin/sleep", "300"))
		p2 := h.writePlist(fmt.Sprintf("same-%d", i), h.job(same, "/bin/sleep", "300"))
		t.Cleanup(func() { h.run("bootout", h.gui+"/"+distinct) })
		wg.Add(2)
		go func() { defer wg.Done(); _, _, codes[i] = h.run("bootstrap", h.gui, p1) }()
		go func() { defer wg.Done(); _, _, codes[n+i] = h.run("bootstrap", h.gui, p2) }()
	}
	t.Cleanup(func() { h.run("bootout", h.gui+"/"+same) })
	wg.Wait()
	wins := 0
	for i, c := range codes {
		switch {
		case i < n && c != 0:
			t.Errorf("bootstrap of distinct label %d: exit %d", i, c)
		case i >= n && c == 0:
			wins++
		case i >= n && c != 5:
			t.Errorf("bootstrap of the shared label: exit %d, want 0 or 5", c)
		}
	}
	if wins != 1 {
		t.Errorf("%d bootstraps of one label succeeded, want 1", wins)
	}
	data, _ := os.ReadFile(filepath.Join(h.state, "calls.log"))
	if lines := strings.Count(string(data), "\n"); lines != 2*n {
		t.Errorf("calls.log has %d lines, want %d", lines, 2*n)
	}
	for label := range h.listRows() {
		h.runningPID(label)
	}
	rows := h.listRows()
	if len(rows) != n+1 {
		t.Errorf("list has %d rows, want %d: %v", len(rows), n+1, rows)
	}
	for label, row := range rows {
		if strings.HasPrefix(row, "-") {
			t.Errorf("%s not running: %q", label, row)
		}
	}
}

// TestBuiltBinary checks main() and the helper re-exec with a real "go
// build", when the toolchain can build here (it may not as an unprivileged
// user without a writable module cache).
func TestBuiltBinary(t *testing.T) {
	t.Parallel()
	// make test builds the command for this test (as root, whose Go caches
	// it can write) and names it here.
	bin := os.Getenv("BTL_TEST_FAKE_LAUNCHCTL")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "launchctl")
		out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput()
		if err != nil {
			coretest.Missing(t, "BTL_TEST_FAKE_LAUNCHCTL is not set and go build failed (make test builds it): %v\n%s", err, out)
		}
	}
	h := newHarness(t)
	h.bin = bin
	h.env = append(h.env, "FAKE_LAUNCHCTL_AS_MAIN=0")
	label := h.label("built")
	h.load("", h.job(label, "/bin/sleep", "300"))
	pid := h.runningPID(label)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	if !processGone(pid) {
		t.Errorf("pid %d alive after bootout", pid)
	}
}

// TestSessions checks managername and what a caller's session may do: a
// Background caller cannot bootstrap into gui (125), and a label loaded in
// one domain blocks a bootstrap of it into the other (5).
func TestSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bg := *h
	bg.env = append(slices.Clone(h.env), "FAKE_LAUNCHCTL_SESSION=Background")
	if out := h.mustRun(0, "managername"); out != "Aqua\n" {
		t.Errorf("managername = %q, want Aqua", out)
	}
	if out := bg.mustRun(0, "managername"); out != "Background\n" {
		t.Errorf("managername = %q, want Background", out)
	}
	label := h.label("where")
	path := h.writePlist("where", h.job(label, "/bin/sleep", "300"))
	if _, errOut, code := bg.run("bootstrap", h.gui, path); code != 125 || errOut != "Bootstrap failed: 125: Domain does not support specified action\n" {
		t.Errorf("bootstrap into gui from Background: exit %d stderr %q", code, errOut)
	}
	bg.mustRun(125, "bootstrap", h.user, path) // limited to Aqua, by default
	inUser := h.job(label, "/bin/sleep", "300")
	inUser["LimitLoadToSessionType"] = "Background"
	bg.load(h.user, inUser)
	if _, errOut, code := h.run("bootstrap", h.gui, path); code != 5 || errOut != "Bootstrap failed: 5: Input/output error\n" {
		t.Errorf("bootstrap into gui of a label loaded in user: exit %d stderr %q", code, errOut)
	}
}

// TestLingerAfterBootout checks that a booted-out label stays visible for
// a while in a state such as SIGTERMed or exited, with bootstrap answering
// 5 and bootout 36 or 37, then goes; all on the test's clock.
func TestLingerAfterBootout(t *testing.T) {
	t.Parallel()
	h := newClockedHarness(t, "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=0s")
	label := h.label("linger")
	path := h.writePlist("linger", h.job(label, "/bin/sleep", "300"))
	t.Cleanup(func() { h.run("bootout", h.gui+"/"+label); h.advance(time.Minute) })
	h.mustRun(0, "bootstrap", h.gui, path)
	h.advance(spawnMax)
	pid := h.runningPID(label)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	if !processGone(pid) {
		t.Errorf("pid %d alive after bootout returned", pid)
	}
	h.advance(lingerMin - time.Millisecond)
	f, _ := h.print(label)
	if f["state"] != "SIGTERMed" && f["state"] != "exited" {
		t.Errorf("state after bootout %q, want SIGTERMed or exited", f["state"])
	}
	h.mustRun(5, "bootstrap", h.gui, path)
	if _, errOut, code := h.run("bootout", h.gui+"/"+label); !(code == 36 && errOut == "Boot-out failed: 36: Operation now in progress\n" ||
		code == 37 && errOut == "Boot-out failed: 37: Operation already in progress\n") {
		t.Errorf("bootout of a lingering label: exit %d stderr %q", code, errOut)
	}
	h.advance(lingerMax)
	h.mustRun(113, "print", h.gui+"/"+label)
	h.mustRun(0, "bootstrap", h.gui, path)
	h.advance(spawnMax)
	h.runningPID(label)
	h.mustRun(0, "bootout", h.gui+"/"+label)
	h.advance(lingerMax)
	h.mustRun(113, "print", h.gui+"/"+label)
}

// TestBusyAfterBootout checks the time after a bootout during which
// bootstrap of the same label fails with 5 [B1]: FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT
// long, or drawn in [0, 6 s] by default; other labels are not affected.
func TestBusyAfterBootout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		env    []string
		window time.Duration // the longest it may last
		exact  bool          // it lasts window, not less
	}{
		{"fixed", []string{"FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=2s"}, 2 * time.Second, true},
		{"default", nil, busyMax, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newClockedHarness(t, tc.env...)
			label, other := h.label("busy"), h.label("other")
			path := h.writePlist("busy", h.job(label, "/bin/sleep", "300"))
			t.Cleanup(func() { h.run("bootout", h.gui+"/"+label); h.advance(time.Minute) })
			h.mustRun(0, "bootstrap", h.gui, path)
			h.advance(spawnMax)
			h.runningPID(label)
			h.mustRun(0, "bootout", h.gui+"/"+label)
			h.advance(lingerMax)
			h.mustRun(113, "print", h.gui+"/"+label)
			if tc.exact {
				for _, d := range []time.Duration{0, tc.window - lingerMax - time.Millisecond} {
					h.advance(d)
					if _, errOut, code := h.run("bootstrap", h.gui, path); code != 5 || errOut != "Bootstrap failed: 5: Input/output error\n" {
						t.Fatalf("bootstrap after bootout: exit %d stderr %q", code, errOut)
					}
				}
				// Other labels are not busy.
				h.mustRun(0, "bootstrap", h.gui, h.writePlist("other", h.job(other, "/bin/true")))
				t.Cleanup(func() { h.run("bootout", h.gui+"/"+other) })
				h.advance(time.Millisecond)
			} else {
				h.advance(tc.window - lingerMax)
			}
			h.mustRun(0, "bootstrap", h.gui, path)
			h.advance(spawnMax)
			h.runningPID(label)
		})
	}
}

// TestSpawningPhase checks that bootstrap returns while the job is still
// being spawned, until the clock has moved by the spawn delay, and that
// booting it out then leaves nothing running.
func TestSpawningPhase(t *testing.T) {
	t.Parallel()
	h := newClockedHarness(t, "FAKE_LAUNCHCTL_SPAWN_DELAY=500ms")
	label := h.label("slow-spawn")
	t.Cleanup(func() { h.advance(time.Minute) })
	h.load("", h.job(label, "/bin/sleep", "300"))
	for _, d := range []time.Duration{0, 499 * time.Millisecond} {
		h.advance(d)
		if f, _ := h.print(label); f["state"] != "spawning" || f["pid"] != "" {
			t.Errorf("%v after bootstrap: state %q pid %q, want spawning without a pid", d, f["state"], f["pid"])
		}
	}
	h.advance(time.Millisecond)
	h.runningPID(label)
	other := h.label("booted-out-while-spawning")
	h.mustRun(0, "bootstrap", h.gui, h.writePlist("other", h.job(other, "/bin/sleep", "300")))
	h.mustRun(0, "bootout", h.gui+"/"+other)
	h.advance(lingerMax)
	h.mustRun(113, "print", h.gui+"/"+other)
	h.advance(time.Minute)
	if f, _ := h.print(label); f["runs"] != "1" {
		t.Errorf("runs = %q after the other job's bootout", f["runs"])
	}
}

// TestLimitsAndUmask checks what a job inherits: a soft open-files limit
// of 256 and umask 022 unless the plist sets SoftResourceLimits,
// HardResourceLimits and Umask.
func TestLimitsAndUmask(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	hard := min(lim.Max, 4096)
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"defaults", nil, fmt.Sprintf("256 %d 0022\n", lim.Max)},
		{"raised", map[string]any{
			"SoftResourceLimits": map[string]any{"NumberOfFiles": int(hard)},
			"HardResourceLimits": map[string]any{"NumberOfFiles": int(hard)},
			"Umask":              0o077,
		}, fmt.Sprintf("%d %d 0077\n", hard, hard)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			label, out := h.label("limits-"+tc.name), filepath.Join(h.dir, tc.name+".out")
			m := h.job(label, "/bin/sh", "-c", `echo "$(ulimit -Sn) $(ulimit -Hn) $(umask)"`)
			m["StandardOutPath"] = out
			for k, v := range tc.extra {
				m[k] = v
			}
			h.load("", m)
			h.waitExited(label)
			data, _ := os.ReadFile(out)
			if got := strings.Replace(string(data), "unlimited", strconv.FormatUint(unix.RLIM_INFINITY, 10), -1); got != tc.want {
				t.Errorf("ulimit -Sn, -Hn, umask = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestKeepAlive: a job that ends is spawned again as its KeepAlive says
// [P1], no sooner than ThrottleInterval after its last spawn, "spawn
// scheduled" meanwhile; runs counts every spawn; a bootout ends it for
// good. The throttle runs on the test's clock.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keepAlive any // "keep" stands for the path of an existing file
		throttle  int // 0: launchd's default (10 s)
		exit      string
		again     bool
	}{
		{"true", true, 1, "exit 0", true},
		{"failed-exit-1", map[string]any{"SuccessfulExit": false}, 1, "exit 1", true},
		{"failed-signal", map[string]any{"SuccessfulExit": false}, 1, "kill -SEGV $$", true},
		{"failed-exit-0", map[string]any{"SuccessfulExit": false}, 1, "exit 0", false},
		{"successful-exit-0", map[string]any{"SuccessfulExit": true}, 1, "exit 0", true},
		{"path-exists", "keep", 1, "exit 0", true},
		{"path-missing", "missing", 1, "exit 1", false},
		{"false", false, 1, "exit 1", false},
		{"default-throttle", true, 0, "exit 1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newClockedHarness(t, "FAKE_LAUNCHCTL_SPAWN_DELAY=0s")
			label := h.label(tc.name)
			runs := filepath.Join(h.dir, "runs")
			keep := filepath.Join(h.dir, "keep")
			if err := os.WriteFile(keep, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			job := h.job(label, "/bin/sh", "-c", "echo run >> "+runs+"; "+tc.exit)
			switch tc.keepAlive {
			case "keep", "missing":
				job["KeepAlive"] = map[string]any{"PathState": map[string]any{filepath.Join(h.dir, tc.keepAlive.(string)): true}}
			default:
				job["KeepAlive"] = tc.keepAlive
			}
			throttle := 10 * time.Second
			if tc.throttle > 0 {
				job["ThrottleInterval"] = tc.throttle
				throttle = time.Duration(tc.throttle) * time.Second
			}
			t.Cleanup(func() { h.advance(time.Minute) })
			h.load("", job)
			count := func() int { b, _ := os.ReadFile(runs); return strings.Count(string(b), "\n") }
			printed := func() (string, int) { f, _ := h.print(label); n, _ := strconv.Atoi(f["runs"]); return f["state"], n }
			h.waitFor("the first run to end", func() bool { st, n := printed(); return n == 1 && st != "running" })
			if !tc.again {
				// The monitor gives the job up: nothing is left to run it.
				h.waitFor("the job's helper to end", func() bool { return len(h.ours()) == 0 })
				h.advance(time.Minute)
				if st, n := printed(); n != 1 || count() != 1 || st != "not running" {
					t.Errorf("state %q, runs %d (%d in the file), want not running after 1", st, n, count())
				}
				return
			}
			h.waitFor("the next spawn to be scheduled", func() bool { st, _ := printed(); return st == "spawn scheduled" })
			h.advance(throttle - time.Millisecond)
			if st, n := printed(); n != 1 || st != "spawn scheduled" {
				t.Errorf("1ms before ThrottleInterval: state %q, runs %d; want spawn scheduled, 1", st, n)
			}
			h.advance(time.Millisecond)
			h.waitFor("a second run, counted by print", func() bool { _, n := printed(); return count() >= 2 && n >= 2 })
			h.mustRun(0, "bootout", h.gui+"/"+label)
			h.advance(lingerMax)
			h.waitGone(h.gui, label)
			h.waitFor("the job's helper to end", func() bool { return len(h.ours()) == 0 })
			n := count()
			h.advance(time.Minute)
			if count() != n {
				t.Errorf("spawned again after bootout: %d runs, then %d", n, count())
			}
		})
	}
}

// TestProtectedPlaces: a job whose working directory, program or log file
// is in a place macOS protects from jobs launchd starts (by default
// /Volumes and the home folder's Documents, Desktop, Downloads, iCloud
// Drive and CloudStorage) is not run: print shows EX_CONFIG [T1 T2 T3 T4].
func TestProtectedPlaces(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, tc := range []struct{ name, key, sub string }{
		{"working directory in Documents", "WorkingDirectory", "Documents/site"},
		{"log in CloudStorage", "StandardOutPath", "Library/CloudStorage/Dropbox/x.log"},
		{"program in Downloads", "program", "Downloads/tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "HOME="+home)
			label := h.label(regexp.MustCompile(`\W`).ReplaceAllString(tc.name, "-"))
			path := filepath.Join(home, tc.sub)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			m := h.job(label, "/bin/true")
			switch tc.key {
			case "WorkingDirectory":
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
				m[tc.key] = path
			case "program":
				if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				m["ProgramArguments"] = []string{path}
			default:
				m[tc.key] = path
			}
			h.load("", m)
			if f := h.waitExitedAny(label); f["last exit code"] != "78: EX_CONFIG" {
				t.Errorf("last exit code %q, want 78: EX_CONFIG", f["last exit code"])
			}
		})
	}
	t.Run("none protected", func(t *testing.T) {
		h := newHarness(t, "HOME="+home, "FAKE_LAUNCHCTL_PROTECTED=none")
		label := h.label("unprotected")
		dir := filepath.Join(home, "Documents", "open")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		m := h.job(label, "/bin/true")
		m["WorkingDirectory"] = dir
		h.load("", m)
		if f := h.waitExited(label); f["last exit code"] != "0" {
			t.Errorf("last exit code %q, want 0", f["last exit code"])
		}
	})
}

// TestExitReasonAndNeverRun: the print shapes of a job whose end launchd
// gives only as a reason, and of a job it loads but never runs [X1].
func TestExitReasonAndNeverRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "FAKE_LAUNCHCTL_EXIT_REASON=OS_REASON_CODESIGNING")
	label := h.label("reason")
	h.load("", h.job(label, "/bin/sh", "-c", "exit 3"))
	h.waitFor(label+" to end", func() bool {
		f, dump := h.print(label)
		return f["state"] == "not running" && f["last exit reason"] == "OS_REASON_CODESIGNING" &&
			!strings.Contains(dump, "last exit code") && !strings.Contains(dump, "last terminating signal")
	})
	n := newHarness(t, "FAKE_LAUNCHCTL_NEVER_RUN=1")
	never := n.label("never")
	n.load("", n.job(never, "/bin/sleep", "300"))
	if f, _ := n.print(never); f["state"] != "not running" || f["last exit code"] != "(never exited)" || f["runs"] != "0" {
		t.Errorf("never-run job: state %q, last exit code %q, runs %q", f["state"], f["last exit code"], f["runs"])
	}
	if len(n.ours()) != 0 {
		t.Errorf("a never-run job has processes: %v", n.ours())
	}
}

// TestDaemonisingChild: a child that leaves the job's process group
// (setsid, as a daemon does) is not signalled when the main process
// exits, and outlives the job [G1].
func TestDaemonisingChild(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	label := h.label("daemon")
	pidFile := filepath.Join(h.dir, "daemon.pid")
	script := `setsid sh -c 'echo $$ > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `; exec sleep 300' </dev/null >/dev/null 2>&1 &
while [ ! -s ` + pidFile + ` ]; do sleep 0.01; done`
	h.load("", h.job(label, "/bin/sh", "-c", script))
	h.waitExited(label)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	t.Cleanup(func() { unix.Kill(child, unix.SIGKILL) })
	if processGone(child) || sigtermPending(t, child) {
		t.Fatalf("the daemonised child %d was signalled with the job's group", child)
	}
	h.mustRun(0, "bootout", h.gui+"/"+label)
	h.waitGone(h.gui, label)
	if processGone(child) || sigtermPending(t, child) {
		t.Errorf("the daemonised child %d was signalled by the bootout", child)
	}
}
