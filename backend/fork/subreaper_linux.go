package fork

import "golang.org/x/sys/unix"

// becomeSubreaper makes the calling process a child subreaper: orphaned
// descendants are reparented to it rather than to init.
func becomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
