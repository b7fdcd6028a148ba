package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

// TestNestedBtl runs btl inside a btl task: stopping the outer task leaves
// the inner one, and its helpers, running.
func TestNestedBtl(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	outer := u.start(dir, "sh", "-c", `"$0" sleep 961 > inner.out 2>&1; exec sleep 900`, os.Args[0])
	inner := core.Hash(mustReal(t, dir), "sleep 961")
	var task *core.Task
	coretest.Eventually(t, 20*time.Second, "the inner task", func() bool {
		task = u.state().Processes[inner]
		return task != nil && task.PID != 0 && task.Status == nil
	})
	u.ok(dir, "kill", outer.hash)
	if !coretest.Alive(task.PID) {
		b, _ := os.ReadFile(filepath.Join(dir, "inner.out"))
		t.Fatalf("stopping the outer task stopped the inner one; inner btl said:\n%s", b)
	}
	if task.Helper != nil && !coretest.Alive(task.Helper.PID) {
		t.Errorf("stopping the outer task stopped the inner task's helper (PID %d)", task.Helper.PID)
	}
	if out := u.ok(dir, "list"); !regexp.MustCompile(`(?m)^` + inner + `\s+-\s+running`).MatchString(out) {
		t.Errorf("inner task after the outer one was stopped:\n%s", out)
	}
}

// TestBadInterpreter starts scripts whose #! line names a missing
// interpreter (127, as sh says) or a directory (126): every backend
// answers alike, and nothing runs or is recorded.
func TestBadInterpreter(t *testing.T) {
	for _, tc := range []struct {
		name, interp string
		code         int
	}{
		{"missing", "/nonexistent/interp", 127},
		{"directory", "/tmp", 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t)
			dir := t.TempDir()
			script := filepath.Join(dir, "script")
			os.WriteFile(script, []byte("#!"+tc.interp+"\necho ran > ran\n"), 0o755)
			r := u.btl(dir, "./script")
			if r.code != tc.code || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.interp) {
				t.Errorf("start: %+v, want exit %d naming %s", r, tc.code, tc.interp)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Error("the script ran")
			}
			if st := u.state(); len(st.Processes) != 0 {
				t.Errorf("recorded: %v", st.Processes)
			}
		})
	}
}

// TestReadOnlyRunDir: with run/ read-only, no backend starts a task.
func TestReadOnlyRunDir(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	keep := u.start(dir, "sleep", "100")
	state := filepath.Join(u.dataDir(), "state.json")
	before, _ := os.ReadFile(state)
	run := filepath.Join(u.dataDir(), "run")
	os.Chmod(run, 0o500)
	defer os.Chmod(run, 0o700)
	r := u.btl(dir, "sh", "-c", "echo $$ > started; exec sleep 100")
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, run) {
		t.Errorf("start with a read-only run/: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the task ran although run/ is read-only")
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
	if !coretest.Alive(keep.pid) {
		t.Error("another task was harmed")
	}
}

// TestReplaceOnFullDisk replaces a task with its data on a full file
// system: the start fails before the running instance is touched.
func TestReplaceOnFullDisk(t *testing.T) {
	// Held for the test: other tests, of this binary and of others
	// running beside it, fill the same file system.
	fs := coretest.FullFS(t)
	u := makeUser(t)
	data := filepath.Join(fs, "replace-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(data) })
	env := []string{"XDG_DATA_HOME=" + data}
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo $$ >> pids; exec sleep 100"}
	r := u.btlEnv(dir, env, argv...)
	m, ok := parseStart(r.stdout)
	if r.code != 0 || !ok {
		t.Fatalf("start before the disk is full: %+v", r)
	}
	pid := m.pid
	t.Cleanup(func() { u.btlEnv(dir, env, "kill", "--all") })
	state := filepath.Join(data, "btl", "state.json")
	before, _ := os.ReadFile(state)
	filler := filepath.Join(fs, "filler-replace-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.Remove(filler) })
	f, _ := os.Create(filler)
	for _, size := range []int{64 << 10, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
	f.Close()
	r = u.btlEnv(dir, env, argv...)
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("replace on a full disk: %+v", r)
	}
	if !coretest.Alive(pid) {
		t.Error("the running instance was stopped although the replace could not be recorded")
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Errorf("state changed on a full disk:\n%s\n%s", before, after)
	}
	os.Remove(filler)
}
