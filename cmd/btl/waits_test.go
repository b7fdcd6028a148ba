package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

// TestFIFOsRefused puts FIFOs where btl keeps its files: btl moves a FIFO
// state.json aside, refuses a FIFO log or recorded environment with one
// line, and never waits on one.
func TestFIFOsRefused(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	keep := u.start(dir, "sleep", "100")

	state := filepath.Join(u.dataDir(), "state.json")
	os.Remove(state)
	if err := syscall.Mkfifo(state, 0o600); err != nil {
		t.Fatal(err)
	}
	r := u.btl(dir, "list")
	if r.code != 0 || !strings.Contains(r.stderr, "is not a regular file") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("list with a FIFO state.json: %+v", r)
	}
	if aside, _ := filepath.Glob(state + ".corrupt-*"); len(aside) != 1 {
		t.Errorf("FIFO state.json not moved aside: %v", aside)
	}

	argv := []string{"sh", "-c", "echo $$ > started; exec sleep 100"}
	hash := core.Hash(mustReal(t, dir), core.CommandLine(argv))
	logf := filepath.Join(u.dataDir(), "logs", hash+".log")
	if err := syscall.Mkfifo(logf, 0o600); err != nil {
		t.Fatal(err)
	}
	r = u.btl(dir, argv...)
	if r.code == 0 || !strings.Contains(r.stderr, "is not a regular file") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("start with a FIFO log: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the task ran although its log is a FIFO")
	}

	env := filepath.Join(u.dataDir(), "run", keep.hash+".env")
	os.Remove(env)
	if err := syscall.Mkfifo(env, 0o600); err != nil {
		t.Fatal(err)
	}
	r = u.btl(dir, "restart", keep.hash)
	if r.code == 0 || !strings.Contains(r.stderr, "not a regular file") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("restart with a FIFO environment record: %+v", r)
	}
	if !coretest.Alive(keep.pid) {
		t.Error("a refused start harmed another task")
	}
}

// TestLockWait holds the state lock: a btl that must change the state
// (clean) waits for it, says who holds it, and SIGINT or SIGTERM ends the
// wait.
func TestLockWait(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			u := newUser(t)
			u.ok(t.TempDir(), "list")
			unlock, err := core.LockFile(filepath.Join(u.dataDir(), "state.lock"))
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			cmd := exec.Command(os.Args[0], "clean")
			cmd.Dir, cmd.Env = t.TempDir(), u.env
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer cmd.Process.Kill()
			holder := "held by PID " + strconv.Itoa(os.Getpid()) + " ("
			coretest.Eventually(t, 10*time.Second, "a notice naming the lock's holder", func() bool {
				return strings.Contains(stderr.String(), holder)
			})
			cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("btl waiting for the lock did not end on %v; stderr:\n%s", sig, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code := cmd.ProcessState.ExitCode(); code == 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "Error: ") {
				t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
			}
		})
	}
}

// TestReadersDoNotWaitForLock holds the state lock, as a start or a stop
// that takes seconds does: list, show and logs -f still answer at once,
// from the state as saved, and say nothing of a wait.
func TestReadersDoNotWaitForLock(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo hello; while :; do sleep 0.1; echo tick; done")
	waitLog(t, s.log, "tick\n")
	unlock, err := core.LockFile(filepath.Join(u.dataDir(), "state.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, s.hash[:8]},
		{[]string{"show", s.hash}, s.hash},
		{[]string{"logs", "-n", "1", s.hash}, "tick\n"},
	} {
		r := u.btl(dir, c.args...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) || r.stderr != "" {
			t.Errorf("btl %q while another btl holds the lock: %+v", c.args, r)
		}
	}
	// logs -f goes on printing what the task writes while the lock is
	// held: it judges the task's end later instead of waiting.
	cmd := exec.Command(os.Args[0], "logs", "-f", "-n", "1", s.hash)
	cmd.Dir, cmd.Env = dir, u.env
	var stdout syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	coretest.Eventually(t, 20*time.Second, "logs -f to print 20 lines", func() bool {
		return strings.Count(stdout.String(), "tick\n") >= 20
	})
}

// TestLogsOfFIFO replaces a task's log with a FIFO: btl logs says so in
// one line and returns, with or without -n or -f.
func TestLogsOfFIFO(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "echo hello; exec sleep 100")
	coretest.Eventually(t, 10*time.Second, "hello in the log", func() bool {
		b, _ := os.ReadFile(s.log)
		return strings.Contains(string(b), "hello\n")
	})
	os.Remove(s.log)
	if err := syscall.Mkfifo(s.log, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"logs", s.hash}, {"logs", "-n", "3", s.hash}, {"logs", "-f", s.hash}} {
		r := u.btl(dir, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "not a regular file") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("btl %q with a FIFO log: %+v", args, r)
		}
	}
}
