package fork_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
)

// TestStopReadsOnlyItsTree stops a task while another process of the same
// user runs beside it: the task's whole tree is gone, including a
// daemonized descendant (orphaned, in a session of its own), the other
// process lives on, and its environment was never read: finding the tree
// starts from the task's supervisor, so a stop costs the same however many
// other processes the user runs.
func TestStopReadsOnlyItsTree(t *testing.T) {
	b, dirs := setup(t)
	m := &core.Manager{Store: &core.Store{Dir: dirs.Data}, Dirs: dirs, Backend: b}
	mark := []byte("BTL_TEST_BYSTANDER=" + strconv.Itoa(os.Getpid()))
	other := exec.Command("sleep", "908")
	other.Env = append(os.Environ(), string(mark))
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	var read atomic.Bool
	proc.HideEnvWhere(func(env [][]byte) bool {
		if slices.ContainsFunc(env, func(e []byte) bool { return bytes.Equal(e, mark) }) {
			read.Store(true)
		}
		return false
	})
	t.Cleanup(func() { proc.HideEnvWhere(nil) })

	dir := t.TempDir()
	s, err := m.Prepare([]string{"sh", "-c", `(setsid sh -c 'echo $$ > pids; exec sleep 907' </dev/null >/dev/null 2>&1 &); exec sleep 907`}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := b.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	task := got.Task(s, b.Name())
	task.UserID = os.Getuid()
	var daemon int
	coretest.Eventually(t, 10*time.Second, "the daemonized descendant's PID", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return daemon > 0
	})
	read.Store(false)
	if err := b.Stop(ctx, task, core.Grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, p := range []int{task.PID, daemon} {
		if coretest.Alive(p) {
			t.Errorf("process %d of the task survived Stop", p)
		}
	}
	if !coretest.Alive(other.Process.Pid) {
		t.Errorf("Stop ended process %d, which is no part of the task", other.Process.Pid)
	}
	if read.Load() {
		t.Errorf("Stop read the environment of process %d, which is no part of the task", other.Process.Pid)
	}
}
