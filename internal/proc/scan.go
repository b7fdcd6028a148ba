package proc

import (
	"os"
	"slices"
	"time"
)

// Stats lists the live processes for a first sorting, at the least cost:
// on Linux every process of the system as its stat line tells, with UID
// -1 (unknown: reading it costs another file per process), on macOS the
// processes of uid. A caller checks the UID of a process it keeps with
// LookupProc.
func Stats(uid int) []ProcInfo { return statProcs(uid) }

// Environ returns the environment pid started with, one "NAME=value"
// entry each, or nil where the system does not show it (see
// HideEnvWhere).
func Environ(pid int) [][]byte { return procEnv(pid) }

// Details returns what the system tells of a process beyond its stat
// line: its argv, its working directory and when it started (start is
// the process's start time, as in Proc).
func Details(pid int, start uint64) (argv []string, cwd string, started time.Time) {
	return procDetails(pid, start)
}

// Scan lists the live processes of the user uid, other than the caller,
// for which match returns true, given the environment each started with.
// It is the process table as the kernel shows it: HideEnvWhere does not
// apply, so tests use it to see what really runs.
func Scan(uid int, match func(pid int, env [][]byte) bool) []int {
	var out []int
	for _, info := range userProcs(uid) {
		if info.Zombie || info.PID == os.Getpid() {
			continue
		}
		if match(info.PID, readProcEnv(info.PID)) {
			out = append(out, info.PID)
		}
	}
	return out
}

// Carrying lists the live processes of the user uid, other than the
// caller, whose environment holds the entry kv ("NAME=value"), as Scan
// sees them.
func Carrying(uid int, kv string) []int {
	return Scan(uid, func(_ int, env [][]byte) bool {
		return slices.ContainsFunc(env, func(e []byte) bool { return string(e) == kv })
	})
}
