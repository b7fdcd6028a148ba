package coretest

import (
	"slices"
	"sync/atomic"
	"testing"

	"btl/internal/proc/proctest"
)

// EnvReads counts, until t ends, the environments btl's process scanner
// reads that hold one of entries (whole "KEY=value" entries): a test can
// then tell that btl never looked at a process it had no reason to. It
// takes the scanner's hook (proctest.HideEnvWhere) for the whole test binary,
// so a test that uses it must not run in parallel with another that does.
func EnvReads(t testing.TB, entries ...string) *atomic.Int32 {
	var n atomic.Int32
	proctest.HideEnvWhere(func(env [][]byte) bool {
		if slices.ContainsFunc(env, func(e []byte) bool { return slices.Contains(entries, string(e)) }) {
			n.Add(1)
		}
		return false
	})
	t.Cleanup(func() { proctest.HideEnvWhere(nil) })
	return &n
}
