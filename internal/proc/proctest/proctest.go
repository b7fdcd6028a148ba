// Package proctest is the tests' view of the process table: what really
// runs, whatever the scanner is made to see, and the one way a test makes
// the scanner see less. Only tests and the conformance suite
// (core/coretest) import it; no btl binary links it.
package proctest

import (
	"os"
	"slices"

	"btl/internal/proc"
	"btl/internal/proc/internal/environ"
)

// HideEnvWhere makes btl's process scanner treat the environment of
// every process for which hide returns true (given that environment) as
// unreadable, as macOS does for restricted processes (/bin/sh,
// /bin/sleep): tests use it to check that trees are found and stopped
// without environments, or, with a hide that counts and returns false,
// which environments the scanner reads. It holds for the whole test
// binary; nil restores the default.
func HideEnvWhere(hide func(env [][]byte) bool) { environ.HideWhere(hide) }

// Scan lists the live processes of the user uid, other than the caller,
// for which match returns true, given the environment each started with.
// It is the process table as the kernel shows it: HideEnvWhere does not
// apply, so tests use it to see what really runs.
func Scan(uid int, match func(pid int, env [][]byte) bool) []int {
	var out []int
	for _, info := range proc.Stats(uid) {
		if info.UID != uid && info.PID != os.Getpid() {
			// The stat line alone does not tell the UID (-1): ask.
			info, _ = proc.LookupProc(info.PID)
		}
		if info.UID != uid || info.Zombie || info.PID == os.Getpid() {
			continue
		}
		if match(info.PID, environ.Read(info.PID)) {
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
