package launchd

import (
	"runtime"
	"testing"

	"btl/core"
)

// A dump shaped like the real capture in the launchd notes, with nested
// blocks that reuse "state" and "pid".
const dumpHead = `gui/501/btl.0123456789abcdef = {
	active count = 1
	path = /Users/u/.local/share/btl/launchd/0123456789abcdef.plist
	type = LaunchAgent
	spawn monitor = {
		pid = 4711
		state = active
	}
`

const dumpTail = `	resource coalition = {
		ID = 4242
		state = active
		pid = 99
	}
	job state = exited
}
`

func TestParsePrint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines string
		want  core.Status
	}{
		{"running", "\tstate = running\n\tpid = 28474\n\tlast exit code = (never exited)\n", core.Status{State: core.Running, PID: 28474}},
		{"running again", "\tstate = running\n\truns = 2\n\tpid = 12\n\tlast exit code = 1\n", core.Status{State: core.Running, PID: 12}},
		{"exited", "\tstate = not running\n\tlast exit code = 3\n", core.Status{State: core.Exited, Code: 3}},
		{"exited 0", "\tstate = not running\n\tlast exit code = 0\n", core.Status{State: core.Exited}},
		{"EX_CONFIG", "\tstate = not running\n\tlast exit code = 78: EX_CONFIG\n", core.Status{State: core.Exited, Code: 78}},
		{"signal", "\tstate = not running\n\tlast terminating signal = Terminated: 15\n", core.Status{State: core.Signaled, Signal: 15}},
		{"killed", "\tstate = not running\n\tlast terminating signal = Killed: 9\n", core.Status{State: core.Signaled, Signal: 9}},
		{"spawning", "\tstate = spawn scheduled\n\tlast exit code = (never exited)\n", core.Status{State: core.Starting}},
		{"xpcproxy", "\tstate = xpcproxy\n\tlast exit code = (never exited)\n", core.Status{State: core.Starting}},
		{"spawning", "\tstate = spawning\n\tlast exit code = (never exited)\n", core.Status{State: core.Starting}},
		{"SIGTERMed", "\tstate = SIGTERMed\n", core.Status{State: core.Starting}},
		{"penalty box", "\tstate = penalty box\n\tlast exit code = (never exited)\n", core.Status{State: core.Starting}},
		{"exited, torn down", "\tstate = exited\n\tlast exit code = 0\n", core.Status{State: core.Exited}},
		{"never ran", "\tstate = not running\n\tlast exit code = (never exited)\n", core.Status{State: core.Starting}},
		{"exit reason only", "\tstate = not running\n\tlast exit reason = OS_REASON_CODESIGNING\n", core.Status{State: core.Failed}},
		{"spawn failed", "\tstate = not running\n\tjob state = spawn failed\n", core.Status{State: core.Failed}},
		{"nested pid only", "\tstate = not running\n", core.Status{State: core.Starting}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parsePrint(dumpHead + tc.lines + dumpTail); got != tc.want {
				t.Errorf("parsePrint = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestIdle(t *testing.T) {
	for _, tc := range []struct {
		lines string
		want  bool
	}{
		{"\tstate = not running\n\tlast exit code = (never exited)\n", true},
		{"\tstate = not running\n", true},
		{"\tstate = spawn scheduled\n\tlast exit code = (never exited)\n", false},
		{"\tstate = not running\n\tlast exit code = 1\n", false},
		{"\tstate = not running\n\tlast exit reason = OS_REASON_CODESIGNING\n", false},
		{"\tstate = running\n\tpid = 3\n", false},
	} {
		if got := idle(dumpHead + tc.lines + dumpTail); got != tc.want {
			t.Errorf("idle(%q) = %v, want %v", tc.lines, got, tc.want)
		}
	}
}

func TestAvailableOnlyOnDarwin(t *testing.T) {
	if runtime.GOOS != "darwin" && Available() {
		t.Error("Available on " + runtime.GOOS)
	}
}
