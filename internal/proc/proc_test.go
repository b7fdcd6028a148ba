package proc

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestVerifyAndStopTree(t *testing.T) {
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	go cmd.Wait()
	info, err := LookupProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	good := Proc{PID: info.PID, Start: info.Start}
	if !good.Verify() {
		t.Fatal("own fresh process does not verify")
	}
	for _, bad := range []Proc{{info.PID, info.Start + 1}, {info.PID, 0}, {1, 1}, {0, 1}, {-1, 1}} {
		if bad.Verify() {
			t.Errorf("%+v verifies", bad)
		}
		// Not the leader of a verified group, no token: nothing is signalled.
		if killed, err := StopTree(bad, "", time.Second); err != nil || killed {
			t.Errorf("StopTree(%+v) = %v, %v", bad, killed, err)
		}
	}
	if !good.Verify() {
		t.Fatal("StopTree with a wrong identity signalled the process")
	}
}

// StopTree says whether it sent SIGKILL: only when something outlived
// SIGTERM and the grace, however long the stop took.
func TestStopTreeReportsSIGKILL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		killed bool
	}{
		{"ends on SIGTERM", "exec sleep 100", false},
		{"ends a while after SIGTERM, within the grace", "trap 'sleep 0.3; exit 0' TERM; sleep 100 & wait", false},
		{"ignores SIGTERM", "trap '' TERM; while :; do sleep 0.05; done", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := "stoptree-" + strconv.Itoa(os.Getpid())
			cmd := exec.Command("sh", "-c", tc.script)
			cmd.Env = append(os.Environ(), EnvInstance+"="+token)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done }()
			info, err := LookupProc(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the trap is set
			killed, err := StopTree(Proc{PID: info.PID, Start: info.Start}, token, time.Second)
			if alive := (Proc{PID: info.PID, Start: info.Start}).Verify(); err != nil || killed != tc.killed || alive {
				t.Errorf("StopTree = %v, %v (process alive: %v); want killed %v", killed, err, alive, tc.killed)
			}
		})
	}
}

func TestVerifyRefusesOtherUsers(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root's own processes include PID 1; the tests run as a regular user")
	}
	info, err := LookupProc(1)
	if err != nil {
		t.Skip("no PID 1 visible")
	}
	if (Proc{PID: 1, Start: info.Start}).Verify() {
		t.Fatal("another user's process, with its true start time, verifies")
	}
}
