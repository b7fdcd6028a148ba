package proctest

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"btl/internal/proc"
)

// Scan and Carrying find a process by its environment, also while
// HideEnvWhere hides it from btl's scanner, which then does not see it.
func TestCarrying(t *testing.T) {
	kv := "BTL_TEST_CARRYING=" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("sleep", "100")
	cmd.Env = append(os.Environ(), kv)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for _, tc := range []struct {
		name   string
		hide   func(env [][]byte) bool
		hidden bool // from the scanner
	}{
		{"environments shown", nil, false},
		{"environments hidden", func([][]byte) bool { return true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			HideEnvWhere(tc.hide)
			defer HideEnvWhere(nil)
			// The environment appears once the child has exec'd sleep.
			var got []int
			for range 200 {
				if got = Carrying(os.Getuid(), kv); len(got) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !slices.Equal(got, []int{cmd.Process.Pid}) {
				t.Errorf("Carrying(%q) = %v, want [%d]", kv, got, cmd.Process.Pid)
			}
			if got := Carrying(os.Getuid(), kv+"x"); len(got) != 0 {
				t.Errorf("Carrying of an entry nobody has = %v", got)
			}
			if seen := proc.ProcHasEnv(cmd.Process.Pid, kv); seen == tc.hidden {
				t.Errorf("the scanner sees the environment: %v, want %v", seen, !tc.hidden)
			}
		})
	}
}
