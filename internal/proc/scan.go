package proc

import "time"

// Stats lists the live processes for a first sorting, at the least cost:
// on Linux every process of the system as its stat line tells, with UID
// -1 (unknown: reading it costs another file per process), on macOS the
// processes of uid. A caller checks the UID of a process it keeps with
// LookupProc.
func Stats(uid int) []ProcInfo { return statProcs(uid) }

// Environ returns the environment pid started with, one "NAME=value"
// entry each, or nil where the system does not show it.
func Environ(pid int) [][]byte { return procEnv(pid) }

// Details returns what the system tells of a process beyond its stat
// line: its argv, its working directory and when it started (start is
// the process's start time, as in Proc).
func Details(pid int, start uint64) (argv []string, cwd string, started time.Time) {
	return procDetails(pid, start)
}
