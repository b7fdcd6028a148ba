package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/backend/systemd"
	"btl/core/coretest"
)

// oddTask is the task whose file is replaced, as its start left it.
type oddTask struct {
	hash, token string
	u           *user
}

// taskFile is one kind of file btl reads or writes for a task, in the
// shape the walk over odd files (TestOddFiles) needs: the task to start,
// the moment to wait for, and where the file is. A backend adds its own
// files here (systemd: its exit and last-exit records, its journal cursor,
// the journal-readable mark), with backend set to its name.
type taskFile struct {
	name    string
	backend string   // "": every backend
	argv    []string // the task (btl's own flags first)
	// ready, when set, is awaited before the file is replaced: that the
	// file exists, say, because the task has ended.
	ready func(t oddTask) bool
	path  func(t oddTask) string
}

func (t oddTask) data(parts ...string) string {
	return filepath.Join(append([]string{t.u.dataDir()}, parts...)...)
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// recordFinal reports whether the record of the task's runs says that no
// run follows: the task has ended.
func recordFinal(t oddTask) bool {
	b, err := os.ReadFile(t.data("run", t.token+".record"))
	return err == nil && strings.Contains(string(b), `"final":true`)
}

// taskFiles lists every kind of file btl reads or writes for a task.
var taskFiles = []taskFile{
	{name: "state", argv: []string{"sleep", "300"},
		path: func(t oddTask) string { return t.data("state.json") }},
	{name: "state lock", argv: []string{"sleep", "300"},
		path: func(t oddTask) string { return t.data("state.lock") }},
	{name: "log", argv: []string{"sleep", "300"},
		path: func(t oddTask) string { return t.data("logs", t.hash+".log") }},
	{name: "recorded environment", argv: []string{"sleep", "300"},
		path: func(t oddTask) string { return t.data("run", t.hash+".env") }},
	{name: "record of runs", backend: fork.Name, argv: []string{"sh", "-c", "exit 3"},
		ready: recordFinal, path: func(t oddTask) string { return t.data("run", t.token+".record") }},
	{name: "record of restarted runs", backend: fork.Name, argv: []string{"--restart", "on-failure:1", "sh", "-c", "exit 3"},
		ready: recordFinal, path: func(t oddTask) string { return t.data("run", t.token+".record") }},
	{name: "launchd record of runs", backend: launchd.Name, argv: []string{"--restart", "on-failure:1", "sh", "-c", "exit 3"},
		ready: recordFinal, path: func(t oddTask) string { return t.data("run", t.token+".record") }},
	{name: "stop file", backend: fork.Name, argv: []string{"--restart", "always", "sleep", "300"},
		ready: func(t oddTask) bool { return exists(t.data("run", t.token+".record")) },
		path:  func(t oddTask) string { return t.data("run", t.token+".stop") }},
	{name: "systemd record of runs", backend: systemd.Name, argv: []string{"sh", "-c", "sleep 0.5; exit 3"},
		ready: func(t oddTask) bool { return exists(t.data("run", t.hash+".record")) },
		path:  func(t oddTask) string { return t.data("run", t.hash+".record") }},
	{name: "systemd record of restarted runs", backend: systemd.Name, argv: []string{"--restart", "always:100", "sh", "-c", "sleep 0.2; exit 3"},
		ready: func(t oddTask) bool { return exists(t.data("run", t.hash+".record")) },
		path:  func(t oddTask) string { return t.data("run", t.hash+".record") }},
	{name: "systemd journal cursor", backend: systemd.Name, argv: []string{"sh", "-c", "echo hi; exec sleep 300"},
		// Once the line is copied the log agent has no reason to write
		// the cursor again.
		ready: func(t oddTask) bool {
			b, _ := os.ReadFile(t.data("logs", t.hash+".log"))
			return strings.Contains(string(b), "hi\n") && exists(t.data("run", t.hash+".cursor"))
		},
		path: func(t oddTask) string { return t.data("run", t.hash+".cursor") }},
	{name: "systemd journal-readable mark", backend: systemd.Name, argv: []string{"sleep", "300"},
		ready: func(t oddTask) bool { m, _ := filepath.Glob(t.data("run", "journal-readable-*")); return len(m) == 1 },
		path: func(t oddTask) string {
			m, _ := filepath.Glob(t.data("run", "journal-readable-*"))
			return m[0]
		}},
	{name: "systemd agent liveness lock", backend: systemd.Name, argv: []string{"sleep", "300"},
		path: func(t oddTask) string { return t.data("run", "agent.live") }},
}

// oddKinds are what may sit where btl expects one of its files: each
// makes one at path (a symbolic link to target).
var oddKinds = []struct {
	name string
	make func(path, target string) error
}{
	{"FIFO", func(path, _ string) error { return unix.Mkfifo(path, 0o600) }},
	{"symlink", func(path, target string) error { return os.Symlink(target, path) }},
	{"directory", func(path, _ string) error { return os.Mkdir(path, 0o700) }},
}

// TestOddFiles puts a FIFO, a symbolic link and a directory in the place
// of each kind of file btl reads or writes for a task, and runs every
// command on the task: each returns within a bound (nothing waits on a
// FIFO), says what is wrong in lines of its own (no crash), and nothing
// is written through the link.
func TestOddFiles(t *testing.T) {
	for _, f := range taskFiles {
		if f.backend != "" && f.backend != backendUnderTest() {
			continue
		}
		for _, kind := range oddKinds {
			t.Run(f.name+"/"+kind.name, func(t *testing.T) {
				u := newUser(t)
				dir := t.TempDir()
				s := u.start(dir, f.argv...)
				task := oddTask{hash: s.hash, token: u.state().Processes[s.hash].Token, u: u}
				if f.ready != nil {
					coretest.Eventually(t, 10*time.Second, f.name+" to be written", func() bool { return f.ready(task) })
				}
				target := filepath.Join(u.home, "precious")
				if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				path := f.path(task)
				if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if err := kind.make(path, target); err != nil {
					t.Fatal(err)
				}
				// Before the user's cleanup (kill --all) runs.
				t.Cleanup(func() { _ = os.RemoveAll(path) })

				for _, args := range [][]string{
					{"list"}, {"list", "-o", "json"}, {"show", s.hash}, {"logs"}, {"logs", s.hash, "-n", "3"},
					{"restart", s.hash}, {"kill", s.hash}, {"clean", "--all"},
				} {
					r, hung := u.btlWithin(dir, 10*time.Second, args...)
					if hung {
						t.Errorf("btl %s with a %s as the %s did not return within 10s", strings.Join(args, " "), kind.name, f.name)
						continue
					}
					for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
						if l != "" && !strings.HasPrefix(l, "Error: ") && !strings.HasPrefix(l, "Warning: ") {
							t.Errorf("btl %s: stderr line %q", strings.Join(args, " "), l)
						}
					}
					if r.code != 0 && r.code != 1 {
						t.Errorf("btl %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
					}
				}
				if b, _ := os.ReadFile(target); string(b) != "precious\n" {
					t.Errorf("written through the symbolic link at the %s: %q", f.name, b)
				}
			})
		}
	}
}

// btlWithin runs btl like u.btl, but gives up after d: hung reports that
// btl had to be killed.
func (u *user) btlWithin(dir string, d time.Duration, args ...string) (r result, hung bool) {
	u.t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir, cmd.Env = dir, u.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return result{out.String(), errb.String(), -1}, true
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}, false
}

