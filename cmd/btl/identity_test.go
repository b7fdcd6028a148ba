package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"btl/backend/fork"
	"btl/core"
	"btl/core/coretest"
)

// TestHashCollision starts two different tasks whose documented hashes are
// equal (cwd a with "b::c 100", cwd a::b with "c 100"): neither replaces
// the other, the second says which hash it got, and each replaces only
// itself afterwards.
func TestHashCollision(t *testing.T) {
	u := newUser(t)
	base := mustReal(t, t.TempDir())
	bin := t.TempDir()
	for _, name := range []string{"b::c", "c"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexec sleep \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + bin + ":" + core.Getenv(u.env, "PATH")}
	dirA, dirAB := filepath.Join(base, "a"), filepath.Join(base, "a::b")
	for _, d := range []string{dirA, dirAB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := core.Hash(dirA, "b::c 100")
	if h != core.Hash(dirAB, "c 100") {
		t.Fatal("the two tasks do not share the documented hash")
	}
	start := func(dir string, argv ...string) (started, string) {
		t.Helper()
		r := u.btlEnv(dir, env, argv...)
		s, ok := parseStart(r.stdout)
		if r.code != 0 || !ok {
			t.Fatalf("btl %q: %+v", argv, r)
		}
		return s, r.stderr
	}

	first, stderr := start(dirA, "b::c", "100")
	if first.hash != h || stderr != "" {
		t.Fatalf("first task: hash %s, stderr %q", first.hash, stderr)
	}
	second, stderr := start(dirAB, "c", "100")
	if second.hash == h || second.killed != 0 {
		t.Fatalf("second task took the first one's hash %s (killed PID %d)", h, second.killed)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, h) || !strings.Contains(stderr, second.hash) {
		t.Errorf("second task's notice: %q", stderr)
	}
	if !coretest.Alive(first.pid) {
		t.Fatal("starting a different task with the same hash killed the first")
	}
	if second.log != filepath.Join(u.dataDir(), "logs", second.hash+".log") {
		t.Errorf("second task logs to %s", second.log)
	}

	third, _ := start(dirAB, "c", "100")
	if third.hash != second.hash || third.killed != second.pid || !coretest.Alive(first.pid) {
		t.Errorf("restarting the second task: %+v (second %+v, first alive: %v)", third, second, coretest.Alive(first.pid))
	}
	fourth, _ := start(dirA, "b::c", "100")
	if fourth.hash != h || fourth.killed != first.pid || !coretest.Alive(third.pid) {
		t.Errorf("restarting the first task: %+v (third alive: %v)", fourth, coretest.Alive(third.pid))
	}
	if n := len(u.state().Processes); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	u.ok(base, "kill", h)
	if !coretest.Alive(third.pid) {
		t.Error("killing the first task killed the second")
	}
	// With its hash free again, the second task still replaces itself.
	fifth, stderr := start(dirAB, "c", "100")
	if fifth.hash != second.hash || fifth.killed != third.pid || stderr != "" {
		t.Errorf("second task once the first is gone: %+v, stderr %q", fifth, stderr)
	}
	if r := u.ok(base, "restart", second.hash); !strings.Contains(r, "Hash: "+second.hash) {
		t.Errorf("restart of the second task:\n%s", r)
	}
}

// TestBytesNotText runs a command with an argument and a directory that
// are not valid UTF-8. fork records them exactly, and restart runs the
// same bytes under the same hash; systemd and launchd refuse them in one
// line, and auto mode runs them with fork, saying so once when it picked
// another backend.
func TestBytesNotText(t *testing.T) {
	u := newUser(t)
	dir := filepath.Join(mustReal(t, t.TempDir()), "dir\xfe")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := []string{"sh", "-c", `echo "$0" >> args; exec sleep 100`, "x\xffy"}
	hash := core.Hash(dir, core.CommandLine(argv))
	if backendUnderTest() != fork.Name {
		r := u.btl(dir, argv...)
		if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "not valid UTF-8") {
			t.Errorf("%s with bytes that are not UTF-8: %+v", backendUnderTest(), r)
		}
		if _, err := os.Stat(filepath.Join(dir, "args")); err == nil {
			t.Error("the refused command ran")
		}
		u.env = append(u.env, "BTL_BACKEND=auto")
	}
	r := u.btl(dir, argv...)
	s, ok := parseStart(r.stdout)
	if r.code != 0 || !ok {
		t.Fatalf("start with bytes that are not UTF-8: %+v", r)
	}
	if note := regexp.MustCompile(`^btl: \w+ cannot run this task \(command or directory not valid UTF-8\); started it with the fork backend\n$`); r.stderr != "" && !note.MatchString(r.stderr) {
		t.Errorf("stderr %q: want nothing, or one note that fork ran the task", r.stderr)
	}
	if s.hash != hash {
		t.Errorf("hash %s, want %s", s.hash, hash)
	}
	task := u.state().Processes[s.hash]
	if task == nil || task.Cwd != dir || !slices.Equal(task.Argv, argv) || task.Command != core.CommandLine(argv) || task.Backend != fork.Name {
		t.Fatalf("recorded task: %+v", task)
	}
	b, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	if !utf8.Valid(b) {
		t.Error("state.json is not valid UTF-8")
	}
	// btl list -o json stays valid UTF-8 and carries the exact bytes too.
	out := u.ok(dir, "list", "-o", "json")
	if !utf8.ValidString(out) || !json.Valid([]byte(out)) {
		t.Errorf("list -o json is not valid UTF-8 JSON:\n%s", out)
	}
	var listed []struct {
		Hash         string   `json:"hash"`
		Command      string   `json:"command"`
		Cwd          string   `json:"cwd"`
		Argv         []string `json:"argv"`
		CommandBytes []byte   `json:"command_bytes"`
		CwdBytes     []byte   `json:"cwd_bytes"`
		ArgvBytes    [][]byte `json:"argv_bytes"`
		Unit         string   `json:"unit"`
		Fallback     string   `json:"fallback"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	l := listed[0]
	var gotArgv []string
	for _, a := range l.ArgvBytes {
		gotArgv = append(gotArgv, string(a))
	}
	if l.Hash != s.hash || string(l.CommandBytes) != core.CommandLine(argv) || string(l.CwdBytes) != dir || !slices.Equal(gotArgv, argv) {
		t.Errorf("list -o json lost bytes: command_bytes %q, cwd_bytes %q, argv_bytes %q", l.CommandBytes, l.CwdBytes, gotArgv)
	}
	if l.Command == "" || l.Cwd == "" || len(l.Argv) != len(argv) {
		t.Errorf("list -o json lacks the readable fields: %+v", l)
	}
	// A task auto mode ran with fork says why, once noted, in its record.
	if from, _, ok := strings.Cut(strings.TrimPrefix(r.stderr, "btl: "), " cannot run this task"); ok {
		want := "not " + from + ": command or directory not valid UTF-8"
		if l.Fallback != want || l.Unit != "" {
			t.Errorf("list -o json: fallback %q, unit %q; want fallback %q and no unit", l.Fallback, l.Unit, want)
		}
		if wide := u.ok(dir, "list", "-o", "wide"); !strings.Contains(wide, "("+want+")") {
			t.Errorf("list -o wide does not say why %s did not run the task:\n%s", from, wide)
		}
	} else if l.Fallback != "" {
		t.Errorf("list -o json: fallback %q for a task its own backend ran", l.Fallback)
	}
	r = u.btl(t.TempDir(), "restart", s.hash)
	if m, ok := parseStart(r.stdout); r.code != 0 || !ok || m.hash != s.hash || m.killed != s.pid {
		t.Fatalf("restart did not replace the task under its hash: %+v", r)
	}
	coretest.Eventually(t, 10*time.Second, "both runs' arguments", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "args"))
		return string(b) == "x\xffy\nx\xffy\n"
	})
	if n := len(u.state().Processes); n != 1 {
		t.Errorf("%d entries after restart, want 1", n)
	}
}

// TestReadoptedTaskStillReplaced loses state.json under a task whose main
// process no longer shows the command it was started with: found again
// from the backend, it is still the task the same start replaces.
func TestReadoptedTaskStillReplaced(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "cd /; exec sleep 977"}
	s := u.start(dir, argv...)
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	if out := u.ok(dir, "list"); !strings.Contains(out, s.hash) {
		t.Fatalf("task not found again:\n%s", out)
	}
	again := u.start(dir, argv...)
	if again.hash != s.hash || again.killed != s.pid {
		t.Errorf("start after re-adoption: %+v, want hash %s replacing PID %d", again, s.hash, s.pid)
	}
	if n := len(u.state().Processes); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
}
