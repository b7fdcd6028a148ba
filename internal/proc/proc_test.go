package proc

import (
	"os"
	"os/exec"
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
		if err := StopTree(bad, "", time.Second); err != nil {
			t.Errorf("StopTree(%+v) = %v", bad, err)
		}
	}
	if !good.Verify() {
		t.Fatal("StopTree with a wrong identity signalled the process")
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
