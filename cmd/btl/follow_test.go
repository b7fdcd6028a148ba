package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// followArgs starts `btl logs args...` in dir and returns its output so
// far and a channel that receives its exit; it is killed at cleanup.
func (u *user) followArgs(dir string, args ...string) (*exec.Cmd, *syncBuffer, <-chan error) {
	u.t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"logs"}, args...)...)
	cmd.Dir, cmd.Env = dir, u.env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	u.t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out, done
}

func waitDone(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s ended with %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// TestLogsFollowEndedTask: -f on a task that has ended prints its end and
// returns; with --wait it goes on through a replace until the kill.
func TestLogsFollowEndedTask(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo bye $$; exit 3"}
	s := u.start(dir, argv...)
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool {
		return strings.Contains(u.ok(dir, "show", s.hash), "exited 3")
	})
	_, out, done := u.followArgs(dir, "-f", s.hash)
	waitDone(t, done, "logs -f of an ended task")
	if got := out.String(); !strings.HasSuffix(got, "bye "+strconv.Itoa(s.pid)+"\n[btl] exited 3\n") {
		t.Errorf("logs -f of an ended task:\n%s", got)
	}

	_, out, done = u.followArgs(dir, "-f", "--wait", s.hash)
	s2 := u.start(dir, argv...)
	coretest.Eventually(t, 10*time.Second, "the replacement's output", func() bool {
		return strings.Contains(out.String(), "bye "+strconv.Itoa(s2.pid)+"\n")
	})
	select {
	case err := <-done:
		t.Fatalf("logs -f --wait returned (%v) while the task can still be replaced:\n%s", err, out.String())
	case <-time.After(time.Second):
	}
	u.ok(dir, "kill", s.hash)
	waitDone(t, done, "logs -f --wait after kill")
}

// TestLogsFollowEverything: logs -f without a hash follows every task,
// each line after its name or short hash; tasks that start later join,
// replaces go on, ends are said, and it runs until interrupted.
func TestLogsFollowEverything(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	apiArgv := []string{"--name", "api", "sh", "-c", `echo "api up $$"; while [ ! -e go ]; do sleep 0.05; done; echo api go; exec sleep 100`}
	api := u.start(dir, apiArgv...)
	other := u.start(dir, "sh", "-c", "echo other up; exec sleep 100")
	waitLog(t, api.log, "api up")
	waitLog(t, other.log, "other up")
	cmd, out, done := u.followArgs(dir, "-f")
	line := func(label, text string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + ` *\| ` + text + `$`)
	}
	expect := func(what string, re *regexp.Regexp) {
		t.Helper()
		coretest.Eventually(t, 10*time.Second, what, func() bool { return re.MatchString(out.String()) })
	}
	expect("api's line", line("api", "api up "+strconv.Itoa(api.pid)))
	expect("the other task's line", line(other.hash[:8], "other up"))
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	expect("api's new line", line("api", "api go"))

	late := u.start(dir, "sh", "-c", "echo late up; sleep 0.3; exit 3")
	expect("a task started later", line(late.hash[:8], `\[btl\] \S+ started PID `+strconv.Itoa(late.pid)+`: .*`))
	expect("its output", line(late.hash[:8], "late up"))
	expect("its end", line(late.hash[:8], `\[btl\] exited 3`))

	os.Remove(filepath.Join(dir, "go"))
	api2 := u.start(dir, apiArgv...)
	expect("api's replacement", line("api", "api up "+strconv.Itoa(api2.pid)))
	if strings.Contains(out.String(), "api | [btl] killed") || strings.Contains(out.String(), "\x1b[") {
		t.Errorf("a replace was reported as an end, or colours off a terminal:\n%s", out.String())
	}
	u.ok(dir, "kill", "--all")
	cmd.Process.Signal(os.Interrupt)
	waitDone(t, done, "logs -f after interrupt")
}

// TestLogsBadArgs: bad combinations are one-line usage errors.
func TestLogsBadArgs(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "100")
	for _, args := range [][]string{{s.hash, s.hash}, {"--wait", s.hash}, {"-n", "3"}, {"-f", "--since", "1h"}, {"-f", "nosuchtask"}} {
		r := u.btl(dir, append([]string{"logs"}, args...)...)
		if r.code == 0 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("logs %q: %+v", args, r)
		}
	}
}

// TestLogsFollowEverythingPartialLines: output without newlines reaches
// the multiplexed follower: a prompt once it has waited, a line without
// end in parts of at most 64 KiB.
func TestLogsFollowEverythingPartialLines(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", `printf 'Password: '; head -c 200000 /dev/zero | tr '\0' x; exec sleep 100`)
	_, out, _ := u.followArgs(dir, "-f")
	label := regexp.QuoteMeta(s.hash[:8])
	coretest.Eventually(t, 10*time.Second, "the line without end, in parts", func() bool {
		return regexp.MustCompile(`(?m)^` + label + ` \| x+\n` + label + ` \| x+$`).MatchString(out.String())
	})
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > maxPartial+len(label)+3 {
			t.Errorf("a line of %d bytes, past the bound", len(l))
		}
	}
	// journald splits a stream its own way (the prompt is an entry of its
	// own there): the prompt reaches the follower either way.
	if !strings.Contains(out.String(), "| Password:") {
		t.Errorf("the prompt is missing:\n%.300s", out.String())
	}
}

// TestTailPartialBound: a follower's partial line never passes maxPartial,
// and one that waited partialWait is printed as it is.
func TestTailPartialBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	p := &prefixer{w: &out}
	tl := newTail("0123456789abcdef", "t", path, 10, false)
	t0 := time.Unix(1000, 0)
	tl.read(p, t0) // opens at the end
	defer tl.log.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte(strings.Repeat("x", 16*maxPartial+5)))
	tl.read(p, t0)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 16 || lines[0] != "t | "+strings.Repeat("x", maxPartial) {
		t.Fatalf("%d lines, the first %d bytes", len(lines), len(lines[0]))
	}
	if cap(tl.part) > 2*maxPartial {
		t.Errorf("the partial line holds %d bytes", cap(tl.part))
	}
	out.Reset()
	f.Write([]byte("Password: "))
	tl.read(p, t0.Add(partialWait/2))
	if out.String() != "" {
		t.Errorf("printed before it waited: %q", out.String())
	}
	tl.read(p, t0.Add(partialWait))
	if out.String() != "t | xxxxxPassword: \n" {
		t.Errorf("after it waited: %q", out.String())
	}
	out.Reset()
	f.Write([]byte("hunter2\n"))
	tl.read(p, t0.Add(2*partialWait))
	if out.String() != "t | hunter2\n" {
		t.Errorf("the rest of the line: %q", out.String())
	}
}
