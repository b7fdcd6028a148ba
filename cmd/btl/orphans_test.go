package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/backend/fork"
	"btl/core/coretest"
)

// TestForkSupervisorLost: a fork task whose supervisor was killed or
// stopped is not taken for ended while a process carrying its token
// lives: list shows it running, clean keeps it, and kill (or a replace)
// stops those processes, and a stopped supervisor with them; list never
// waits on a stopped supervisor.
func TestForkSupervisorLost(t *testing.T) {
	if backendUnderTest() != fork.Name {
		t.Skip("the supervisor is the fork backend's")
	}
	for _, c := range []struct {
		name string
		// lose does it to the supervisor (and perhaps the main process),
		// with the task's directory at hand.
		lose func(t *testing.T, supervisor, main int, dir string)
		// stop: how the task is stopped at the end.
		stop []string
	}{
		{"supervisor and main process killed", func(t *testing.T, supervisor, main int, _ string) {
			syscall.Kill(supervisor, syscall.SIGKILL)
			syscall.Kill(main, syscall.SIGKILL)
			coretest.Eventually(t, 10*time.Second, "the main process to be gone", func() bool { return !coretest.Alive(main) })
		}, []string{"kill", "--all"}},
		{"supervisor killed, then replaced", func(t *testing.T, supervisor, main int, _ string) {
			syscall.Kill(supervisor, syscall.SIGKILL)
			syscall.Kill(main, syscall.SIGKILL)
			coretest.Eventually(t, 10*time.Second, "the main process to be gone", func() bool { return !coretest.Alive(main) })
		}, nil},
		{"supervisor stopped, main process exited", func(t *testing.T, supervisor, main int, dir string) {
			syscall.Kill(supervisor, syscall.SIGSTOP)
			t.Cleanup(func() { syscall.Kill(supervisor, syscall.SIGCONT) })
			os.WriteFile(filepath.Join(dir, "go"), nil, 0o600)
			coretest.Eventually(t, 10*time.Second, "the main process to exit", func() bool { return !coretest.Alive(main) })
		}, []string{"kill", "--all"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := newUser(t)
			dir := t.TempDir()
			argv := []string{"sh", "-c", "sleep 1000 & sleep 1001 & while [ ! -e go ]; do sleep 0.05; done"}
			s := u.start(dir, argv...)
			task := u.state().Processes[s.hash]
			var sleeps []int
			coretest.Eventually(t, 10*time.Second, "both sleeps", func() bool {
				sleeps = nil
				for _, pid := range tokenProcs(t, u.home)[task.Token] {
					if pid != s.pid {
						sleeps = append(sleeps, pid)
					}
				}
				return len(sleeps) >= 2
			})
			c.lose(t, task.Helper.PID, s.pid, dir)

			begun := time.Now()
			out := u.ok(dir, "list")
			if took := time.Since(begun); took > 3*time.Second {
				t.Errorf("list took %v", took)
			}
			if !strings.Contains(out, "running (main exited)") {
				t.Errorf("list while the task's children run:\n%s", out)
			}
			u.ok(dir, "clean")
			if u.state().Processes[s.hash] == nil {
				t.Fatal("clean forgot a task whose children run")
			}
			if c.stop != nil {
				u.ok(dir, c.stop...)
			} else {
				if again := u.start(dir, argv...); again.hash != s.hash {
					t.Fatalf("replace: %+v", again)
				}
			}
			for _, pid := range append(sleeps, task.Helper.PID) {
				coretest.Eventually(t, 10*time.Second, "the old instance's processes to end", func() bool { return !coretest.Alive(pid) })
			}
		})
	}
}
