package fork_test

import (
	"os"
	"testing"

	"btl/backend/fork"
	"btl/core"
	"btl/core/coretest"
	"btl/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	// Supervisors are this race-enabled binary: without this, each would
	// sleep a second at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

func setup(t *testing.T) (core.Backend, core.Dirs) {
	dirs := core.DirsAt(t.TempDir())
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	return fork.New(dirs), dirs
}

func TestConformance(t *testing.T) {
	coretest.Run(t, setup)
}

// TestConformanceHiddenEnv runs the tree tests with the tasks'
// environments unreadable, as macOS shows those of restricted programs.
func TestConformanceHiddenEnv(t *testing.T) {
	coretest.RunHiddenEnv(t, setup)
}