// TestBadExitRecordNamed: a directory where a fork task's record of runs
// belongs makes list and kill say which file is wrong and how, not that
// the backend cannot be reached.
func TestBadExitRecordNamed(t *testing.T) {
	if backendUnderTest() != fork.Name {
		t.Skip("the fork backend's Inspect reads the record of runs for every task")
	}
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "exit 3")
	exit := filepath.Join(u.dataDir(), "run", u.state().Processes[s.hash].Token+".record")
	coretest.Eventually(t, 10*time.Second, "the record of the end", func() bool {
		b, err := os.ReadFile(exit)
		return err == nil && strings.Contains(string(b), `"final":true`)
	})
	if err := os.Remove(exit); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(exit, 0o700); err != nil {
		t.Fatal(err)
	}
	want := exit + ": is a directory, not a regular file"
	if out := u.ok(dir, "show", s.hash); !strings.Contains(out, want) {
		t.Errorf("show does not say what is wrong:\n%s", out)
	}
	for _, cmd := range []string{"kill", "clean"} {
		r := u.btl(dir, cmd, s.hash)
		if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "not available") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s with a directory as the exit record: %+v", cmd, r)
		}
	}
	if err := os.Remove(exit); err != nil {
		t.Fatal(err)
	}
	u.ok(dir, "kill", s.hash)
}
