package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// waitLogHas waits until the task's log holds want. While it does not,
// btl logs brings it up to date: systemd's log agent copies the journal
// as journald writes it and leaves a moment after the last task ended,
// which on a busy machine can be before journald wrote a stopped task's
// last lines; btl logs copies them whenever they come.
func waitLogHas(t *testing.T, u *user, log, want string) {
	t.Helper()
	hash := strings.TrimSuffix(filepath.Base(log), ".log")
	coretest.Eventually(t, 10*time.Second, log+" to contain "+want, func() bool {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), want) {
			return true
		}
		u.btl(t.TempDir(), "logs", hash)
		return false
	})
}

// TestStopSignal: --stop-signal is the signal kill, stop and a replace
// (one stop path) send the task first, on every backend; restart and a replace of the
// same command line keep it.
func TestStopSignal(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	script := `trap 'echo got-INT; exit 0' INT; trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done`
	s := u.start(dir, "--stop-signal", "INT", "sh", "-c", script)
	waitLogHas(t, u, s.log, "ready")
	if l := u.listed(dir, s.hash); l.StopSignal != "SIGINT" {
		t.Errorf("list -o json: stop_signal %q, want SIGINT", l.StopSignal)
	}
	out := u.ok(dir, "stop", s.hash)
	waitLogHas(t, u, s.log, "\ngot-INT\n")
	if strings.Contains(out, "SIGKILL") {
		t.Errorf("a task that ended on its stop signal was said to need SIGKILL:\n%s", out)
	}
	// restart keeps the policy.
	u.ok(dir, "restart", s.hash)
	coretest.Eventually(t, 10*time.Second, "the restarted run to be ready", func() bool {
		b, _ := os.ReadFile(s.log)
		return strings.Count(string(b), "ready\n") == 2
	})
	if l := u.listed(dir, s.hash); l.StopSignal != "SIGINT" || l.StopTimeout != "2s" {
		t.Errorf("after restart, list -o json: stop %q %q, want SIGINT 2s", l.StopSignal, l.StopTimeout)
	}
	// The second stop (kill stops the same way, and then forgets the task
	// and its place in the journal, so its last lines are read here
	// through a stop).
	u.ok(dir, "stop", s.hash)
	coretest.Eventually(t, 10*time.Second, "the second got-INT", func() bool {
		u.btl(t.TempDir(), "logs", s.hash)
		b, _ := os.ReadFile(s.log)
		return strings.Count(string(b), "\ngot-INT\n") == 2
	})
	u.ok(dir, "kill", s.hash)
	if b, _ := os.ReadFile(s.log); strings.Contains(string(b), "\ngot-TERM\n") {
		t.Errorf("after stop, restart and stop, the log has a got-TERM line:\n%s", b)
	}
}

// TestStopTimeout: --stop-timeout is how long a task that ignores its stop
// signal gets before SIGKILL, and the notice says what was done.
func TestStopTimeout(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "--stop-timeout", "300ms", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	waitLogHas(t, u, s.log, "ready")
	begun := time.Now()
	out := u.ok(dir, "kill", s.hash)
	if !strings.Contains(out, "did not exit within 300ms of SIGTERM; sent SIGKILL") {
		t.Errorf("kill of a task ignoring SIGTERM with --stop-timeout 300ms:\n%s", out)
	}
	if took := time.Since(begun); took >= 2*time.Second {
		t.Errorf("the kill took %v: the default timeout (2s), not the task's (300ms)", took)
	}
	if coretest.Alive(s.pid) {
		t.Errorf("PID %d alive after kill", s.pid)
	}
}

// TestStopPolicyBadInput: a bad --stop-signal or --stop-timeout is one
// line on stderr, exit 2, and nothing started.
func TestStopPolicyBadInput(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--stop-signal", "NOPE"}, {"--stop-signal", "0"}, {"--stop-signal", ""},
		{"--stop-timeout", "-1s"}, {"--stop-timeout", "2h"}, {"--stop-timeout", "soon"},
	} {
		r := u.btl(dir, append(args, "touch", "ran")...)
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%q: %+v", args, r)
		}
	}
	if _, err := os.Stat(dir + "/ran"); err == nil {
		t.Error("a start with a bad stop policy ran its command")
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("%d tasks recorded", n)
	}
}
