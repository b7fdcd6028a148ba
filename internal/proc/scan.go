package proc

import "time"

// Processes lists the live processes of the user uid from one read of
// the process table (zombies included, marked as such).
func Processes(uid int) []ProcInfo { return userProcs(uid) }

// EnvValue returns the value of name in the environment pid started with,
// where the system shows that environment (see HideEnvWhere).
func EnvValue(pid int, name string) (string, bool) { return envValue(pid, name) }

// Details returns what the system tells of a process beyond its stat
// line: its argv, its working directory and when it started (start is
// the process's start time, as in Proc).
func Details(pid int, start uint64) (argv []string, cwd string, started time.Time) {
	return procDetails(pid, start)
}
