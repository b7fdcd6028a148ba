package systemd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"btl/core"
)

// The records an earlier btl's log agent kept instead of core's record of
// runs; an agent of that version goes on writing them until it exits, so
// they are read, as the record they amount to, while no record exists.
//
//	<hash>.exit  "<pid> exited N" or "<pid> killed SIG", then "restarts N"
//	             when systemd restarted the task
//	<hash>.last  how the last run that ended, ended ("exited 1")
func legacyExitPath(run, hash string) string { return filepath.Join(run, hash+".exit") }
func legacyLastPath(run, hash string) string { return filepath.Join(run, hash+".last") }

// readLegacy returns the record of runs that the legacy records of the
// task with the given hash amount to, and false when there are none.
func readLegacy(run, hash string) (core.Runs, bool) {
	var r core.Runs
	if b, err := readRecord(legacyExitPath(run, hash)); err == nil {
		first, more, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		p, rest, ok := strings.Cut(first, " ")
		pid, err := strconv.Atoi(p)
		st, stOK := parseExit(rest)
		if ok && err == nil && stOK {
			n, _ := strconv.Atoi(strings.TrimPrefix(more, "restarts "))
			return core.Runs{Runs: n + 1, PID: pid, Ended: &st}, true
		}
	}
	// A task that runs again after a restart: how the last run ended.
	if b, err := readRecord(legacyLastPath(run, hash)); err == nil {
		// Status.String: "exited 1", "killed (SIGKILL)".
		if st, ok := parseExit(strings.NewReplacer("(SIG", "", ")", "").Replace(string(b))); ok {
			r.Ended = &st
			return r, true
		}
	}
	return r, false
}

// removeLegacy removes the legacy records of the task with the given hash.
func removeLegacy(run, hash string) {
	_ = os.Remove(legacyExitPath(run, hash))
	_ = os.Remove(legacyLastPath(run, hash))
}
