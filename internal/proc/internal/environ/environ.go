// Package environ reads the environment a process started with, as the
// kernel shows it: /proc/<pid>/environ on Linux, kern.procargs2 on macOS.
//
// It is internal to the process scanner: only internal/proc, which reads
// every environment through Visible, and internal/proc/proctest, the
// tests' view of the process table, may import it. Its one seam for tests
// is HideWhere; nothing else in btl can reach it.
package environ

import "sync/atomic"

// Read returns the environment pid started with, one "NAME=value" entry
// each, or nil when it cannot be read.
func Read(pid int) [][]byte { return read(pid) }

// hide is the filter set by HideWhere; nil outside tests.
var hide atomic.Pointer[func(env [][]byte) bool]

// HideWhere makes Visible treat the environment of every process for
// which f returns true (given that environment) as unreadable, as macOS
// does for restricted processes (/bin/sh, /bin/sleep); f also sees every
// environment the scanner reads. nil restores the default. It is the
// seam proctest.HideEnvWhere uses: a value, not a build tag, so that
// `go test` needs no flags, and in a package only the scanner and its
// test view can import, so that no code of btl's can hide anything.
func HideWhere(f func(env [][]byte) bool) {
	if f == nil {
		hide.Store(nil)
		return
	}
	hide.Store(&f)
}

// Visible is Read as the process scanner sees it: nil where HideWhere
// hides the environment.
func Visible(pid int) [][]byte {
	env := read(pid)
	if h := hide.Load(); h != nil && env != nil && (*h)(env) {
		return nil
	}
	return env
}
