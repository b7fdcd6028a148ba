package fork_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/backend/fork"
	"btl/core"
	"btl/core/coretest"
)

// TestLogWriteErrorNeverFreezes breaks the log under a task that writes
// fast: the task keeps running (its output is drained), and once the log
// can be written again its output lands there, after a line saying how
// much was lost.
func TestLogWriteErrorNeverFreezes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		breakLog func(logs string) error
		mendLog  func(logs string) error
		lost     bool // whether output is lost in between
		fullFS   bool // whether the data directory is on BTL_TEST_FULLFS
	}{
		{
			name:     "log directory removed",
			breakLog: os.RemoveAll,
			mendLog:  func(string) error { return nil },
		},
		{
			name:     "log directory read-only",
			breakLog: func(logs string) error { return os.Chmod(logs, 0o500) },
			mendLog:  func(logs string) error { return os.Chmod(logs, 0o700) },
			lost:     true,
		},
		{
			// make test (as root) mounts a small tmpfs the test user
			// owns and names it in BTL_TEST_FULLFS.
			name:     "disk full",
			breakLog: func(logs string) error { return fill(filepath.Join(filepath.Dir(filepath.Dir(logs)), "filler")) },
			mendLog:  func(logs string) error { return os.Remove(filepath.Join(filepath.Dir(filepath.Dir(logs)), "filler")) },
			lost:     true,
			fullFS:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, dirs := setup(t)
			if tc.fullFS {
				fs := coretest.FullFS(t)
				top := filepath.Join(fs, "fork-"+strconv.Itoa(os.Getpid()))
				t.Cleanup(func() { os.RemoveAll(top) })
				dirs = core.DirsAt(filepath.Join(top, "btl"))
				if err := dirs.Ensure(); err != nil {
					t.Fatal(err)
				}
				b = fork.New(dirs)
			}
			m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
			dir := t.TempDir()
			// 2,000 lines of about 500 bytes: far more than a pipe holds
			// and four times the cap, so the log is rotated while broken;
			// what is left in the pipe when it is mended is less than the
			// cap, so the line about the loss is not rotated away.
			script := `while [ ! -e go ]; do sleep 0.01; done
i=0; while [ $i -lt 2000 ]; do printf 'line %d %0500d\n' $i 0; i=$((i+1)); done
echo finished > done
while [ ! -e go2 ]; do sleep 0.01; done
echo after; exec sleep 100`
			s, err := m.Prepare([]string{"sh", "-c", script}, dir, append(os.Environ(), "BTL_LOG_MAX=256K"))
			if err != nil {
				t.Fatal(err)
			}
			task, _, err := m.Run(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				os.Chmod(dirs.Logs, 0o700)
				b.Stop(context.Background(), *task, time.Second)
				waitHelper(t, task)
			})
			coretest.Eventually(t, 10*time.Second, "the start marker", func() bool {
				b, _ := os.ReadFile(s.LogFile)
				return strings.Contains(string(b), " started PID ")
			})
			if err := tc.breakLog(dirs.Logs); err != nil {
				t.Fatal(err)
			}
			touch(t, filepath.Join(dir, "go"))
			coretest.Eventually(t, 30*time.Second, "the task to write all its output (it froze?)", func() bool {
				_, err := os.Stat(filepath.Join(dir, "done"))
				return err == nil
			})
			if err := tc.mendLog(dirs.Logs); err != nil {
				t.Fatal(err)
			}
			touch(t, filepath.Join(dir, "go2"))
			var log string
			coretest.Eventually(t, 10*time.Second, "the task's last line in the log", func() bool {
				b, _ := os.ReadFile(s.LogFile)
				old, _ := os.ReadFile(s.LogFile + ".1")
				log = string(old) + string(b)
				return strings.HasSuffix(log, "after\n")
			})
			lm := regexp.MustCompile(`(?m)^\[btl\] \S+ lost (\d+) bytes of output`).FindStringSubmatch(log)
			switch {
			case tc.lost && lm == nil:
				t.Errorf("no line says how much output was lost; log (%d bytes):\n%s", len(log), tail(log))
			case tc.lost:
				if n, _ := strconv.Atoi(lm[1]); n <= 0 {
					t.Errorf("lost %d bytes", n)
				}
			case !tc.lost && !strings.Contains(log, "line 1999 "):
				t.Errorf("the log directory was not made again: output lost; log:\n%s", tail(log))
			}
			if !core.Proc.Verify(task.Proc()) {
				t.Error("the task died")
			}
		})
	}
}

// fill writes a file at path until the file system is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			return nil
		}
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// waitHelper waits for the task's supervisor to finish writing its records.
func waitHelper(t *testing.T, task *core.Task) {
	if task.Helper == nil {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); task.Helper.Verify() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogRotatesOnLines: with a 1K cap, a task writing fast leaves log
// files of at most 1K that hold whole lines.
func TestLogRotatesOnLines(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	script := `i=0; while [ $i -lt 300 ]; do printf 'line %d %040d\n' $i 0; i=$((i+1)); done; echo last; exec sleep 100`
	s, err := m.Prepare([]string{"sh", "-c", script}, t.TempDir(), append(os.Environ(), "BTL_LOG_MAX=1K"))
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := m.Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Stop(context.Background(), *task, time.Second)
		waitHelper(t, task)
	})
	var cur, old []byte
	coretest.Eventually(t, 10*time.Second, "the last line", func() bool {
		cur, _ = os.ReadFile(s.LogFile)
		return strings.HasSuffix(string(cur), "last\n")
	})
	old, _ = os.ReadFile(s.LogFile + ".1")
	if !strings.HasSuffix(string(old), "line 299 "+strings.Repeat("0", 40)+"\n") && !strings.Contains(string(cur), "line 299 ") {
		t.Errorf("the newest output is not in the log files:\n%s\n--\n%s", old, cur)
	}
	for name, f := range map[string][]byte{"log.1": old, "log": cur} {
		if len(f) > 1<<10 {
			t.Errorf("%s is %d bytes, over the 1K cap", name, len(f))
		}
		for _, l := range strings.SplitAfter(string(f), "\n") {
			if l != "" && !regexp.MustCompile(`^(line \d+ 0{40}|last|\[btl\] .*)\n$`).MatchString(l) {
				t.Errorf("%s holds a part of a line: %q", name, l)
			}
		}
	}
}

// TestReplacesLeaveNoRecords: exit records are private and do not pile
// up: after 100 replaces of one task, the run directory holds what one
// task needs.
func TestReplacesLeaveNoRecords(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	dir := t.TempDir()
	var last *core.Task
	for i := range 100 {
		s, err := m.Prepare([]string{"sh", "-c", "exit 3"}, dir, os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		task, _, err := m.Run(context.Background(), s)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		last = task
	}
	var st core.Status
	coretest.Eventually(t, 10*time.Second, "the last run to exit", func() bool {
		st, _ = b.Inspect(context.Background(), *last)
		return st.State == core.Exited
	})
	waitHelper(t, last)
	ents, err := os.ReadDir(dirs.Run)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if strings.HasSuffix(e.Name(), ".record") {
			if fi, err := e.Info(); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600", e.Name(), fi.Mode(), err)
			}
		}
	}
	if len(names) > 2 {
		t.Errorf("after 100 replaces the run directory holds %d files: %q", len(names), names)
	}
}
